"""Drift-correction strategies on synthetic residuals with a known drift."""

import numpy as np
import pytest

from retrieval.drift import MODELS, baseline_poly_fit, correct_drift, tangent_altitude
from retrieval.electron_density import invert_observation


@pytest.fixture(scope="module")
def obs():
    """Noiseless level-2 observation of the mex-tgo-uhf occultation (the true residual)."""
    from synth.observe import simulate
    from synth.scenario import load_scenario
    return simulate(load_scenario("mex-tgo-uhf"))[1]


def _ramp_alt(n=600):
    t = np.arange(n, dtype=float)
    return t, 320e3 - t * (260e3 / n)


@pytest.mark.parametrize("coef", [(0.7,), (0.3, -2e-3), (0.1, 1e-3, -2e-6)])
def test_baseline_poly_recovers_polynomial_drift(coef):
    t, alt = _ramp_alt()
    drift = np.polyval(coef[::-1], t)
    iono = np.where(alt < 200e3, 0.8 * np.exp(-((alt - 130e3) / 30e3) ** 2), 0.0)
    base, order = baseline_poly_fit(t, drift + iono, alt, 230e3, max_order=3)
    # noiseless polynomial of degree <= max_order: the least-squares fit is exact; 1e-6 Hz
    # allows for rounding when a higher order than needed is kept (extrapolated 5x)
    assert order >= len(coef) - 1
    np.testing.assert_allclose(base, drift, atol=1e-6)


def test_baseline_poly_bic_picks_linear_in_noise():
    t, alt = _ramp_alt()
    rng = np.random.default_rng(3)
    drift = 0.2 + 1e-3 * t
    r = drift + rng.normal(0, 0.01, t.size)
    base, order = baseline_poly_fit(t, r, alt, 230e3, max_order=3)
    vac = alt >= 230e3
    # OLS slope standard error sigma*sqrt(12/n^3), n ~ 207 vacuum samples; the
    # extrapolation to t = 600 s is within ~4 sigma of the line's error there
    n = vac.sum()
    se = 0.01 * np.sqrt(1.0 / n + 12.0 * (600 - t[vac].mean()) ** 2 / n**3)
    assert order in (1, 2)
    assert abs(base[-1] - drift[-1]) < 4 * se * (3 if order == 2 else 1)


def test_correct_drift_linear_drift_restores_level2(obs):
    t = obs["time"].values
    drift = 0.5 - 1.5e-3 * t  # 0.5 Hz offset, -0.95 Hz over the pass
    o4 = obs.copy()
    o4["frequency_residual"] = obs["frequency_residual"] + drift
    o5 = correct_drift(o4, "baseline_poly", threshold_altitude_m=250e3, max_order=1)
    # the true residual above 250 km is up to ~3e-3 Hz (the topside tail), which the line
    # absorbs; extrapolated ~2.5x beyond its span that error grows to ~4x: 15 mHz, i.e.
    # < 2 % of the 0.8 Hz ionospheric peak residual
    np.testing.assert_allclose(o5["frequency_residual"], obs["frequency_residual"],
                               atol=1.5e-2)
    assert o5.attrs["drift_order"] == 1


def test_parrott_offset_is_bounded(obs):
    alt = tangent_altitude(obs)
    o4 = obs.copy()
    o4["frequency_residual"] = obs["frequency_residual"] + np.where(alt < 230e3, 2.0, 0.0)
    o5 = correct_drift(o4, "parrott2025")
    assert abs(o5.attrs["drift_parameter"]) <= 0.5
    # a 2 Hz step needs the full bound: the optimiser ends at it (xatol 1e-4 Hz)
    assert o5.attrs["drift_parameter"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("model,band", [("withers2020", (70e3, 90e3)),
                                        ("parrott2025", (70e3, 80e3))])
def test_ne_criterion_met(obs, model, band):
    """The strategy's promise: mean retrieved N_e in its transition band is ~0."""
    o4 = obs.copy()
    o4["frequency_residual"] = obs["frequency_residual"] + 0.3 - 5e-4 * obs["time"]
    p5 = invert_observation(correct_drift(o4, model), tangent_geometry=False)
    alt = p5["altitude"].values
    sel = (alt >= band[0]) & (alt <= band[1])
    peak = float(invert_observation(obs, tangent_geometry=False)["electron_density"].max())
    # root / optimiser tolerances (1e-9 Hz/s, 1e-4 Hz) give << 1 % of the peak
    assert abs(float(p5["electron_density"].values[sel].mean())) < 0.01 * peak


def test_unknown_model(obs):
    with pytest.raises(ValueError, match="known:.*parrott2025"):
        correct_drift(obs, "kalman")
    assert set(MODELS) >= {"baseline_poly", "withers2020", "parrott2025"}


# --------------------------------------------------------------- smoothing, repair, speed
def test_smooth_residual_equals_scipy_savgol():
    """On a uniform grid the local quadratic fit is the Savitzky-Golay filter (scipy's
    ``savgol_filter``, mode "interp" = the same one-sided polynomial fit at the ends)."""
    from scipy.signal import savgol_filter

    from retrieval.drift import smooth_residual
    rng = np.random.default_rng(5)
    t = np.arange(200.0)
    r = np.sin(t / 17.0) + rng.normal(0, 0.3, t.size)
    for m in (5, 21, 37):
        ours = smooth_residual(t, r, float(m))
        ref = savgol_filter(r, m, 2, mode="interp")
        # both are exact least squares; 1e-9 is round-off on O(1) values
        np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_smooth_residual_keeps_quadratic_across_gaps():
    from retrieval.drift import smooth_residual
    t = np.delete(np.arange(300.0), np.r_[50:80, 200:203])  # two gaps, as flagged windows
    q = 0.3 - 2e-3 * t + 4e-6 * t**2
    # a degree-2 polynomial is reproduced exactly by a degree-2 local fit (round-off only)
    np.testing.assert_allclose(smooth_residual(t, q, 25.0), q, atol=1e-9)
    np.testing.assert_array_equal(smooth_residual(t, q, 0.0), q)


def test_isotonic_levels_match_scipy():
    """Our pool-adjacent-violators blocks give scipy's isotonic regression."""
    from scipy.optimize import isotonic_regression

    from retrieval.electron_density import isotonic_levels
    rng = np.random.default_rng(11)
    y = -400.0 * np.arange(300) + rng.normal(0, 800.0, 300)  # noisy descending a(t)
    starts = isotonic_levels(y, decreasing=True)
    counts = np.diff(np.append(starts, y.size))
    means = np.add.reduceat(y, starts) / counts
    assert np.all(np.diff(means) < 0)  # strictly monotonic levels
    ref = isotonic_regression(y, increasing=False).x
    # continuous data has no ties: the blocks are scipy's; 1e-6 m is round-off
    np.testing.assert_allclose(np.repeat(means, counts), ref, atol=1e-6)


def test_invert_isotonic_flags_rows(obs):
    """Clean data: "isotonic" changes nothing; noisy data: merged levels are flagged."""
    clean = invert_observation(obs, tangent_geometry=False)
    rep = invert_observation(obs, tangent_geometry=False, monotonic="isotonic")
    np.testing.assert_array_equal(rep["electron_density"], clean["electron_density"])
    assert not rep["quality_flag"].any()
    noisy = obs.copy()
    rng = np.random.default_rng(2)
    noisy["frequency_residual"] = obs["frequency_residual"] + rng.normal(0, 0.4, obs.sizes["time"])
    from retrieval.errors import RoharnessError
    with pytest.raises(RoharnessError, match="not monotonic"):
        invert_observation(noisy, tangent_geometry=False)
    prof = invert_observation(noisy, tangent_geometry=False, monotonic="isotonic")
    merged = prof["samples_merged"].values
    assert merged.sum() == obs.sizes["time"]  # every sample lands in exactly one level
    np.testing.assert_array_equal(prof["quality_flag"].values == 1, merged > 1)
    assert np.all(np.diff(prof["impact_parameter"].values) > 0)
    with pytest.raises(ValueError, match="known"):
        invert_observation(obs, monotonic="sort")


def test_auto_smoothing_from_noise(obs):
    from retrieval.drift import choose_smoothing_window
    vac = tangent_altitude(obs) >= 230e3
    # noiseless residual: no smoothing, so the clean round trip is untouched
    assert choose_smoothing_window(obs, vac) == 0.0
    o5 = correct_drift(obs, "none")
    np.testing.assert_array_equal(o5["frequency_residual"], obs["frequency_residual"])
    rng = np.random.default_rng(4)
    noisy = obs.copy()
    noisy["frequency_residual"] = obs["frequency_residual"] + rng.normal(0, 0.3, obs.sizes["time"])
    w = choose_smoothing_window(noisy, vac)
    # white noise 0.3 Hz, |da/df| <= 2.1 km/Hz, descent >= 330 m/sample: the difference
    # noise must drop ~6x, i.e. a quadratic SG window of at least ~9 samples; capped at
    # MAX_SMOOTHING_M / (~0.4 km/s) ~ 50 s
    assert 9.0 <= w <= 60.0
    o5 = correct_drift(noisy, "baseline_poly", smoothing_s="auto")
    assert o5.attrs["drift_smoothing_s"] == w
    assert o5.attrs["impact_parameter_repair"] == "isotonic"


def test_parrott_matches_bounded_minimiser(obs):
    """The secant root (3-4 inversions) equals scipy's bounded minimiser of g^2 (~15)."""
    from scipy.optimize import minimize_scalar

    from retrieval.drift import _mean_ne
    o4 = obs.copy()
    o4["frequency_residual"] = obs["frequency_residual"] + 0.3 - 5e-4 * obs["time"]
    o5 = correct_drift(o4, "parrott2025", smoothing_s=0)
    alt = tangent_altitude(obs)
    t = obs["time"].values
    shape = (t >= t[np.flatnonzero(alt < 230e3)[0]]).astype(float)
    # the level-4 residual minus the fitted baseline polynomial alone
    base = o4["frequency_residual"].values - (o5["drift_correction"].values
                                              - o5.attrs["drift_parameter"] * shape)
    res = minimize_scalar(lambda p: _mean_ne(obs, base - p * shape, (70e3, 80e3)) ** 2,
                          bounds=(-0.5, 0.5), method="bounded", options={"xatol": 1e-6})
    # both stop within ~1e-4 Hz of the optimum (xatol / secant step tolerance)
    assert o5.attrs["drift_parameter"] == pytest.approx(res.x, abs=2e-4)
