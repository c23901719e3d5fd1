r"""Analytic cross-checks of the Monte Carlo error budget.

Thermal noise (Withers 2010 [1]_): white frequency noise of standard deviation
:math:`\sigma_f` on a carrier of frequency f maps into an electron-density uncertainty

.. math::

    \sigma_{N_e} = \frac{4\pi\,\sigma_f\, f\, c\, m_e\, \varepsilon_0}{V e^2}
                   \sqrt{\frac{2\pi H}{R}}

with V the vertical speed of the ray's tangent point, H the scale height of the plasma and
R the radius of the tangent point (constants from :mod:`scipy.constants`). Since the
plasma refractivity constant is :math:`K = e^2/(8\pi^2\varepsilon_0 m_e)`, this is
:math:`\sigma_{N_e} = \sigma_f f c\,/\,(2\pi K V)\,\sqrt{2\pi H/R}`: the frequency noise
is a noise on the excess-path rate :math:`c\,\sigma_f/f`, a noise on the refractivity
through the vertical speed, and the factor sqrt(2 pi H / R) is the ratio of the scale
height to the ray's effective path length sqrt(2 pi R H) through the layer.
Assumptions (where the ratio Monte Carlo / estimate can be expected within 0.5-2): one
sample per scale-height crossing or more, white noise independent between samples, an
exponential layer of one scale height around the tangent point; the estimate ignores the
inversion's integration of the noise from the top of the profile downward (which grows
the error with depth) and its smoothing over several samples.

For the alpha-Chapman layers of :mod:`synth.ionosphere` with neutral scale height H_n,
the plasma scale height above the peak is 2 H_n (N ~ exp(-z/2)).

API
---
``withers_sigma_ne(sigma_f_hz, freq_hz, vertical_speed_m_s, scale_height_m, radius_m)``
``tangent_vertical_speed(obs)``: per-sample tangent altitude [m], radius [m] and V [m/s]
``thermal_sigma_ne_profile(obs, sigma_f_hz, scale_height_m)``: the estimate per sample

References
----------
.. [1] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured
   by radio occultation experiments, Adv. Space Res. 46, 58-73,
   doi:10.1016/j.asr.2010.03.004.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval.constants import MARS_MEAN_RADIUS_M, TURNAROUND_X
from retrieval.errors import RoharnessError


def withers_sigma_ne(sigma_f_hz, freq_hz, vertical_speed_m_s, scale_height_m, radius_m):
    r"""Thermal-noise electron-density uncertainty of Withers (2010) [m^-3].

    Parameters
    ----------
    sigma_f_hz : array_like
        Standard deviation of the frequency noise [Hz].
    freq_hz : array_like
        Carrier frequency f [Hz].
    vertical_speed_m_s : array_like
        Vertical speed of the ray's tangent point V [m/s] (its magnitude is used).
    scale_height_m : array_like
        Plasma scale height H [m].
    radius_m : array_like
        Radius R of the tangent point (or the planet) [m].

    Returns
    -------
    ndarray
        :math:`\sigma_{N_e} = 4\pi\sigma_f f c m_e \varepsilon_0 / (V e^2)
        \sqrt{2\pi H/R}` [m^-3], broadcast over the inputs.
    """
    v = np.abs(np.asarray(vertical_speed_m_s, dtype=float))
    h = np.asarray(scale_height_m, dtype=float)
    r = np.asarray(radius_m, dtype=float)
    if np.any(h <= 0) or np.any(r <= 0):
        raise RoharnessError("Withers estimate: scale height and radius must be positive")
    with np.errstate(divide="ignore"):
        return (4.0 * np.pi * np.asarray(sigma_f_hz, float) * np.asarray(freq_hz, float)
                * sc.c * sc.m_e * sc.epsilon_0 / (v * sc.e**2) * np.sqrt(2.0 * np.pi * h / r))


def tangent_vertical_speed(obs: xr.Dataset) -> xr.Dataset:
    r"""Tangent altitude and its rate of change per sample, from the straight-ray geometry.

    The closest distance of the line T -> R to Mars' centre is
    :math:`a_0 = \min_s |\vec r_T + s(\vec r_R - \vec r_T)|`; at the minimiser
    :math:`s^*` the derivative with respect to s vanishes, so (envelope theorem)

    .. math:: \frac{da_0}{dt} = \hat q\cdot[(1 - s^*)\,\vec v_T + s^*\,\vec v_R],

    with :math:`\hat q` the unit vector to the closest point.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation per the RO contract (``tx_position``, ``tx_velocity``, ``rx_position``,
        ``rx_velocity``; ``reference_radius_m`` attribute, default 3389.5 km).

    Returns
    -------
    xarray.Dataset
        ``tangent_altitude`` [m], ``tangent_radius`` [m], ``vertical_speed`` [m/s] (signed
        da0/dt: negative for ingress) on ``time``.
    """
    for k in ("tx_position", "tx_velocity", "rx_position", "rx_velocity"):
        if k not in obs.variables:
            raise RoharnessError(f"the observation lacks '{k}', required by the RO contract")
    r_t, v_t = obs["tx_position"].values, obs["tx_velocity"].values
    r_r, v_r = obs["rx_position"].values, obs["rx_velocity"].values
    d = r_r - r_t
    s = np.clip(-np.einsum("ij,ij->i", r_t, d) / np.einsum("ij,ij->i", d, d), 0.0, 1.0)
    q = r_t + s[:, None] * d
    a0 = np.linalg.norm(q, axis=1)
    rate = np.einsum("ij,ij->i", q / a0[:, None],
                     (1.0 - s)[:, None] * v_t + s[:, None] * v_r)
    ref = float(obs.attrs.get("reference_radius_m", MARS_MEAN_RADIUS_M))
    return xr.Dataset(
        {"tangent_altitude": ("time", a0 - ref, {"units": "m", "long_name":
                                                 "altitude of the straight ray's closest point"}),
         "tangent_radius": ("time", a0, {"units": "m", "long_name":
                                         "radius of the straight ray's closest point"}),
         "vertical_speed": ("time", rate, {"units": "m s-1", "long_name":
                                           "rate of change of the tangent radius"})},
        coords={"time": obs["time"]})


def thermal_sigma_ne_profile(obs: xr.Dataset, sigma_f_hz: float, scale_height_m: float,
                             radius="tangent") -> xr.Dataset:
    """Withers' thermal-noise estimate per sample of an observation.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation (RO contract).
    sigma_f_hz : float
        Frequency noise of the observation's residual channel [Hz]. For a two-way link this
        is the two-way noise; it maps to the one-way downlink as sigma_f / (1 + k^2)
        (the plasma residual scales by 1 + k^2), which is done here.
    scale_height_m : float
        Plasma scale height [m] (2 H_n for an alpha-Chapman topside).
    radius : {"tangent", "reference"}
        R = each sample's tangent radius, or the reference sphere radius.

    Returns
    -------
    xarray.Dataset
        ``tangent_altitude`` [m], ``vertical_speed`` [m/s], ``sigma_ne`` [m^-3] on ``time``;
        attrs ``sigma_f_hz`` (one-way equivalent), ``frequency_hz``, ``scale_height_m``.
    """
    if radius not in ("tangent", "reference"):
        raise ValueError(f"unknown radius {radius!r}; known: tangent, reference")
    geo = tangent_vertical_speed(obs)
    f = float(obs.attrs["frequency_hz"])
    sig = float(sigma_f_hz)
    if "frequency_residual_two_way" in obs.variables:
        k = float(obs.attrs.get("turnaround_ratio", TURNAROUND_X))
        sig = sig / (1.0 + k * k)
    r = (geo["tangent_radius"].values if radius == "tangent"
         else float(obs.attrs.get("reference_radius_m", MARS_MEAN_RADIUS_M)))
    s_ne = withers_sigma_ne(sig, f, geo["vertical_speed"].values, scale_height_m, r)
    out = geo.assign(sigma_ne=("time", s_ne, {"units": "m-3", "long_name":
                                              "Withers (2010) thermal-noise N_e uncertainty"}))
    out.attrs.update(sigma_f_hz=sig, frequency_hz=f, scale_height_m=float(scale_height_m),
                     radius=radius)
    return out
