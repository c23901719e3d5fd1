"""Neutral temperature of noiseless round trips over the scenario space (issue 14).

Target: |dT_n| <= 4 K, dT_n = retrieved T_n minus T = H_M2 g(h_M2) m_CO2 / k_B of the true
M2 layer (``validation.roundtrip.true_quantities``), for every ionosphere model, grazing
model, SZA 0-85 deg, link kind and scale heights 7-14 km (the ``ionospheres`` strategy of
test_roundtrip.py draws 8-14 km for the laws, 6-15 km for explicit layers).

Measured before setting the bound (benchmarks/temperature_sweep.py, 2026-11, noiseless):

* before (one-layer fit whenever no M1 was detected): worst +23.3 K (fox_weber2012),
  +22.2 K (segale2024), +16.2 K (parrott2025) over 140 draws at 1-4 Hz; every draw
  beyond 4 K had M1 class ``none``: a merged M1 of the same scale height whose flank the
  -20..+50 km window absorbs;
* after (a free M1 kept when the F-test supports it): worst 0.92 K over the same 140
  draws (0.48-0.92 K per model); 0.2-1 Hz: 2.5 K (40 draws; 28.8 K before);
  neutral atmosphere on, 1-4 Hz: 4.9 K (50 draws; 22.5 K before), 0.25-4 Hz: 5.1 K
  (120 draws; 23.3 K before). Beyond 4 K only where the profile itself is off: the
  neutral leak at X band (pinned below) or layers under-resolved at 0.3-0.4 Hz
  (steps of 0.5-0.8 H).

4 K (the issue's target) is ~4x the measured fine-sampling worst case; the property
hunts the worst case with ``target()``.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, note, target
from hypothesis import strategies as st
from test_roundtrip import (
    MERGING_M1_CASE,
    _check_temperature,
    _layer_separation_km,
    _round_trip,
    merging_m1_case,
    scenario_text,
    scenario_variants,
)

from synth.scenario import parse_scenario
from validation.roundtrip import run_roundtrip


@given(text=scenario_variants(st.floats(1.0, 4.0), neutral=False))
# the worst case of the sweep before the fix, at 2.0 Hz: +20.4 K before, -0.9 K after
# (M1 class none, SZA 76.7 deg; fox_weber2012, H = 13 km, MEX -> DSS-43 X band)
@example(text=scenario_text("mex-dss43-x", "2022-10-08", "ingress", 1, 2.0, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=13.0), False))
# a lone M2 at SZA 76 deg with the grazing-incidence function: a first version's free M1
# settled against M2 and reshaped it (+3.5 K) until an M1 on its bounds was refused
@example(text=scenario_text("mex-tgo", "2022-02-19", "ingress", 0, 3.5, dict(
    model="layers", grazing="chapman", layers=[dict(name="M2", n0_m3=4.2e11, h0_km=145.0,
                                                    scale_height_km=13.3)]), False))
def test_property_neutral_temperature(text):
    res, m, _, _ = _round_trip(text)  # draws without an occultation are rejected there
    note(f"dT_n = {m['neutral_temperature_error_k']:+.2f} K, M1 class {m['m1_class']}, "
         f"model {res['science'].get('temperature_model')}")
    err = abs(m["neutral_temperature_error_k"])
    target(err, label="|dT_n| [K]")
    # issue 14's target, 4 K (measured worst 0.92 K, module docstring), where the true
    # M1 is at least 5 km below M2; closer, the retrieval's model spread must flag it
    _check_temperature(res, m)


# found by benchmarks/temperature_sweep.py --neutral (2026-11, seed 31): with the neutral
# atmosphere on at X band the retrieval has no neutral separation yet (issue 14, another
# part) and its N_e error reaches 1.5 % of the peak at 89-109 km (the M1 region the
# two-layer fit uses) and 9.5 % below; T_n is then off by +4.9 K (+18.3 K with the old
# one-layer fit; 4.7 K at 3.17 Hz, pinned here). Without the neutral atmosphere: -0.8 K.
NEUTRAL_LEAK_CASE = ("mex-dss43-x", "2022-09-22", "ingress", 2, 3.17, dict(
    model="fox_weber2012", grazing="chapman", scale_height_km=13.8))


def test_neutral_leak_no_longer_moves_the_temperature():
    """Before the neutral separation (retrieval.neutral) this X-band case leaked 1.5 % of
    the peak into the M1 region and moved T_n by +4.7 K (a strict xfail then). With the
    neutral fitted and removed it gives the neutral-off result: measured -0.77 K against
    -0.78 K without the neutral atmosphere."""
    on = run_roundtrip(parse_scenario(scenario_text(*NEUTRAL_LEAK_CASE, True)))["metrics"]
    assert abs(on["neutral_temperature_error_k"]) <= 1.0
    # the separation, not luck: N_e within 1e-3 of the peak too (measured 2.2e-4)
    assert on["ne_max_abs_error_over_peak"] <= 1e-3


def test_same_occultation_without_the_neutral_atmosphere():
    m = run_roundtrip(parse_scenario(scenario_text(*NEUTRAL_LEAK_CASE, False)))["metrics"]
    assert abs(m["neutral_temperature_error_k"]) <= 1.0  # measured -0.78 K


@pytest.mark.parametrize("h1_km, sep_km, spread_k", [
    (8.0, 7.1, 0.0),     # the CI draw (2026-12): kept two-layer fit, -0.06 K
    (11.0, 3.0, -24.7),  # merged at the event: one-layer fallback, flagged
])
def test_merging_m1_at_grazing_incidence(h1_km, sep_km, spread_k):
    """An M1 broader than M2 closes in on it at high SZA (grazing incidence lifts each
    peak by ~H ln Ch(chi)). 7.1 km apart the free two-layer fit recovers T_n (it pressed
    the former 8 km bound: +21.7 K); 3.0 km apart the layers are one peak and the
    one-layer fit is off by +31.5 K, which the model spread reports (measured -24.7 K)."""
    res = run_roundtrip(parse_scenario(merging_m1_case(h1_km)))
    m, a = res["metrics"], res["science"]
    assert _layer_separation_km(res["truth"]) == pytest.approx(sep_km, abs=0.3)
    if spread_k == 0.0:
        assert a["temperature_model"] == "two_layer"
        assert abs(m["neutral_temperature_error_k"]) <= 1.0
        assert a["neutral_temperature_model_spread_k"] == 0.0
    else:
        assert a["temperature_model"] == "parrott2025"
        assert m["neutral_temperature_error_k"] > 4.0  # the case is what it says
        assert a["neutral_temperature_model_spread_k"] == pytest.approx(spread_k, rel=0.2)
        _check_temperature(res, m)


def test_cli_warns_of_a_model_dependent_temperature(tmp_path, capsys):
    """The merged case above (3.0 km apart) through `roharness roundtrip`: one sentence
    saying the temperature depends on the layer model, with the spread."""
    from validation.cli import main
    path = tmp_path / "merged.toml"
    path.write_text(merging_m1_case(11.0))
    assert main(["roundtrip", "--scenario", str(path)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: the neutral temperature is model-dependent" in out
    assert "differs by -24.7 K" in out
    # and a well-separated M1 (the 7.1 km case) gives no such warning
    path.write_text(MERGING_M1_CASE)
    assert main(["roundtrip", "--scenario", str(path)]) == 0
    assert "model-dependent" not in capsys.readouterr().out
