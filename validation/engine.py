"""Task engine of the Monte Carlo sweeps: dask.distributed workers, streamed checkpoints.

Budgets, campaign trade studies and the gate run many independent tasks (a base simulation
per occultation, a block of noise realisations per error source). :class:`Engine` runs them

* on a local dask.distributed cluster of worker *processes* (one thread each, one per core
  by default). CSPICE keeps one global kernel pool per process and is not thread-safe, so
  every SPICE call happens in a worker process that loads its kernels once
  (:func:`retrieval.spice.ensure_kernels` is idempotent per process), never in threads
  sharing a pool;
* or on a running dask.distributed scheduler given by its address (``--scheduler``);
* or in-process and serially (``workers=0``: tests, the gate, debugging).

Results stream into a checkpoint directory as tasks finish: one pickle per task key,
written atomically (:func:`retrieval.fileio.atomic_path`). A run restarted with the same
tasks loads the finished keys and computes only the rest, so an interrupted run (Ctrl-C,
a killed process) loses no finished work. Tasks must be deterministic functions of their
arguments (seeds are arguments, never worker state), so results do not depend on the
number of workers or on which worker ran what.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import signal
import sys
from pathlib import Path

from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path
from validation.progress import Progress

_KEY = re.compile(r"^[A-Za-z0-9_.=-]+$")

#: dask configuration of the local cluster's worker processes. dask's nanny exports
#: MALLOC_TRIM_THRESHOLD_=65536 to its workers (to hand freed memory back to the OS at
#: once); any explicit trim threshold also switches off glibc's dynamic mmap threshold, so
#: every temporary array above 128 KiB is mmap'ed and unmapped again and its pages faulted
#: in on every use. The forward model's ray integrals and the Abel blocks allocate such
#: temporaries all the time: measured (2 cores, 12 MEX -> TGO base tasks of a Parrott-scale
#: budget) 0.44-1.30 s of CPU per task with the variable against 0.16-0.29 s without it.
#: ``None`` removes the variable (dask's documented way to unset it); the BLAS thread
#: limits stay. The workers' statistical profiler (the dashboard's "Profile" page, which
#: samples every task's stack every 10 ms) is off: a Parrott-scale budget took 0.94x the
#: time without it (interleaved A/B, 3 pairs, 0.90-1.09). The nanny hands this
#: configuration to the worker processes it spawns. Workers started outside roharness
#: (``--scheduler``) keep their own settings (README: set
#: ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_: null``).
_WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                   "distributed.worker.profile.enabled": False}


def _load(path: Path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while child processes are started (main thread only)."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _without_trim_env():
    """MALLOC_TRIM_THRESHOLD_ out of this process's environment while workers are spawned
    (restored after). A nanny started earlier in this process without
    :data:`_WORKER_ENVIRON` (another LocalCluster, e.g. in a notebook) writes dask's value
    into ``os.environ``, and the workers would inherit it from there."""
    saved = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved


def _save(path: Path, obj) -> None:
    with atomic_path(path, suffix=".pkl") as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


class Engine:
    """Run independent tasks on dask workers (or serially), checkpointing each result.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running dask.distributed scheduler (e.g. ``tcp://10.0.0.5:8786``).
    workers : int, optional
        Local worker processes (default: the number of CPU cores); 0 runs in-process. More
        than the cores are capped at the cores, with a note on stderr
        (:func:`validation.limits.cap_workers` says why).

    Use as a context manager; the local cluster is shut down on exit. Local workers ignore
    SIGINT: a Ctrl-C reaches this process only, which cancels what is running, keeps the
    finished (checkpointed) tasks and shuts the cluster down quietly.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        from validation.limits import cap_workers, check_scheduler, cores

        self.scheduler = check_scheduler(scheduler)
        workers = cap_workers(workers, self.scheduler)
        self.workers = cores() if workers is None else int(workers)
        self.client = None
        self._cluster = None

    @property
    def serial(self) -> bool:
        return self.client is None

    @property
    def description(self) -> str:
        if self.scheduler:
            return f"dask scheduler {self.scheduler}"
        if self.serial:
            return "in-process (serial)"
        return f"local dask cluster, {self.workers} worker process(es)"

    def __enter__(self):
        if self.scheduler is None and self.workers == 0:
            return self
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout="5s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise RoharnessError(f"cannot connect to the dask scheduler at "
                                     f"'{self.scheduler}' ({exc}); expected the address "
                                     "of a running dask.distributed scheduler") from None
        else:
            # worker processes inherit an ignored SIGINT (it survives exec): the terminal's
            # Ctrl-C goes to the whole process group, and only this process should act on it
            with _sigint_ignored(), dask.config.set(_WORKER_ENVIRON), _without_trim_env():
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                             processes=True, dashboard_address=":0",
                                             silence_logs=logging.ERROR)
            self.client = Client(self._cluster)
        return self

    def __exit__(self, *exc):
        # workers reporting their closed heartbeat connections while the cluster shuts
        # down are not errors of the run: keep them off the user's terminal
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            if self.client is not None:
                self.client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            quiet.setLevel(level)
            self.client = self._cluster = None
        return False

    def share(self, obj):
        """Make ``obj`` available to tasks once (scattered to the workers on dask)."""
        if self.serial:
            return obj
        # wrapped in a list: dask scatters a dict per value and names the futures after
        # its KEYS, so two shared dicts with the same keys would overwrite each other
        return self.client.scatter([obj], broadcast=False, hash=False)[0]

    def map(self, fn, tasks: dict, checkpoint_dir=None, label: str = "",
            progress: bool | None = None) -> dict:
        """Run ``fn(*args)`` for every ``key: args`` of ``tasks``; results by key.

        Parameters
        ----------
        fn : callable
            A module-level (picklable) function.
        tasks : dict
            Task key (letters, digits, ``_.=-``) -> tuple of arguments (may contain objects
            returned by :meth:`share`).
        checkpoint_dir : path, optional
            Results are written there as ``<key>.pkl`` as they finish; keys already there
            are loaded instead of recomputed.
        label : str
            Progress-bar label.
        progress : bool, optional
            Force the progress bar on or off (default: on a terminal only).

        Returns
        -------
        dict
            ``key -> result`` in the order of ``tasks``.
        """
        return self.submit(fn, tasks, checkpoint_dir).gather(label, progress)

    def submit(self, fn, tasks: dict, checkpoint_dir=None) -> Pending:
        """Start the tasks of :meth:`map` without waiting for them.

        On dask the tasks go to the workers now, so that they run while this process
        submits and gathers others (e.g. a long independent study beside the base tasks);
        in-process they run when :meth:`Pending.gather` is called. The results are those of
        :meth:`map` (tasks are deterministic functions of their arguments).

        Returns
        -------
        Pending
            ``.gather(label, progress)`` waits for the results and returns them by key.
        """
        for key in tasks:
            if not _KEY.match(key):
                raise ValueError(f"task key {key!r} has characters outside [A-Za-z0-9_.=-]")
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        done = {}
        if ckpt is not None:
            ckpt.mkdir(parents=True, exist_ok=True)
            for key in tasks:
                f = ckpt / f"{key}.pkl"
                if f.is_file():
                    done[key] = _load(f)
        todo = [k for k in tasks if k not in done]
        if done:
            sys.stderr.write(f"roharness: resumed {len(done)} of {len(tasks)} tasks from "
                             f"{ckpt}\n")
        futures = None
        if not self.serial and todo:
            futures = {self.client.submit(fn, *tasks[k], pure=False): k for k in todo}
        return Pending(self, fn, tasks, ckpt, done, todo, futures)


class Pending:
    """Tasks started by :meth:`Engine.submit`; :meth:`gather` collects them."""

    def __init__(self, engine, fn, tasks, ckpt, done, todo, futures):
        self._engine, self._fn, self._tasks, self._ckpt = engine, fn, tasks, ckpt
        self._done, self._todo, self._futures = done, todo, futures

    def gather(self, label: str = "", progress: bool | None = None) -> dict:
        """Wait for every task (checkpointing each as it finishes); results by key, in the
        order of the tasks."""
        tasks, ckpt, done, todo = self._tasks, self._ckpt, self._done, self._todo
        bar = Progress(label or "tasks", enabled=progress)
        n_all = max(len(tasks), 1)
        bar(len(done) / n_all)

        def finish(key, result):
            if ckpt is not None:
                _save(ckpt / f"{key}.pkl", result)
            done[key] = result
            bar(len(done) / n_all)

        if self._futures is None:
            for key in todo:
                if key not in done:
                    finish(key, self._fn(*tasks[key]))
        else:
            from distributed import as_completed

            futures = self._futures
            try:
                for fut in as_completed(list(futures)):
                    finish(futures[fut], fut.result())
            finally:
                self._engine.client.cancel([f for f in futures if not f.done()])
        bar.close()
        return {k: done[k] for k in tasks}
