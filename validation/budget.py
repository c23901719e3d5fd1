r"""Monte Carlo error budget of a retrieval, per error source, on dask.

"How accurate is this retrieval, and which error source dominates where?" For one
occultation (or several) the forward model makes the truth and a clean level-2 observation
once; then, for every selected error source (:mod:`synth.error_sources`) on its own and for
all physical sources together, ``realisations`` noisy observations are drawn, retrieved
exactly as real data would be, and compared with the truth:

1. base task per occultation (worker process, SPICE loaded once per process):
   :func:`synth.observe.simulate` -> truth + clean observation,
   :func:`synth.error_sources.prepare` (deterministic precomputation, e.g. the
   horizontal-gradient residual);
2. chunk tasks of ``chunk_size`` realisations per (source set, occultation) (by default
   :func:`default_chunk_size`):
   :func:`synth.error_sources.perturb` -> retrieval -> :func:`validation.roundtrip.compare`.
   The retrieval is the scenario's own chain: with an instrument-level scenario
   (``[receiver] enabled``) the drift correction and smoothing of ``[retrieval]``
   (:func:`validation.iq_path.correct_level4`) then :func:`retrieval.electron_density.
   invert_observation`; otherwise the inversion alone. A retrieval that fails
   (:class:`retrieval.errors.RoharnessError`) is flagged in ``status``, its metrics NaN.

Seeds: realisation ``r`` of source set ``s`` on occultation ``o`` draws from
``SeedSequence(root_seed, spawn_key=(crc32(s), o, r))``: the result is the same whatever the
number of workers or the chunking, and a resumed run recomputes nothing it had finished
(:class:`validation.engine.Engine` checkpoints every task).

Deterministic sources (``stochastic = False``, e.g. horizontal gradients) run one
realisation (index 0); their "RMS" is the magnitude of the bias.

The floor: the base task also retrieves the clean observation; what that gets wrong
(discretisation, the drift correction fitted to drift-free data...) is the retrieval
chain's own error, the ``floor``. A source's errors are measured from the floor (the
perturbed retrieval minus the clean one), so that sources and floor can be added.

Metrics (:func:`summarise`), over occultations and successful realisations:
``ne_rms_over_peak_100_200km`` = RMS of the N_e error over the true M2 peak over the
100-200 km levels; ``m2_peak_altitude_rms_km``; ``m2_peak_density_rel_rms``;
``ne150_rel_rms`` (N_e at 150 km); ``tn_rms_k``; ``tec_rel_rms``. ``total_*`` is the
root-sum-square of the physical sources and the floor (what one gets if they add in
quadrature); ``mc_total_*`` is the Monte Carlo with every physical source on at once,
measured from the truth. Recipe sources (Parrott's 5 % noise) are reported but enter
neither total.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from retrieval import cf
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path, write_text_atomic
from synth.errors import ScenarioError
from synth.scenario import Scenario, load_scenario

# The Dataset assembly, summary and assessment live in validation/budget_summary.py; every
# name is re-exported here, so ``from validation.budget import X`` works as before.
from validation.budget_summary import (
    _LABEL as _LABEL,
)
from validation.budget_summary import (
    _SCALARS as _SCALARS,
)
from validation.budget_summary import (
    ALL,
    STATUS_FAILED,
    STATUS_OK,
    _analytic_check,
    _assemble,
    _gradient_rows,
    _gradient_vars,
    assess,
    summarise,
)
from validation.budget_summary import (
    METRICS as METRICS,
)
from validation.budget_summary import (
    STATUS_NOT_RUN as STATUS_NOT_RUN,
)
from validation.budget_summary import (
    TARGET_METRICS as TARGET_METRICS,
)
from validation.budget_summary import (
    WHY as WHY,
)
from validation.engine import Engine

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Sequence

    from validation.plugins import Retrieval


def _error_sources():
    import synth.error_sources as es
    return es


def stable_int(name: str) -> int:
    """A platform-independent integer for a source-set label (seed derivation)."""
    return zlib.crc32(name.encode())


def realisation_rng(root_seed: int, label: str, occultation: int, realisation: int):
    """The generator of one realisation (see the module docstring)."""
    ss = np.random.SeedSequence(int(root_seed),
                                spawn_key=(stable_int(label), int(occultation), int(realisation)))
    return np.random.default_rng(ss)


def resolve_sources(scn: Scenario, sources=None) -> tuple[list[str], list[str]]:
    """Checked source names and those skipped as inapplicable to the scenario.

    Explicit ``sources`` must all apply. With ``sources=None`` the scenario's
    ``[budget] sources`` are used, dropping the oscillator sources when the scenario has no
    oscillator (``[oscillator] enabled = false``: nothing to drift-correct) and the
    oscillator sources on two-way coherent links (ideal ground reference).
    """
    es = _error_sources()
    explicit = sources is not None
    names = list(sources if explicit else scn["budget"]["sources"])
    if not names:
        raise ScenarioError("no error source selected; known sources: "
                            f"{', '.join(es.SOURCES)}")
    unknown = [s for s in names if s not in es.SOURCES]
    if unknown:
        raise ScenarioError(f"unknown error source '{unknown[0]}' (scenario {scn.name}); "
                            f"known sources: {', '.join(es.SOURCES)}")
    if len(set(names)) != len(names):
        raise ScenarioError(f"error source listed twice in {', '.join(names)}")
    osc = [s for s in names if s in ("oscillator", "drift")]
    why = None
    if scn["link"]["kind"] == "earth_twoway":
        why = "two-way coherent links have an ideal ground reference"
    elif not scn["oscillator"]["enabled"]:
        why = "the scenario has [oscillator] enabled = false"
    if osc and why:
        if explicit:
            raise ScenarioError(f"error source '{osc[0]}' does not apply to scenario "
                                f"{scn.name}: {why}")
        return [s for s in names if s not in osc], osc
    return names, []


def _label_sets(sources: list[str]) -> dict[str, tuple[str, ...]]:
    es = _error_sources()
    sets = {s: (s,) for s in sources}
    physical = tuple(s for s in es.ORDER if s in sources
                     and es.SOURCES[s].get("kind", "physical") == "physical")
    if len(physical) >= 2:
        sets[ALL] = physical
    return sets


def _is_stochastic(members) -> bool:
    es = _error_sources()
    return any(es.SOURCES[s].get("stochastic", True) for s in members)


def altitude_grid_m(scn: Scenario) -> np.ndarray:
    b = scn["budget"]
    lo, hi, step = b["altitude_min_km"], b["altitude_max_km"], b["altitude_step_km"]
    if not (step > 0 and hi > lo):
        raise ScenarioError(f"scenario {scn.name} [budget]: altitude grid needs "
                            "altitude_max_km > altitude_min_km and altitude_step_km > 0")
    return np.arange(lo, hi + 0.5 * step, step) * 1e3


def retrieve(obs: xr.Dataset, scn: Scenario, retrieval=None, top: tuple | None = None
             ) -> xr.Dataset:
    """The retrieval of one (perturbed) observation: the scenario's built-in chain or a
    plug-in (:func:`validation.plugins.retrieve`; per-level lat/lon are not needed here).
    ``top``: (model, scale height [m] or None) of the built-in chain's Abel top, overriding
    the scenario's: the clean retrieval's choice, kept for every realisation (a top chosen
    per realisation would switch between clean and noisy data, and the budget would no
    longer be linear in the noise)."""
    from validation.plugins import retrieve as run_retrieval

    model, scale = top if top is not None else (None, None)
    return run_retrieval(obs, scn, retrieval, top=model, top_scale_height_m=scale)


# --------------------------------------------------------------------------- tasks
def _score(truth: xr.Dataset, ne_true: np.ndarray, prof: xr.Dataset, grid_m) -> dict:
    """Errors of one retrieved profile against the truth (grid errors and scalars)."""
    from validation.roundtrip import compare

    cmp = compare(truth, prof)
    alt, ne = prof.altitude.values, prof.electron_density.values
    order = np.argsort(alt)
    alt, ne = alt[order], ne[order]
    ne_grid = np.interp(grid_m, alt, ne, left=np.nan, right=np.nan)
    out = {k: float(cmp[k]) for k in _SCALARS[:-1]}
    out["ne150_rel_error"] = np.nan
    if alt[0] <= 150e3 <= alt[-1]:
        true150 = np.interp(150e3, truth.altitude.values, truth.electron_density.values)
        out["ne150_rel_error"] = float(np.interp(150e3, alt, ne) / true150 - 1.0)
    out["ne_error_m3"] = ne_grid - ne_true
    out["ne_m3"] = ne_grid
    return out


def _failure(exc: Exception, retrieval) -> str:
    """The recorded reason of a failed retrieval. A user error (:class:`RoharnessError`,
    e.g. a plug-in that hung or returned garbage) is data; any other exception is too when
    a plug-in's profile made the scoring fail, but with the built-in retrieval it is a bug
    of this project and is raised."""
    if isinstance(exc, RoharnessError):
        return str(exc)
    if retrieval is not None and not getattr(retrieval, "is_builtin", True):
        return f"scoring the plug-in's profile failed ({type(exc).__name__}: {exc})"
    raise exc


def base_task(scn: Scenario, sources: tuple[str, ...], grid_m: np.ndarray,
              retrieval=None) -> dict:
    """Truth, clean observation, the sources' deterministic precomputation, and the
    retrieval of the clean observation (the floor every source is measured from)."""
    from synth.observe import simulate

    try:
        truth, obs = simulate(scn)
        prep = _error_sources().prepare(scn, truth, obs, list(sources))
    except RoharnessError as exc:  # flagged, so that one bad event does not stop a sweep
        return dict(error=str(exc))
    ne_true = np.interp(grid_m, truth.altitude.values, truth.electron_density.values)
    top = None
    try:
        clean = retrieve(obs, scn, retrieval)
        if "top_model" in clean.attrs and "top_scale_height_m" in clean.attrs:  # built-in
            scale = float(clean.attrs["top_scale_height_m"])
            top = (str(clean.attrs["top_model"]), scale if np.isfinite(scale) else None)
        floor = _score(truth, ne_true, clean, grid_m)
        floor["status"], floor["message"] = STATUS_OK, ""
    except Exception as exc:  # noqa: BLE001 - see _failure
        floor = {k: np.nan for k in _SCALARS}
        floor.update(ne_error_m3=np.full(len(grid_m), np.nan), status=STATUS_FAILED,
                     message=_failure(exc, retrieval))
    return dict(truth=truth, obs=obs, prep=prep, ne_true=ne_true, floor=floor, top=top,
                peak=float(truth.electron_density.max()),
                sza_deg=float(truth.attrs["sza_deg"]),
                ltst_hours=float(truth.attrs.get("ltst_hours", np.nan)),
                lat_deg=float(truth.attrs.get("lat_deg", np.nan)),
                lon_deg=float(truth.attrs.get("lon_deg", np.nan)),
                event_time_utc=str(truth.attrs.get("event_time_utc", "")))


def chunk_task(base: dict, scn: Scenario, label: str, members: tuple[str, ...],
               occultation: int, realisations: tuple[int, ...], root_seed: int,
               grid_m: np.ndarray, keep_profile: bool = False, retrieval=None) -> dict:
    """Draw, retrieve and score a block of realisations of one source set."""
    es = _error_sources()
    n, m = len(realisations), len(grid_m)
    out = {k: np.full(n, np.nan) for k in _SCALARS}
    out["ne_error_m3"] = np.full((n, m), np.nan)
    out["status"] = np.full(n, STATUS_OK, np.int8)
    out["message"] = [""] * n
    profile0 = None
    for j, r in enumerate(realisations):
        rng = realisation_rng(root_seed, label, occultation, r)
        try:
            obs = es.perturb(base["obs"], list(members), scn, base["prep"], rng)
            sc = _score(base["truth"], base["ne_true"],
                        retrieve(obs, scn, retrieval, top=base.get("top")), grid_m)
        except Exception as exc:  # noqa: BLE001 - see _failure
            out["status"][j] = STATUS_FAILED
            out["message"][j] = _failure(exc, retrieval)
            continue
        for k in _SCALARS:
            out[k][j] = sc[k]
        out["ne_error_m3"][j] = sc["ne_error_m3"]
        if keep_profile and profile0 is None:
            profile0 = sc["ne_m3"]
    out["profile"] = profile0
    return out


def gradient_task(scn: Scenario, sza_target_deg: float | Sequence[float], grid_m: np.ndarray,
                  retrieval=None) -> xr.Dataset:
    """Horizontal-gradient bias at one or several target SZAs (:func:`validation.
    gradient_study.gradient_bias` on a real event of the link near each SZA, retrieved by
    this budget's chain; several in one call search the link's events once)."""
    from functools import partial

    from validation.gradient_study import gradient_bias

    step_km = float(grid_m[1] - grid_m[0]) / 1e3 if len(grid_m) > 1 else 1.0
    return gradient_bias(scn, tuple(float(z) for z in np.atleast_1d(sza_target_deg)),
                         altitude_km=(grid_m[0] / 1e3, grid_m[-1] / 1e3, step_km),
                         retrieve=partial(retrieve, scn=scn, retrieval=retrieval))


#: Hard bounds of a budget, --force or not (the limits of validation.limits refuse runs of
#: hours below them): 1e5 realisations resolve a 1-sigma spread to 0.2 % (the scenario
#: schema's bound), and a year of MEX -> TGO holds ~8900 events. Beyond them the task list
#: alone fills memory (found by the CLI fuzz, 2026-12: --occultations 1000000 --force
#: built a million scenario copies and was killed at 24 GB).
MAX_REALISATIONS, MAX_OCCULTATIONS = 100_000, 10_000

#: Realisations per chunk task: at least CHUNK_MIN, at most CHUNK_MAX, and about
#: 1 / CHUNK_TASKS_PER_SET of a source set's occultations x realisations.
CHUNK_MIN, CHUNK_MAX, CHUNK_TASKS_PER_SET = 5, 50, 128


def default_chunk_size(n_occultations: int, n_realisations: int) -> int:
    """Realisations per chunk task when the caller does not say: enough per task that dask's
    per-task cost stays small, few enough that the tasks still spread over the workers.

    Each task costs ~4.5 ms of CPU in this process (client, scheduler, checkpoint) and
    ~5 ms in the worker, beside ~11 ms per realisation (Parrott-shaped MEX -> TGO, 2
    cores). A Parrott-scale budget (70 x 100, 2 workers) took 65.9 s in chunks of 5
    (1400 tasks), 59.5 s in 25, 56.2 s in 50 and 55.3 s in 100, with the same numbers
    (seeds are per realisation). Small runs keep chunks of 5 (a 10-realisation budget is
    still two tasks per source set) and the checkpoints they had. The rule depends on the
    run's size only, never on the number of workers, so a run resumed on another cluster
    finds its checkpoint."""
    n = int(np.ceil(n_occultations * n_realisations / CHUNK_TASKS_PER_SET))
    return int(min(max(n, CHUNK_MIN), CHUNK_MAX))


def _run_hash(scns, sources, n_real, root_seed, grid_m, chunk_size, retrieval) -> str:
    from validation import __version__

    what = dict(s=[x.sections for x in scns], src=sources, n=n_real, seed=root_seed,
                grid=[float(grid_m[0]), float(grid_m[-1]), len(grid_m)],
                chunk=chunk_size, v=__version__)
    if not retrieval.is_builtin:  # built-in runs keep the hashes (checkpoints) they had
        what["retrieval"] = [retrieval.kind, retrieval.target, retrieval.timeout_s]
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _occultation_scenarios(scn: Scenario, occultations: int,
                           scenarios: Sequence[Scenario] | None) -> list[Scenario]:
    """The occultations of a run: ``scenarios`` if given, else ``scn`` with ``[event] index``
    .. ``index + occultations - 1`` (see :func:`run_budget`)."""
    if scenarios is None:
        if occultations < 1:
            raise RoharnessError(f"number of occultations must be >= 1, got {occultations}")
        scns = []
        for i in range(occultations):
            s = Scenario(name=scn.name, source=scn.source, text=scn.text,
                         sections=json.loads(json.dumps(scn.sections)))
            s.sections["event"]["index"] = scn["event"]["index"] + i
            scns.append(s)
    else:
        scns = list(scenarios)
        if not scns:
            raise RoharnessError("the list of occultation scenarios is empty")
    return scns


def _simulate_occultations(eng, scns, names, grid_m, ret, ckpt, progress):
    """Run the base task (forward model) of every occultation.

    Returns
    -------
    failed_occ : dict
        Occultation index -> error message, for those whose forward model failed.
    occ_ids : list of int
        The indices of the others, in order.
    bases : list of dict
        Their base-task results (in the order of ``occ_ids``).

    Raises :class:`retrieval.errors.RoharnessError` (the first failure) if every one failed.
    """
    members_all = tuple(names)
    base_tasks = {f"base-o{o}": (s, members_all, grid_m, ret) for o, s in enumerate(scns)}
    bases_d = eng.map(base_task, base_tasks, ckpt, label="budget: forward model",
                      progress=progress)
    failed_occ = {o: bases_d[f"base-o{o}"]["error"] for o in range(len(scns))
                  if "error" in bases_d[f"base-o{o}"]}
    if len(failed_occ) == len(scns):
        raise RoharnessError(next(iter(failed_occ.values())))
    occ_ids = [o for o in range(len(scns)) if o not in failed_occ]
    bases = [bases_d[f"base-o{o}"] for o in occ_ids]
    return failed_occ, occ_ids, bases


def _gradient_study(eng, scn, gradient_sza_deg, grid_m, ret, ckpt):
    """Start the horizontal-gradient study near the SZAs ``gradient_sza_deg``: one
    :func:`gradient_task` (the link's events are searched once, not once per SZA; the
    Dataset is the same as the SZAs' concatenated). It depends on nothing else of the run,
    so on dask it runs beside the base and realisation tasks; ``.gather(label, progress)``
    of the result gives ``{key: Dataset}`` (dimension ``sza``)."""
    zs = tuple(float(z) for z in gradient_sza_deg)
    key = "gradient-sza" + "-".join(f"{z:g}" for z in zs)
    return eng.submit(gradient_task, {key: (scn, zs, grid_m, ret)}, ckpt)


def _chunk_tasks(labels, sets, n_real, scns, occ_ids, shared, root_seed, grid_m, chunk_size,
                 ret) -> tuple[dict, dict]:
    """The :func:`chunk_task` arguments by task key, and each key's (label index, occultation
    position, realisations) in the Dataset."""
    tasks, where = {}, {}
    for li, lab in enumerate(labels):
        reals = range(n_real if _is_stochastic(sets[lab]) else 1)
        for o, (s, oid) in enumerate(zip(scns, occ_ids)):
            for c0 in range(0, len(reals), chunk_size):
                block = tuple(reals[c0:c0 + chunk_size])
                key = f"{lab}-o{oid}-r{block[0]}-{block[-1]}"
                keep = o == 0 and c0 == 0 and lab == (ALL if ALL in sets else labels[0])
                tasks[key] = (shared[o], s, lab, sets[lab], oid, block, root_seed, grid_m,
                              keep, ret)
                where[key] = (li, o, block)
    return tasks, where


def _add_diagnostics(summary, ds, scn, scns, bases, chunks, failed_occ) -> None:
    """Failed occultations, failure messages, the targets' assessment and the thermal-noise
    check against analytic estimates, into ``summary``."""
    summary["occultations_failed"] = [dict(index=o, message=m) for o, m in failed_occ.items()]
    summary["messages"] = sorted({m for _, r in chunks for m in r["message"] if m})[:10]
    summary.update(assess(summary, scn["target"]))
    chk = _analytic_check(ds, bases, scns[0])
    if chk:
        summary["thermal_vs_withers2010"] = chk


def run_budget(scenario: Scenario | str | os.PathLike = "mex-tgo-uhf-drift",
               sources: Sequence[str] | None = None, realisations: int | None = None, *,
               seed: int | None = None, occultations: int = 1,
               scenarios: Sequence[Scenario] | None = None, scheduler: str | None = None,
               workers: int | None = None, out_dir: str | os.PathLike | None = None,
               progress: bool | None = None, chunk_size: int | None = None,
               report: bool = True,
               gradient_sza_deg: Sequence[float] = (30.0, 60.0, 85.0),
               return_dataset: bool = False, retrieval: str | Retrieval | None = None
               ) -> dict | tuple[dict, xr.Dataset]:
    """Run a Monte Carlo error budget (module docstring); return its summary.

    Parameters
    ----------
    scenario : Scenario, str or path
        The scenario (built-in name or TOML file); its ``[budget]`` section gives the
        defaults of ``sources`` and ``realisations``.
    sources : list of str, optional
        Error sources (:data:`synth.error_sources.SOURCES`).
    realisations : int, optional
        Realisations per source (and for the all-sources run).
    seed : int, optional
        Root seed (default: the scenario's).
    occultations : int
        Run over the first N matching events of the scenario's search window
        (``[event] index`` .. ``index + N - 1``).
    scenarios : list of Scenario, optional
        Explicit occultations (one pinned event each), instead of ``occultations``.
    scheduler, workers
        See :class:`validation.engine.Engine`.
    out_dir : path, optional
        Writes ``budget.nc``, ``summary.json``, ``report.html``; the checkpoint lives in
        ``out_dir/checkpoint/<run hash>/`` so the same command resumes.
    chunk_size : int, optional
        Realisations per task (default :func:`default_chunk_size`); the results do not
        depend on it, the checkpoint does.
    gradient_sza_deg : sequence of float
        With the ``gradients`` source, also the horizontal-gradient bias on real events of
        the link near these SZAs (:func:`gradient_task`); empty to skip.
    return_dataset : bool
        Return ``(summary, dataset)`` instead of the summary.
    retrieval : str or validation.plugins.Retrieval, optional
        The retrieval whose error budget this is (:mod:`validation.plugins`: ``builtin``,
        ``module:function``, a registered name, ``cmd:TEMPLATE``); default built-in. A
        plug-in that fails on a realisation fails that realisation only, with its reason.
        A current-sheet scenario runs :func:`validation.sheet_budget.run_sheet_budget`.
    """
    from validation.sheet_budget import is_sheet_scenario, run_sheet_budget

    if is_sheet_scenario(scenario):
        return run_sheet_budget(scenario, sources, realisations, seed=seed,
                                scheduler=scheduler, workers=workers, out_dir=out_dir,
                                progress=progress, report=report,
                                return_dataset=return_dataset, retrieval=retrieval)
    from validation.plugins import parse_retrieval, validate_retrieval

    ret = parse_retrieval(retrieval)
    validate_retrieval(ret)
    t0 = time.perf_counter()
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    root_seed = int(scn.seed if seed is None else seed)
    n_real = int(scn["budget"]["realisations"] if realisations is None else realisations)
    if not 1 <= n_real <= MAX_REALISATIONS:
        raise RoharnessError(f"number of realisations must be 1-{MAX_REALISATIONS:,}, got "
                             f"{n_real}")
    if scenarios is None and int(occultations) > MAX_OCCULTATIONS:
        raise RoharnessError(f"number of occultations must be at most {MAX_OCCULTATIONS:,}, "
                             f"got {occultations}")
    names, skipped = resolve_sources(scn, sources)
    sets = _label_sets(names)
    labels = list(sets)
    from validation.limits import check_budget  # refuses (one sentence) runs of hours
    # before the occultations' scenarios are built: a million of them is itself a runaway
    # (found by the CLI fuzz, 2026-12: --occultations 1000000 filled 24 GB)
    n_occ = len(scenarios) if scenarios is not None else int(occultations)
    check_budget(max(n_occ, 0), n_real, [_is_stochastic(m) for m in sets.values()],
                 len(gradient_sza_deg) if "gradients" in names else 0, workers, scheduler)
    scns = _occultation_scenarios(scn, occultations, scenarios)  # (says why n_occ < 1)
    grid_m = altitude_grid_m(scn)
    if chunk_size is None:
        chunk_size = default_chunk_size(len(scns), n_real)
    if int(chunk_size) < 1:
        raise RoharnessError(f"chunk size must be >= 1 realisation, got {chunk_size}")
    chunk_size = int(chunk_size)
    run_hash = _run_hash(scns, names, n_real, root_seed, grid_m, chunk_size, ret)
    ckpt = Path(out_dir) / "checkpoint" / run_hash if out_dir is not None else None

    with Engine(scheduler, workers) as eng:
        pending_study = None
        if "gradients" in names and len(gradient_sza_deg):
            pending_study = _gradient_study(eng, scn, gradient_sza_deg, grid_m, ret, ckpt)
        failed_occ, occ_ids, bases = _simulate_occultations(eng, scns, names, grid_m, ret, ckpt,
                                                            progress)
        scns = [scns[o] for o in occ_ids]  # positions 0.. over the simulated occultations;
        # bases likewise; seeds keep the original index
        shared = [eng.share(b) for b in bases]
        tasks, where = _chunk_tasks(labels, sets, n_real, scns, occ_ids, shared, root_seed,
                                    grid_m, chunk_size, ret)
        results = eng.map(chunk_task, tasks, ckpt, label="budget: realisations",
                          progress=progress)
        study = None
        if pending_study is not None:
            study = next(iter(pending_study.gather("budget: gradients by SZA",
                                                   progress).values()))
        engine_description = eng.description
    chunks = [(where[k], r) for k, r in results.items()]
    example = next(((tasks[k][2], r["profile"]) for k, r in results.items()
                    if r["profile"] is not None), None)
    ds = _assemble(scns, labels, sets, bases, chunks, n_real, grid_m, root_seed, skipped,
                   example)
    if study is not None:
        ds = ds.merge(_gradient_vars(study))
        summary_g = _gradient_rows(study)
    summary = summarise(ds)
    if study is not None:
        summary["gradient_bias_by_sza"] = summary_g
    summary["elapsed_s"] = time.perf_counter() - t0
    summary["engine"] = engine_description
    summary["retrieval"] = ret.spec
    _add_diagnostics(summary, ds, scn, scns, bases, chunks, failed_occ)
    if out_dir is not None:
        write_budget(ds, summary, out_dir, report=report)
    return (summary, ds) if return_dataset else summary


def write_budget(ds: xr.Dataset, summary: dict, out_dir, report: bool = True) -> None:
    """``budget.nc``, ``summary.json`` and ``report.html`` into ``out_dir`` (atomically)."""
    from validation.cli import _clean

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "budget.nc", suffix=".nc") as tmp:
        ds.to_netcdf(tmp, encoding=cf.coordinate_encoding(ds))
    write_text_atomic(out / "summary.json", json.dumps(_clean(summary), indent=2) + "\n")
    if report:
        from validation.budget_report import budget_report

        budget_report(ds, summary, out / "report.html")
