"""Exact bent rays in a spherically symmetric atmosphere, and the residual Doppler they cause.

API
---
``bending_angle(impact_m, profile, tx_radius_m=None, rx_radius_m=None)``
    Bending angle alpha(a) [rad] of the ray with impact parameter a through a
    :class:`synth.refractivity.RefractivityProfile` (forward Abel integral, exact up to
    quadrature error ~1e-10 relative); the legs end at the given radii (default: the top of
    the profile, i.e. the full bending angle).
``solve_link(r_tx, v_tx, r_rx, v_rx, freq_hz, profile, time_s=None) -> xarray.Dataset``
    Per sample: the bent ray joining the transmitter and receiver positions, its impact
    parameter, bending angle, ray directions at both ends, the received frequency of the
    straight (vacuum) ray and the residual = bent - straight [Hz], with a status flag.
``weak_refraction_residual(r_tx, v_tx, r_rx, v_rx, freq_hz, profile, time_s=None)``
    The independent weak-refraction model: excess path L = int (n - 1) ds along the
    straight line, its analytic time derivative, and the residual Doppler from it.
``excess_path(r_tx, r_rx, profile)``
    L [m] alone (used to check the analytic time derivative by finite differences).
``solve_two_way(r_up_tx, v_up_tx, r_sc, v_sc, r_dn_rx, v_dn_rx, uplink_freq_hz,
profile_for_freq, turnaround=(880/749, 240/749), band=("X", "S"))``
    Two-way coherent link Earth -> spacecraft -> Earth with one or more coherent downlinks.

Modules
-------
This module keeps the weak-refraction model and re-exports the rest:
:mod:`synth.ray_geometry` (input checks, :data:`STATUS`, straight-line geometry),
:mod:`synth.ray_bending` (quadrature on shells, :func:`bending_angle`, :func:`tangent_radius`)
and :mod:`synth.ray_link` (the bent-ray solvers, :func:`solve_link`, :func:`solve_two_way`).

Conventions (validation/data_products.md)
-----------------------------------------
Positions and velocities are Mars-centred inertial, arrays (n, 3) [m, m/s]. The received
frequency is, to first order in v/c,

.. math:: f_R = f_T \\frac{1 - \\hat e_R \\cdot v_R / c}{1 - \\hat e_T \\cdot v_T / c}

with :math:`\\hat e_T, \\hat e_R` the propagation directions of the ray leaving T and
arriving at R (n = 1 at both spacecraft). The residual is f_R(bent) - f_R(straight).
alpha > 0 means bent toward the planet. The bent ray with impact parameter a closes the
geometry

.. math:: \\theta = \\arccos(a/r_T) + \\arccos(a/r_R) + \\alpha_T(a) + \\alpha_R(a)

where theta is the angle between r_T and r_R and alpha_T, alpha_R are the bending
accumulated on the two legs (tangent point -> each end); their sum is the contract's
alpha(a) whenever both ends are above the top of the profile. If an end lies inside the
tenuous topside (TGO at 400 km), its leg stops there (the truth ray); for a 10 km scale
height the difference from the full alpha(a) is < 1e-6 of the peak bending (measured
7e-7), far below the 1e-4 round-trip target.

Numerics
--------
* Forward Abel integral with x = n r and x = a cosh s:
  :math:`\\alpha_{leg}(a) = -a \\int_0^{s_{end}} \\frac{d\\ln n}{dx}(a\\cosh s)\\,ds`, no
  singularity; composite 8-point Gauss-Legendre on panels no wider than the profile's
  ``panel_m`` in x (0.4 of its thinnest scale height, at least 2 km: the integrand is
  self-similar in h / H, so the relative error, < 2e-13, does not depend on H), the panel
  count chosen per ray (so a ray's alpha does not depend on the rays computed with it);
  r(x) from x = n(r) r by Newton's method (|r dn/dr| << 1, no ducting on Mars).
* The ray is solved for delta = a - a0 (a0 = straight-line impact parameter), never for a:
  the arccos differences are written in the cancellation-free form
  :math:`\\arccos(a/r) - \\arccos(a_0/r) = \\operatorname{atan2}(-r^2 \\delta (2a_0 + \\delta) /
  (a_0 D + a D_0),\\ a a_0 + D D_0)`, D = sqrt(r^2 - a^2), so a receiver at 1e11 m costs
  no precision. The direction differences e - e0 are formed analytically
  (D - D0 = -delta (2 a0 + delta) / (D + D0)) and the residual is computed from them, never
  as a difference of two ~GHz frequencies.
* Root finding (vectorised): every 16th sample by a bracket from the vacuum Newton step and
  Illinois regula falsi (typically 6-12 evaluations of alpha); the others, coarse to fine,
  from the root of the closure with alpha interpolated between two solved neighbours
  (cubic Hermite in a, with d alpha/da), then Newton/secant steps on the exact closure to
  the same tolerance (typically 2-3 evaluations). Where the closure may have several roots
  (multipath), the bracketing solver's root is kept.

References
----------
.. [1] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), The neutral atmosphere of
   Venus as studied with the Mariner V radio occultation experiments, Astron. J. 76,
   123-140, doi:10.1086/111096 (Bouguer's rule, bending integral, geometry).
.. [2] Born, M. and Wolf, E. (1999), Principles of Optics, 7th ed., section 3.2 (Fermat,
   eikonal: grad of the optical path = n e).
.. [3] Krishnan, A. et al. (2023), Radio Sci. 58, e2023RS007784,
   doi:10.1029/2023RS007784 (two-way relation df_2way = k df_up + df_down).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

# re-exported so that ``from synth.raytrace import X`` keeps working (see "Modules" above);
# the private helpers the tests reach through this module are re-exported as "X as X"
from synth.ray_bending import _PANEL_M, _panel_groups, _shell_nodes, bending_angle, tangent_radius
from synth.ray_geometry import (
    C_M_S,
    STATUS,
    _dot,
    _kinematic,
    _line_geometry,
    _link_inputs,
    _norm,
    _vectors,
)
from synth.ray_link import _dalpha_fd as _dalpha_fd
from synth.ray_link import _solve_delta as _solve_delta
from synth.ray_link import _solve_warm as _solve_warm
from synth.ray_link import solve_link, solve_two_way

__all__ = [
    "C_M_S",
    "STATUS",
    "bending_angle",
    "excess_path",
    "solve_link",
    "solve_two_way",
    "tangent_radius",
    "weak_refraction_residual",
]


# --------------------------------------------------------------------------------------
# Weak-refraction model
# --------------------------------------------------------------------------------------
def _line_integrals(a0, u_tx, u_rx, profile, panel_m=_PANEL_M):
    """L = int_{u_T}^{u_R} nu(sqrt(a0^2 + u^2)) du and dL/da0, with u = a0 sinh(sigma)."""
    top = float(profile.top_radius_m)
    lo_end = np.minimum(np.abs(u_tx), np.abs(u_rx))
    hi_end = np.maximum(np.abs(u_tx), np.abs(u_rx))
    # heights above a0 (in r) of the ends, hypot(a0, u) - a0 without cancellation, capped
    # at the top of the profile
    cap = np.maximum(top - a0, 0.0)
    d_lo = np.minimum(lo_end**2 / (np.hypot(a0, lo_end) + a0), cap)
    d_hi = np.minimum(hi_end**2 / (np.hypot(a0, hi_end) + a0), cap)
    zero = np.zeros_like(a0)
    res = []
    for dlo, dhi in ((zero, d_lo), (d_lo, d_hi)):
        path = np.zeros(a0.size)
        slope = np.zeros(a0.size)
        live = np.flatnonzero(dhi > dlo)
        if live.size:
            for rows, p in _panel_groups(dhi[live] - dlo[live], panel_m):
                j = live[rows]
                r, w, _ = _shell_nodes(a0[j], dlo[j], dhi[j], panel_m, p)
                nu, dnu = profile.evaluate(r)
                path[j] = np.sum(nu * r * w, axis=1)        # du = r d sigma
                slope[j] = a0[j] * np.sum(dnu * w, axis=1)  # d/da0 nu = nu' a0 / r
        res.append((path, slope))
    (p_small, s_small), (p_extra, s_extra) = res
    small_is_tx = np.abs(u_tx) <= np.abs(u_rx)
    p_tx = np.where(small_is_tx, p_small, p_small + p_extra)
    p_rx = np.where(small_is_tx, p_small + p_extra, p_small)
    s_tx = np.where(small_is_tx, s_small, s_small + s_extra)
    s_rx = np.where(small_is_tx, s_small + s_extra, s_small)
    sg_t, sg_r = np.sign(u_tx), np.sign(u_rx)
    return sg_r * p_rx - sg_t * p_tx, sg_r * s_rx - sg_t * s_tx


def excess_path(r_tx, r_rx, profile):
    """Excess optical path along the straight line, L = int (n - 1) ds [m].

    Parameters
    ----------
    r_tx, r_rx : array_like (n, 3)
        End positions [m].
    profile : synth.refractivity.RefractivityProfile

    Returns
    -------
    ndarray (n,)
        L [m] (negative for plasma).
    """
    r_tx = _vectors("r_tx", r_tx)
    r_rx = _vectors("r_rx", r_rx, r_tx.shape[0])
    _, _, a0, _, u_tx, u_rx = _line_geometry(r_tx, r_rx)
    return _line_integrals(a0, u_tx, u_rx, profile)[0]


def weak_refraction_residual(r_tx, v_tx, r_rx, v_rx, freq_hz, profile, time_s=None):
    """Residual Doppler of the weak-refraction (straight-line) model, per sample.

    Parameters
    ----------
    r_tx, v_tx, r_rx, v_rx : array_like (n, 3)
        As in :func:`solve_link`.
    freq_hz : float
        Transmitted frequency [Hz].
    profile : synth.refractivity.RefractivityProfile
    time_s : array_like (n,), optional

    Returns
    -------
    xarray.Dataset
        ``excess_path`` L [m], ``excess_path_rate`` dL/dt [m/s],
        ``frequency_residual`` [Hz] (the contract's Doppler formula with the ray directions
        replaced by the gradients of L, exact in v/c), ``frequency_residual_simple`` [Hz]
        = -(f_T / c) dL/dt, ``status`` (0 ok, 1 no occultation geometry, 2 line below the
        surface, 5 invalid input).

    Notes
    -----
    Along the straight line the excess optical path is
    :math:`L = \\int_{u_T}^{u_R} \\nu(\\sqrt{a_0^2 + u^2})\\,du` (u measured from the closest
    point). Sign convention: a longer optical path delays the phase, so a growing L lowers
    the received frequency, :math:`\\Delta f = -(f_T/c)\\,dL/dt`. The time derivative is
    analytic, :math:`dL/dt = \\nabla_{r_R} L\\cdot v_R + \\nabla_{r_T} L\\cdot v_T`, with
    (d = |r_R - r_T|, q the foot-point vector, e0 the line direction)

    .. math::
        \\nabla_{r_R} L = -\\frac{u_T}{d}\\frac{\\partial L}{\\partial a_0}\\hat q
            + \\nu_R\\left(\\hat e_0 + \\frac{q}{d}\\right) - \\nu_T \\frac{q}{d},\\quad
        \\nabla_{r_T} L = \\frac{u_R}{d}\\frac{\\partial L}{\\partial a_0}\\hat q
            - \\nu_R \\frac{q}{d} - \\nu_T\\left(\\hat e_0 - \\frac{q}{d}\\right)

    and :math:`\\partial L/\\partial a_0 = a_0\\int \\nu'(a_0\\cosh\\sigma)\\,d\\sigma`.
    By Fermat's principle [2]_ these gradients equal e_R - e0 and -(e_T - e0) of the bent
    ray to first order in n - 1, so ``frequency_residual`` = f_T [(A0 - g_R/c)/(B0 + g_T/c)
    - A0/B0] (g = grad L . v) agrees with :func:`solve_link` to second order in n - 1
    at all orders in v/c; ``frequency_residual_simple`` drops the O(v/c) relative terms.
    """
    li = _link_inputs(r_tx, v_tx, r_rx, v_rx, freq_hz)
    r_tx, v_tx, r_rx, v_rx, f_t, status = (li[k] for k in ("r_tx", "v_tx", "r_rx", "v_rx",
                                                            "f_t", "status"))
    m = r_tx.shape[0]
    rt_safe, rr_safe, geometric = li["rt_safe"], li["rr_safe"], li["geometric"]
    e0, dist, a0, q, u_tx, u_rx = (li[k] for k in ("e0", "dist", "a0", "q", "u_tx", "u_rx"))
    status[geometric & (a0 < profile.surface_radius_m)] = STATUS["blocked_by_surface"]
    good = status == 0
    path = np.full(m, np.nan)
    slope = np.full(m, np.nan)
    if np.any(good):
        path[good], slope[good] = _line_integrals(a0[good], u_tx[good], u_rx[good], profile)
    top = profile.top_radius_m
    rt, rr = _norm(rt_safe), _norm(rr_safe)
    nu_t = np.where(rt < top, profile.evaluate(np.minimum(rt, top))[0], 0.0)
    nu_r = np.where(rr < top, profile.evaluate(np.minimum(rr, top))[0], 0.0)
    q_hat = q / np.maximum(a0, 1e-300)[:, None]
    qd = q / dist[:, None]
    grad_rx = ((-u_tx / dist * slope)[:, None] * q_hat + nu_r[:, None] * (e0 + qd)
               - nu_t[:, None] * qd)
    grad_tx = ((u_rx / dist * slope)[:, None] * q_hat - nu_r[:, None] * qd
               - nu_t[:, None] * (e0 - qd))
    g_r = _dot(grad_rx, v_rx)
    g_t = _dot(grad_tx, v_tx)
    a_0, b_0 = _kinematic(e0, e0, v_tx, v_rx)
    resid = f_t * (-g_r * b_0 - a_0 * g_t) / (C_M_S * b_0 * (b_0 + g_t / C_M_S))
    rate = g_r + g_t
    ds = xr.Dataset(
        {
            "excess_path": ("time", path, {
                "units": "m", "long_name": "excess optical path along the straight line"}),
            "excess_path_rate": ("time", np.where(good, rate, np.nan), {
                "units": "m s-1", "long_name": "time derivative of the excess path"}),
            "frequency_residual": ("time", np.where(good, resid, np.nan), {
                "units": "Hz", "long_name": "residual Doppler, weak refraction"}),
            "frequency_residual_simple": ("time", np.where(good, -f_t * rate / C_M_S, np.nan), {
                "units": "Hz", "long_name": "residual Doppler -(f/c) dL/dt"}),
            "status": ("time", status, {
                "long_name": "weak-refraction status",
                "flag_values": np.array(list(STATUS.values()), dtype=np.int8),
                "flag_meanings": " ".join(STATUS)}),
        },
        attrs={"frequency_hz": f_t, "profile": getattr(profile, "description", ""),
               "model": "weak refraction, straight line (synth.raytrace.weak_refraction_residual)"},
    )
    if time_s is not None:
        ds = ds.assign_coords(time=("time", np.asarray(time_s, float), {"units": "s"}))
    return ds
