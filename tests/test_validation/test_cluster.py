"""Scale-out on a real dask cluster started from the command line, as on an HPC queue.

A ``dask scheduler`` and two ``dask worker`` processes (one thread each) run as separate
programs; each worker has its own kernel cache (``ROHARNESS_CACHE_DIR``), as on separate
machines, so each generates the project's kernels itself. ``roharness budget --scheduler``
on that cluster must give the in-process (``--workers 0``) budget.nc bit for bit: seeds
derive from (source, occultation, realisation), never from where a task runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from validation.cli import main

distributed = pytest.importorskip("distributed")

SMALL = "tests/test_validation/data/budget-small.toml"
ARGS = ["budget", "--scenario", SMALL, "--sources", "thermal,ephemeris", "--realisations", "3",
        "--occultations", "1", "--json"]


def _wait(what, cond, timeout_s, procs):
    t0 = time.monotonic()
    while not cond():
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead[0]} exited while waiting for {what}")
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"no {what} after {timeout_s} s")
        time.sleep(0.2)


@pytest.fixture
def cli_cluster(tmp_path):
    """(scheduler address, [worker cache dirs]) of a scheduler and two workers."""
    sched_file = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    dask = [sys.executable, "-m", "dask"]
    procs = []

    def start(name, argv, env=None):
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                      env=env, cwd=tmp_path))
        log.close()

    caches = [tmp_path / f"cache-worker-{i}" for i in range(2)]
    try:
        start("scheduler", dask + ["scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(sched_file)])
        _wait("scheduler file", sched_file.exists, 30, procs)
        for i, cache in enumerate(caches):
            env = dict(os.environ, ROHARNESS_CACHE_DIR=str(cache))
            start(f"worker-{i}", dask + [
                "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                "--name", f"worker-{i}", "--local-directory", str(tmp_path / f"dask-{i}")],
                env=env)
        with distributed.Client(scheduler_file=str(sched_file), timeout=30) as client:
            _wait("two workers", lambda: len(client.scheduler_info()["workers"]) == 2, 60,
                  procs)
            address = client.scheduler.address
        yield address, caches
    finally:
        for p in reversed(procs):  # workers first, then the scheduler
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_cli_cluster_matches_in_process(cli_cluster, tmp_path, capsys):
    address, caches = cli_cluster
    assert main(ARGS + ["--scheduler", address, "-o", str(tmp_path / "cluster")]) == 0
    assert main(ARGS + ["--workers", "0", "-o", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    # the forward model ran on a worker, which generated the project's kernels in its own
    # cache (a task may land on either worker, so at least one cache holds them)
    assert any(any(c.rglob("*.bsp")) or any(c.rglob("*.tpc")) for c in caches)
    with xr.open_dataset(tmp_path / "cluster" / "budget.nc") as a, \
            xr.open_dataset(tmp_path / "local" / "budget.nc") as b:
        assert sorted(a.variables) == sorted(b.variables)
        for name in a.variables:
            x, y = a[name].values, b[name].values
            assert x.dtype == y.dtype, name
            if x.dtype.kind == "f":
                np.testing.assert_array_equal(x, y, err_msg=name)  # NaN == NaN, bit for bit
                assert np.array_equal(x.view(np.uint64 if x.itemsize == 8 else np.uint32),
                                      y.view(np.uint64 if y.itemsize == 8 else np.uint32)), name
            else:
                np.testing.assert_array_equal(x, y, err_msg=name)
