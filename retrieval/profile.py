"""Science from one electron density profile: M2/M1 peaks, neutral temperature, TEC.

Everything here works on a profile ``N_e(h)`` given as arrays ``altitude_m`` (above the
3389.5 km reference sphere) and ``ne_m3``, however it was obtained (a synthetic round trip,
MAVEN ROSE, MEX-TGO mutual RO). No hand tuning: every scale is derived from the profile.

Pipeline of :func:`profile_science`
-----------------------------------
1. **Noise** ``sigma`` [m^-3]: the given ``ne_err_m3`` or, if absent, the robust scatter of
   the fourth differences of the profile, ``sigma = 1.4826 MAD(Delta^4 N) / sqrt(70)``
   (white noise of variance ``sigma^2`` gives ``var(Delta^4 N) = 70 sigma^2``; a smooth
   layer contributes ``N'''' dz^4``, negligible on a fine grid).
2. **Smoothing** by local quadratic regression with Gaussian weights of width ``w``
   (a LOESS of degree 2, whose bias at a peak is O(w^4) instead of the O(w^2) flattening
   of a plain running mean). ``w`` is chosen by the discrepancy principle: the largest
   ``w`` whose residual ``chi^2`` per point does not exceed its pure-noise expectation
   ``1 - 2 L_ii + sum_j L_ij^2`` by more than ``2 sqrt(2/n)``, i.e. the smoothing bias stays
   below the noise. A noiseless profile therefore gets the narrowest kernel (one grid step).
   The local fit gives value, slope and curvature with their noise (linear propagation).
3. **M2** = the global maximum of the smoothed profile, refined by the local quadratic.
4. **M1** (Segale et al. classes) searched between the base of the layer (where the
   smoothed density falls below ``M1_BASE_FRACTION`` of the M2 peak) and the M2 peak:

   * ``strong``: exactly one *significant* local maximum below M2; significant means its
     dip to the valley above it is at least ``max(3 sqrt(2) sigma_s, M1_MIN_DIP * N_M1)``
     (``sigma_s`` the noise of the smoothed density).
   * ``medium``: two or more significant maxima (a *cluster*; altitude = the densest one,
     uncertainty = the distance between the outermost maxima) or, with no significant
     maximum, a *shoulder*: curvature changes sign concave -> convex below M2, i.e. the
     slope ``dN/dh`` has a local minimum ``s_min`` between two larger slopes ``s_lo``
     (below) and ``s_hi`` (above) with depth ``min(s_lo, s_hi) - s_min`` at least
     ``max(3 sigma_slope, M1_MIN_SHOULDER_DEPTH * min(s_lo, s_hi))``. The shoulder's
     altitude is that of ``s_min``; its uncertainty is the width of the shoulder, the
     altitude span over which the slope stays below half-way between ``s_min`` and
     ``min(s_lo, s_hi)``.
   * ``none`` otherwise.

5. **Neutral temperature** (Parrott et al. 2025, appendix, with the erratum of
   ../shared/SCIENCE.md): fit of a Chapman layer

   .. math:: N(h) = N_m \\exp\\{\\tfrac12 [1 - z - e^{-z}]\\},\\quad z = (h - h_m)/H

   over ``h_m - 20 km .. h_m + 50 km``; ``T_n = H g m_{CO2} / k_B`` with
   ``g = G M / (R + h_m)^2``. Uncertainty from the fit covariance scaled by the residual
   ``chi^2`` (so model misfit widens it).
6. **TEC**: vertical ``int N dh`` over the ionosphere (from the base below the M2 peak,
   where the smoothed density first drops to <= 0, to the top of the profile);
   slant TEC along a straight ray of impact parameter ``a`` through the spherically
   symmetric profile, ``2 int_a^inf N(r) r / sqrt(r^2 - a^2) dr`` (Abel form), integrated
   exactly for ``N`` piecewise linear in ``r``.
7. **Topside scale height**: weighted linear fit of ``ln N`` versus ``h`` from
   ``h_m + TOPSIDE_OFFSET_M`` up to where ``N`` falls below ``5 sigma``.

References
----------
.. [1] Segale, C. et al. (2024), MAVEN ROSE M1/M2 peaks versus SZA, dawn/dusk and
   aphelion/perihelion (see ../shared/SCIENCE.md for the numbers used here).
.. [2] Parrott, J. et al. (2025), Ionospheric analysis with Martian mutual radio occultation,
   J. Geophys. Res. Planets 130, doi:10.1029/2024JE008854 (appendix: T_n from the M2 layer).
.. [3] Chapman, S. (1931), The absorption and ionising effect of monochromatic radiation
   in an atmosphere on a rotating earth, Proc. Phys. Soc. 43, 483,
   doi:10.1088/0959-5309/43/5/302.
.. [4] Cleveland, W. S. (1979), Robust locally weighted regression and smoothing
   scatterplots, J. Am. Stat. Assoc. 74, 829-836, doi:10.1080/01621459.1979.10481038.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit

from retrieval.constants import CO2_MASS_KG, MARS_GM_M3_S2, MARS_MEAN_RADIUS_M, G
from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: Mars mass [kg] = GM / G (GM from retrieval.constants, G from CODATA).
MARS_MASS_KG = MARS_GM_M3_S2 / G

#: M1 search starts where the smoothed density is this fraction of the M2 peak.
M1_BASE_FRACTION = 0.05
#: Minimum relative dip (peak -> valley above it) of a local maximum to count as a peak.
M1_MIN_DIP = 0.02
#: Minimum relative depth of the slope minimum that makes a shoulder.
M1_MIN_SHOULDER_DEPTH = 0.10
#: Significance of a dip / slope minimum in units of its noise.
SIGNIFICANCE = 3.0
#: Chapman fit window around the M2 peak [m] (Parrott et al. 2025).
CHAPMAN_WINDOW_M = (-20e3, 50e3)
#: Topside fit starts this far above the M2 peak [m] (above ~2 H the Chapman topside is
#: close to its exp(-z/2) asymptote; transport takes over higher still).
TOPSIDE_OFFSET_M = 30e3
#: Topside fit spans at most this altitude range [m].
TOPSIDE_SPAN_M = 100e3

M1_CLASSES = ("strong", "medium", "none")


# ----------------------------------------------------------------------------- helpers
def _clean(altitude_m, ne_m3, ne_err_m3):
    h = np.asarray(altitude_m, dtype=float).ravel()
    n = np.asarray(ne_m3, dtype=float).ravel()
    if h.size != n.size:
        raise RoharnessError(
            f"altitude_m has {h.size} values but ne_m3 has {n.size}; they must have the "
            "same length."
        )
    if ne_err_m3 is None:
        e = None
    else:
        e = np.broadcast_to(np.asarray(ne_err_m3, dtype=float), n.shape).astype(float)
    ok = np.isfinite(h) & np.isfinite(n)
    if e is not None:
        ok &= np.isfinite(e) & (e > 0)
    if ok.sum() < 10:
        raise RoharnessError(
            f"the profile has only {int(ok.sum())} finite levels; at least 10 are needed "
            "for peak and layer analysis."
        )
    order = np.argsort(h[ok], kind="stable")
    h, n = h[ok][order], n[ok][order]
    e = None if e is None else e[ok][order]
    keep = np.concatenate([[True], np.diff(h) > 0])  # drop duplicate altitudes
    h, n = h[keep], n[keep]
    e = None if e is None else e[keep]
    if not np.nanmax(n) > 0:
        raise RoharnessError("the profile has no positive electron density; no layer to analyse.")
    return h, n, e


def estimate_noise(ne_m3) -> float:
    """Robust white-noise level of a profile from its fourth differences [m^-3].

    .. math:: \\hat\\sigma = 1.4826\\,\\mathrm{MAD}(\\Delta^4 N) / \\sqrt{70}

    ``Delta^4`` of white noise has variance ``(1 + 16 + 36 + 16 + 1) sigma^2``; the MAD is
    robust to the few levels where a layer's own fourth derivative is large.
    """
    n = np.asarray(ne_m3, dtype=float)
    d4 = np.diff(n, 4)
    if d4.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d4 - np.median(d4))) / math.sqrt(70.0))


def _inverse_normal_matrix(s0, s1, s2, s3, s4):
    """Inverses of the symmetric normal matrices [[s0,s1,s2],[s1,s2,s3],[s2,s3,s4]] (m,3,3).

    Closed form (adjugate over determinant), ~20x faster than a batched SVD; rows whose
    matrix is (near) singular, too few weighted levels for a quadratic, fall back to the
    pseudo-inverse.
    """
    a00, a01, a02 = s2 * s4 - s3 * s3, s2 * s3 - s1 * s4, s1 * s3 - s2 * s2
    a11, a12, a22 = s0 * s4 - s2 * s2, s1 * s2 - s0 * s3, s0 * s2 - s1 * s1
    det = s0 * a00 + s1 * a01 + s2 * a02
    minv = np.empty((s0.size, 3, 3))
    minv[:, 0, 0], minv[:, 0, 1], minv[:, 0, 2] = a00, a01, a02
    minv[:, 1, 0], minv[:, 1, 1], minv[:, 1, 2] = a01, a11, a12
    minv[:, 2, 0], minv[:, 2, 1], minv[:, 2, 2] = a02, a12, a22
    scale = np.abs(s0) * np.abs(s2) * np.abs(s4) + np.abs(s1 * s3 * s2)
    bad = ~(np.abs(det) > 1e-10 * scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        minv /= det[:, None, None]
    if bad.any():
        m = np.stack([np.stack([s0, s1, s2], -1), np.stack([s1, s2, s3], -1),
                      np.stack([s2, s3, s4], -1)], -2)[bad]
        minv[bad] = np.linalg.pinv(m)
    return minv


def _local_quadratic(h, n, sigma, h_eval, width):
    """Gaussian-weighted local quadratic fit evaluated at ``h_eval``.

    Only levels within 5 kernel widths contribute (banded, O(m K) work).

    Returns
    -------
    tuple
        value, slope, second derivative at ``h_eval``, the gathered level indices
        ``idx`` (m, K) and the operators ``la``, ``lb`` (m, K) mapping ``n[idx]`` to the
        value and the slope (zero where ``idx`` is padding).
    """
    lo = np.searchsorted(h, h_eval - 5.0 * width, side="left")
    hi = np.searchsorted(h, h_eval + 5.0 * width, side="right")
    k = int(max(np.max(hi - lo), 1))
    idx = lo[:, None] + np.arange(k)[None, :]
    valid = idx < hi[:, None]
    idx = np.minimum(idx, h.size - 1)
    x = (h[idx] - h_eval[:, None]) / width  # scaled for conditioning
    w = np.where(valid, np.exp(-0.5 * x * x) / sigma[idx] ** 2, 0.0)
    wx = w * x
    wxx = wx * x
    s0, s1, s2 = w.sum(1), wx.sum(1), wxx.sum(1)
    s3, s4 = (wxx * x).sum(1), (wxx * x * x).sum(1)
    minv = _inverse_normal_matrix(s0, s1, s2, s3, s4)
    la = minv[:, 0, 0, None] * w + minv[:, 0, 1, None] * wx + minv[:, 0, 2, None] * wxx
    lb = (minv[:, 1, 0, None] * w + minv[:, 1, 1, None] * wx + minv[:, 1, 2, None] * wxx) / width
    lc = minv[:, 2, 0, None] * w + minv[:, 2, 1, None] * wx + minv[:, 2, 2, None] * wxx
    y = n[idx]
    value = (la * y).sum(1)
    slope = (lb * y).sum(1)
    curv = 2.0 * (lc * y).sum(1) / width**2
    return value, slope, curv, idx, la, lb


def smooth_profile(altitude_m, ne_m3, ne_err_m3=None):
    """Noise-adaptive local-quadratic smoothing of a profile (see module notes, step 2).

    Parameters
    ----------
    altitude_m : array_like
        Altitudes [m], strictly increasing.
    ne_m3 : array_like
        Electron density [m^-3].
    ne_err_m3 : array_like or float, optional
        1-sigma noise [m^-3]; estimated with :func:`estimate_noise` if omitted.

    Returns
    -------
    dict
        ``width_m`` (kernel width chosen), ``sigma_m3`` (noise used, per level),
        ``smoothed_m3`` (at the input levels).
    """
    h = np.asarray(altitude_m, dtype=float)
    n = np.asarray(ne_m3, dtype=float)
    floor = 1e-6 * float(np.nanmax(np.abs(n)))  # round-off floor for noiseless input
    if ne_err_m3 is None:
        sigma = np.full_like(n, max(estimate_noise(n), floor))
    else:
        sigma = np.maximum(np.broadcast_to(np.asarray(ne_err_m3, float), n.shape), floor)
    dz = float(np.median(np.diff(h)))
    widths = dz * np.geomspace(0.5, 40.0, 22)
    widths = widths[widths <= max(15e3, dz)]
    tol = 2.0 * math.sqrt(2.0 / n.size)  # 2-sigma scatter of a mean of n chi^2(1) terms
    chosen, smoothed = widths[0], None
    for width in widths:
        val, _, _, idx, la, _ = _local_quadratic(h, n, sigma, h, width)
        # expected chi^2 per point of pure noise after smoothing with operator la
        lw = la * sigma[idx] / sigma[:, None]
        diag = np.where(idx == np.arange(h.size)[:, None], lw, 0.0).sum(1)
        expect = np.mean(1.0 - 2.0 * diag + (lw**2).sum(1))
        chi2 = np.mean(((n - val) / sigma) ** 2)
        if smoothed is not None and chi2 > expect + tol:
            break
        chosen, smoothed = width, val
    return {"width_m": float(chosen), "sigma_m3": sigma, "smoothed_m3": smoothed}


def _parabola_vertex(x, y, i):
    """Sub-grid vertex of the parabola through points i-1, i, i+1 (uniform grid)."""
    if i <= 0 or i >= len(x) - 1:
        return x[i], y[i]
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    den = y0 - 2 * y1 + y2
    if den == 0:
        return x[i], y[i]
    off = 0.5 * (y0 - y2) / den
    off = float(np.clip(off, -1.0, 1.0))
    dx = x[i + 1] - x[i]
    return x[i] + off * dx, y1 - 0.25 * (y0 - y2) * off


# ----------------------------------------------------------------------------- peaks
def find_layers(altitude_m, ne_m3, ne_err_m3=None):
    """M2 and M1 peaks with uncertainties and the M1 class (module notes, steps 1-4).

    Parameters
    ----------
    altitude_m : array_like
        Altitude above the reference sphere [m].
    ne_m3 : array_like
        Electron density [m^-3].
    ne_err_m3 : array_like or float, optional
        1-sigma density noise [m^-3]; estimated from the profile if omitted.

    Returns
    -------
    dict
        ``m2_peak_altitude_m``, ``m2_peak_altitude_error_m``, ``m2_peak_density_m3``,
        ``m2_peak_density_error_m3``, ``m1_class`` (``strong``/``medium``/``none``),
        ``m1_kind`` (``peak``/``cluster``/``shoulder``/``none``), ``m1_peak_altitude_m``,
        ``m1_peak_altitude_error_m``, ``m1_peak_density_m3``, ``m1_peak_density_error_m3``
        (NaN when ``none``), ``m1_range_bottom_m``/``m1_range_top_m`` (the altitude span
        of the maxima of a cluster or of a shoulder), ``noise_m3``, ``smoothing_width_m``.
    """
    h, n, e = _clean(altitude_m, ne_m3, ne_err_m3)
    sm = smooth_profile(h, n, e)
    width, sigma = sm["width_m"], sm["sigma_m3"]
    i2 = int(np.argmax(sm["smoothed_m3"]))
    # fine grid from 150 km below the M2 peak to 10 km above it
    dz = float(np.median(np.diff(h)))
    step = min(dz / 2.0, 250.0)
    lo = max(h[0], h[i2] - 150e3)
    hi = min(h[-1], h[i2] + 10e3)
    hf = np.arange(lo, hi + 0.5 * step, step)
    hf = hf[hf <= h[-1]]
    val, slope, curv, idx, la, lb = _local_quadratic(h, n, sigma, hf, width)
    sig_val = np.sqrt((la**2 * sigma[idx] ** 2).sum(1))
    sig_slope = np.sqrt((lb**2 * sigma[idx] ** 2).sum(1))

    j2 = int(np.argmax(val))
    h2, n2 = _parabola_vertex(hf, val, j2)
    c2 = curv[j2]
    h2_err = float(sig_slope[j2] / abs(c2)) if c2 < 0 else float("nan")
    out = {
        "m2_peak_altitude_m": float(h2),
        "m2_peak_altitude_error_m": h2_err,
        "m2_peak_density_m3": float(n2),
        "m2_peak_density_error_m3": float(sig_val[j2]),
        "noise_m3": float(np.median(sigma)),
        "smoothing_width_m": float(width),
    }
    out.update(_classify_m1(hf, val, slope, curv, sig_val, sig_slope, j2, n2))
    return out


def _classify_m1(hf, val, slope, curv, sig_val, sig_slope, j2, n2):
    nan = float("nan")
    none = {"m1_class": "none", "m1_kind": "none", "m1_peak_altitude_m": nan,
            "m1_peak_altitude_error_m": nan, "m1_peak_density_m3": nan,
            "m1_peak_density_error_m3": nan, "m1_range_bottom_m": nan, "m1_range_top_m": nan}
    below = np.flatnonzero(val[: j2 + 1] < M1_BASE_FRACTION * n2)
    jb = int(below[-1]) + 1 if below.size else 0
    if j2 - jb < 4:
        return none
    seg = slice(jb, j2 + 1)
    v, s, c = val[seg], slope[seg], curv[seg]
    x, sv, ss = hf[seg], sig_val[seg], sig_slope[seg]
    last = len(v) - 1  # the M2 peak

    # --- local maxima below M2 (slope + -> -)
    maxima = []
    for k in np.flatnonzero((s[:-1] > 0) & (s[1:] <= 0)):
        k = int(k) if v[k] >= v[k + 1] else int(k) + 1
        if k >= last - 1:
            continue
        valley = float(np.min(v[k:]))
        dip = v[k] - valley
        if dip >= max(SIGNIFICANCE * math.sqrt(2.0) * sv[k], M1_MIN_DIP * v[k]):
            maxima.append(k)
    if maxima:
        alts, dens = [], []
        for k in maxima:
            hk, nk = _parabola_vertex(x, v, k)
            alts.append(hk)
            dens.append(nk)
        best = int(np.argmax(dens))
        if len(maxima) == 1:
            k = maxima[0]
            herr = float(ss[k] / abs(c[k])) if c[k] < 0 else nan
            return {"m1_class": "strong", "m1_kind": "peak",
                    "m1_peak_altitude_m": float(alts[0]),
                    "m1_peak_altitude_error_m": herr,
                    "m1_peak_density_m3": float(dens[0]),
                    "m1_peak_density_error_m3": float(sv[k]),
                    "m1_range_bottom_m": float(alts[0]), "m1_range_top_m": float(alts[0])}
        return {"m1_class": "medium", "m1_kind": "cluster",
                "m1_peak_altitude_m": float(alts[best]),
                "m1_peak_altitude_error_m": float(max(alts) - min(alts)),
                "m1_peak_density_m3": float(dens[best]),
                "m1_peak_density_error_m3": float(max(dens) - min(dens)) / 2.0
                + float(sv[maxima[best]]),
                "m1_range_bottom_m": float(min(alts)), "m1_range_top_m": float(max(alts))}

    # --- shoulder: local minimum of the slope (curvature - -> +) below the M2 peak
    best = None
    for k in np.flatnonzero((c[:-1] < 0) & (c[1:] >= 0)):
        k = int(k) + 1 if s[k + 1] < s[k] else int(k)
        if k <= 0 or k >= last:
            continue
        s_lo = float(np.max(s[:k]))
        s_hi = float(np.max(s[k:]))
        ref = min(s_lo, s_hi)
        depth = ref - s[k]
        if ref <= 0 or depth < max(SIGNIFICANCE * ss[k], M1_MIN_SHOULDER_DEPTH * ref):
            continue
        if best is None or depth / ref > best[1]:
            best = (k, depth / ref, ref)
    if best is None:
        return none
    k, _, ref = best
    half = 0.5 * (ref + s[k])
    a = k
    while a > 0 and s[a - 1] < half:
        a -= 1
    b = k
    while b < last and s[b + 1] < half:
        b += 1
    width = float(x[b] - x[a])
    return {"m1_class": "medium", "m1_kind": "shoulder",
            "m1_peak_altitude_m": float(x[k]),
            "m1_peak_altitude_error_m": max(width, float(x[1] - x[0])),
            "m1_peak_density_m3": float(v[k]),
            "m1_peak_density_error_m3": 0.5 * float(v[b] - v[a]) + float(sv[k]),
            "m1_range_bottom_m": float(x[a]), "m1_range_top_m": float(x[b])}


# ----------------------------------------------------------------------- temperature
def gravity_m_s2(altitude_m):
    """Mars gravitational acceleration g = G M / (R + h)^2 [m s^-2] (erratum-corrected)."""
    return MARS_GM_M3_S2 / (MARS_MEAN_RADIUS_M + np.asarray(altitude_m, dtype=float)) ** 2


def chapman_profile(altitude_m, peak_density_m3, peak_altitude_m, scale_height_m):
    """Chapman layer written with its actual peak: N_m exp{1/2 [1 - z - exp(-z)]} [m^-3]."""
    z = (np.asarray(altitude_m, dtype=float) - peak_altitude_m) / scale_height_m
    return peak_density_m3 * np.exp(0.5 * (1.0 - z - np.exp(-z)))


TEMPERATURE_MODELS = ("parrott2025", "two_layer", "auto")


def neutral_temperature(altitude_m: ArrayLike, ne_m3: ArrayLike,
                        ne_err_m3: ArrayLike | None = None,
                        peak_altitude_m: float | None = None,
                        window_m: tuple[float, float] = CHAPMAN_WINDOW_M,
                        model: str = "parrott2025", m1_altitude_m: float | None = None
                        ) -> dict:
    """Neutral temperature near the M2 peak from a Chapman fit (Parrott et al. 2025).

    .. math:: T_n = \\frac{H\\, g(h_m)\\, m_{CO_2}}{k_B},\\qquad g = \\frac{G M}{(R + h_m)^2}

    Parameters
    ----------
    altitude_m, ne_m3 : array_like
        The profile [m], [m^-3].
    ne_err_m3 : array_like or float, optional
        Density noise [m^-3] (fit weights); unweighted if omitted.
    peak_altitude_m : float, optional
        Centre of the fit window [m]; the profile maximum if omitted.
    window_m : (float, float)
        Fit window relative to the peak [m] (default -20 km .. +50 km).
    model : {"parrott2025", "two_layer", "auto"}
        ``parrott2025``: one Chapman layer over the window (the published method).
        ``two_layer``: M2 and M1 Chapman layers (each with its own scale height) fitted
        together, the window extended down to ``m1_altitude_m - 15 km``; only the M2 scale
        height gives T_n. This removes the bias the M1 flank puts into the single-layer fit
        (measured: +6 % in H for an M1 of 25 % of the M2 density 25 km below it).
        ``auto``: ``two_layer`` when ``m1_altitude_m`` is given, else ``parrott2025``.
    m1_altitude_m : float, optional
        Altitude of the M1 peak or shoulder [m] (needed by ``two_layer``).

    Returns
    -------
    dict
        ``chapman_peak_altitude_m``, ``chapman_peak_density_m3``, ``scale_height_m``,
        ``scale_height_error_m``, ``gravity_m_s2``, ``neutral_temperature_k``,
        ``neutral_temperature_error_k``, ``chapman_fit_points``, ``temperature_model``.
        Errors come from the fit covariance scaled by the reduced chi^2 of the residuals.
    """
    if model not in TEMPERATURE_MODELS:
        raise ValueError(f"unknown temperature model {model!r}; known: {TEMPERATURE_MODELS}")
    h, n, e = _clean(altitude_m, ne_m3, ne_err_m3)
    hp = float(h[np.argmax(n)]) if peak_altitude_m is None else float(peak_altitude_m)
    if model == "auto":
        model = "two_layer" if m1_altitude_m is not None and np.isfinite(m1_altitude_m) \
            else "parrott2025"
    if model == "two_layer" and (m1_altitude_m is None or not np.isfinite(m1_altitude_m)):
        raise ValueError("model='two_layer' needs m1_altitude_m (the M1 peak or shoulder).")
    bottom = hp + window_m[0]
    if model == "two_layer":
        bottom = min(bottom, float(m1_altitude_m) - 15e3)
    sel = (h >= bottom) & (h <= hp + window_m[1])
    nan = float("nan")
    res = {"chapman_peak_altitude_m": nan, "chapman_peak_density_m3": nan,
           "scale_height_m": nan, "scale_height_error_m": nan, "gravity_m_s2": nan,
           "neutral_temperature_k": nan, "neutral_temperature_error_k": nan,
           "chapman_fit_points": int(sel.sum()), "temperature_model": model}
    npar = 3 if model == "parrott2025" else 6
    if sel.sum() < npar + 2:
        return res
    hs, ns = h[sel], n[sel]
    scale = float(np.max(ns))
    hm0 = hp
    # parameters scaled to O(1): N/scale, (h - hp)/10 km, H/10 km
    def layer_jac(hh, a, b, c):
        # d/d(a, b, c) of chapman_profile(hh, a, hm0 + 1e4 b, 1e4 c), analytically:
        # f = a exp(g), g = (1 - z - e^-z)/2, z = (hh - hm0 - 1e4 b)/(1e4 c)
        z = (hh - hm0 - b * 1e4) / (c * 1e4)
        e = np.exp(0.5 * (1.0 - z - np.exp(-z)))
        dg = 0.5 * (np.exp(-z) - 1.0) * a * e
        return np.stack([e, -dg / c, -dg * z / c], axis=-1)

    if model == "parrott2025":
        def fmodel(hh, a, b, c):
            return chapman_profile(hh, a, hm0 + b * 1e4, c * 1e4)

        def fjac(hh, a, b, c):
            return layer_jac(hh, a, b, c)
        p0 = (1.0, 0.0, 1.0)
        bounds = ([0.0, -2.0, 0.05], [10.0, 2.0, 20.0])
    else:
        d1 = (float(m1_altitude_m) - hm0) / 1e4
        i1 = int(np.argmin(np.abs(hs - float(m1_altitude_m))))

        def fmodel(hh, a, b, c, a1, b1, c1):
            return (chapman_profile(hh, a, hm0 + b * 1e4, c * 1e4)
                    + chapman_profile(hh, a1, hm0 + b1 * 1e4, c1 * 1e4))

        def fjac(hh, a, b, c, a1, b1, c1):
            return np.concatenate([layer_jac(hh, a, b, c), layer_jac(hh, a1, b1, c1)], -1)
        p0 = (1.0, 0.0, 1.0, min(0.5, ns[i1] / scale), d1, 0.8)
        bounds = ([0.0, -2.0, 0.05, 0.0, d1 - 1.5, 0.05],
                  [10.0, 2.0, 20.0, 10.0, min(d1 + 1.5, -0.3), 20.0])
        p0 = tuple(np.clip(p0, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            popt, pcov = curve_fit(
                fmodel, hs, ns / scale, p0=p0,
                sigma=None if e is None else e[sel] / scale, absolute_sigma=False,
                bounds=bounds, max_nfev=4000, jac=fjac)
        except (RuntimeError, ValueError):
            return res
    perr = np.sqrt(np.clip(np.diag(pcov), 0.0, np.inf))
    hm = hm0 + popt[1] * 1e4
    hh, hh_err = popt[2] * 1e4, perr[2] * 1e4
    g = float(gravity_m_s2(hm))
    t = hh * g * CO2_MASS_KG / sc.k
    res.update({"chapman_peak_altitude_m": float(hm),
                "chapman_peak_density_m3": float(popt[0] * scale),
                "scale_height_m": float(hh), "scale_height_error_m": float(hh_err),
                "gravity_m_s2": g, "neutral_temperature_k": float(t),
                "neutral_temperature_error_k": float(t * hh_err / hh) if hh > 0 else nan})
    return res


# ------------------------------------------------------------------------------- TEC
def _ionosphere_base_index(n_smooth, i_peak):
    below = np.flatnonzero(n_smooth[: i_peak + 1] <= 0)
    return int(below[-1]) + 1 if below.size else 0


def vertical_tec(altitude_m: ArrayLike, ne_m3: ArrayLike,
                 min_altitude_m: float | None = None) -> float:
    """Vertical total electron content ``int N dh`` [m^-2] (trapezoid rule).

    Parameters
    ----------
    altitude_m, ne_m3 : array_like
        The profile [m], [m^-3].
    min_altitude_m : float, optional
        Lower integration limit [m]; default: the whole profile.
    """
    h = np.asarray(altitude_m, dtype=float)
    n = np.asarray(ne_m3, dtype=float)
    order = np.argsort(h)
    h, n = h[order], n[order]
    if min_altitude_m is not None:
        keep = h >= min_altitude_m
        h, n = h[keep], n[keep]
    return float(np.trapezoid(n, h)) if h.size > 1 else 0.0


def slant_tec(altitude_m, ne_m3, impact_parameter_m, planet_radius_m=MARS_MEAN_RADIUS_M):
    """Slant TEC along straight rays through a spherically symmetric profile [m^-2].

    .. math:: \\mathrm{STEC}(a) = 2 \\int_a^{r_{top}} N(r) \\frac{r\\,dr}{\\sqrt{r^2 - a^2}}

    With ``N = A + B r`` on each segment the integral is exact:
    ``int (A + B r) r / q dr = A q + (B/2) [r q + a^2 ln(r + q)]``, ``q = sqrt(r^2 - a^2)``.
    The profile is taken as zero above its top level.

    Parameters
    ----------
    altitude_m, ne_m3 : array_like
        The profile [m], [m^-3].
    impact_parameter_m : float or array_like
        Ray impact parameter(s) = tangent radius [m] (not altitude).
    planet_radius_m : float
        Radius the altitudes refer to [m] (3389.5 km sphere).
    """
    h = np.asarray(altitude_m, dtype=float)
    order = np.argsort(h)
    r = planet_radius_m + h[order]
    n = np.asarray(ne_m3, dtype=float)[order]
    a_all = np.atleast_1d(np.asarray(impact_parameter_m, dtype=float))
    out = np.empty(a_all.shape)
    for idx, a in enumerate(a_all):
        if not r[0] <= a < r[-1]:
            out[idx] = np.nan
            continue
        j = int(np.searchsorted(r, a, side="right"))
        na = np.interp(a, r, n)
        rr = np.concatenate([[a], r[j:]])
        nn = np.concatenate([[na], n[j:]])
        b = np.diff(nn) / np.diff(rr)
        aa = nn[:-1] - b * rr[:-1]
        q = np.sqrt(np.maximum(rr**2 - a * a, 0.0))

        def prim(k, coef_a, coef_b):
            return coef_a * q[k] + 0.5 * coef_b * (rr[k] * q[k] + a * a * np.log(rr[k] + q[k]))

        k = np.arange(len(rr) - 1)
        out[idx] = 2.0 * float(np.sum(prim(k + 1, aa, b) - prim(k, aa, b)))
    return out if np.ndim(impact_parameter_m) else float(out[0])


def topside_scale_height(altitude_m, ne_m3, ne_err_m3=None, peak_altitude_m=None,
                         offset_m=TOPSIDE_OFFSET_M, span_m=TOPSIDE_SPAN_M):
    """Topside plasma scale height from ``ln N = c - h / H_top`` above the M2 peak [m].

    Fitted from ``h_m + offset_m`` to ``h_m + offset_m + span_m``, stopping where ``N``
    falls below 5 times its noise; weights ``N / sigma`` (the error of ``ln N``).

    Returns
    -------
    (float, float)
        ``H_top`` and its 1-sigma error [m] (covariance scaled by the residuals); NaN if
        fewer than 4 usable levels.
    """
    h, n, e = _clean(altitude_m, ne_m3, ne_err_m3)
    sigma = np.full_like(n, max(estimate_noise(n), 1e-6 * n.max())) if e is None else e
    hp = float(h[np.argmax(n)]) if peak_altitude_m is None else float(peak_altitude_m)
    sel = (h >= hp + offset_m) & (h <= hp + offset_m + span_m)
    low = np.flatnonzero(sel & (n < 5.0 * sigma))
    if low.size:
        sel &= h < h[low[0]]
    if sel.sum() < 4:
        return float("nan"), float("nan")
    x, y, w = h[sel], np.log(n[sel]), n[sel] / sigma[sel]
    coef, cov = np.polyfit(x - x.mean(), y, 1, w=w, cov="unscaled")
    resid = (y - np.polyval(coef, x - x.mean())) * w
    dof = max(x.size - 2, 1)
    cov = cov * max(float(resid @ resid) / dof, 1e-300)
    slope, slope_err = coef[0], math.sqrt(cov[0, 0])
    if slope >= 0:
        return float("nan"), float("nan")
    return float(-1.0 / slope), float(slope_err / slope**2)


# --------------------------------------------------------------------------- top level
def profile_science(altitude_m: ArrayLike, ne_m3: ArrayLike,
                    ne_err_m3: ArrayLike | None = None,
                    impact_parameter_m: ArrayLike | None = None,
                    temperature_model: str = "auto") -> dict:
    """All single-profile science quantities in one dict (SI units, suffixes in the keys).

    Parameters
    ----------
    altitude_m : array_like
        Altitude above the 3389.5 km sphere [m].
    ne_m3 : array_like
        Electron density [m^-3].
    ne_err_m3 : array_like or float, optional
        1-sigma density noise [m^-3]; estimated from the profile if omitted.
    impact_parameter_m : float, optional
        Impact parameter of the ray for ``slant_tec_m2`` [m]; default: the ray tangent at
        the M2 peak.
    temperature_model : {"auto", "parrott2025", "two_layer"}
        See :func:`neutral_temperature`; ``auto`` uses the two-layer fit when an M1 peak or
        shoulder was found.

    Returns
    -------
    dict
        Keys of :func:`find_layers` and :func:`neutral_temperature`, plus ``tec_m2``
        (vertical TEC over the ionosphere), ``tec_error_m2`` (noise propagated through the
        trapezoid rule), ``tec_min_altitude_m``, ``slant_tec_m2``,
        ``slant_tec_impact_parameter_m``, ``topside_scale_height_m`` and
        ``topside_scale_height_error_m``.
    """
    h, n, e = _clean(altitude_m, ne_m3, ne_err_m3)
    out = find_layers(h, n, e)
    hm2 = out["m2_peak_altitude_m"]
    m1 = out["m1_peak_altitude_m"] if out["m1_class"] != "none" else None
    out.update(neutral_temperature(h, n, e, peak_altitude_m=hm2, model=temperature_model,
                                   m1_altitude_m=m1))
    sm = smooth_profile(h, n, e)
    base = _ionosphere_base_index(sm["smoothed_m3"], int(np.argmax(sm["smoothed_m3"])))
    hb = h[base:]
    out["tec_min_altitude_m"] = float(hb[0])
    out["tec_m2"] = vertical_tec(hb, n[base:])
    wts = np.gradient(hb) if hb.size > 1 else np.zeros(1)  # trapezoid weights
    out["tec_error_m2"] = float(np.sqrt(np.sum((wts * sm["sigma_m3"][base:]) ** 2)))
    a = MARS_MEAN_RADIUS_M + hm2 if impact_parameter_m is None else float(impact_parameter_m)
    out["slant_tec_impact_parameter_m"] = a
    out["slant_tec_m2"] = slant_tec(hb, n[base:], a)
    ht, ht_err = topside_scale_height(h, n, e, peak_altitude_m=hm2)
    out["topside_scale_height_m"], out["topside_scale_height_error_m"] = ht, ht_err
    return out


#: units and long names of the scalar results, for the Dataset attributes
_VARIABLES = {
    "m2_peak_altitude": ("m2_peak_altitude_m", "m", "M2 peak altitude"),
    "m2_peak_altitude_error": ("m2_peak_altitude_error_m", "m", "M2 peak altitude 1-sigma error"),
    "m2_peak_density": ("m2_peak_density_m3", "m-3", "M2 peak electron density"),
    "m2_peak_density_error": ("m2_peak_density_error_m3", "m-3",
                              "M2 peak electron density 1-sigma error"),
    "m1_peak_altitude": ("m1_peak_altitude_m", "m", "M1 peak (or shoulder) altitude"),
    "m1_peak_altitude_error": ("m1_peak_altitude_error_m", "m",
                               "M1 altitude uncertainty (1-sigma for a peak; distance between "
                               "maxima or shoulder width for class medium)"),
    "m1_peak_density": ("m1_peak_density_m3", "m-3", "M1 peak (or shoulder) electron density"),
    "m1_peak_density_error": ("m1_peak_density_error_m3", "m-3", "M1 density uncertainty"),
    "scale_height": ("scale_height_m", "m", "Chapman scale height of the M2 layer"),
    "scale_height_error": ("scale_height_error_m", "m", "Chapman scale height 1-sigma error"),
    "neutral_temperature": ("neutral_temperature_k", "K",
                            "neutral temperature near the M2 peak (Chapman fit)"),
    "neutral_temperature_error": ("neutral_temperature_error_k", "K",
                                  "neutral temperature 1-sigma error"),
    "tec": ("tec_m2", "m-2", "vertical total electron content"),
    "tec_error": ("tec_error_m2", "m-2", "vertical TEC 1-sigma noise error"),
    "slant_tec": ("slant_tec_m2", "m-2", "slant TEC along the straight ray"),
    "slant_tec_impact_parameter": ("slant_tec_impact_parameter_m", "m",
                                   "impact parameter of the slant TEC ray"),
    "topside_scale_height": ("topside_scale_height_m", "m", "topside plasma scale height"),
    "topside_scale_height_error": ("topside_scale_height_error_m", "m",
                                   "topside plasma scale height 1-sigma error"),
    "profile_noise": ("noise_m3", "m-3", "electron density noise used by the analysis"),
    "smoothing_width": ("smoothing_width_m", "m", "local-quadratic smoothing kernel width"),
}


def add_profile_science(ds: xr.Dataset, impact_parameter_m=None) -> xr.Dataset:
    """Return a copy of a profile Dataset with the :func:`profile_science` results added.

    The Dataset must hold ``altitude`` [m] and ``electron_density`` [m^-3] (and may hold
    ``electron_density_error`` [m^-3]). Scalars are added as variables with ``units`` and
    ``long_name``; the M1 class goes to the attribute ``m1_class`` (and ``m1_kind``).
    """
    for name in ("altitude", "electron_density"):
        if name not in ds.variables:
            raise RoharnessError(
                f"the profile Dataset has no variable '{name}'; expected 'altitude' [m] and "
                "'electron_density' [m^-3]."
            )
    err = ds["electron_density_error"].values if "electron_density_error" in ds else None
    res = profile_science(ds["altitude"].values, ds["electron_density"].values, err,
                          impact_parameter_m=impact_parameter_m)
    out = ds.copy()
    for var, (key, units, long_name) in _VARIABLES.items():
        out[var] = xr.DataArray(float(res[key]), attrs={"units": units, "long_name": long_name})
    out.attrs["m1_class"] = res["m1_class"]
    out.attrs["m1_kind"] = res["m1_kind"]
    return out
