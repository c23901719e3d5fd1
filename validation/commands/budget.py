"""``roharness budget``: Monte Carlo error budget of a retrieval, per error source."""

from __future__ import annotations

DEFAULT_SCENARIO = "mex-tgo-uhf-drift"


from validation.commands import add_retrieval_arguments, parse_retrieval_arguments


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
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from validation.budget import METRICS, run_budget

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
    who = "" if s["retrieval"] == "builtin" else f" with retrieval '{s['retrieval']}'"
    print(f"error budget of {s['scenario']}{who}: {s['occultations']} occultation(s), "
          f"{s['realisations']} realisations per source, {s['engine']}, {s['elapsed_s']:.1f} s")
    if s["skipped_sources"]:
        print(f"  skipped (not applicable): {', '.join(s['skipped_sources'])}")
    head = ["Ne/peak 100-200", "M2 alt km", "M2 dens", "Ne150", "Tn K", "TEC", "failed"]
    print(f"  {'source':<12}" + "".join(f"{h:>16}" for h in head))
    rows = [(n, s["per_source"][n]) for n in s["sources"]]
    for name, p in rows:
        print(f"  {name:<12}" + "".join(f"{p[k]:>16.3g}" for k in METRICS)
              + f"{p['failed']:>16d}")
    fl = s["floor"]
    print(f"  {'floor':<12}" + "".join(f"{fl[k]:>16.3g}" for k in METRICS)
          + f"{fl['failed']:>16d}")
    print(f"  {'RSS total':<12}" + "".join(f"{s['total_' + k]:>16.3g}" for k in METRICS))
    if "mc_total_failed" in s:
        print(f"  {'MC total':<12}" + "".join(f"{s['mc_total_' + k]:>16.3g}" for k in METRICS)
              + f"{s['mc_total_failed']:>16d}")
    chk = s.get("thermal_vs_withers2010")
    if chk:
        print(f"  thermal noise: MC spread / Withers (2010) {chk['median_ratio']:.3g}, "
              f"/ Abel-propagated white noise {chk['median_ratio_abel']:.3g} (100-200 km)")
    for g in s.get("gradient_bias_by_sza", []):
        print(f"  gradients at SZA {g['sza_deg']:5.1f} deg (target {g['target_sza_deg']:g}): "
              f"Ne RMS/peak {g['ne_rms_over_peak_100_200km']:.2g}, M2 altitude "
              f"{g['m2_peak_altitude_error_km']:+.2f} km, density "
              f"{100 * g['m2_peak_density_rel_error']:+.2f} %")
    print(f"  wrote {args.output}/budget.nc, summary.json, report.html")
    return 0
