"""The campaign driver: search, accuracy, cadence, comparison, outputs (:func:`run_campaign`)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from validation.campaign.accuracy import (
    FLAG_MEANINGS,
    METRICS,
    _accuracy,
    budget_sources,
    fit_with_floor,
    meets_target,
    observable,
    predict_with_floor,
    prediction_flags,
    reference_density,
)
from validation.campaign.cadence import SZA_BINS_DEG, apply_cadence, coverage
from validation.campaign.config import Campaign, design_scenario, load_campaign
from validation.campaign.report import write_campaign
from validation.campaign.search import search_link
from validation.engine import Engine

if TYPE_CHECKING:  # annotations only
    import os


class _Stages:
    """Progress lines on stderr, one per campaign stage: ``campaign: <what> (<t> s)``.

    Written whether or not stderr is a terminal (a run of minutes must never look hung;
    ``--json`` keeps stdout clean), silent with ``progress=False``. The engine's own
    per-task progress (bar or timed lines) runs under each stage.
    """

    def __init__(self, progress, stream=None):
        self.enabled = progress is not False
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, text: str) -> None:
        if not self.enabled:
            return
        try:
            self.stream.write(f"campaign: {text} ({time.perf_counter() - self.t0:.0f} s)\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed log must not stop the run
            self.enabled = False



def run_campaign(campaign: Campaign | str | os.PathLike = "mex-tgo-180d", *,
                 start_utc: str | None = None, stop_utc: str | None = None,
                 out_dir: str | os.PathLike | None = None, scheduler: str | None = None,
                 workers: int | None = None, progress: bool | None = None,
                 accuracy: bool = True) -> dict:
    """Run a campaign design (module docstring); return the summary.

    Parameters
    ----------
    campaign : Campaign, str or path
        A campaign object, a built-in name or a TOML file.
    start_utc, stop_utc : str, optional
        Override the ``[span]``.
    out_dir : path, optional
        Writes ``events.csv``, ``events.nc``, ``comparison.csv``, ``summary.json`` and
        ``report.html``; budget checkpoints go to ``out_dir/budgets`` so a rerun resumes.
    scheduler, workers
        See :class:`validation.engine.Engine` (``workers=0``: in-process).
    accuracy : bool
        Run the budgets (False: geometry and coverage only).

    Returns
    -------
    dict
        ``n_events``, ``min_sza_deg``, ``n_below_sza_45``, ``designs`` (per design
        ``n_meeting_target`` and coverage), ``comparison``, ``check``, ``fits``, ...;
        the events Dataset is under the key ``"events"`` (not JSON).
    """
    from retrieval import spice

    t_start = time.perf_counter()
    c = campaign if isinstance(campaign, Campaign) else load_campaign(campaign)
    span = dict(c["span"])
    if start_utc:
        span["start_utc"] = start_utc
    if stop_utc:
        span["stop_utc"] = stop_utc
    link = c.link
    timing = {}
    from validation.limits import check_campaign  # refuses (one sentence) runs of hours
    check_campaign(c, span["start_utc"], span["stop_utc"], accuracy, workers, scheduler)
    stage = _Stages(progress)
    n_stages = 2 + bool(c["comparison"]["enabled"]) + bool(accuracy)
    k = iter(range(1, n_stages + 1))
    stage(f"starting {c.name}, {span['start_utc']} to {span['stop_utc']}")
    with Engine(scheduler, workers) as eng:
        t0 = time.perf_counter()
        stage(f"step {next(k)}/{n_stages}: searching {link['transmitter']} -> "
              f"{link['receiver']} events, {_n_chunks(span)} chunk(s) of "
              f"{span['chunk_days']:g} d")
        events = search_link(link["transmitter"], link["receiver"], span["start_utc"],
                             span["stop_utc"], kernels=link["kernels"],
                             reference_altitude_km=span["reference_altitude_km"],
                             step_s=span["step_s"], chunk_days=span["chunk_days"],
                             engine=eng, progress=progress, label="search")
        timing["search_s"] = time.perf_counter() - t0
        timing["search_cpu_s"] = events.attrs["search_cpu_s"]
        comp = None
        if c["comparison"]["enabled"]:
            t0 = time.perf_counter()
            stage(f"step {next(k)}/{n_stages}: {events.sizes['event']} events found; "
                  f"searching the comparison link {c['comparison']['transmitter']} -> "
                  f"{c['comparison']['receiver']}")
            comp = search_link(c["comparison"]["transmitter"], c["comparison"]["receiver"],
                               span["start_utc"], span["stop_utc"], kernels=link["kernels"],
                               reference_altitude_km=span["reference_altitude_km"],
                               step_s=span["step_s"], chunk_days=span["chunk_days"],
                               engine=eng, progress=progress, label="comparison")
            timing["comparison_search_s"] = time.perf_counter() - t0
        start_et = spice.utc_to_et(span["start_utc"])
        t0 = time.perf_counter()
        if accuracy:
            stage(f"step {next(k)}/{n_stages}: accuracy, choosing {c['accuracy']['subset']} "
                  "subset events")
        acc = _accuracy(c, events, eng, out_dir, progress, stage=stage) if accuracy else None
        timing["accuracy_s"] = time.perf_counter() - t0
        engine_description = eng.description
    stage(f"step {next(k)}/{n_stages}: cadence, coverage and report")
    events, designs, fits, check = _assemble(c, events, acc, start_et)
    summary = _summary(c, span, events, designs, fits, check, accuracy)
    if comp is not None:
        summary["comparison"] = _comparison_summary(c, comp)
    summary.update(timing=timing, elapsed_s=time.perf_counter() - t_start,
                   engine=engine_description)
    if out_dir is not None:
        write_campaign(events, comp, summary, c, out_dir)
    stage("done")
    summary["events"] = events
    summary["comparison_events"] = comp
    return summary


def _summary(c: Campaign, span: dict, events: xr.Dataset, designs: dict, fits: dict, check,
             accuracy: bool) -> dict:
    """The summary's link, span, event counts and coverage, and per-design results."""
    cov = coverage(events.sza_deg.values)
    link = c.link
    return dict(
        campaign=c.name, link=dict(link, kernels=list(link["kernels"])),
        start_utc=span["start_utc"], stop_utc=span["stop_utc"],
        reference_altitude_km=span["reference_altitude_km"],
        n_events=cov["n"], min_sza_deg=cov["min_sza_deg"], max_sza_deg=cov["max_sza_deg"],
        n_below_sza_45=cov["n_below_sza_45"], n_below_sza_10=int(
            (events.sza_deg.values < 10.0).sum()),
        n_nightside=cov["n_nightside"], n_observable=int(events.observable.values.sum()),
        n_ingress=int((events.kind.values == "ingress").sum()),
        sza_histogram=cov["sza_histogram"], sza_bins_deg=SZA_BINS_DEG.tolist(),
        target={k: v for k, v in c["target"].items()},
        cadence=dict(c["cadence"]), designs=designs, fits=fits, check=check,
        n_meeting_target={d: v["n_meeting_target"] for d, v in designs.items()},
        template=c.template.name, template_design=_template_design(c),
        accuracy_run=bool(accuracy),
        budget_sources=budget_sources(c, design_scenario(c, c.designs[0])) if accuracy
        else [],
    )


def _comparison_summary(c: Campaign, comp: xr.Dataset) -> dict:
    """Counts and coverage of the comparison link's events."""
    cc = coverage(comp.sza_deg.values)
    obs_c = comp.bottom_altitude_km.values <= c["target"]["max_bottom_altitude_km"]
    return dict(
        transmitter=c["comparison"]["transmitter"], receiver=c["comparison"]["receiver"],
        n_events=cc["n"], min_sza_deg=cc["min_sza_deg"],
        n_below_sza_45=cc["n_below_sza_45"], n_below_sza_40=int(
            (comp.sza_deg.values < 40.0).sum()), sza_histogram=cc["sza_histogram"],
        n_observable=int(obs_c.sum()))


def _n_chunks(span) -> int:
    from retrieval import spice

    d = (spice.utc_to_et(span["stop_utc"]) - spice.utc_to_et(span["start_utc"])) / 86400.0
    return max(1, int(np.ceil(d / span["chunk_days"])))


def _template_design(c: Campaign) -> dict:
    """The design keys' values in the template (what a design that leaves them out gets)."""
    s = design_scenario(c, dict(c.designs[0], oscillator=None, frequency_hz=None,
                                sampling_rate_hz=None, cn0_dbhz=None))
    return dict(oscillator=s["oscillator"]["receiver_preset"],
                frequency_hz=s["link"]["frequency_hz"], sampling_rate_hz=s["sampling"]["rate_hz"],
                cn0_dbhz=s["receiver"]["cn0_dbhz"], per_week=c["cadence"]["per_week"])


def _check_rows(r_check: dict, pred: dict, check_idx, j: int) -> dict:
    """Per metric, the predictions of the check events against their direct Monte Carlo
    (design column ``j``)."""
    rows = {}
    for m in METRICS:
        mc = r_check[m]
        predicted = pred[m][check_idx, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = predicted / mc
        rows[m] = dict(predicted=predicted.tolist(), direct=mc.tolist(),
                       ratio=ratio.tolist(),
                       max_abs_rel_diff=float(np.nanmax(np.abs(ratio - 1)))
                       if np.isfinite(ratio).any() else np.nan)
    return rows


def _add_design_vars(events: xr.Dataset, names, pred, flags, direct, meets, observed,
                     in_subset, nref) -> xr.Dataset:
    """The per-(event, design) predictions, flags, budgets, target and cadence variables."""
    events = events.assign_coords(design=("design", names))
    for m, (_, _, unit, long_name) in METRICS.items():
        events[f"predicted_{m}"] = (("event", "design"), pred[m],
                                    {"units": unit, "long_name": long_name})
        events[f"flag_{m}"] = (("event", "design"), flags[m], {
            "long_name": f"why predicted_{m} is not trustworthy (0: it is)",
            "flag_masks": np.array([1, 2, 4], np.int8), "flag_meanings": " ".join(FLAG_MEANINGS)})
        events[f"budget_{m}"] = (("event", "design"), direct[m], {
            "units": unit, "long_name": long_name.replace("predicted", "Monte Carlo (error "
                                                          "budget, all sources on)")})
    events["meets_target"] = (("event", "design"), meets,
                              {"long_name": "observable and predicted to meet the target"})
    events["observed"] = (("event", "design"), observed,
                          {"long_name": "selected by the design's cadence"})
    events["in_budget_subset"] = ("event", in_subset,
                                  {"long_name": "run through the error budget"})
    if nref is not None:
        events["m2_reference_density"] = ("event", nref["m2"], {
            "units": "1", "long_name": "template M2 peak density over its subsolar value"})
    return events


def _assemble(c: Campaign, events: xr.Dataset, acc, start_et):
    """Add observability, predictions, cadence flags to the events; per-design results."""
    n = events.sizes["event"]
    names = [d["name"] for d in c.designs]
    events = events.copy()
    obs = observable(events, c)
    events["observable"] = ("event", obs, {"long_name": "ray spans the target's altitude "
                                           "range (top above min_top, bottom below "
                                           "max_bottom)"})
    nd = len(names)
    pred = {m: np.full((n, nd), np.nan) for m in METRICS}
    flags = {m: np.zeros((n, nd), np.int8) for m in METRICS}
    direct = {m: np.full((n, nd), np.nan) for m in METRICS}
    meets = np.zeros((n, nd), bool)
    observed = np.zeros((n, nd), bool)
    in_subset = np.zeros(n, bool)
    fits, check, designs = {}, None, {}
    nref = None
    if acc is not None:
        in_subset[acc["subset"]] = True
        nref = reference_density(c.template, events.sza_deg.values, events.ltst_hours.values,
                                 events.ls_deg.values)
        dayside = events.sza_deg.values <= c["accuracy"]["max_sza_deg"]
        v = events.vertical_speed_km_s.values
        check = {"events": acc["check"].tolist(), "designs": {}}
        for j, d in enumerate(c.designs):
            r = acc["designs"][d["name"]]
            fits[d["name"]] = {}
            for m in METRICS:
                direct[m][acc["subset"], j] = r["subset"][m]
                if r["check"] is not None and len(acc["check"]):
                    direct[m][acc["check"], j] = r["check"][m]
            for m, (_, ref, _, _) in METRICS.items():
                f = fit_with_floor(r["subset"][m], r["subset"][f"floor_{m}"],
                                   v[acc["subset"]], nref[ref][acc["subset"]])
                fits[d["name"]][m] = f
                p = predict_with_floor(f, v, nref[ref])
                if not f["n"] and not f["floor"] > 0:  # nothing measured: no prediction
                    p = np.full(n, np.nan)
                pred[m][:, j] = np.where(dayside & obs, p, np.nan)
                flags[m][:, j] = np.where(np.isfinite(pred[m][:, j]),
                                          prediction_flags(f, v, nref[ref]), 0)
            meets[:, j] = obs & meets_target({m: pred[m][:, j] for m in METRICS}, c)
            if r["check"] is not None and len(acc["check"]):
                check["designs"][d["name"]] = _check_rows(r["check"], pred, acc["check"], j)
    rule, per_week0 = c["cadence"]["rule"], c["cadence"]["per_week"]
    targeted = [m for m in METRICS if c["target"][m] is not None]
    for j, d in enumerate(c.designs):
        per_week = d["per_week"] or per_week0
        observed[:, j] = apply_cadence(events, obs, meets[:, j], per_week, rule, start_et)
        good = observed[:, j] & meets[:, j]
        flagged = np.zeros(n, bool)
        for m in targeted:
            flagged |= flags[m][:, j] != 0
        cov = coverage(events.sza_deg.values[good])
        trusted = {m: observed[:, j] & (flags[m][:, j] == 0) for m in METRICS}
        designs[d["name"]] = dict(
            {k: v for k, v in d.items() if k != "name"}, per_week=per_week,
            n_observed=int(observed[:, j].sum()), n_meeting_target=int(good.sum()),
            n_meeting_target_flagged=int((good & flagged).sum()),
            n_observed_flagged=int((observed[:, j] & flagged).sum()),
            n_meeting_target_all_events=int(meets[:, j].sum()),
            min_sza_deg=cov["min_sza_deg"], n_below_sza_45=cov["n_below_sza_45"],
            sza_histogram=cov["sza_histogram"],
            poor_fit=[m for m in METRICS if fits.get(d["name"], {}).get(m, {}).get("poor")],
            # medians over the observed events whose prediction is not flagged
            median_m2_peak_density_rel=_nanmedian(
                pred["m2_peak_density_rel"][trusted["m2_peak_density_rel"], j]),
            median_m2_peak_altitude_km=_nanmedian(
                pred["m2_peak_altitude_km"][trusted["m2_peak_altitude_km"], j]))
    events = _add_design_vars(events, names, pred, flags, direct, meets, observed, in_subset,
                              nref)
    events.attrs.update(campaign=c.name, Conventions="CF-1.8",
                        title="roharness campaign: occultation events, coverage, accuracy")
    return events, designs, fits, check


def _nanmedian(x):
    x = np.asarray(x, float)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else np.nan
