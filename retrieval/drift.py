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
on trial corrections.

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
from scipy.optimize import brentq, minimize_scalar

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


def _with_residual(obs, residual):
    out = obs.copy()
    out["frequency_residual"] = ("time", np.asarray(residual, float),
                                 dict(obs["frequency_residual"].attrs))
    return out


def _mean_ne(obs, residual, band_m):
    prof = invert_observation(_with_residual(obs, residual), tangent_geometry=False)
    alt = prof["altitude"].values
    sel = (alt >= band_m[0]) & (alt <= band_m[1])
    if not sel.any():
        raise RoharnessError(
            f"the profile has no level in {band_m[0] / 1e3:g}-{band_m[1] / 1e3:g} km, needed "
            "by the N_e-based drift correction; extend the observation downward")
    return float(np.mean(prof["electron_density"].values[sel]))


def correct_drift(obs: xr.Dataset, model: str = "parrott2025", *,
                  threshold_altitude_m: float = 230e3, max_order: int = 3,
                  transition_m=None, max_offset_hz: float = 0.5) -> xr.Dataset:
    """Level 4 -> level 5: remove the oscillator drift from ``frequency_residual``.

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

    Returns
    -------
    xarray.Dataset
        A copy with the corrected ``frequency_residual`` (level 5), ``drift_correction``
        [Hz] (what was subtracted), attrs ``drift_model``, ``drift_order``,
        ``drift_parameter`` (withers2020 slope [Hz/s] / parrott2025 offset [Hz]).
    """
    if model not in MODELS:
        raise ValueError(f"unknown drift-correction model {model!r}; known: {list(MODELS)}")
    t = np.asarray(obs["time"].values, float)
    r = np.asarray(obs["frequency_residual"].values, float)
    corr = np.zeros_like(r)
    order, param = -1, 0.0
    if model != "none":
        alt = tangent_altitude(obs)
        corr, order = baseline_poly_fit(t, r, alt, threshold_altitude_m, max_order)
        below = np.flatnonzero(alt < threshold_altitude_m)
        if not below.size:
            raise RoharnessError("no sample lies below the drift-correction threshold "
                                 f"{threshold_altitude_m / 1e3:g} km")
        # time where the ray crosses the threshold (first sample below it, in time order)
        t_thr = t[below[0]] if alt[0] >= alt[-1] else t[below[-1]]
        sgn = 1.0 if alt[0] >= alt[-1] else -1.0  # ingress: time runs downward
        shape = None
        if model == "withers2020":
            band = transition_m or (70e3, 90e3)
            shape = np.maximum(sgn * (t - t_thr), 0.0)  # ramp [s]
        elif model == "parrott2025":
            band = transition_m or (70e3, 80e3)
            shape = (sgn * (t - t_thr) >= 0).astype(float)  # step [1]
        if shape is not None:
            def g(p):
                return _mean_ne(obs, r - corr - p * shape, band)
            if model == "withers2020":
                # linear in p to first order: bracket from two trial inversions
                g0, g1 = g(0.0), g(1e-4)
                p = -g0 * 1e-4 / (g1 - g0) if g1 != g0 else 0.0
                lo, hi = p - max(abs(p), 1e-4), p + max(abs(p), 1e-4)
                try:
                    if g(lo) * g(hi) < 0:
                        p = brentq(g, lo, hi, xtol=1e-9)
                except RoharnessError:
                    pass
            else:
                res = minimize_scalar(lambda p: g(p) ** 2, bounds=(-max_offset_hz,
                                                                   max_offset_hz),
                                      method="bounded", options={"xatol": 1e-4})
                p = float(np.clip(res.x, -max_offset_hz, max_offset_hz))
            corr = corr + p * shape
            param = float(p)
    out = _with_residual(obs, r - corr)
    out["drift_correction"] = ("time", corr, {"units": "Hz",
                                              "long_name": "drift correction subtracted from "
                                              "the level-4 residual"})
    out.attrs.update(drift_model=model, drift_order=order, drift_parameter=param,
                     drift_threshold_altitude_m=float(threshold_altitude_m),
                     data_level="5: drift-corrected residual Doppler and SPICE state vectors")
    return out
