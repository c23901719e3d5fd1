"""validation.engine: checkpointed task maps, serial and on dask worker processes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from retrieval.errors import RoharnessError
from validation.engine import Engine


def draw(seed, n):
    """A deterministic task: its result depends on its arguments only."""
    return np.random.default_rng(seed).normal(size=n)


def pid_task(_):
    return os.getpid()


def test_serial_map_checkpoints_and_resumes(tmp_path):
    tasks = {f"t{i}": (i, 3) for i in range(5)}
    with Engine(workers=0) as eng:
        first = eng.map(draw, tasks, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"t{i}.pkl" for i in range(5)]
    calls = []

    def spy(seed, n):
        calls.append(seed)
        return draw(seed, n)

    (tmp_path / "t3.pkl").unlink()  # as if the run had been killed before t3 finished
    with Engine(workers=0) as eng:
        again = eng.map(spy, tasks, tmp_path, progress=False)
    assert calls == [3]
    assert list(again) == list(tasks)
    for k in tasks:
        np.testing.assert_array_equal(first[k], again[k])


def test_local_processes_give_the_serial_results():
    tasks = {f"t{i}": (i, 4) for i in range(6)}
    with Engine(workers=0) as eng:
        ref = eng.map(draw, tasks, progress=False)
    with Engine(workers=2) as eng:
        assert "2 worker process" in eng.description
        out = eng.map(draw, tasks, progress=False)
        pids = set(eng.map(pid_task, {f"p{i}": (i,) for i in range(8)}, progress=False).values())
    assert os.getpid() not in pids  # tasks ran in worker processes, not in this one
    for k in tasks:
        np.testing.assert_array_equal(ref[k], out[k])


def _worker_settings():
    import dask
    return (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            dask.config.get("distributed.worker.profile.enabled"),
            os.environ.get("OMP_NUM_THREADS"))


def test_local_workers_start_without_the_slow_settings():
    """dask's nanny exports MALLOC_TRIM_THRESHOLD_=65536, which made every large temporary
    an mmap (base tasks 2.5-4x slower in a worker), and samples every task's stack for its
    profiler: the engine's workers have neither, and keep dask's BLAS thread limit, even
    when this process's environment has the variable (a nanny started earlier in this
    process without the engine's settings writes it there)."""
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
    try:
        with Engine(workers=1) as eng:
            seen = list(eng.client.run(_worker_settings).values())
        assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # restored for the caller
    finally:
        if saved is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    assert seen == [(None, False, "1")]


@pytest.mark.parametrize("workers", [0, 2])
def test_submitted_tasks_gathered_after_another_map(tmp_path, workers):
    """Engine.submit starts tasks that are gathered later (beside other maps): the results
    and checkpoints are those of map, serially and on worker processes."""
    tasks = {f"s{i}": (10 + i, 3) for i in range(3)}
    with Engine(workers=0) as eng:
        ref = eng.map(draw, tasks, progress=False)
    with Engine(workers=workers) as eng:
        pending = eng.submit(draw, tasks, tmp_path)
        other = eng.map(draw, {"o": (99, 2)}, progress=False)
        out = pending.gather(progress=False)
    assert list(out) == list(tasks)
    for k in tasks:
        np.testing.assert_array_equal(ref[k], out[k])
    np.testing.assert_array_equal(other["o"], draw(99, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"s{i}.pkl" for i in range(3)]


def pick(shared, key):
    return shared[key]


def test_shared_objects_with_the_same_keys_stay_distinct():
    """Regression: dask names scattered dict values after the dict's keys."""
    objs = [{"truth": i, "obs": -i} for i in range(3)]
    with Engine(workers=2) as eng:
        shared = [eng.share(o) for o in objs]
        out = eng.map(pick, {f"t{i}": (shared[i], "truth") for i in range(3)}, progress=False)
    assert [out[f"t{i}"] for i in range(3)] == [0, 1, 2]


def test_bad_task_key_and_worker_count():
    with pytest.raises(RoharnessError, match="workers must be >= 0"):
        Engine(workers=-2)
    with Engine(workers=0) as eng, pytest.raises(ValueError, match="task key"):
        eng.map(draw, {"a/b": (1, 1)})


def test_resume_is_announced_on_stderr(tmp_path, capsys):
    tasks = {f"t{i}": (i, 3) for i in range(4)}
    with Engine(workers=0) as eng:
        eng.map(draw, tasks, tmp_path, progress=False)
    assert "resumed" not in capsys.readouterr().err  # a fresh run says nothing
    (tmp_path / "t1.pkl").unlink()
    with Engine(workers=0) as eng:
        eng.map(draw, tasks, tmp_path, progress=False)
    assert capsys.readouterr().err == f"roharness: resumed 3 of 4 tasks from {tmp_path}\n"


def test_progress_lines_when_not_a_terminal():
    import io

    from validation.progress import Progress

    out = io.StringIO()  # not a TTY
    p = Progress("work", stream=out, interval_s=0.0)
    p(0.25)
    p(0.5)
    p(1.0)
    p.close()
    assert out.getvalue().splitlines() == ["work: 25 % after 0 s", "work: 50 % after 0 s",
                                           "work: 100 % after 0 s"]
    quiet = io.StringIO()
    p = Progress("work", stream=quiet)  # a short run (< 10 s) adds nothing to a log
    p(0.5)
    p(1.0)
    p.close()
    assert quiet.getvalue() == ""


def test_workers_capped_and_scheduler_checked(capsys):
    from validation.limits import cores

    eng = Engine(workers=cores() + 998)
    assert eng.workers == cores()
    assert capsys.readouterr().err == (f"roharness: note: {cores() + 998} workers capped at "
                                       f"the {cores()} core(s) of this machine.\n")
    for bad in ("foo", "tcp://host", "host:0", "host:99999", "http://x:1", ""):
        with pytest.raises(RoharnessError, match="not a dask scheduler address"):
            Engine(scheduler=bad)
    assert Engine(scheduler="tcp://10.0.0.5:8786").scheduler == "tcp://10.0.0.5:8786"


@pytest.mark.slow
def test_ctrl_c_ends_quietly_keeps_checkpoints_and_resumes(tmp_path, capsys):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) of a real
    `roharness budget` on two dask worker processes, once a known number of Monte Carlo
    checkpoints exist (polled): one line on stderr, the checkpoints survive, a rerun
    resumes them."""
    import signal
    import subprocess
    import sys
    import time

    from validation.cli import main

    args = ["budget", "--scenario", "mex-tgo-uhf", "--sources", "thermal", "--realisations",
            "60", "--gradient-sza", "none", "-o", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "validation", *args, "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    ckpt = tmp_path / "checkpoint"

    def mc_tasks():
        return [p for p in ckpt.rglob("*.pkl") if not p.name.startswith("base")]

    interrupt_after = 3
    deadline = time.time() + 240  # a guard against a hung child, not the trigger
    while time.time() < deadline and proc.poll() is None and len(mc_tasks()) < interrupt_after:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    kept = {p.name for p in mc_tasks()}
    assert proc.returncode == 130
    # progress lines ("budget: ... % after N s", every 10 s when not on a terminal) aside,
    # the interrupt is one line: no traceback from this process or from the workers
    lines = [ln for ln in err.splitlines() if " % after " not in ln]
    assert lines == ["roharness: interrupted; finished work is kept."], err
    assert len(kept) >= interrupt_after
    assert not (tmp_path / "budget.nc").exists()
    capsys.readouterr()
    assert main([*args, "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "roharness: resumed " in err and f"from {ckpt}" in err
    n_resumed = int(err.split("roharness: resumed ")[-1].split()[0])
    assert n_resumed >= len(kept)
    assert kept <= {p.name for p in mc_tasks()}
