"""From a scenario to a truth and an observation (data level 2) of one occultation.

:func:`simulate` chains: kernels and orbits (SPICE) -> the chosen occultation event ->
sample times -> link states with light time -> the Chapman ionosphere at the event's
solar zenith angle -> exact bent rays (:mod:`synth.raytrace`) -> residual Doppler.

The *observation* holds only what a real instrument and real SPICE kernels give (see the
contract in :mod:`retrieval.electron_density`): times, state vectors, residual Doppler,
frequencies. The *truth* holds the ionosphere, refractivity and true ray parameters.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval import cf, spice
from retrieval import constants as K
from retrieval.errors import RoharnessError
from retrieval.geometry import j2000_to_latlon, link_states, solar_geometry, tangent_point
from retrieval.occultation import find_events
from synth import ionosphere, raytrace, refractivity
from synth.orbits import resolve_body
from synth.scenario import Scenario

XYZ = ["x", "y", "z"]
_SZA_CACHE: dict = {}  # (window key, candidate, rate, bottom) -> 130 km SZA or None
_EVENT_CACHE: dict = {}


def _segale_group(ltst_hours: float, ls_deg: float) -> str:
    """Segale et al. group: dawn LST 00-12 h / dusk 12-24 h; aphelion Ls 341-360, 0-161."""
    tod = "dawn" if ltst_hours < 12.0 else "dusk"
    season = "perihelion" if 161.0 <= ls_deg % 360.0 < 341.0 else "aphelion"
    return f"{tod}_{season}"


def link_ends(scn: Scenario) -> tuple[dict, float, float]:
    """The NAIF IDs of the link's ends over the scenario's ``[event]`` window, and the window.

    Returns ``(ends, et0, et1)``: ``tx``, ``rx`` of the one-way link used for the event
    geometry (for a two-way link the downlink spacecraft -> ground, plus ``ground`` and
    ``spacecraft``).
    """
    link, ev = scn["link"], scn["event"]
    if link["kernels"]:
        spice.furnish(link["kernels"])
    et0, et1 = spice.utc_to_et(ev["start_utc"]), spice.utc_to_et(ev["stop_utc"])
    if et1 <= et0:
        raise RoharnessError(f"scenario {scn.name} [event]: the window is empty "
                             f"(stop_utc {ev['stop_utc']} is not after start_utc)")
    spice.require_coverage(et0, et1)
    tx = resolve_body(link["transmitter"], et0, et1)
    rx = resolve_body(link["receiver"], et0, et1)
    ends = dict(tx=tx, rx=rx)
    if link["kind"] == "earth_twoway":  # events of the downlink spacecraft -> ground
        ends = dict(tx=rx, rx=tx, ground=tx, spacecraft=rx)
    return ends, et0, et1


def choose_event(scn: Scenario):
    """The occultation event the scenario asks for, as (ends, event record).

    Returns
    -------
    dict
        ``tx``, ``rx`` (NAIF IDs of the one-way link used for the event geometry; for a
        two-way link the downlink spacecraft -> ground), ``ground`` and ``spacecraft`` for
        two-way, and ``event`` (a row of :func:`retrieval.occultation.find_events`).
    """
    ev = scn["event"]
    ends, et0, et1 = link_ends(scn)
    key = (ends["tx"], ends["rx"], et0, et1, ev["top_altitude_km"])
    if key not in _EVENT_CACHE:  # the same window is searched once per process
        _EVENT_CACHE[key] = find_events(ends["tx"], ends["rx"], et0, et1,
                                        ev["top_altitude_km"] * 1e3)
    events = _EVENT_CACHE[key]
    ok = np.isfinite(events.et_0km.values) | (events.bottom_altitude_km.values
                                               <= ev["bottom_altitude_km"])
    if ev["kind"] != "any":
        ok &= events.kind.values == ev["kind"]
    # The SZA range applies where the profile's ionosphere is evaluated, the 130 km tangent
    # point (:func:`profile_geometry`), not the reference-altitude one of the event search:
    # on a slow ray the tangent point travels far in between (measured 79.3 vs 90.7 deg).
    # Candidates are pre-selected with a margin on the search's SZA, then checked exactly.
    near = ok & (events.sza_deg.values >= ev["min_sza_deg"] - SZA_MARGIN_DEG) & (
        events.sza_deg.values <= ev["max_sza_deg"] + SZA_MARGIN_DEG)
    found = []
    for i in np.nonzero(near)[0]:
        cand = dict(ends, event=events.isel(event=int(i)))
        # the candidate's 130 km SZA, once per process: a campaign asks for index 0, 1, ...
        # of one window, which would otherwise recompute every earlier candidate's geometry
        gkey = key + (int(i), scn["sampling"]["rate_hz"], ev["bottom_altitude_km"])
        if gkey not in _SZA_CACHE:
            try:
                _SZA_CACHE[gkey] = profile_geometry(scn, cand)["sza_deg"]
            except RoharnessError:  # too few samples between top and bottom: not usable
                _SZA_CACHE[gkey] = None
        sza = _SZA_CACHE[gkey]
        if sza is not None and ev["min_sza_deg"] <= sza <= ev["max_sza_deg"]:
            found.append(cand)
            if len(found) > ev["index"]:
                cand["geometry"] = profile_geometry(scn, cand)
                return cand
    raise RoharnessError(
        f"scenario {scn.name}: no {'' if ev['kind'] == 'any' else ev['kind'] + ' '}"
        f"occultation with SZA {ev['min_sza_deg']:g}-{ev['max_sza_deg']:g} deg (at the "
        f"130 km tangent point) reaching {ev['bottom_altitude_km']:g} km between "
        f"{ev['start_utc']} and {ev['stop_utc']} (found {len(found)}, index {ev['index']} "
        "requested); widen the [event] window")


#: Margin on the event search's SZA (at ``top_altitude_km``) when pre-selecting candidates
#: whose 130 km SZA is then checked exactly; the largest difference between the two seen
#: on MEX -> TGO (slow rays, 0.28 km/s) was 11.4 deg.
SZA_MARGIN_DEG = 25.0


def profile_geometry(scn: Scenario, ends) -> dict:
    """Sample times, link states and the profile's solar geometry of one event.

    The profile's SZA, LTST and Ls are those of the straight ray's tangent point nearest
    130 km (the M2 region), where :func:`simulate` evaluates the ionosphere.
    """
    t = sample_times(scn, ends)
    st = link_states(ends["tx"], ends["rx"], t)
    point, radius, _ = tangent_point(st["tx_position"], st["rx_position"])
    alt = radius - K.MARS_MEAN_RADIUS_M
    i130 = int(np.argmin(np.abs(alt - 130e3)))
    et_tp = st["et_tx"][i130] + 0.5 * (st["et_rx"][i130] - st["et_tx"][i130])
    lat, lon, _ = j2000_to_latlon(et_tp, point[i130])
    sol = solar_geometry(et_tp, lat[0], lon[0], alt[i130])
    return dict(t=t, states=st, point=point, altitude_m=alt, lat=lat, lon=lon,
                sza_deg=float(np.asarray(sol["sza_deg"]).ravel()[0]),
                ltst_hours=float(np.asarray(sol["ltst_hours"]).ravel()[0]),
                ls_deg=float(np.asarray(sol["ls_deg"]).ravel()[0]))


def sample_times(scn: Scenario, ends) -> np.ndarray:
    """Sample times (ET at the link's reference end), increasing, between top and bottom."""
    ev = ends["event"]
    rate = scn["sampling"]["rate_hz"]
    bottom = scn["event"]["bottom_altitude_km"] * 1e3
    t_top = float(ev.et_link)
    span = float(ev.duration_s) if np.isfinite(float(ev.duration_s)) else 1800.0
    sign = 1.0 if str(ev.kind.values) == "ingress" else -1.0
    t = t_top + sign * np.arange(0.0, span * 1.2 + 1.0 / rate, 1.0 / rate)
    st = link_states(ends["tx"], ends["rx"], t)
    _, radius, s = tangent_point(st["tx_position"], st["rx_position"])
    alt = radius - K.MARS_MEAN_RADIUS_M
    keep = (alt >= bottom) & (s > 0) & (s < 1)
    # stop at the first sample below the bottom; a pass whose tangent altitude turns back up
    # before that is no profile down to the bottom (an occultation is one ingress or one
    # egress, its tangent altitude only descending; near the turn the Doppler cannot
    # constrain the bending at all): choose_event moves on to the next candidate
    below = np.nonzero(~keep)[0]
    n = below[0] if len(below) else len(t)
    rising = np.nonzero(np.diff(alt[:n]) > 0)[0]
    if len(rising):  # the ray turns back up before the requested bottom: not this profile
        raise RoharnessError(
            f"scenario {scn.name}: the pass turns back up at {alt[rising[0]] / 1e3:.0f} km "
            f"tangent altitude, above the requested bottom "
            f"{scn['event']['bottom_altitude_km']:g} km")
    if n < 10:
        raise RoharnessError(f"scenario {scn.name}: only {n} samples between "
                             f"{scn['event']['top_altitude_km']:g} and "
                             f"{scn['event']['bottom_altitude_km']:g} km; raise rate_hz")
    return np.sort(t[:n])


def build_layers(scn: Scenario, sza_deg: float, ltst_hours: float, ls_deg: float):
    """Chapman layers of the scenario at the event's SZA."""
    ion = scn["ionosphere"]
    H = ion["scale_height_km"] * 1e3
    if ion["model"] == "layers":
        return tuple(ionosphere.ChapmanLayer(L["name"], L["n0_m3"], L["h0_km"] * 1e3,
                                             L["scale_height_km"] * 1e3)
                     for L in ion["layers"])
    kw = {}
    if ion["model"] == "parrott2025":
        if ion["f_euv_mw_m2"] is not None:
            kw["f_euv_mw_m2"] = ion["f_euv_mw_m2"]
        else:
            kw["f107_sfu"] = ion["f107_sfu"]
    if ion["model"] == "segale2024":
        group = ion["group"]
        kw["group"] = _segale_group(ltst_hours, ls_deg) if group == "auto" else group
    return ionosphere.layers_from_peak_law(sza_deg, ion["model"], scale_height_m=H,
                                           grazing=ion["grazing"], **kw)


def simulate(scn: Scenario) -> tuple[xr.Dataset, xr.Dataset]:
    """Simulate one occultation of a scenario: returns ``(truth, observation)`` Datasets."""
    ends = choose_event(scn)
    geo = ends.get("geometry") or profile_geometry(scn, ends)
    link = scn["link"]
    t, st, lat, lon = geo["t"], geo["states"], geo["lat"], geo["lon"]
    sza, ltst, ls = geo["sza_deg"], geo["ltst_hours"], geo["ls_deg"]
    if scn["ionosphere"]["sza_deg"] is not None:
        sza = scn["ionosphere"]["sza_deg"]
    layers = build_layers(scn, sza, ltst, ls)
    neu = scn["neutral"]
    neutral = (ionosphere.NeutralAtmosphere(neu["surface_number_density_m3"],
                                            neu["scale_height_km"] * 1e3)
               if neu["enabled"] else None)
    grazing = scn["ionosphere"]["grazing"]
    f = link["frequency_hz"]

    def profile_for(freq):
        return refractivity.refractivity_profile(layers, sza, freq, neutral, grazing)

    time_s = t - t[0]
    obs_vars = {}
    if link["kind"] == "earth_twoway":
        up = link_states(ends["ground"], ends["spacecraft"], t)
        k = (K.TURNAROUND_X, K.TURNAROUND_S) if link["dual_frequency"] else (K.TURNAROUND_X,)
        bands = ("X", "S") if link["dual_frequency"] else ("X",)
        f_up = f / K.TURNAROUND_X
        ray = raytrace.solve_two_way(up["tx_position"], up["tx_velocity"], st["tx_position"],
                                     st["tx_velocity"], st["rx_position"], st["rx_velocity"],
                                     f_up, profile_for, turnaround=k, band=bands,
                                     time_s=time_s)
        res = ray["frequency_residual"]
        obs_vars["frequency_residual_two_way"] = (
            "time", res.sel(band="X").values,
            {"units": "Hz", "long_name": "two-way residual Doppler, X uplink / X downlink"})
        if link["dual_frequency"]:
            obs_vars["frequency_residual_xx"] = obs_vars["frequency_residual_two_way"]
            obs_vars["frequency_residual_xs"] = (
                "time", res.sel(band="S").values,
                {"units": "Hz", "long_name": "two-way residual Doppler, X uplink / S downlink"})
        # the ground station at uplink emission (t_sc - tau_up), as a user gets it from SPICE
        # (light time solved in Mars' rest frame like the downlink's): the uplink passes the
        # limb beside the downlink, and the retrieval models both legs
        obs_vars["uplink_tx_position"] = (
            ("time", "xyz"), up["tx_position"],
            {"units": "m", "long_name": "ground station position at uplink emission, "
                                        "Mars-centred J2000"})
        obs_vars["uplink_tx_velocity"] = (
            ("time", "xyz"), up["tx_velocity"],
            {"units": "m s-1", "long_name": "ground station velocity at uplink emission"})
        obs_vars["et_uplink_tx"] = ("time", up["et_tx"],
                                    {"units": "s", "long_name": "uplink emission time (TDB)"})
        status = ray["status"].values
        true_a = ray["downlink_impact_parameter"].sel(band="X").values \
            if "downlink_impact_parameter" in ray else np.full(len(t), np.nan)
        true_alpha = ray["downlink_bending_angle"].sel(band="X").values \
            if "downlink_bending_angle" in ray else np.full(len(t), np.nan)
    else:
        ray = raytrace.solve_link(st["tx_position"], st["tx_velocity"], st["rx_position"],
                                  st["rx_velocity"], f, profile_for(f), time_s=time_s)
        obs_vars["frequency_residual"] = (
            "time", ray["frequency_residual"].values,
            {"units": "Hz", "long_name": "residual Doppler (received minus predicted vacuum)"})
        status = ray["status"].values
        true_a = ray["impact_parameter"].values
        true_alpha = ray["bending_angle"].values
    vec = {"units": "m"}
    obs = xr.Dataset(
        dict(obs_vars,
             et_tx=("time", st["et_tx"], {"units": "s", "long_name": "emission time (TDB)"}),
             et_rx=("time", st["et_rx"], {"units": "s", "long_name": "reception time (TDB)"}),
             tx_position=(("time", "xyz"), st["tx_position"],
                          dict(vec, long_name="transmitter position, Mars-centred J2000")),
             rx_position=(("time", "xyz"), st["rx_position"],
                          dict(vec, long_name="receiver position, Mars-centred J2000")),
             tx_velocity=(("time", "xyz"), st["tx_velocity"],
                          {"units": "m s-1", "long_name": "transmitter velocity"}),
             rx_velocity=(("time", "xyz"), st["rx_velocity"],
                          {"units": "m s-1", "long_name": "receiver velocity"})),
        coords=dict(time=("time", time_s, _TIME_ATTRS),
                    xyz=("xyz", XYZ, {"long_name": "Cartesian axis of Mars-centred J2000"})))
    ev = ends["event"]
    obs.attrs.update(
        link={"mutual": "mutual", "earth_downlink": "earth_downlink",
              "earth_twoway": "earth_twoway"}[link["kind"]],
        frequency_hz=float(f), occultation=str(ev.kind.values),
        reference_radius_m=K.MARS_MEAN_RADIUS_M, tx_naif_id=int(ends["tx"]),
        rx_naif_id=int(ends["rx"]), epoch_utc=spice.et_to_utc(t[0], 3),
        turnaround_ratio=K.TURNAROUND_X, scenario=scn.name, scenario_sha256=scn.digest,
        data_level="2: residual Doppler and SPICE state vectors",
        Conventions=cf.CONVENTIONS, title=f"roharness observation, scenario {scn.name}")
    cf.mark_coordinates(obs)
    truth = truth_dataset(layers, sza, neutral, grazing, f, time_s, true_a, true_alpha, status,
                          top_m=max(500e3, scn["event"]["top_altitude_km"] * 1e3 + 100e3))
    truth.attrs.update(scenario=scn.name, scenario_sha256=scn.digest, sza_deg=sza,
                       ltst_hours=ltst, ls_deg=ls, lat_deg=float(lat[0]), lon_deg=float(lon[0]),
                       event_time_utc=str(ev.time_utc.values), occultation=str(ev.kind.values),
                       title=f"roharness truth, scenario {scn.name}")
    return truth, obs


#: The sample time coordinate of observations and truths. It is elapsed time (TDB seconds)
#: since the global attribute ``epoch_utc``, a duration in ``s``: not a CF absolute time
#: coordinate (that would need ``units = "s since ..."``, which readers decode to dates).
_TIME_ATTRS = {"units": "s", "long_name": "time since epoch_utc (TDB seconds)"}


def truth_dataset(layers, sza, neutral, grazing, freq_hz, time_s, true_a, true_alpha, status,
                  top_m=500e3, step_m=100.0) -> xr.Dataset:
    """The true profile on a fine grid and the true per-sample ray parameters."""
    alt = np.arange(0.0, top_m + step_m, step_m)
    ne = ionosphere.electron_density(alt, sza, layers, grazing=grazing)
    prof = refractivity.refractivity_profile(layers, sza, freq_hz, neutral, grazing)
    nu = prof.refractivity(alt + K.MARS_MEAN_RADIUS_M)
    status = np.asarray(status, np.int8)
    ds = xr.Dataset(
        dict(electron_density=("altitude", ne, {"units": "m-3",
                                                "long_name": "true electron density"}),
             refractivity=("altitude", nu, {"units": "1", "long_name": "true n - 1"}),
             impact_parameter=("time", true_a, {"units": "m", "long_name": "true impact "
                                                "parameter of the bent ray"}),
             bending_angle=("time", true_alpha, {"units": "rad", "long_name": "true bending "
                                                 "angle"}),
             ray_status=("time", status, {
                 "long_name": "status of the exact ray solution",
                 "flag_values": np.array(list(raytrace.STATUS.values()), np.int8),
                 "flag_meanings": " ".join(raytrace.STATUS)}),
             layer_peak_density=("layer", [L.n0_m3 for L in layers], {
                 "units": "m-3", "long_name": "Chapman layer subsolar peak electron density "
                                              "(N_0)"}),
             layer_peak_altitude=("layer", [L.h0_m for L in layers], {
                 "units": "m", "long_name": "Chapman layer subsolar peak altitude (h_0)"}),
             layer_scale_height=("layer", [L.scale_height_m for L in layers], {
                 "units": "m", "long_name": "Chapman layer neutral scale height (H)"})),
        coords=dict(altitude=("altitude", alt, dict(cf.ALTITUDE, long_name="altitude above "
                                                    "the 3389.5 km sphere")),
                    time=("time", time_s, _TIME_ATTRS),
                    layer=("layer", np.array([L.name for L in layers], dtype=str),
                           {"long_name": "Chapman layer name"})))
    ds.attrs["Conventions"] = cf.CONVENTIONS
    ds.attrs["grazing"] = grazing
    return cf.mark_coordinates(ds)
