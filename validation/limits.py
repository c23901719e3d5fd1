"""Work and memory estimates of long runs, the limits above which they are refused, and the
checks of the resources a command is given (workers, scheduler address, output paths).

Before a budget, a campaign, a requirement search or an event search starts, its work is
estimated as *task count x measured per-task cost* and its memory as *items kept x measured
bytes per item* (plus one worker process per worker). A run estimated above
:data:`TIME_LIMIT_S` of wall time (2 h), or above :data:`MEMORY_FRACTION` of this machine's
RAM (a quarter) or the memory available right now, is refused with one sentence giving the estimate
and the flag that overrides it (``--force``; in Python, ``with limits.forced():``).

Per-task costs (one process, serial, warm kernels; ``python /tmp/measure.py`` calling
:func:`validation.budget.base_task` and :func:`validation.budget.chunk_task` with 5
realisations per source, and :func:`validation.events.search`; 2-core x86-64 VM, 23 GB RAM,
shared with other jobs, 2025-11):

* budget base task (simulate + prepare + clean retrieval), ``mex-tgo-uhf-drift``: 4.5 s
  cold, 2.2 s warm; ``mex-tgo-uhf``: 3.0 / 2.7 s -> :data:`BASE_TASK_S` = 4.5 s;
* one realisation (perturb + retrieve + score): 0.12-0.15 s per source on
  ``mex-tgo-uhf-drift``, 0.05-0.075 s on ``mex-tgo-uhf`` -> :data:`REALISATION_S` = 0.15 s
  (the slowest measured; plug-in retrievals run in their own processes and are slower:
  the estimate is a lower bound for them);
* one realisation's result: 9.6 kB pickled per 5 realisations -> :data:`REALISATION_BYTES`
  = 2 kB, times :data:`ASSEMBLY_FACTOR` = 3 (results dict, Dataset, netCDF/summary copies);
* one worker process: 250 MB resident (``ru_maxrss`` after a budget base task);
* event search MEX -> TGO at a 60 s step: 0.116 s and 0.52 MB (peak, tracemalloc) per day
  of window over 30 days; 0.154 s and 0.48 MB per day over 365 days (RSS 150 -> 307 MB:
  0.47 MB per day) -> :data:`SEARCH_S_PER_DAY` = 0.16 s, :data:`SEARCH_BYTES_PER_DAY`
  = 0.55 MB, at a 60 s step (the grid and the state arrays scale as 1/step).

The estimates are rough (factor ~2: other scenarios, other machines); the limits are meant
to stop runs of hours or of tens of GB, not to predict run times.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import RoharnessError

#: Longest estimated wall time run without ``--force`` [s] (2 h on the local machine).
TIME_LIMIT_S = 2 * 3600.0
#: Largest fraction of the machine's physical RAM an estimated run may take without --force:
#: a quarter, not a half, because the machine is shared and the memory figures are linear
#: extrapolations from runs 20-500x smaller (a 50-year event search, estimated at 10 GB,
#: was reported failing with MemoryError at 5.5 GB resident on this 23 GB machine).
MEMORY_FRACTION = 0.25

#: Budget base task (forward model + error-source preparation + clean retrieval) [s].
BASE_TASK_S = 4.5
#: One Monte Carlo realisation (perturb + retrieve + score) [s].
REALISATION_S = 0.15
#: One realisation's result as kept in memory [bytes].
REALISATION_BYTES = 2e3
#: Copies of the results alive while a run assembles and writes them.
ASSEMBLY_FACTOR = 3.0
#: Resident memory of one worker process [bytes].
WORKER_BYTES = 250e6
#: Event search time per day of window at a 60 s step [s].
SEARCH_S_PER_DAY = 0.16
#: Event search peak memory per day of window at a 60 s step [bytes].
SEARCH_BYTES_PER_DAY = 0.55e6
#: Step at which the two search figures were measured [s].
SEARCH_STEP_S = 60.0

_FORCED = contextvars.ContextVar("roharness_limits_forced", default=False)


@contextlib.contextmanager
def forced(on: bool = True):
    """Within this block, estimates above the limits are run instead of refused."""
    token = _FORCED.set(bool(on))
    try:
        yield
    finally:
        _FORCED.reset(token)


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def memory_bytes() -> tuple[float, float]:
    """(physical RAM, memory available now) [bytes]; inf if unknown."""
    total = avail = math.inf
    try:
        with open("/proc/meminfo") as fh:
            info = {ln.split(":")[0]: float(ln.split()[1]) * 1024 for ln in fh if ":" in ln}
        total = info.get("MemTotal", total)
        avail = info.get("MemAvailable", avail)
    except (OSError, ValueError, IndexError):
        try:
            total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            pass
    return total, avail


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 4 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _size(b: float) -> str:
    return f"{b / 1e9:.1f} GB" if b >= 1e9 else f"{b / 1e6:.0f} MB"


@dataclass
class Estimate:
    """Estimated work of a run: ``what`` (e.g. ``budget``), ``tasks``, CPU and wall time
    [s], peak memory [bytes], and the number of parallel workers the wall time assumes
    (None: a scheduler of unknown size, no wall-time estimate)."""

    what: str
    tasks: int
    cpu_s: float
    memory_bytes: float
    workers: int | None
    critical_s: float = 0.0  # work that cannot run in parallel (e.g. bisection steps)

    @property
    def wall_s(self) -> float:
        if self.workers is None:
            return math.nan
        return self.critical_s + (self.cpu_s - self.critical_s) / max(1, self.workers)

    def text(self) -> str:
        if self.workers is None:
            t = f"{_duration(self.cpu_s)} of CPU time"
        else:
            t = f"about {_duration(self.wall_s)} on {self.workers} worker(s)"
        return f"{self.tasks} tasks, {t}, {_size(self.memory_bytes)} of memory"


def check(est: Estimate) -> Estimate:
    """Refuse (one sentence) an estimate above the limits, unless :func:`forced`."""
    if _FORCED.get():
        return est
    total, avail = memory_bytes()
    why = None
    if est.workers is not None and est.wall_s > TIME_LIMIT_S:
        why = f"more than the {_duration(TIME_LIMIT_S)} limit"
    elif est.memory_bytes > MEMORY_FRACTION * total:
        why = f"more than {100 * MEMORY_FRACTION:.0f} % of this machine's {_size(total)} of RAM"
    elif est.memory_bytes > avail:
        why = f"more than the {_size(avail)} of memory available now"
    if why:
        raise RoharnessError(
            f"this {est.what} is estimated at {est.text()}, {why}; reduce it (fewer "
            "realisations, sources, occultations or a shorter window) or pass --force to "
            "run it anyway")
    return est


def parallel(workers, scheduler) -> int | None:
    """Workers the wall-time estimate assumes: None with a scheduler (its size is unknown
    before connecting), 1 in-process, else the local worker count (capped at the cores)."""
    if scheduler:
        return None
    if workers is None:
        return cores()
    return max(1, min(int(workers), cores()))


def budget_estimate(n_occultations: int, realisations: int, stochastic, n_gradient: int = 0,
                    workers=None, scheduler=None) -> Estimate:
    """A Monte Carlo error budget: a base task per occultation, ``realisations`` per
    stochastic source set (``stochastic``: one bool per set; deterministic sets run one)
    per occultation, and ``n_gradient`` gradient-study simulations."""
    from validation.budget import default_chunk_size

    per_occ = sum(realisations if s else 1 for s in stochastic)
    n_real = n_occultations * per_occ
    chunk = default_chunk_size(n_occultations, realisations)
    tasks = n_occultations + sum(math.ceil(realisations / chunk) if s else 1
                                 for s in stochastic) * n_occultations + n_gradient
    cpu = (n_occultations + n_gradient) * BASE_TASK_S + n_real * REALISATION_S
    w = parallel(workers, scheduler)
    mem = n_real * REALISATION_BYTES * ASSEMBLY_FACTOR + (w or 1) * WORKER_BYTES
    return Estimate("budget", int(tasks), cpu, mem, w)


def check_budget(*args, **kwargs) -> Estimate:
    """:func:`check` of :func:`budget_estimate` (the hook of ``run_budget``)."""
    return check(budget_estimate(*args, **kwargs))


def search_estimate(start_et: float, stop_et: float, step_s: float = 60.0, *,
                    chunk_days: float | None = None, workers=None, scheduler=None,
                    what: str = "event search") -> Estimate:
    """An occultation search over a window: time and memory per day of window at the
    measured step, scaled by 1/step; with ``chunk_days`` the memory is one chunk's."""
    days = max(stop_et - start_et, 0.0) / 86400.0
    scale = SEARCH_STEP_S / step_s if step_s > 0 else 1.0
    cpu = days * SEARCH_S_PER_DAY * scale
    mem_days = min(days, chunk_days) if chunk_days else days
    w = parallel(workers, scheduler) if chunk_days else 1
    mem = mem_days * SEARCH_BYTES_PER_DAY * scale * (w or 1) + WORKER_BYTES
    tasks = math.ceil(days / chunk_days) if chunk_days else 1
    return Estimate(what, max(1, int(tasks)), cpu, mem, w)


def check_search(start_utc, stop_utc, step_s: float = 60.0) -> Estimate:
    """:func:`check` of an event search given by UTC strings (``roharness events``)."""
    from retrieval import spice

    t0, t1 = spice.utc_to_et(start_utc), spice.utc_to_et(stop_utc)
    return check(search_estimate(t0, t1, step_s))


def check_campaign(c, start_utc, stop_utc, accuracy: bool = True, workers=None,
                   scheduler=None) -> Estimate:
    """:func:`check` of a campaign (the hook of ``run_campaign``): the search of the link
    (and of the comparison link), and with ``accuracy`` one budget of ``subset`` events
    (and of ``check`` events) per distinct design."""
    import json

    from retrieval import spice

    span = c["span"]
    t0, t1 = spice.utc_to_et(start_utc), spice.utc_to_et(stop_utc)
    est = search_estimate(t0, t1, span["step_s"], chunk_days=span["chunk_days"],
                          workers=workers, scheduler=scheduler, what="campaign")
    if c["comparison"]["enabled"]:
        est.cpu_s *= 2
        est.tasks *= 2
    if accuracy:
        acc = c["accuracy"]
        physics = {json.dumps({k: v for k, v in d.items() if k not in ("name", "per_week")},
                              sort_keys=True, default=str) for d in c.designs}
        n_sets = len(acc["sources"] or ()) + 1 if acc["sources"] else 8
        check_real = acc.get("check_realisations") or acc["realisations"]
        for n_occ, n_real in ((acc["subset"], acc["realisations"]),
                              (acc["check"], check_real)):
            if n_occ:
                b = budget_estimate(n_occ, n_real, [True] * n_sets, 0, workers, scheduler)
                est.cpu_s += len(physics) * b.cpu_s
                est.tasks += len(physics) * b.tasks
                est.memory_bytes = max(est.memory_bytes, b.memory_bytes)
    return check(est)


def check_requirement(evaluations: int, realisations: int, workers=None,
                      scheduler=None, scan_points: int = 6) -> Estimate:
    """:func:`check` of a requirement search (the hook of ``find_requirement``): one task
    per evaluated value (a base simulation and ``realisations`` with every source on);
    the ``scan_points`` scan runs in parallel, the bisections one after another."""
    per = BASE_TASK_S + realisations * REALISATION_S
    w = parallel(workers, scheduler)
    mem = evaluations * realisations * REALISATION_BYTES * ASSEMBLY_FACTOR \
        + (w or 1) * WORKER_BYTES
    serial = max(0, evaluations - scan_points) * per
    return check(Estimate("requirement search", int(evaluations), evaluations * per, mem, w,
                          critical_s=serial))


# --- resources given on the command line ------------------------------------------------

_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?"
                      r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                      r":(\d{1,5})/?$")


def check_scheduler(address) -> str | None:
    """A dask scheduler address (``[tcp://]HOST:PORT``), or one sentence."""
    if address is None:
        return None
    m = _ADDRESS.match(str(address).strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise RoharnessError(
            f"scheduler address '{address}' is not a dask scheduler address; expected "
            "[tcp://]HOST:PORT, e.g. tcp://10.0.0.5:8786")
    return str(address).strip()


def cap_workers(workers, scheduler=None, stream=None) -> int | None:
    """Local worker processes: refused below 0, capped at the cores with a note on stderr.

    More worker processes than cores cannot run faster (each task is CPU-bound in one
    thread) and each takes ~250 MB, so a larger count is capped rather than refused: the
    run the user asked for still happens, and a script written for a bigger machine keeps
    working. With a scheduler the workers are the cluster's and the count is ignored.
    """
    if workers is None or scheduler:
        return workers
    workers = int(workers)
    if workers < 0:
        raise RoharnessError(f"number of workers must be >= 0, got {workers}")
    n = cores()
    if workers > n:
        (stream or sys.stderr).write(f"roharness: note: {workers} workers capped at the {n} "
                                     "core(s) of this machine.\n")
        return n
    return workers


def _probe_dir(path: Path, what: str, given) -> None:
    """Check that files can be created in ``path`` or, if it does not exist yet, in its
    nearest existing ancestor (which must be a directory)."""
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise RoharnessError(f"{what} '{given}' cannot be created: '{p}' is a file, not a "
                             "directory")
    try:
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise RoharnessError(f"{what} '{given}' is not writable ({exc.strerror or exc}); "
                             "give a path in a writable directory") from None


def check_output_dir(path) -> Path:
    """An output directory: not an existing file, and writable (or creatable)."""
    p = Path(str(path)).expanduser()
    if str(path) == "" or "\x00" in str(path):
        raise RoharnessError(f"output directory '{path}' is not a valid path")
    if p.exists() and not p.is_dir():
        raise RoharnessError(f"output directory '{path}' is an existing file; give a "
                             "directory path")
    _probe_dir(p, "output directory", path)
    return p


def check_output_file(path, suffixes=()) -> Path:
    """An output file: the right suffix, not a directory, in a writable directory."""
    p = Path(str(path)).expanduser()
    if str(path) == "" or "\x00" in str(path):
        raise RoharnessError(f"output file '{path}' is not a valid path")
    if suffixes and not str(path).lower().endswith(tuple(suffixes)):
        raise RoharnessError(f"output file '{path}' must end in {' or '.join(suffixes)}")
    if p.is_dir():
        raise RoharnessError(f"output file '{path}' is a directory; give a file path")
    if p.exists() and not os.access(p, os.W_OK):
        raise RoharnessError(f"output file '{path}' is not writable")
    _probe_dir(p.parent, "output file", path)
    return p
