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
