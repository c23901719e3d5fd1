r"""Monte Carlo error budget of a current-sheet crossing, per error source, on dask.

The same command and engine as the radio-occultation budget (:mod:`validation.budget`):
``roharness budget --scenario mars-2024-11-07`` dispatches here when the scenario is a
sheet scenario (:func:`is_sheet_scenario`).

The *clean* crossing is the scenario with every error source off: no magnetometer noise or
offsets, noise-free ion moments, a planar sheet at rest, the scientist's MVA interval, an
IMF rotation without fluctuations or monitor noise. Its round trip is the *floor* (what the
retrieval gets wrong on perfect data: the Hall field's tilt of the MVA L, the Hall tail in
the guide-field windows, the moments' box-car averaging). Each source then switches one
thing on, drawn afresh per realisation (the amplitudes come from the scenario's
``[magnetometer]``, ``[ions]``, ``[imf]`` and its ``[budget]`` table):

``mag_white``
    white magnetometer noise of ``[magnetometer] noise_nt``;
``mag_correlated``
    the same noise, AR(1)-correlated over ``[budget] correlation_time_s``;
``mag_offset``
    zero offsets drawn N(0, ``offset_rms_nt``) per component;
``ion_noise``
    the ion-moment density and velocity noise of ``[ions]``;
``geometry``
    the crossing angle to the normal and the distance from the X-line along L, drawn
    uniformly in ``[budget] angle_to_normal_deg`` and ``offset_l_km`` (the truth moves with
    them);
``hall``
    the Hall amplitude, ``[sheet] hall_field_nt`` times U(``hall_rel``);
``motion``
    sheet motion during the crossing (:func:`synth.current_sheet.moving_sheet_frame`): an
    oscillation along N (non-constant normal speed) of ``oscillation_amplitude_km`` with a
    period drawn in ``oscillation_period_s`` and a random phase, a curvature along L drawn
    N(0, ``curvature_rms_per_km``) and a tilt rate drawn N(0, ``tilt_rate_rms_deg_s``);
``mva_interval``
    each end of the MVA interval moved by U(-``window_jitter_s``, +``window_jitter_s``);
``imf``
    the upstream monitor's clock-angle fluctuations, its noise and the downstream
    fluctuations of ``[imf]`` (what sets the lag error);
``all``
    every source on at once (magnetometer noise correlated: white noise is its
    zero-correlation case, the forward model has one noise process).

Seeds: realisation ``r`` of source ``s`` draws its perturbation and its noise seed from
``SeedSequence(root, spawn_key=(crc32(s), 0, r))`` (:func:`validation.budget.
realisation_rng`), so results do not depend on the number of workers or the chunking; every
chunk is checkpointed (:class:`validation.engine.Engine`) and a rerun resumes.

The summary's ``per_source`` holds every source and ``all`` (``sources`` lists the sources
without ``all``), as the gate reads it (``SOURCE.KEY``, ``floor.KEY``).

Metrics per realisation (:func:`validation.sheet.compare_sheet`), all from the truth of that
realisation: normal, L and M angle errors [deg] (axes compared as lines), guide field error
[nT], outflow error [m/s], lag error [s], escape flux relative error, eigenvalue ratios, and
the Sonnerup-Scheible predicted normal error [deg]. Per source the summary gives RMS values
(``normal_angle_rms_deg``, ``guide_field_rms_nt``, ``lag_rms_s``, ``escape_flux_rel_rms``,
...) and ``sonnerup_scheible_ratio``: the RMS normal error over the median predicted error
:math:`\sqrt{\Delta\varphi_{32}^2 + \Delta\varphi_{31}^2}` (the 2-D error of the normal has
:math:`E|\delta|^2 = \Delta\varphi_{32}^2 + \Delta\varphi_{31}^2`), near 1 when the formula's
assumptions hold: independent, isotropic, stationary noise on a one-dimensional sheet.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from retrieval import cf
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path, write_text_atomic
from synth.errors import ScenarioError
from synth.sheet_scenario import BUDGET_SOURCES, BUILTIN_SHEET_SCENARIOS, load_sheet_scenario
from validation.engine import Engine

ALL = "all"
STATUS_OK, STATUS_FAILED = 0, 1

#: Per-realisation metrics: name -> (units, long name).
METRICS = {
    "normal_angle_error_deg": ("degree", "angle between retrieved (MVA) and true normal"),
    "l_angle_error_deg": ("degree", "angle between retrieved and true L"),
    "m_angle_error_deg": ("degree", "angle between retrieved and true M"),
    "guide_field_error_nt": ("nT", "retrieved minus true guide field"),
    "outflow_error_m_s": ("m s-1", "retrieved minus true peak outflow speed along L"),
    "lag_error_s": ("s", "retrieved minus true IMF lag"),
    "escape_flux_rel_error": ("1", "retrieved / true escape flux - 1"),
    "eigenvalue_ratio_12": ("1", "MVA lambda1 / lambda2"),
    "eigenvalue_ratio_23": ("1", "MVA lambda2 / lambda3"),
    "normal_error_predicted_deg": ("degree", "Sonnerup-Scheible 1-sigma error of the normal"),
    "normal_angle_error_constrained_deg": ("degree", "angle between the constrained-MVA "
                                           "(<B.N> = 0) normal and the true normal"),
}

#: Why a source's normal spread is or is not what Sonnerup-Scheible predict.
SS_NOTES = {
    "mag_white": "independent isotropic noise: the formula's assumptions hold, ratio ~1",
    "mag_correlated": "correlated noise: M samples hold fewer independent ones; the ratio "
                      "approaches sqrt((1+rho)/(1-rho)) for AR(1) with rho = exp(-dt/tau)",
    "mag_offset": "a constant offset moves the mean, not the variance: no normal error and "
                  "no predicted error (lambda3 = 0 without noise); ratio undefined",
    "ion_noise": "the moments do not enter MVA; ratio undefined",
    "geometry": "no noise: lambda3 = 0 and the normal is exact; ratio undefined",
    "hall": "no noise: lambda3 = 0 and the normal is exact; ratio undefined",
    "motion": "not noise but a systematic rotation of the normal along the path (curvature, "
              "tilt): lambda3 measures it but the errors are correlated, not 1/sqrt(M)",
    "mva_interval": "no noise: the normal of a 1-D sheet does not depend on the interval; "
                    "ratio undefined",
    "imf": "the monitors do not enter MVA; ratio undefined",
    ALL: "noise correlated and sheet motion on: above 1 for the reasons of those sources; "
         "and where the Hall draw is small the intermediate and minimum variances are both "
         "noise (lambda2/lambda3 ~ 1), the normal is undetermined and a few such draws "
         "dominate the RMS (compare normal_angle_p68_deg)",
}


def is_sheet_scenario(scenario) -> bool:
    """Whether ``scenario`` (name, path or parsed dict) names a current-sheet scenario."""
    if isinstance(scenario, dict):
        return "sheet" in scenario and "crossing" in scenario
    if not isinstance(scenario, (str, Path)):
        return False
    text = str(scenario)
    if text in BUILTIN_SHEET_SCENARIOS:
        return True
    path = Path(text)
    try:
        if path.suffix.lower() != ".toml" or not path.is_file():
            return False
        return "sheet" in tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False  # the RO loader then gives its own one-sentence error


def clean_scenario(scn: dict) -> dict:
    """The scenario with every error source off (module docstring)."""
    c = copy.deepcopy(scn)
    c["magnetometer"].update(noise_nt=0.0, correlation_time_s=0.0, offset_nt=[0.0, 0.0, 0.0])
    c["ions"].update(density_noise_rel=0.0, velocity_noise_m_s=0.0)
    c["imf"].update(fluctuation_deg=0.0, upstream_noise_nt=0.0, downstream_noise_nt=0.0)
    c["motion"].update(oscillation_amplitude_km=0.0, curvature_per_km=0.0,
                       tilt_rate_deg_s=0.0)
    c.setdefault("second", {})["noise_nt"] = 0.0
    return c


def _shift_utc(text: str, seconds: float) -> str:
    t = np.datetime64(str(text).rstrip("Z"), "ns") + np.timedelta64(int(round(seconds * 1e9)),
                                                                      "ns")
    return str(t)


def perturb_scenario(scn: dict, clean: dict, members, rng) -> tuple[dict, int]:
    """The clean scenario with ``members`` switched on, drawn from ``rng``; and a noise seed.

    Draws happen in a fixed order whatever the members, so that a source draws the same
    values alone and within ``all``.
    """
    out = copy.deepcopy(clean)
    bud = scn["budget"]
    on = set(members)
    offsets = rng.normal(0.0, bud["offset_rms_nt"], 3)
    angle = rng.uniform(*bud["angle_to_normal_deg"])
    off_l = rng.uniform(*bud["offset_l_km"])
    hall_rel = rng.uniform(*bud["hall_rel"])
    period = rng.uniform(*bud["oscillation_period_s"])
    phase = rng.uniform(0.0, 360.0)
    curv = rng.normal(0.0, bud["curvature_rms_per_km"])
    tilt = rng.normal(0.0, bud["tilt_rate_rms_deg_s"])
    jitter = rng.uniform(-1.0, 1.0, 2) * bud["window_jitter_s"]
    noise_seed = int(rng.integers(0, 2**63 - 1))
    mag = out["magnetometer"]
    if "mag_white" in on or "mag_correlated" in on:
        mag["noise_nt"] = scn["magnetometer"]["noise_nt"]
    if "mag_correlated" in on:
        mag["correlation_time_s"] = bud["correlation_time_s"]
    if "mag_offset" in on:
        mag["offset_nt"] = offsets.tolist()
    if "ion_noise" in on:
        out["ions"].update(density_noise_rel=scn["ions"]["density_noise_rel"],
                           velocity_noise_m_s=scn["ions"]["velocity_noise_m_s"])
    if "geometry" in on:
        out["crossing"].update(angle_to_normal_deg=angle, offset_l_km=off_l)
    if "hall" in on:
        out["sheet"]["hall_field_nt"] = scn["sheet"]["hall_field_nt"] * hall_rel
    if "motion" in on:
        out["motion"].update(oscillation_amplitude_km=bud["oscillation_amplitude_km"],
                             oscillation_period_s=period, oscillation_phase_deg=phase,
                             curvature_per_km=curv, tilt_rate_deg_s=tilt)
    if "mva_interval" in on:
        w = out["analysis"]["window_utc"]
        out["analysis"]["window_utc"] = [_shift_utc(w[0], jitter[0]), _shift_utc(w[1], jitter[1])]
    if "imf" in on:
        for k in ("fluctuation_deg", "upstream_noise_nt", "downstream_noise_nt"):
            out["imf"][k] = scn["imf"][k]
    return out, noise_seed


def _round_trip(scn: dict, seed: int) -> dict:
    """One crossing: simulate, retrieve, compare (the metrics of :data:`METRICS`)."""
    from retrieval.reconnection import analyse_sheet_crossing
    from synth.current_sheet import simulate_sheet_crossing
    from validation.sheet import compare_sheet

    truth, obs = simulate_sheet_crossing(scn, seed)
    m = compare_sheet(truth, analyse_sheet_crossing(obs))
    out = {k: float(m[k]) for k in METRICS}
    for k in ("eigenvalue_ratio_12", "eigenvalue_ratio_23"):
        if not 0.0 < out[k] < 1e12:  # noise-free MVA: lambda3 is round-off, the ratio infinite
            out[k] = float("inf")
    return out


def chunk_task(scn: dict, clean: dict, label: str, members: tuple, realisations: tuple,
               root_seed: int) -> dict:
    """Draw, simulate, retrieve and score a block of realisations of one source set."""
    from validation.budget import realisation_rng

    n = len(realisations)
    out = {k: np.full(n, np.nan) for k in METRICS}
    out["status"] = np.full(n, STATUS_OK, np.int8)
    out["message"] = [""] * n
    for j, r in enumerate(realisations):
        rng = realisation_rng(root_seed, label, 0, r)
        try:
            var, noise_seed = perturb_scenario(scn, clean, members, rng)
            m = _round_trip(var, noise_seed)
        except RoharnessError as exc:  # a retrieval that fails is data: flagged
            out["status"][j] = STATUS_FAILED
            out["message"][j] = str(exc)
            continue
        for k in METRICS:
            out[k][j] = m[k]
    return out


def floor_task(clean: dict) -> dict:
    """The round trip of the clean crossing (the floor)."""
    return _round_trip(clean, 0)


def resolve_sources(scn: dict, sources=None) -> list[str]:
    """Checked source names (default: the scenario's ``[budget] sources``)."""
    names = list(scn["budget"]["sources"] if sources is None else sources)
    unknown = [s for s in names if s not in BUDGET_SOURCES]
    if unknown or not names:
        raise ScenarioError(f"unknown current-sheet error source '{unknown[0] if unknown else ''}'"
                            f"; known sources: {', '.join(BUDGET_SOURCES)}")
    if len(set(names)) != len(names):
        raise ScenarioError(f"error source listed twice in {', '.join(names)}")
    return names


def _rms(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x**2))) if x.size else float("nan")


def _median(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def summarise(ds: xr.Dataset) -> dict:
    """The summary (JSON) of a sheet-budget Dataset (module docstring for the metrics)."""
    per = {}
    for lab in ds.source.values.astype(str).tolist():
        d = ds.sel(source=lab)
        ok = d.status.values == STATUS_OK
        v = {k: d[k].values[ok] for k in METRICS}
        pred = _median(v["normal_error_predicted_deg"])
        rms_n = _rms(v["normal_angle_error_deg"])
        ratio = rms_n / pred if np.isfinite(pred) and pred > 1e-6 else float("nan")
        per[lab] = dict(
            normal_angle_rms_deg=rms_n,
            normal_angle_p68_deg=float(np.percentile(v["normal_angle_error_deg"], 68.27))
            if ok.any() else float("nan"),
            l_angle_rms_deg=_rms(v["l_angle_error_deg"]),
            m_angle_rms_deg=_rms(v["m_angle_error_deg"]),
            normal_constrained_rms_deg=_rms(v["normal_angle_error_constrained_deg"]),
            guide_field_rms_nt=_rms(v["guide_field_error_nt"]),
            guide_field_bias_nt=float(np.nanmean(v["guide_field_error_nt"])) if ok.any()
            else float("nan"),
            outflow_rms_m_s=_rms(v["outflow_error_m_s"]), lag_rms_s=_rms(v["lag_error_s"]),
            escape_flux_rel_rms=_rms(v["escape_flux_rel_error"]),
            eigenvalue_ratio_12_median=_median(v["eigenvalue_ratio_12"]),
            eigenvalue_ratio_23_median=_median(v["eigenvalue_ratio_23"]),
            normal_predicted_median_deg=pred, sonnerup_scheible_ratio=ratio,
            sonnerup_scheible_note=SS_NOTES.get(lab, ""),
            realisations_ok=int(ok.sum()), failed=int((~ok).sum()))
    floor = {k: float(ds[f"floor_{k}"]) for k in METRICS}
    sources = [s for s in ds.source.values.astype(str).tolist() if s != ALL]
    return dict(kind="sheet_budget", scenario=ds.attrs["scenario"], sources=sources,
                per_source=per, floor=floor,
                realisations=int(ds.sizes["realisation"]), seed=int(ds.attrs["seed"]),
                retrieval="builtin")


def _assemble(labels, sets, chunks, n_real, floor, scn, root_seed) -> xr.Dataset:
    shape = (len(labels), n_real)
    data = {k: np.full(shape, np.nan) for k in METRICS}
    status = np.full(shape, STATUS_FAILED, np.int8)
    messages = np.full(shape, "", dtype=object)
    for (li, reals), res in chunks:
        idx = list(reals)
        for k in METRICS:
            data[k][li, idx] = res[k]
        status[li, idx] = res["status"]
        messages[li, idx] = res["message"]
    dims = ("source", "realisation")
    ds = xr.Dataset(
        {k: (dims, data[k], {"units": u, "long_name": n}) for k, (u, n) in METRICS.items()},
        coords=dict(
            source=("source", np.array(labels, dtype=str),
                    {"long_name": "error source of the run ('all': every source on)"}),
            realisation=("realisation", np.arange(n_real),
                         {"units": "1", "long_name": "Monte Carlo realisation index"})))
    ds["status"] = (dims, status, {
        "long_name": "run status", "flag_values": np.array([STATUS_OK, STATUS_FAILED], np.int8),
        "flag_meanings": "retrieved retrieval_failed"})
    for k, (u, n) in METRICS.items():
        ds[f"floor_{k}"] = ((), floor[k], {"units": u, "long_name": n + " (clean crossing: "
                                           "the retrieval's floor)"})
    members = list(BUDGET_SOURCES)
    ds = ds.assign_coords(member=("member", np.array(members, dtype=str),
                                  {"long_name": "error source that a run can switch on"}))
    ds["source_members"] = (("source", "member"), np.array(
        [[m in sets[lab] for m in members] for lab in labels], np.int8), {
        "long_name": "error sources switched on in the run of each source label",
        "flag_values": np.array([0, 1], np.int8), "flag_meanings": "off on"})
    ds.attrs.update(scenario=scn.get("name", ""), scenario_sha256=scn.get("sha256", ""),
                    seed=int(root_seed), Conventions=cf.CONVENTIONS,
                    title="roharness Monte Carlo error budget of a current-sheet crossing")
    return cf.mark_coordinates(ds), messages


def _run_hash(scn, names, n_real, root_seed, chunk_size) -> str:
    from validation import __version__

    what = dict(s={k: v for k, v in scn.items() if k not in ("source", "sha256")},
                src=names, n=n_real, seed=root_seed, chunk=chunk_size, v=__version__)
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_sheet_budget(scenario="mars-2024-11-07", sources=None, realisations=None, *,
                     seed=None, scheduler=None, workers=None, out_dir=None, progress=None,
                     chunk_size: int = 10, report: bool = True,
                     return_dataset: bool = False, retrieval=None) -> dict:
    """Run the Monte Carlo budget of a current-sheet crossing (module docstring).

    Parameters
    ----------
    scenario : str, path or dict
        A sheet scenario (built-in name, TOML file or parsed); its ``[budget]`` table gives
        the defaults of ``sources``, ``realisations`` and ``seed`` and the source amplitudes.
    sources : list of str, optional
        Error sources (:data:`synth.sheet_scenario.BUDGET_SOURCES`).
    realisations : int, optional
        Realisations per source and for ``all``.
    seed : int, optional
        Root seed.
    scheduler, workers
        See :class:`validation.engine.Engine`.
    out_dir : path, optional
        Writes ``budget.nc``, ``summary.json`` and ``report.html``; checkpoints in
        ``out_dir/checkpoint/<run hash>/``.
    retrieval : optional
        Only the built-in retrieval exists for current sheets (``None`` or ``builtin``).

    Returns
    -------
    dict
        The summary (:func:`summarise`) plus ``engine``, ``elapsed_s``; or
        ``(summary, dataset)`` with ``return_dataset``.
    """
    t0 = time.perf_counter()
    if retrieval is not None and not getattr(retrieval, "is_builtin", retrieval == "builtin"):
        raise RoharnessError("a current-sheet budget runs the built-in reconnection retrieval "
                             "only; expected no --retrieval (or 'builtin').")
    scn = scenario if isinstance(scenario, dict) else load_sheet_scenario(scenario)
    names = resolve_sources(scn, sources)
    n_real = int(scn["budget"]["realisations"] if realisations is None else realisations)
    if n_real < 1:
        raise RoharnessError(f"number of realisations must be >= 1, got {n_real}")
    root_seed = int(scn["budget"]["seed"] if seed is None else seed)
    sets = {s: (s,) for s in names}
    if len(names) >= 2:
        sets[ALL] = tuple(names)
    labels = list(sets)
    clean = clean_scenario(scn)
    run_hash = _run_hash(scn, names, n_real, root_seed, chunk_size)
    ckpt = Path(out_dir) / "checkpoint" / run_hash if out_dir is not None else None
    with Engine(scheduler, workers) as eng:
        floor = eng.map(floor_task, {"floor": (clean,)}, ckpt, label="sheet budget: floor",
                        progress=progress)["floor"]
        s_scn, s_clean = eng.share(scn), eng.share(clean)
        tasks, where = {}, {}
        for li, lab in enumerate(labels):
            for c0 in range(0, n_real, chunk_size):
                block = tuple(range(c0, min(c0 + chunk_size, n_real)))
                key = f"{lab}-r{block[0]}-{block[-1]}"
                tasks[key] = (s_scn, s_clean, lab, sets[lab], block, root_seed)
                where[key] = (li, block)
        results = eng.map(chunk_task, tasks, ckpt, label="sheet budget: Monte Carlo",
                          progress=progress)
        engine = eng.description
    ds, messages = _assemble(labels, sets, [(where[k], r) for k, r in results.items()],
                             n_real, floor, scn, root_seed)
    summary = summarise(ds)
    summary["messages"] = sorted({f"{labels[i]} r{j}: {messages[i, j]}"
                                  for i, j in zip(*np.nonzero(ds.status.values))})[:20]
    summary.update(engine=engine, elapsed_s=time.perf_counter() - t0, run_hash=run_hash,
                   occultations=1, skipped_sources=[])
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "budget.nc", suffix=".nc") as tmp:
            ds.to_netcdf(tmp)
        from validation.cli import _clean

        write_text_atomic(out / "summary.json", json.dumps(_clean(summary), indent=2) + "\n")
        if report:
            write_report(summary, ds, out / "report.html")
    return (summary, ds) if return_dataset else summary


# --------------------------------------------------------------------------- output
#: Terminal / report columns: summary key, header, unit.
COLUMNS = (
    ("normal_angle_rms_deg", "normal", "deg"),
    ("l_angle_rms_deg", "L", "deg"),
    ("m_angle_rms_deg", "M", "deg"),
    ("guide_field_rms_nt", "B_g", "nT"),
    ("outflow_rms_m_s", "outflow", "m/s"),
    ("lag_rms_s", "lag", "s"),
    ("escape_flux_rel_rms", "flux", "rel"),
    ("eigenvalue_ratio_12_median", "l1/l2", "median"),
    ("eigenvalue_ratio_23_median", "l2/l3", "median"),
    ("sonnerup_scheible_ratio", "MC/SS", "1"),
)
_W = 10


def _cells(values) -> str:
    return "".join(f"{v:>{_W}.3g}" if isinstance(v, float) else f"{v:>{_W}}" for v in values)


def _rows(s: dict):
    rows = [(n, s["per_source"][n]) for n in s["sources"]]
    if ALL in s["per_source"]:
        rows.append(("all together", s["per_source"][ALL]))
    return rows


def print_sheet_summary(s: dict) -> None:
    """Human summary of a sheet budget: RMS errors per source, floor, Sonnerup-Scheible."""
    print(f"error budget of current sheet {s['scenario']}: {s['realisations']} realisations "
          f"per source, {s['engine']}, {s['elapsed_s']:.1f} s")
    print(f"  {'RMS error (1 sigma)':<16}" + _cells([c[1] for c in COLUMNS]) + f"{'failed':>8}")
    print(f"  {'':<16}" + _cells([f"[{c[2]}]" for c in COLUMNS]))
    for name, p in _rows(s):
        print(f"  {name:<16}" + _cells([p[c[0]] for c in COLUMNS]) + f"{p['failed']:>8d}")
    fl = s["floor"]
    print(f"  {'floor (clean)':<16}" + _cells([
        fl["normal_angle_error_deg"], fl["l_angle_error_deg"], fl["m_angle_error_deg"],
        fl["guide_field_error_nt"], fl["outflow_error_m_s"], fl["lag_error_s"],
        fl["escape_flux_rel_error"], fl["eigenvalue_ratio_12"], fl["eigenvalue_ratio_23"], "-"]))
    for name, p in _rows(s):
        if np.isfinite(p["sonnerup_scheible_ratio"]):
            print(f"  Sonnerup-Scheible ({name}): MC spread / predicted = "
                  f"{p['sonnerup_scheible_ratio']:.3f} over {p['realisations_ok']} "
                  f"realisations ({p['sonnerup_scheible_note']})")
    for m in s.get("messages", []):
        print(f"  failed realisation: {m}")


def write_report(s: dict, ds: xr.Dataset, path) -> str:
    """Self-contained HTML report of a sheet budget (:mod:`validation.report`)."""
    from validation.report import figure, html_report, table_html

    head = ["source"] + [f"{c[1]} [{c[2]}]" for c in COLUMNS] + ["failed"]
    rows = [[n] + [p[c[0]] for c in COLUMNS] + [p["failed"]] for n, p in _rows(s)]
    fl = s["floor"]
    floor_rows = [[k, METRICS[k][0], v] for k, v in fl.items()]
    fig = figure()
    ax = fig.add_subplot(1, 2, 1)
    labels = [str(x) for x in ds.source.values]
    vals = [ds.normal_angle_error_deg.sel(source=lab).values for lab in labels]
    ax.boxplot([v[np.isfinite(v)] for v in vals], tick_labels=labels,
               orientation="horizontal")
    ax.set_xscale("log")
    ax.set_xlabel("normal angle error [deg]")
    ax2 = fig.add_subplot(1, 2, 2)
    for lab in labels:
        g = ds.guide_field_error_nt.sel(source=lab).values
        ax2.plot(np.sort(g), np.linspace(0, 1, g.size), label=lab)
    ax2.set_xlabel("guide field error [nT]")
    ax2.set_ylabel("cumulative fraction")
    ax2.legend(fontsize=6)
    notes = "".join(f"<li>{n}: ratio {p['sonnerup_scheible_ratio']:.3g} "
                    f"({p['realisations_ok']} realisations) &mdash; {p['sonnerup_scheible_note']}"
                    "</li>" for n, p in _rows(s))
    sections = [
        ("RMS errors per source (1 sigma, from the truth)", table_html(rows, head)),
        ("Floor: the clean crossing", table_html(floor_rows, ["metric", "unit", "value"])),
        ("Distributions", fig),
        ("Sonnerup-Scheible: Monte Carlo spread of the normal / predicted error",
         f"<ul>{notes}</ul>"),
    ]
    return html_report(f"Current-sheet error budget: {s['scenario']}", sections, path,
                       meta=f"scenario {s['scenario']}, seed {s['seed']}, "
                            f"{s['realisations']} realisations per source")
