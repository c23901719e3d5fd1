"""Horizontal-gradient bias by SZA, and the cost of each error source (reported, never
asserted).

Usage: python benchmarks/gradient_bias.py [--scenarios mex-tgo-uhf,maven-x-oneway]
       [--sza 30,60,85] [--window-days 40] [--perturb-scenario mex-tgo-uhf-drift] [--calls 20]

1. :func:`validation.gradient_study.gradient_bias` per scenario: for each target SZA the
   nearest real event in the window, spherical simulation + gradient perturbation,
   spherical retrieval: N_e RMS error over 100-200 km / peak, M2 peak altitude and density
   errors (and the retrieval's own floor without gradients).
2. Wall time of :func:`synth.error_sources.prepare` and of one
   :func:`synth.error_sources.perturb` call per source (and all sources together) on the
   clean observation of ``--perturb-scenario``: what a 7000-realisation budget pays for
   the perturbations alone (the retrieval per realisation comes on top).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _bias(scenarios, targets, window_days):
    from validation.gradient_study import gradient_bias, summary_rows

    for name in scenarios:
        t0 = time.perf_counter()
        ds = gradient_bias(name, targets, window_days=window_days)
        dt = time.perf_counter() - t0
        print(f"\n{name}: gradient bias ({dt:.0f} s, window {window_days:g} days)")
        print(f"{'target':>6} {'SZA':>6} {'event (UTC)':>24} {'NeRMS/pk':>9} {'max':>7} "
              f"{'dh_M2 km':>9} {'dN_M2 %':>8} {'floor dN %':>10} {'pert/res':>9}")
        for i, r in enumerate(summary_rows(ds)):
            print(f"{r['target_sza_deg']:6.0f} {r['sza_deg']:6.1f} {r['event_time_utc']:>24} "
                  f"{r['ne_rms_over_peak_100_200km']:9.4f} "
                  f"{r['ne_max_abs_over_peak_100_200km']:7.4f} "
                  f"{r['m2_peak_altitude_error_km']:+9.3f} "
                  f"{100 * r['m2_peak_density_rel_error']:+8.2f} "
                  f"{100 * float(ds.m2_peak_density_rel_error_clean.values[i]):+10.3f} "
                  f"{r['perturbation_over_peak_residual']:9.4f}")


def _perturb_cost(name, calls):
    from synth import error_sources as es
    from synth.observe import simulate
    from synth.scenario import load_scenario

    scn = load_scenario(name)
    truth, obs = simulate(scn)
    two_way = "frequency_residual_two_way" in obs.variables
    sources = [s for s in es.ORDER if not (two_way and s in ("oscillator", "drift"))]
    t0 = time.perf_counter()
    prep = es.prepare(scn, truth, obs, sources)
    print(f"\n{name}: prepare (all sources, incl. the gradient model) "
          f"{time.perf_counter() - t0:.2f} s, {obs.sizes['time']} samples")
    for label, members in [(s, [s]) for s in sources] + [("all", sources)]:
        t0 = time.perf_counter()
        for r in range(calls):
            es.perturb(obs, members, scn, prep, np.random.default_rng(r))
        ms = 1e3 * (time.perf_counter() - t0) / calls
        print(f"  perturb {label:10s} {ms:7.2f} ms per call")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="mex-tgo-uhf,maven-x-oneway")
    ap.add_argument("--sza", default="30,60,85")
    ap.add_argument("--window-days", type=float, default=40.0)
    ap.add_argument("--perturb-scenario", default="mex-tgo-uhf-drift")
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    targets = [float(s) for s in args.sza.split(",")]
    _perturb_cost(args.perturb_scenario, args.calls)
    _bias([s for s in args.scenarios.split(",") if s], targets, args.window_days)


if __name__ == "__main__":
    main()
