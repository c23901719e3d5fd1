"""Round trips with the neutral atmosphere on: the retrieval separates it (retrieval.neutral).

Built-in scenarios, one per link kind, meet the issue-14 acceptance (N_e <= 1e-3 of the
peak, M2 altitude <= 0.2 km, M2 density <= 0.2 %). Drawn variants isolate the neutral
separation from the other error sources (Abel discretisation, profile top, which another
test bounds): the same scenario is run with the neutral on and off, and the difference of
the two N_e error profiles is what the separation leaves.

Measured before the bounds were set (2026-11, 30 fresh draws at 0.5-5 Hz over every link
kind, final code; 57 more while developing):
* neutral removed (single frequency, 26/30): what it leaves <= 2.1e-4 of the peak (0.52 Hz
  two-way X), typically 1e-6-5e-5 (ignored it was up to 6.9e-2 at X band); M2 altitude
  change <= 0.0012 km, density <= 3.8e-5;
* dual frequency (cancelled by the X/S combination, 2/30): <= 9.7e-6;
* not separable (UHF, 2/30: the plasma reaches the bottom; the neutral there is ~1e-3 of
  the plasma term): <= 9.5e-5, reported by the retrieval as <= 6.8e-4.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, note, reject, target
from hypothesis import strategies as st

from retrieval.electron_density import invert_observation
from retrieval.errors import RoharnessError
from synth.observe import simulate
from synth.scenario import load_scenario, parse_scenario
from validation.iq_path import run_iq_path
from validation.roundtrip import compare, run_roundtrip

sys.path.insert(0, str(Path(__file__).parent))
from test_roundtrip import scenario_text, scenario_variants  # noqa: E402

NEUTRAL_BUILTINS = {  # scenario -> the retrieval's neutral status
    "mex-tgo-uhf-neutral": "removed",
    "maven-x-oneway-neutral": "removed",
    "mex-xs-twoway-neutral": "cancelled_by_dual_frequency",
}


@pytest.mark.parametrize("name, status", sorted(NEUTRAL_BUILTINS.items()))
def test_builtin_neutral_round_trip(name, status):
    """Measured: 8.4e-5 (UHF), 1.1e-4 (X band one-way; 3.2e-2 before the separation),
    2.1e-4 (X/S) of the peak; M2 altitude <= 0.003 km, density <= 1.8e-4."""
    res = run_roundtrip(name)
    m, a = res["metrics"], res["profile"].attrs
    assert m["ne_max_abs_error_over_peak"] <= 1e-3
    assert abs(m["m2_peak_altitude_error_km"]) <= 0.2
    assert abs(m["m2_peak_density_rel_error"]) <= 2e-3
    assert a["neutral_status"] == status
    assert "neutral_refractivity" in res["profile"]
    if status == "removed":  # the fit's parameters against the scenario's CO2 (H = 11 km)
        # X band: measured 0.014 % (H) and 0.1 % (n). UHF: the plasma's own inversion error
        # (~1e-4 of a 2e-5 refractivity peak) is ~10 % of the neutral term at 60-72 km:
        # measured 5 % (H), 6 % (n)
        rel = 0.01 if "uhf" not in name else 0.1
        assert a["neutral_scale_height_m"] == pytest.approx(11e3, rel=rel)
        h0 = a["neutral_reference_altitude_m"]
        assert a["neutral_number_density_at_reference_m3"] == pytest.approx(
            2.1e23 * np.exp(-h0 / 11e3), rel=rel)


def test_scenario_key_selects_the_treatment():
    """[retrieval] neutral = "none" gives back the leak (the key reaches the retrieval)."""
    text = load_scenario("maven-x-oneway-neutral").text.replace('neutral = "auto"',
                                                                 'neutral = "none"')
    res = run_roundtrip(parse_scenario(text))
    assert res["profile"].attrs["neutral_status"] == "off"
    assert res["metrics"]["ne_max_abs_error_over_peak"] > 1e-2  # measured 3.2e-2


def test_drift_corrected_profile_is_unchanged():
    """Noisy drift-corrected UHF data (mex-tgo-uhf-drift, no neutral in the truth): "auto"
    finds no clean neutral window and removes nothing (measured on seeds 1-20: the
    profiles with and without the separation are identical)."""
    scn = load_scenario("mex-tgo-uhf-drift")
    truth, obs = simulate(scn)
    obs5 = run_iq_path(scn, obs)["observation"]
    auto = invert_observation(obs5, tangent_geometry=False, neutral="auto")
    none = invert_observation(obs5, tangent_geometry=False, neutral="none")
    assert auto.attrs["neutral_status"] in ("not_detected", "not_separable")
    np.testing.assert_array_equal(auto["electron_density"].values,
                                  none["electron_density"].values)
    assert compare(truth, auto)["ne_max_abs_error_over_peak"] == pytest.approx(
        compare(truth, none)["ne_max_abs_error_over_peak"], rel=0, abs=0)


def _error_profile(res):
    p, t = res["profile"], res["truth"]
    alt = p.altitude.values
    true = np.interp(alt, t.altitude.values, t.electron_density.values)
    return alt, p.electron_density.values - true, true, float(t.electron_density.max())


#: What the separation may leave, by the retrieval's status, as a fraction of the peak
#: (2.4x the measured worst removal, 10x the dual-frequency and UHF worst cases, all within
#: half the 1e-3 acceptance; see the module text).
LEFT = {"removed": 5e-4, "cancelled_by_dual_frequency": 1e-4, "not_detected": 5e-4}


@given(text=scenario_variants(st.floats(0.5, 5.0), neutral=True))
# found while measuring (2026-11): 0.59 Hz, 3.5 km levels; a 5-level window reached into
# the plasma (H fitted 10.0 km for 11) and left 4.9e-3; windows now need params + 1 clean
# levels only and are refused when contaminated
@example(text=scenario_text("maven-dss14-x", "2022-02-06", "egress", 2, 0.587802720186084,
                            dict(model="fallows2015", grazing="sec",
                                 scale_height_km=12.506031816607655), True))
# S band 1 Hz (2.8 km levels), a low broad ionosphere over the neutral at 61-72 km: was
# not separable (3.2e-3 left, flagged); the coarse two-level window now removes it
@example(text=scenario_text("mex-dss63-s", "2022-01-02", "ingress", 3, 0.9755880015615706,
                            dict(model="segale2024", grazing="sec", group="dawn_aphelion",
                                 scale_height_km=13.842983434183019), True))
# UHF 1.9 Hz, a broad layer at high F10.7 reaching 70 km: the gradient model fitted the
# plasma with dH/dh = 1.0 and extrapolated a "neutral" to 270 km (3e-4 left); gradients
# beyond the physical 0.25 are now refused, and the profile is flagged not separable
@example(text=scenario_text("mex-tgo", "2022-09-30", "ingress", 3, 1.9, dict(
    model="parrott2025", grazing="chapman", scale_height_km=13.886432551334895,
    f107_sfu=216.7727756464687), True))
# found 2026-12 by the dev profile: X band 1 Hz (2.66 km levels), H = 14 km reaching 1.2e-3
# of its peak at 70 km; the four-level window 62-70 km took the gradient model for the
# plasma at its top (3.9e-3 left); curvature is now judged on >= 5 levels (2.5e-4 left)
@example(text=scenario_text("mex-dss43-x", "2022-01-01", "ingress", 0, 1.0, dict(
    model="fallows2015", grazing="chapman", scale_height_km=14.0), True))
def test_property_neutral_separation(text):
    note(text)
    try:
        on = run_roundtrip(parse_scenario(text))
    except RoharnessError as exc:
        if "widen the [event] window" in str(exc):
            reject()
        raise
    off = run_roundtrip(parse_scenario(text.replace("[neutral]\nenabled = true",
                                                    "[neutral]\nenabled = false")))
    a1, e1, t1, peak = _error_profile(on)
    a0, e0, _, _ = _error_profile(off)
    sig = t1 > 0.01 * peak
    left = float(np.max(np.abs(e1 - np.interp(a1, a0, e0))[sig]) / peak)
    attrs = on["profile"].attrs
    status = attrs["neutral_status"]
    note(f"status {status}; separation leaves {left:.3g} of the peak; reported "
         f"{attrs['neutral_error_over_peak']:.3g}")
    bound = LEFT.get(status)
    if status == "not_separable":  # flagged: the retrieval's own leak estimate must hold
        bound = max(5e-4, attrs["neutral_error_over_peak"])
    elif status == "removed" and attrs["neutral_error_over_peak"] > bound:
        # a removal the retrieval itself reports as uncertain beyond 5e-4 (the plasma
        # extrapolated into a coarse window, retrieval.neutral._plasma_in_window): its
        # estimate must hold. Over 50 fresh draws no removal reported more than 1.3e-4,
        # so this applies to the flagged corner cases only (pinned below).
        bound = attrs["neutral_error_over_peak"]
    target(left / bound, label="left / bound")
    assert left <= bound
    if status in ("removed", "cancelled_by_dual_frequency"):
        m1, m0 = on["metrics"], off["metrics"]
        # an N_e error e smooth over ~H moves the peak by ~e H: 5e-4 x 14 km = 0.007 km
        assert abs(m1["m2_peak_altitude_error_km"] - m0["m2_peak_altitude_error_km"]) <= 0.02
        assert abs(m1["m2_peak_density_rel_error"] - m0["m2_peak_density_rel_error"]) <= 5e-4


def test_two_level_window_over_a_broad_layer_at_s_band():
    """Found 2026-12 by the dev profile: S band at 0.5 Hz (4.4 km levels), a broad
    H = 13.9 km layer still at 7.6e-4 of its peak at 66.7 km, the top of the two-level
    coarse window (retrieval.neutral.COARSE_STEP_M). The exponential absorbs that plasma
    (H 8.8 km fitted for 11) and leaves 7.9e-4 of the peak, beyond the 5e-4 of a clean
    removal; two levels admit no other alternative fit, so the estimate was NaN. The
    plasma extrapolated down into the window now gives one: 1.24e-3, which holds the
    error (1.6x) and says the removal is uncertain. (Removing that plasma before the fit
    instead would change every removal; not done.)"""
    text = scenario_text("mex-dss63-s", "2022-07-20", "ingress", 3, 0.5, dict(
        model="fallows2015", grazing="sec", scale_height_km=13.936988017129803), True)
    on = run_roundtrip(parse_scenario(text))
    off = run_roundtrip(parse_scenario(text.replace("[neutral]\nenabled = true",
                                                    "[neutral]\nenabled = false")))
    a1, e1, t1, peak = _error_profile(on)
    a0, e0, _, _ = _error_profile(off)
    left = float(np.max(np.abs(e1 - np.interp(a1, a0, e0))[t1 > 0.01 * peak]) / peak)
    attrs = on["profile"].attrs
    assert attrs["neutral_status"] == "removed" and attrs["neutral_window_levels"] == 2
    assert left > LEFT["removed"]  # the case is what it says (measured 7.9e-4)
    est = attrs["neutral_error_over_peak"]
    assert left <= est <= 3.0 * left  # flagged, and not a vacuous estimate (1.24e-3)
