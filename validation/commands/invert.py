"""``roharness invert FILE.tab [--json] [-o out.nc]``: invert a MAVEN ROSE profile.

Reads a MAVEN ROSE level-3 EDP table (:func:`retrieval.rose.read_rose_edp`), inverts its
archived (impact parameter, bending angle) with our inverse Abel transform
(:func:`retrieval.electron_density.profile_dataset`) at the archive's downlink frequency and
compares with the archived refractivity and electron density.

Numbers reported (``--json`` keys):

* ``m2_peak_radius_km``, ``m2_peak_altitude_km``, ``m2_peak_density_m3``: our M2 peak, the
  maximum of our N_e above 80 km (below, the neutral atmosphere dominates);
* ``archived_m2_peak_radius_km``, ``archived_m2_peak_density_m3``,
  ``m2_peak_density_rel_diff``, ``m2_peak_same_level`` (same archived row);
* ``refractivity_median_rel_diff_100_200km``, ``refractivity_max_rel_diff_100_200km``:
  :math:`|(n-1)_{ours} - (n-1)_{archive}| / |(n-1)_{archive}|` over the archived levels at
  100-200 km above the 3389.5 km sphere;
* ``n_levels``, ``label_records``, ``thinned_every``, ``top_model``, ``frequency_hz``.
"""

from __future__ import annotations

#: Levels below this altitude are not searched for the M2 peak [m] (neutral atmosphere).
PEAK_SEARCH_FLOOR_M = 80e3
#: Altitude band of the refractivity comparison [m].
COMPARE_BAND_M = (100e3, 200e3)


def invert_rose(path, top="zero", thinned_every=None):
    """Invert a ROSE file; return (summary dict, Dataset with ours and archived side by side).

    ``thinned_every`` declares a copy that keeps every K-th archived level
    (:func:`retrieval.rose.read_rose_edp`).
    """
    import numpy as np

    from retrieval.electron_density import profile_dataset
    from retrieval.rose import read_rose_edp

    arch = read_rose_edp(path, thinned_every=thinned_every)
    ours = profile_dataset(arch["impact_parameter"].values, arch["bending_angle"].values,
                           arch.attrs["frequency_hz"], top=top,
                           reference_radius_m=arch.attrs["reference_radius_m"],
                           attrs={"source": arch.attrs["source"]})
    # both are sorted by radius; the archive's rows ascend in radius and r = a/n keeps order
    alt = arch["altitude"].values
    band = (alt >= COMPARE_BAND_M[0]) & (alt <= COMPARE_BAND_M[1])
    ref = arch["refractivity"].values
    rel = np.abs(ours["refractivity"].values[band] - ref[band]) / np.abs(ref[band])
    ne = ours["electron_density"].values
    ne_arch = arch["electron_density"].values
    search = ours["altitude"].values >= PEAK_SEARCH_FLOOR_M
    i = int(np.flatnonzero(search)[np.argmax(ne[search])])
    search_a = alt >= PEAK_SEARCH_FLOOR_M
    j = int(np.flatnonzero(search_a)[np.argmax(ne_arch[search_a])])
    summary = {
        "file": str(path),
        "n_levels": int(alt.size),
        "label_records": int(arch.attrs["label_records"]),
        "thinned_every": int(arch.attrs["thinned_every"]),
        "top_model": top,
        "frequency_hz": float(arch.attrs["frequency_hz"]),
        "m2_peak_radius_km": float(ours["radius"].values[i] / 1e3),
        "m2_peak_altitude_km": float(ours["altitude"].values[i] / 1e3),
        "m2_peak_density_m3": float(ne[i]),
        "archived_m2_peak_radius_km": float(arch["radius"].values[j] / 1e3),
        "archived_m2_peak_density_m3": float(ne_arch[j]),
        "m2_peak_density_rel_diff": float(ne[i] / ne_arch[j] - 1.0),
        "m2_peak_same_level": bool(i == j),
        "refractivity_median_rel_diff_100_200km": float(np.median(rel)) if rel.size else None,
        "refractivity_max_rel_diff_100_200km": float(np.max(rel)) if rel.size else None,
    }
    side = ours.rename({v: f"{v}_ours" for v in ours.data_vars})
    side = side.assign_coords(altitude=arch["altitude"])  # same rows, archived altitudes
    merged = arch.merge(side, compat="override")
    merged.attrs.update({"top_model": top, "frequency_hz": summary["frequency_hz"]})
    return summary, merged


def add_parser(subparsers):
    p = subparsers.add_parser(
        "invert", help="invert a MAVEN ROSE level-3 profile's bending angles",
        description="Invert a MAVEN ROSE level-3 EDP file's archived (impact parameter, "
                    "bending angle) with the project's inverse Abel transform and compare "
                    "with the archived refractivity and electron density.")
    p.add_argument("file", help="MAVEN ROSE level-3 EDP table (mvn_rse_l3_edp_*.tab), read "
                                "through its PDS4 label (the .xml beside it)")
    p.add_argument("--thinned-every", type=int, metavar="K",
                   help="the file keeps every K-th level of the archived table (its label "
                        "still counts all of them); default: it must hold every record")
    p.add_argument("--top", choices=("zero", "exponential"), default="zero",
                   help="bending angle above the top sample (default: zero)")
    p.add_argument("-o", "--output", help="write ours and the archive side by side (netCDF)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    if args.thinned_every is not None and args.thinned_every < 1:
        from retrieval.errors import RoharnessError

        raise RoharnessError(f"--thinned-every must be a positive integer, got "
                             f"{args.thinned_every}")
    summary, merged = invert_rose(args.file, top=args.top, thinned_every=args.thinned_every)
    if args.output:
        from retrieval.fileio import atomic_path

        with atomic_path(args.output, suffix=".nc") as tmp:
            merged.to_netcdf(tmp)
        summary["output"] = str(args.output)
    if args.json:
        from validation.cli import print_json

        print_json(summary)
        return 0
    s = summary
    thin = (f", every {s['thinned_every']}th of the label's {s['label_records']} records"
            if s["thinned_every"] > 1 else "")
    print(f"{s['file']}: {s['n_levels']} levels inverted at {s['frequency_hz'] / 1e9:.6f} GHz "
          f"(top: {s['top_model']}{thin})")
    print(f"  M2 peak: {s['m2_peak_density_m3']:.4e} m^-3 at r = {s['m2_peak_radius_km']:.3f} km "
          f"({s['m2_peak_altitude_km']:.1f} km); archive {s['archived_m2_peak_density_m3']:.4e} "
          f"m^-3 at {s['archived_m2_peak_radius_km']:.3f} km "
          f"({100 * s['m2_peak_density_rel_diff']:+.3f} %, "
          f"{'same' if s['m2_peak_same_level'] else 'different'} level)")
    print(f"  refractivity vs archive, 100-200 km: median "
          f"{100 * s['refractivity_median_rel_diff_100_200km']:.2f} %, max "
          f"{100 * s['refractivity_max_rel_diff_100_200km']:.2f} %")
    if args.output:
        print(f"  wrote {args.output}")
    return 0
