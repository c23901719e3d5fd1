"""Noiseless RO round trips: forward (synth) and retrieval written independently agree.

Tolerances (issue 3): max |N_e error| <= 1e-3 of the true peak (the numerical limit of the
piecewise-linear Abel scheme on a ~1 km grid is ~1e-4), M2 peak altitude within 0.2 km and
peak density within 0.2 %.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, note, reject, target
from hypothesis import strategies as st

from retrieval.errors import RoharnessError
from retrieval.temperature import FREE_M1_MIN_SEPARATION_M
from synth.scenario import load_scenario, parse_scenario
from validation.cli import main
from validation.roundtrip import run_roundtrip

ONE_WAY = ["mex-tgo-uhf", "maven-x-oneway"]


@pytest.mark.parametrize("name", ONE_WAY)
def test_noiseless_builtin_round_trip(name):
    m = run_roundtrip(name)["metrics"]
    assert m["ne_max_abs_error_over_peak"] <= 1e-3
    assert abs(m["m2_peak_altitude_error_km"]) <= 0.2
    assert abs(m["m2_peak_density_rel_error"]) <= 2e-3
    # profile science on a noiseless profile (issue 5): TEC 0.5 %, T_n 2 %
    assert abs(m["tec_rel_error"]) <= 5e-3
    assert abs(m["neutral_temperature_error_k"]) <= 0.02 * 180.0


def test_roundtrip_json_and_netcdf(tmp_path, capsys):
    import xarray as xr
    out = tmp_path / "rt.nc"
    assert main(["roundtrip", "--scenario", "mex-tgo-uhf", "--json", "-o", str(out)]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("ne_max_abs_error_over_peak", "m2_peak_altitude_error_km",
                "m2_peak_density_rel_error", "n_samples", "elapsed_s", "m1_class",
                "m1_peak_altitude_error_km", "m1_peak_density_rel_error",
                "neutral_temperature_error_k", "tec_rel_error"):
        assert key in m
    est = xr.open_dataset(out)
    truth = xr.open_dataset(out, group="truth")
    obs = xr.open_dataset(out, group="observation")
    assert "electron_density_true" in est and "electron_density" in est
    assert obs.sizes["time"] == m["n_samples"] and truth.electron_density.max() > 0


# --- Round-trip properties over the whole scenario space --------------------------------
#
# A strategy writes scenario variants: window start, link kind and spacecraft pair (mutual
# MEX <-> TGO, MAVEN/MEX -> Earth centre or a DSN station, two-way Earth -> MEX/MAVEN with or
# without the S downlink), ingress/egress and which one, ionosphere model and its
# parameters, grazing model, sampling rate and the neutral atmosphere. Draws without a
# matching occultation in the window are rejected (cheap: the event search only, ~0.3 s).
#
# Error model, measured on 60 draws (2026-11) with the former piecewise-linear Abel scheme:
# N_e error (0.025-0.06) (dh / H)^2 of the peak above a 1.2e-4 floor, dh the largest
# vertical step between 90 and 250 km and H the smallest scale height; the neutral
# atmosphere leaked into N_e as f^2 (<= 4e-4 at UHF, 1.7e-2 to 5.9e-2 at X band); a
# spacecraft inside the ionosphere (MAVEN near its periapsis) gave up to 4.3e-2; T_n was
# +12-23 K off when no M1 was detected. Issue 14 (2026-11) replaced these with the cubic
# Abel scheme, the data-chosen top, the neutral separation, the one-sided correction and
# the free-M1 temperature fit; benchmarks/acceptance_sweep.py over 240 draws of this space
# (89 with an event, 11 more with the spacecraft inside the ionosphere) then measured:
# N_e <= 8.7e-4 of the peak (1.9e-3 with the spacecraft at 0.58 of the peak's density),
# M2 density <= 1.2e-3, |dT_n| <= 0.63 K, M2 altitude <= 0.12 km up to 1.5 km steps and
# 0.28 km at 4.1 km steps (0.5 Hz Earth links). The properties now assert the acceptance
# (:func:`_check_acceptance`); `target()` hunts the worst error / limit.

LINKS = {  # name -> (kind, transmitter, receiver, frequency [Hz], dual, top [km], days)
    "mex-tgo": ("mutual", "mex", "tgo", 437.1e6, False, 320.0, 2),
    "tgo-mex": ("mutual", "tgo", "mex", 437.1e6, False, 320.0, 2),
    "maven-earth-x": ("earth_downlink", "maven", "earth", 8.4e9, False, 400.0, 6),
    "maven-dss14-x": ("earth_downlink", "maven", "dss-14", 8.4e9, False, 400.0, 6),
    "mex-dss43-x": ("earth_downlink", "mex", "dss-43", 8.4e9, False, 400.0, 6),
    "mex-dss63-s": ("earth_downlink", "mex", "dss-63", 2.3e9, False, 400.0, 6),
    "earth-mex-xs": ("earth_twoway", "earth", "mex", 8.4e9, True, 400.0, 6),
    "dss14-maven-x": ("earth_twoway", "dss-14", "maven", 8.4e9, False, 400.0, 6),
}


@st.composite
def ionospheres(draw):
    """[ionosphere] keys: a published law with its parameters, or explicit Chapman layers
    (an M2 layer and an optional weaker, lower M1) in physically meaningful ranges. Layers
    stay below ~1e-4 of their peak at the mutual link's 320 km sampling top (h_0 <= 160 km,
    H <= 15 km): a receiver inside a dense topside is outside the spherical Abel model."""
    model = draw(st.sampled_from(["parrott2025", "segale2024", "fox_weber2012",
                                  "fallows2015", "layers"]))
    keys = {"model": model, "grazing": draw(st.sampled_from(["chapman", "sec"]))}
    if model != "layers":
        keys["scale_height_km"] = draw(st.floats(7.0, 14.0))  # issue 14: H 7-14 km
    if model == "parrott2025":
        keys["f107_sfu"] = draw(st.floats(65.0, 250.0))
    if model == "segale2024":
        keys["group"] = draw(st.sampled_from(["auto", "dawn_aphelion", "dawn_perihelion",
                                              "dusk_aphelion", "dusk_perihelion"]))
    if model == "layers":
        n2, h2, H2 = (draw(st.floats(1e10, 5e11)), draw(st.floats(110.0, 160.0)),
                      draw(st.floats(6.0, 15.0)))
        layers = [dict(name="M2", n0_m3=n2, h0_km=h2, scale_height_km=H2)]
        if draw(st.booleans()):
            layers.append(dict(name="M1", n0_m3=n2 * draw(st.floats(0.05, 0.5)),
                               h0_km=draw(st.floats(90.0, h2 - 10.0)),
                               scale_height_km=draw(st.floats(5.0, 12.0))))
        keys["layers"] = layers
    return keys


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join("{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in d.items())
                               + "}" for d in v) + "]"
    return repr(v)


def scenario_text(link, start, evkind, index, rate_hz, ionosphere, neutral):
    """Scenario TOML text of one variant (the strategy's output; also used to pin examples)."""
    kind, tx, rx, freq, dual, top, days = LINKS[link]
    start = np.datetime64(start, "D")
    sections = {
        "link": dict(kind=kind, transmitter=tx, receiver=rx, frequency_hz=freq,
                     dual_frequency=dual),
        "event": dict(start_utc=str(start), stop_utc=str(start + np.timedelta64(days, "D")),
                      kind=evkind, index=index, min_sza_deg=0.0, max_sza_deg=85.0,
                      top_altitude_km=top, bottom_altitude_km=60.0),
        "sampling": dict(rate_hz=rate_hz),
        "ionosphere": ionosphere,
        "neutral": dict(enabled=neutral),
    }
    return 'name = "property"\nseed = 1\n' + "".join(
        f"[{sec}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in keys.items())
        for sec, keys in sections.items())


@st.composite
def scenario_variants(draw, rate_hz, neutral):
    """Scenario TOML text: any link, window, event, ionosphere, grazing and rate."""
    day0 = draw(st.integers(0, 900))  # window start 2022-01-01 + 0-900 days
    return scenario_text(link=draw(st.sampled_from(sorted(LINKS))),
                         start=np.datetime64("2022-01-01") + np.timedelta64(day0, "D"),
                         evkind=draw(st.sampled_from(["ingress", "egress"])),
                         index=draw(st.integers(0, 3)), rate_hz=draw(rate_hz),
                         ionosphere=draw(ionospheres()), neutral=neutral)


def _smallest_scale_height_m(truth):
    if "layer_scale_height" in truth:
        return float(truth.layer_scale_height.min())
    return min(L["scale_height_m"] for L in json.loads(truth.attrs["layers"]))


def _note(text):
    from hypothesis.control import currently_in_test_context
    if currently_in_test_context():
        note(text)


def _round_trip(text):
    """Run the round trip; reject draws whose window holds no matching occultation."""
    _note(text)
    try:
        res = run_roundtrip(parse_scenario(text))
    except RoharnessError as exc:
        if "occultation" in str(exc) and "widen the [event] window" in str(exc):
            reject()
        raise
    m = res["metrics"]
    alt = res["profile"].altitude.values
    sel = (alt > 90e3) & (alt < 250e3)
    step_km = float(np.max(np.abs(np.diff(alt[sel])))) / 1e3
    h_km = _smallest_scale_height_m(res["truth"]) / 1e3
    _note(json.dumps({k: v for k, v in m.items() if isinstance(v, (int, float, str))}))
    _note(f"largest vertical step {step_km:.3f} km, smallest scale height {h_km:.2f} km")
    return res, m, (step_km / h_km) ** 2, h_km


def _density_at_spacecraft(res):
    """True N_e / peak at the lowest altitude a Mars-side end reaches during the pass."""
    obs, truth = res["observation"], res["truth"]
    r = np.concatenate([np.linalg.norm(obs[k].values, axis=1)
                        for k in ("tx_position", "rx_position")])
    alt_m = r[r < 1e9].min() - obs.attrs.get("reference_radius_m", 3389.5e3)
    ne = truth.electron_density.values
    return float(np.interp(alt_m, truth.altitude.values, ne, right=0.0) / ne.max()), alt_m


def _in_model(res):
    """Note the draws whose spacecraft flies inside the ionosphere during the pass (MAVEN
    near its 150 km periapsis). They were rejected until the retrieval corrected the rays'
    missing half-paths (retrieval.one_sided); they are now held to the same bounds."""
    frac, alt_m = _density_at_spacecraft(res)
    if frac > INSIDE_LIMIT:
        _note(f"spacecraft at {alt_m / 1e3:.0f} km sees N_e = {frac:.2g} of the peak")


def _layer_separation_km(truth):
    """Height of the true M2 peak above the true M1 peak at the event [km] (inf without an
    M1), each layer evaluated alone at the event's SZA with the truth's grazing model. The
    strategy draws M1 at least 10 km below M2 at the subsolar point, but grazing incidence
    lifts each peak by ~H ln Ch(chi): an M1 broader than M2 closes in (or passes above) at
    high SZA."""
    from synth.ionosphere import ChapmanLayer, chapman_layer_density
    names = [str(n).upper() for n in truth["layer"].values]
    if "M1" not in names or "M2" not in names:
        return float("inf")
    alt = np.arange(60e3, 400e3, 50.0)
    peak = {}
    for name in ("M1", "M2"):
        i = names.index(name)
        layer = ChapmanLayer(name, float(truth.layer_peak_density.values[i]),
                             float(truth.layer_peak_altitude.values[i]),
                             float(truth.layer_scale_height.values[i]))
        peak[name] = alt[np.argmax(chapman_layer_density(alt, truth.attrs["sza_deg"], layer,
                                                         truth.attrs["grazing"]))]
    return float(peak["M2"] - peak["M1"]) / 1e3


#: The free two-layer temperature fit (retrieval.temperature) takes an M1 at least
#: FREE_M1_MIN_SEPARATION_M (5 km) below M2; closer, the layers are one merged peak.
MERGED_M1_KM = FREE_M1_MIN_SEPARATION_M / 1e3


def _check_temperature(res, m, limit_k=4.0):
    """|dT_n| <= 4 K (issue 14); where the true M1 lies within 5 km of M2 at the event (the
    fit's documented limit) the retrieval must flag a larger error instead: its
    model-choice spread (the free two-layer fit's T_n minus the reported one) points
    towards the truth (measured: right sign in 347 of 348 merged pairs, |spread| 0.2-1.0
    of the error; tests/test_retrieval/test_temperature.py)."""
    err = m["neutral_temperature_error_k"]
    if not np.isfinite(err):
        return
    sep = _layer_separation_km(res["truth"])
    spread = res["science"]["neutral_temperature_model_spread_k"]
    _note(f"dT_n = {err:+.2f} K, model spread {spread:+.2f} K, true M2 - M1 {sep:.2f} km")
    if sep >= MERGED_M1_KM:
        assert abs(err) <= limit_k
    else:
        assert abs(err) <= limit_k or spread * err < 0


def _distinct_peak(truth):
    """False when the true profile has a second local maximum within 5 % of the largest:
    then "the" peak altitude is ill-defined (it may jump between layers) and is not scored."""
    ne = truth.electron_density.values
    i = np.nonzero((ne[1:-1] > ne[:-2]) & (ne[1:-1] >= ne[2:]))[0] + 1
    return np.sum(ne[i] >= 0.95 * ne.max()) <= 1


#: Largest true N_e at a spacecraft's altitude, as a fraction of the peak, for the spherical
#: Abel model to hold: the inversion assumes both ends of the ray outside the ionosphere.
#: Beyond it the ray is one-sided near the spacecraft (see the xfail test below).
INSIDE_LIMIT = 1e-3


def _density_at_top(res):
    """True N_e / peak at the top of the sampled pass: the retrieval takes the ionosphere as
    zero above it (an H = 15 km layer at 110 km still has 2.6e-3 of its peak at 320 km)."""
    truth = res["truth"]
    top_m = float(res["profile"].altitude.max())
    ne = truth.electron_density.values
    return float(np.interp(top_m, truth.altitude.values, ne) / ne.max())


#: Largest vertical step, as a fraction of the smallest scale height, that the acceptance's
#: error model was measured on (0.59-0.71 at 0.5 Hz on Earth links). Found 2026-12 by the
#: dev profile: MEX -> Earth at 0.5 Hz can step 6.1-6.2 km, 0.77-0.88 of H = 7-8 km (1.1-1.3
#: levels per scale height); those profiles were flagged under-resolved (step-doubling
#: estimates 0.9-1.8e-2 of the peak) with TEC 1.07e-2 off and T_n -4.4 K, the X/S two-way
#: conversion itself 17 % off in bending. Beyond it the test asks for the flag only.
RESOLVED_STEP_OVER_H = 0.75


def _check_acceptance(res, m, x, h_km):
    """Issue 14's acceptance on a noiseless round trip, strict where the sampling is within
    the issue's reach (vertical steps <= 1.5 km, scale heights >= 7 km), with the measured
    error model of the cubic Abel scheme beyond it.

    * N_e <= 1e-3 of the peak + 0.03 (dh / H)^4; a profile the retrieval flags as
      under-resolved (its step-doubling estimate > 1e-3) may reach twice its own estimate.
      The fourth-order term: measured 1.4e-3 and 1.9e-3 of the peak at dh / H = 0.59 and
      0.64 (0.5 Hz Earth links, 4.7-5.1 km steps, H = 8 km), 4.0e-3 at 0.7: ~0.011-0.017
      (dh / H)^4, where the step-doubling estimate reads low (0.3-0.7x).
    * M2 density <= 0.2 % + 0.06 (dh / H)^4 (measured 3.5e-3 and 3.1e-3 at 0.59 and 0.63).
    * |dT_n| <= 4 K.
    * M2 altitude <= 0.2 km up to 1.5 km steps; beyond, the peak falls between levels
      4-5 km apart: measured 0.276 km at 4.1 km and 0.230 km at 4.9 km (<= 0.067 of the
      step, the bound allows 0.1 of it).
    * TEC within 3e-3 + 0.01 (dh / H)^2 (measured <= 1.1e-3, <= 0.0018 (dh / H)^2).
    * With the default vacuum top, plus the true density at the top of the pass (x3 on
      TEC): found by the dev profile, an H = 15 km layer at 110 km (2.6e-3 of its peak at
      the mutual link's 320 km top) gave 1.004e-3 and a TEC error of 3.03e-3.
    * Steps beyond RESOLVED_STEP_OVER_H (0.75) of the smallest scale height are beyond the
      measured error model (dh / H 0.59-0.71): there the profile must be flagged
      under-resolved, and T_n and TEC are not held to the bounds above.
    """
    prof = res["profile"]
    step_km = float(np.sqrt(x) * h_km)
    x4 = x * x
    err = m["ne_max_abs_error_over_peak"]
    # the default vacuum top truncates a still-ionised top: N_e error ~0.4-1x the true
    # density there (measured 1.0e-3 for 2.6e-3, 1.28e-2 for 1.3e-2); `top = "auto"`
    # removes it (test_abel_roundtrip), the default keeps it, allowed here 1x (TEC 3x)
    top = _density_at_top(res) if prof.attrs.get("top_model") == "zero" else 0.0
    limit = 1e-3 + 0.03 * x4 + top
    if prof.attrs.get("under_resolved", 0):
        limit = max(limit, 2.0 * float(prof.attrs["abel_discretisation_error_over_peak"]))
    _note(f"N_e limit {limit:.3g}; step {step_km:.2f} km; "
          f"{prof.attrs.get('top_model')} top; one-sided "
          f"{prof.attrs.get('one_sided_correction')}; neutral "
          f"{prof.attrs.get('neutral_status', prof.attrs.get('neutral_model', '-'))}")
    target(err / limit, label="Ne error / limit")
    assert err <= limit
    within_reach = step_km <= 1.5 and h_km >= 7.0 and top <= 1e-4
    if within_reach:  # the acceptance, as stated
        assert err <= 1e-3
        assert abs(m["m2_peak_density_rel_error"]) <= 2e-3
    dens_limit = 2e-3 + 0.06 * x4
    target(abs(m["m2_peak_density_rel_error"]) / dens_limit, label="M2 density / limit")
    assert abs(m["m2_peak_density_rel_error"]) <= dens_limit
    if _distinct_peak(res["truth"]):
        alt_limit = 0.2 if step_km <= 1.5 else max(0.2, 0.1 * step_km)
        target(abs(m["m2_peak_altitude_error_km"]) / alt_limit, label="M2 altitude / limit")
        assert abs(m["m2_peak_altitude_error_km"]) <= alt_limit
    if np.sqrt(x) > RESOLVED_STEP_OVER_H:  # fewer than 1.33 levels per scale height
        assert prof.attrs["under_resolved"] == 1
        return
    _check_temperature(res, m)
    assert abs(m["tec_rel_error"]) <= 3e-3 + 0.01 * x + 3 * top


@given(text=scenario_variants(st.floats(1.0, 5.0), neutral=False))
# a thin, weak, low layer (H = 5 km at 90 km) failed the earlier fixed-rate rule at dh ~ H/8
@example(text=scenario_text("mex-tgo", "2023-01-01", "ingress", 0, 1.0, dict(
    model="layers", grazing="sec", layers=[dict(name="M2", n0_m3=1e9, h0_km=90.0,
                                                 scale_height_km=5.0)]), False))
# found 2026-11 by a fresh CI draw: that pass's tangent altitude turns back up at 207 km, and
# the turning sample (no descent: the Doppler is blind to the bending) failed the retrieval;
# such a pass is now skipped for the next event that reaches the bottom
@example(text=scenario_text("mex-tgo", "2024-06-05", "ingress", 1, 1.0, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False))
def test_property_roundtrip_fine_sampling(text):
    """Neutral atmosphere off, 1-5 Hz: issue 14's acceptance (:func:`_check_acceptance`)."""
    out = _round_trip(text)
    _in_model(out[0])
    _check_acceptance(*out)


@pytest.mark.parametrize("link, ion, raw_error, fixed_error", [
    # one-way; its bending stage is exact (5e-10 rad)
    ("maven-dss14-x", dict(model="parrott2025", grazing="chapman", scale_height_km=8.0,
                           f107_sfu=65.0), 4.70e-3, 9.9e-6),
    ("dss14-maven-x", dict(model="fox_weber2012", grazing="chapman", scale_height_km=14.0),
     4.31e-2, 2.1e-4),  # two-way
])
def test_spacecraft_inside_the_ionosphere(link, ion, raw_error, fixed_error):
    """Found by these properties (2026-11): MAVEN -> Earth X-band ingresses in the
    2022-01-01 window pass while MAVEN descends from 477 to 153 km (periapsis), i.e. into
    the M2 layer. The ray is then one-sided near the spacecraft: inverted as if both ends
    were outside, the N_e error at the bottomside (~95 km) is 4.7e-3 (H = 8 km) and 4.3e-2
    (H = 14 km) of the peak, independent of sampling and with an exact bending stage (a
    strict xfail until the retrieval corrected it). retrieval.one_sided adds each ray's
    missing half-path above the spacecraft from the profile retrieved so far, to a fixed
    point: measured 9.9e-6 and 2.1e-4."""
    from retrieval.electron_density import profile_dataset
    res, m, x, _ = _round_trip(scenario_text(link, "2022-01-01", "ingress", 0, 1.0, ion,
                                             False))
    frac, alt_m = _density_at_spacecraft(res)
    assert frac > INSIDE_LIMIT and alt_m < 160e3  # the case is what it says
    assert x < 0.01  # fine sampling: not a discretisation error
    prof = res["profile"]
    assert prof.attrs["one_sided_correction"] == "applied"
    assert m["ne_max_abs_error_over_peak"] <= 1e-3  # the acceptance (issue 14)
    assert m["ne_max_abs_error_over_peak"] == pytest.approx(fixed_error, rel=0.5, abs=2e-5)
    assert abs(m["m2_peak_altitude_error_km"]) <= 0.2
    assert abs(m["m2_peak_density_rel_error"]) <= 2e-3
    # the same rays inverted without the correction: the old error (the cause, measured)
    raw = profile_dataset(prof.impact_parameter.values, prof.bending_angle.values,
                          prof.attrs["frequency_hz"], top=prof.attrs["top_model"],
                          reference_radius_m=prof.attrs["reference_radius_m"])
    truth = res["truth"]
    ne_true = np.interp(raw.altitude.values, truth.altitude.values,
                        truth.electron_density.values)
    sig = ne_true > 0.01 * truth.electron_density.max().item()
    raw_err = float(np.max(np.abs(raw.electron_density.values - ne_true)[sig])
                    / truth.electron_density.max().item())
    assert raw_err == pytest.approx(raw_error, rel=0.2)


@pytest.mark.parametrize("link, ion", [
    ("maven-dss14-x", dict(model="parrott2025", grazing="chapman", scale_height_km=8.0,
                           f107_sfu=65.0)),
    ("dss14-maven-x", dict(model="fox_weber2012", grazing="chapman", scale_height_km=14.0)),
])
def test_retrieval_flags_a_spacecraft_inside_the_ionosphere(link, ion):
    """What the retrieval can say from the observation alone about the cases above: the
    lowest Mars-side end lies where its own retrieved N_e exceeds 1e-3 of its peak. Its
    estimate of that density is checked against the truth's (the judge's view)."""
    res, m, x, _ = _round_trip(scenario_text(link, "2022-01-01", "ingress", 0, 1.0, ion,
                                             False))
    frac_true, alt_m = _density_at_spacecraft(res)
    a = res["profile"].attrs
    assert a["spacecraft_in_ionosphere"] == 1
    assert a["lowest_spacecraft_altitude_m"] == pytest.approx(alt_m, abs=1.0)
    # the retrieved density there within 30 % of the true (bottomside errors ~1e-2 of peak)
    assert a["electron_density_at_spacecraft_over_peak"] == pytest.approx(frac_true, rel=0.3)


@pytest.mark.parametrize("name", ["mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway"])
def test_no_flag_when_the_spacecraft_is_outside(name):
    a = run_roundtrip(name)["profile"].attrs
    assert a["spacecraft_in_ionosphere"] == 0
    assert a["electron_density_at_spacecraft_over_peak"] < 1e-3


def test_a_ray_that_turns_back_up_is_not_an_occultation():
    """Found by test_property_roundtrip_neutral_atmosphere (2026-11, a fresh CI draw): on
    2023-02-26 the MEX -> TGO straight line's tangent altitude stops descending before
    60 km and rises again at 752 s; the samples ran past the turn and the retrieval failed
    ("impact parameter is not monotonic"), with or without the neutral atmosphere. A pass
    that turns back up above the requested bottom is now not a candidate, so this window
    has no matching event: one sentence, not a failed retrieval."""
    for start, index in (("2023-02-26", 0), ("2023-02-25", 1)):
        text = scenario_text("mex-tgo", start, "ingress", index, 1.0, dict(
            model="parrott2025", grazing="chapman", scale_height_km=8.0, f107_sfu=65.0), True)
        with pytest.raises(RoharnessError, match="widen the \\[event\\] window"):
            run_roundtrip(parse_scenario(text))


def test_event_sza_filter_applies_to_the_simulated_ionosphere():
    """Found by test_property_roundtrip_coarse_sampling (2026-11): a MEX -> TGO egress with
    max_sza_deg = 85 is selected by its SZA at the 320 km crossing (79.3 deg; vertical
    speed 0.28 km/s, so the tangent point travels far), but synth.observe evaluates the
    ionosphere at the 130 km tangent point, SZA 90.7 deg, where the fox_weber2012 peak law
    refuses (fitted below 90 deg): a scenario asking for SZA <= 85 deg failed with an error
    about 90.7 deg. Fixed: the SZA range now applies at the 130 km tangent point. That
    window's only egress has 90.7 deg there, so no event matches: one sentence saying so,
    and with the window's upper limit raised to 95 deg the same event is chosen and its
    ionosphere's SZA reported."""
    text = scenario_text("mex-tgo", "2023-01-17", "egress", 0, 1.0, dict(
        model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False)
    with pytest.raises(RoharnessError, match=r"SZA 0-85 deg \(at the 130 km tangent point\)"
                                             r".*found 0"):
        run_roundtrip(parse_scenario(text))
    from synth.observe import choose_event
    scn = parse_scenario(text.replace("max_sza_deg = 85.0", "max_sza_deg = 95.0"))
    assert choose_event(scn)["geometry"]["sza_deg"] == pytest.approx(90.69, abs=0.05)


def merging_m1_case(m1_scale_height_km):
    """MAVEN ingress at SZA 77 deg: an H = 6 km M2 and an M1 at half its density 10 km
    below it at the subsolar point, of the given scale height (a broader M1 closes in at
    the event: 7.1 km apart for 8 km, 3.0 km for 11 km)."""
    return scenario_text("dss14-maven-x", "2022-01-01", "ingress", 0, 1.0, dict(
        model="layers", grazing="chapman", layers=[
            dict(name="M2", n0_m3=1e10, h0_km=142.0, scale_height_km=6.0),
            dict(name="M1", n0_m3=5e9, h0_km=132.0,
                 scale_height_km=float(m1_scale_height_km))]), False)


MERGING_M1_CASE = merging_m1_case(8.0)


@given(text=scenario_variants(st.floats(0.5, 1.0), neutral=False))
# found 2026-11 by the dev profile: H = 15 km at 110 km, 1 Hz, vacuum top at 320 km where
# the layer is still 2.6e-3 of its peak: N_e 1.004e-3 (the top allowance)
@example(text=scenario_text("mex-tgo", "2022-01-01", "ingress", 0, 1.0, dict(
    model="layers", grazing="chapman", layers=[dict(name="M2", n0_m3=1e10, h0_km=110.0,
                                                     scale_height_km=15.0)]), False))
# found 2026-11 by the dev profile against the strict 1e-3 / 0.2 %: 0.5-0.56 Hz X/S two-way,
# 4.7-5.3 km steps of an H = 8 km layer: 1.4e-3 of the peak, M2 density 3.5e-3 (the
# fourth-order term of _check_acceptance)
@example(text=scenario_text("earth-mex-xs", "2022-01-01", "ingress", 0, 0.5625, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False))
@example(text=scenario_text("earth-mex-xs", "2022-01-01", "ingress", 0, 0.5, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False))
# found 2026-12 by a fresh CI draw: an H = 8 km M1 at half the density of an H = 6 km M2,
# 10 km below it at the subsolar point, is only 7.1 km below at SZA 77 deg; the free M1
# fit then pressed its 8 km bound and the one-layer fallback was +21.7 K off (-0.06 K
# with the 5 km bound; retrieval.temperature.FREE_M1_MIN_SEPARATION_M)
@example(text=MERGING_M1_CASE)
def test_property_roundtrip_coarse_sampling(text):
    """Neutral atmosphere off, 0.5-1 Hz (vertical steps up to ~5 km on an Earth link): the
    acceptance, with the under-resolution flag and the coarse M2-altitude allowance of
    :func:`_check_acceptance`. (Below 0.5 Hz an Earth link has < 2 levels per scale height:
    outside the documented space.)"""
    out = _round_trip(text)
    _in_model(out[0])
    _check_acceptance(*out)


@given(text=scenario_variants(st.floats(0.5, 5.0), neutral=True))
# found 2026-11 by the dev profile: an ionised top under the default vacuum top (H = 12 km
# at 152 km, 2 Hz): TEC 3.03e-3 against the former 3e-3 + 0.01 (dh / H)^2
@example(text=scenario_text("mex-tgo", "2022-01-01", "ingress", 0, 2.0, dict(
    model="layers", grazing="chapman", layers=[dict(name="M2", n0_m3=1e10, h0_km=152.0,
                                                     scale_height_km=12.0)]), True))
# found 2026-11 by the dev profile: 0.5 Hz two-way X band to MAVEN, 5.0-5.1 km steps,
# H = 8 km: 1.9e-3 of the peak, M2 density 3.1e-3 (the fourth-order term again)
@example(text=scenario_text("dss14-maven-x", "2022-02-21", "egress", 0, 0.5, dict(
    model="parrott2025", grazing="chapman", scale_height_km=8.0, f107_sfu=65.0), True))
@example(text=scenario_text("dss14-maven-x", "2022-02-18", "egress", 0, 0.5, dict(
    model="parrott2025", grazing="chapman", scale_height_km=8.0, f107_sfu=65.0), True))
# found 2026-12 by the dev profile: 0.5 Hz MEX -> DSS-43 X band, 6.2 km steps (0.77 H):
# flagged under-resolved (estimate 1.8e-2), TEC 1.07e-2 off; and X/S two-way to MEX,
# 6.1 km steps (0.88 H), T_n -4.4 K (RESOLVED_STEP_OVER_H)
@example(text=scenario_text("mex-dss43-x", "2022-08-26", "ingress", 0, 0.5, dict(
    model="parrott2025", grazing="chapman", scale_height_km=8.0, f107_sfu=65.0), True))
@example(text=scenario_text("earth-mex-xs", "2022-08-25", "ingress", 0, 0.5, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=7.0), True))
def test_property_roundtrip_neutral_atmosphere(text):
    """Neutral CO2 on, 0.5-5 Hz: the same acceptance. Before the neutral separation
    (retrieval.neutral) the neutral refractivity leaked into N_e as f^2: <= 4e-4 of the
    peak at UHF, 1.7e-2 to 5.9e-2 at X band; it is now fitted below the ionosphere and
    removed on single-frequency links, and cancelled by the X/S combination on dual ones."""
    res, m, x, h_km = _round_trip(text)
    _in_model(res)
    _check_acceptance(res, m, x, h_km)


@pytest.mark.parametrize("text, word", [
    ('[link]\nfrequncy_hz = 1.0\n', "frequncy_hz"),
    ('[link]\nfrequency_hz = "high"\n', "frequency_hz"),
    ('[lnk]\n', "[lnk]"),
    ('[event]\nkind = "sideways"\n', "kind"),
    ('[ionosphere]\nmodel = "layers"\n', "layers"),
    ('[event]\nbottom_altitude_km = 500.0\n', "bottom_altitude_km"),
    ('not toml = = 1', "TOML"),
])
def test_bad_scenarios_are_one_sentence(text, word):
    from synth.errors import ScenarioError
    with pytest.raises(ScenarioError, match=word) as e:
        parse_scenario(text, "x.toml")
    assert "\n" not in str(e.value).strip() or word == "TOML"


def test_scenario_without_occultation_is_one_sentence(tmp_path, capsys):
    text = load_scenario("mex-tgo-uhf").text.replace('stop_utc = "2023-01-04"',
                                                     'stop_utc = "2023-01-01T00:20:00"')
    f = tmp_path / "none.toml"
    f.write_text(text)
    assert main(["roundtrip", "--scenario", str(f), "-o", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "no ingress occultation" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.nc").exists()


def test_scenarios_command_lists_and_shows(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway"):
        assert name in out
    assert main(["scenarios", "--show", "mex-tgo-uhf"]) == 0
    text = capsys.readouterr().out
    assert parse_scenario(text).name == "mex-tgo-uhf"


@pytest.mark.parametrize("link, day, kind, rate, ion, neutral", [
    ("earth-mex-xs", "2022-01-01", "ingress", 0.5625, dict(
        model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False),
    ("earth-mex-xs", "2022-01-01", "ingress", 0.5, dict(
        model="fox_weber2012", grazing="chapman", scale_height_km=8.0), False),
    ("dss14-maven-x", "2022-02-21", "egress", 0.5, dict(
        model="parrott2025", grazing="chapman", scale_height_km=8.0, f107_sfu=65.0), True),
])
def test_coarse_profiles_are_flagged_with_a_trustworthy_number(link, day, kind, rate, ion,
                                                                neutral):
    """The cases the dev profile found above 1e-3 at 0.5 Hz (4.7-5.3 km steps, H = 8 km):
    the step-doubling estimate alone read them below 1e-3 (its coarse grids are outside the
    asymptotic regime); with the peak's levels-per-scale-height term the retrieval flags
    them, and its number bounds the true error from above without overstating it by more
    than 10x (measured estimate / error 1.4-5.6; errors 1.4e-3 to 2.3e-3)."""
    res = run_roundtrip(parse_scenario(scenario_text(link, day, kind, 0, rate, ion, neutral)))
    err = res["metrics"]["ne_max_abs_error_over_peak"]
    attrs = res["profile"].attrs
    assert err > 1e-3  # the case is what it says
    assert attrs["under_resolved"] == 1
    assert err <= attrs["abel_discretisation_error_over_peak"] <= 10 * err
    assert 1.0 <= attrs["peak_levels_per_scale_height"] <= 2.5  # measured 1.6-1.9
