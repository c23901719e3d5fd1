"""Neutral temperature near the M2 peak from a Chapman fit (Parrott et al. 2025 [1]_).

Step 5 of the pipeline of :func:`retrieval.profile.profile_science` (see the notes of
:mod:`retrieval.profile`): fit of a Chapman layer [2]_

.. math:: N(h) = N_m \\exp\\{\\tfrac12 [1 - z - e^{-z}]\\},\\quad z = (h - h_m)/H

over ``h_m - 20 km .. h_m + 50 km``; ``T_n = H g m_{CO2} / k_B`` with
``g = G M / (R + h_m)^2``. Uncertainty from the fit covariance scaled by the residual
``chi^2`` (so model misfit widens it).

References
----------
.. [1] Parrott, J. et al. (2025), Ionospheric analysis with Martian mutual radio occultation,
   J. Geophys. Res. Planets 130, doi:10.1029/2024JE008854 (appendix: T_n from the M2 layer).
.. [2] Chapman, S. (1931), The absorption and ionising effect of monochromatic radiation
   in an atmosphere on a rotating earth, Proc. Phys. Soc. 43, 483,
   doi:10.1088/0959-5309/43/5/302.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
from scipy.optimize import OptimizeWarning, curve_fit

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


def _chapman_fit_model(model, hm0, hs, ns, scale, m1_altitude_m):
    """The scaled Chapman model of :func:`neutral_temperature`, its analytic Jacobian,
    start values and bounds: ``(fmodel, fjac, p0, bounds)`` for ``curve_fit``."""
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
    return fmodel, fjac, p0, bounds


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
    fmodel, fjac, p0, bounds = _chapman_fit_model(model, hm0, hs, ns, scale,
                                                  m1_altitude_m)
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
