"""Oscillator model: Allan deviation checked with allantools (an independent library)."""

from __future__ import annotations

import allantools
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.stats import chi2

from retrieval.errors import RoharnessError
from synth import oscillator as osc

TAU0_S = 0.1  # 10 Hz, the Doppler sample rate of the harness
TAUS_S = np.array([1.0, 10.0, 100.0])


# --- the independent library itself ------------------------------------------------------

def test_allantools_reproduces_nbs14():
    """NBS14 10-point phase data (../shared/data/README.md): allantools must reproduce it."""
    x = np.array([0, 103.11111, 123.22222, 157.33333, 166.44444, 48.55555, -96.33333,
                  -2.22222, 111.88889, 0])
    # Published values carry 7 significant digits: rtol 1e-6 covers the rounding.
    _, adev, _, _ = allantools.adev(x, rate=1.0, data_type="phase", taus=[1.0, 2.0])
    np.testing.assert_allclose(adev, [91.22945, 115.8082], rtol=1e-6)
    _, oadev, _, _ = allantools.oadev(x, rate=1.0, data_type="phase", taus=[2.0])
    np.testing.assert_allclose(oadev, [85.95287], rtol=1e-6)
    _, mdev, _, _ = allantools.mdev(x, rate=1.0, data_type="phase", taus=[2.0])
    np.testing.assert_allclose(mdev, [74.78849], rtol=1e-6)


# --- the sigma-tau formulas -------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(osc.NOISE_ALPHA))
def test_standard_formulas_match_allantools_psd_integral(name):
    """Standard sigma-tau formulas vs allantools.psd2allan (numerical PSD integral)."""
    f_cut_hz, df_hz = 5.0, 1.0e-3
    f = np.arange(0.0, f_cut_hz + df_hz / 2, df_hz)
    alpha = float(osc.NOISE_ALPHA[name])
    s_y = np.zeros_like(f)
    s_y[1:] = f[1:] ** alpha
    s_y[0] = s_y[1] if alpha < 0 else 0.0
    taus, adev = allantools.psd2allan(s_y, df_hz, base=10)
    keep = (taus >= 1.0) & (taus <= 30.0)  # psd2allan drops f > f_cut and f < df: at
    # 1 < tau < 30 s these truncations cost < 1.6 % (measured: worst RWFM at 20 s, 1.5 %)
    # Bandwidth of the formula = the integration cut-off (see the module docstring).
    tau0 = 2.0 / (np.pi * f_cut_hz) if name == "fpm" else 1.0 / (2.0 * f_cut_hz)
    expected = osc.adev_from_h({name: 1.0}, taus[keep], tau0, model="standard")
    np.testing.assert_allclose(adev[keep], expected, rtol=0.02)


def test_discrete_model_rwfm_exact_factor():
    """Random-walk FM sampled at tau0: sigma^2 = (2 pi^2/3) h tau (1 + 1/(2 m^2)) exactly."""
    m = np.array([1, 2, 5, 30])
    got = osc.adev_from_h({"rwfm": 1.0}, m * TAU0_S, TAU0_S, model="discrete") ** 2
    want = 2 * np.pi**2 / 3 * m * TAU0_S * (1 + 1 / (2.0 * m**2))
    np.testing.assert_allclose(got, want, rtol=1e-9)  # quadrature accuracy


@given(st.dictionaries(st.sampled_from(sorted(osc.NOISE_ALPHA)),
                       st.floats(1e-26, 1e-18), min_size=1, max_size=3))
def test_h_from_adev_inverts_adev_from_h(h):
    """ADEV targets made from h give h back (exact, well-conditioned 5-point system)."""
    taus = np.array([0.1, 1.0, 10.0, 100.0, 1000.0])
    sig = osc.adev_from_h(h, taus, TAU0_S, model="standard")
    got = osc.h_from_adev(taus, sig, sorted(h), TAU0_S, model="standard")
    re_sig = osc.adev_from_h(got, taus, TAU0_S, model="standard")
    np.testing.assert_allclose(re_sig, sig, rtol=1e-6)  # NNLS solves to ~1e-12 relative


def test_presets_meet_their_documented_figures():
    """SCIENCE.md section 4: USO ~1e-12 at 1 s, ~4e-13 over 10-1000 s; TCXO ~1e-9 at 1 s."""
    uso = osc.adev_from_h(osc.PRESETS["uso"]["h"], [1, 10, 100, 1000], TAU0_S, "standard")
    assert uso[0] == pytest.approx(1e-12, rel=1e-6)
    assert np.all(np.abs(uso[1:] / 4e-13 - 1) < 0.25)  # "about": 4.9e-13 at 10 s
    tcxo = osc.adev_from_h(osc.PRESETS["tcxo"]["h"], [1.0], TAU0_S, "standard")
    assert tcxo[0] == pytest.approx(1e-9, rel=1e-6)


def test_electra_preset_is_the_documented_inference():
    """electra: 1e-11 at 1 and 10 s, 2e-11 at 100 s (0.01 x tcxo), and a drift of several Hz
    over a 10-min UHF pass whose curvature a straight line cannot remove (the docstring's
    ~0.01 Hz from the chord over the 320 s ionospheric pass)."""
    adev = osc.adev_from_h(osc.PRESETS["electra"]["h"], [1, 10, 100], TAU0_S, "standard")
    np.testing.assert_allclose(adev, [1e-11, 1e-11, 2e-11], rtol=1e-6)
    f_hz = 437.1e6
    ds = osc.oscillator(630.0, 1.0, preset="electra", h={})
    y = ds.frac_freq_deterministic.values
    span_hz = (y.max() - y.min()) * f_hz
    # "several Hz over the pass": 6e-8 (1 - e^(-630/6000)) + 2e-12 x 630 = 7.24e-9 -> 3.16 Hz
    assert span_hz == pytest.approx(3.16, abs=0.01)
    t = ds.time.values
    gap = (t >= 150) & (t <= 470)  # a 320 s stretch, as between 230 and 90 km
    chord = np.polyval(np.polyfit(t[gap][[0, -1]], y[gap][[0, -1]], 1), t[gap])
    dev_hz = np.max(np.abs(y[gap] - chord)) * f_hz
    # 6e-8 (320/6000)^2 / 8 e^(-310/6000) f = 0.0088 Hz (second order in T/tau)
    assert dev_hz == pytest.approx(0.0088, rel=0.02)


# --- generated series -------------------------------------------------------------------

def _cases():
    cases = {}
    for name in osc.NOISE_ALPHA:  # each pure type specified by an ADEV point: 1e-11 at 1 s
        cases[name] = osc.h_from_adev([1.0], [1e-11], [name], TAU0_S, model="discrete")
    cases["uso"] = osc.PRESETS["uso"]["h"]
    cases["tcxo"] = osc.PRESETS["tcxo"]["h"]
    return cases


@pytest.mark.parametrize("case", list(_cases()))
def test_generated_adev_matches_specification(case):
    """Mean Allan variance of 32 realisations vs the specification at 1, 10, 100 s."""
    h = _cases()[case]
    n, reps = 20001, 32  # 2000 s at 10 Hz: >= 19 tau at tau = 100 s
    rng = np.random.default_rng([4, list(_cases()).index(case)])  # independent per case
    acc = np.zeros(TAUS_S.size)
    for _ in range(reps):
        x = osc.power_law_phase(n, TAU0_S, h, rng=rng)
        acc += allantools.oadev(x, rate=1 / TAU0_S, data_type="phase", taus=TAUS_S)[1] ** 2
    var = acc / reps
    spec = osc.adev_from_h(h, TAUS_S, TAU0_S, model="discrete") ** 2
    for k, tau in enumerate(TAUS_S):
        m = int(round(tau / TAU0_S))
        # EDF of the dominant noise type at this tau (Greenhall's algorithm, allantools)
        contrib = {nm: c * osc.adev_from_h({nm: 1.0}, [tau], TAU0_S)[0] ** 2
                   for nm, c in h.items()}
        alpha = osc.NOISE_ALPHA[max(contrib, key=contrib.get)]
        edf = reps * allantools.edf_greenhall(alpha=alpha, d=2, m=m, N=n, overlapping=True)
        # 99.9 % two-sided interval: 21 checks, so ~2 % chance that any fails by luck.
        lo = var[k] * edf / chi2.ppf(0.9995, edf)
        hi = var[k] * edf / chi2.ppf(0.0005, edf)
        assert lo <= spec[k] <= hi, (case, tau, np.sqrt(var[k] / spec[k]))


def test_deterministic_drift_exact():
    """Noise off: x(t) and interval-mean y equal the analytic integral of the drift law."""
    law = dict(offset=3e-9, rate_per_s=2e-12, accel_per_s2=-1e-15, step_time_s=40.0,
               step_size=5e-10, step_tau_s=7.0)

    def y_true(t):  # the law written out again here, independently of the module
        y = 3e-9 + 2e-12 * t - 0.5e-15 * t**2
        return y + (5e-10 * (1 - np.exp(-(t - 40.0) / 7.0)) if t > 40.0 else 0.0)

    ds = osc.oscillator(100.0, 0.5, h={}, **law)
    t = ds.time.values
    x_quad = np.array([quad(y_true, 0.0, ti, points=[40.0] if ti > 40 else None,
                            epsabs=0, epsrel=1e-13)[0] for ti in t])
    np.testing.assert_allclose(ds.phase_error.values, x_quad, rtol=1e-11, atol=1e-22)
    y_mean = np.diff(x_quad) / 0.5
    np.testing.assert_allclose(ds.frac_freq_error.values, y_mean, rtol=1e-9)
    np.testing.assert_allclose(ds.frac_freq_deterministic.values,
                               [y_true(ti) for ti in t], rtol=1e-13)


def test_pure_step_and_drift_off():
    ds = osc.oscillator(10.0, 1.0, h={}, step_time_s=4.0, step_size=1e-9)
    np.testing.assert_array_equal(ds.frac_freq_deterministic.values,
                                  np.where(np.arange(11) >= 4, 1e-9, 0.0))
    ds = osc.oscillator(10.0, 1.0, preset="tcxo", drift=False, h={})
    assert not ds.phase_error.values.any()


def test_seeded_and_no_global_rng():
    state = np.random.get_state()[1].copy()
    a = osc.oscillator(60.0, 0.1, preset="tcxo", rng=np.random.default_rng(1))
    b = osc.oscillator(60.0, 0.1, preset="tcxo", rng=np.random.default_rng(1))
    c = osc.oscillator(60.0, 0.1, preset="tcxo", rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a.phase_error, b.phase_error)
    assert not np.array_equal(a.phase_error, c.phase_error)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_long_series_shape_and_units():
    ds = osc.oscillator(3600.0, 0.1, preset="uso", rng=np.random.default_rng(0))
    assert ds.sizes == {"time": 36001, "time_mid": 36000}
    assert ds.phase_error.attrs["units"] == "s"
    assert np.isfinite(ds.phase_error).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="known"):
        osc.oscillator(10.0, 1.0, preset="rubidium")
    with pytest.raises(ValueError, match="known"):
        osc.adev_from_h({"pink": 1.0}, [1.0], 0.1)
    with pytest.raises(RoharnessError, match="rng"):
        osc.oscillator(10.0, 1.0, preset="uso")
    with pytest.raises(RoharnessError, match="multiples"):
        osc.adev_from_h({"wfm": 1.0}, [0.15], 0.1, model="discrete")
