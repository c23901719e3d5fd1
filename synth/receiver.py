r"""Open-loop receiver: complex baseband I/Q samples of the carrier (data level 1).

The received carrier, mixed to baseband with the receiver's nominal local oscillator, is

.. math::

    z(t_k) = A \sqrt{g(t_k)}\, c(t_k)\, e^{i\phi(t_k)} + A_s e^{i(2\pi f_s t_k + \psi_s)}
             + n_k,\qquad
    \phi(t) = 2\pi \int_{t_0}^{t} f_D(t')\,dt' + 2\pi f_c\,[x_{tx}(t) - x_{rx}(t)],

with :math:`f_D` the Doppler (sky minus nominal) frequency [Hz] given on a coarse grid and
interpolated by a cubic spline whose antiderivative is integrated exactly; :math:`x_{tx}`,
:math:`x_{rx}` the time errors [s] of the transmitter and receiver oscillators
(:mod:`synth.oscillator`; linear interpolation of x, i.e. the frequency is the interval
average between oscillator samples), so the instantaneous baseband frequency is
:math:`f_D + f_c (y_{tx} - y_{rx})`: a fast transmitter raises it, a fast receiver
local oscillator lowers it. The transmitter's emission delay is not modelled (shift the
oscillator's time coordinate if needed). :math:`g` is an optional power gain (defocusing),
:math:`c \in \{0, 1\}` switches the carrier off in silent periods, and the last two terms
are an optional spurious line (a receiver artefact at fixed baseband frequency
:math:`f_s`, power :math:`A_s^2/A^2` [dBc]) and thermal noise.

Thermal noise is circular complex Gaussian with, for a carrier-to-noise density
:math:`C/N_0` [dB-Hz] referred to the unit-gain carrier power :math:`A^2`,

.. math::

    \sigma^2 = E|n_k|^2 = A^2 f_{\rm s} / 10^{(C/N_0)/10},

i.e. :math:`\sigma^2/2` in each of I and Q and a per-sample SNR of
:math:`(C/N_0)/f_{\rm s}` (e.g. Proakis & Salehi, Digital Communications, 5th ed., 2008;
the standard complex-baseband noise model).

Data gaps (the recorder lost samples) either become NaN with ``quality_flag`` bit 1 set
(``gap_mode="nan"``) or are removed, leaving the remaining time stamps
(``gap_mode="drop"``). Truth flags (gap, silent, spur) are kept in ``truth_fault_flag``
for the judge; retrieval must only read ``time``, ``i``, ``q`` and ``quality_flag``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.interpolate import CubicSpline

from retrieval.constants import MELACOM_UHF_HZ
from retrieval.errors import RoharnessError

#: Bits of ``truth_fault_flag`` (``quality_flag`` only ever carries GAP).
GAP, SILENT, SPUR = 1, 2, 4
GAP_MODES = ("nan", "drop")
_CHUNK = 1 << 18  # samples per generation chunk (fixed: the noise draws depend on it)


def _intervals(periods, name):
    out = []
    for p in periods or ():
        t0, t1 = (float(v) for v in p)
        if not t1 > t0:
            raise RoharnessError(f"{name} interval {p} must have end > start (in s).")
        out.append((t0, t1))
    return out


def _in_any(t, intervals):
    mask = np.zeros(t.shape, dtype=bool)
    for t0, t1 in intervals:
        mask |= (t >= t0) & (t < t1)
    return mask


def _osc_phase(ds, t, name):
    if ds is None:
        return None
    tt = np.asarray(ds["time"].values, dtype=float)
    if t[0] < tt[0] or t[-1] > tt[-1]:
        raise RoharnessError(
            f"the {name} oscillator covers {tt[0]}-{tt[-1]} s but the I/Q span is "
            f"{t[0]}-{t[-1]} s; simulate the oscillator over the whole span."
        )
    return tt, np.asarray(ds["phase_error"].values, dtype=float)


def _sample_times(doppler_time_s, doppler_hz, sample_rate_hz, t_start_s, t_stop_s):
    """Checked Doppler series and the sample times of :func:`iq_samples`.

    Returns
    -------
    td, fd : ndarray
        Doppler series times [s] and frequencies [Hz].
    fs, t0, t1 : float
        Sample rate [Hz] and span [s].
    t : ndarray
        Sample times t0 + k/fs < t1 [s].
    """
    td = np.asarray(doppler_time_s, dtype=float)
    fd = np.asarray(doppler_hz, dtype=float)
    if td.ndim != 1 or td.shape != fd.shape or td.size < 2 or np.any(np.diff(td) <= 0):
        raise RoharnessError("the Doppler series needs >= 2 strictly increasing times and "
                             "one frequency per time.")
    if not np.all(np.isfinite(fd)):
        raise RoharnessError("the Doppler series contains NaN or infinite frequencies.")
    fs = float(sample_rate_hz)
    if not fs > 0:
        raise RoharnessError(f"sample rate must be positive, got {sample_rate_hz} Hz.")
    t0 = td[0] if t_start_s is None else float(t_start_s)
    t1 = td[-1] if t_stop_s is None else float(t_stop_s)
    if t0 < td[0] or t1 > td[-1] or t1 <= t0:
        raise RoharnessError(f"I/Q span {t0}-{t1} s must lie inside the Doppler series "
                             f"{td[0]}-{td[-1]} s.")
    n = int(np.ceil((t1 - t0) * fs - 1e-9))
    t = t0 + np.arange(n) / fs
    return td, fd, fs, t0, t1, t


def _check_aliasing(spline, td, t0, t1, osc, carrier_hz, spur_hz, fs):
    """Raise if the highest baseband frequency (spline + oscillators + spur) reaches Nyquist."""
    tcheck = np.linspace(t0, t1, 20 * td.size + 1)
    fmax = np.abs(spline(tcheck))
    for _sgn, (tt, xx) in osc:
        yy = np.diff(xx) / np.diff(tt)
        fmax = fmax + carrier_hz * np.max(np.abs(yy))
    fmax = float(np.max(fmax))
    if spur_hz is not None:
        fmax = max(fmax, abs(float(spur_hz)))
    if fmax >= fs / 2:
        raise RoharnessError(
            f"sample rate {fs:g} Hz is too low for baseband frequencies up to {fmax:.1f} Hz "
            f"(needs > {2 * fmax:.1f} Hz to avoid aliasing)."
        )


def _power_gain(power_gain):
    """Checked (time_s, gain) arrays of the defocusing power gain, or None."""
    if power_gain is None:
        return None
    g_t, g_v = (np.asarray(v, dtype=float) for v in power_gain)
    if np.any(g_v < 0) or not np.all(np.isfinite(g_v)):
        raise RoharnessError("the power gain series must be finite and >= 0.")
    return g_t, g_v


def _carrier_chunk(tc, cycles, cycles0, spline, osc, carrier_hz, amplitude, gain, silent):
    """Noise-free carrier of one chunk of sample times: phase [rad], frequency [Hz] and
    amplitude (oscillator errors, power gain and silent periods applied)."""
    phase = 2.0 * np.pi * (cycles(tc) - cycles0)
    freq = spline(tc)
    for sgn, (tt, xx) in osc:
        phase += sgn * 2.0 * np.pi * carrier_hz * np.interp(tc, tt, xx)
        idx = np.clip(np.searchsorted(tt, tc, side="right") - 1, 0, tt.size - 2)
        freq = freq + sgn * carrier_hz * (xx[idx + 1] - xx[idx]) / (tt[idx + 1] - tt[idx])
    amp = np.full(tc.shape, float(amplitude))
    if gain is not None:
        g_t, g_v = gain
        amp *= np.sqrt(np.interp(tc, g_t, g_v))
    amp[_in_any(tc, silent)] = 0.0
    return phase, freq, amp


def _synthesize(t, t0, carrier, spur_hz, spur_amp, spur_phase0, sigma2, rng, keep_truth,
                dtype):
    """I and Q of all samples, in chunks of :data:`_CHUNK` (the noise draws depend on it).

    ``carrier`` is the argument tuple of :func:`_carrier_chunk` after the chunk's times.
    Returns i, q and the truth arrays (dict phase/freq/amp, or None).
    """
    n = t.size
    i_out = np.empty(n, dtype=dtype)
    q_out = np.empty(n, dtype=dtype)
    truth = {k: np.empty(n) for k in ("phase", "freq", "amp")} if keep_truth else None
    for s in range(0, n, _CHUNK):
        tc = t[s:s + _CHUNK]
        phase, freq, amp = _carrier_chunk(tc, *carrier)
        z = amp * np.exp(1j * phase)
        if spur_hz is not None:
            z += spur_amp * np.exp(1j * (2.0 * np.pi * spur_hz * (tc - t0) + spur_phase0))
        if sigma2 > 0:
            noise = rng.standard_normal((tc.size, 2))
            noise *= np.sqrt(sigma2 / 2.0)
            z += noise[:, 0] + 1j * noise[:, 1]
        i_out[s:s + _CHUNK] = z.real
        q_out[s:s + _CHUNK] = z.imag
        if keep_truth:
            truth["phase"][s:s + _CHUNK] = phase
            truth["freq"][s:s + _CHUNK] = freq
            truth["amp"][s:s + _CHUNK] = amp
    return i_out, q_out, truth


def _iq_dataset(t, i_out, q_out, truth, gap_iv, silent, spur, gap_mode, attrs):
    """The level-1 dataset: gaps set to NaN (or dropped), quality and truth fault flags
    (``spur``: a spurious line was injected)."""
    is_gap = _in_any(t, gap_iv)
    fault = (GAP * is_gap + SILENT * _in_any(t, silent)).astype(np.uint8)
    if spur:
        fault |= SPUR
    quality = (GAP * is_gap).astype(np.uint8)
    i_out[is_gap] = np.nan
    q_out[is_gap] = np.nan
    keep = ~is_gap if gap_mode == "drop" else slice(None)

    flag_attrs = {"flag_masks": np.array([GAP, SILENT, SPUR], dtype=np.uint8),
                  "flag_meanings": "data_gap carrier_silent spurious_line"}
    data = {
        "i": ("time", i_out[keep], {"units": "1", "long_name": "in-phase baseband sample"}),
        "q": ("time", q_out[keep], {"units": "1", "long_name": "quadrature baseband sample"}),
        "quality_flag": ("time", quality[keep], {
            "long_name": "receiver quality flag", "flag_masks": np.array([GAP], np.uint8),
            "flag_meanings": "data_gap"}),
        "truth_fault_flag": ("time", fault[keep], {"long_name": "TRUTH: injected faults",
                                                  **flag_attrs}),
    }
    if truth is not None:
        data["truth_phase"] = ("time", truth["phase"][keep], {
            "units": "rad", "long_name": "TRUTH: carrier phase (noise-free)"})
        data["truth_frequency_hz"] = ("time", truth["freq"][keep], {
            "units": "Hz", "long_name": "TRUTH: instantaneous baseband carrier frequency"})
        data["truth_amplitude"] = ("time", truth["amp"][keep], {
            "units": "1", "long_name": "TRUTH: carrier amplitude"})
    return xr.Dataset(
        data,
        coords={"time": ("time", t[keep], {"units": "s", "long_name": "time of sample"})},
        attrs=attrs,
    )


def iq_samples(doppler_time_s, doppler_hz, sample_rate_hz: float, *,
               rng: np.random.Generator | None = None,
               carrier_hz: float = MELACOM_UHF_HZ, cn0_dbhz: float | None = None,
               amplitude: float = 1.0, power_gain=None,
               tx_oscillator: xr.Dataset | None = None,
               rx_oscillator: xr.Dataset | None = None,
               t_start_s: float | None = None, t_stop_s: float | None = None,
               silent_periods=(), gaps=(), gap_mode: str = "nan",
               spur_hz: float | None = None, spur_dbc: float = -10.0,
               keep_truth: bool = True, dtype=np.float64) -> xr.Dataset:
    r"""Simulate complex baseband I/Q samples of a drifting, noisy carrier.

    Parameters
    ----------
    doppler_time_s, doppler_hz : array_like
        Coarse time series of the baseband (sky minus nominal) carrier frequency [s], [Hz],
        strictly increasing times; interpolated with a cubic spline.
    sample_rate_hz : float
        I/Q sample rate [Hz] (typically 1-10 kHz).
    rng : numpy.random.Generator
        Required when there is noise or a spur (random spur phase).
    carrier_hz : float
        Nominal carrier frequency [Hz] scaling the oscillator errors (default MELACOM UHF).
    cn0_dbhz : float or None
        Carrier-to-noise density of the unit-gain carrier [dB-Hz]; None = no noise.
    amplitude : float
        Carrier amplitude A (I/Q units).
    power_gain : (time_s, gain) or None
        Defocusing power gain series, linearly interpolated (amplitude scales as sqrt).
    tx_oscillator, rx_oscillator : xarray.Dataset or None
        Outputs of :func:`synth.oscillator.oscillator` on the same time base.
    t_start_s, t_stop_s : float or None
        Span of the samples (default: span of ``doppler_time_s``); samples at
        :math:`t_k = t_{start} + k/f_s`, :math:`t_k < t_{stop}`.
    silent_periods, gaps : sequence of (start_s, stop_s)
        Carrier-off periods and lost-data periods (half-open intervals).
    gap_mode : {"nan", "drop"}
        Lost samples become NaN (flagged) or are removed.
    spur_hz, spur_dbc : float
        Spurious line at a fixed baseband frequency [Hz] and power relative to A^2 [dBc].
    keep_truth : bool
        Keep the per-sample truth variables (phase, frequency, amplitude).
    dtype : numpy dtype
        Float type of ``i`` and ``q``.

    Returns
    -------
    xarray.Dataset
        ``i``, ``q`` [same units as A] and ``quality_flag`` on ``time`` [s]; truth variables
        ``truth_phase`` [rad], ``truth_frequency_hz``, ``truth_amplitude``,
        ``truth_fault_flag`` (bits 1 gap, 2 silent, 4 spur). attrs ``sample_rate_hz``,
        ``carrier_hz``, ``cn0_dbhz``, ``noise_variance`` (:math:`\sigma^2`).

    Raises
    ------
    RoharnessError
        If the baseband frequency reaches the Nyquist frequency (aliasing), inputs are
        inconsistent, or the oscillators do not cover the span.
    """
    if gap_mode not in GAP_MODES:
        raise ValueError(f"unknown gap_mode {gap_mode!r}; known: {list(GAP_MODES)}")
    td, fd, fs, t0, t1, t = _sample_times(doppler_time_s, doppler_hz, sample_rate_hz,
                                          t_start_s, t_stop_s)
    spline = CubicSpline(td, fd, bc_type="not-a-knot")
    cycles = spline.antiderivative()
    cycles0 = float(cycles(t0))
    osc = [(sgn, _osc_phase(ds, t, nm)) for sgn, ds, nm in
           ((1.0, tx_oscillator, "transmitter"), (-1.0, rx_oscillator, "receiver"))]
    osc = [(s, o) for s, o in osc if o is not None]
    _check_aliasing(spline, td, t0, t1, osc, carrier_hz, spur_hz, fs)

    silent = _intervals(silent_periods, "silent period")
    gap_iv = _intervals(gaps, "gap")
    need_rng = cn0_dbhz is not None or spur_hz is not None
    if need_rng and not isinstance(rng, np.random.Generator):
        raise RoharnessError("I/Q noise and spurs need an explicit rng "
                             "(numpy.random.default_rng(seed)).")
    sigma2 = 0.0 if cn0_dbhz is None else amplitude**2 * fs / 10.0 ** (float(cn0_dbhz) / 10.0)
    spur_amp = 0.0 if spur_hz is None else amplitude * 10.0 ** (float(spur_dbc) / 20.0)
    spur_phase0 = float(rng.uniform(0.0, 2.0 * np.pi)) if spur_hz is not None else 0.0
    gain = _power_gain(power_gain)

    carrier = (cycles, cycles0, spline, osc, carrier_hz, amplitude, gain, silent)
    i_out, q_out, truth = _synthesize(t, t0, carrier, spur_hz, spur_amp, spur_phase0, sigma2,
                                      rng, keep_truth, dtype)
    attrs = {"sample_rate_hz": fs, "carrier_hz": float(carrier_hz),
             "cn0_dbhz": float("nan") if cn0_dbhz is None else float(cn0_dbhz),
             "noise_variance": sigma2, "amplitude": float(amplitude),
             "spur_hz": float("nan") if spur_hz is None else float(spur_hz),
             "spur_dbc": float(spur_dbc), "gap_mode": gap_mode,
             "data_level": 1}
    return _iq_dataset(t, i_out, q_out, truth, gap_iv, silent, spur_hz is not None, gap_mode,
                       attrs)
