"""Reconnection diagnostics of a single-spacecraft current-sheet crossing.

What a scientist derives from magnetometer data, ion moments and an upstream IMF monitor,
after minimum variance analysis (:mod:`retrieval.mva`):

* the crossing centre and time scale from a fit :math:`B_L(t) = a\\tanh((t - t_0)/\\tau) + c`
  and the half-thickness :math:`\\lambda = |\\mathbf v_{sc}\\cdot\\hat{\\mathbf N}|\\,\\tau` for a
  sheet at rest (the crossing-speed method; a tanh profile is the usual assumption [1]_);
* an alternative L, the part of :math:`\\mathbf B_{after} - \\mathbf B_{before}` normal to N
  ("L along the reversing field"), free of the tilt a bipolar Hall field gives the MVA
  maximum-variance direction [2]_;
* the guide field: the mean of :math:`B_M` in two windows either side of the sheet (each
  window weighted equally, so an odd Hall perturbation cancels);
* the Hall bipolar signature: opposite-signed mean :math:`B_M - B_g` before and after the
  centre, each significant against the noise;
* the IMF clock angle :math:`\\theta = \\mathrm{atan2}(B_Y, B_Z)` in [0, 360) deg (from +Z
  toward +Y, MSO) and the lag of maximum Pearson correlation between the upstream and
  downstream clock angles, restricted to physical lags (upstream leads: lag >= 0);
* Alfven speed :math:`v_A = B_L / \\sqrt{\\mu_0 n m_i}`, outflow speed (peak jet along L
  relative to the flow outside), escape flux :math:`|\\langle n \\mathbf v\\rangle|`;
* constrained MVA (<B_N> = 0, :mod:`retrieval.mva`), the de Hoffmann-Teller frame and the
  Walen test [3]_ (:mod:`retrieval.ht_frame`), and with a second magnetometer the normal
  from the two crossing times [4]_.

References
----------
.. [1] Harris, E. G. (1962), Il Nuovo Cimento 23, 115-121, doi:10.1007/BF02733547.
.. [2] Denton, R. E. et al. (2018), Determining L-M-N current sheet coordinates at the
   magnetopause from Magnetospheric Multiscale data, J. Geophys. Res. 123, 2274-2295,
   doi:10.1002/2017JA024619.
.. [3] Paschmann, G. and Sonnerup, B. U. O. (2008), Proper frame determination and Walen
   test, ISSI Scientific Report SR-008, ch. 7.
.. [4] Schwartz, S. J. (1998), Shock and discontinuity normals, Mach numbers, and related
   parameters, ISSI Scientific Report SR-001, ch. 10.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
import xarray as xr
from scipy.optimize import curve_fit

from retrieval.errors import RoharnessError
from retrieval.ht_frame import de_hoffmann_teller, walen_test

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike
from retrieval.mva import minimum_variance

__all__ = [
    "fit_tanh_crossing", "sheet_half_thickness", "reversal_lmn", "guide_field", "hall_bipolar",
    "clock_angle_deg", "lagged_correlation", "clock_angle_lag", "alfven_speed",
    "outflow_speed", "escape_flux", "noise_from_differences", "de_hoffmann_teller",
    "walen_test", "crossing_time", "timing_normal", "analyse_sheet_crossing",
]


def fit_tanh_crossing(t_s, b_l):
    """Fit :math:`B_L(t) = a \\tanh((t - t_0)/\\tau) + c` to a crossing.

    Parameters
    ----------
    t_s : array_like
        Times [s].
    b_l : array_like
        Field along L [any unit].

    Returns
    -------
    dict
        ``t0_s``, ``tau_s`` (> 0), ``amplitude`` (signed a), ``offset`` (c) and their 1-sigma
        errors ``*_err`` from the fit covariance.
    """
    t = np.asarray(t_s, dtype=float)
    y = np.asarray(b_l, dtype=float)
    if t.size < 8 or t.shape != y.shape:
        raise RoharnessError(
            f"a tanh crossing fit needs at least 8 matching samples; got {t.size}.")
    lo, hi = np.percentile(y, [5, 95])
    amp0 = 0.5 * (hi - lo) * np.sign(y[-t.size // 10:].mean() - y[: t.size // 10].mean() or 1.0)
    mid = 0.5 * (hi + lo)
    cross = np.argmin(np.abs(y - mid))
    p0 = [amp0, t[cross], 0.1 * (t[-1] - t[0]), mid]

    def model(tt, a, t0, tau, c):
        return a * np.tanh((tt - t0) / tau) + c

    try:
        p, cov = curve_fit(model, t, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        raise RoharnessError(
            f"the tanh fit of the field reversal did not converge ({exc}).") from None
    err = np.sqrt(np.abs(np.diag(cov)))
    return {"amplitude": p[0] * np.sign(p[2]), "t0_s": p[1], "tau_s": abs(p[2]),
            "offset": p[3], "amplitude_err": err[0], "t0_s_err": err[1], "tau_s_err": err[2],
            "offset_err": err[3]}


def sheet_half_thickness(tau_s, normal_speed_m_s):
    """Half-thickness of a stationary sheet from the crossing time scale.

    .. math:: \\lambda = |v_N| \\, \\tau

    Parameters
    ----------
    tau_s : float
        Time scale of the tanh fit [s].
    normal_speed_m_s : float
        Spacecraft velocity along the normal [m/s].

    Returns
    -------
    float
        :math:`\\lambda` [m] (the full thickness is :math:`2\\lambda`).
    """
    return abs(float(normal_speed_m_s)) * float(tau_s)


def reversal_lmn(n_dir, b_before, b_after) -> np.ndarray:
    """LMN with N given and L along the reversing field.

    :math:`\\hat{\\mathbf L} \\propto \\Delta\\mathbf B - (\\Delta\\mathbf B\\cdot\\hat{\\mathbf N})
    \\hat{\\mathbf N}`, :math:`\\Delta\\mathbf B = \\mathbf B_{after} - \\mathbf B_{before}`
    (so :math:`B_L` increases along the crossing), :math:`\\hat{\\mathbf M} = \\hat{\\mathbf N}
    \\times \\hat{\\mathbf L}`.

    Returns
    -------
    ndarray (3, 3)
        Rows L, M, N.
    """
    n = np.asarray(n_dir, dtype=float)
    n = n / np.linalg.norm(n)
    d = np.asarray(b_after, dtype=float) - np.asarray(b_before, dtype=float)
    d = d - (d @ n) * n
    if np.linalg.norm(d) == 0:
        raise RoharnessError("the field does not reverse across the sheet (equal mean fields "
                             "either side); expected a change in the tangential field.")
    l_vec = d / np.linalg.norm(d)
    return np.stack([l_vec, np.cross(n, l_vec), n])


def _window_mask(t, window, what):
    lo, hi = window
    mask = (t >= lo) & (t <= hi)
    if mask.sum() < 2:
        raise RoharnessError(
            f"the {what} window [{lo:.1f}, {hi:.1f}] s holds fewer than 2 samples; "
            "expected a window inside the data.")
    return mask


def noise_from_differences(y):
    """Robust white-noise level from first differences: 1.4826 MAD(diff) / sqrt(2)."""
    d = np.diff(np.asarray(y, dtype=float))
    return 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)


def guide_field(t_s, b_m, before, after):
    """Guide field: mean :math:`B_M` of two windows either side of the sheet.

    Parameters
    ----------
    t_s : array_like
        Times [s].
    b_m : array_like
        Field along M [nT].
    before, after : (float, float)
        Windows (start, end) [s].

    Returns
    -------
    b_g, b_g_err : float
        :math:`(\\langle B_M\\rangle_{before} + \\langle B_M\\rangle_{after})/2` and its standard
        error from the scatter within the windows (white-noise assumption) [nT].
    """
    t = np.asarray(t_s, dtype=float)
    y = np.asarray(b_m, dtype=float)
    m1, m2 = _window_mask(t, before, "before"), _window_mask(t, after, "after")
    a, b = y[m1], y[m2]
    err = 0.5 * np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return 0.5 * (a.mean() + b.mean()), err


def hall_bipolar(t_s, b_m, t_center_s, half_width_s, guide_nt, *, threshold_sigma=5.0):
    """Detect a bipolar (Hall) :math:`B_M` signature about the guide field.

    The means :math:`d_- , d_+` of :math:`B_M - B_g` in [t0 - w, t0) and (t0, t0 + w] are
    compared with their standard errors (noise from first differences, white-noise
    assumption). The signature is bipolar when :math:`d_-` and :math:`d_+` have opposite
    signs and both exceed ``threshold_sigma`` standard errors.

    Returns
    -------
    dict
        ``detected`` (bool), ``amplitude_nt`` :math:`(d_+ - d_-)/2`, ``polarity`` (sign of
        :math:`d_+`: +1 when B_M is above the guide field after the centre), ``mean_before_nt``,
        ``mean_after_nt``, ``peak_before_nt`` and ``peak_after_nt`` (extreme deviations),
        ``significance`` (the smaller of :math:`|d_\\pm|/\\sigma_\\pm`).
    """
    t = np.asarray(t_s, dtype=float)
    dev = np.asarray(b_m, dtype=float) - guide_nt
    m1 = (t >= t_center_s - half_width_s) & (t < t_center_s)
    m2 = (t > t_center_s) & (t <= t_center_s + half_width_s)
    if m1.sum() < 2 or m2.sum() < 2:
        raise RoharnessError("the Hall detection windows around the sheet centre hold fewer than 2 "
                             "samples each; expected a centre inside the data.")
    sigma = noise_from_differences(dev)
    d1, d2 = dev[m1].mean(), dev[m2].mean()
    s1, s2 = sigma / np.sqrt(m1.sum()), sigma / np.sqrt(m2.sum())
    with np.errstate(divide="ignore"):
        signif = min(abs(d1) / s1, abs(d2) / s2) if sigma > 0 else np.inf
    p1 = dev[m1][np.argmax(np.abs(dev[m1]))]
    p2 = dev[m2][np.argmax(np.abs(dev[m2]))]
    return {"detected": bool(np.sign(d1) == -np.sign(d2) and signif >= threshold_sigma),
            "amplitude_nt": 0.5 * (d2 - d1), "polarity": int(np.sign(d2)),
            "mean_before_nt": d1, "mean_after_nt": d2, "peak_before_nt": p1,
            "peak_after_nt": p2, "significance": float(signif)}


def clock_angle_deg(b_y, b_z):
    """IMF clock angle :math:`\\mathrm{atan2}(B_Y, B_Z)` in [0, 360) deg, from +Z toward +Y."""
    return np.mod(np.degrees(np.arctan2(b_y, b_z)), 360.0)


def lagged_correlation(t_s, upstream, downstream, max_lag_s, min_lag_s=0.0):
    """Lag of maximum Pearson correlation, downstream following upstream.

    For each lag k (in samples, ``min_lag_s <= k dt <= max_lag_s``),
    :math:`r_k = \\mathrm{corr}(u_i, d_{i+k})`. The maximum is refined to a fraction of a
    sample by a parabola through the three points around it.

    Parameters
    ----------
    t_s : array_like
        Uniform sample times [s] shared by both series.
    upstream, downstream : array_like
        The two series.
    max_lag_s, min_lag_s : float
        Physical lag range [s] (the upstream monitor leads: lags are non-negative).

    Returns
    -------
    lag_s : float
    r_max : float
        Correlation at the best integer lag.
    lags_s, r : ndarray
        The correlation curve.
    """
    t = np.asarray(t_s, dtype=float)
    u = np.asarray(upstream, dtype=float)
    d = np.asarray(downstream, dtype=float)
    if t.size < 4 or u.shape != t.shape or d.shape != t.shape:
        raise RoharnessError("lagged correlation needs two series of the same length as the times "
                             "(at least 4 samples).")
    dt = np.diff(t)
    if not np.allclose(dt, dt[0], rtol=1e-6, atol=1e-9) or dt[0] <= 0:
        raise RoharnessError("lagged correlation needs uniformly sampled, increasing times.")
    dt = dt[0]
    if not 0.0 <= min_lag_s < max_lag_s:
        raise RoharnessError(f"the lag range [{min_lag_s}, {max_lag_s}] s is invalid; expected "
                             "0 <= min_lag_s < max_lag_s (the upstream monitor leads).")
    k_min, k_max = int(np.ceil(min_lag_s / dt - 1e-9)), int(np.floor(max_lag_s / dt + 1e-9))
    if t.size - k_max < 10:
        raise RoharnessError(f"the maximum lag {max_lag_s} s leaves fewer than 10 overlapping "
                             f"samples of a {t[-1] - t[0]:.0f} s series; expected a longer series.")
    ks = np.arange(k_min, k_max + 1)
    r = np.empty(ks.size)
    for j, k in enumerate(ks):
        a, b = u[: u.size - k], d[k:]
        a, b = a - a.mean(), b - b.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        r[j] = (a * b).sum() / den if den > 0 else np.nan
    if not np.any(np.isfinite(r)):
        raise RoharnessError("the series to correlate are constant; no lag can be found.")
    j = int(np.nanargmax(r))
    frac = 0.0
    if 0 < j < r.size - 1:
        den = r[j - 1] - 2 * r[j] + r[j + 1]
        if den < 0:
            frac = 0.5 * (r[j - 1] - r[j + 1]) / den
    return (ks[j] + frac) * dt, r[j], ks * dt, r


def _unwrap_about_mean(angle_deg):
    """Angles mapped into (-180, 180] about their circular mean (avoids 0/360 jumps)."""
    a = np.radians(angle_deg)
    mean = np.arctan2(np.sin(a).mean(), np.cos(a).mean())
    return np.degrees(np.angle(np.exp(1j * (a - mean))) + mean)


def clock_angle_lag(t_s, b_up, b_down, max_lag_s, min_lag_s=0.0):
    """Lag and correlation of the clock angles of two monitors (upstream leads).

    The clock angles (:func:`clock_angle_deg`) are mapped about their circular means before
    the Pearson correlation (:func:`lagged_correlation`).

    Parameters
    ----------
    b_up, b_down : array_like (n, 3)
        Fields (MSO) [any unit].

    Returns
    -------
    As :func:`lagged_correlation`.
    """
    b_up, b_down = np.asarray(b_up, dtype=float), np.asarray(b_down, dtype=float)
    up = _unwrap_about_mean(clock_angle_deg(b_up[:, 1], b_up[:, 2]))
    down = _unwrap_about_mean(clock_angle_deg(b_down[:, 1], b_down[:, 2]))
    return lagged_correlation(t_s, up, down, max_lag_s, min_lag_s)


def alfven_speed(b_t, n_m3, ion_mass_kg):
    """Alfven speed :math:`v_A = B / \\sqrt{\\mu_0 n m_i}` [m/s] (B [T], n [m^-3], m_i [kg])."""
    return np.asarray(b_t, dtype=float) / np.sqrt(
        sc.mu_0 * np.asarray(n_m3, dtype=float) * ion_mass_kg)


def outflow_speed(t_s, v_m_s, l_dir, t_center_s, half_width_s, v_background_m_s):
    """Peak reconnection-jet speed along L.

    The jet :math:`j(t) = (\\mathbf v - \\mathbf v_{bg})\\cdot\\hat{\\mathbf L}` of the moments
    within :math:`|t - t_0| \\le 2w` is fitted by a Gaussian pulse centred on the sheet,
    :math:`A \\exp(-(t - t_0)^2 / 2 s^2)` (a generic shape: fitting beats taking the noisiest
    sample's extreme, which is biased by the noise); the signed peak A is returned (+ along
    +L). If the fit fails, the extreme moment within :math:`|t - t_0| \\le w` is returned.
    """
    t = np.asarray(t_s, dtype=float)
    jet = (np.asarray(v_m_s, dtype=float) - np.asarray(v_background_m_s)) @ np.asarray(l_dir)
    inner = np.abs(t - t_center_s) <= half_width_s
    if not inner.any():
        raise RoharnessError("no ion moment falls inside the sheet; expected moments within the "
                             "crossing to measure the outflow.")
    raw = jet[inner][np.argmax(np.abs(jet[inner]))]
    near = np.abs(t - t_center_s) <= 2.0 * half_width_s
    if near.sum() < 3:
        return raw

    def pulse(tt, amp, width):
        return amp * np.exp(-0.5 * ((tt - t_center_s) / width) ** 2)

    try:
        p, _ = curve_fit(pulse, t[near], jet[near], p0=[raw, 0.5 * half_width_s], maxfev=5000)
    except (RuntimeError, ValueError):
        return raw
    return p[0] if np.isfinite(p[0]) else raw


def escape_flux(n_m3, v_m_s, direction=None):
    """Ion flux :math:`\\langle n\\mathbf v\\rangle` of moments in a window.

    Parameters
    ----------
    n_m3 : array_like (k,)
        Densities [m^-3].
    v_m_s : array_like (k, 3)
        Bulk velocities [m/s].
    direction : array_like (3,), optional
        If given the flux component along it, else the magnitude.

    Returns
    -------
    float
        Flux [m^-2 s^-1].
    """
    f = (np.asarray(n_m3, dtype=float)[:, None] * np.asarray(v_m_s, dtype=float)).mean(axis=0)
    if direction is None:
        return float(np.linalg.norm(f))
    d = np.asarray(direction, dtype=float)
    return float(f @ d / np.linalg.norm(d))


def crossing_time(t_s, b, l_dir):
    """Time [s] of a sheet centre and its error: the tanh fit of
    :math:`\\mathbf B\\cdot\\hat L` (:func:`fit_tanh_crossing`)."""
    fit = fit_tanh_crossing(t_s, np.asarray(b, dtype=float) @ np.asarray(l_dir, dtype=float))
    return fit["t0_s"], fit["t0_s_err"]


def timing_normal(r1_cross_m, r2_cross_m, l_dir):
    """Sheet normal from the crossing points of two spacecraft and the reversal direction.

    For a sheet at rest (a planar surface in the frame where the positions are given) both
    crossing points :math:`\\mathbf r_1(t_1)`, :math:`\\mathbf r_2(t_2)` lie in its plane, and
    so does the reversing field :math:`\\hat{\\mathbf L}`; hence

    .. math::

        \\hat{\\mathbf n} \\propto \\hat{\\mathbf L}\\times(\\mathbf r_2(t_2)
                                                  - \\mathbf r_1(t_1)),

    two-spacecraft timing [4]_ completed by the tangential-reversal constraint (the normal is
    perpendicular to the field jump). Fails when the chord is parallel to L.

    Parameters
    ----------
    r1_cross_m, r2_cross_m : array_like (3,)
        Positions of the two spacecraft at their own crossing times [m].
    l_dir : array_like (3,)
        Direction of the reversing field.

    Returns
    -------
    ndarray (3,)
        Unit normal (sign: its largest component positive).
    """
    chord = np.asarray(r2_cross_m, dtype=float) - np.asarray(r1_cross_m, dtype=float)
    l_vec = np.asarray(l_dir, dtype=float) / np.linalg.norm(l_dir)
    n = np.cross(l_vec, chord)
    norm = np.linalg.norm(n)
    if norm < 1e-3 * np.linalg.norm(chord) or norm == 0:
        raise RoharnessError("the chord between the two spacecraft's crossing points is "
                             "parallel to L; expected a separation with a component across L.")
    n = n / norm
    return n * (1.0 if n[np.argmax(np.abs(n))] > 0 else -1.0)


def _scalar(value, units, long_name):
    return xr.Variable((), value, {"units": units, "long_name": long_name})


def _seconds_since(times, epoch):
    return (np.asarray(times) - epoch) / np.timedelta64(1, "s")


def _mva_window(obs, win):
    """The magnetometer epoch, times [s since it], field [nT], the mask of the MVA window
    ``win`` (UTC) and the L reference (B_L increases along the crossing)."""
    start, end = (np.datetime64(str(w).rstrip("Z"), "ns") for w in win)
    tm = obs["time_mag"].values
    epoch = tm[0]
    t = _seconds_since(tm, epoch)
    b = obs["b_mso"].values
    sel = (tm >= start) & (tm <= end)
    if sel.sum() < 10:
        raise RoharnessError(f"the MVA window {win[0]} - {win[1]} holds {sel.sum()} field vectors; "
                             "expected a window inside the magnetometer data.")
    bw = b[sel]
    k = max(1, bw.shape[0] // 10)
    l_ref = bw[-k:].mean(0) - bw[:k].mean(0)  # B_L increases along the crossing
    return epoch, t, b, sel, l_ref


def _reversal_frame(t, b, n_hat, l_dir, inner, outer):
    """Tanh fit of the crossing, the windows either side of it (times and masks) and the
    reversal LMN, starting from the MVA L (:func:`analyse_sheet_crossing`)."""
    for _ in range(2):  # the MVA L is tilted by a Hall field: refit along the reversal L
        fit = fit_tanh_crossing(t, b @ l_dir)
        t0, tau = fit["t0_s"], fit["tau_s"]
        before = (max(t[0], t0 - outer * tau), t0 - inner * tau)
        after = (t0 + inner * tau, min(t[-1], t0 + outer * tau))
        m1, m2 = _window_mask(t, before, "before"), _window_mask(t, after, "after")
        lmn = reversal_lmn(n_hat, b[m1].mean(0), b[m2].mean(0))
        l_dir = lmn[0]
    return fit, before, after, m1, m2, lmn


def _imf_lag(obs, epoch, max_lag):
    """IMF clock-angle lag [s], its correlation and the circular mean of the upstream clock
    angle [deg]."""
    tf = _seconds_since(obs["time_imf"].values, epoch)
    lag, r, _, _ = clock_angle_lag(tf, obs["b_upstream_mso"].values, obs["b_downstream_mso"].values,
                                   max_lag)
    clock_up = clock_angle_deg(obs["b_upstream_mso"].values[:, 1],
                               obs["b_upstream_mso"].values[:, 2])
    return lag, r, float(np.mod(np.degrees(np.arctan2(np.sin(np.radians(clock_up)).mean(),
                                                      np.cos(np.radians(clock_up)).mean())),
                                360.0))


def _walen_and_ht(ti, t, b, v_i, n_i, m_i, before, after):
    """Walen test and de Hoffmann-Teller correlation over the ion moments from the start of
    the window before the sheet to the end of the one after it (NaN where they fail)."""
    near = (ti >= before[0]) & (ti <= after[1])
    b_ion = np.stack([np.interp(ti, t, b[:, k]) for k in range(3)], -1)
    try:
        walen = walen_test(v_i[near], b_ion[near] * 1e-9, n_i[near], m_i)
        ht_cc = de_hoffmann_teller(v_i[near], b_ion[near])["cc"]
    except RoharnessError:
        walen, ht_cc = {"slope": np.nan, "correlation": np.nan, "v_ht": np.full(3, np.nan)}, np.nan
    return walen, ht_cc


def _timing_variables(obs, t, b, lmn, n_hat):
    """With a second magnetometer (``b2_mso``), the normal from the two crossing times and
    the delay between them, as variables; else nothing."""
    extra = {}
    if "b2_mso" in obs:  # a second magnetometer: the normal from the two crossing times
        b2 = obs["b2_mso"].values
        t1, _ = crossing_time(t, b, lmn[0])
        t2, _ = crossing_time(t, b2, lmn[0])
        r1 = np.stack([np.interp(t1, t, obs["sc_position_mso"].values[:, k]) for k in range(3)])
        r2 = np.stack([np.interp(t2, t, obs["sc2_position_mso"].values[:, k]) for k in range(3)])
        n_t = timing_normal(r1, r2, lmn[0])
        n_t = n_t * (np.sign(n_t @ n_hat) or 1.0)
        extra["normal_timing"] = xr.Variable(("component",), n_t, {
            "units": "1", "long_name": "normal from two-spacecraft timing and the reversal L"})
        extra["timing_delay"] = xr.Variable((), t2 - t1, {
            "units": "s", "long_name": "crossing time of spacecraft 2 minus spacecraft 1"})
    return extra


def _mva_variables(mva, lmn):
    """The MVA triad, the reversal LMN basis and the MVA eigenvalues and errors, as the
    first variables of :func:`analyse_sheet_crossing`'s estimates."""
    scalar = _scalar
    return {
        "lmn_mva": xr.Variable(("lmn", "component"), mva.eigenvectors,
                               {"units": "1",
                                "long_name": "MVA eigenvectors x1, x2, x3 (L, M, N)"}),
        "lmn_basis": xr.Variable(("lmn", "component"), lmn,
                                 {"units": "1",
                                  "long_name": "N from MVA, L along the reversing field"}),
        "eigenvalues": xr.Variable(("lmn",), mva.eigenvalues,
                                   {"units": "nT2", "long_name": "MVA eigenvalues"}),
        "eigenvalue_ratio_12": scalar(mva.ratio_12, "1", "lambda1 / lambda2"),
        "eigenvalue_ratio_23": scalar(mva.ratio_23, "1", "lambda2 / lambda3"),
        "normal_error_rad": scalar(float(np.hypot(mva.dphi_32, mva.dphi_31)), "rad",
                                   "Sonnerup-Scheible 1-sigma error of the normal "
                                   "(dphi32, dphi31 in quadrature)"),
        "dphi_32": scalar(mva.dphi_32, "rad", "normal rotation error toward x2"),
        "dphi_31": scalar(mva.dphi_31, "rad", "normal rotation error toward x1"),
        "dphi_21": scalar(mva.dphi_21, "rad", "x2 rotation error toward x1"),
        "bn_mean": scalar(mva.bn_mean, "nT", "<B.N>"),
        "bn_error": scalar(mva.bn_error, "nT", "error of <B.N>"),
    }


def _window_and_lag(obs, window, max_lag_s):
    """The MVA window (UTC) and the largest lag [s], given or from the observation's attrs."""
    win = window if window is not None else obs.attrs.get("analysis_window_utc")
    if win is None:
        raise RoharnessError("no MVA window was given and the observation has no "
                             "'analysis_window_utc' attribute.")
    max_lag = float(max_lag_s if max_lag_s is not None else obs.attrs.get("max_lag_s", 600.0))
    return win, max_lag


def _ion_moments(obs, epoch, before, after):
    """Ion times [s since ``epoch``], densities, velocities and the mask of the windows
    either side of the sheet."""
    ti = _seconds_since(obs["time_ion"].values, epoch)
    n_i = obs["ion_density"].values
    v_i = obs["ion_velocity_mso"].values
    i1, i2 = _window_mask(ti, before, "ion before"), _window_mask(ti, after, "ion after")
    outside = i1 | i2
    return ti, n_i, v_i, outside


def analyse_sheet_crossing(obs: xr.Dataset, *, window: tuple[str, str] | None = None,
                           n_ref: ArrayLike | None = None, inner: float = 3.0,
                           outer: float = 8.0, max_lag_s: float | None = None) -> xr.Dataset:
    """The whole reconnection analysis of one crossing (an observation Dataset).

    Parameters
    ----------
    obs : xarray.Dataset
        With ``b_mso`` (time_mag, component) [nT], ``sc_velocity_mso`` [m/s],
        ``ion_density`` (time_ion) [m^-3], ``ion_velocity_mso`` [m/s], ``b_upstream_mso`` and
        ``b_downstream_mso`` (time_imf) [nT]; attrs ``ion_mass_kg`` and, unless given here,
        ``analysis_window_utc`` and ``max_lag_s``.
    window : (str, str), optional
        MVA interval (UTC).
    n_ref : array_like (3,), optional
        Reference fixing the sign of N (default: largest component positive).
    inner, outer : float
        The guide-field / escape windows are :math:`[t_0 - outer\\,\\tau, t_0 - inner\\,\\tau]`
        and :math:`[t_0 + inner\\,\\tau, t_0 + outer\\,\\tau]` (clipped to the data).
    max_lag_s : float, optional
        Largest physical lag.

    Returns
    -------
    xarray.Dataset
        Estimates with units; ``lmn_mva`` (MVA triad, L oriented so that B_L increases along
        the crossing) and ``lmn_basis`` (N from MVA, L along the reversing field), and scalars.
    """
    win, max_lag = _window_and_lag(obs, window, max_lag_s)
    epoch, t, b, sel, l_ref = _mva_window(obs, win)
    bw = b[sel]
    mva = minimum_variance(bw, n_ref=n_ref, l_ref=l_ref)
    n_hat = mva.n
    fit, before, after, m1, m2, lmn = _reversal_frame(t, b, n_hat, mva.l, inner, outer)
    t0, tau = fit["t0_s"], fit["tau_s"]
    b_g, b_g_err = guide_field(t, b @ lmn[1], before, after)
    b_g_mva, _ = guide_field(t, b @ mva.m, before, after)
    hall = hall_bipolar(t, b @ lmn[1], t0, inner * tau, b_g)
    v_sc = obs["sc_velocity_mso"].values[sel].mean(0)
    v_n = float(v_sc @ n_hat)
    lam = sheet_half_thickness(tau, v_n)
    # ion moments
    ti, n_i, v_i, outside = _ion_moments(obs, epoch, before, after)
    n_out = n_i[outside].mean()
    v_bg = v_i[outside].mean(0)
    b_lobe_nt = 0.5 * abs((b[m2].mean(0) - b[m1].mean(0)) @ lmn[0])
    m_i = float(obs.attrs["ion_mass_kg"])
    v_a = float(alfven_speed(b_lobe_nt * 1e-9, n_out, m_i))
    v_out = float(outflow_speed(ti, v_i, lmn[0], t0, 2.0 * tau, v_bg))
    flux = escape_flux(n_i[outside], v_i[outside])
    # IMF lag
    lag, r, clock_up_mean = _imf_lag(obs, epoch, max_lag)
    # constrained MVA, de Hoffmann-Teller frame and Walen test over the moments of the crossing
    cmva = minimum_variance(bw, constrain_bn=True, n_ref=n_hat, l_ref=l_ref)
    walen, ht_cc = _walen_and_ht(ti, t, b, v_i, n_i, m_i, before, after)
    extra = _timing_variables(obs, t, b, lmn, n_hat)

    scalar = _scalar
    comp = obs["component"].values if "component" in obs.coords else ["x", "y", "z"]
    est = xr.Dataset(
        {
            **_mva_variables(mva, lmn),
            "crossing_time_s": scalar(t0, "s", f"sheet centre, seconds after {epoch}"),
            "crossing_tau_s": scalar(tau, "s", "tanh time scale of the reversal"),
            "crossing_tau_err_s": scalar(fit["tau_s_err"], "s",
                                         "1-sigma fit error of the time scale"),
            "normal_speed": scalar(v_n, "m s-1", "spacecraft speed along N"),
            "half_thickness": scalar(lam, "m", "sheet half-thickness lambda"),
            "guide_field": scalar(b_g, "nT", "guide field (mean B_M either side)"),
            "guide_field_err": scalar(b_g_err, "nT", "statistical error of the guide field"),
            "guide_field_mva": scalar(b_g_mva, "nT", "guide field along the MVA x2"),
            "hall_detected": scalar(hall["detected"], "1", "bipolar Hall B_M detected"),
            "hall_amplitude": scalar(hall["amplitude_nt"], "nT", "Hall bipolar half-amplitude"),
            "hall_significance": scalar(hall["significance"], "1", "Hall signature / noise"),
            "lobe_field": scalar(b_lobe_nt, "nT", "reconnecting field |B_L| outside the sheet"),
            "density_outside": scalar(n_out, "m-3", "ion density outside the sheet"),
            "alfven_speed": scalar(v_a, "m s-1", "Alfven speed from B_L and n outside"),
            "outflow_speed": scalar(v_out, "m s-1", "peak jet speed along L (signed)"),
            "escape_flux": scalar(flux, "m-2 s-1", "ion flux |<n v>| outside the sheet"),
            "imf_lag": scalar(lag, "s", "lag of maximum clock-angle correlation"),
            "imf_correlation": scalar(r, "1", "Pearson r at the lag"),
            "normal_constrained": xr.Variable(("component",), cmva.n, {
                "units": "1", "long_name": "normal of the constrained MVA (<B.N> = 0)"}),
            "eigenvalue_3_constrained": scalar(cmva.eigenvalues[2], "nT2",
                                               "lambda3 of the constrained MVA"),
            "v_ht": xr.Variable(("component",), walen["v_ht"], {
                "units": "m s-1", "long_name": "de Hoffmann-Teller frame velocity (MSO)"}),
            "ht_correlation": scalar(ht_cc, "1", "correlation of -v x B with -V_HT x B"),
            "walen_slope": scalar(walen["slope"], "1", "Walen slope (v - V_HT against v_A)"),
            "walen_correlation": scalar(walen["correlation"], "1", "Walen correlation"),
            **extra,
            "clock_angle_upstream_mean": scalar(clock_up_mean, "degree",
                                                "circular mean upstream clock angle"),
        },
        coords={"lmn": ["L", "M", "N"], "component": comp},
        attrs={"epoch_utc": str(epoch), "window_before_s": before, "window_after_s": after,
               "producer": "retrieval.reconnection.analyse_sheet_crossing"},
    )
    return est
