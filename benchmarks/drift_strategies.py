"""Drift-correction strategies side by side on mex-tgo-uhf-drift (I/Q -> N_e), 20 seeds.

Usage: python benchmarks/drift_strategies.py [--seeds 20] [--adev-scale 1.0]

The level-2 observation of the scenario is noiseless and seed-independent, so it is
simulated once; per seed the level-1 record (oscillators, thermal noise) is simulated,
the carrier extracted, each strategy applied and the profile inverted and scored.
Pass = |M2 density error| <= 5 % and |M2 altitude error| <= 2 km (issue 4 acceptance).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from retrieval.drift import correct_drift
from retrieval.electron_density import invert_observation
from retrieval.errors import RoharnessError
from synth.instrument import level1_record
from synth.observe import simulate
from synth.scenario import load_scenario
from validation.iq_path import level4_observation
from validation.roundtrip import compare

STRATEGIES = ("none", "baseline_poly", "withers2020", "parrott2025")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="mex-tgo-uhf-drift")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--adev-scale", type=float, default=None,
                    help="override [oscillator] receiver_adev_scale")
    args = ap.parse_args(argv)
    scn = load_scenario(args.scenario)
    if args.adev_scale is not None:
        scn.sections["oscillator"]["receiver_adev_scale"] = args.adev_scale
    t0 = time.perf_counter()
    truth, obs2 = simulate(scn)
    print(f"level-2 simulation {time.perf_counter() - t0:.1f} s")
    rows = {s: [] for s in STRATEGIES}
    t_iq, t_drift = [], {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        scn.sections[""]["seed"] = seed
        t1 = time.perf_counter()
        iq = level1_record(scn, obs2)
        obs4, _ = level4_observation(iq, obs2)
        t_iq.append(time.perf_counter() - t1)
        for s in STRATEGIES:
            t2 = time.perf_counter()
            try:
                o5 = correct_drift(obs4, s, threshold_altitude_m=scn["retrieval"]
                                   ["threshold_altitude_km"] * 1e3,
                                   max_order=scn["retrieval"]["max_order"])
                c = compare(truth, invert_observation(o5))
                rows[s].append((c["m2_peak_density_rel_error"], c["m2_peak_altitude_error_km"]))
            except RoharnessError:
                rows[s].append((np.nan, np.nan))
            t_drift[s].append(time.perf_counter() - t2)
    osc = scn["oscillator"]
    print(f"{scn.name}: receiver {osc['receiver_preset']} x{osc['receiver_adev_scale']:g} ADEV, "
          f"C/N0 {scn['receiver']['cn0_dbhz']:g} dB-Hz, {args.seeds} seeds; "
          f"I/Q sim + carrier {np.mean(t_iq):.2f} s/seed")
    print(f"{'strategy':<14} {'med|dN|%':>9} {'p90|dN|%':>9} {'med|dh|km':>10} "
          f"{'p90|dh|km':>10} {'failed':>7} {'pass':>6} {'s/run':>6}")
    for s in STRATEGIES:
        a = np.array(rows[s])
        dn, dh = np.abs(a[:, 0]) * 100, np.abs(a[:, 1])
        ok = np.isfinite(dn)
        npass = int(np.sum(ok & (dn <= 5.0) & (dh <= 2.0)))
        f = (lambda v, q: f"{np.nanpercentile(v, q):.2f}" if ok.any() else "nan")
        print(f"{s:<14} {f(dn, 50):>9} {f(dn, 90):>9} {f(dh, 50):>10} {f(dh, 90):>10} "
              f"{int((~ok).sum()):>7} {npass:>3}/{args.seeds:<2} {np.mean(t_drift[s]):6.2f}")


if __name__ == "__main__":
    main()
