r"""Horizontal-gradient bias of a spherically symmetric retrieval versus solar zenith angle.

For each target SZA, :func:`gradient_bias` picks a REAL occultation of the scenario's link
whose tangent point is near that SZA, simulates it with the spherical forward model, adds
the horizontal-gradient perturbation of :mod:`synth.gradients` (N_e varying with the SZA
along the ray, each ray's closest point anchored at the truth's SZA; the budget's
``gradients`` source, :mod:`synth.error_sources`), retrieves as real data would be
(spherical symmetry), and compares with the truth (the tangent-point profile).

Event choice: all occultations of the scenario's link and ``[event] kind`` in
``window_days`` days from the scenario's ``[event] start_utc``
(:func:`retrieval.occultation.find_events` at the scenario's top altitude) that reach the
scenario's bottom altitude (or the surface); for each target the one with the SZA (at the
reference altitude) nearest to it. A real event is used rather than an SZA override of one
geometry because the along-ray gradient depends on how the ray lies relative to the Sun,
which the orbits decide. The scenario is then pinned to that event ([event] window around
it, its kind, an SZA range of +-0.05 deg around it) and simulated with
:func:`synth.observe.simulate`. The SZA reported is the truth's (tangent point near 130 km).

Outputs (xarray Dataset, dims ``sza`` = the targets, ``altitude``):
``ne_error_over_peak`` (retrieved - true N_e with gradients, / true M2 peak),
``ne_error_over_peak_clean`` (same without gradients: the retrieval's own floor),
``m2_peak_altitude_error_km``, ``m2_peak_density_rel_error``, ``tec_rel_error`` and their
``*_clean`` values, ``sza_deg`` (actual), ``perturbation_over_peak_residual`` (max
|gradient perturbation| / max |residual|), ``tangent_sza_span_deg`` (SZA range of the
tangent points over the occultation), ``event_time_utc``.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import xarray as xr

from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.occultation import find_events
from synth.scenario import Scenario, load_scenario


def _events(scn: Scenario, window_days: float):
    from synth.orbits import resolve_body

    link, ev = scn["link"], scn["event"]
    if link["kernels"]:
        spice.furnish(link["kernels"])
    et0 = spice.utc_to_et(ev["start_utc"])
    et1 = et0 + float(window_days) * 86400.0
    spice.require_coverage(et0, et1)
    tx = resolve_body(link["transmitter"], et0, et1)
    rx = resolve_body(link["receiver"], et0, et1)
    if link["kind"] == "earth_twoway":  # events of the downlink spacecraft -> ground
        tx, rx = rx, tx
    events = find_events(tx, rx, et0, et1, ev["top_altitude_km"] * 1e3)
    ok = np.isfinite(events.et_0km.values) | (events.bottom_altitude_km.values
                                               <= ev["bottom_altitude_km"])
    ok &= np.isfinite(events.sza_deg.values)
    if ev["kind"] != "any":
        ok &= events.kind.values == ev["kind"]
    return events.isel(event=np.flatnonzero(ok))


def pin_event(scn: Scenario, event) -> Scenario:
    """A copy of the scenario whose [event] selects exactly this event record."""
    out = copy.deepcopy(scn)
    ev = out.sections["event"]
    et = float(event.et)
    span = float(event.duration_s) if np.isfinite(float(event.duration_s)) else 1800.0
    ev["start_utc"] = spice.et_to_utc(et - span - 1200.0, 3)
    ev["stop_utc"] = spice.et_to_utc(et + span + 1200.0, 3)
    ev["kind"] = str(event.kind.values)
    # the [event] SZA range applies at the 130 km tangent point (synth.observe): pin it there
    from synth.observe import link_ends, profile_geometry

    ends, _, _ = link_ends(out)
    sza = profile_geometry(out, dict(ends, event=event))["sza_deg"]
    ev["min_sza_deg"] = max(0.0, sza - 0.05)
    ev["max_sza_deg"] = min(180.0, sza + 0.05)
    ev["index"] = 0
    out.sections["ionosphere"]["sza_deg"] = None
    return out


def _retrieve(obs):
    from retrieval.electron_density import invert_observation

    return invert_observation(obs, tangent_geometry=False)


def _ne_error(profile, grid_m, ne_true, peak):
    alt = profile.altitude.values
    ne = profile.electron_density.values
    order = np.argsort(alt)
    return (np.interp(grid_m, alt[order], ne[order], left=np.nan, right=np.nan)
            - ne_true) / peak


def _perturbed(obs, d):
    """The observation with the gradients' frequency-residual perturbation ``d`` added."""
    pert = obs.copy()
    if "frequency_residual" in obs.variables:
        pert["frequency_residual"] = obs["frequency_residual"] + d
    else:  # two-way: the budget's channel scaling
        from synth.error_sources import _channels

        for ch, (_, scale) in _channels(obs).items():
            pert[ch] = obs[ch] + scale * d
        if "frequency_residual_xx" in obs.variables:
            pert["frequency_residual_xx"] = pert["frequency_residual_two_way"]
    return pert


def _study_dataset(scn, targets, grid, err, err0, scal, times, window_days, anchor):
    """The study's Dataset (module docstring) from its per-target arrays."""
    rel = {"units": "1"}
    ds = xr.Dataset(
        {"ne_error_over_peak": (("sza", "altitude"), err, dict(
            rel, long_name="(retrieved - true N_e) / true M2 peak, with horizontal gradients")),
         "ne_error_over_peak_clean": (("sza", "altitude"), err0, dict(
             rel, long_name="(retrieved - true N_e) / true M2 peak, spherical (floor)")),
         "event_time_utc": ("sza", np.array(times, dtype=object))},
        coords={"sza": ("sza", targets, {"units": "degree", "long_name": "target SZA"}),
                "altitude": ("altitude", grid, {"units": "m", "long_name": "altitude"})},
        attrs={"scenario": scn.name, "window_days": float(window_days), "anchor": anchor,
               "retrieval": "spherical symmetry (invert_observation)"})
    units = {"sza_deg": "degree", "event_sza_deg": "degree", "tangent_sza_span_deg": "degree",
             "elapsed_s": "s"}
    for k, v in scal.items():
        u = units.get(k, "km" if k.startswith("m2_peak_altitude") else "1")
        ds[k] = ("sza", v, {"units": u})
    return ds


def gradient_bias(scenario, sza_targets_deg=(30.0, 60.0, 85.0), *, window_days=40.0,
                  altitude_km=(80.0, 300.0, 1.0), anchor="tangent", retrieve=None,
                  progress=None) -> xr.Dataset:
    """Retrieved-minus-true N_e caused by horizontal gradients, by SZA and altitude.

    Parameters
    ----------
    scenario : Scenario, str or path
        The link and ionosphere (a built-in name, a TOML file, or a Scenario).
    sza_targets_deg : sequence of float
        Target solar zenith angles [deg] (< 90: the peak laws are fitted below 90 deg).
    window_days : float
        Length of the event search window from the scenario's ``[event] start_utc`` [days].
    altitude_km : (start, stop, step)
        Altitude grid of the error profiles [km].
    anchor : {"tangent", "none"}
        See :func:`synth.gradients.gradient_perturbation`.
    retrieve : callable, optional
        ``retrieve(obs) -> profile``; default
        :func:`retrieval.electron_density.invert_observation` on the level-2 observation.
    progress : callable, optional
        Called with a one-line message per target.

    Returns
    -------
    xarray.Dataset
        See the module docstring.
    """
    from synth.gradients import gradient_perturbation
    from synth.observe import simulate
    from validation.roundtrip import compare

    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    retrieve = retrieve or _retrieve
    targets = np.asarray(sza_targets_deg, dtype=float)
    if targets.ndim != 1 or not targets.size or np.any(~np.isfinite(targets)):
        raise RoharnessError("sza_targets_deg must be a non-empty list of angles in degrees")
    lo, hi, step = altitude_km
    grid = np.arange(lo, hi + 0.5 * step, step) * 1e3
    events = _events(scn, window_days)
    if events.sizes["event"] == 0:
        raise RoharnessError(f"scenario {scn.name}: no usable occultation in {window_days:g} "
                             f"days from {scn['event']['start_utc']}")
    n, m = targets.size, grid.size
    err = np.full((n, m), np.nan)
    err0 = np.full((n, m), np.nan)
    scal = {k: np.full(n, np.nan) for k in (
        "sza_deg", "event_sza_deg", "m2_peak_altitude_error_km", "m2_peak_density_rel_error",
        "tec_rel_error", "m2_peak_altitude_error_km_clean", "m2_peak_density_rel_error_clean",
        "tec_rel_error_clean", "perturbation_over_peak_residual", "tangent_sza_span_deg",
        "elapsed_s")}
    times = [""] * n
    for i, target in enumerate(targets):
        t0 = time.perf_counter()
        j = int(np.argmin(np.abs(events.sza_deg.values - target)))
        ev = events.isel(event=j)
        pinned = pin_event(scn, ev)
        truth, obs = simulate(pinned)
        g = gradient_perturbation(obs, truth, anchor=anchor)
        d = g["frequency_residual_perturbation"].values
        pert = _perturbed(obs, d)
        ne_true = np.interp(grid, truth.altitude.values, truth.electron_density.values)
        peak = float(truth.electron_density.max())
        prof0, prof = retrieve(obs), retrieve(pert)
        c0, c = compare(truth, prof0), compare(truth, prof)
        err[i] = _ne_error(prof, grid, ne_true, peak)
        err0[i] = _ne_error(prof0, grid, ne_true, peak)
        for k in ("m2_peak_altitude_error_km", "m2_peak_density_rel_error", "tec_rel_error"):
            scal[k][i] = c[k]
            scal[k + "_clean"][i] = c0[k]
        scal["sza_deg"][i] = float(truth.attrs["sza_deg"])
        scal["event_sza_deg"][i] = float(ev.sza_deg)
        scal["perturbation_over_peak_residual"][i] = float(
            np.nanmax(np.abs(d)) / np.nanmax(np.abs(g["frequency_residual_spherical"].values)))
        ts = g["tangent_sza_deg"].values
        scal["tangent_sza_span_deg"][i] = float(np.nanmax(ts) - np.nanmin(ts))
        times[i] = str(truth.attrs.get("event_time_utc", ""))
        scal["elapsed_s"][i] = time.perf_counter() - t0
        if progress:
            progress(f"SZA target {target:g}: event {times[i]} SZA {scal['sza_deg'][i]:.1f} "
                     f"deg, M2 peak {c['m2_peak_altitude_error_km']:+.2f} km "
                     f"{100 * c['m2_peak_density_rel_error']:+.2f} %")
    return _study_dataset(scn, targets, grid, err, err0, scal, times, window_days, anchor)


def summary_rows(ds: xr.Dataset) -> list[dict]:
    """One row per SZA: the numbers to quote (RMS over 100-200 km, peak errors)."""
    alt = ds.altitude.values
    band = (alt >= 100e3) & (alt <= 200e3)
    rows = []
    for i in range(ds.sizes["sza"]):
        e = ds.ne_error_over_peak.values[i, band]
        rows.append(dict(
            target_sza_deg=float(ds.sza.values[i]), sza_deg=float(ds.sza_deg.values[i]),
            event_time_utc=str(ds.event_time_utc.values[i]),
            ne_rms_over_peak_100_200km=float(np.sqrt(np.nanmean(e**2))),
            ne_max_abs_over_peak_100_200km=float(np.nanmax(np.abs(e))),
            m2_peak_altitude_error_km=float(ds.m2_peak_altitude_error_km.values[i]),
            m2_peak_density_rel_error=float(ds.m2_peak_density_rel_error.values[i]),
            perturbation_over_peak_residual=float(
                ds.perturbation_over_peak_residual.values[i])))
    return rows
