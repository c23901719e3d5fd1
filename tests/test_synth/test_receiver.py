"""Receiver I/Q synthesis: phase law, oscillator terms, noise level, faults, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.errors import RoharnessError
from synth import receiver as rx
from synth.oscillator import oscillator

FS = 1000.0


def _linear(f0=120.0, rate=-1.5, span=(0.0, 10.0)):
    t = np.linspace(*span, 11)
    return t, f0 + rate * t


def test_phase_is_integral_of_doppler():
    """Noise-free: phase = 2 pi (f0 (t - t0) + r (t^2 - t0^2)/2) (a spline is exact on a line)."""
    t, f = _linear(span=(5.0, 15.0))
    ds = rx.iq_samples(t, f, FS, carrier_hz=437.1e6)
    tt = ds.time.values
    phase = 2 * np.pi * (120.0 * (tt - 5.0) - 1.5 * (tt**2 - 25.0) / 2)
    # 1e-9 rad: float64 round-off on phases of ~1e4 rad
    np.testing.assert_allclose(ds.truth_phase, phase, atol=1e-9)
    np.testing.assert_allclose(ds.i + 1j * ds.q, np.exp(1j * phase), atol=1e-9)
    np.testing.assert_allclose(ds.truth_frequency_hz, 120.0 - 1.5 * tt, atol=1e-9)
    assert tt.size == 10000 and tt[1] - tt[0] == pytest.approx(1 / FS)


@pytest.mark.parametrize("which, sign", [("tx_oscillator", 1.0), ("rx_oscillator", -1.0)])
def test_oscillator_offset_shifts_frequency(which, sign):
    """A fractional offset y shifts the baseband frequency by +f_c y (tx) or -f_c y (rx)."""
    fc, y0 = 437.1e6, 2e-9
    osc = oscillator(12.0, 0.1, h={}, offset=y0)
    t, f = _linear()
    ds = rx.iq_samples(t, f, FS, carrier_hz=fc, **{which: osc})
    tt = ds.time.values
    np.testing.assert_allclose(ds.truth_frequency_hz, 120.0 - 1.5 * tt + sign * fc * y0,
                               atol=1e-7)  # 1e-7 Hz: round-off of x differences
    phase = 2 * np.pi * (120.0 * tt - 0.75 * tt**2 + sign * fc * y0 * tt)
    np.testing.assert_allclose(ds.truth_phase, phase, atol=1e-6)


def test_noise_power_matches_cn0():
    """E|n|^2 = A^2 fs / (C/N0); I and Q each carry half."""
    a, cn0 = 2.0, 40.0
    t = np.array([0.0, 200.0])
    ds = rx.iq_samples(t, [0.0, 0.0], FS, rng=np.random.default_rng(3), cn0_dbhz=cn0,
                       amplitude=a, silent_periods=[(0.0, 200.0)], keep_truth=False)
    sigma2 = a**2 * FS / 10 ** (cn0 / 10)
    n = ds.sizes["time"]
    # |n|^2 is exponential: relative standard error 1/sqrt(n) = 0.22 %; 5 sigma = 1.2 %.
    assert np.mean(ds.i**2 + ds.q**2) == pytest.approx(sigma2, rel=5 / np.sqrt(n))
    # Each of I and Q: chi^2 with n dof, relative error sqrt(2/n); 5 sigma.
    assert np.var(ds.i) == pytest.approx(sigma2 / 2, rel=5 * np.sqrt(2 / n))
    assert np.var(ds.q) == pytest.approx(sigma2 / 2, rel=5 * np.sqrt(2 / n))
    assert ds.attrs["noise_variance"] == pytest.approx(sigma2)


def test_defocusing_gain_scales_amplitude():
    t, f = _linear()
    ds = rx.iq_samples(t, f, FS, amplitude=3.0, power_gain=([0.0, 10.0], [1.0, 0.25]))
    tt = ds.time.values
    expected = 3.0 * np.sqrt(1.0 - 0.75 * tt / 10.0)
    np.testing.assert_allclose(np.hypot(ds.i, ds.q), expected, rtol=1e-12)


@pytest.mark.parametrize("mode", ["nan", "drop"])
def test_fault_flags_land_on_the_right_samples(mode):
    t, f = _linear()
    ds = rx.iq_samples(t, f, FS, silent_periods=[(1.0, 1.5)], gaps=[(2.0, 2.25)],
                       gap_mode=mode)
    k = np.rint(ds.time.values * FS).astype(int)  # sample index on the 1 kHz grid
    silent = (k >= 1000) & (k < 1500)
    gap = (k >= 2000) & (k < 2250)
    assert np.array_equal(ds.truth_fault_flag.values & rx.SILENT > 0, silent)
    assert np.array_equal(ds.truth_fault_flag.values & rx.GAP > 0, gap)
    assert np.array_equal(ds.quality_flag.values > 0, gap)  # the receiver only knows gaps
    assert np.all(np.hypot(ds.i, ds.q)[silent] == 0.0)
    if mode == "nan":
        assert ds.sizes["time"] == 10000
        assert np.array_equal(np.isnan(ds.i.values), gap)
    else:
        assert ds.sizes["time"] == 10000 - 250 and not gap.any()
        assert not np.isnan(ds.i.values).any()


def test_spurious_line_at_its_frequency_and_power():
    t = np.array([0.0, 4.0])
    ds = rx.iq_samples(t, [100.0, 100.0], FS, rng=np.random.default_rng(0),
                       spur_hz=-250.0, spur_dbc=-20.0)
    z = (ds.i + 1j * ds.q).values
    spec = np.abs(np.fft.fft(z)) ** 2 / z.size**2
    freqs = np.fft.fftfreq(z.size, 1 / FS)
    top2 = np.argsort(spec)[-2:]
    assert sorted(freqs[top2]) == [-250.0, 100.0]  # both lines sit on exact bins (4 s)
    ratio_db = 10 * np.log10(spec[freqs == -250.0][0] / spec[freqs == 100.0][0])
    assert ratio_db == pytest.approx(-20.0, abs=1e-9)


def test_seeded():
    t, f = _linear()
    kw = dict(cn0_dbhz=40.0, keep_truth=False)
    a = rx.iq_samples(t, f, FS, rng=np.random.default_rng(5), **kw)
    b = rx.iq_samples(t, f, FS, rng=np.random.default_rng(5), **kw)
    np.testing.assert_array_equal(a.i, b.i)


def _one_sentence(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.endswith(".") and msg.count(". ") == 0, msg


def test_bad_inputs_one_sentence():
    t, f = _linear(f0=600.0, rate=0.0)
    with pytest.raises(RoharnessError, match="sample rate") as e:
        rx.iq_samples(t, f, FS)
    _one_sentence(e)
    with pytest.raises(RoharnessError) as e:
        rx.iq_samples([0.0, 0.0], [1.0, 1.0], FS)
    _one_sentence(e)
    with pytest.raises(RoharnessError, match="rng") as e:
        rx.iq_samples(*_linear(), FS, cn0_dbhz=40.0)
    _one_sentence(e)
    with pytest.raises(RoharnessError, match="oscillator") as e:
        rx.iq_samples(*_linear(), FS, rx_oscillator=oscillator(5.0, 0.1, h={}))
    _one_sentence(e)
    with pytest.raises(ValueError, match="known"):
        rx.iq_samples(*_linear(), FS, gap_mode="zero")
