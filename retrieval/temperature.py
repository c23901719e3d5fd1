"""Neutral temperature near the M2 peak from a Chapman fit (Parrott et al. 2025 [1]_).

Step 5 of the pipeline of :func:`retrieval.profile.profile_science` (see the notes of
:mod:`retrieval.profile`): fit of a Chapman layer [2]_

.. math:: N(h) = N_m \\exp\\{\\tfrac12 [1 - z - e^{-z}]\\},\\quad z = (h - h_m)/H

over ``h_m - 20 km .. h_m + 50 km``; ``T_n = H g m_{CO2} / k_B`` with
``g = G M / (R + h_m)^2``. Uncertainty from the fit covariance scaled by the residual
``chi^2`` (so model misfit widens it).

An M1 layer below the window biases that one-layer fit (its flank lifts the window's
bottom edge: +14 to +23 K measured on noiseless round trips when M1 is merged into the M2
bottomside and not detected, issue 14). The ``auto`` model of :func:`neutral_temperature`
therefore fits M2 + M1 together: at the detected M1 when there is one, else with the M1
free below M2 and kept only when the data support it (F-test [3]_ [4]_, bounded amplitude
and position).

References
----------
.. [1] Parrott, J. et al. (2025), Ionospheric analysis with Martian mutual radio occultation,
   J. Geophys. Res. Planets 130, doi:10.1029/2024JE008854 (appendix: T_n from the M2 layer).
.. [2] Chapman, S. (1931), The absorption and ionising effect of monochromatic radiation
   in an atmosphere on a rotating earth, Proc. Phys. Soc. 43, 483,
   doi:10.1088/0959-5309/43/5/302.
.. [3] Bevington, P. R. and Robinson, D. K. (2003), Data Reduction and Error Analysis for
   the Physical Sciences, 3rd ed., McGraw-Hill, ISBN 0-07-247227-8, sect. 11.4 (F test
   for an additional term).
.. [4] Protassov, R. et al. (2002), Statistics, handle with care: detecting multiple model
   components with the likelihood ratio test, Astrophys. J. 571, 545,
   doi:10.1086/339856 (the null sits on the boundary, amplitude 0: the F distribution is
   then approximate; hence the strict 1e-3 threshold and the checks on the bounds).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import f as f_dist

from retrieval.constants import CO2_MASS_KG, MARS_GM_M3_S2, MARS_MEAN_RADIUS_M
from retrieval.profile_smoothing import _clean

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: Chapman fit window around the M2 peak [m] (Parrott et al. 2025).
CHAPMAN_WINDOW_M = (-20e3, 50e3)


# ----------------------------------------------------------------------- temperature
def gravity_m_s2(altitude_m):
    """Mars gravitational acceleration g = G M / (R + h)^2 [m s^-2] (erratum-corrected)."""
    return MARS_GM_M3_S2 / (MARS_MEAN_RADIUS_M + np.asarray(altitude_m, dtype=float)) ** 2


def chapman_profile(altitude_m, peak_density_m3, peak_altitude_m, scale_height_m):
    """Chapman layer written with its actual peak: N_m exp{1/2 [1 - z - exp(-z)]} [m^-3]."""
    z = (np.asarray(altitude_m, dtype=float) - peak_altitude_m) / scale_height_m
    return peak_density_m3 * np.exp(0.5 * (1.0 - z - np.exp(-z)))


TEMPERATURE_MODELS = ("parrott2025", "two_layer", "auto")

#: Lower edge of the extended (two-layer) window: the density, going down from the M2 peak,
#: first falls below this fraction of the peak (the M1 search base of retrieval.profile).
EXTENDED_BASE_FRACTION = 0.05
#: The extended window reaches at most this far below the M2 peak [m] (M1 lies 15-35 km
#: below M2 in the published laws; 60 km covers its bottomside at H = 14 km).
EXTENDED_DEPTH_M = 60e3
#: A free M1 peak (no detected M1) lies at least this far below the M2 peak [m]: closer, a
#: second layer and a change of the M2 shape are not separable (an M1 pressed against
#: this bound is not kept). 8 km until a fresh CI draw (2026-12) put a true M1 (H = 8 km,
#: half the M2 density) 7.1 km below an H = 6 km M2 at SZA 77 deg (grazing incidence
#: lifts the broader layer more): the fit pressed the 8 km bound, the one-layer fallback
#: was +21.7 K off; with 5 km the same fit is interior (7.16 km) and 0.1 K off, while the
#: grazing-distorted lone layer that set the bound still presses it at 3-8 km (a 0.2-1.5 %
#: "M1": not kept).
FREE_M1_MIN_SEPARATION_M = 5e3
#: A free M1 is kept when the F-test of the two-layer against the one-layer fit (same
#: window, 3 extra parameters) rejects the one-layer model at this false-alarm probability.
FREE_M1_FALSE_ALARM = 1e-3
#: A free M1 is at most this fraction of the M2 peak density (the published laws give
#: 0.3-0.6); one that runs to this bound is not the weak lower layer the model stands for
#: (the fit is describing something else, e.g. a distorted profile) and is not kept.
FREE_M1_MAX_RATIO = 1.0
#: A free M1 below this fraction of the M2 density is not kept: on a noiseless lone layer
#: the two-layer fit "improves" on round-off with an M1 of ~1e-12; an M1 of 1 % biases
#: the one-layer fit by < 0.5 K (0.01 / 0.3 of the 11.6 K of a 30 % hidden M1).
FREE_M1_MIN_RATIO = 0.01
#: Starts of the free M1 peak: its distance below the M2 peak [m] (those inside the allowed
#: range). Dense at small distances: there the basin of the true minimum is narrow (an M1
#: 12 km below an M2 of the same 14 km scale height is reached only from above).
_FREE_M1_STARTS_M = (9e3, 13e3, 20e3, 30e3)


def _layer_jac(hh, hm0, a, b, c):
    """d/d(a, b, c) of chapman_profile(hh, a, hm0 + 1e4 b, 1e4 c), analytically:
    f = a exp(g), g = (1 - z - e^-z)/2, z = (hh - hm0 - 1e4 b)/(1e4 c)."""
    z = (hh - hm0 - b * 1e4) / (c * 1e4)
    e = np.exp(0.5 * (1.0 - z - np.exp(-z)))
    dg = 0.5 * (np.exp(-z) - 1.0) * a * e
    return np.stack([e, -dg / c, -dg * z / c], axis=-1)


def _chapman_fit_model(model, hm0, hs, ns, scale, m1_altitude_m, m1_separation_m=None):
    """The scaled Chapman model of :func:`neutral_temperature`, its analytic Jacobian,
    start values and bounds: ``(fmodel, fjac, p0, bounds)`` for ``curve_fit``.

    Parameters are scaled to O(1): N / scale, (h - hm0) / 10 km, H / 10 km. For the two-layer
    model the M1 peak is bounded to ``m1_altitude_m +- 15 km`` (and 3 km below M2); with
    ``m1_separation_m = (min, max)`` [m] (the free M1) its fifth parameter is instead the
    distance d of the M1 peak below the fitted M2 peak, bounded to that range, so M1 stays
    below M2 wherever the fit moves M2."""
    def fmodel1(hh, a, b, c):
        return chapman_profile(hh, a, hm0 + b * 1e4, c * 1e4)

    if model == "parrott2025":
        def fjac1(hh, a, b, c):
            return _layer_jac(hh, hm0, a, b, c)
        return fmodel1, fjac1, (1.0, 0.0, 1.0), ([0.0, -2.0, 0.05], [10.0, 2.0, 20.0])
    if m1_separation_m is not None:
        # free M1: parameters (a, b, c, r, d, c1), M1 amplitude r a (r <= 1: weaker than
        # M2), M1 peak d below the M2 peak (so M1 stays below M2 wherever the fit moves it)
        def fmodel(hh, a, b, c, r, d, c1):
            return fmodel1(hh, a, b, c) + chapman_profile(hh, r * a, hm0 + (b - d) * 1e4,
                                                           c1 * 1e4)

        def fjac(hh, a, b, c, r, d, c1):
            j2, j1 = _layer_jac(hh, hm0, a, b, c), _layer_jac(hh, hm0, r * a, b - d, c1)
            j2[:, 0] += r * j1[:, 0]
            j2[:, 1] += j1[:, 1]
            j1[:, 0] *= a
            j1[:, 1] *= -1.0
            return np.concatenate([j2, j1], -1)
        d0 = (hm0 - float(m1_altitude_m)) / 1e4
        i1 = int(np.argmin(np.abs(hs - float(m1_altitude_m))))
        p0 = (1.0, 0.0, 1.0, min(0.5, ns[i1] / scale), d0, 0.8)
        bounds = ([0.0, -2.0, 0.05, 0.0, m1_separation_m[0] / 1e4, 0.05],
                  [10.0, 2.0, 20.0, FREE_M1_MAX_RATIO, m1_separation_m[1] / 1e4, 20.0])
        p0 = tuple(np.clip(p0, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9))
        return fmodel, fjac, p0, bounds
    d1 = (float(m1_altitude_m) - hm0) / 1e4
    i1 = int(np.argmin(np.abs(hs - float(m1_altitude_m))))

    def fmodel(hh, a, b, c, a1, b1, c1):
        return fmodel1(hh, a, b, c) + chapman_profile(hh, a1, hm0 + b1 * 1e4, c1 * 1e4)

    def fjac(hh, a, b, c, a1, b1, c1):
        return np.concatenate([_layer_jac(hh, hm0, a, b, c),
                               _layer_jac(hh, hm0, a1, b1, c1)], -1)
    p0 = (1.0, 0.0, 1.0, min(0.5, ns[i1] / scale), d1, 0.8)
    bounds = ([0.0, -2.0, 0.05, 0.0, d1 - 1.5, 0.05],
              [10.0, 2.0, 20.0, 10.0, min(d1 + 1.5, -0.3), 20.0])
    p0 = tuple(np.clip(p0, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9))
    return fmodel, fjac, p0, bounds


def _fit(model, hp, hs, ns, es, m1_altitude_m=None, m1_separation_m=None, p0=None):
    """One bounded least-squares Chapman fit: ``(popt, pcov, rss, scale)`` (``rss`` the
    weighted residual sum of squares of the scaled densities) or ``None`` on failure."""
    scale = float(np.max(ns))
    fmodel, fjac, p0_default, bounds = _chapman_fit_model(model, hp, hs, ns, scale,
                                                          m1_altitude_m, m1_separation_m)
    if p0 is None:
        p0 = p0_default
    else:
        p0 = tuple(np.clip(p0, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9))
    sigma = None if es is None else es / scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            popt, pcov = curve_fit(fmodel, hs, ns / scale, p0=p0, sigma=sigma,
                                   absolute_sigma=False, bounds=bounds, max_nfev=4000,
                                   jac=fjac)
        except (RuntimeError, ValueError):
            return None
    r = fmodel(hs, *popt) - ns / scale
    if sigma is not None:
        r = r / sigma
    return popt, pcov, float(r @ r), scale


def _temperature(hp, popt):
    """T_n = H g(h_m) m_CO2 / k_B [K] of a fit's M2 layer (scaled parameters of
    :func:`_chapman_fit_model`)."""
    hm = hp + popt[1] * 1e4
    return float(popt[2] * 1e4 * float(gravity_m_s2(hm)) * CO2_MASS_KG / sc.k)


def _extended_bottom(h, n, hp, window_m):
    """Lowest altitude [m] of the extended window: where the density, going down from the
    M2 peak, first falls below EXTENDED_BASE_FRACTION of it (at most EXTENDED_DEPTH_M below
    the peak, never above the published window's bottom)."""
    ip = int(np.argmin(np.abs(h - hp)))
    low = np.flatnonzero(n[: ip + 1] < EXTENDED_BASE_FRACTION * n[ip])
    base = float(h[low[-1]]) if low.size else float(h[0])
    return min(max(base, hp - EXTENDED_DEPTH_M), hp + window_m[0])


def _free_two_layer(h, n, e, hp, window_m):
    """The two-layer fit with the M1 peak free below M2 (no M1 detected), over the extended
    window, and the F statistic's false-alarm probability against the one-layer fit on the
    same window: ``(fit, p_false_alarm, selection, plausible)`` or ``None``; ``plausible``
    is False when the M1 ends on a bound or is negligible (see below)."""
    bottom = _extended_bottom(h, n, hp, window_m)
    sel = (h >= bottom) & (h <= hp + window_m[1])
    if sel.sum() < 6 + 4:
        return None
    hs, ns = h[sel], n[sel]
    es = None if e is None else e[sel]
    one = _fit("parrott2025", hp, hs, ns, es)
    if one is None:
        return None
    lo, hi = FREE_M1_MIN_SEPARATION_M, hp - bottom
    if hi <= lo:
        return None
    a2, b2, c2 = one[0]
    best = None
    # multi-start: the M1 peak spread over its allowed range, each with the one-layer fit as
    # the M2 start and the density in excess of it as the M1 amplitude
    for sep in _FREE_M1_STARTS_M:
        if not lo <= sep <= hi:
            continue
        h1 = hp + b2 * 1e4 - sep
        excess = float(np.interp(h1, hs, ns)) / one[3] - float(
            chapman_profile(h1, a2, hp + b2 * 1e4, c2 * 1e4))
        # and, for a close M1 (merged with M2, where the one-layer fit is a poor start), a
        # second start with a strong M1 (half the M2) sharing the peak with M2
        starts = [(a2, b2, c2, max(excess, 0.05) / a2, sep / 1e4, 0.8 * c2)]
        if sep <= 15e3:
            starts.append((0.7 * a2, b2, c2, 0.5, sep / 1e4, c2))
        for p0 in starts:
            fit = _fit("two_layer", hp, hs, ns, es, m1_altitude_m=h1,
                       m1_separation_m=(lo, hi), p0=p0)
            if fit is not None and (best is None or fit[2] < best[2]):
                best = fit
    if best is None:
        return None
    # plausible: an M1 at either bound is not the weak lower layer the model stands for
    # (stronger than M2, or pressed against M2 and reshaping it: e.g. the altitude-dependent
    # grazing-incidence factor at high SZA, +3.5 K measured at SZA 76 deg without this
    # check), and one below FREE_M1_MIN_RATIO is no M1 at all (a lone layer: round-off)
    plausible = (FREE_M1_MIN_RATIO <= best[0][3] <= 0.99 * FREE_M1_MAX_RATIO
                 and best[0][4] >= 1.01 * lo / 1e4)
    dof = hs.size - 6
    rss1, rss2 = one[2], best[2]
    if not (rss2 > 0 and rss1 > rss2):
        return best, 1.0, sel, plausible
    f_stat = ((rss1 - rss2) / 3.0) / (rss2 / dof)
    return best, float(f_dist.sf(f_stat, 3, dof)), sel, plausible


def neutral_temperature(altitude_m: ArrayLike, ne_m3: ArrayLike,
                        ne_err_m3: ArrayLike | None = None,
                        peak_altitude_m: float | None = None,
                        window_m: tuple[float, float] = CHAPMAN_WINDOW_M,
                        model: str = "parrott2025", m1_altitude_m: float | None = None
                        ) -> dict:
    """Neutral temperature near the M2 peak from a Chapman fit (Parrott et al. 2025 [1]_).

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
    model : {"auto", "parrott2025", "two_layer"}
        ``parrott2025`` (default): one Chapman layer over the window (the published
        method). An M1 layer below the window still lifts its bottom edge: with M1 and M2 of
        equal scale height (the published laws) ~20-25 km apart the fit overestimates H by
        5-10 % (measured +14 to +23 K on noiseless round trips).
        ``two_layer``: M2 and M1 Chapman layers (each with its own scale height) fitted
        together; only the M2 scale height gives T_n. With ``m1_altitude_m`` (a detected M1)
        the window extends down to ``m1_altitude_m - 15 km`` and the M1 peak is bounded to
        within 15 km of it; without, the M1 peak is free between the window's bottom and
        5 km below the fitted M2 peak, its density at most that of M2, and the window
        extends down to where the density first falls below 5 % of the M2 peak (at most
        60 km below it).
        ``auto`` (what :func:`retrieval.profile.profile_science` uses): ``two_layer`` with
        the detected M1 when ``m1_altitude_m`` is given; else the free two-layer fit, kept
        when its M1 is plausible (1-99 % of the M2 density, not on the 5 km bound) and the
        F-test against a one-layer fit over the same window rejects the one-layer model at
        a false-alarm probability of 1e-3 [2]_ (an M1 the data support), otherwise
        ``parrott2025``.
    m1_altitude_m : float, optional
        Altitude of the M1 peak or shoulder [m] (from :func:`retrieval.profile.find_layers`).

    Returns
    -------
    dict
        ``chapman_peak_altitude_m``, ``chapman_peak_density_m3``, ``scale_height_m``,
        ``scale_height_error_m``, ``gravity_m_s2``, ``neutral_temperature_k``,
        ``neutral_temperature_error_k``, ``chapman_fit_points``, ``temperature_model``
        (the model used: ``parrott2025`` or ``two_layer``) and ``m1_false_alarm`` (the
        F-test false-alarm probability of the free M1; NaN when not tested).
        Errors come from the fit covariance scaled by the reduced chi^2 of the residuals.
        ``neutral_temperature_model_spread_k``: with ``auto``, when the F-test rejects the
        one-layer model but the free M1 is not plausible (on a bound: a merged M1 closer
        than 5 km, or a distorted layer), the free two-layer fit's T_n minus the reported
        one: a model-choice systematic the 1-sigma error does not hold (0 otherwise; NaN
        without a fit).

    Notes
    -----
    The F statistic ``F = [(RSS_1 - RSS_2) / 3] / [RSS_2 / (n - 6)]`` compares the residual
    sums of squares of the one-layer (3 parameters) and two-layer (6) fits over the same
    ``n`` levels; under the one-layer model with white noise it follows F(3, n - 6) [2]_
    (approximately: the null, M1 amplitude 0, is on the parameter boundary [3]_; and the
    noise of an Abel-inverted profile is correlated between levels, which makes the test
    more eager to keep an M1, i.e. to use the less biased, slightly noisier fit).
    On a noiseless profile any real M1 flank is overwhelmingly significant; a single
    Chapman layer gives the two-layer fit no M1 to find (its amplitude goes to zero and the
    M2 scale height equals the one-layer one), so the choice cannot bias it.

    References
    ----------
    .. [1] Parrott, J. et al. (2025), J. Geophys. Res. Planets 130,
       doi:10.1029/2024JE008854 (appendix: T_n from the M2 layer).
    .. [2] Bevington, P. R. and Robinson, D. K. (2003), Data Reduction and Error Analysis
       for the Physical Sciences, 3rd ed., McGraw-Hill, ISBN 0-07-247227-8, sect. 11.4.
    .. [3] Protassov, R. et al. (2002), Astrophys. J. 571, 545, doi:10.1086/339856.
    """
    if model not in TEMPERATURE_MODELS:
        raise ValueError(f"unknown temperature model {model!r}; known: {TEMPERATURE_MODELS}")
    h, n, e = _clean(altitude_m, ne_m3, ne_err_m3)
    hp = float(h[np.argmax(n)]) if peak_altitude_m is None else float(peak_altitude_m)
    have_m1 = m1_altitude_m is not None and bool(np.isfinite(m1_altitude_m))
    nan = float("nan")
    res = {"chapman_peak_altitude_m": nan, "chapman_peak_density_m3": nan,
           "scale_height_m": nan, "scale_height_error_m": nan, "gravity_m_s2": nan,
           "neutral_temperature_k": nan, "neutral_temperature_error_k": nan,
           "chapman_fit_points": 0, "temperature_model": model, "m1_false_alarm": nan,
           "neutral_temperature_model_spread_k": nan}
    fit = sel = None
    rejected = None  # a free two-layer fit the data prefer but whose M1 is not plausible
    if model in ("auto", "two_layer") and not have_m1:
        free = _free_two_layer(h, n, e, hp, window_m)
        if free is not None:
            res["m1_false_alarm"] = free[1]
            if model == "two_layer" or (free[3] and free[1] < FREE_M1_FALSE_ALARM):
                fit, sel, model = free[0], free[2], "two_layer"
            elif free[1] < FREE_M1_FALSE_ALARM:
                rejected = free[0][0]
        if model == "auto":  # no M1 supported: the published one-layer fit
            model = "parrott2025"
    elif model == "auto":
        model = "two_layer"
    if model == "parrott2025" or have_m1:
        bottom = hp + window_m[0]
        if model == "two_layer":
            bottom = min(bottom, float(m1_altitude_m) - 15e3)
        sel = (h >= bottom) & (h <= hp + window_m[1])
        npar = 3 if model == "parrott2025" else 6
        if sel.sum() >= npar + 2:
            fit = _fit(model, hp, h[sel], n[sel], None if e is None else e[sel],
                       m1_altitude_m=m1_altitude_m)
    res["temperature_model"] = model
    if sel is not None:
        res["chapman_fit_points"] = int(sel.sum())
    if fit is None:
        return res
    popt, pcov, _, scale = fit
    perr = np.sqrt(np.clip(np.diag(pcov), 0.0, np.inf))
    hm = hp + popt[1] * 1e4
    hh, hh_err = popt[2] * 1e4, perr[2] * 1e4
    g = float(gravity_m_s2(hm))
    t = _temperature(hp, popt)
    spread = 0.0
    if rejected is not None:  # the one-layer model is rejected, yet no M1 is plausible
        spread = _temperature(hp, rejected) - t
    res["neutral_temperature_model_spread_k"] = float(spread)
    res.update({"chapman_peak_altitude_m": float(hm),
                "chapman_peak_density_m3": float(popt[0] * scale),
                "scale_height_m": float(hh), "scale_height_error_m": float(hh_err),
                "gravity_m_s2": g, "neutral_temperature_k": float(t),
                "neutral_temperature_error_k": float(t * hh_err / hh) if hh > 0 else nan})
    return res
