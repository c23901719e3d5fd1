"""``roharness campaign``: occultations of a link over months, coverage, accuracy, trades."""

from __future__ import annotations

DEFAULT_CAMPAIGN = "mex-tgo-180d"


def add_parser(sub):
    p = sub.add_parser(
        "campaign", help="campaign design: events over months, coverage, accuracy, trades",
        description="Find every occultation of a link over a span (tangent-point SZA, LTST, "
        "latitude, longitude, Ls, ingress/egress, duration, vertical speed, top and bottom "
        "altitude), predict each event's accuracy from error budgets on a representative "
        "subset, apply the cadence, count per trade design the profiles meeting the accuracy "
        "target and their SZA coverage, and compare with a conventional spacecraft -> Earth "
        "link. The campaign file (TOML) is checked strictly; see --show. Writes events.csv, "
        "events.nc, comparison.csv, summary.json and report.html.")
    p.add_argument("--scenario", "--campaign", dest="campaign", default=DEFAULT_CAMPAIGN,
                   metavar="NAME|FILE",
                   help=f"built-in campaign name or TOML file (default {DEFAULT_CAMPAIGN})")
    p.add_argument("--start", help="span start UTC (default: the file's [span])")
    p.add_argument("--stop", help="span stop UTC (default: the file's [span])")
    p.add_argument("--no-accuracy", action="store_true",
                   help="geometry and coverage only (no error budgets)")
    p.add_argument("--realisations", type=int,
                   help="override [accuracy] realisations")
    p.add_argument("--check", type=int,
                   help="override [accuracy] check (events run as a direct Monte Carlo)")
    p.add_argument("--scheduler", help="address of a running dask.distributed scheduler "
                   "(default: a local cluster, one worker process per core)")
    p.add_argument("--workers", type=int, help="local worker processes (default: one per "
                   "core; 0 = in-process)")
    p.add_argument("-o", "--output", default="campaign",
                   help="output directory (default ./campaign)")
    p.add_argument("--list", action="store_true", help="list the built-in campaigns")
    p.add_argument("--show", metavar="NAME", help="print a built-in campaign file")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    from validation.commands import add_force_argument
    add_force_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from retrieval.errors import RoharnessError
    from validation.campaign import SCHEMA, builtin_names, builtin_text, load_campaign, run_campaign

    if args.list:
        for name in builtin_names():
            print(name)
        return 0
    if args.show:
        print(builtin_text(args.show, annotated=True), end="")
        return 0
    from validation.commands import check_run_arguments
    check_run_arguments(args)
    c = load_campaign(args.campaign)
    for key, val in (("realisations", args.realisations), ("check", args.check)):
        if val is not None:
            allowed = SCHEMA.sections["accuracy"][key].range
            if val not in allowed:
                raise RoharnessError(f"--{key} {val} is outside the allowed range "
                                     f"{allowed.text()}.")
            c.sections["accuracy"][key] = val
    s = run_campaign(c, start_utc=args.start, stop_utc=args.stop, out_dir=args.output,
                     scheduler=args.scheduler, workers=args.workers, progress=None,
                     accuracy=not args.no_accuracy)
    s.pop("events")
    s.pop("comparison_events")
    if args.json:
        from validation.cli import print_json
        print_json(s)
        return 0
    lk = s["link"]
    print(f"campaign {s['campaign']}: {lk['transmitter']} -> {lk['receiver']} "
          f"{s['start_utc']} to {s['stop_utc']} ({s['engine']}, {s['elapsed_s']:.1f} s)")
    print(f"  {s['n_events']} events ({s['n_observable']} observable), SZA "
          f"{_sza(s['min_sza_deg'], '')}-{_sza(s['max_sza_deg'])}, {s['n_below_sza_45']} below "
          f"45 deg, {s['n_below_sza_10']} below 10 deg, {s['n_nightside']} nightside")
    if "comparison" in s:
        cm = s["comparison"]
        print(f"  conventional {cm['transmitter']} -> {cm['receiver']}: {cm['n_events']} "
              f"events, min SZA {_sza(cm['min_sza_deg'])}, {cm['n_below_sza_45']} below "
              "45 deg")
    if s["accuracy_run"]:
        print(f"  per design ({s['cadence']['per_week']:g}/week by default, rule "
              f"'{s['cadence']['rule']}'):")
        print(f"  {'design':<16}{'observed':>9}{'meet':>6}{'flagged':>8}{'min SZA':>9}"
              f"{'<45':>5}{'med dN/N %':>11}{'med dh km':>10}")
        for name, d in s["designs"].items():
            poor = d.get("poor_fit", [])
            density = _median(d["median_m2_peak_density_rel"], 100.0,
                              "m2_peak_density_rel" in poor)
            altitude = _median(d["median_m2_peak_altitude_km"], 1.0,
                               "m2_peak_altitude_km" in poor)
            print(f"  {name:<16}{d['n_observed']:>9d}{d['n_meeting_target']:>6d}"
                  f"{d['n_meeting_target_flagged']:>8d}{_sza(d['min_sza_deg'], ''):>9}"
                  f"{d['n_below_sza_45']:>5d}{density:>11}{altitude:>10}")
        print("  flagged: meeting the target by a prediction outside what the subset budgets "
              "support (extrapolated or poor fit; report.html)")
        chk = s.get("check") or {}
        for name, mm in (chk.get("designs") or {}).items():
            r = mm["m2_peak_density_rel"]
            print(f"  check {name}: predicted / direct MC of the M2 peak density error "
                  + ", ".join(f"{x:.2f}" for x in r["ratio"]))
    print(f"  wrote {args.output}/events.csv, events.nc, summary.json, report.html")
    return 0


def _sza(x, unit=" deg") -> str:
    """An SZA for the summary, or "none" when there is no event."""
    import math

    return "none" if x is None or not math.isfinite(x) else f"{x:.1f}{unit}"


def _median(x, scale, poor) -> str:
    """A median predicted error (2 digits), "poor fit" or "none"."""
    import math

    if poor:
        return "poor fit"
    return "none" if x is None or not math.isfinite(x) else f"{x * scale:.2g}"
