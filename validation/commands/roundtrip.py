"""``roharness roundtrip``: simulate, retrieve and score one occultation."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("roundtrip", help="forward model + retrieval of one occultation, "
                       "scored against truth",
                       description="Simulate the scenario's occultation (truth + observation), "
                       "retrieve the electron density from the observation alone, and compare.")
    p.add_argument("--scenario", default="mex-tgo-uhf",
                   help="built-in scenario name or TOML file (default mex-tgo-uhf)")
    p.add_argument("--seed", type=int, help="override the scenario's random seed")
    p.add_argument("-o", "--output", help="write estimate + truth + observation to a .nc file")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from retrieval.errors import RoharnessError
    from validation.roundtrip import run_roundtrip, write_roundtrip

    if args.output and not str(args.output).endswith(".nc"):
        raise RoharnessError(f"output file '{args.output}' must end in .nc")
    res = run_roundtrip(args.scenario, args.seed)
    if args.output:
        write_roundtrip(res, args.output)
    m = res["metrics"]
    if args.json:
        from validation.cli import print_json
        print_json(m)
        return 0
    print(f"round trip of {m['scenario']} (seed {m['seed']}): {m['n_samples']} samples, "
          f"SZA {m['sza_deg']:.1f} deg, {m['elapsed_s']:.1f} s")
    print(f"  max |Ne error| / true peak      {m['ne_max_abs_error_over_peak']:.2e}")
    print(f"  M2 peak altitude error          {m['m2_peak_altitude_error_km']:+.3f} km")
    print(f"  M2 peak density error           {100 * m['m2_peak_density_rel_error']:+.3f} %")
    print(f"  M1 class (retrieved)            {m['m1_class']}")
    print(f"  M1 peak altitude error          {m['m1_peak_altitude_error_km']:+.3f} km")
    print(f"  neutral temperature error       {m['neutral_temperature_error_k']:+.2f} K")
    print(f"  TEC error                       {100 * m['tec_rel_error']:+.3f} %")
    if args.output:
        print(f"wrote {args.output}")
    return 0
