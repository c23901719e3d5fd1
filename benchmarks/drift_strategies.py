"""Drift-correction strategies side by side on mex-tgo-uhf-drift (I/Q -> N_e), 20 seeds.

Usage: python benchmarks/drift_strategies.py [--seeds 20] [--adev-scales 1,0.3,0.1,0.03,0.01]

The level-2 observation of the scenario is noiseless and seed-independent, so it is
simulated once; per seed and receiver ADEV scale ([oscillator] receiver_adev_scale) the
level-1 record (oscillators, thermal noise) is simulated, the carrier extracted, each
strategy applied (smoothing window from the noise, isotonic repair of the impact
parameter) and the profile inverted and scored. Pass = |M2 density error| <= 5 % and
|M2 altitude error| <= 2 km (issue 4 acceptance).

Also printed, to explain the numbers:

* the Withers (2010) white-noise estimate of the N_e noise per 1-s sample
  (:func:`retrieval.electron_density.withers2010_density_noise`), with the ray's
  measured vertical speed and sigma_f = ADEV(1 s) f;
* the random-walk-FM "bridge" error: a drift pinned above the ionosphere and in the
  transition region (withers2020) cannot follow the unknown random-walk part of the
  receiver frequency in between; for a Brownian frequency of diffusion
  q = 6 sigma_y^2(tau)/tau (random-walk FM, sigma_y^2 = q tau / 6) the error in the middle of
  a gap T is sqrt(q T / 4) f (the Brownian-bridge standard deviation).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from retrieval.drift import correct_drift, tangent_altitude
from retrieval.electron_density import invert_observation, withers2010_density_noise
from retrieval.errors import RoharnessError
from retrieval.iq import level4_observation
from synth.instrument import level1_record
from synth.observe import simulate
from synth.oscillator import PRESETS, adev_from_h
from synth.scenario import load_scenario
from validation.roundtrip import compare

STRATEGIES = ("none", "baseline_poly", "withers2020", "parrott2025")


def _physics(scn, truth, obs2, scale):
    f = scn["link"]["frequency_hz"]
    alt = tangent_altitude(obs2)
    speed = float(np.median(np.abs(np.diff(alt)) / np.diff(obs2["time"].values)))
    h = PRESETS[scn["oscillator"]["receiver_preset"]]["h"]
    adev1 = float(adev_from_h(h, [1.0], 0.1, model="standard")[0]) * scale
    sig_ne = withers2010_density_noise(adev1 * f, f, speed, scn["ionosphere"]["scale_height_km"]
                                       * 1e3, 3389.5e3 + 130e3)
    q = 4.0 * np.pi**2 * h.get("rwfm", 0.0) * scale**2  # S_y = q / (4 pi^2 f^2)
    t = obs2["time"].values
    thr = scn["retrieval"]["threshold_altitude_km"] * 1e3
    gap = float(t[np.argmin(np.abs(alt - 90e3))] - t[np.argmin(np.abs(alt - thr))])
    bridge = np.sqrt(q * gap / 4.0) * f
    peak_res = float(np.max(np.abs(obs2["frequency_residual"].values)))
    return (f"  ADEV(1 s) {adev1:.2e} -> sigma_f {adev1 * f:.3f} Hz/sample; Withers (2010) "
            f"sigma_Ne {sig_ne:.2e} m^-3 = {sig_ne / float(truth.electron_density.max()):.1%}"
            f" of the peak (V {speed:.0f} m/s, H 10 km)\n  random-walk-FM bridge over "
            f"{gap:.0f} s: {bridge:.3f} Hz = {bridge / peak_res:.1%} of the "
            f"{peak_res:.2f} Hz peak residual")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="mex-tgo-uhf-drift")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--adev-scales", default="1",
                    help="comma-separated [oscillator] receiver_adev_scale values")
    args = ap.parse_args(argv)
    scn = load_scenario(args.scenario)
    t0 = time.perf_counter()
    truth, obs2 = simulate(scn)
    print(f"level-2 simulation {time.perf_counter() - t0:.1f} s")
    r = scn["retrieval"]
    kw = dict(threshold_altitude_m=r["threshold_altitude_km"] * 1e3, max_order=r["max_order"],
              smoothing_s="auto" if r["smoothing_s"] is None else r["smoothing_s"])
    for scale in [float(x) for x in args.adev_scales.split(",")]:
        scn.sections["oscillator"]["receiver_adev_scale"] = scale
        rows = {s: [] for s in STRATEGIES}
        t_iq, t_drift, win = [], {s: [] for s in STRATEGIES}, []
        for seed in range(args.seeds):
            scn.sections[""]["seed"] = seed
            t1 = time.perf_counter()
            obs4, _ = level4_observation(level1_record(scn, obs2), obs2)
            t_iq.append(time.perf_counter() - t1)
            for s in STRATEGIES:
                t2 = time.perf_counter()
                try:
                    o5 = correct_drift(obs4, s, **kw)
                    t_drift[s].append(time.perf_counter() - t2)
                    win.append(o5.attrs["drift_smoothing_s"])
                    c = compare(truth, invert_observation(o5))
                    rows[s].append((c["m2_peak_density_rel_error"],
                                    c["m2_peak_altitude_error_km"]))
                except RoharnessError:
                    rows[s].append((np.nan, np.nan))
        osc = scn["oscillator"]
        print(f"\n{scn.name}: receiver {osc['receiver_preset']} x{scale:g} ADEV, C/N0 "
              f"{scn['receiver']['cn0_dbhz']:g} dB-Hz, {args.seeds} seeds; I/Q sim + carrier "
              f"{np.mean(t_iq):.2f} s/seed; smoothing window median {np.median(win):.0f} s")
        print(_physics(scn, truth, obs2, scale))
        print(f"{'strategy':<14} {'med|dN|%':>9} {'p90|dN|%':>9} {'med|dh|km':>10} "
              f"{'p90|dh|km':>10} {'failed':>7} {'pass':>6} {'drift s':>8}")
        for s in STRATEGIES:
            a = np.array(rows[s])
            dn, dh = np.abs(a[:, 0]) * 100, np.abs(a[:, 1])
            ok = np.isfinite(dn)
            npass = int(np.sum(ok & (dn <= 5.0) & (dh <= 2.0)))

            def f(v, q, ok=ok):
                return f"{np.nanpercentile(v, q):.2f}" if ok.any() else "nan"
            tm = f"{np.mean(t_drift[s]):.3f}" if t_drift[s] else "nan"
            print(f"{s:<14} {f(dn, 50):>9} {f(dn, 90):>9} {f(dh, 50):>10} {f(dh, 90):>10} "
                  f"{int((~ok).sum()):>7} {npass:>3}/{args.seeds:<2} {tm:>8}")


if __name__ == "__main__":
    main()
