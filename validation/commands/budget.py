"""``roharness budget``: Monte Carlo error budget of a retrieval, per error source."""

from __future__ import annotations

from validation.commands import (
    add_force_argument,
    add_retrieval_arguments,
    check_run_arguments,
    parse_retrieval_arguments,
)

DEFAULT_SCENARIO = "mex-tgo-uhf-drift"


def add_parser(sub):
    p = sub.add_parser(
        "budget", help="Monte Carlo error budget per error source (dask), with report",
        description="Simulate the scenario's occultation once, then draw realisations of every "
        "error source on its own and of all physical sources together, retrieve each as real "
        "data and compare with the truth. Writes budget.nc, summary.json and report.html; an "
        "interrupted run restarted with the same command resumes where it stopped.")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"built-in scenario name or TOML file (default {DEFAULT_SCENARIO})")
    p.add_argument("--sources", help="comma-separated error sources (default: the scenario's "
                   "[budget] sources that apply to it)")
    p.add_argument("--realisations", type=int, help="realisations per source (default: the "
                   "scenario's [budget] realisations)")
    p.add_argument("--occultations", type=int, default=1,
                   help="run over this many events of the scenario's search window (default 1)")
    p.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    p.add_argument("--scheduler", help="address of a running dask.distributed scheduler "
                   "(default: a local cluster, one worker process per core)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per "
                   "core; 0 = in-process)")
    p.add_argument("--gradient-sza", default="30,60,85",
                   help="with the gradients source: horizontal-gradient bias on real events "
                   "near these SZAs [deg] (comma-separated; 'none' to skip; default 30,60,85)")
    add_retrieval_arguments(p)
    p.add_argument("-o", "--output", default="budget", help="output directory (default ./budget)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_force_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from validation.budget import run_budget

    check_run_arguments(args)
    sources = None
    if args.sources is not None:
        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    from retrieval.errors import RoharnessError

    szas = ()
    if args.gradient_sza.strip().lower() != "none":
        try:
            szas = tuple(float(v) for v in args.gradient_sza.split(",") if v.strip())
        except ValueError:
            raise RoharnessError(f"--gradient-sza '{args.gradient_sza}' must be comma-separated "
                                 "angles in degrees, or 'none'") from None
        if any(not 0 <= z < 90 for z in szas):
            raise RoharnessError(f"--gradient-sza '{args.gradient_sza}': angles must be in "
                                 "0-90 deg (the peak laws are fitted below 90 deg)")
    s = run_budget(args.scenario, sources, args.realisations, seed=args.seed,
                   occultations=args.occultations, scheduler=args.scheduler,
                   workers=args.workers, out_dir=args.output, progress=None,
                   gradient_sza_deg=szas, retrieval=parse_retrieval_arguments(args))
    if args.json:
        from validation.cli import print_json
        print_json(s)
        return 0
    if s.get("kind") == "sheet_budget":
        from validation.sheet_budget import print_sheet_summary
        print_sheet_summary(s)
        print(f"  wrote {args.output}/budget.nc, summary.json, report.html")
        return 0
    who = "" if s["retrieval"] == "builtin" else f" with retrieval '{s['retrieval']}'"
    print(f"error budget of {s['scenario']}{who}: {s['occultations']} occultation(s), "
          f"{s['realisations']} realisations per source, {s['engine']}, {s['elapsed_s']:.1f} s")
    if s["skipped_sources"]:
        print(f"  skipped (not applicable): {', '.join(s['skipped_sources'])}")
    print_table(s)
    chk = s.get("thermal_vs_withers2010")
    if chk:
        print(f"  thermal noise: MC spread / Withers (2010) {chk['median_ratio']:.3g}, "
              f"/ Abel-propagated white noise {chk['median_ratio_abel']:.3g} (100-200 km)")
    for g in s.get("gradient_bias_by_sza", []):
        print(f"  gradients at SZA {g['sza_deg']:5.1f} deg (target {g['target_sza_deg']:g}): "
              f"Ne RMS/peak {g['ne_rms_over_peak_100_200km']:.2g}, M2 altitude "
              f"{g['m2_peak_altitude_error_km']:+.2f} km, density "
              f"{100 * g['m2_peak_density_rel_error']:+.2f} %")
    for m in s.get("messages", []):
        print(f"  failed realisation: {m}")
    if s.get("verdict"):
        import textwrap
        print(textwrap.fill(s["verdict"], width=96, initial_indent="  ",
                            subsequent_indent="  "))
    print(f"  wrote {args.output}/budget.nc, summary.json, report.html")
    return 0


#: Terminal columns: metric, header, unit line, scale (relative values print in %).
COLUMNS = (
    ("ne_rms_over_peak_100_200km", "N_e 100-200km", "% of peak", 100.0),
    ("m2_peak_altitude_rms_km", "M2 altitude", "km", 1.0),
    ("m2_peak_density_rel_rms", "M2 density", "%", 100.0),
    ("ne150_rel_rms", "N_e(150 km)", "%", 100.0),
    ("tn_rms_k", "T_n", "K", 1.0),
    ("tec_rel_rms", "TEC", "%", 100.0),
)
_W = 14


def _cells(values) -> str:
    return "".join(f"{v:>{_W}.3g}" if isinstance(v, float) else f"{v:>{_W}}" for v in values)


def print_table(s: dict) -> None:
    """RMS errors (1 sigma) per source, the floor, the totals, targets and pass/fail."""
    print(f"  {'RMS error (1 sigma)':<22}" + _cells([c[1] for c in COLUMNS]) + f"{'failed':>8}")
    print(f"  {'':<22}" + _cells([f"[{c[2]}]" for c in COLUMNS]))
    rows = [(n, s["per_source"][n]) for n in s["sources"]]
    rows.append(("retrieval floor", s["floor"]))
    for name, p in rows:
        label = name
        if name not in s.get("physical_sources", []) and name != "retrieval floor":
            label = f"{name} (recipe)"
        print(f"  {label:<22}" + _cells([c[3] * p[c[0]] for c in COLUMNS])
              + f"{p['failed']:>8d}")
    print(f"  {'root-sum-square':<22}" + _cells([c[3] * s[f"total_{c[0]}"] for c in COLUMNS]))
    if "mc_total_failed" in s:
        print(f"  {'all sources together':<22}"
              + _cells([c[3] * s[f"mc_total_{c[0]}"] for c in COLUMNS])
              + f"{s['mc_total_failed']:>8d}")
    targets = s.get("targets", {})
    if targets:
        tgt = [c[3] * targets[c[0]]["target"] if c[0] in targets else "-" for c in COLUMNS]
        res = [("PASS" if targets[c[0]]["passed"] else "FAIL") if c[0] in targets else ""
               for c in COLUMNS]
        print(f"  {'target':<22}" + _cells(tgt))
        print((f"  {'result':<22}" + _cells(res)).rstrip())
