"""``roharness requirement``: the receiver stability, C/N0 or sample rate a target needs."""

from __future__ import annotations

from validation.commands import (
    add_force_argument,
    add_retrieval_arguments,
    check_run_arguments,
    parse_retrieval_arguments,
)


def add_parser(sub):
    p = sub.add_parser(
        "requirement", help="the parameter value (stability, C/N0, rate) a target needs",
        description="Bracketing search over Monte Carlo budgets (every physical error source "
        "together) for the value of PARAM at which FRACTION of the realisations meet every "
        "target; prints the threshold with its 95 %% confidence interval and writes "
        "summary.json, requirement.png and report.html. Resumes an interrupted run.")
    p.add_argument("--scenario", default="mex-tgo-uhf-drift",
                   help="built-in scenario name or TOML file (default mex-tgo-uhf-drift)")
    p.add_argument("--vary", required=True, metavar="PARAM",
                   help="receiver_adev_scale, cn0_dbhz or rate_hz")
    p.add_argument("--target", required=True, metavar="KEY=VALUE[,KEY=VALUE]",
                   help="bounds on |error|: m2_peak_density_rel, m2_peak_altitude_km, "
                   "ne150_rel, tn_k, tec_rel (e.g. m2_peak_density_rel=0.05,"
                   "m2_peak_altitude_km=2)")
    p.add_argument("--fraction", type=float, default=0.9,
                   help="fraction of realisations that must meet every target (default 0.9)")
    p.add_argument("--realisations", type=int, default=40,
                   help="Monte Carlo realisations per evaluated value (default 40)")
    p.add_argument("--range", metavar="LOW,HIGH",
                   help="search range of PARAM (default: its physical range)")
    p.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    p.add_argument("--scheduler", help="address of a running dask.distributed scheduler")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per "
                   "core; 0 = in-process)")
    add_retrieval_arguments(p)
    p.add_argument("-o", "--output", default="requirement",
                   help="output directory (default ./requirement)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_force_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from retrieval.errors import RoharnessError
    from validation.requirement import find_requirement

    check_run_arguments(args)
    value_range = None
    if args.range:
        try:
            lo, hi = (float(v) for v in args.range.split(","))
        except ValueError:
            raise RoharnessError(f"--range '{args.range}' must be LOW,HIGH") from None
        value_range = (lo, hi)
    s = find_requirement(args.scenario, args.vary, args.target, fraction=args.fraction,
                         realisations=args.realisations, value_range=value_range,
                         seed=args.seed, scheduler=args.scheduler, workers=args.workers,
                         out_dir=args.output, retrieval=parse_retrieval_arguments(args))
    if args.json:
        from validation.cli import print_json
        print_json(s)
        return 0
    unit = f" {s['unit']}" if s["unit"] else ""
    targets = ", ".join(f"|{k}| <= {v:g}" for k, v in s["targets"].items())
    print(f"requirement on {s['parameter']} for {s['scenario']}: {targets} in "
          f"{100 * s['fraction']:.0f} % of {s['realisations']} realisations "
          f"({s['engine']}, {s['elapsed_s']:.0f} s)")
    print(f"  {s['parameter']:>20}  {'met':>7}  {'fraction':>8}")
    for r in s["curve"]:
        print(f"  {r['value']:>20.4g}  {r['successes']:>3}/{r['trials']:<3}  "
              f"{r['fraction']:>8.2f}")
    if s["status"] == "found":
        print(f"  threshold: {s['parameter']} = {s['threshold']:.3g}{unit} "
              f"(95 % interval {s['ci95'][0]:.3g}-{s['ci95'][1]:.3g}{unit})")
    else:
        print(f"  the target is {s['status']}")
    print(f"  wrote {args.output}/summary.json, requirement.png, report.html")
    return 0
