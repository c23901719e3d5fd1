"""Benchmark: campaign search wall time (reported, never asserted).

One year of the MEX-like -> TGO-like link (two preset orbits): the chunked search of
:func:`validation.campaign.search_link` (occultation scan + top altitude), serially and on a
local dask cluster, plus the conventional MEX -> Earth link.

    python benchmarks/campaign_bench.py [--days 365] [--workers 2] [--chunk-days 30]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from retrieval import spice
from validation.campaign import search_link
from validation.engine import Engine


def _run(tx, rx, stop, chunk_days, eng, label):
    t0 = time.perf_counter()
    ds = search_link(tx, rx, "2023-01-01", stop, chunk_days=chunk_days, engine=eng,
                     progress=False)
    dt = time.perf_counter() - t0
    print(f"{label:34s} {ds.sizes['event']:6d} events {dt:7.1f} s wall "
          f"{ds.attrs['search_cpu_s']:7.1f} s CPU in tasks, min SZA "
          f"{np.nanmin(ds.sza_deg.values):5.1f} deg, load {os.getloadavg()[0]:.1f}",
          flush=True)
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk-days", type=float, default=30.0)
    ap.add_argument("--serial", action="store_true", help="also time the serial search")
    args = ap.parse_args()
    stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + args.days * 86400.0, 0)
    # warm up: kernels and the orbit SPKs of the span (cached on disk)
    search_link("mex", "tgo", "2023-01-01", "2023-01-02")
    search_link("mex", "earth", "2023-01-01", "2023-01-02")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.serial:
        with Engine(workers=0) as eng:
            _run("mex", "tgo", stop, args.chunk_days, eng,
                 f"mex->tgo {args.days:g} d serial")
    t0 = time.perf_counter()
    with Engine(workers=args.workers) as eng:
        start = time.perf_counter() - t0
        print(f"local cluster start-up {start:.1f} s")
        dt = _run("mex", "tgo", stop, args.chunk_days, eng,
                  f"mex->tgo {args.days:g} d, {args.workers} workers")
        _run("mex", "earth", stop, args.chunk_days, eng,
             f"mex->earth {args.days:g} d, {args.workers} workers")
    print(f"one-year two-orbit search incl. cluster start-up: {dt + start:.1f} s")


if __name__ == "__main__":
    main()
