r"""Predicted accuracy of every event: budgets on a subset, a scaling rule for the rest.

Accuracy rule (interpolation from the subset to every event)
------------------------------------------------------------
For a white frequency error :math:`\sigma_f` the electron-density error of a one-way
occultation scales as (Withers 2010, eq. 19-20 and the discussion of the thermal-noise
term)

.. math::  \sigma_{N_e} \propto \frac{f\,\sigma_f}{V},

with V the vertical speed of the tangent point: a slower ray spends longer at each altitude
and averages the frequency noise down. A relative error divides by the density itself,
which at the M2 peak falls with SZA as the Chapman layer does. Each metric of an event is
therefore predicted as

.. math::  \sigma_m(V, \chi) = C_m\,|V|^{-p_m} \,/\, \hat N_m(\chi),

where :math:`\hat N_m` is the template ionosphere's density at the M2 peak (for the M2
relative density and the M2 altitude error; a peak's altitude error is the density error
over the peak curvature, :math:`\propto H\,\sigma_N / N_{M2}`) or at 150 km (for
:math:`N_e(150\,\mathrm{km})`), normalised to the subsolar value. :math:`C_m` and
:math:`p_m` are fitted by least squares in log space to the subset's Monte Carlo results;
``p`` is bounded to [0, 3] and falls back to the thermal value p = 1 when fewer than three
subset events succeeded or their speeds span less than a factor 1.3. Oscillator drift
errors are also frequency errors mapped through 1/V, but they grow with the duration of the
occultation (itself ~ 1/V), hence the fitted exponent rather than a fixed 1. The scatter of
the fit (RMS of the log residuals) is reported as ``scatter_log``.

Where a prediction can be trusted (:func:`prediction_flags`)
------------------------------------------------------------
A prediction is a number only where the subset supports it; elsewhere it is flagged (CF
``flag_masks`` on ``flag_<metric>`` in ``events.nc``, left out of the medians, drawn faint in
the report):

* **fit quality** is the RMS of the natural-log residuals of the *whole* prediction
  (floor included) against the subset's own Monte Carlo, ``scatter_log_total``, shown as a
  factor :math:`e^{s}` beside the number of subset events ``n_total``: the rule reproduces
  the Monte Carlo it was fitted to within that factor. A fit is **poor** when the factor
  exceeds 2 (:data:`POOR_FIT_SCATTER_LOG`) or fewer than :data:`MIN_FIT_EVENTS` subset
  events succeeded. With R realisations the Monte Carlo RMS itself scatters by about
  :math:`1/\sqrt{2R}` (25 % for R = 8, 0.22 in log), so a factor 2 (0.69) is about three
  times what sampling alone gives. R^2 was not chosen: with the exponent bounded or fixed
  (the p = 1 fallback, p = 0 for a flat design) it is undefined or negative and says
  nothing about the size of the error.
* **extrapolation**: the rule's inputs, |V| and :math:`\hat N_m(\chi)`, outside the range
  the subset events with a Monte Carlo span by more than a factor
  :data:`EXTRAPOLATION_FACTOR` (1.25). Within it an exponent uncertain by +-0.5 changes
  the prediction by at most
  1.25^0.5 - 1 = 12 %, under the Monte Carlo's own sampling error; beyond it the error
  grows without bound (a fitted p = 3 carried from |V| = 0.6 to 0.14 km/s multiplies the
  prediction by 80). The reference density stands for the SZA: it is flat near the
  subsolar point, so low-SZA events extrapolate safely, and steep towards 90 deg.

The retrieval's own error on clean data (the budget's *floor*: discretisation, smoothing,
the drift correction fitted to drift-free data) does not follow this scaling. The rule is
therefore fitted to the sources' part, :math:`\sqrt{\sigma^2 - \sigma_{floor}^2}` per
subset event, and the prediction adds the subset's RMS floor back in quadrature,
:math:`\sigma_m = \sqrt{\sigma_{floor,m}^2 + (C_m |V|^{-p_m} / \hat N_m)^2}`
(:func:`fit_with_floor`). Measured effect on the direct Monte Carlo check (USO receiver,
M2 altitude, three events): predicted / direct 1.32, 1.14, 1.28 without the floor term,
1.30, 1.11, 1.25 with it.

References
----------
.. [1] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured by
   radio occultation experiments, Adv. Space Res. 46, 58-73, doi:10.1016/j.asr.2010.03.004.
.. [2] Parrott, J. et al. (2025), mutual radio occultations MEX-TGO (campaign statistics:
   124 measurements, about two per week; ../shared/SCIENCE.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import xarray as xr

from retrieval.errors import RoharnessError
from synth.scenario import Scenario
from validation.campaign.config import Campaign, design_scenario, event_scenario

#: Metrics predicted per event: name -> (budget variable, reference density, unit, long name)
METRICS = {
    "m2_peak_density_rel": ("m2_peak_density_rel_error", "m2", "1",
                            "predicted 1-sigma relative error of the M2 peak density"),
    "m2_peak_altitude_km": ("m2_peak_altitude_error_km", "m2", "km",
                            "predicted 1-sigma error of the M2 peak altitude"),
    "ne150_rel": ("ne150_rel_error", "ne150", "1",
                  "predicted 1-sigma relative error of N_e at 150 km"),
}


#: Fit quality limit: RMS of the log residuals of the prediction against the subset's Monte
#: Carlo above ln 2 (a factor 2) makes the fit poor (module docstring).
POOR_FIT_SCATTER_LOG = math.log(2.0)

#: Fewer subset events than this (with a finite Monte Carlo) make the fit poor.
MIN_FIT_EVENTS = 3

#: A prediction whose |V| or reference density lies outside the fitted subset's range by
#: more than this factor is an extrapolation (module docstring).
EXTRAPOLATION_FACTOR = 1.25

#: ``flag_<metric>`` bits (CF ``flag_masks``) and their ``flag_meanings``.
FLAG_SPEED, FLAG_SZA, FLAG_POOR_FIT = 1, 2, 4
FLAG_MEANINGS = ("speed_outside_subset_range", "reference_density_outside_subset_range",
                 "poor_fit")


def reference_density(scn: Scenario, sza_deg, ltst_hours, ls_deg) -> dict:
    """Template ionosphere's M2 peak density and N_e(150 km) at each event, over subsolar.

    Evaluated on a 1-deg SZA grid per Segale group (when the template uses ``segale2024``
    with ``group = "auto"``) and interpolated; NaN where SZA >= 90 deg.
    """
    from synth import ionosphere
    from synth.observe import _segale_group, build_layers

    sza = np.asarray(sza_deg, float)
    grid = np.arange(0.0, 90.0, 1.0)
    alt = np.arange(90e3, 200e3, 250.0)  # M2 (~120-150 km at SZA < 90 deg) and 150 km
    ion = scn["ionosphere"]
    auto = ion["model"] == "segale2024" and ion["group"] == "auto"
    groups = np.array([_segale_group(lt, ls) if auto else "" for lt, ls in
                       zip(np.broadcast_to(ltst_hours, sza.shape).ravel(),
                           np.broadcast_to(ls_deg, sza.shape).ravel())]).reshape(sza.shape)
    out = {"m2": np.full(sza.shape, np.nan), "ne150": np.full(sza.shape, np.nan)}
    for grp in np.unique(groups):
        lt, ls = {"": (12.0, 0.0), "dawn_aphelion": (6.0, 90.0),
                  "dawn_perihelion": (6.0, 250.0), "dusk_aphelion": (18.0, 90.0),
                  "dusk_perihelion": (18.0, 250.0)}[grp]
        pk, n150 = [], []
        for x in grid:
            ne = ionosphere.electron_density(alt, x, build_layers(scn, x, lt, ls),
                                             grazing=ion["grazing"])
            i = int(np.clip(np.argmax(ne), 1, len(ne) - 2))
            y0, y1, y2 = ne[i - 1:i + 2]  # parabola through the three points at the maximum
            pk.append(y1 + 0.125 * (y0 - y2) ** 2 / (2 * y1 - y0 - y2))
            n150.append(np.interp(150e3, alt, ne))
        pk, n150 = np.array(pk), np.array(n150)
        m = (groups == grp) & (sza < 90.0)
        out["m2"][m] = np.interp(sza[m], grid, pk / pk[0])
        out["ne150"][m] = np.interp(sza[m], grid, n150 / n150[0])
    return out


def select_subset(events: xr.Dataset, eligible: np.ndarray, n: int,
                  exclude=()) -> np.ndarray:
    """Indices of ``n`` representative eligible events, stratified in SZA and speed.

    The eligible events (not in ``exclude``) are split into ceil(n/2) SZA bins of equal
    count; in each bin the events nearest the 20th and 80th percentiles of |vertical speed|
    are taken (one bin with an odd ``n`` gets only the 50th). Deterministic.
    """
    idx = np.array([i for i in np.nonzero(eligible)[0] if i not in set(exclude)], int)
    if len(idx) <= n:
        return idx
    sza = events.sza_deg.values[idx]
    v = np.abs(events.vertical_speed_km_s.values[idx])
    nb = int(math.ceil(n / 2))
    order = np.argsort(sza, kind="stable")
    bins = np.array_split(order, nb)
    chosen = []
    for b, members in enumerate(bins):
        qs = (50,) if (n % 2 and b == nb // 2) else (20, 80)
        for q in qs:
            target = np.percentile(v[members], q)
            cand = [m for m in members[np.argsort(np.abs(v[members] - target), kind="stable")]
                    if idx[m] not in chosen]
            if cand:
                chosen.append(int(idx[cand[0]]))
    return np.array(sorted(chosen[:n]), int)


def fit_scaling(sigma, speed_km_s, nref) -> dict:
    """Fit ``sigma = C |V|^-p / nref`` in log space (module docstring); return C, p, scatter."""
    sigma, v, nref = (np.asarray(x, float) for x in (sigma, speed_km_s, nref))
    ok = np.isfinite(sigma) & (sigma > 0) & np.isfinite(v) & (np.abs(v) > 0) \
        & np.isfinite(nref) & (nref > 0)
    if not ok.any():
        return dict(c=np.nan, p=np.nan, scatter_log=np.nan, n=0)
    y = np.log(sigma[ok] * nref[ok])
    x = np.log(np.abs(v[ok]))
    p = 1.0
    if ok.sum() >= 3 and x.max() - x.min() > np.log(1.3):
        slope = np.polyfit(x, y, 1)[0]
        p = float(np.clip(-slope, 0.0, 3.0))
    logc = float(np.mean(y + p * x))
    resid = y - (logc - p * x)
    return dict(c=float(np.exp(logc)), p=p, n=int(ok.sum()),
                scatter_log=float(np.sqrt(np.mean(resid ** 2))) if ok.sum() > 1 else np.nan)


def predict(fit: dict, speed_km_s, nref) -> np.ndarray:
    """Apply a :func:`fit_scaling` result to events."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return fit["c"] * np.abs(np.asarray(speed_km_s, float)) ** -fit["p"] / np.asarray(nref)


def fit_with_floor(sigma, floor, speed_km_s, nref) -> dict:
    """The scaling rule with the retrieval's floor added in quadrature.

    The budget's per-event RMS (all sources on) contains the clean retrieval's own error
    (the floor: discretisation, smoothing, the drift correction fitted to drift-free
    data), which does not follow the sources' |V|^-p / N_ref scaling. The sources' part,
    sqrt(RMS^2 - floor^2), is fitted with :func:`fit_scaling`; the floor is represented
    by its RMS over the subset events, and the prediction is
    sqrt(floor^2 + (C |V|^-p / N_ref)^2) (:func:`predict_with_floor`).
    """
    sigma, floor = np.asarray(sigma, float), np.asarray(floor, float)
    with np.errstate(invalid="ignore"):
        src = np.sqrt(np.clip(sigma ** 2 - np.nan_to_num(floor) ** 2, 0.0, None))
        fl = float(np.sqrt(np.nanmean(floor ** 2))) if np.isfinite(floor).any() else 0.0
    f = fit_scaling(src, speed_km_s, nref)
    f["floor"] = fl
    f.update(fit_quality(f, sigma, speed_km_s, nref))
    return f


def fit_quality(fit: dict, sigma, speed_km_s, nref) -> dict:
    """How well a :func:`fit_with_floor` result reproduces the Monte Carlo it was fitted to.

    Returns ``scatter_log_total`` (RMS over the subset events of ln(prediction / Monte
    Carlo RMS), floor included), ``n_total`` (events with a finite, positive Monte Carlo
    and prediction), ``poor`` (module docstring: a factor above 2, or fewer than
    :data:`MIN_FIT_EVENTS` events) and the range of |V| and of the reference density
    those events span (``speed_min_km_s`` ... ``nref_max``: where the rule was checked).
    """
    sigma = np.asarray(sigma, float)
    v, nr = np.abs(np.asarray(speed_km_s, float)), np.asarray(nref, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(predict_with_floor(fit, v, nr) / sigma)
    ok = np.isfinite(r)
    s = float(np.sqrt(np.mean(r[ok] ** 2))) if ok.any() else np.nan
    n = int(ok.sum())
    rng = dict(speed_min_km_s=float(v[ok].min()), speed_max_km_s=float(v[ok].max()),
               nref_min=float(nr[ok].min()), nref_max=float(nr[ok].max())) if n else \
        dict(speed_min_km_s=np.nan, speed_max_km_s=np.nan, nref_min=np.nan, nref_max=np.nan)
    return dict(scatter_log_total=s, n_total=n,
                poor=bool(n < MIN_FIT_EVENTS or not s <= POOR_FIT_SCATTER_LOG), **rng)


def prediction_flags(fit: dict, speed_km_s, nref) -> np.ndarray:
    """Per event, the bits of :data:`FLAG_MEANINGS` for a prediction from ``fit``.

    :data:`FLAG_SPEED` / :data:`FLAG_SZA`: |V| / the reference density (standing for the
    SZA) outside the range of the subset events the rule was checked on
    (:func:`fit_quality`) by more than :data:`EXTRAPOLATION_FACTOR`;
    :data:`FLAG_POOR_FIT`: the fit is poor (:func:`fit_quality`). 0: trustworthy.
    """
    v = np.abs(np.asarray(speed_km_s, float))
    nr = np.asarray(nref, float)
    k = EXTRAPOLATION_FACTOR
    flags = np.zeros(np.broadcast(v, nr).shape, np.int8)
    if fit.get("poor", False):
        flags |= FLAG_POOR_FIT
    if fit.get("n_total"):
        with np.errstate(invalid="ignore"):
            flags |= np.where((v < fit["speed_min_km_s"] / k)
                              | (v > fit["speed_max_km_s"] * k), FLAG_SPEED, 0).astype(np.int8)
            flags |= np.where((nr < fit["nref_min"] / k)
                              | (nr > fit["nref_max"] * k), FLAG_SZA, 0).astype(np.int8)
    return flags


def predict_with_floor(fit: dict, speed_km_s, nref) -> np.ndarray:
    """Apply a :func:`fit_with_floor` result to events."""
    n = np.shape(np.asarray(speed_km_s))
    src = predict(fit, speed_km_s, nref) if fit["n"] else np.zeros(n)
    return np.sqrt(fit["floor"] ** 2 + src ** 2)


def per_event_rms(ds: xr.Dataset) -> dict:
    """RMS over realisations of each metric, per occultation, of the all-sources run."""
    from validation.budget import ALL, STATUS_OK

    labels = [str(s) for s in ds.source.values]
    lab = ALL if ALL in labels else labels[0]
    d = ds.sel(source=lab)
    ok = d.status == STATUS_OK
    out = {}
    for m, (var, _, _, _) in METRICS.items():
        x = d[var].where(ok)
        with np.errstate(invalid="ignore"):
            out[m] = np.sqrt((x ** 2).mean("realisation")).values
        # the clean retrieval's own error (the budget's floor): it does not scale with
        # the error sources, see :func:`fit_with_floor`
        out[f"floor_{m}"] = np.abs(ds[f"floor_{var}"].values)
    out["n_ok"] = ok.sum("realisation").values
    return out


def budget_sources(c: Campaign, scn: Scenario):
    """Error sources of the campaign's budgets (``[accuracy] sources`` or the template's)."""
    if c["accuracy"]["sources"] is not None:
        return list(c["accuracy"]["sources"])
    from validation.budget import resolve_sources

    names, _ = resolve_sources(scn, None)
    return [s for s in names if s != "parrott"]


def _run_event_budgets(c, scn, events, rows, realisations, *, engine, out_dir, progress,
                       label):
    """The budget on the events ``rows`` (pinned variants of ``scn``): per-event RMS."""
    from validation.budget import run_budget

    if not len(rows):
        return {m: np.zeros(0) for m in METRICS} | {"n_ok": np.zeros(0, int)}
    recs = _rows(events, rows)
    variants = [event_scenario(scn, r) for r in recs]
    scheduler = engine.client.scheduler.address if (engine is not None
                                                    and not engine.serial) else None
    workers = 0 if engine is None or engine.serial else None
    n = len(variants)
    empty = ({m: np.full(n, np.nan) for m in METRICS} | {"n_ok": np.zeros(n, int)}
             | {f"floor_{m}": np.full(n, np.nan) for m in METRICS})
    try:
        summary, ds = run_budget(scn, sources=budget_sources(c, scn),
                                 realisations=realisations, seed=c[""]["seed"],
                                 scenarios=variants, scheduler=scheduler, workers=workers,
                                 out_dir=(Path(out_dir) / "budgets" / label
                                          if out_dir is not None else None),
                                 progress=progress, report=False, return_dataset=True)
    except RoharnessError:  # no event of the set could be simulated: no prediction
        return empty
    # occultations whose forward model failed are left out of the budget's Dataset
    failed = {int(f["index"]) for f in summary.get("occultations_failed", [])}
    kept = [o for o in range(n) if o not in failed]
    rms = per_event_rms(ds)
    for k, v in rms.items():
        empty[k][kept] = v
    return empty


def _rows(events: xr.Dataset, idx) -> list[dict]:
    keys = ("kind", "et_link", "vertical_speed_km_s", "top_altitude_km", "sza_deg",
            "duration_s")
    ref = float(events.attrs.get("reference_altitude_m", 200e3)) / 1e3
    return [dict({k: events[k].values[i] for k in keys}, event=int(i),
                 reference_altitude_km=ref) for i in idx]


def observable(events: xr.Dataset, c: Campaign) -> np.ndarray:
    """Events whose ray spans the target's altitude range (top above, bottom below)."""
    t = c["target"]
    return ((events.bottom_altitude_km.values <= t["max_bottom_altitude_km"])
            & (events.top_altitude_km.values >= t["min_top_altitude_km"]))


def budget_eligible(events: xr.Dataset, c: Campaign) -> np.ndarray:
    """Events the budget can simulate: observable, dayside, reaching the template's bottom."""
    tmpl = c.template["event"]
    return (observable(events, c)
            & (events.sza_deg.values <= c["accuracy"]["max_sza_deg"])
            & ((events.bottom_altitude_km.values <= tmpl["bottom_altitude_km"])
               | np.isfinite(events.et_0km.values))
            & (events.top_altitude_km.values >= tmpl["bottom_altitude_km"] + 150.0))


def meets_target(pred: dict, c: Campaign) -> np.ndarray:
    t = c["target"]
    ok = np.ones(len(pred["m2_peak_density_rel"]), bool)
    for m in METRICS:
        if t[m] is not None:
            with np.errstate(invalid="ignore"):
                ok &= pred[m] <= t[m]
    return ok


def _physics_key(d: dict) -> str:
    """Designs with the same key differ only in cadence and share one budget run."""
    return json.dumps({k: v for k, v in d.items() if k not in ("name", "per_week")},
                      sort_keys=True)


def _accuracy(c: Campaign, events: xr.Dataset, eng, out_dir, progress, stage=None) -> dict:
    """Budgets of the subset (and the check events) for every distinct design.

    ``stage(text)``, if given, is called before each budget run (progress lines).
    """
    acc = c["accuracy"]
    elig = budget_eligible(events, c)
    scn0 = design_scenario(c, c.designs[0])
    bad = []
    subset = _valid_selection(events, elig, acc["subset"], scn0, bad, ())
    check = _valid_selection(events, elig, acc["check"], scn0, bad, subset) \
        if acc["check"] else np.zeros(0, int)
    out = {"subset": subset, "check": check, "designs": {}}
    physics_cache = {}
    n_runs = len({_physics_key(d) for d in c.designs})
    for d in c.designs:
        scn = design_scenario(c, d)
        key = _physics_key(d)
        if key not in physics_cache:
            if stage is not None:
                stage(f"error budget {len(physics_cache) + 1}/{n_runs}, design "
                      f"'{d['name']}': {len(subset)} + {len(check)} events x "
                      f"{acc['realisations']} realisations")
            label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in d["name"])
            res = _run_event_budgets(c, scn, events, subset, acc["realisations"], engine=eng,
                                     out_dir=out_dir, progress=progress, label=f"{label}-subset")
            chk = None
            if len(check):
                chk = _run_event_budgets(c, scn, events, check, acc["check_realisations"]
                                         or acc["realisations"], engine=eng, out_dir=out_dir,
                                         progress=progress, label=f"{label}-check")
            physics_cache[key] = dict(subset=res, check=chk, scenario=scn)
        out["designs"][d["name"]] = physics_cache[key]
    return out


def pin_ok(scn: Scenario, events: xr.Dataset, i: int) -> bool:
    """Whether the pinned variant of event ``i`` simulates that very occultation.

    The variant's search (:func:`synth.observe.choose_event`) must find an event of the same
    kind whose surface crossing is the event's (to 1 s; both are refined to 1 ms), and the
    sampling must give enough samples; otherwise the event is replaced in the subset.
    """
    from synth.observe import choose_event, sample_times

    row = _rows(events, [i])[0]
    try:
        variant = event_scenario(scn, row)
        ends = choose_event(variant)
        sample_times(variant, ends)
    except RoharnessError:
        return False
    e0 = float(events.et_0km.values[i])
    return not np.isfinite(e0) or abs(float(ends["event"].et_0km) - e0) < 1.0


def _valid_selection(events, eligible, n, scn, bad, exclude, rounds=4):
    """:func:`select_subset`, replacing events whose pinned variant fails :func:`pin_ok`."""
    chosen = np.zeros(0, int)
    for _ in range(rounds):
        chosen = select_subset(events, eligible, n, exclude=list(exclude) + bad)
        new_bad = [int(i) for i in chosen if not pin_ok(scn, events, int(i))]
        if not new_bad:
            return chosen
        bad += new_bad
    return np.array([i for i in chosen if i not in bad], int)
