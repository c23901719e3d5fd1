"""``roharness sheet``: round trip of a synthetic current-sheet crossing."""

from __future__ import annotations


def _seed(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seed {text!r}; expected a non-negative integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}; expected a non-negative integer")
    return value


def add_parser(sub):
    p = sub.add_parser(
        "sheet", help="Harris current-sheet crossing: synthesise, retrieve (MVA, guide field, "
        "Hall, IMF lag, escape flux) and compare",
        description="Simulate a spacecraft crossing of a Harris current sheet with guide field "
        "and an upstream IMF monitor, run the reconnection retrieval on the observation and "
        "compare with the truth.")
    p.add_argument("--scenario", default="mars-2024-11-07", metavar="NAME|FILE",
                   help="built-in sheet scenario name or TOML file (default mars-2024-11-07)")
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from validation.sheet import ACCEPTANCE, run_sheet_roundtrip

    m = run_sheet_roundtrip(args.scenario, seed=args.seed)
    if args.json:
        from validation.cli import print_json
        print_json(m)
        return 0
    ok = lambda key: "ok" if m["passed"].get(key) else "FAIL"  # noqa: E731
    print(f"current-sheet round trip: scenario {m['scenario']}, seed {m['seed']}")
    print(f"  MVA eigenvalue ratios      l1/l2 = {m['eigenvalue_ratio_12']:.2f}, "
          f"l2/l3 = {m['eigenvalue_ratio_23']:.2f}")
    print(f"  normal angle error         {m['normal_angle_error_deg']:.3f} deg "
          f"(predicted 1-sigma {m['normal_error_predicted_deg']:.3f}; limit "
          f"{ACCEPTANCE['normal_angle_error_deg']:g}) {ok('normal_angle_error_deg')}")
    print(f"  L angle error              {m['l_angle_error_deg']:.3f} deg "
          f"(MVA x1: {m['l_angle_error_mva_deg']:.2f} deg, tilted by the Hall field)")
    print(f"  guide field                {m['guide_field_nt']:.3f} nT (true "
          f"{m['guide_field_true_nt']:.3f}; error {m['guide_field_error_nt']:+.3f}, limit "
          f"{ACCEPTANCE['guide_field_error_nt']:g}) {ok('guide_field_error_nt')}")
    print(f"  Hall bipolar B_M           {'detected' if m['hall_detected'] else 'not detected'}"
          f", polarity {'correct' if m['hall_polarity_correct'] else 'wrong'}")
    print(f"  IMF clock-angle lag        {m['imf_lag_s']:.2f} s, r = {m['imf_correlation']:.3f} "
          f"(error {m['lag_error_s']:+.2f} s, limit {ACCEPTANCE['lag_error_s']:g}) "
          f"{ok('lag_error_s')}")
    print(f"  escape flux                {m['escape_flux_m2_s']:.3e} m^-2 s^-1 (true "
          f"{m['escape_flux_true_m2_s']:.3e}; error {100 * m['escape_flux_rel_error']:+.1f} %, "
          f"limit {100 * ACCEPTANCE['escape_flux_rel_error']:g} %) {ok('escape_flux_rel_error')}")
    print(f"  half-thickness / v_A / outflow relative errors  "
          f"{100 * m['half_thickness_rel_error']:+.1f} % / "
          f"{100 * m['alfven_speed_rel_error']:+.1f} % "
          f"/ {100 * m['outflow_rel_error']:+.1f} %")
    print("  acceptance: " + ("all passed" if all(m["passed"].values()) else "FAILED"))
    return 0
