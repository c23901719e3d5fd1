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

Why the Monte Carlo comes out BELOW Withers' estimate for white noise sampled finely.
Withers' estimate maps one frequency error into a refractivity error as if the error were
coherent over a scale height; it does not depend on the sample rate. White noise
independent between samples spaced :math:`\Delta a = |V|\,\Delta t` in impact parameter
is averaged by the Abel integral
:math:`\nu(r) = \pi^{-1}\int_r^\infty \alpha(a)\,da/\sqrt{a^2 - r^2}`, with
:math:`\sigma_\alpha = c\,\sigma_f/(f |V|)` (from :math:`\Delta f = (f/c)\,\alpha\,
\dot a`, weak refraction). Summing the kernel's squared weights,
:math:`\sum_j \Delta a^2/(a_j^2 - r^2) \approx (\Delta a/2R)(\ln N + \gamma + O(1))`
for N samples above r, gives
:math:`\sigma_\nu \approx \sigma_\alpha\sqrt{\Delta a\,(\ln N + \gamma + O(1))/
(2\pi^2 R)}`, i.e. the ratio to Withers

.. math:: \frac{\sigma_{MC}}{\sigma_{Withers}} \approx
          \sqrt{\frac{\Delta a\,(\ln N + \gamma + O(1))}{\pi H}}

(0.2-0.3 for 0.4-0.6 km sample spacing, H = 20 km, N ~ 400; Withers' assumption holds for
a vertical resolution of ~ pi H / ln N, i.e. data averaged over several km).
:func:`abel_white_noise_sigma_ne` does this propagation exactly for the observation's
samples (piecewise-linear alpha between samples, integrated exactly against the kernel):
the expected Monte Carlo result for white noise.

API
---
``withers_sigma_ne(sigma_f_hz, freq_hz, vertical_speed_m_s, scale_height_m, radius_m)``
``tangent_vertical_speed(obs)``: per-sample tangent altitude [m], radius [m] and V [m/s]
``thermal_sigma_ne_profile(obs, sigma_f_hz, scale_height_m)``: the estimate per sample
``abel_white_noise_sigma_ne(obs, sigma_f_hz)``: white noise propagated through the Abel
integral at the observation's sampling

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


def _one_way_sigma_f(obs: xr.Dataset, sigma_f_hz: float) -> float:
    """Frequency noise of the one-way downlink: a two-way residual's noise / (1 + k^2)
    (the plasma residual scales by 1 + k^2, SCIENCE.md); one-way unchanged."""
    sig = float(sigma_f_hz)
    if "frequency_residual_two_way" in obs.variables:
        k = float(obs.attrs.get("turnaround_ratio", TURNAROUND_X))
        sig = sig / (1.0 + k * k)
    return sig


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
    sig = _one_way_sigma_f(obs, sigma_f_hz)
    r = (geo["tangent_radius"].values if radius == "tangent"
         else float(obs.attrs.get("reference_radius_m", MARS_MEAN_RADIUS_M)))
    s_ne = withers_sigma_ne(sig, f, geo["vertical_speed"].values, scale_height_m, r)
    out = geo.assign(sigma_ne=("time", s_ne, {"units": "m-3", "long_name":
                                              "Withers (2010) thermal-noise N_e uncertainty"}))
    out.attrs.update(sigma_f_hz=sig, frequency_hz=f, scale_height_m=float(scale_height_m),
                     radius=radius)
    return out


def abel_white_noise_sigma_ne(obs: xr.Dataset, sigma_f_hz: float) -> xr.Dataset:
    r"""White frequency noise propagated through the Abel integral, per sample [m^-3].

    Per sample j: :math:`\sigma_{\alpha,j} = c\,\sigma_f / (f\,|V_j|)` (weak refraction,
    :math:`\Delta f = (f/c)\,\alpha\,\dot a`), impact parameter :math:`a_j` = the
    straight ray's tangent radius. With alpha piecewise linear between samples, the
    inverse Abel transform at :math:`r = a_i` is a weighted sum
    :math:`\nu_i = \pi^{-1} \sum_j W_{ij}\alpha_j`, the weights integrated exactly
    (:math:`\int da/\sqrt{a^2 - r^2} = \operatorname{arccosh}(a/r)`,
    :math:`\int a\,da/\sqrt{a^2 - r^2} = \sqrt{a^2 - r^2}`), so for independent noise

    .. math:: \sigma_{N_e, i} = \frac{f^2}{K}\,\frac{1}{\pi}
              \sqrt{\sum_j W_{ij}^2\,\sigma_{\alpha, j}^2},\quad
              K = \frac{e^2}{8\pi^2\varepsilon_0 m_e}.

    The profile is taken as ending at the highest sample (alpha = 0 above it).

    Parameters
    ----------
    obs : xarray.Dataset
        Observation (RO contract).
    sigma_f_hz : float
        Frequency noise of the residual channel [Hz] (two-way: mapped to the one-way
        downlink by 1 / (1 + k^2), as in :func:`thermal_sigma_ne_profile`).

    Returns
    -------
    xarray.Dataset
        ``tangent_altitude`` [m], ``vertical_speed`` [m/s], ``sigma_ne`` [m^-3] on ``time``.
    """
    geo = tangent_vertical_speed(obs)
    f = float(obs.attrs["frequency_hz"])
    sig = _one_way_sigma_f(obs, sigma_f_hz)
    a_all = geo["tangent_radius"].values
    v_all = geo["vertical_speed"].values
    order = np.argsort(a_all)
    a = a_all[order]
    if np.any(np.diff(a) <= 0):
        raise RoharnessError("Abel noise estimate: tangent radii must be strictly monotonic")
    sig_alpha = sc.c * sig / (f * np.abs(v_all[order]))
    w = abel_weights(a)
    sigma_nu = np.sqrt((w**2) @ sig_alpha**2) / np.pi
    k_plasma = sc.e**2 / (8.0 * np.pi**2 * sc.epsilon_0 * sc.m_e)
    out = np.empty(a.size)
    out[order] = sigma_nu * f**2 / k_plasma
    res = geo.assign(sigma_ne=("time", out, {
        "units": "m-3", "long_name": "white frequency noise through the Abel integral"}))
    res.attrs.update(sigma_f_hz=sig, frequency_hz=f)
    return res


def abel_weights(impact_m) -> np.ndarray:
    r"""Weights of the inverse Abel integral of a piecewise-linear bending angle.

    For nodes :math:`a_0 < a_1 < ... < a_{n-1}` and alpha linear between them (zero above
    the last), :math:`\int_{a_i}^{a_{n-1}} \alpha(a)\,da/\sqrt{a^2 - a_i^2} =
    \sum_j W_{ij}\alpha_j` exactly, with
    :math:`\int da/\sqrt{a^2 - r^2} = \operatorname{arccosh}(a/r)` and
    :math:`\int a\,da/\sqrt{a^2 - r^2} = \sqrt{a^2 - r^2}`.

    Parameters
    ----------
    impact_m : array_like (n,)
        Strictly increasing impact parameters [m].

    Returns
    -------
    ndarray (n, n)
        Upper-triangular W [1].
    """
    a = np.asarray(impact_m, dtype=float)
    if a.ndim != 1 or a.size < 2 or np.any(np.diff(a) <= 0):
        raise RoharnessError("Abel weights: impact parameters must increase strictly")
    r = a[:, None]
    aa = np.maximum(a[None, :], r)
    big_a = np.arccosh(aa / r)                         # (levels, nodes)
    big_b = np.sqrt(np.maximum((aa - r) * (aa + r), 0.0))
    w = np.zeros((a.size, a.size))
    da = np.diff(a)
    d_a = np.diff(big_a, axis=1)
    d_b = np.diff(big_b, axis=1)
    # interval [a_j, a_j+1]: alpha_j (a_j+1 - a)/da + alpha_j+1 (a - a_j)/da
    w[:, :-1] += (a[None, 1:] * d_a - d_b) / da[None, :]
    w[:, 1:] += (d_b - a[None, :-1] * d_a) / da[None, :]
    return np.triu(w)  # intervals below a level contribute 0 (their differences vanish)
