"""The error-budget engine: seeds, resume after an interrupt, dask equivalence, outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import validation.budget as B
from retrieval.errors import RoharnessError
from validation.cli import main

SMALL = str(Path(__file__).parent / "data" / "budget-small.toml")
DATA_VARS = ("ne_error", "m2_peak_altitude_error_km", "m2_peak_density_rel_error",
             "neutral_temperature_error_k", "tec_rel_error", "ne150_rel_error", "status")


def _same(a: xr.Dataset, b: xr.Dataset):
    for v in DATA_VARS:
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    summary, ds = B.run_budget(SMALL, workers=0, out_dir=out, progress=False,
                               chunk_size=2, return_dataset=True)
    return out, summary, ds


def test_outputs_and_summary_keys(serial_run):
    out, s, ds = serial_run
    for f in ("budget.nc", "summary.json", "report.html"):
        assert (out / f).is_file()
    assert s["sources"] == ["thermal", "parrott", "ephemeris"]
    for src in s["sources"]:
        for k in B.METRICS:
            assert k in s["per_source"][src]
    for k in ("ne_rms_over_peak_100_200km", "m2_peak_altitude_rms_km",
              "m2_peak_density_rel_rms"):
        assert f"total_{k}" in s and f"mc_total_{k}" in s
    assert s["realisations"] == 4 and "elapsed_s" in s
    on_disk = xr.open_dataset(out / "budget.nc")
    assert dict(on_disk.sizes) == {"source": 4, "occultation": 1, "realisation": 4,
                                   "altitude": ds.sizes["altitude"], "member": 3,
                                   "physical_source": 2, "skipped_source": 0}
    assert list(on_disk.source.values) == ["thermal", "parrott", "ephemeris", "all"]
    _same(on_disk, ds)
    assert json.loads((out / "summary.json").read_text())["sources"] == s["sources"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "<script" not in html


def test_total_is_root_sum_square_of_physical_sources(serial_run):
    _, s, _ = serial_run
    # parrott is a recipe: it enters neither total
    assert s["physical_sources"] == ["thermal", "ephemeris"]
    k = "m2_peak_altitude_rms_km"
    expect = np.sqrt(s["per_source"]["thermal"][k] ** 2 + s["per_source"]["ephemeris"][k] ** 2
                     + s["floor"][k] ** 2)
    assert s[f"total_{k}"] == pytest.approx(expect, rel=1e-12)


def test_sources_are_measured_from_the_clean_retrieval(serial_run):
    _, s, ds = serial_run
    assert s["floor"]["failed"] == 0
    # the floor is the clean retrieval's error: recompute it from the stored fields
    fl = ds.floor_m2_peak_altitude_error_km.values
    assert s["floor"]["m2_peak_altitude_rms_km"] == pytest.approx(np.sqrt(np.mean(fl ** 2)))
    src = ds.m2_peak_altitude_error_km.sel(source="thermal").values - fl[:, None]
    ok = ds.status.sel(source="thermal").values == 0
    assert s["per_source"]["thermal"]["m2_peak_altitude_rms_km"] == pytest.approx(
        np.sqrt(np.mean(src[ok] ** 2)))


def test_seeds_do_not_depend_on_chunking(serial_run, tmp_path):
    _, _, ds = serial_run
    _, ds3 = B.run_budget(SMALL, sources=["thermal", "parrott"], workers=0, chunk_size=3,
                          progress=False, return_dataset=True)
    for src in ("thermal", "parrott"):
        _same(ds.sel(source=src), ds3.sel(source=src))


def test_default_chunk_size():
    """Chunks of 5 up to 128 occultation-realisations per source set (small runs keep their
    tasks and checkpoints), ~1/128 of the run beyond, at most 50; Parrott's 70 x 100 -> 50
    (140 tasks per source set)."""
    assert B.default_chunk_size(1, 4) == 5
    assert B.default_chunk_size(1, 640) == 5
    assert B.default_chunk_size(1, 641) == 6
    assert B.default_chunk_size(10, 200) == 16
    assert B.default_chunk_size(70, 100) == 50
    assert B.default_chunk_size(70, 1000) == 50


def test_default_chunking_gives_the_same_numbers(serial_run):
    """The default chunking (here 5 realisations: one task per source set) against chunks
    of 2: the same seeds, the same numbers."""
    _, _, ds = serial_run
    _, dsd = B.run_budget(SMALL, sources=["thermal", "parrott"], workers=0,
                          progress=False, return_dataset=True)
    for src in ("thermal", "parrott"):
        _same(ds.sel(source=src), dsd.sel(source=src))


def test_interrupted_run_resumes_without_recomputing(serial_run, tmp_path, monkeypatch):
    _, _, ref = serial_run
    real = B.chunk_task
    calls = []

    def dying(*args):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(args[2:6])
        return real(*args)

    monkeypatch.setattr(B, "chunk_task", dying)
    with pytest.raises(KeyboardInterrupt):
        B.run_budget(SMALL, workers=0, out_dir=tmp_path, progress=False, chunk_size=2)
    finished = list(calls)
    assert len(finished) == 3
    calls.clear()

    def counting(*args):
        calls.append(args[2:6])
        return real(*args)

    monkeypatch.setattr(B, "chunk_task", counting)
    _, ds = B.run_budget(SMALL, workers=0, out_dir=tmp_path, progress=False, chunk_size=2,
                         return_dataset=True)
    n_chunks = 4 * 2  # 4 source sets x 2 chunks of 2 realisations
    assert len(calls) == n_chunks - 3
    assert not set(map(repr, calls)) & set(map(repr, finished))
    _same(ds, ref)


def test_killed_process_resumes_bit_identical(serial_run, tmp_path):
    """SIGKILL a real `roharness budget` once a known number of Monte Carlo checkpoints
    exist (polling the checkpoint directory, not a delay), restart it: same budget.nc, the
    checkpoints written before the kill are reused, not rewritten."""
    _, _, ref = serial_run
    kill_after = 2  # of the 4 Monte Carlo task checkpoints (one per source set, default
    # chunking; the clean base task comes first)
    cmd = [sys.executable, "-m", "validation", "budget", "--scenario", SMALL, "--workers",
           "0", "-o", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ckpt = tmp_path / "checkpoint"

    def mc_tasks():
        return [p for p in ckpt.rglob("*.pkl")
                if p.name.startswith(("thermal", "all", "parrott", "ephemeris"))]

    deadline = time.time() + 240  # a guard against a hung child, not the trigger
    while time.time() < deadline and proc.poll() is None and len(mc_tasks()) < kill_after:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in ckpt.rglob("*.pkl")}
    # the serial engine writes one task at a time: at most one more finished while polling
    assert kill_after <= len(mc_tasks()) <= kill_after + 1
    assert not (tmp_path / "budget.nc").exists()
    assert main(["budget", "--scenario", SMALL, "--workers", "0", "-o", str(tmp_path)]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in ckpt.rglob("*.pkl")}
    assert len(mc_tasks()) == 4 and len(after) > len(done_before)  # the rest were computed
    assert all(after[k] == v for k, v in done_before.items())  # not rewritten
    _same(xr.open_dataset(tmp_path / "budget.nc"), ref.isel(realisation=slice(None)))


def test_local_cluster_matches_serial(serial_run):
    """Two dask worker processes give the serial engine's numbers, bit for bit."""
    _, _, ref = serial_run
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        _, ds = B.run_budget(SMALL, scheduler=cluster.scheduler_address, progress=False,
                             chunk_size=2, return_dataset=True)
    _same(ds, ref)


def test_cli_json(serial_run, tmp_path, capsys):
    assert main(["budget", "--scenario", SMALL, "--sources", "thermal", "--realisations",
                 "2", "--workers", "0", "-o", str(tmp_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["sources"] == ["thermal"] and s["realisations"] == 2
    k = "m2_peak_altitude_rms_km"
    assert s[f"total_{k}"] == pytest.approx(np.hypot(s["per_source"]["thermal"][k],
                                                     s["floor"][k]))


@pytest.mark.parametrize("argv, words", [
    (["--sources", "thermal,cosmic_rays"], "unknown error source 'cosmic_rays'"),
    (["--sources", "oscillator"], "does not apply"),
    (["--realisations", "0"], "realisations must be 1-100,000"),
    (["--occultations", "0"], "occultations must be >= 1"),
    (["--workers", "-1"], "workers must be >= 0"),
])
def test_bad_input_is_one_sentence(argv, words, tmp_path, capsys):
    assert main(["budget", "--scenario", SMALL, "-o", str(tmp_path), "--workers", "0"]
                + argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and err.count("\n") == 0 and "Traceback" not in err


def test_unreachable_scheduler_is_one_sentence(tmp_path, capsys):
    assert main(["budget", "--scenario", SMALL, "-o", str(tmp_path), "--scheduler",
                 "tcp://127.0.0.1:9"]) == 2
    assert "cannot connect to the dask scheduler" in capsys.readouterr().err


def test_a_failed_forward_model_is_flagged_not_fatal(monkeypatch):
    import synth.observe

    real = synth.observe.simulate

    def sim(scn):
        if scn["event"]["index"] == 1:
            raise RoharnessError("event 1 cannot be simulated")
        return real(scn)

    monkeypatch.setattr(synth.observe, "simulate", sim)
    s, ds = B.run_budget(SMALL, ["thermal"], 2, occultations=2, workers=0, progress=False,
                         return_dataset=True)
    assert s["occultations_failed"] == [{"index": 1, "message": "event 1 cannot be simulated"}]
    assert ds.sizes["occultation"] == 1 and s["per_source"]["thermal"]["failed"] == 0
    monkeypatch.setattr(synth.observe, "simulate", lambda scn: _raise())  # every event fails
    with pytest.raises(RoharnessError, match="no forward model"):
        B.run_budget(SMALL, ["thermal"], 2, workers=0, progress=False)


def _raise():
    raise RoharnessError("no forward model")
