r"""Carrier extraction: I/Q samples (data level 1) -> carrier frequency series (level 2).

The record is cut into windows of ``window_s``; in each window the carrier is modelled as a
constant-frequency tone in white circular Gaussian noise,
:math:`z_n = a\,e^{i(2\pi f t_n + \varphi)} + w_n`, and its frequency is estimated.

Methods (``method=``)
---------------------
``"ml"`` (default)
    Maximum likelihood (Rife & Boorstyn [1]): the frequency that maximises the periodogram
    :math:`P(f) = |X(f)|^2`, :math:`X(f) = \sum_n z_n e^{-i 2\pi f t_n}` (rectangular
    window). A zero-padded FFT finds the peak bin, a three-point parabolic fit refines it,
    and Newton steps on the exact :math:`P(f)`,
    :math:`f \leftarrow f - P'/P''` with :math:`P' = 2\,\mathrm{Re}(X^* X')`,
    :math:`P'' = 2(|X'|^2 + \mathrm{Re}(X^* X''))`, converge to the maximum. Above the
    threshold SNR it attains the Cramer-Rao bound.
``"fft"``
    Zero-padded FFT of the Hann-windowed data plus a parabolic fit to the log-magnitude
    around the peak (Grandke's / "Gaussian" interpolation [3]); faster and robust to
    leakage from strong lines, but not efficient (variance above the bound).

Uncertainty
-----------
The reported one-sigma frequency uncertainty is the Cramer-Rao bound for a tone of unknown
amplitude, phase and frequency [1, 2] at the *measured* SNR per sample
:math:`\hat\rho = \hat a^2 / \hat\sigma^2` over the valid samples of the window,

.. math::

    \sigma_f^2 = \frac{1}{8 \pi^2 \hat\rho \sum_n (t_n - \bar t)^2}
    \;\xrightarrow{\text{no gaps}}\; \frac{6 f_s^2}{(2\pi)^2 \hat\rho N (N^2 - 1)},

with :math:`\hat a = |X(\hat f)| / N` and
:math:`\hat\sigma^2 = (\sum|z_n|^2 - |X(\hat f)|^2/N) / (N - 1)` (residual power after the
tone fit). The estimate refers to the centroid :math:`\bar t` of the window's valid samples,
the ``time`` coordinate of the output.

Detection, gaps, spurs
----------------------
* A window has a carrier if :math:`T = |X(\hat f)|^2 / (N\hat\sigma^2)` exceeds
  :math:`\eta = \ln(K / P_{fa})` with K the number of resolution cells searched (noise
  alone makes :math:`P(f)/(N\sigma^2)` unit-exponential per cell). Otherwise the window is
  flagged ``no_carrier`` and its frequency is NaN (silent periods are never interpolated).
* Missing samples (NaN with ``quality_flag`` bit 1, or time stamps absent from the uniform
  grid) are zeros in the sums; such windows are flagged ``gap``; below ``min_fill`` valid
  samples the frequency is NaN.
* After the carrier is fitted and subtracted, the Hann-windowed periodogram of the residual
  outside +-2 resolution cells of the carrier is searched for a second line with the same
  test (:math:`K = N`); a hit sets the ``spur`` flag and ``spur_frequency_hz`` (at the
  native resolution 1/T).

With ``predicted=(time_s, freq_hz)`` (the level-3 prediction) the samples are first
counter-rotated by :math:`2\pi\int f_{\rm pred}\,dt` (cubic spline, exact antiderivative),
the residual tone is estimated within +-``search_halfwidth_hz`` and the prediction at the
window centroid is added back: the usual open-loop processing, which also removes most of
the frequency change within a window. Without a prediction the carrier should sweep less
than about one resolution cell per window (:math:`|\dot f|\,T^2 \lesssim 1`); a faster
sweep smears the peak and the estimate may jump to a neighbouring lobe. For a frequency
with curvature :math:`\ddot f` the estimate (the least-squares phase slope) differs from
the instantaneous frequency at the window centre by about :math:`\ddot f T^2/40`. The
``fft`` method reports the same CRLB-based sigma although its variance is larger.

References
----------
.. [1] Rife, D. C. and Boorstyn, R. R. (1974), Single-tone parameter estimation from
   discrete-time observations, IEEE Trans. Inf. Theory 20(5), 591-598,
   doi:10.1109/TIT.1974.1055282.
.. [2] Kay, S. M. (1993), Fundamentals of Statistical Signal Processing: Estimation Theory,
   Prentice Hall, section 3.11 (CRLB for sinusoidal parameter estimation).
.. [3] Gasior, M. and Gonzalez, J. L. (2004), Improving FFT frequency measurement
   resolution by parabolic and Gaussian spectrum interpolation, AIP Conf. Proc. 732, 276,
   doi:10.1063/1.1831158.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view
from scipy.interpolate import CubicSpline

from retrieval.errors import RoharnessError

#: Bits of the output ``flag``.
FLAG_GAP, FLAG_NO_CARRIER, FLAG_SPUR = 1, 2, 4
METHODS = ("ml", "fft")


def _uniform_grid(time_s, fs):
    """Indices of the samples on the uniform grid t0 + k/fs (or a one-sentence error)."""
    k_float = (time_s - time_s[0]) * fs
    k = np.rint(k_float).astype(np.int64)
    bad = np.abs(k_float - k) > 0.01
    if np.any(bad) or np.any(np.diff(k) <= 0):
        where = int(np.argmax(bad)) if np.any(bad) else int(np.argmax(np.diff(k) <= 0)) + 1
        raise RoharnessError(
            f"I/Q time stamps are not on a uniform {fs:g} Hz grid (sample {where}, "
            f"t = {time_s[where]:.6f} s); expected increasing times k/fs apart."
        )
    return k


def _sample_rate(ds, time_s):
    fs = ds.attrs.get("sample_rate_hz")
    if fs is None:
        if time_s.size < 2:
            raise RoharnessError("cannot infer the sample rate from fewer than 2 samples.")
        fs = 1.0 / float(np.median(np.diff(time_s)))
    return float(fs)


def _newton_refine(zw, tw, f0, step_limit, iterations=4):
    """Maximise |sum z e^{-2 pi i f t}|^2 per row by safeguarded Newton steps."""
    f = f0.copy()
    for _ in range(iterations):
        e = np.exp(-2j * np.pi * f[:, None] * tw)
        ze = zw * e
        x0 = ze.sum(axis=1)
        x1 = (ze * (-2j * np.pi * tw)).sum(axis=1)
        x2 = (ze * (-(2 * np.pi * tw) ** 2)).sum(axis=1)
        d1 = 2 * np.real(np.conj(x0) * x1)
        d2 = 2 * (np.abs(x1) ** 2 + np.real(np.conj(x0) * x2))
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(d2 < 0, -d1 / d2, 0.0)
        f = f + np.clip(np.nan_to_num(step), -step_limit, step_limit)
    return f


def _windows(zw, vw, tw, fs, method, band, zero_pad, eta, eta_spur, detect_spur):
    """Estimate the tone in each row of zw (samples, zeros where vw is False)."""
    nwin = zw.shape[1]
    nvalid = vw.sum(axis=1)
    nfft = zero_pad * nwin
    if method == "fft":
        spec = scipy.fft.fft(zw * np.hanning(nwin), nfft, axis=1)
    else:
        spec = scipy.fft.fft(zw, nfft, axis=1)
    power = np.abs(spec) ** 2
    del spec
    fbin = np.fft.fftfreq(nfft, 1.0 / fs)
    inband = (fbin >= band[0]) & (fbin <= band[1])
    kpk = np.argmax(np.where(inband[None, :], power, -1.0), axis=1)
    rows = np.arange(zw.shape[0])
    pm, p0, pp = (power[rows, (kpk + d) % nfft] for d in (-1, 0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "fft":  # Gaussian interpolation: parabola through log magnitudes
            lm, l0, lp = (np.log(np.maximum(v, 1e-300)) for v in (pm, p0, pp))
            delta = 0.5 * (lm - lp) / (lm - 2 * l0 + lp)
        else:
            delta = 0.5 * (pm - pp) / (pm - 2 * p0 + pp)
    delta = np.clip(np.nan_to_num(delta), -0.5, 0.5)
    df_bin = fs / nfft
    f_hat = fbin[kpk] + delta * df_bin
    if method == "ml":
        f_hat = _newton_refine(zw, tw, f_hat, step_limit=df_bin)

    # Tone fit at f_hat over the valid samples: amplitude, noise, SNR, detection, CRLB.
    x0 = (zw * np.exp(-2j * np.pi * f_hat[:, None] * tw)).sum(axis=1)
    nv = np.maximum(nvalid, 1)
    energy = (np.abs(zw) ** 2).sum(axis=1)
    amp = np.abs(x0) / nv
    noise_var = np.maximum(energy - np.abs(x0) ** 2 / nv, 1e-300) / np.maximum(nv - 1, 1)
    snr = amp**2 / noise_var
    detected = (np.abs(x0) ** 2 / (nv * noise_var) > eta) & (nvalid > 1)
    tc_rel = (vw * tw).sum(axis=1) / nv
    spread = (vw * (tw - tc_rel[:, None]) ** 2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_f = 1.0 / np.sqrt(8.0 * np.pi**2 * snr * spread)

    spur_f = np.full(zw.shape[0], np.nan)
    hit = np.zeros(zw.shape[0], dtype=bool)
    if detect_spur:
        # Periodogram of the residual after removing the fitted carrier (Hann taper, so that
        # leakage of a slightly mismatched carrier stays low), outside +-2 resolution cells
        # of the carrier; normalised by the noise power gain sigma^2 sum(w^2) so that noise
        # alone is unit-exponential per cell.
        taper = np.hanning(nwin)
        fit = (x0 / nv)[:, None] * np.exp(2j * np.pi * f_hat[:, None] * tw) * vw
        rpow = np.abs(scipy.fft.fft((zw - fit) * taper, axis=1)) ** 2  # native cells
        kc = np.rint(f_hat * nwin / fs).astype(np.int64) % nwin
        dist = np.abs((np.arange(nwin)[None, :] - kc[:, None] + nwin // 2) % nwin - nwin // 2)
        other = np.where(dist > 2, rpow, -1.0)
        # Floor: lines weaker than -100 dBc are not reported (noise-free input).
        norm = np.maximum(noise_var, 1e-10 * amp**2) * (vw * taper**2).sum(axis=1)
        k2 = np.argmax(other, axis=1)
        hit = (other[rows, k2] / norm > eta_spur) & (nvalid > 1)
        spur_f = np.where(hit, np.fft.fftfreq(nwin, 1.0 / fs)[k2], np.nan)
    return f_hat, amp, snr, detected, tc_rel, sigma_f, nvalid, spur_f, hit


def _read_iq(iq):
    """Time stamps [s], sample rate [Hz], I and Q and the mask of valid samples of an I/Q
    Dataset (:func:`extract_carrier`); NaN samples must be flagged as missing."""
    for name in ("i", "q"):
        if name not in iq:
            raise RoharnessError(f"the I/Q dataset has no variable {name!r}; expected i and q "
                                 f"on a time coordinate.")
    time_s = np.asarray(iq["time"].values, dtype=float)
    fs = _sample_rate(iq, time_s)
    i_arr = np.asarray(iq["i"].values, dtype=float)
    q_arr = np.asarray(iq["q"].values, dtype=float)
    missing = np.zeros(time_s.size, dtype=bool)
    if "quality_flag" in iq:
        missing = (np.asarray(iq["quality_flag"].values).astype(np.int64) & FLAG_GAP) > 0
    nan = ~(np.isfinite(i_arr) & np.isfinite(q_arr))
    if np.any(nan & ~missing):
        j = int(np.argmax(nan & ~missing))
        raise RoharnessError(
            f"I/Q sample {j} (t = {time_s[j]:.6f} s) is NaN but not flagged as missing; "
            f"mark lost samples with quality_flag bit 1 or drop them."
        )
    valid_in = ~(nan | missing)
    return time_s, fs, i_arr, q_arr, valid_in


def _search_band(time_s, fs, predicted, search_halfwidth_hz, freq_range_hz):
    """The predicted-frequency spline (None without ``predicted``) and the search band
    [Hz] of :func:`extract_carrier`; raises when the expected carrier frequencies
    would alias at the sample rate ``fs``."""
    nyq = fs / 2.0
    pred_spline = None
    if predicted is not None:
        pt, pf = (np.asarray(v, dtype=float) for v in predicted)
        pred_spline = CubicSpline(pt, pf)
        tt = np.linspace(time_s[0], time_s[-1], 20 * pt.size + 1)
        pmin, pmax = float(np.min(pred_spline(tt))), float(np.max(pred_spline(tt)))
        if search_halfwidth_hz is None:  # default: 90 % of the room left below Nyquist
            half = max(0.9 * (nyq - max(abs(pmin), abs(pmax))), 0.0)
        else:
            half = float(search_halfwidth_hz)
        lo, hi = pmin - half, pmax + half
        band = (-half, half)
    elif freq_range_hz is not None:
        lo, hi = (float(v) for v in freq_range_hz)
        band = (lo, hi)
    else:
        lo, hi = -nyq, nyq
        band = (-nyq, nyq)
    if lo < -nyq or hi > nyq:
        raise RoharnessError(
            f"sample rate {fs:g} Hz is too low for the expected carrier frequencies "
            f"{lo:.1f} to {hi:.1f} Hz (Nyquist +-{nyq:.1f} Hz): the carrier would alias."
        )
    return pred_spline, band


def _on_uniform_grid(time_s, fs, i_arr, q_arr, valid_in, pred_spline):
    """The valid samples on the uniform grid of rate ``fs`` (zeros where missing),
    counter-rotated by the predicted frequency if any: ``(z, valid, tgrid)``."""
    k = _uniform_grid(time_s, fs)
    n_grid = int(k[-1]) + 1
    t0 = time_s[0]
    z = np.zeros(n_grid, dtype=complex)
    valid = np.zeros(n_grid, dtype=bool)
    z[k[valid_in]] = i_arr[valid_in] + 1j * q_arr[valid_in]
    valid[k[valid_in]] = True
    tgrid = t0 + np.arange(n_grid) / fs
    if pred_spline is not None:
        cyc = pred_spline.antiderivative()
        z *= np.exp(-2j * np.pi * (cyc(tgrid) - cyc(t0)))
    return z, valid, tgrid


def _window_lengths(window_s, step_s, fs, n_grid):
    """Window length and step in samples, checked against the record of ``n_grid`` samples."""
    nwin = int(round(window_s * fs))
    nstep = nwin if step_s is None else int(round(step_s * fs))
    if nwin < 8 or nstep < 1:
        raise RoharnessError(f"window {window_s} s / step {step_s} s too short at {fs:g} Hz.")
    if n_grid < nwin:
        raise RoharnessError(
            f"the record ({n_grid / fs:.3f} s) is shorter than one window ({window_s} s).")
    return nwin, nstep


def _window_flags(nvalid, nwin, detected, hit):
    """Per-window flag bits: gap, no carrier, spurious line."""
    flag = np.zeros(nvalid.size, dtype=np.uint8)
    flag[nvalid < nwin] |= FLAG_GAP
    flag[~detected] |= FLAG_NO_CARRIER
    flag[hit] |= FLAG_SPUR
    return flag


def _carrier_dataset(usable, freq, sigma_f, amp, snr, nvalid, flag, spur_f, window_start,
                     t_win, *, method, fs, nwin, nstep, pfa, eta):
    """The level-2 carrier Dataset returned by :func:`extract_carrier`."""
    cn0 = 10.0 * np.log10(np.where(usable, snr * fs, np.nan))
    out = xr.Dataset(
        {
            "frequency_hz": ("time", freq, {
                "units": "Hz", "long_name": "baseband carrier frequency (level 2)"}),
            "frequency_sigma_hz": ("time", np.where(usable, sigma_f, np.nan), {
                "units": "Hz",
                "long_name": "1-sigma frequency uncertainty (CRLB at measured SNR)"}),
            "amplitude": ("time", np.where(usable, amp, np.nan), {
                "units": "1", "long_name": "fitted carrier amplitude"}),
            "cn0_dbhz": ("time", cn0, {"units": "dB-Hz",
                                       "long_name": "measured carrier-to-noise density"}),
            "n_samples": ("time", nvalid.astype(np.int64), {
                "units": "1", "long_name": "valid samples in window"}),
            "flag": ("time", flag, {
                "long_name": "carrier extraction flag",
                "flag_masks": np.array([FLAG_GAP, FLAG_NO_CARRIER, FLAG_SPUR], dtype=np.uint8),
                "flag_meanings": "gap no_carrier spurious_line"}),
            "spur_frequency_hz": ("time", spur_f, {
                "units": "Hz", "long_name": "frequency of a detected second line"}),
            "window_start_s": ("time", window_start, {
                "units": "s", "long_name": "start time of window"}),
        },
        coords={"time": ("time", t_win, {
            "units": "s", "long_name": "centroid time of valid samples in window"})},
        attrs={"method": method, "window_s": nwin / fs, "step_s": nstep / fs,
               "sample_rate_hz": fs, "pfa": pfa, "detection_threshold": float(eta),
               "data_level": 2},
    )
    return out


def extract_carrier(iq: xr.Dataset, window_s: float = 1.0, step_s: float | None = None, *,
                    method: str = "ml", predicted: tuple[np.ndarray, np.ndarray] | None = None,
                    search_halfwidth_hz: float | None = None,
                    freq_range_hz: tuple[float, float] | None = None, pfa: float = 1e-6,
                    min_fill: float = 0.5,
                    zero_pad: int = 4, detect_spur: bool = True) -> xr.Dataset:
    r"""Estimate the carrier frequency per window from complex baseband samples.

    Parameters
    ----------
    iq : xarray.Dataset
        ``i``, ``q`` on ``time`` [s]; optional ``quality_flag`` (bit 1 = missing sample) and
        attribute ``sample_rate_hz`` (else inferred from the median time step). Missing
        samples may be NaN (flagged) or absent from ``time``.
    window_s, step_s : float
        Window length and spacing [s] (default step = window: contiguous windows).
    method : {"ml", "fft"}
        Estimator, see the module docstring.
    predicted : (time_s, freq_hz) or None
        Predicted baseband carrier frequency (level 3) used to counter-rotate the samples.
    search_halfwidth_hz : float or None
        With ``predicted``: search +-this around the prediction (default: 90 % of the room
        between the largest predicted |frequency| and fs/2).
    freq_range_hz : (low, high) or None
        Without ``predicted``: expected baseband frequency range of the carrier [Hz]; the
        search is limited to it and it must lie inside +-fs/2.
    pfa : float
        False-alarm probability per window of the carrier (and spur) detection.
    min_fill : float
        Minimum fraction of valid samples for a window to be estimated.
    zero_pad : int
        Zero-padding factor of the coarse FFT.
    detect_spur : bool
        Search each window for a second spectral line.

    Returns
    -------
    xarray.Dataset
        On ``time`` (centroid of the valid samples of each window, [s]):
        ``frequency_hz`` (baseband carrier frequency, NaN when flagged unusable),
        ``frequency_sigma_hz`` (CRLB at the measured SNR), ``amplitude``, ``cn0_dbhz``
        (measured), ``n_samples``, ``flag`` (bits 1 gap, 2 no_carrier, 4 spur),
        ``spur_frequency_hz``, ``window_start_s``.

    Raises
    ------
    RoharnessError
        NaN I/Q samples not flagged as missing; a sample rate too low for the expected
        frequency range (aliasing); no carrier detected in any window (all-silent data);
        a record shorter than one window; time stamps off the uniform grid.
    """
    if method not in METHODS:
        raise ValueError(f"unknown carrier method {method!r}; known: {list(METHODS)}")
    time_s, fs, i_arr, q_arr, valid_in = _read_iq(iq)

    # Expected frequency range vs Nyquist (aliasing), and the search band.
    pred_spline, band = _search_band(time_s, fs, predicted, search_halfwidth_hz,
                                     freq_range_hz)

    # Samples onto the uniform grid (zeros where missing).
    z, valid, tgrid = _on_uniform_grid(time_s, fs, i_arr, q_arr, valid_in, pred_spline)

    nwin, nstep = _window_lengths(window_s, step_s, fs, z.size)
    zall = sliding_window_view(z, nwin)[::nstep]
    vall = sliding_window_view(valid, nwin)[::nstep]
    nw = zall.shape[0]
    starts = np.arange(nw) * nstep
    tw = (np.arange(nwin) - (nwin - 1) / 2.0) / fs  # time from the window centre
    cells = max(1.0, nwin * (band[1] - band[0]) / fs)
    eta = np.log(cells / pfa)
    # Blocks of windows keep the zero-padded spectra small (~ 2**22 complex per block).
    block = max(1, (1 << 22) // (int(zero_pad) * nwin))
    parts = [_windows(zall[b:b + block], vall[b:b + block], tw, fs, method, band, int(zero_pad),
                      eta, np.log(nwin / pfa), detect_spur)
             for b in range(0, nw, block)]
    f_hat, amp, snr, detected, tc_rel, sigma_f, nvalid, spur_f, hit = (
        np.concatenate(v) for v in zip(*parts))
    t_win = tgrid[starts] + (nwin - 1) / 2.0 / fs + tc_rel

    flag = _window_flags(nvalid, nwin, detected, hit)
    usable = detected & (nvalid >= min_fill * nwin)
    freq = np.where(usable, f_hat, np.nan)
    if pred_spline is not None:
        freq = freq + pred_spline(t_win)
        spur_f = spur_f + pred_spline(t_win)

    if not np.any(detected & (nvalid > 0)):
        raise RoharnessError(
            f"no carrier detected in any of the {nw} windows of {window_s} s "
            f"(detection threshold {eta:.1f}, false-alarm probability {pfa:g}): the data look "
            f"all silent; check the search band or the C/N0."
        )

    return _carrier_dataset(usable, freq, sigma_f, amp, snr, nvalid, flag, spur_f,
                            tgrid[starts], t_win, method=method, fs=fs, nwin=nwin,
                            nstep=nstep, pfa=pfa, eta=eta)
