"""Timing of the inverse Abel transform and of the per-sample bending retrieval.

Run: ``python benchmarks/abel_bench.py [--repeat 7]``. Prints the best-of-``repeat`` wall
time of :func:`retrieval.abel.inverse_abel` at 250, 1000 and 4000 levels (a Chapman-like
bending profile on a uniform grid 0-600 km above Mars), and of
:func:`retrieval.bending.bending_from_doppler` per sample count. Target: <= 10 ms for
1000 levels. Numbers are reported, never asserted (the machine is shared).
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.abel import inverse_abel  # noqa: E402
from retrieval.bending import bending_from_doppler  # noqa: E402

MARS_R = 3389.5e3


def _profile(n):
    a = np.linspace(MARS_R + 60e3, MARS_R + 600e3, n)
    z = (a - MARS_R - 130e3) / 12e3
    alpha = 1e-5 * np.tanh(z) * np.exp(-0.5 * z * z / 4)
    return a, alpha


def bench_abel(levels=(250, 1000, 4000), repeat=7):
    out = {}
    for n in levels:
        a, alpha = _profile(n)
        for top in ("zero", "exponential"):
            if top == "exponential":
                alpha_t = alpha + 1e-9 * np.exp(-(a - a[0]) / 60e3)  # decaying top
            else:
                alpha_t = alpha
            number = max(1, int(2000 / n))
            t = min(timeit.repeat(lambda: inverse_abel(a, alpha_t, top=top), number=number,
                                  repeat=repeat)) / number
            out[(n, top)] = t
    return out


def bench_bending(samples=(1000, 10000), repeat=5):
    rng = np.random.default_rng(0)
    out = {}
    for n in samples:
        r_t = rng.normal(size=(n, 3))
        r_t *= (MARS_R + 5e6) / np.linalg.norm(r_t, axis=1)[:, None]
        r_r = -r_t * 1e4 + rng.normal(size=(n, 3)) * 1e5
        v_t = rng.normal(size=(n, 3)) * 3e3
        v_r = rng.normal(size=(n, 3)) * 3e4
        df = rng.normal(size=n) * 0.1
        t = min(timeit.repeat(lambda: bending_from_doppler(r_t, v_t, r_r, v_r, df, 8.4e9),
                              number=1, repeat=repeat))
        out[n] = t
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    for (n, top), t in bench_abel(repeat=args.repeat).items():
        print(f"inverse_abel  {n:5d} levels  top={top:<11s} {t * 1e3:8.2f} ms")
    for n, t in bench_bending(repeat=args.repeat).items():
        print(f"bending_from_doppler {n:6d} samples        {t * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
