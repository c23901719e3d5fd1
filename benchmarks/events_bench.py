"""Benchmark: occultation search wall time (reported, never asserted).

    python benchmarks/events_bench.py [--days 365]
"""

from __future__ import annotations

import argparse
import time

from validation.events import search


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=365.0)
    args = ap.parse_args()
    import numpy as np

    from retrieval import spice
    stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + args.days * 86400.0, 0)
    for tx, rx in (("mex", "tgo"), ("maven", "earth")):
        search(tx, rx, "2023-01-01", "2023-01-02")  # warm up: kernels, orbit SPK cache
        t0 = time.perf_counter()
        ds = search(tx, rx, "2023-01-01", stop)
        dt = time.perf_counter() - t0
        print(f"{tx}->{rx} {args.days:g} days: {ds.sizes['event']} events, {dt:.1f} s, "
              f"min SZA {np.nanmin(ds.sza_deg.values):.1f} deg")


if __name__ == "__main__":
    main()
