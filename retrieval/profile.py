"""Science from one electron density profile: M2/M1 peaks, neutral temperature, TEC.

Everything here works on a profile ``N_e(h)`` given as arrays ``altitude_m`` (above the
3389.5 km reference sphere) and ``ne_m3``, however it was obtained (a synthetic round trip,
MAVEN ROSE, MEX-TGO mutual RO). No hand tuning: every scale is derived from the profile.
Steps 1-2 of the pipeline below live in :mod:`retrieval.profile_smoothing`, step 5 in
:mod:`retrieval.temperature`; their names are re-exported here.

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
   ``chi^2`` (so model misfit widens it). With an M1 (step 4) the M2 and M1 layers are
   fitted together; with none detected, a free M1 below M2 is tried and kept when the data
   support it (F-test), since an M1 merged into the M2 bottomside biases the one-layer fit
   (``model="auto"`` of :func:`neutral_temperature`).
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
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy.interpolate import CubicSpline

from retrieval.constants import MARS_GM_M3_S2, MARS_MEAN_RADIUS_M, G
from retrieval.errors import RoharnessError
from retrieval.profile_smoothing import _clean as _clean
from retrieval.profile_smoothing import _local_quadratic as _local_quadratic
from retrieval.profile_smoothing import _parabola_vertex as _parabola_vertex
from retrieval.profile_smoothing import estimate_noise as estimate_noise
from retrieval.profile_smoothing import smooth_profile as smooth_profile
from retrieval.temperature import CHAPMAN_WINDOW_M as CHAPMAN_WINDOW_M
from retrieval.temperature import TEMPERATURE_MODELS as TEMPERATURE_MODELS
from retrieval.temperature import chapman_profile as chapman_profile
from retrieval.temperature import gravity_m_s2 as gravity_m_s2
from retrieval.temperature import neutral_temperature as neutral_temperature

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
#: Topside fit starts this far above the M2 peak [m] (above ~2 H the Chapman topside is
#: close to its exp(-z/2) asymptote; transport takes over higher still).
TOPSIDE_OFFSET_M = 30e3
#: Topside fit spans at most this altitude range [m].
TOPSIDE_SPAN_M = 100e3

M1_CLASSES = ("strong", "medium", "none")
#: Samples either side of the largest one that the spline of ln N through the M2 peak
#: uses on a profile that needs no smoothing (:func:`_log_spline_peak`).
PEAK_SPLINE_SAMPLES = 3


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
    return _find_layers(h, n, smooth_profile(h, n, e))


def _find_layers(h, n, sm):
    """:func:`find_layers` on a cleaned profile and its :func:`smooth_profile` result (so
    :func:`profile_science` smooths once)."""
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
    if sm.get("narrowest"):  # no smoothing warranted: the samples themselves locate M2
        h2, n2 = _log_spline_peak(h, n, h2, n2)
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


def _log_spline_peak(h, n, h0, n0):
    """M2 peak of a profile that needs no smoothing: the maximum of the not-a-knot cubic
    spline of ln N through the :data:`PEAK_SPLINE_SAMPLES` samples either side of the
    largest sample (within one step of it), or ``(h0, n0)`` if there is none.

    Near a Chapman peak ln N = ln N_m + (1 - z - e^-z)/2 is almost a parabola, so a spline
    of ln N follows the layer where a local quadratic in N (the smoothing's) cannot: on
    noiseless Chapman (+ M1) profiles, 400 draws, worst M2 altitude / density error at
    1-2 km steps 0.106 km / 1.6e-4 (local quadratic) -> 0.001 km / 6.5e-6, at 2-3 km
    0.201 km / 8.9e-4 -> 0.005 km / 2.8e-5, at 3-4 km 0.368 km / 2.2e-3 -> 0.027 km /
    2.3e-4 and at 4-5.3 km (0.5 Hz Earth links) 0.535 km / 3.8e-3 -> 0.153 km / 1.7e-3.
    """
    i = int(np.argmax(n))
    lo, hi = i - PEAK_SPLINE_SAMPLES, i + PEAK_SPLINE_SAMPLES + 1
    if lo < 0 or hi > n.size or abs(h[i] - h0) > h[i + 1] - h[i - 1] or np.any(n[lo:hi] <= 0):
        return h0, n0
    x = h[lo:hi] - h[i]
    spline = CubicSpline(x, np.log(n[lo:hi]))
    roots = spline.derivative().roots(extrapolate=False)
    roots = roots[(roots >= x[PEAK_SPLINE_SAMPLES - 1]) & (roots <= x[PEAK_SPLINE_SAMPLES + 1])]
    if roots.size == 0:
        return h0, n0
    r = float(roots[np.argmax(spline(roots))])
    return float(h[i] + r), float(np.exp(spline(r)))


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
        See :func:`neutral_temperature`; ``auto`` uses the two-layer fit at the M1 peak or
        shoulder when one was found, else a two-layer fit with the M1 free below M2 when
        the F-test supports it, else the published one-layer fit.

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
    sm = smooth_profile(h, n, e)
    out = _find_layers(h, n, sm)
    hm2 = out["m2_peak_altitude_m"]
    m1 = out["m1_peak_altitude_m"] if out["m1_class"] != "none" else None
    out.update(neutral_temperature(h, n, e, peak_altitude_m=hm2, model=temperature_model,
                                   m1_altitude_m=m1))
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
    "neutral_temperature_model_spread": (
        "neutral_temperature_model_spread_k", "K",
        "free two-layer minus reported neutral temperature when the data reject the "
        "one-layer fit but support no M1 (model-choice systematic)"),
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
    ``long_name``; the M1 class goes to the attribute ``m1_class`` (and ``m1_kind``), the
    Chapman model that gave the temperature to ``temperature_model``.
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
    out.attrs["temperature_model"] = res["temperature_model"]  # which Chapman fit gave T_n
    return out
