"""Carrier extraction vs the Cramer-Rao bound, round trip from synth.receiver, flags, errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from retrieval import carrier
from retrieval.errors import RoharnessError
from synth import receiver as rx
from synth.oscillator import oscillator

FS = 1000.0


def _tone_dataset(freq_hz, cn0_dbhz, seconds, rng, phase=0.7, fs=FS):
    """A unit tone in circular white noise, written here independently of synth."""
    t = np.arange(int(round(seconds * fs))) / fs
    z = np.exp(1j * (2 * np.pi * freq_hz * t + phase))
    if cn0_dbhz is not None:
        sigma2 = fs / 10 ** (cn0_dbhz / 10)  # per-sample SNR = (C/N0) / fs
        z = z + np.sqrt(sigma2 / 2) * (rng.standard_normal(t.size)
                                       + 1j * rng.standard_normal(t.size))
    return xr.Dataset({"i": ("time", z.real), "q": ("time", z.imag)}, coords={"time": t},
                      attrs={"sample_rate_hz": fs})


def crlb_hz(cn0_dbhz, n, fs):
    """CRLB of a tone frequency: var = 6 fs^2 / ((2 pi)^2 SNR N (N^2 - 1)) (Rife-Boorstyn)."""
    snr = 10 ** (cn0_dbhz / 10) / fs
    return np.sqrt(6 * fs**2 / ((2 * np.pi) ** 2 * snr * n * (n**2 - 1)))


@pytest.mark.parametrize("cn0", [30.0, 40.0, 50.0])
def test_ml_estimator_near_cramer_rao_bound(cn0):
    rng = np.random.default_rng(int(cn0))
    f0, windows = 87.654321, 300
    out = carrier.extract_carrier(_tone_dataset(f0, cn0, windows, rng), window_s=1.0)
    err = out.frequency_hz.values - f0
    bound = crlb_hz(cn0, 1000, FS)
    ratio = np.std(err) / bound
    # Issue 4 goal: std / CRLB <= 1.2 (measured 0.94, 0.97, 0.99 at 30, 40, 50 dB-Hz).
    # With 300 windows the sample std scatters by 1/sqrt(2 * 300) ~ 4 %, so 1.2 is 5 sigma
    # above an efficient estimator and fails one whose variance exceeds the bound by 44 %.
    assert ratio <= 1.2, ratio
    # Unbiased: mean within 4 standard errors.
    assert abs(np.mean(err)) < 4 * np.std(err) / np.sqrt(windows)
    # Reported sigma (CRLB at the measured SNR) within 10 % of the CRLB at the true SNR: the
    # SNR estimate from 1000 samples scatters by ~3 % at 30 dB-Hz.
    assert np.median(out.frequency_sigma_hz) == pytest.approx(bound, rel=0.1)
    assert np.median(out.cn0_dbhz) == pytest.approx(cn0, abs=0.2)
    assert not out.flag.values.any()


def test_fft_method_less_efficient_but_sound():
    rng = np.random.default_rng(9)
    out = carrier.extract_carrier(_tone_dataset(-41.3, 40.0, 200, rng), 1.0, method="fft")
    ratio = np.std(out.frequency_hz.values + 41.3) / crlb_hz(40.0, 1000, FS)
    assert ratio < 2.5  # Hann window: variance ~2.3x the bound (measured ratio ~1.5)


@given(st.floats(-480.0, 480.0), st.floats(0.0, 2 * np.pi))
def test_noise_free_tone_exact(f0, phase):
    out = carrier.extract_carrier(_tone_dataset(f0, None, 3, None, phase=phase), 1.0)
    # Newton converges to machine precision on a pure tone; 1e-9 Hz leaves ample margin.
    np.testing.assert_allclose(out.frequency_hz, f0, atol=1e-9)


def _doppler_law():
    t = np.arange(0.0, 61.0, 0.5)  # coarse (level-3-like) sampling of the Doppler [Hz]
    return t, 150.0 + 40.0 * np.sin(2 * np.pi * t / 50.0) - 0.8 * t


def test_round_trip_noise_and_drift_off():
    """Receiver -> carrier reproduces the input Doppler (window centroid times)."""
    t, f = _doppler_law()
    iq = rx.iq_samples(t, f, FS, t_start_s=0.0, t_stop_s=60.0)
    # With the level-3 prediction (here exact) the residual is a pure tone: 1e-6 Hz.
    out = carrier.extract_carrier(iq, 1.0, predicted=(t, f), search_halfwidth_hz=5.0)
    truth = np.interp(out.time.values, iq.time.values, iq.truth_frequency_hz.values)
    assert np.max(np.abs(out.frequency_hz - truth)) < 1e-6
    # The receiver's spline vs linear interpolation of the coarse input grid: 2e-3 Hz.
    np.testing.assert_allclose(out.frequency_hz, np.interp(out.time, t, f), atol=2e-3)


def test_round_trip_without_prediction():
    """No prediction, a Doppler that sweeps < 1.5 resolution cells per window."""
    t = np.arange(0.0, 61.0, 0.5)
    f = 150.0 + 4.0 * np.sin(2 * np.pi * t / 50.0) - 0.8 * t
    iq = rx.iq_samples(t, f, FS, t_start_s=0.0, t_stop_s=60.0)
    out = carrier.extract_carrier(iq, 1.0)
    truth = np.interp(out.time.values, iq.time.values, iq.truth_frequency_hz.values)
    # The periodogram peak is the phase LS slope, offset from the centre frequency by
    # c T^2/40 for a curvature c (T = 1 s); |c| <= 4 (2 pi/50)^2 = 0.063 Hz/s^2.
    assert np.max(np.abs(out.frequency_hz - truth)) < 0.063 / 40 * 1.05


def test_round_trip_with_deterministic_drift():
    """Noise off, linear oscillator drift on: carrier = Doppler + f_c y(t) at window centres."""
    t, f = _doppler_law()
    osc = oscillator(61.0, 0.1, preset="tcxo", h={}, rate_per_s=2e-11)  # 8.7 mHz/s at UHF
    iq = rx.iq_samples(t, f, FS, t_start_s=0.0, t_stop_s=60.0, rx_oscillator=osc,
                       carrier_hz=437.1e6)
    out = carrier.extract_carrier(iq, 1.0, predicted=(t, f), search_halfwidth_hz=5.0)
    tc = out.time.values
    expected = np.interp(tc, t, f) - 437.1e6 * 2e-11 * tc
    # the spline of the Doppler vs linear interpolation of the coarse grid: 2e-3 Hz
    np.testing.assert_allclose(out.frequency_hz, expected, atol=2e-3)
    exact = np.interp(tc, iq.time.values, iq.truth_frequency_hz.values)
    np.testing.assert_allclose(out.frequency_hz, exact, atol=1e-6)


@pytest.mark.parametrize("mode", ["nan", "drop"])
def test_flags_land_on_the_right_windows(mode):
    t, f = _doppler_law()
    iq = rx.iq_samples(t, f, FS, t_start_s=0.0, t_stop_s=20.0, rng=np.random.default_rng(2),
                       cn0_dbhz=45.0, silent_periods=[(5.0, 8.0)], gaps=[(12.3, 12.6)],
                       gap_mode=mode)
    out = carrier.extract_carrier(iq, 1.0, predicted=(t, f), search_halfwidth_hz=20.0)
    start = out.window_start_s.values
    flag = out.flag.values
    gap_win = np.isclose(start, 12.0)
    silent_win = (start >= 5.0 - 1e-9) & (start < 8.0 - 1e-9)
    assert np.array_equal(flag & carrier.FLAG_GAP > 0, gap_win)
    assert np.array_equal(flag & carrier.FLAG_NO_CARRIER > 0, silent_win)
    assert np.all(np.isnan(out.frequency_hz.values[silent_win]))
    assert out.n_samples.values[gap_win][0] == 700
    good = ~silent_win
    err = out.frequency_hz.values[good] - np.interp(out.time.values[good], t, f)
    # 45 dB-Hz, 1 s: CRLB 2.2 mHz (gap window 3.7 mHz); 5 sigma plus 2 mHz interpolation
    assert np.max(np.abs(err)) < 5 * 0.0037 + 0.002


def test_spur_detected():
    t = np.array([0.0, 10.0])
    iq = rx.iq_samples(t, [120.0, 130.0], FS, rng=np.random.default_rng(8), cn0_dbhz=50.0,
                       spur_hz=-200.0, spur_dbc=-10.0)
    out = carrier.extract_carrier(iq, 1.0)
    assert np.all(out.flag.values & carrier.FLAG_SPUR)
    # reported at the native FFT resolution 1/T = 1 Hz: within half a cell
    np.testing.assert_allclose(out.spur_frequency_hz, -200.0, atol=0.5)
    truth = 120.0 + out.time.values
    np.testing.assert_allclose(out.frequency_hz, truth, atol=0.01)


def _one_sentence(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.endswith(".") and ". " not in msg, msg


def test_all_silent_raises():
    t = np.array([0.0, 10.0])
    iq = rx.iq_samples(t, [50.0, 50.0], FS, rng=np.random.default_rng(1), cn0_dbhz=40.0,
                       silent_periods=[(0.0, 10.0)])
    with pytest.raises(RoharnessError, match="silent") as e:
        carrier.extract_carrier(iq, 1.0)
    _one_sentence(e)


def test_nan_iq_raises():
    ds = _tone_dataset(10.0, None, 3, None)
    ds["i"][1234] = np.nan
    with pytest.raises(RoharnessError, match="NaN") as e:
        carrier.extract_carrier(ds, 1.0)
    _one_sentence(e)


def test_aliasing_raises():
    ds = _tone_dataset(10.0, None, 3, None)
    with pytest.raises(RoharnessError, match="too low") as e:
        carrier.extract_carrier(ds, 1.0, freq_range_hz=(-100.0, 700.0))
    _one_sentence(e)
    with pytest.raises(RoharnessError, match="too low") as e:
        carrier.extract_carrier(ds, 1.0, predicted=([0.0, 3.0], [300.0, 520.0]),
                                search_halfwidth_hz=10.0)
    _one_sentence(e)
    with pytest.raises(RoharnessError, match="too low") as e:  # prediction beyond Nyquist
        carrier.extract_carrier(ds, 1.0, predicted=([0.0, 3.0], [300.0, 520.0]))
    _one_sentence(e)
    # default search band: fits below Nyquist, so a valid prediction never raises
    out = carrier.extract_carrier(ds, 1.0, predicted=([0.0, 3.0], [10.0, 10.0]))
    np.testing.assert_allclose(out.frequency_hz, 10.0, atol=1e-9)


def test_other_bad_inputs():
    ds = _tone_dataset(10.0, None, 3, None)
    with pytest.raises(ValueError, match="known"):
        carrier.extract_carrier(ds, 1.0, method="music")
    with pytest.raises(RoharnessError, match="shorter") as e:
        carrier.extract_carrier(ds, 5.0)
    _one_sentence(e)
    bad = ds.assign_coords(time=ds.time.values * 1.0003)
    bad.attrs["sample_rate_hz"] = FS
    with pytest.raises(RoharnessError, match="uniform") as e:
        carrier.extract_carrier(bad, 1.0)
    _one_sentence(e)
