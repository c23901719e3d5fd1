"""Benchmark: occultation search time (reported, never asserted).

    python benchmarks/events_bench.py [--days 365]

Prints, per link, the events found, the CPU time of the search (``time.process_time``: the
machine is shared, so wall time is not a measure of the code) and its wall time, and the
ephemeris epochs the search evaluated (a deterministic figure of the algorithm's work).
"""

from __future__ import annotations

import argparse
import time

from validation.events import search


def count_epochs(fn, *args, **kwargs):
    """Run ``fn`` and count the epochs passed to :func:`retrieval.spice.states`."""
    from retrieval import spice

    seen = [0]
    original = spice.states

    def counted(target, et, *a, **k):
        seen[0] += len(et) if hasattr(et, "__len__") else 1
        return original(target, et, *a, **k)

    spice.states = counted
    try:
        return fn(*args, **kwargs), seen[0]
    finally:
        spice.states = original


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=365.0)
    args = ap.parse_args()
    import numpy as np

    from retrieval import spice
    stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + args.days * 86400.0, 0)
    for tx, rx in (("mex", "tgo"), ("maven", "earth")):
        search(tx, rx, "2023-01-01", "2023-01-02")  # warm up: kernels, orbit SPK cache
        c0, w0 = time.process_time(), time.perf_counter()
        ds = search(tx, rx, "2023-01-01", stop)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        _, epochs = count_epochs(search, tx, rx, "2023-01-01", stop)
        print(f"{tx}->{rx} {args.days:g} days: {ds.sizes['event']} events, CPU {cpu:.2f} s "
              f"(wall {wall:.2f} s), {epochs} ephemeris epochs, "
              f"min SZA {np.nanmin(ds.sza_deg.values):.1f} deg")


if __name__ == "__main__":
    main()
