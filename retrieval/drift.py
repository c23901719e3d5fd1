r"""Level 3-5 of mutual RO: predicted Doppler, level-4 residual and drift correction.

Level 3 is the predicted received frequency of the straight (vacuum) ray from the SPICE
state vectors (RO contract, first order in v/c):

.. math::  f_{\rm pred} = f_T (1 - \hat e\cdot v_R/c) / (1 - \hat e\cdot v_T/c),
           \quad \hat e = (r_R - r_T)/|r_R - r_T|.

Level 4 is the measured carrier frequency minus the prediction: atmosphere *plus*
oscillator drift. Level 5 is level 4 after drift correction, :func:`correct_drift`, with
one of the published recipes (../shared/SCIENCE.md, "Drift correction"), selected by
``model=``:

``"baseline_poly"``
    Polynomial baseline in time fitted (least squares) to the samples whose straight-ray
    tangent altitude is above ``threshold_altitude_m`` (no ionosphere there), order
    0..``max_order`` chosen by the Bayesian information criterion
    :math:`{\rm BIC} = n \ln({\rm RSS}/n) + (k+1)\ln n` [3], extrapolated and subtracted
    everywhere (the classical "zero above the ionosphere" baseline, e.g. [1]).
``"withers2020"``
    Two-step baseline after Withers et al. [1]: (a) ``baseline_poly``; (b) after a first
    inversion, a linear ramp :math:`s\,(t - t_{\rm thr})` starting where the tangent
    altitude crosses the threshold is added, with :math:`s` chosen (root of a scalar
    equation, the retrieval being linear in the residual to first order) so that the mean
    retrieved :math:`N_e` in the ionosphere/neutral transition region
    ``transition_m`` (default 70-90 km) is zero.
``"parrott2025"``
    Joint recipe of Parrott et al. [2]: polynomial of variable order (BIC) fitted to the
    vacuum part, plus a constant offset :math:`c`, :math:`|c| \le` ``max_offset_hz``
    (0.5 Hz), applied from the point where the gradient of the baseline-removed residual
    is 0 Hz/s (taken here as the threshold crossing, where the fitted baseline has made the
    residual flat), and chosen by bounded optimisation (scipy ``minimize_scalar``,
    method "bounded") so that the mean retrieved :math:`N_e` in 70-80 km is ~0. The
    paper's exact parametrisation of where the offset starts is not reproduced verbatim
    (our reading of the published description; see SCIENCE.md).

The :math:`N_e`-based criteria call :func:`retrieval.electron_density.invert_observation`
on trial corrections; the retrieved :math:`N_e` being linear in the residual to first
order, a secant iteration (:func:`_linear_root`) needs 3-4 inversions.

Noise handling (what a field expert adds to the recipes)
--------------------------------------------------------
* **Smoothing**: the drift-corrected residual is smoothed by a quadratic Savitzky-Golay
  filter in time (:func:`smooth_residual`) whose window is chosen from the noise of the
  vacuum part (:func:`choose_smoothing_window`): just long enough for the retrieved impact
  parameter to descend monotonically, at most the time for a 20 km descent
  (:data:`MAX_SMOOTHING_M`); 0 on a noiseless residual.
* **Monotonic repair**: where noise still makes the impact parameter turn back, the
  output asks :func:`retrieval.electron_density.invert_observation` for the isotonic
  repair (samples merged into levels, flagged in the profile's ``quality_flag``) instead
  of rejecting the profile.

Measured performance and its physical limit (benchmarks/drift_strategies.py)
----------------------------------------------------------------------------
mex-tgo-uhf-drift (MEX -> TGO at 437.1 MHz, ray descending ~0.42 km/s, 630 1-s samples),
20 seeds, pass = M2 peak density within 5 % and altitude within 2 km; receiver ADEV =
scale x the ``tcxo`` preset (1e-9 at 1 s and 10 s, 2e-9 at 100 s):

=========  =============  ===========  ===========
scale      baseline_poly  withers2020  parrott2025
=========  =============  ===========  ===========
1 (tcxo)   0/20           0/20         0/20
0.3        0/20           0/20         0/20
0.1        2/20           4/20         2/20
0.03       5/20           12/20        4/20
0.02       6/20           15/20        9/20
0.01       14/20          20/20        19/20
=========  =============  ===========  ===========

withers2020 wins at every noise level: its ramp pins the drift at both ends of the
ionospheric pass (vacuum above, zero :math:`N_e` at 70-90 km), which for a random-walk
frequency is the conditional mean (a Brownian bridge); parrott2025's single offset
and baseline_poly's extrapolation leave the slope free. The limit is physical, not
numerical: the random-walk FM part of the preset (:math:`h_{-2}` from 2e-9 at 100 s)
wanders by :math:`\sqrt{qT/4}\,f \approx` 1.8 Hz (q = 4 pi^2 h_-2) over the T = 321 s between
the 230 km threshold and 90 km, against a 0.8 Hz ionospheric signal, and no smoothing can
separate it from the ionosphere (it is as slow as the layer); the white-noise formula of
Withers (2010) (:func:`retrieval.electron_density.withers2010_density_noise`) gives
7.1e10 m^-3 per 1-s sample, 28 % of the peak, for the fast part alone. The target
(>= 18/20) needs the receiver ADEV about 1/100 of the preset (1e-11 at 1 s).

References
----------
.. [1] Withers, P. et al. (2020), MAVEN ROSE radio occultation processing (two-step
   baseline: zero residual above the ionosphere, zero N_e in the transition region), as
   summarised in ../shared/SCIENCE.md (DOI not verified here, hence not quoted).
.. [2] Parrott, J. et al. (2025), mutual radio occultation of the Mars ionosphere with Mars
   Express and ExoMars TGO (joint polynomial + bounded offset drift correction), as
   summarised in ../shared/SCIENCE.md.
.. [3] Schwarz, G. (1978), Estimating the dimension of a model, Ann. Statist. 6(2),
   461-464, doi:10.1214/aos/1176344136.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval import constants as K
from retrieval.electron_density import invert_observation
from retrieval.errors import RoharnessError
from retrieval.geometry import tangent_point

MODELS = ("none", "baseline_poly", "withers2020", "parrott2025")


def predicted_frequency(obs: xr.Dataset) -> np.ndarray:
    """Level 3: predicted received frequency of the straight ray [Hz] (module docstring)."""
    r_t, r_r = obs["tx_position"].values, obs["rx_position"].values
    d = r_r - r_t
    e = d / np.linalg.norm(d, axis=-1, keepdims=True)
    num = 1.0 - np.sum(e * obs["rx_velocity"].values, axis=-1) / sc.c
    den = 1.0 - np.sum(e * obs["tx_velocity"].values, axis=-1) / sc.c
    return float(obs.attrs["frequency_hz"]) * num / den


def tangent_altitude(obs: xr.Dataset) -> np.ndarray:
    """Straight-ray tangent altitude per sample [m] above ``reference_radius_m``."""
    _, radius, _ = tangent_point(obs["tx_position"].values, obs["rx_position"].values)
    return radius - float(obs.attrs.get("reference_radius_m", K.MARS_MEAN_RADIUS_M))


def baseline_poly_fit(time_s, residual_hz, altitude_m, threshold_altitude_m=230e3,
                      max_order=3):
    r"""Polynomial baseline fitted above a threshold altitude, order chosen by BIC.

    Parameters
    ----------
    time_s, residual_hz, altitude_m : array (n,)
        Sample times [s], level-4 residual [Hz], straight-ray tangent altitude [m].
    threshold_altitude_m : float
        Samples above this altitude are vacuum [m].
    max_order : int
        Highest polynomial order tried.

    Returns
    -------
    baseline_hz : array (n,)
        The fitted polynomial evaluated at every sample [Hz].
    order : int
        The chosen order.
    """
    t = np.asarray(time_s, float)
    r = np.asarray(residual_hz, float)
    vac = np.asarray(altitude_m, float) >= threshold_altitude_m
    n = int(vac.sum())
    if n < 3:
        raise RoharnessError(
            f"only {n} samples lie above the drift-correction threshold "
            f"{threshold_altitude_m / 1e3:g} km; lower the threshold or start the "
            "observation higher")
    t0, scale = t[vac].mean(), max(np.ptp(t[vac]), 1e-9)
    x = (t - t0) / scale
    best = None
    for k in range(0, min(max_order, n - 2) + 1):
        coef = np.polyfit(x[vac], r[vac], k)
        rss = float(np.sum((np.polyval(coef, x[vac]) - r[vac]) ** 2))
        bic = n * np.log(max(rss, 1e-300) / n) + (k + 1) * np.log(n)
        if best is None or bic < best[0] - 1e-9:
            best = (bic, k, coef)
    return np.polyval(best[2], x), int(best[1])


def smooth_residual(time_s, residual_hz, window_s, order=2):
    r"""Savitzky-Golay smoothing of a residual in time (local polynomial, boxcar window).

    Each sample is replaced by the value at its time of the least-squares polynomial of
    degree ``order`` fitted to the samples within :math:`\pm` ``window_s``/2 [1]_. On a
    uniform grid this is exactly the Savitzky-Golay filter; written on the actual times it
    also handles the gaps that carrier extraction leaves (flagged windows are dropped,
    never interpolated). A polynomial of degree <= ``order`` (e.g. a drift baseline) passes
    unchanged, and a quadratic filter preserves a peak's height to :math:`O(W^4)` instead
    of the :math:`O(W^2)` flattening of a running mean. Near the ends the window is
    one-sided (the fit is evaluated off-centre). Parrott et al. [2]_ average their UHF
    Doppler heavily for the same reason: the receiver's frequency noise.

    Parameters
    ----------
    time_s, residual_hz : array_like, shape (n,)
        Sample times (increasing) [s] and residual [Hz].
    window_s : float
        Full window length [s]; <= the sample spacing returns the input unchanged.
    order : int
        Polynomial degree (2: Savitzky-Golay quadratic).

    Returns
    -------
    ndarray, shape (n,)
        Smoothed residual [Hz].

    References
    ----------
    .. [1] Savitzky, A. and Golay, M. J. E. (1964), Smoothing and differentiation of data
       by simplified least squares procedures, Anal. Chem. 36(8), 1627-1639,
       doi:10.1021/ac60214a047.
    .. [2] Parrott, J. et al. (2025), J. Geophys. Res. Planets 130,
       doi:10.1029/2024JE008854.
    """
    t = np.asarray(time_s, float)
    r = np.asarray(residual_hz, float)
    n = t.size
    half = 0.5 * float(window_s)
    if n < order + 2 or half <= 0:
        return r.copy()
    dt = float(np.median(np.diff(t))) if n > 1 else 1.0
    if 2.0 * half < 1.5 * dt:
        return r.copy()
    lo = np.searchsorted(t, t - half - 1e-9 * dt, side="left")
    hi = np.searchsorted(t, t + half + 1e-9 * dt, side="right")
    # one-sided windows at the ends keep the full number of points
    width = int(np.max(hi - lo))
    lo = np.clip(np.minimum(lo, hi - width), 0, max(n - width, 0))
    hi = np.minimum(lo + width, n)
    k = int(np.max(hi - lo))
    if k < order + 1:
        return r.copy()
    idx = lo[:, None] + np.arange(k)[None, :]
    valid = idx < hi[:, None]
    idx = np.minimum(idx, n - 1)
    x = (t[idx] - t[:, None]) / max(half, dt)  # scaled for conditioning
    w = valid.astype(float)
    vander = x[..., None] ** np.arange(order + 1)  # (n, k, order+1)
    a = np.einsum("nk,nki,nkj->nij", w, vander, vander)
    b = np.einsum("nk,nki,nk->ni", w, vander, r[idx])
    coef = np.linalg.solve(a + 1e-12 * np.eye(order + 1), b[..., None])[..., 0]
    return coef[:, 0]


def _diff_noise_hz(residual_hz):
    """Robust scatter of the sample-to-sample differences [Hz] (1.4826 MAD)."""
    d = np.diff(np.asarray(residual_hz, float))
    if d.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


#: Largest automatic smoothing window, as the vertical distance the straight-ray tangent
#: point moves during the window [m]. Measured on the noiseless mex-tgo-uhf residual
#: (smoothed, inverted, compared with the truth): a quadratic Savitzky-Golay window of
#: 47 s = 20 km (half a window ~ the 10 km scale height) moves the retrieved M2 peak by
#: 0.21 % in density and 0.08 km in altitude (max |N_e error| 0.8 % of the peak), about a
#: twentieth of the 5 % / 2 km acceptance; 71 s = 30 km already costs 1.0 % and 0.36 km.
MAX_SMOOTHING_M = 20e3
#: The automatic window makes the noise of the sample-to-sample change of the impact
#: parameter this many times smaller than the straight-ray descent per sample.
SMOOTHING_SIGNIFICANCE = 3.0


def choose_smoothing_window(obs: xr.Dataset, vacuum, residual_hz=None,
                            max_smoothing_m=MAX_SMOOTHING_M):
    r"""Savitzky-Golay window [s] chosen from the noise of the vacuum part of the residual.

    The retrieval needs the impact parameter :math:`a(t)` to descend (ingress) or rise
    (egress) monotonically. Noise :math:`\sigma_d` on the sample-to-sample *change* of
    the residual moves :math:`a` by :math:`|\partial a/\partial\Delta f|\,\sigma_d`
    (sensitivity from two Doppler inversions, :func:`retrieval.bending.bending_from_doppler`;
    ~1.5-2 km/Hz for MEX-TGO at UHF). The window is the shortest one (odd number of
    samples, Savitzky-Golay quadratic) for which

    .. math:: k\,|\partial a/\partial \Delta f|_{\max}\;\sigma_d(W) \le
              \mathrm{median}\,|\Delta a_0|,

    with :math:`k` = :data:`SMOOTHING_SIGNIFICANCE`, :math:`\sigma_d(W)` the robust
    scatter (1.4826 MAD) of the differences of the smoothed residual over the vacuum
    samples (measured on the data, so white, flicker and random-walk frequency noise are
    all accounted for as they are), :math:`\Delta a_0` the straight-ray impact-parameter
    step per sample. The window is capped where the ray descends ``max_smoothing_m``
    (vertical resolution); a noiseless residual gets no smoothing (window 0).

    Parameters
    ----------
    obs : xarray.Dataset
        Level-4 observation (state vectors, ``frequency_residual``, ``frequency_hz``).
    vacuum : array of bool, shape (n,)
        Samples above the drift-correction threshold.
    residual_hz : array, optional
        Residual to use instead of ``obs.frequency_residual`` [Hz].
    max_smoothing_m : float
        Cap on the vertical extent of the window [m].

    Returns
    -------
    float
        Window length [s] (0: no smoothing).
    """
    from retrieval.bending import bending_from_doppler

    t = np.asarray(obs["time"].values, float)
    r = np.asarray(obs["frequency_residual"].values if residual_hz is None else residual_hz,
                   float)
    vac = np.asarray(vacuum, bool)
    if vac.sum() < 8 or t.size < 8:
        return 0.0
    dt = float(np.median(np.diff(t)))
    order = ["time", "xyz"]
    args = [obs[v].transpose(*order).values for v in ("tx_position", "tx_velocity",
                                                      "rx_position", "rx_velocity")]
    f_t = float(obs.attrs["frequency_hz"])
    probe = 0.1  # [Hz]: small against the residual, linear regime
    b0 = bending_from_doppler(*args, np.zeros_like(r), f_t)
    b1 = bending_from_doppler(*args, np.full_like(r, probe), f_t)
    sens = np.abs(b1["impact_parameter_m"] - b0["impact_parameter_m"]) / probe
    sens_max = float(np.nanmax(sens)) if np.isfinite(sens).any() else 0.0
    descent = float(np.median(np.abs(np.diff(b0["straight_impact_parameter_m"]))))
    if not sens_max > 0 or not descent > 0:
        return 0.0
    speed = descent / dt  # [m/s] vertical speed of the straight-ray tangent point
    n_max = int(max_smoothing_m / speed / dt)
    tv, rv = t[vac], r[vac]
    for m in range(1, max(n_max, 1) + 1, 2):
        w = 0.0 if m == 1 else m * dt
        sd = _diff_noise_hz(smooth_residual(tv, rv, w) if w else rv)
        if SMOOTHING_SIGNIFICANCE * sens_max * sd <= descent:
            return float(w)
    m = n_max if n_max % 2 else n_max - 1  # the cap: the largest odd window within it
    return float(m) * dt if m > 1 else 0.0


def _with_residual(obs, residual):
    """A copy of ``obs`` with ``frequency_residual`` replaced (same dims and attrs).

    The copied variable's data are swapped in place (a shallow copy has its own Variable
    objects): the same Dataset as assigning a new variable, without xarray's merge and
    alignment, which cost ~10 times more (this runs once per trial inversion).
    """
    out = obs.copy()
    var = out.variables["frequency_residual"]
    var.values = np.array(residual, dtype=float)  # same shape, checked by xarray
    var.encoding = {}
    return out


def _mean_ne(obs, residual, band_m):
    # the trial inversions only need the band's mean density: the fourth-order scheme,
    # whatever the profile's own (the sixth order costs 1.3-2.3x, and a recipe runs ~7)
    prof = invert_observation(_with_residual(obs, residual), tangent_geometry=False,
                              monotonic="isotonic", scheme="cubic")
    alt = prof["altitude"].values
    ne = prof["electron_density"].values
    sel = (alt >= band_m[0]) & (alt <= band_m[1])
    mid = 0.5 * (band_m[0] + band_m[1])
    if not sel.any() and alt.size > 1 and alt[0] <= mid <= alt[-1]:
        # isotonic repair can merge the band's samples into a level just outside it: the
        # (piecewise-linear) profile at the band centre stands for the band mean
        return float(np.interp(mid, alt, ne))
    if not sel.any():
        raise RoharnessError(
            f"the profile has no level in {band_m[0] / 1e3:g}-{band_m[1] / 1e3:g} km, needed "
            "by the N_e-based drift correction; extend the observation downward")
    return float(np.mean(ne[sel]))


def _linear_root(g, step, bounds=None, xtol=0.0, max_iter=4):
    r"""Root of a nearly linear scalar function by the secant method, optionally clipped.

    The retrieved :math:`N_e` is, to first order, linear in the residual (the Doppler
    inversion is linear for small bending, the Abel transform and
    :math:`N_e \propto -(n - 1)` are linear), so a band-mean :math:`g(p)` of :math:`N_e`
    is nearly linear in a drift parameter :math:`p`: two inversions give the root, one or
    two secant updates absorb the small non-linearity. For a bounded parameter the
    minimiser of :math:`g^2` over the interval is the clipped root of a monotone
    :math:`g`. About 3-4 inversions instead of the ~15-25 of a bounded scalar minimiser.
    """
    p0, g0 = 0.0, g(0.0)
    p1, g1 = step, g(step)
    for _ in range(max_iter):
        if g1 == g0:
            break
        p2 = p1 - g1 * (p1 - p0) / (g1 - g0)
        if bounds is not None:
            p2 = float(np.clip(p2, *bounds))
        if abs(p2 - p1) <= xtol:
            p1 = p2
            break
        p0, g0 = p1, g1
        p1, g1 = p2, g(p2)
    return float(p1 if bounds is None else np.clip(p1, *bounds))


def _smoothing_window(obs, vac, residual, smoothing_s):
    """The Savitzky-Golay window [s] of :func:`correct_drift`: ``smoothing_s``, or for
    ``"auto"`` :func:`choose_smoothing_window` of the baseline-removed ``residual``."""
    if isinstance(smoothing_s, str):
        if smoothing_s != "auto":
            raise ValueError(f"unknown smoothing_s {smoothing_s!r}; known: 'auto' or a "
                             "window in seconds")
        window = choose_smoothing_window(obs, vac, residual)
    else:
        window = float(smoothing_s or 0.0)
        if not window >= 0:
            raise RoharnessError(f"smoothing_s must be >= 0 s, got {smoothing_s!r}")
    return window


def correct_drift(obs: xr.Dataset, model: str = "parrott2025", *,
                  threshold_altitude_m: float = 230e3, max_order: int = 3,
                  transition_m: tuple[float, float] | None = None,
                  max_offset_hz: float = 0.5, smoothing_s: float | str = "auto"
                  ) -> xr.Dataset:
    """Level 4 -> level 5: remove the oscillator drift from ``frequency_residual``.

    Steps: (1) polynomial baseline fitted to the vacuum samples (all models but
    ``"none"``); (2) Savitzky-Golay smoothing of the baseline-removed residual
    (:func:`smooth_residual`; window ``smoothing_s``, by default chosen from the noise by
    :func:`choose_smoothing_window`); (3) the ``withers2020`` ramp or the ``parrott2025``
    offset, fitted on the smoothed residual (:func:`_linear_root`, 3-4 inversions). The
    output asks :func:`retrieval.electron_density.invert_observation` to repair an impact
    parameter made non-monotonic by noise (attr ``impact_parameter_repair = "isotonic"``;
    repaired levels are flagged in the profile's ``quality_flag``).

    Parameters
    ----------
    obs : xarray.Dataset
        One-way observation (RO contract) whose ``frequency_residual`` is the level-4
        residual (measured minus predicted frequency, drift included) [Hz].
    model : {"none", "baseline_poly", "withers2020", "parrott2025"}
        Strategy (module docstring).
    threshold_altitude_m : float
        Vacuum above this straight-ray tangent altitude [m].
    max_order : int
        Highest baseline polynomial order tried (BIC).
    transition_m : (low, high) or None
        Region where the retrieved N_e must vanish [m]; default 70-90 km (withers2020),
        70-80 km (parrott2025).
    max_offset_hz : float
        Bound on the parrott2025 offset [Hz].
    smoothing_s : "auto", float or None
        Savitzky-Golay (quadratic) window [s]; ``"auto"`` (default) chooses it from the
        noise of the vacuum part (0 for a noiseless residual: the result is then unchanged);
        0 or None: no smoothing.

    Returns
    -------
    xarray.Dataset
        A copy with the corrected ``frequency_residual`` (level 5),
        ``frequency_residual_unsmoothed`` [Hz] (level 5 before smoothing),
        ``drift_correction`` [Hz] (what was subtracted as drift), attrs ``drift_model``,
        ``drift_order``, ``drift_parameter`` (withers2020 slope [Hz/s] / parrott2025
        offset [Hz]), ``drift_smoothing_s``, ``impact_parameter_repair``.
    """
    if model not in MODELS:
        raise ValueError(f"unknown drift-correction model {model!r}; known: {list(MODELS)}")
    t = np.asarray(obs["time"].values, float)
    r = np.asarray(obs["frequency_residual"].values, float)
    alt = tangent_altitude(obs)
    vac = alt >= threshold_altitude_m
    corr = np.zeros_like(r)
    order, param = -1, 0.0
    if model != "none":
        corr, order = baseline_poly_fit(t, r, alt, threshold_altitude_m, max_order)
    window = _smoothing_window(obs, vac, r - corr, smoothing_s)
    raw5 = r - corr
    res5 = smooth_residual(t, raw5, window) if window > 0 else raw5.copy()
    if model in ("withers2020", "parrott2025"):
        below = np.flatnonzero(~vac)
        if not below.size:
            raise RoharnessError("no sample lies below the drift-correction threshold "
                                 f"{threshold_altitude_m / 1e3:g} km")
        # time where the ray crosses the threshold (first sample below it, in time order)
        t_thr = t[below[0]] if alt[0] >= alt[-1] else t[below[-1]]
        sgn = 1.0 if alt[0] >= alt[-1] else -1.0  # ingress: time runs downward
        if model == "withers2020":
            band = transition_m or (70e3, 90e3)
            shape = np.maximum(sgn * (t - t_thr), 0.0)  # ramp [s]
            step, bounds, xtol = 1e-4, None, 1e-9
        else:
            band = transition_m or (70e3, 80e3)
            shape = (sgn * (t - t_thr) >= 0).astype(float)  # step [1]
            step, bounds, xtol = 0.1, (-max_offset_hz, max_offset_hz), 1e-4

        def g(p):
            return _mean_ne(obs, res5 - p * shape, band)
        param = _linear_root(g, step, bounds, xtol)
        corr = corr + param * shape
        res5 = res5 - param * shape
        raw5 = raw5 - param * shape
    out = _with_residual(obs, res5)
    out["frequency_residual_unsmoothed"] = ("time", raw5, {
        "units": "Hz", "long_name": "drift-corrected residual before smoothing"})
    out["drift_correction"] = ("time", corr, {"units": "Hz",
                                              "long_name": "drift correction subtracted from "
                                              "the level-4 residual"})
    out.attrs.update(drift_model=model, drift_order=order, drift_parameter=float(param),
                     drift_threshold_altitude_m=float(threshold_altitude_m),
                     drift_smoothing_s=float(window), impact_parameter_repair="isotonic",
                     data_level="5: drift-corrected residual Doppler and SPICE state vectors")
    return out
