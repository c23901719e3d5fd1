"""``roharness score``: a profile from any pipeline against an exported truth."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "score", help="score a retrieved profile (netCDF) against a truth.nc from export",
        description="Compare a profile written by any retrieval (dimension 'altitude' [m], "
        "variable 'electron_density' [m-3]; optional 'bending_angle' and "
        "'impact_parameter') with the truth written by 'roharness export'; prints the "
        "round-trip metrics and, with bending angles, which stage fails.")
    p.add_argument("truth", help="truth.nc written by roharness export")
    p.add_argument("profile", help="the profile netCDF file to score")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from validation.commands.roundtrip import print_stage
    from validation.export import score_files

    m = score_files(args.truth, args.profile)
    if args.json:
        from validation.cli import print_json
        print_json(m)
        return 0
    print(f"score of {args.profile} against {args.truth}")
    print(f"  max |Ne error| / true peak      {m['ne_max_abs_error_over_peak']:.2e}")
    print(f"  M2 peak altitude error          {m['m2_peak_altitude_error_km']:+.3f} km")
    print(f"  M2 peak density error           {100 * m['m2_peak_density_rel_error']:+.3f} %")
    print(f"  M1 class (retrieved)            {m['m1_class']}")
    print(f"  neutral temperature error       {m['neutral_temperature_error_k']:+.2f} K")
    print(f"  TEC error                       {100 * m['tec_rel_error']:+.3f} %")
    print_stage(m)
    return 0
