"""Benchmark: wall time of a Parrott-scale error budget on 1 and 2 worker processes.

Parrott et al. (2025) processed ~70 dayside mutual-RO profiles 100 times each with 5 %
stochastic noise. This runs the same shape of work: N occultations of the MEX -> TGO UHF
link (dayside events with SZA <= 80 deg at the reference altitude, any kind, from a
two-month window; an event whose tangent point passes 90 deg is flagged and skipped) x M
realisations of the ``parrott`` source, on the local dask cluster with each worker count,
from a cold checkpoint, and prints wall times, the speed-up and the per-realisation cost.

    python benchmarks/budget_bench.py                       # 70 x 100, workers 1 and 2
    python benchmarks/budget_bench.py --occultations 10 --realisations 20 --workers 2

Speed is reported, never asserted (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from synth.scenario import load_scenario
from validation.budget import run_budget


def scenario(name: str):
    scn = load_scenario(name)
    ev = scn["event"]
    ev.update(start_utc="2023-01-01", stop_utc="2023-03-01", kind="any", min_sza_deg=0.0,
              max_sza_deg=80.0, index=0)
    return scn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="mex-tgo-uhf")
    p.add_argument("--occultations", type=int, default=70)
    p.add_argument("--realisations", type=int, default=100)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--sources", default="parrott")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="realisations per task (default: the budget's own rule)")
    args = p.parse_args(argv)
    results = []
    for w in [int(x) for x in args.workers.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = run_budget(scenario(args.scenario), args.sources.split(","),
                           args.realisations, occultations=args.occultations, workers=w,
                           out_dir=tmp, report=False, gradient_sza_deg=(),
                           chunk_size=args.chunk_size)
            wall = time.perf_counter() - t0
        n_ret = args.occultations * args.realisations * len(s["sources"])
        results.append(dict(workers=w, wall_s=wall, retrievals=n_ret,
                            worker_s_per_retrieval=wall * w / n_ret,
                            failed=sum(v["failed"] for v in s["per_source"].values()),
                            m2_peak_density_rel_rms=s["per_source"][s["sources"][0]][
                                "m2_peak_density_rel_rms"]))
        print(json.dumps(results[-1]), flush=True)
    if len(results) > 1:
        print(f"speed-up {results[0]['workers']} -> {results[-1]['workers']} workers: "
              f"{results[0]['wall_s'] / results[-1]['wall_s']:.2f} (cpu_count {os.cpu_count()})")


if __name__ == "__main__":
    main()
