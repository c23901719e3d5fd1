"""The level-1 (I/Q) round trip: agreement with level 2, bad input, acceptance (slow)."""

import numpy as np
import pytest

from retrieval.electron_density import invert_observation
from retrieval.errors import RoharnessError
from retrieval.iq import level4_observation
from synth.scenario import load_scenario
from validation.iq_path import run_iq_path
from validation.roundtrip import compare


@pytest.fixture(scope="module")
def sim():
    from synth.observe import simulate
    return simulate(load_scenario("mex-tgo-uhf-drift"))


def _quiet():
    scn = load_scenario("mex-tgo-uhf-drift")
    scn["oscillator"]["enabled"] = False
    scn["receiver"]["thermal_noise"] = False
    return scn


def test_noiseless_iq_path_reproduces_level2(sim):
    truth, obs2 = sim
    res = run_iq_path(_quiet(), obs2, "none")
    m = compare(truth, invert_observation(res["observation"]))
    # the level-2 round trip's tolerance (issue 3): max |N_e error| <= 1e-3 of the peak
    assert m["ne_max_abs_error_over_peak"] <= 1e-3
    lvl4 = res["level4"]["frequency_residual"].values
    ref = obs2["frequency_residual"].sel(time=res["level4"]["time"]).values
    # ML window estimate vs instantaneous frequency: curvature term f'' T^2 / 40 with
    # |f''| < 1e-3 Hz/s^2 at T = 1 s -> < 1e-4 Hz
    assert np.max(np.abs(lvl4 - ref)) < 1e-4


def test_all_silent(sim):
    scn = _quiet()
    scn["receiver"]["silent_periods"] = [[-10.0, 1e4]]
    with pytest.raises(RoharnessError, match="no carrier detected"):
        run_iq_path(scn, sim[1], "none")


def test_nan_iq(sim):
    from synth.instrument import level1_record
    iq = level1_record(_quiet(), sim[1])
    iq["i"][100] = np.nan
    with pytest.raises(RoharnessError, match="NaN but not flagged"):
        level4_observation(iq, sim[1])


def test_sample_rate_too_low(sim):
    scn = _quiet()
    scn["receiver"]["sample_rate_hz"] = 1000.0
    scn["receiver"]["tuning_order"] = 0  # LO fixed: the full vacuum Doppler (kHz) at baseband
    with pytest.raises(RoharnessError, match="too low"):
        run_iq_path(scn, sim[1], "none")


def test_cli_same_keys(capsys):
    from validation.roundtrip import run_roundtrip
    scn = _quiet()
    keys = set(run_roundtrip(scn)["metrics"])
    ref = {"ne_max_abs_error_over_peak", "m2_peak_altitude_error_km",
           "m2_peak_density_rel_error", "m1_class", "n_samples", "scenario", "seed",
           "sza_deg", "elapsed_s", "tec_rel_error", "neutral_temperature_error_k"}
    assert ref <= keys


def test_preset_noise_inverts_with_flags(sim):
    """At the tcxo preset the profile is retrieved (smoothed, isotonic repair flagged),
    not rejected: `roharness roundtrip --scenario mex-tgo-uhf-tcxo` exits 0."""
    truth, obs2 = sim
    scn = load_scenario("mex-tgo-uhf-tcxo")  # same occultation, catalogue TCXO receiver
    res = run_iq_path(scn, obs2)
    o5 = res["observation"]
    # the window is chosen from the noise: ~0.44 Hz per 1-s sample needs tens of seconds
    assert o5.attrs["drift_smoothing_s"] > 5.0
    prof = invert_observation(o5)
    assert np.all(np.isfinite(prof["electron_density"].values))
    assert set(np.unique(prof["quality_flag"].values)) <= {0, 1}
    assert int(prof["samples_merged"].sum()) == o5.sizes["time"]
    compare(truth, prof)  # metrics computable


def _pass_count(truth, obs2, scale, model, scenario="mex-tgo-uhf-drift"):
    scn = load_scenario(scenario)
    scn["oscillator"]["receiver_adev_scale"] = scale
    n = 0
    for seed in range(20):
        scn.sections[""]["seed"] = seed
        try:
            m = compare(truth, invert_observation(run_iq_path(scn, obs2, model)
                                                  ["observation"]))
        except RoharnessError:
            continue
        # issue 4 acceptance: M2 density within 5 %, altitude within 2 km
        n += abs(m["m2_peak_density_rel_error"]) <= 0.05 and abs(
            m["m2_peak_altitude_error_km"]) <= 2.0
    return n


@pytest.mark.slow
def test_acceptance_20_seeds(sim):
    """Issue 15 acceptance on the default scenario (Electra preset): >= 18/20 seeds with the
    M2 peak within 5 % and 2 km, with the best recipe. Measured (benchmarks/
    drift_strategies.py): withers2020 19/20, baseline_poly 12/20, parrott2025 11/20."""
    truth, obs2 = sim
    counts = {m: _pass_count(truth, obs2, 1.0, m)
              for m in ("baseline_poly", "withers2020", "parrott2025")}
    assert max(counts.values()) >= 18, counts
    assert counts["withers2020"] >= 18, counts  # the scenario's recipe is the best one


@pytest.mark.slow
def test_tcxo_stress_case_fails_as_measured(sim):
    """The catalogue TCXO (mex-tgo-uhf-tcxo) is out of reach for every recipe, measured 0/20:
    its random-walk/flicker FM between the vacuum baseline and the transition region (~1.7 Hz
    bridge error vs a 0.8 Hz signal) is as slow as the layer. Asserted as data: a change that
    makes it pass is news (re-measure), not a regression."""
    truth, obs2 = sim
    for m in ("baseline_poly", "withers2020", "parrott2025"):
        assert _pass_count(truth, obs2, 1.0, m, "mex-tgo-uhf-tcxo") <= 1, m


@pytest.mark.slow
def test_acceptance_reachable_scale(sim):
    """Where the target is physically reachable (measured: withers2020 20/20 at 1/100 of
    the tcxo ADEV), the retrieval must reach it."""
    truth, obs2 = sim
    assert _pass_count(truth, obs2, 0.01, "withers2020", "mex-tgo-uhf-tcxo") >= 18
