"""``roharness roundtrip``: simulate, retrieve and score one occultation."""

from __future__ import annotations

from validation.commands import add_retrieval_arguments, parse_retrieval_arguments


def add_parser(sub):
    p = sub.add_parser("roundtrip", help="forward model + retrieval of one occultation, "
                       "scored against truth",
                       description="Simulate the scenario's occultation (truth + observation), "
                       "retrieve the electron density from the observation alone, and compare.")
    p.add_argument("--scenario", default="mex-tgo-uhf",
                   help="built-in scenario name or TOML file (default mex-tgo-uhf)")
    p.add_argument("--seed", type=int, help="override the scenario's random seed")
    add_retrieval_arguments(p)
    p.add_argument("--top", choices=("auto", "zero", "exponential"), default=None,
                   help="bending above the top sample in the built-in Abel inversion: auto "
                   "(chosen from the top samples), zero (vacuum) or exponential (fitted "
                   "topside); default: the scenario's [retrieval] top (auto)")
    p.add_argument("-o", "--output", help="write estimate + truth + observation to a .nc file")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    p.set_defaults(func=run)
    return p


def _warm_imports() -> None:
    """Finish the imports the first xarray Dataset would make (xarray looks for its optional
    array back-ends, e.g. dask.array, ~0.4 s), so that ``elapsed_s`` times the round trip,
    not the interpreter's start-up."""
    import xarray as xr

    xr.Dataset({"x": ("x", [0.0])})


def run(args) -> int:
    from validation.roundtrip import run_roundtrip, write_roundtrip

    _warm_imports()

    if args.output is not None:
        from validation.limits import check_output_file
        check_output_file(args.output, (".nc",))
    res = run_roundtrip(args.scenario, args.seed, retrieval=parse_retrieval_arguments(args),
                        top=args.top)
    if args.output:
        write_roundtrip(res, args.output)
    m = res["metrics"]
    if args.json:
        from validation.cli import print_json
        print_json(m)
        return 0
    who = "" if m["retrieval"] == "builtin" else f", retrieval '{m['retrieval']}'"
    print(f"round trip of {m['scenario']} (seed {m['seed']}{who}): {m['n_samples']} samples, "
          f"SZA {m['sza_deg']:.1f} deg, {m['elapsed_s']:.1f} s ({m['retrieval_s']:.2f} s "
          "retrieving)")
    print(f"  max |Ne error| / true peak      {m['ne_max_abs_error_over_peak']:.2e}")
    print(f"  M2 peak altitude error          {m['m2_peak_altitude_error_km']:+.3f} km")
    print(f"  M2 peak density error           {100 * m['m2_peak_density_rel_error']:+.3f} %")
    print(f"  M1 class (retrieved)            {m['m1_class']}")
    print(f"  M1 peak altitude error          {m['m1_peak_altitude_error_km']:+.3f} km")
    print(f"  neutral temperature error       {m['neutral_temperature_error_k']:+.2f} K")
    print(f"  TEC error                       {100 * m['tec_rel_error']:+.3f} %")
    print_stage(m)
    if "top_model" in m:
        print(f"  top of the profile              {m['top_model']}: {m['top_model_reason']}")
        print(f"  Abel scheme                     {m['abel_scheme']}")
    if m.get("under_resolved"):
        print(f"  WARNING: under-resolved: the Abel step's estimated discretisation error is "
              f"{m['abel_discretisation_error_over_peak']:.1e} of the peak (> 1e-3): a layer "
              "too thin for the sampling, or noise (step doubling sees both)")
    spread = res.get("science", {}).get("neutral_temperature_model_spread_k", 0.0)
    if abs(spread) >= 1.0:
        print(f"  WARNING: the neutral temperature is model-dependent: the data reject one "
              f"Chapman layer but hold no separable M1 (a layer within 5 km of M2?); the "
              f"free two-layer fit differs by {spread:+.1f} K")
    if m.get("spacecraft_in_ionosphere"):
        print("  WARNING: a spacecraft flies inside the retrieved ionosphere; the Abel inversion "
              "assumes both ends outside it (expect bottomside errors of ~1e-2 of the peak)")
    if args.output:
        print(f"wrote {args.output}")
    return 0


def print_stage(m: dict) -> None:
    """The Doppler -> bending stage score and the verdict, when there is one."""
    if m.get("science_error"):
        print(f"  profile science impossible      {m['science_error']}")
    if "bending_rel_error" in m:
        print(f"  bending angle error (max)       {m['bending_max_abs_error_rad']:.3e} rad "
              f"({m['bending_rel_error']:.2e} of the largest true bending)")
    verdict = {"none": "no stage fails", "doppler_to_bending": "fails in Doppler -> bending",
               "abel_to_density": "bending correct, fails in the Abel/density step",
               "unknown": "density wrong; no bending angles to tell which stage"}
    if "failing_stage" in m:
        print(f"  stage verdict                   {verdict[m['failing_stage']]}")
