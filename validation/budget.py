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
2. chunk tasks of ``chunk_size`` realisations per (source set, occultation):
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
import warnings
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
from validation.engine import Engine

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Sequence

    from validation.plugins import Retrieval

ALL = "all"  # label of the Monte Carlo with every physical source on
METRICS = ("ne_rms_over_peak_100_200km", "m2_peak_altitude_rms_km",
           "m2_peak_density_rel_rms", "ne150_rel_rms", "tn_rms_k", "tec_rel_rms")
_SCALARS = ("m2_peak_altitude_error_km", "m2_peak_density_rel_error",
            "neutral_temperature_error_k", "tec_rel_error", "ne150_rel_error")
STATUS_OK, STATUS_FAILED, STATUS_NOT_RUN = 0, 1, 2


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


def retrieve(obs: xr.Dataset, scn: Scenario, retrieval=None) -> xr.Dataset:
    """The retrieval of one (perturbed) observation: the scenario's built-in chain or a
    plug-in (:func:`validation.plugins.retrieve`; per-level lat/lon are not needed here)."""
    from validation.plugins import retrieve as run_retrieval

    return run_retrieval(obs, scn, retrieval)


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
    try:
        floor = _score(truth, ne_true, retrieve(obs, scn, retrieval), grid_m)
        floor["status"], floor["message"] = STATUS_OK, ""
    except Exception as exc:  # noqa: BLE001 - see _failure
        floor = {k: np.nan for k in _SCALARS}
        floor.update(ne_error_m3=np.full(len(grid_m), np.nan), status=STATUS_FAILED,
                     message=_failure(exc, retrieval))
    return dict(truth=truth, obs=obs, prep=prep, ne_true=ne_true, floor=floor,
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
            sc = _score(base["truth"], base["ne_true"], retrieve(obs, scn, retrieval), grid_m)
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


def gradient_task(scn: Scenario, sza_target_deg: float, grid_m: np.ndarray,
                  retrieval=None) -> xr.Dataset:
    """Horizontal-gradient bias at one target SZA (:func:`validation.gradient_study.
    gradient_bias` on a real event of the link near that SZA, retrieved by this budget's
    chain)."""
    from functools import partial

    from validation.gradient_study import gradient_bias

    step_km = float(grid_m[1] - grid_m[0]) / 1e3 if len(grid_m) > 1 else 1.0
    return gradient_bias(scn, (float(sza_target_deg),),
                         altitude_km=(grid_m[0] / 1e3, grid_m[-1] / 1e3, step_km),
                         retrieve=partial(retrieve, scn=scn, retrieval=retrieval))


def _gradient_vars(study: xr.Dataset) -> xr.Dataset:
    """The study's variables renamed for budget.nc (dimension ``gradient_sza``)."""
    out = study.rename({"sza": "gradient_sza"})
    out = out.rename({v: f"gradient_{v}" for v in out.data_vars})
    out["gradient_event_time_utc"] = out["gradient_event_time_utc"].astype(str)
    out.attrs = {}
    return out


def _gradient_rows(study: xr.Dataset) -> list[dict]:
    """Per target SZA, the bias the gradients add to the clean retrieval (100-200 km)."""
    band = (study.altitude >= 100e3) & (study.altitude <= 200e3)
    rows = []
    for i in range(study.sizes["sza"]):
        g = study.isel(sza=i)
        d = (g.ne_error_over_peak - g.ne_error_over_peak_clean).where(band, drop=True).values
        rows.append(dict(
            target_sza_deg=float(g.sza), sza_deg=float(g.sza_deg),
            event_time_utc=str(g.event_time_utc.values),
            ne_rms_over_peak_100_200km=_rms(d),
            ne_max_abs_over_peak_100_200km=float(np.nanmax(np.abs(d))),
            m2_peak_altitude_error_km=float(g.m2_peak_altitude_error_km
                                            - g.m2_peak_altitude_error_km_clean),
            m2_peak_density_rel_error=float(g.m2_peak_density_rel_error
                                            - g.m2_peak_density_rel_error_clean)))
    return rows


# --------------------------------------------------------------------------- assembly
def _rms(x, axis=None):
    x = np.asarray(x, float)
    with np.errstate(invalid="ignore"):
        if not np.isfinite(x).any():
            return np.nan
        return float(np.sqrt(np.nanmean(x ** 2, axis=axis)))


def _metrics(d: xr.Dataset, band, prefix: str = "") -> dict:
    return dict(
        ne_rms_over_peak_100_200km=_rms(d[prefix + "ne_error_over_peak"].where(band, drop=True)
                                        .values),
        m2_peak_altitude_rms_km=_rms(d[prefix + "m2_peak_altitude_error_km"].values),
        m2_peak_density_rel_rms=_rms(d[prefix + "m2_peak_density_rel_error"].values),
        ne150_rel_rms=_rms(d[prefix + "ne150_rel_error"].values),
        tn_rms_k=_rms(d[prefix + "neutral_temperature_error_k"].values),
        tec_rel_rms=_rms(d[prefix + "tec_rel_error"].values))


def summarise(ds: xr.Dataset) -> dict:
    """The summary (JSON) of a budget Dataset (module docstring for the metrics).

    A source's errors are measured from the retrieval of the clean observation (the
    ``floor``: what the retrieval chain itself gets wrong with no error source), so that
    the sources and the floor can be added in quadrature; ``mc_total_*`` (every physical
    source on) is measured from the truth, floor included.
    """
    labels = [str(s) for s in ds.source.values]
    band = (ds.altitude >= 100e3) & (ds.altitude <= 200e3)
    rel = _relative_to_floor(ds)
    per = {}
    for lab in labels:
        d = (rel if lab != ALL else ds).sel(source=lab)
        per[lab] = _metrics(d, band)
        per[lab].update(realisations_ok=int((ds.status.sel(source=lab) == STATUS_OK).sum()),
                        failed=int((ds.status.sel(source=lab) == STATUS_FAILED).sum()))
    floor = _metrics(ds, band, prefix="floor_")
    floor["failed"] = int((ds.floor_status == STATUS_FAILED).sum())
    physical = [str(s) for s in ds.physical_source.values]
    sources = [s for s in labels if s != ALL]
    out = dict(scenario=ds.attrs["scenario"], sources=sources,
               skipped_sources=[str(s) for s in ds.skipped_source.values],
               physical_sources=physical, per_source={s: per[s] for s in sources},
               floor=floor, realisations=int(ds.sizes["realisation"]),
               occultations=int(ds.sizes["occultation"]), seed=int(ds.attrs["seed"]))
    for k in METRICS:
        vals = [per[s][k] for s in physical] + [floor[k]]
        out[f"total_{k}"] = (float(np.sqrt(np.nansum(np.square(vals))))
                             if np.isfinite(vals).any() else np.nan)
        out[f"mc_total_{k}"] = per[ALL][k] if ALL in per else out[f"total_{k}"]
    if ALL in per:
        out["mc_total_failed"] = per[ALL]["failed"]
    return out


#: Target keys of a scenario's ``[target]`` -> the summary metric they bound.
TARGET_METRICS = {
    "m2_peak_density_rel": "m2_peak_density_rel_rms",
    "m2_peak_altitude_km": "m2_peak_altitude_rms_km",
    "ne150_rel": "ne150_rel_rms",
    "tn_k": "tn_rms_k",
    "tec_rel": "tec_rel_rms",
}

#: Why a contribution is what it is, for the "what dominates" sentence.
WHY = {
    "floor": "the retrieval chain's own error on clean data (what the drift correction "
             "and smoothing do to a drift-free, noise-free observation, and discretisation)",
    "thermal": "white frequency noise at the receiver's C/N0",
    "oscillator": "the oscillators' power-law noise, which no baseline separates from the "
                  "layer where it wanders as slowly as the layer",
    "drift": "the curvature of the oscillator drift, which the linear vacuum baseline "
             "cannot remove",
    "ephemeris": "reconstructed-orbit errors, seen as a Doppler bias",
    "sampling": "the sampling phase and the box-car integration of each Doppler sample",
    "gradients": "horizontal gradients along the ray, which the spherically symmetric Abel "
                 "inversion ignores",
}


def assess(summary: dict, targets: dict) -> dict:
    """Targets, pass/fail and what dominates, for the summary of a budget.

    Each target bounds the 1-sigma (RMS) error of all physical sources together: the Monte
    Carlo with every source on (``mc_total_*``, from the truth) where it ran, otherwise the
    root-sum-square. The dominant contribution per metric is the largest of the physical
    sources and the floor (in quadrature, so its share is its variance fraction).

    Returns
    -------
    dict
        ``targets``: metric -> {target, value, passed} for every set target;
        ``dominant``: metric -> {source, share}; ``verdict``: one or two sentences.
    """
    out_t = {}
    for key, metric in TARGET_METRICS.items():
        bound = targets.get(key)
        if bound is None:
            continue
        value = summary.get(f"mc_total_{metric}", summary.get(f"total_{metric}"))
        out_t[metric] = dict(target=float(bound), value=value,
                             passed=bool(value is not None and np.isfinite(value)
                                         and value <= bound))
    dominant = {}
    names = list(summary["physical_sources"]) + ["floor"]
    for metric in METRICS:
        vals = {n: (summary["floor"] if n == "floor" else summary["per_source"][n])[metric]
                for n in names}
        vals = {n: v for n, v in vals.items() if v is not None and np.isfinite(v)}
        total = sum(v ** 2 for v in vals.values())
        if not vals or total <= 0:
            continue
        top = max(vals, key=vals.get)
        dominant[metric] = dict(source=top, share=vals[top] ** 2 / total)
    sentences = []
    if out_t:
        failed = [m for m, t in out_t.items() if not t["passed"]]
        sentences.append("Every target is met." if not failed else
                         f"{len(failed)} of {len(out_t)} targets missed: "
                         + ", ".join(_LABEL[m] for m in failed) + ".")
    d = dominant.get("ne_rms_over_peak_100_200km")
    if d:
        name = "the retrieval floor" if d["source"] == "floor" else f"the {d['source']} source"
        sentences.append(f"The N_e error at 100-200 km is dominated by {name} "
                         f"({100 * d['share']:.0f} % of the variance): "
                         f"{WHY.get(d['source'], d['source'])}.")
    missing = [n for n in summary["physical_sources"]
               if not np.isfinite(summary["per_source"][n]["ne_rms_over_peak_100_200km"])]
    if missing:
        sentences.append("The root-sum-square total LEAVES OUT " + ", ".join(missing)
                         + ": every realisation of it failed.")
    failing = [s for s in summary["sources"] if summary["per_source"][s].get("failed")]
    if failing:
        sentences.append("Realisations failed in " + ", ".join(
            f"{s} ({summary['per_source'][s]['failed']})" for s in failing)
            + "; their reasons are under 'messages'.")
    return dict(targets=out_t, dominant=dominant, verdict=" ".join(sentences),
                total_missing_sources=missing)


#: Plain names of the metrics (reports and terminal).
_LABEL = {
    "ne_rms_over_peak_100_200km": "N_e 100-200 km",
    "m2_peak_altitude_rms_km": "M2 peak altitude",
    "m2_peak_density_rel_rms": "M2 peak density",
    "ne150_rel_rms": "N_e at 150 km",
    "tn_rms_k": "neutral temperature",
    "tec_rel_rms": "TEC",
}


def _relative_to_floor(ds: xr.Dataset) -> xr.Dataset:
    """Source errors minus the clean retrieval's (where the clean retrieval succeeded)."""
    out = xr.Dataset(coords=ds.coords)
    for k in _SCALARS + ("ne_error_over_peak",):
        fl = ds[f"floor_{k}"].fillna(0.0)
        out[k] = ds[k] - fl
    return out


def _assemble(scns, labels, sets, bases, chunks, n_real, grid_m, root_seed, skipped,
              example) -> xr.Dataset:
    n_occ, m = len(scns), len(grid_m)
    shape = (len(labels), n_occ, n_real)
    data = {k: np.full(shape, np.nan) for k in _SCALARS}
    ne_err = np.full(shape + (m,), np.nan)
    status = np.full(shape, STATUS_NOT_RUN, np.int8)
    for (li, o, reals), res in chunks:
        idx = list(reals)
        for k in _SCALARS:
            data[k][li, o, idx] = res[k]
        ne_err[li, o, idx] = res["ne_error_m3"]
        status[li, o, idx] = res["status"]
    peak = np.array([b["peak"] for b in bases])
    dims3 = ("source", "occultation", "realisation")
    floors = [b["floor"] for b in bases]
    attrs = {
        "m2_peak_altitude_error_km": ("km", "retrieved minus true M2 peak altitude"),
        "m2_peak_density_rel_error": ("1", "retrieved / true M2 peak density - 1"),
        "neutral_temperature_error_k": ("K", "retrieved minus true neutral temperature"),
        "tec_rel_error": ("1", "retrieved / true vertical TEC - 1"),
        "ne150_rel_error": ("1", "retrieved / true electron density at 150 km - 1"),
    }
    ds = xr.Dataset(
        {k: (dims3, data[k], {"units": attrs[k][0], "long_name": attrs[k][1]}) for k in _SCALARS},
        coords=dict(source=("source", np.array(labels, dtype=str), {
                        "long_name": "error source of the run ('all': every physical source "
                                     "on)"}),
                    occultation=("occultation", np.arange(n_occ), {
                        "units": "1", "long_name": "occultation index"}),
                    realisation=("realisation", np.arange(n_real), {
                        "units": "1", "long_name": "Monte Carlo realisation index"}),
                    altitude=("altitude", grid_m, dict(cf.ALTITUDE, long_name="altitude "
                                                       "above the 3389.5 km sphere"))))
    ds["ne_error"] = (dims3 + ("altitude",), ne_err,
                      {"units": "m-3", "long_name": "retrieved minus true electron density"})
    ds["ne_error_over_peak"] = (dims3 + ("altitude",), ne_err / peak[None, :, None, None],
                                {"units": "1", "long_name": "electron density error over the "
                                 "true M2 peak density"})
    ds["status"] = (dims3, status, {
        "long_name": "run status (not_run: a deterministic source has one realisation)",
        "flag_values": np.array([STATUS_OK, STATUS_FAILED, STATUS_NOT_RUN], np.int8),
        "flag_meanings": "retrieved retrieval_failed not_run"})
    for k in _SCALARS:
        ds[f"floor_{k}"] = ("occultation", np.array([f[k] for f in floors], float),
                            dict(ds[k].attrs, long_name=ds[k].attrs["long_name"]
                                 + " (clean observation: the retrieval's floor)"))
    floor_ne = np.array([f["ne_error_m3"] for f in floors])
    ds["floor_ne_error"] = (("occultation", "altitude"), floor_ne, {
        "units": "m-3", "long_name": "retrieved (clean observation) minus true N_e"})
    ds["floor_ne_error_over_peak"] = (("occultation", "altitude"), floor_ne / peak[:, None],
                                      {"units": "1", "long_name": "floor N_e error over the "
                                       "true M2 peak density"})
    ds["floor_status"] = ("occultation", np.array([f["status"] for f in floors], np.int8), {
        "long_name": "status of the clean observation's retrieval",
        "flag_values": np.array([STATUS_OK, STATUS_FAILED], np.int8),
        "flag_meanings": "retrieved retrieval_failed"})
    ds["ne_true"] = (("occultation", "altitude"), np.array([b["ne_true"] for b in bases]),
                     {"units": "m-3", "long_name": "true electron density"})
    ds["peak_density_true"] = ("occultation", peak, {"units": "m-3",
                                                     "long_name": "true M2 peak density"})
    for k, unit, name in (("sza_deg", "degree", "solar zenith angle of the occultation"),
                          ("ltst_hours", "hour", "local true solar time of the occultation"),
                          ("lat_deg", "degree_north", "areocentric latitude of the occultation"),
                          ("lon_deg", "degree_east", "areocentric east longitude of the "
                                                     "occultation")):
        ds[k] = ("occultation", np.array([b[k] for b in bases], float),
                 {"units": unit, "long_name": name})
    ds["lat_deg"].attrs["standard_name"] = "latitude"
    ds["lon_deg"].attrs["standard_name"] = "longitude"
    ds["event_time_utc"] = ("occultation", np.array([b["event_time_utc"] for b in bases],
                                                    dtype=str),
                            {"long_name": "UTC of the occultation event (ISO 8601)"})
    with np.errstate(invalid="ignore"):
        ok = ds.status == STATUS_OK
        rel = ds.ne_error_over_peak - ds.floor_ne_error_over_peak.fillna(0.0)
        rel = xr.where(ds.source == ALL, ds.ne_error_over_peak, rel)
        rms = np.sqrt((rel.where(ok) ** 2).mean(("occultation", "realisation")))
        floor_rms = np.sqrt((ds.floor_ne_error_over_peak ** 2).mean("occultation"))
    ds["ne_rms_over_peak"] = rms.assign_attrs(
        units="1", long_name="RMS electron density error over the true peak, by source and "
        "altitude (from the clean retrieval; 'all': from the truth)")
    ds["floor_ne_rms_over_peak"] = floor_rms.assign_attrs(
        units="1", long_name="RMS N_e error of the clean retrieval over the true peak")
    physical = [s for s in sets.get(ALL, ())] or [
        s for s in labels if s != ALL and _error_sources().SOURCES[s].get("kind", "physical")
        == "physical"]
    rss = np.nan_to_num(ds.floor_ne_rms_over_peak.values) ** 2
    if physical:
        rss = rss + (ds.ne_rms_over_peak.sel(source=physical) ** 2).sum("source").values
    ds["rss_ne_rms_over_peak"] = ("altitude", np.sqrt(rss), {
        "units": "1", "long_name": "root-sum-square of the physical sources' RMS and the floor"})
    if example is not None:
        ds["example_ne"] = ("altitude", example[1], {
            "units": "m-3", "long_name": f"one retrieved profile ({example[0]}, occultation 0, "
            "realisation 0)"})
    # source lists as coordinates (CF: no JSON in attributes)
    members = list(dict.fromkeys(m for v in sets.values() for m in v))
    ds = ds.assign_coords(
        physical_source=("physical_source", np.array(physical, dtype=str), {
            "long_name": "physical error sources, added in quadrature with the floor"}),
        skipped_source=("skipped_source", np.array(skipped, dtype=str), {
            "long_name": "error sources skipped as not applicable to the scenario"}),
        member=("member", np.array(members, dtype=str), {
            "long_name": "error source that a run can switch on"}))
    ds["source_members"] = (("source", "member"), np.array(
        [[m in sets.get(lab, ()) for m in members] for lab in labels], np.int8), {
        "long_name": "error sources switched on in the run of each source label",
        "flag_values": np.array([0, 1], np.int8), "flag_meanings": "off on"})
    ds.attrs.update(scenario=scns[0].name, scenario_sha256=scns[0].digest, seed=int(root_seed),
                    Conventions=cf.CONVENTIONS, title="roharness Monte Carlo error budget")
    return cf.mark_coordinates(ds)


def _run_hash(scns, sources, n_real, root_seed, grid_m, chunk_size, retrieval) -> str:
    from validation import __version__

    what = dict(s=[x.sections for x in scns], src=sources, n=n_real, seed=root_seed,
                grid=[float(grid_m[0]), float(grid_m[-1]), len(grid_m)],
                chunk=chunk_size, v=__version__)
    if not retrieval.is_builtin:  # built-in runs keep the hashes (checkpoints) they had
        what["retrieval"] = [retrieval.kind, retrieval.target, retrieval.timeout_s]
    blob = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_budget(scenario: Scenario | str | os.PathLike = "mex-tgo-uhf-drift",
               sources: Sequence[str] | None = None, realisations: int | None = None, *,
               seed: int | None = None, occultations: int = 1,
               scenarios: Sequence[Scenario] | None = None, scheduler: str | None = None,
               workers: int | None = None, out_dir: str | os.PathLike | None = None,
               progress: bool | None = None, chunk_size: int = 5, report: bool = True,
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
    root_seed = int(scn.seed if seed is None else seed)
    n_real = int(scn["budget"]["realisations"] if realisations is None else realisations)
    if n_real < 1:
        raise RoharnessError(f"number of realisations must be >= 1, got {n_real}")
    names, skipped = resolve_sources(scn, sources)
    sets = _label_sets(names)
    labels = list(sets)
    grid_m = altitude_grid_m(scn)
    run_hash = _run_hash(scns, names, n_real, root_seed, grid_m, chunk_size, ret)
    ckpt = Path(out_dir) / "checkpoint" / run_hash if out_dir is not None else None
    from validation.limits import check_budget  # refuses (one sentence) runs of hours
    check_budget(len(scns), n_real, [_is_stochastic(m) for m in sets.values()],
                 len(gradient_sza_deg) if "gradients" in names else 0, workers, scheduler)

    with Engine(scheduler, workers) as eng:
        members_all = tuple(names)
        base_tasks = {f"base-o{o}": (s, members_all, grid_m, ret) for o, s in enumerate(scns)}
        bases_d = eng.map(base_task, base_tasks, ckpt, label="budget: forward model",
                          progress=progress)
        failed_occ = {o: bases_d[f"base-o{o}"]["error"] for o in range(len(scns))
                      if "error" in bases_d[f"base-o{o}"]}
        if len(failed_occ) == len(scns):
            raise RoharnessError(next(iter(failed_occ.values())))
        occ_ids = [o for o in range(len(scns)) if o not in failed_occ]
        scns = [scns[o] for o in occ_ids]  # positions 0.. over the simulated occultations;
        bases = [bases_d[f"base-o{o}"] for o in occ_ids]  # seeds keep the original index
        shared = [eng.share(b) for b in bases]
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
        results = eng.map(chunk_task, tasks, ckpt, label="budget: realisations",
                          progress=progress)
        study = None
        if "gradients" in names and len(gradient_sza_deg):
            g = eng.map(gradient_task, {f"gradient-sza{float(z):g}": (scn, float(z), grid_m, ret)
                                        for z in gradient_sza_deg},
                        ckpt, label="budget: gradients by SZA", progress=progress)
            study = xr.concat(list(g.values()), dim="sza")
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
    summary["occultations_failed"] = [dict(index=o, message=m) for o, m in failed_occ.items()]
    summary["messages"] = sorted({m for _, r in chunks for m in r["message"] if m})[:10]
    summary.update(assess(summary, scn["target"]))
    chk = _analytic_check(ds, bases, scns[0])
    if chk:
        summary["thermal_vs_withers2010"] = chk
    if out_dir is not None:
        write_budget(ds, summary, out_dir, report=report)
    return (summary, ds) if return_dataset else summary


def _analytic_check(ds, bases, scn) -> dict:
    r"""Thermal-noise Monte Carlo against analytic estimates, 100-200 km (occultation 0).

    The Monte Carlo spread is the standard deviation over realisations of the thermal-only
    N_e error (the retrieval's deterministic floor removed). It is compared with

    * Withers (2010), :func:`validation.analytic.withers_sigma_ne`, with the plasma scale
      height 2 H of the alpha-Chapman topside: the classical estimate, which treats the
      noise as coherent over a scale height (expected ratio ~ sqrt(da (ln N + 0.58) /
      (pi H)) < 1 for finely sampled white noise, see :mod:`validation.analytic`);
    * the white noise propagated through the exact Abel weights at the observation's
      sampling, :func:`validation.analytic.abel_white_noise_sigma_ne` (expected ~1).
    """
    if "thermal" not in ds.source.values:
        return {}
    from synth.error_sources import thermal_sigma_hz
    from validation.analytic import abel_white_noise_sigma_ne, thermal_sigma_ne_profile

    th = ds.ne_error.sel(source="thermal").isel(occultation=0)
    ok = (ds.status.sel(source="thermal").isel(occultation=0) == STATUS_OK).values
    if ok.sum() < 3:
        return {}
    with warnings.catch_warnings():  # levels no realisation reached: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mc = np.nanstd(th.values[ok], axis=0, ddof=1)
    b = scn["budget"]
    t_int = b["integration_time_s"] or 1.0 / scn["sampling"]["rate_hz"]
    sigma_f = thermal_sigma_hz(scn["receiver"]["cn0_dbhz"], t_int)
    obs = bases[0]["obs"]
    plasma_h = 2.0 * scn["ionosphere"]["scale_height_km"] * 1e3
    alt = ds.altitude.values
    band = (alt >= 100e3) & (alt <= 200e3)
    out = dict(sigma_f_hz=sigma_f, plasma_scale_height_km=plasma_h / 1e3)
    for name, est in (("withers2010", thermal_sigma_ne_profile(obs, sigma_f, plasma_h)),
                      ("abel_propagation", abel_white_noise_sigma_ne(obs, sigma_f))):
        h = est.tangent_altitude.values
        order = np.argsort(h)
        pred = np.interp(alt, h[order], est.sigma_ne.values[order], left=np.nan,
                         right=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = mc[band] / pred[band]
        ratio = ratio[np.isfinite(ratio)]
        key = "median_ratio" if name == "withers2010" else "median_ratio_abel"
        out[key] = float(np.median(ratio)) if ratio.size else np.nan
    return out


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
