"""Timing of the forward model (synth.raytrace): reported, never asserted.

Run from the project root:  python benchmarks/forward_bench.py [--samples 200] [--repeat 3]

Cases (two-layer Chapman ionosphere M2 + M1, SZA 50 deg, circular orbits built here):
* mutual UHF (437.1 MHz) egress MEX-like (3000 km) -> TGO-like (400 km), tangent 60-400 km:
  exact bent rays and the weak-refraction model;
* X-band spacecraft -> far Earth (2.3e11 m) with the neutral CO2 atmosphere, 40-400 km;
* two-way coherent X up / X + S down.
Times are the best of ``--repeat`` runs after one warm-up (first xarray call imports).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from retrieval.constants import MARS_GM_M3_S2
from retrieval.constants import MARS_MEAN_RADIUS_M as R_M
from synth.ionosphere import ChapmanLayer, NeutralAtmosphere
from synth.raytrace import solve_link, solve_two_way, weak_refraction_residual
from synth.refractivity import refractivity_profile


def circular(radius, phase, t, incl=0.0):
    w = np.sqrt(MARS_GM_M3_S2 / radius**3)
    ang = phase + w * t
    p = radius * np.stack([np.cos(ang), np.sin(ang) * np.cos(incl),
                           np.sin(ang) * np.sin(incl)], axis=1)
    v = radius * w * np.stack([-np.sin(ang), np.cos(ang) * np.cos(incl),
                               np.cos(ang) * np.sin(incl)], axis=1)
    return p, v


def tangent(r_tx, r_rx):
    d = r_rx - r_tx
    e = d / np.linalg.norm(d, axis=1)[:, None]
    u = np.einsum("ij,ij->i", r_tx, e)
    return np.linalg.norm(r_tx - u[:, None] * e, axis=1), u, u + np.linalg.norm(d, axis=1)


def event_times(states_fn, t_scan, lo, hi, n):
    r_tx, _, r_rx, _ = states_fn(t_scan)
    a0, u_t, u_r = tangent(r_tx, r_rx)
    idx = np.flatnonzero((u_t < 0) & (u_r > 0) & (a0 > R_M + lo) & (a0 < R_M + hi))
    breaks = np.flatnonzero(np.diff(idx) > 1)
    first = idx[: breaks[0] + 1] if breaks.size else idx
    return np.linspace(t_scan[first[0]], t_scan[first[-1]], n)


def mutual_states(t):
    return (*circular(R_M + 3000e3, 0.0, t, 0.3), *circular(R_M + 400e3, 2.0, t))


def earth_states(t):
    r_tx, v_tx = circular(R_M + 400e3, 0.0, t, 0.4)
    direction = np.array([np.cos(1.2), np.sin(1.2), 0.1])
    direction /= np.linalg.norm(direction)
    v_e = np.array([-2.0e4, 2.2e4, 1.0e3])
    r_rx = 2.3e11 * direction + t[:, None] * v_e
    return r_tx, v_tx, r_rx, np.broadcast_to(v_e, r_rx.shape).copy()


def best_of(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.samples
    layers = [ChapmanLayer("M2", 1.5e11, 125e3, 10e3), ChapmanLayer("M1", 7e10, 105e3, 8e3)]
    neutral = NeutralAtmosphere(2.1e23, 11e3)

    t0 = time.perf_counter()
    uhf = refractivity_profile(layers, 50.0, 437.1e6)
    t_profile = time.perf_counter() - t0

    t_mut = event_times(mutual_states, np.arange(0.0, 20000.0, 1.0), 60e3, 400e3, n)
    st_mut = mutual_states(t_mut)
    rows = [("profile build (2 layers, Ch tables)", t_profile, None)]
    dt, ds = best_of(lambda: solve_link(*st_mut, 437.1e6, uhf), args.repeat)
    rows.append((f"UHF mutual exact, {n} samples", dt, ds))
    dt, wk = best_of(lambda: weak_refraction_residual(*st_mut, 437.1e6, uhf), args.repeat)
    rows.append((f"UHF mutual weak, {n} samples", dt, wk))
    diff = np.nanmax(np.abs(ds.frequency_residual.values - wk.frequency_residual.values))
    peak = np.nanmax(np.abs(ds.frequency_residual.values))

    t_e = event_times(earth_states, np.arange(0.0, 8000.0, 0.5), 40e3, 400e3, n)
    st_e = earth_states(t_e)
    xband = refractivity_profile(layers, 60.0, 8.4e9, neutral=neutral)
    dt, dx = best_of(lambda: solve_link(*st_e, 8.4e9, xband), args.repeat)
    rows.append((f"X one-way to Earth exact (+CO2), {n} samples", dt, dx))

    def profile_for_freq(f):
        return refractivity_profile(layers, 60.0, f, neutral=neutral)

    r_sc, v_sc, r_st, v_st = st_e
    dt, d2 = best_of(lambda: solve_two_way(r_st, v_st, r_sc, v_sc, r_st, v_st, 7.16e9,
                                           profile_for_freq), args.repeat)
    rows.append((f"two-way X up, X+S down, {n} samples", dt, d2))

    print(f"{'case':48s} {'time [s]':>9s} {'ms/sample':>10s}")
    for name, dt, _ in rows:
        per = f"{1e3 * dt / n:10.2f}" if "samples" in name else f"{'':10s}"
        print(f"{name:48s} {dt:9.3f} {per}")
    print(f"UHF: peak |residual| {peak:.4f} Hz, max |exact - weak| {diff:.2e} Hz "
          f"({diff / peak:.2%}); statuses {np.unique(ds.status.values).tolist()}")
    print(f"X one-way: peak |residual| {np.nanmax(np.abs(dx.frequency_residual.values)):.4f} Hz")


if __name__ == "__main__":
    main()
