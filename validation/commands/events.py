"""``roharness events``: list the occultations of a radio link."""

from __future__ import annotations

from validation.progress import Progress


def add_parser(sub):
    p = sub.add_parser("events", help="find ingress/egress occultations of a link",
                       description="Find every ingress and egress of the straight ray of a "
                       "link (light time included) with tangent-point geometry at the "
                       "reference altitude. Ends: presets mex/tgo/maven, earth, dss-14/43/63, "
                       "or NAIF names/IDs from --kernels.")
    p.add_argument("--tx", default="mex", help="transmitter (default mex)")
    p.add_argument("--rx", default="tgo", help="receiver (default tgo)")
    p.add_argument("--start", default="2023-01-01", help="start UTC (default 2023-01-01)")
    p.add_argument("--stop", default="2023-01-08", help="stop UTC (default 2023-01-08)")
    p.add_argument("--ref-alt-km", type=float, default=200.0,
                   help="reference tangent altitude [km] (default 200)")
    p.add_argument("--kernels", nargs="+", default=[], metavar="FILE",
                   help="extra SPICE kernels or meta-kernels (e.g. mission SPKs)")
    p.add_argument("-o", "--output", help="write the events to FILE (.csv or .nc)")
    p.add_argument("--json", action="store_true", help='print {"events": [...]}')
    from validation.commands import add_force_argument
    add_force_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from retrieval.occultation import events_to_records
    from validation.events import search, write_events
    from validation.limits import check_output_file, check_search

    if args.output is not None:
        check_output_file(args.output, (".nc", ".csv"))
    check_search(args.start, args.stop)
    prog = Progress("searching")
    ds = search(args.tx, args.rx, args.start, args.stop, kernels=args.kernels,
                reference_altitude_km=args.ref_alt_km, progress=prog)
    prog.close()
    if args.output:
        write_events(ds, args.output)
    recs = events_to_records(ds)
    if args.json:
        from validation.cli import print_json
        print_json({"events": recs})
        return 0
    print(f"{len(recs)} occultation events of {args.tx} -> {args.rx} between {args.start} "
          f"and {args.stop} (reference altitude {args.ref_alt_km:g} km)")
    if recs:
        print(f"{'time (UTC, tangent point)':26s} {'kind':8s} {'lat':>7s} {'lon':>7s} "
              f"{'SZA':>6s} {'LTST':>5s} {'Ls':>6s}")
        for r in recs:
            print(f"{r['time_utc']:26s} {r['kind']:8s} {r['lat_deg']:7.2f} {r['lon_deg']:7.2f} "
                  f"{r['sza_deg']:6.1f} {r['ltst_hours']:5.2f} {r['ls_deg']:6.1f}")
        sza = ds.sza_deg.values
        print(f"SZA range {sza.min():.1f}-{sza.max():.1f} deg")
    if args.output:
        print(f"wrote {args.output}")
    return 0
