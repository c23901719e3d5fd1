"""``roharness fit FILE [--json]``: the SZA laws of a table of peaks.

A thin layer over :func:`retrieval.laws.read_peak_table` and
:func:`retrieval.laws.fit_campaign`: prints a table of the fitted laws (M2, M1, and each
Segale group), or with ``--json`` one JSON object (:func:`retrieval.laws.summarize_fits`).
"""

from __future__ import annotations

#: ``retrieval.laws.DENSITY_DRIVERS`` (a test keeps them equal), written out so that building
#: the parser does not import scipy.stats.
DENSITY_DRIVERS = ("f107", "f_euv")


def add_parser(subparsers):
    """Register the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit", help="fit peak density/altitude laws versus SZA to a table of peaks",
        description="Fit N = N0 cos(chi)^k (+ c F10.7), h = h0 + H ln sec chi and "
                    "h = h0 + L ln Ch(chi) to a CSV or netCDF table of peaks (columns: "
                    "sza_deg, m2_peak_density_m3, m2_peak_altitude_km, optional m1_*, "
                    "*_error_*, ltst_hours, ls_deg, f107, f_euv, solar_distance_au).")
    p.add_argument("file", metavar="FILE", help="CSV (header row) or netCDF table of peaks")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--driver", choices=[*DENSITY_DRIVERS, "none"], default="f107",
                   help="additive driver of the extended density law (default f107)")
    p.set_defaults(func=run)
    return p


def _fmt(v, e, scale=1.0, fmt="{:.3g}"):
    if v is None or e is None or v != v:
        return "-"
    return f"{fmt.format(v / scale)} +/- {fmt.format(e / scale)}"


def _lines(name, lay):
    out = []
    if lay is None:
        return out
    d, a, c = lay["density"], lay["altitude_secant"], lay["altitude_chapman"]
    if d.get("undetermined") and a.get("undetermined"):
        return [f"{name:<16} not determined: {d['undetermined']}"]
    out.append(f"{name:<16} N0 cos^k      N0 = {_fmt(d['n0_m3'], d['n0_error_m3'])} m^-3"
               f"   k = {_fmt(d['k'], d['k_error'], fmt='{:.3f}')}   (n={d['n_used']})")
    if d.get("undetermined"):
        out[-1] = f"{name:<16} N0 cos^k      not determined: {d['undetermined']}"
    dd = lay.get("density_with_driver")
    if dd and dd.get("undetermined"):
        out.append(f"{'':<16} + c {dd['driver']:<9} not determined: {dd['undetermined']}")
    elif dd:
        out.append(f"{'':<16} + c {dd['driver']:<9} N0 = {_fmt(dd['n0_m3'], dd['n0_error_m3'])}"
                   f" m^-3   k = {_fmt(dd['k'], dd['k_error'], fmt='{:.3f}')}"
                   f"   c = {_fmt(dd['c_m3'], dd['c_error_m3'])} m^-3")
    out.append(f"{'':<16} h0 + H ln sec h0 = {_fmt(a['h0_km'], a['h0_error_km'], fmt='{:.1f}')} km"
               f"   H = {_fmt(a['scale_km'], a['scale_error_km'], fmt='{:.1f}')} km")
    out.append(f"{'':<16} h0 + L ln Ch  h0 = {_fmt(c['h0_km'], c['h0_error_km'], fmt='{:.1f}')} km"
               f"   L = {_fmt(c['scale_km'], c['scale_error_km'], fmt='{:.1f}')} km")
    corr = lay["density_residual_correlations"]
    if corr:
        out.append(f"{'':<16} Spearman(N residual): " + ", ".join(
            f"{r['driver']} {r['rho']:+.2f} (p={r['p_value']:.2g})" if r["rho"] == r["rho"]
            else f"{r['driver']} undefined (constant)" for r in corr))
    return out


def run(args) -> int:
    """Read the table, fit, print."""
    from retrieval.laws import fit_campaign, read_peak_table, summarize_fits

    table = read_peak_table(args.file)
    driver = None if args.driver == "none" else args.driver
    summary = summarize_fits(fit_campaign(table, density_driver=driver))
    if args.json:
        from validation.cli import print_json

        print_json(summary)
        return 0
    print(f"{args.file}: {summary['n_rows']} rows "
          f"({summary['n_excluded_sza_ge_90']} at SZA >= 90 deg excluded from the fits)")
    lines = _lines("M2", summary["m2"]) + _lines("M1", summary["m1"])
    for g, v in summary["groups"].items():
        lines += _lines(f"{g} ({v['n']})", v["m2"])
    print("\n".join(lines))
    return 0
