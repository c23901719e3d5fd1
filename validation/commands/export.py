"""``roharness export``: an observation file for an outside pipeline, and its truth."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "export", help="write observation.nc (for any retrieval) and truth.nc (for the judge)",
        description="Simulate the scenario's occultation and write DIR/observation.nc (what a "
        "real pipeline is given: residual Doppler, carrier frequencies, state vectors with "
        "their frame and light-time convention; I/Q samples on instrument-level scenarios; "
        "nothing of the truth) and DIR/truth.nc. Score a pipeline's profile with "
        "'roharness score DIR/truth.nc PROFILE.nc'.")
    p.add_argument("--scenario", default="mex-tgo-uhf",
                   help="built-in scenario name or TOML file (default mex-tgo-uhf)")
    p.add_argument("--seed", type=int, help="override the scenario's random seed")
    p.add_argument("-o", "--output", default="export", help="output directory (default ./export)")
    p.add_argument("--no-iq", action="store_true",
                   help="leave the level-1 I/Q samples out of observation.nc")
    p.add_argument("--guide", action="store_true",
                   help="print the data product guide (every variable, unit, convention)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    if args.guide:
        from importlib import resources

        print((resources.files("validation") / "data_products.md").read_text("utf-8"))
        return 0
    from validation.export import export_scenario
    from validation.limits import check_output_dir

    check_output_dir(args.output)

    res = export_scenario(args.scenario, args.seed, args.output, include_iq=not args.no_iq)
    if args.json:
        from validation.cli import print_json
        print_json(res)
        return 0
    print(f"exported {res['scenario']} (seed {res['seed']}), data level {res['data_level']}")
    print(f"  observation  {res['observation']}")
    print(f"  truth        {res['truth']}  (for 'roharness score' only)")
    return 0
