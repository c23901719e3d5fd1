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
  singularity; composite 8-point Gauss-Legendre on panels <= 2 km wide in x, the panel
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
import scipy.constants as sc
import xarray as xr

from retrieval.constants import TURNAROUND_S, TURNAROUND_X
from retrieval.errors import RoharnessError

C_M_S = sc.c

#: Per-sample status codes of :func:`solve_link` (CF flag_values / flag_meanings).
STATUS = {
    "ok": 0,
    "no_occultation_geometry": 1,  # the straight line's closest point is not between ends
    "blocked_by_surface": 2,       # tangent point below the surface
    "multipath": 3,                # d alpha / da >= 1/D_T + 1/D_R: ray not unique
    "not_converged": 4,
    "invalid_input": 5,
}

_GL_T, _GL_W = np.polynomial.legendre.leggauss(8)
#: Quadrature nodes per chunk of impact parameters. Small enough that the ~10 temporaries of
#: a chunk (0.5 MiB each) stay in cache and are reused instead of being faulted in afresh
#: (3 M nodes cost 250 k page faults per round trip and 190 MiB more peak memory); large
#: enough that the Python loop over chunks costs nothing. The result does not depend on it.
_MAX_NODES = 65_536
_PANEL_M = 2000.0  # 8 nodes per 2 km panel: < 1e-12 relative for H >= 5 km (tests)


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------
def _vectors(name, value, n=None):
    v = np.asarray(value, dtype=float)
    if v.ndim == 1 and v.shape == (3,):
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != 3:
        raise RoharnessError(f"{name} has shape {np.shape(value)}; expected (n, 3).")
    if n is not None and v.shape[0] != n:
        raise RoharnessError(f"{name} has {v.shape[0]} rows; expected {n} like the others.")
    return v


def _states(r_tx, v_tx, r_rx, v_rx):
    r_tx = _vectors("r_tx", r_tx)
    n = r_tx.shape[0]
    return r_tx, _vectors("v_tx", v_tx, n), _vectors("r_rx", r_rx, n), _vectors("v_rx", v_rx, n)


def _check_freq(freq_hz):
    f = float(freq_hz)
    if not (np.isfinite(f) and f > 0):
        raise RoharnessError(f"Link frequency {freq_hz} Hz must be a finite number > 0.")
    return f


# --------------------------------------------------------------------------------------
# Quadrature on shells: int f(a cosh s) ds between heights dlo, dhi above a
# --------------------------------------------------------------------------------------
def _acosh1p(eps):
    """arccosh(1 + eps) without cancellation for small eps >= 0."""
    return np.log1p(eps + np.sqrt(eps * (2.0 + eps)))


#: Panel counts a ray may get: a geometric ladder (ratio ~1.25), so that the rays of a batch
#: fall into a few groups of one rule each while every ray's panels stay <= ``panel_m``
#: wide and at most ~25 % narrower than needed.
_PANEL_LADDER = np.unique(np.ceil(1.25 ** np.arange(80)).astype(np.int64))


def _panel_groups(width, panel_m=_PANEL_M):
    """Rows grouped by panel count, in chunks of at most :data:`_MAX_NODES` nodes.

    Each row (interval of width ``width`` in d) gets the smallest panel count P of
    :data:`_PANEL_LADDER` with panels no wider than ``panel_m``: its own, whatever the other
    rows of the batch, so a ray's bending angle does not depend on the rays it is computed
    with. Yields (row indices, P).
    """
    need = np.maximum(1.0, np.ceil(np.asarray(width, float) / panel_m))
    p_row = _PANEL_LADDER[np.searchsorted(_PANEL_LADDER, need)]
    order = np.argsort(p_row, kind="stable")
    cuts = np.flatnonzero(np.diff(p_row[order])) + 1
    for group in np.split(order, cuts):
        if group.size == 0:
            continue
        p = int(p_row[group[0]])
        step = max(1, _MAX_NODES // (8 * p))
        for i in range(0, group.size, step):
            yield group[i:i + step], p


def _shell_nodes(a, dlo, dhi, panel_m=_PANEL_M, p=None):
    """Gauss-Legendre nodes for int_{s(dlo)}^{s(dhi)} f(a cosh s) ds, s(d) = acosh(1 + d/a).

    The interval is cut into P panels of equal width in d = a cosh s - a (the height above
    the tangent point in x), each integrated in s with 8 nodes; P is ``p`` if given (so that
    every row of a chunk uses the same rule), else the smallest with widths <= ``panel_m``.

    Returns
    -------
    x : ndarray (m, P*8)
        a cosh s at the nodes [m].
    w : ndarray (m, P*8)
        Weights (ds).
    d : ndarray (m, P*8)
        x - a = 2 a sinh^2(s/2), without cancellation [m].
    """
    if p is None:
        width = np.max(dhi - dlo) if dlo.size else 0.0
        p = max(1, int(np.ceil(width / panel_m)))
    frac = np.arange(p + 1) / p
    d_edges = dlo[:, None] + (dhi - dlo)[:, None] * frac[None, :]
    s_edges = _acosh1p(np.maximum(d_edges, 0.0) / a[:, None])
    mid = 0.5 * (s_edges[:, 1:] + s_edges[:, :-1])
    half = 0.5 * (s_edges[:, 1:] - s_edges[:, :-1])
    s = mid[:, :, None] + half[:, :, None] * _GL_T
    w = half[:, :, None] * _GL_W
    sh = np.sinh(0.5 * s)
    d = (2.0 * a[:, None, None] * sh * sh).reshape(a.size, -1)  # a cosh s - a, exactly
    return a[:, None] + d, w.reshape(a.size, -1), d


def _radius_from_x(x, evaluate):
    """Solve x = n(r) r for r by Newton's method from r = x / n(x); return r, n - 1 and
    d(n - 1)/dr at r. On Mars |r dn/dr| < 1e-2, and one step brings r to < 1e-6 m; the loop
    continues (up to 8 steps) until every correction is below 1e-7 m, so that strongly
    refracting test profiles (r dn/dr ~ 0.3) are also solved exactly."""
    nu, _ = evaluate(x)
    r = x / (1.0 + nu)
    for _ in range(8):
        nu, dnu = evaluate(r)
        step = (r * (1.0 + nu) - x) / (1.0 + nu + r * dnu)
        r = r - step
        if not np.any(np.abs(step) > 1e-7):
            break
    nu, dnu = evaluate(r)
    return r, nu, dnu


def _leg_integral(a, r0, nu0, dlo, dhi, evaluate, panel_m):
    """int over s of the bending integrand between heights dlo < dhi above the tangent.

    With r = r0 cosh s (r0 the tangent radius, n(r0) r0 = a) and x = n r,

    .. math:: \\int_{r_0} \\frac{n'/n\\, dr}{\\sqrt{x^2 - a^2}} =
              \\int \\frac{n'}{n} \\frac{2 r_0 \\cosh(s/2)}{\\sqrt{2 r_0 Q (x + a)}}\\,ds,
              \\quad Q = \\frac{x - a}{r - r_0} = n + r_0 \\frac{\\nu - \\nu_0}{r - r_0}

    (r - r0 = 2 r0 sinh^2(s/2)); the integrand is smooth and finite at s = 0, and each node
    costs one evaluation of the profile. Returns 0 where dhi <= dlo.
    """
    out = np.zeros(a.size)
    live = dhi > dlo
    if not np.any(live):
        return out
    idx = np.flatnonzero(live)
    for rows, p in _panel_groups(dhi[idx] - dlo[idx], panel_m):
        j = idx[rows]
        r, w, dr = _shell_nodes(r0[j], dlo[j], dhi[j], panel_m, p)  # dr = r - r0 > 0
        rj, aj, nu0j = r0[j][:, None], a[j][:, None], nu0[j][:, None]
        nu, dnu = evaluate(r)
        n = 1.0 + nu
        # 2 r0 cosh(s/2) / sqrt(2 r0 Q (x + a)) = sqrt((2 r0 + dr) / (Q (x + a))), in place
        q = np.subtract(nu, nu0j)
        q *= rj
        q /= dr
        q += n                      # Q
        xa = np.multiply(r, n)
        xa += aj                    # x + a
        xa *= q
        np.add(dr, 2.0 * rj, out=q)
        q /= xa
        np.sqrt(q, out=q)
        g = np.divide(dnu, n)       # (the profile's arrays are left alone)
        g *= q
        g *= w
        out[j] = np.sum(g, axis=1)
    return out


def _bending(a, r_tx_end, r_rx_end, profile, panel_m=_PANEL_M):
    """alpha_T + alpha_R for impact parameters a whose legs end at radii r_tx_end, r_rx_end."""
    r0 = _radius_from_x(a, profile.evaluate)[0]
    nu0 = profile.evaluate(r0)[0]
    top = profile.top_radius_m
    lo = np.clip(np.minimum(r_tx_end, r_rx_end), None, top) - r0
    hi = np.clip(np.maximum(r_tx_end, r_rx_end), None, top) - r0
    lo = np.maximum(lo, 0.0)
    hi = np.maximum(hi, lo)
    zero = np.zeros_like(a)
    common = _leg_integral(a, r0, nu0, zero, lo, profile.evaluate, panel_m)
    extra = _leg_integral(a, r0, nu0, lo, hi, profile.evaluate, panel_m)
    return -a * (2.0 * common + extra)


def bending_angle(impact_m, profile, tx_radius_m=None, rx_radius_m=None, panel_m=_PANEL_M):
    """Bending angle of a ray through a spherically symmetric refractivity profile.

    Parameters
    ----------
    impact_m : array_like
        Impact parameter a = n r sin(z) [m].
    profile : synth.refractivity.RefractivityProfile
        n - 1 and its radial derivative as functions of radius.
    tx_radius_m, rx_radius_m : array_like, optional
        Radii where the two legs of the ray end [m]; default (None) is the top of the
        profile, giving the full bending angle.
    panel_m : float
        Quadrature panel width in x [m] (8 Gauss-Legendre nodes per panel).

    Returns
    -------
    ndarray
        alpha [rad], shaped like ``impact_m``; > 0 means bent toward the planet.

    Notes
    -----
    With x = n r and the substitution x = a cosh s [1]_:

    .. math::
        \\alpha(a) = -2a \\int_a^{\\infty} \\frac{d\\ln n/dx}{\\sqrt{x^2 - a^2}}\\,dx
                   = -2a \\int_0^{\\infty} \\frac{d\\ln n}{dx}(a\\cosh s)\\,ds,\\qquad
        \\frac{d\\ln n}{dx} = \\frac{n'/n}{n + r n'}

    (each leg contributes half of the integral, up to its own end).
    """
    a = np.asarray(impact_m, dtype=float)
    shape = a.shape
    a = a.ravel()
    if np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise RoharnessError("Bending angle: impact parameters must be finite and > 0 m.")
    top = np.full(a.shape, float(profile.top_radius_m))
    r_tx = top if tx_radius_m is None else np.broadcast_to(
        np.asarray(tx_radius_m, float).ravel(), a.shape)
    r_rx = top if rx_radius_m is None else np.broadcast_to(
        np.asarray(rx_radius_m, float).ravel(), a.shape)
    return _bending(a, r_tx, r_rx, profile, panel_m).reshape(shape)


def tangent_radius(impact_m, profile):
    """Radius r0 of the tangent point, n(r0) r0 = a (Newton's method) [m]."""
    a = np.asarray(impact_m, dtype=float)
    return _radius_from_x(a, profile.evaluate)[0]


# --------------------------------------------------------------------------------------
# Straight-line geometry shared by the exact and weak models
# --------------------------------------------------------------------------------------
def _norm(v):
    return np.sqrt(np.einsum("ij,ij->i", v, v))


def _dot(u, v):
    return np.einsum("ij,ij->i", u, v)


def _line_geometry(r_tx, r_rx):
    """Straight line T -> R: unit direction, length, impact parameter, foot-point vector,
    signed positions of the ends along the line measured from the foot point."""
    d = r_rx - r_tx
    dist = _norm(d)
    e0 = d / dist[:, None]
    u_tx = _dot(r_tx, e0)          # < 0 when T is before the closest approach
    q = r_tx - u_tx[:, None] * e0  # foot point of the perpendicular from Mars' centre
    a0 = _norm(q)
    u_rx = u_tx + dist
    return e0, dist, a0, q, u_tx, u_rx


def _kinematic(e_tx, e_rx, v_tx, v_rx):
    """A = 1 - e_R . v_R / c and B = 1 - e_T . v_T / c."""
    return 1.0 - _dot(e_rx, v_rx) / C_M_S, 1.0 - _dot(e_tx, v_tx) / C_M_S


# --------------------------------------------------------------------------------------
# Exact bent-ray solution
# --------------------------------------------------------------------------------------
def _dpsi(r, a0, d0, delta):
    """arccos((a0 + delta)/r) - arccos(a0/r) without cancellation, and D = sqrt(r^2 - a^2)."""
    a = a0 + delta
    dd = np.sqrt(np.maximum((r - a) * (r + a), 0.0))
    s = -r * r * delta * (2.0 * a0 + delta) / (a0 * dd + a * d0)
    return np.arctan2(s / (r * r), (a * a0 + dd * d0) / (r * r)), dd


def _closure(delta, a0, rt, rr, dt0, dr0, xt_end, xr_end, profile):
    """G(delta) = dpsi_T + dpsi_R + alpha(a0 + delta) (zero for the bent ray)."""
    pt, _ = _dpsi(rt, a0, dt0, delta)
    pr, _ = _dpsi(rr, a0, dr0, delta)
    alpha = _bending(a0 + delta, xt_end, xr_end, profile)
    return pt + pr + alpha, alpha


def _solve_delta(a0, rt, rr, dt0, dr0, xt_end, xr_end, profile, max_iter=80):
    """Vectorised bracketing + Illinois regula falsi for G(delta) = 0."""
    m = a0.size
    g0 = _bending(a0, xt_end, xr_end, profile)
    delta = np.zeros(m)
    alpha = g0.copy()
    converged = g0 == 0.0
    ok = np.ones(m, bool)
    act = np.flatnonzero(~converged)
    if act.size == 0:
        return delta, alpha, converged
    def args(j):
        return a0[j], rt[j], rr[j], dt0[j], dr0[j], xt_end[j], xr_end[j], profile

    # vacuum Newton step: dG/ddelta ~ -(1/D_T + 1/D_R)
    lo = np.zeros(act.size)
    glo = g0[act]
    step = glo / (1.0 / dt0[act] + 1.0 / dr0[act])
    amax = np.minimum(rt[act], rr[act]) - a0[act]  # keep 0 < a < min(r_T, r_R)
    hi = np.clip(step, -0.5 * a0[act], 0.999 * amax)
    ghi, ahi = _closure(hi, *args(act))
    # expand until the sign changes
    for _ in range(40):
        same = np.sign(ghi) == np.sign(glo)
        if not np.any(same):
            break
        k = np.flatnonzero(same)
        lo[k], glo[k] = hi[k], ghi[k]
        hi[k] = np.clip(2.0 * hi[k], -0.5 * a0[act][k], 0.999 * amax[k])
        ghi[k], ahi[k] = _closure(hi[k], *args(act[k]))
    bracketed = np.sign(ghi) != np.sign(glo)
    ok[act[~bracketed]] = False
    # Illinois regula falsi on the bracketed samples
    sel = np.flatnonzero(bracketed)
    best, gbest, abest = hi.copy(), ghi.copy(), ahi.copy()
    for _ in range(max_iter):
        if sel.size == 0:
            break
        j = act[sel]
        new = hi[sel] - ghi[sel] * (hi[sel] - lo[sel]) / (ghi[sel] - glo[sel])
        gnew, anew = _closure(new, *args(j))
        same = np.sign(gnew) == np.sign(ghi[sel])
        glo[sel] = np.where(same, 0.5 * glo[sel], ghi[sel])
        lo[sel] = np.where(same, lo[sel], hi[sel])
        hi[sel], ghi[sel] = new, gnew
        best[sel], gbest[sel], abest[sel] = new, gnew, anew
        done = (np.abs(gnew) <= 1e-13 * np.abs(anew) + 1e-18) | \
               (np.abs(hi[sel] - lo[sel]) <= 1e-7) | (gnew == 0.0)
        converged[j[done]] = True
        sel = sel[~done]
    delta[act] = best
    alpha[act] = abest
    converged &= ok
    return delta, alpha, converged


_FD_STEP_M = 10.0  # d alpha/da by a forward difference: alpha varies on >= 1 km scales


def _dalpha_fd(a, alpha, xt_end, xr_end, profile):
    """d alpha/da by a forward difference of 10 m (~1 % accuracy: the multipath flag and
    the warm start's slope)."""
    return (_bending(a + _FD_STEP_M, xt_end, xr_end, profile) - alpha) / _FD_STEP_M


def _hermite_alpha(a, a_i, f_i, d_i, a_j, f_j, d_j):
    """Cubic Hermite interpolant of alpha(a) through two solved rays, and its slope."""
    h = a_j - a_i
    h = np.where(h == 0.0, 1.0, h)
    t = (a - a_i) / h
    t2, t3 = t * t, t * t * t
    val = ((2 * t3 - 3 * t2 + 1) * f_i + (t3 - 2 * t2 + t) * h * d_i
           + (-2 * t3 + 3 * t2) * f_j + (t3 - t2) * h * d_j)
    der = ((6 * t2 - 6 * t) * f_i + (3 * t2 - 4 * t + 1) * h * d_i
           + (-6 * t2 + 6 * t) * f_j + (3 * t2 - 2 * t) * h * d_j) / h
    return val, der


def _solve_warm(a0, rt, rr, dt0, dr0, xt_end, xr_end, profile, stride=16, max_iter=8):
    """G(delta) = 0 for a sequence of neighbouring rays, each started from its neighbours.

    Every ``stride``-th ray is solved by :func:`_solve_delta` (bracket + Illinois). Then, coarse
    to fine, the ray midway between two solved rays i, j starts from the root of the closure
    with alpha replaced by the cubic Hermite interpolant of (alpha, d alpha/da) at i and j,
    takes one Newton step with that interpolant's slope and continues by secant steps, each
    an exact closure (one bending integral), until the closure holds as tightly as
    :func:`_solve_delta` requires (|G| <= 1e-13 |alpha| + 1e-18). Typically 3 integrals a ray
    instead of 8; a ray that does not converge in ``max_iter`` falls back to
    :func:`_solve_delta`. Returns delta, alpha, converged and d alpha/da (forward difference).
    """
    m = a0.size
    delta = np.zeros(m)
    alpha = np.zeros(m)
    dalpha = np.zeros(m)
    conv = np.zeros(m, bool)
    solved = np.zeros(m, bool)

    def args(j):
        return a0[j], rt[j], rr[j], dt0[j], dr0[j], xt_end[j], xr_end[j], profile

    def legacy(j):
        d, al, cv = _solve_delta(*args(j)[:-1], profile)
        delta[j], alpha[j], conv[j] = d, al, cv
        dalpha[j] = _dalpha_fd(a0[j] + d, al, xt_end[j], xr_end[j], profile)
        solved[j] = True

    # a tangent point above the top of the profile: alpha(a0) = 0 exactly, delta = 0 (as in
    # _solve_delta), no integral needed
    r0 = _radius_from_x(a0, profile.evaluate)[0]
    top = profile.top_radius_m
    above = np.minimum(np.maximum(xt_end, xr_end), top) <= r0
    solved[above] = conv[above] = True
    legacy(np.unique(np.r_[np.arange(0, m, stride), m - 1]))
    while True:
        idx = np.flatnonzero(solved)
        gap = np.diff(idx)
        k = np.flatnonzero(gap > 1)
        if k.size == 0:
            break
        i, j = idx[k], idx[k + 1]
        t = (i + j) // 2
        # both neighbours usable (converged, finite slope), else a plain start
        good = conv[i] & conv[j] & np.isfinite(dalpha[i]) & np.isfinite(dalpha[j])
        a_i, a_j = a0[i] + delta[i], a0[j] + delta[j]
        w = np.where(a0[j] != a0[i], (a0[t] - a0[i]) / np.where(a0[j] != a0[i],
                                                                 a0[j] - a0[i], 1.0), 0.5)
        x = np.where(good, delta[i] + w * (delta[j] - delta[i]), 0.0)
        slope = np.zeros(t.size)
        for _ in range(6):  # Newton on the interpolated closure: no integral
            a = a0[t] + x
            al_h, dal_h = _hermite_alpha(a, a_i, alpha[i], dalpha[i], a_j, alpha[j], dalpha[j])
            pt, ddt = _dpsi(rt[t], a0[t], dt0[t], x)
            pr, ddr = _dpsi(rr[t], a0[t], dr0[t], x)
            slope = dal_h - 1.0 / np.maximum(ddt, 1e-300) - 1.0 / np.maximum(ddr, 1e-300)
            step = np.where(good & (slope < 0), (pt + pr + al_h) / slope, 0.0)
            x = x - step
        x = np.where(np.isfinite(x), x, 0.0)
        g_x, al_x = _closure(x, *args(t))
        ok = np.zeros(t.size, bool)
        best, g_best, al_best = x.copy(), g_x.copy(), al_x.copy()
        live = np.arange(t.size)
        prev_x = prev_g = None
        for it in range(max_iter):
            done = (np.abs(g_x) <= 1e-13 * np.abs(al_x) + 1e-18) | (g_x == 0.0)
            ok[live[done]] = True
            best[live], g_best[live], al_best[live] = x, g_x, al_x
            keep = ~done
            live, x, g_x = live[keep], x[keep], g_x[keep]
            if live.size == 0 or it == max_iter - 1:
                break
            if prev_x is None:  # Newton with the interpolant's slope
                sl = np.where(slope[live] < 0, slope[live], -1.0 / np.maximum(dt0[t[live]],
                                                                              1e-300))
                new = x - g_x / sl
            else:               # secant through the last two exact closures
                px, pg = prev_x[keep], prev_g[keep]
                den = g_x - pg
                new = np.where(den != 0.0, x - g_x * (x - px) / np.where(den != 0.0, den, 1.0),
                               x)
            prev_x, prev_g = x, g_x
            x = new
            g_x, al_x = _closure(x, *args(t[live]))
        delta[t], alpha[t], conv[t] = best, al_best, ok
        solved[t] = True
        if ok.any():
            tj = t[ok]
            dalpha[tj] = _dalpha_fd(a0[tj] + delta[tj], alpha[tj], xt_end[tj], xr_end[tj],
                                    profile)
        if not ok.all():
            legacy(t[~ok])
    dalpha[above] = np.nan  # filled by the caller
    return delta, alpha, conv, dalpha


def _several_rays(r_tx, r_rx, a_found, profile, step_m=250.0, max_points=600):
    """Flag samples whose closure G(a) has more than one root (multipath).

    The root finder returns one ray; when d alpha/da exceeds 1/D_T + 1/D_R somewhere, G is
    not monotone and other rays may connect the same ends (the found ray can sit on an
    outer branch where d alpha/da is small). G(a) = arccos(a/r_T) + arccos(a/r_R)
    + alpha(a) - theta is therefore sampled on a common grid of a (spacing >= ``step_m``,
    at most ``max_points``; alpha with both legs to the top) and its sign changes are
    counted. Folds narrower than the grid spacing can be missed.
    """
    lo = np.min(a_found) - 20e3
    hi = min(np.max(a_found) + 20e3, profile.top_radius_m)
    if not hi > lo:
        return np.zeros(a_found.size, bool)
    n = int(min(max_points, max(3, np.ceil((hi - lo) / step_m))))
    grid = np.linspace(lo, hi, n)
    alpha = bending_angle(grid, profile)
    if np.all(alpha == 0):
        return np.zeros(a_found.size, bool)
    rt = _norm(r_tx)[:, None]
    rr = _norm(r_rx)[:, None]
    theta = np.arctan2(_norm(np.cross(r_tx, r_rx)), _dot(r_tx, r_rx))[:, None]
    inside = grid[None, :] < np.minimum(rt, rr)
    ratio_t = np.where(inside, grid[None, :] / rt, 1.0)
    ratio_r = np.where(inside, grid[None, :] / rr, 1.0)
    g = np.arccos(ratio_t) + np.arccos(ratio_r) + alpha[None, :] - theta
    sign = np.where(inside, np.sign(g), 0.0)
    changes = np.sum((sign[:, 1:] * sign[:, :-1]) < 0, axis=1)
    return changes > 1


def solve_link(r_tx, v_tx, r_rx, v_rx, freq_hz, profile, time_s=None):
    """Exact bent-ray residual Doppler of a one-way link, per sample.

    Parameters
    ----------
    r_tx, v_tx : array_like (n, 3)
        Transmitter position [m] and velocity [m/s] at emission (Mars-centred inertial).
    r_rx, v_rx : array_like (n, 3)
        Receiver position [m] and velocity [m/s] at reception.
    freq_hz : float
        Transmitted frequency f_T [Hz] (also the frequency of the refractivity ``profile``).
    profile : synth.refractivity.RefractivityProfile
    time_s : array_like (n,), optional
        Sample times, attached as the ``time`` coordinate.

    Returns
    -------
    xarray.Dataset
        dims (time, xyz): ``frequency_residual`` [Hz] = f_R(bent) - f_R(straight),
        ``frequency_vacuum`` [Hz] = f_R(straight), ``impact_parameter`` and
        ``straight_impact_parameter`` [m], ``bending_angle`` [rad] (truth, both legs),
        ``tangent_radius`` [m], ``bending_angle_derivative`` d alpha/da [rad/m],
        ``tx_direction``, ``rx_direction`` (unit vectors), ``status`` (flags, see
        :data:`STATUS`; residual is NaN unless status is ok or multipath).

    Notes
    -----
    The residual is formed from direction differences (A = 1 - e_R.v_R/c, B = 1 - e_T.v_T/c,
    0 for the straight ray):

    .. math:: \\Delta f = f_T \\frac{-(\\Delta e_R\\cdot v_R) B_0 + A_0 (\\Delta e_T\\cdot v_T)}
              {c\\, B\\, B_0}

    which is algebraically f_T (A/B - A0/B0) without its cancellation. Vacuum (n = 1) gives
    delta = 0 and a residual of exactly 0.
    """
    r_tx, v_tx, r_rx, v_rx = _states(r_tx, v_tx, r_rx, v_rx)
    f_t = _check_freq(freq_hz)
    m = r_tx.shape[0]
    status = np.zeros(m, dtype=np.int8)
    finite = np.all(np.isfinite(np.hstack([r_tx, v_tx, r_rx, v_rx])), axis=1)
    status[~finite] = STATUS["invalid_input"]
    rt_safe = np.where(finite[:, None], r_tx, [[1.0, 0.0, 0.0]])
    rr_safe = np.where(finite[:, None], r_rx, [[-1.0, 1.0, 0.0]])
    e0, dist, a0, q, u_tx, u_rx = _line_geometry(rt_safe, rr_safe)
    rt, rr = _norm(rt_safe), _norm(rr_safe)
    geometric = finite & (u_tx < 0) & (u_rx > 0)
    status[finite & ~geometric] = STATUS["no_occultation_geometry"]
    deep = geometric & (a0 < profile.surface_radius_m - 50e3)  # hopelessly behind Mars
    status[deep] = STATUS["blocked_by_surface"]
    work = np.flatnonzero(geometric & ~deep)

    delta = np.full(m, np.nan)
    alpha = np.full(m, np.nan)
    dalpha = np.full(m, np.nan)
    r0 = np.full(m, np.nan)
    if work.size:
        dt0, dr0 = -u_tx[work], u_rx[work]  # = sqrt(r^2 - a0^2), cancellation-free
        xt_end, xr_end = rt[work], rr[work]  # leg ends (capped at the profile top)
        dl, al, conv, da = _solve_warm(a0[work], rt[work], rr[work], dt0, dr0, xt_end,
                                       xr_end, profile)
        a = a0[work] + dl
        miss = ~np.isfinite(da)
        if miss.any():
            da[miss] = _dalpha_fd(a[miss], al[miss], xt_end[miss], xr_end[miss], profile)
        _, dtb = _dpsi(rt[work], a0[work], dt0, dl)
        _, drb = _dpsi(rr[work], a0[work], dr0, dl)
        several = _several_rays(rt_safe[work], rr_safe[work], a, profile)
        # where G may have several roots, the root found depends on the method: take the
        # one _solve_delta finds (bracket from the vacuum step), as it always has
        redo = np.flatnonzero(~conv | (conv & ((da >= 1.0 / dtb + 1.0 / drb) | several)))
        if redo.size:
            args = (a0[work][redo], rt[work][redo], rr[work][redo], dt0[redo], dr0[redo],
                    xt_end[redo], xr_end[redo], profile)
            d2, al[redo], conv[redo] = _solve_delta(*args)
            moved = np.abs(d2 - dl[redo]) > 1e-6
            dl[redo] = d2
            a = a0[work] + dl
            da[redo] = _dalpha_fd(a[redo], al[redo], xt_end[redo], xr_end[redo], profile)
            _, dtb = _dpsi(rt[work], a0[work], dt0, dl)
            _, drb = _dpsi(rr[work], a0[work], dr0, dl)
            if moved.any():  # the multipath grid spans the rays found
                several = _several_rays(rt_safe[work], rr_safe[work], a, profile)
        delta[work], alpha[work] = dl, al
        status[work[~conv]] = STATUS["not_converged"]
        dalpha[work] = da
        multi = conv & ((da >= 1.0 / dtb + 1.0 / drb) | several)
        status[work[multi]] = STATUS["multipath"]
        r0[work] = tangent_radius(a, profile)
        blocked = r0[work] < profile.surface_radius_m
        status[work[blocked]] = STATUS["blocked_by_surface"]

    good = (status == STATUS["ok"]) | (status == STATUS["multipath"])
    dl = np.where(good, delta, 0.0)
    a = a0 + dl
    # in-plane unit vectors: m_hat normal to the plane, t_hat = m_hat x r_hat (toward R)
    mvec = np.cross(rt_safe, rr_safe)
    m_hat = mvec / np.maximum(_norm(mvec), 1e-300)[:, None]
    rt_hat = rt_safe / rt[:, None]
    rr_hat = rr_safe / rr[:, None]
    t_tx = np.cross(m_hat, rt_hat)
    t_rx = np.cross(m_hat, rr_hat)
    dt0_all = np.where(geometric, -u_tx, 0.0)
    dr0_all = np.where(geometric, u_rx, 0.0)
    dd_t = -dl * (2 * a0 + dl) / np.maximum(
        np.sqrt(np.maximum((rt - a) * (rt + a), 0.0)) + dt0_all, 1e-300)
    dd_r = -dl * (2 * a0 + dl) / np.maximum(
        np.sqrt(np.maximum((rr - a) * (rr + a), 0.0)) + dr0_all, 1e-300)
    de_tx = (-dd_t[:, None] * rt_hat + dl[:, None] * t_tx) / rt[:, None]
    de_rx = (dd_r[:, None] * rr_hat + dl[:, None] * t_rx) / rr[:, None]
    a_0, b_0 = _kinematic(e0, e0, v_tx, v_rx)
    b = b_0 - _dot(de_tx, v_tx) / C_M_S
    resid = f_t * (-_dot(de_rx, v_rx) * b_0 + a_0 * _dot(de_tx, v_tx)) / (C_M_S * b * b_0)
    resid = np.where(good, resid, np.nan)
    f_vac = np.where(finite, f_t * a_0 / b_0, np.nan)
    e_tx = np.where(good[:, None], e0 + de_tx, np.nan)
    e_rx = np.where(good[:, None], e0 + de_rx, np.nan)

    ds = xr.Dataset(
        {
            "frequency_residual": ("time", resid, {
                "units": "Hz", "long_name": "residual Doppler, bent minus straight ray"}),
            "frequency_vacuum": ("time", f_vac, {
                "units": "Hz", "long_name": "received frequency of the straight (vacuum) ray"}),
            "impact_parameter": ("time", np.where(good, a, np.nan), {
                "units": "m", "long_name": "impact parameter of the bent ray (truth)"}),
            "straight_impact_parameter": ("time", np.where(finite, a0, np.nan), {
                "units": "m", "long_name": "impact parameter of the straight line"}),
            "bending_angle": ("time", np.where(good, alpha, np.nan), {
                "units": "rad", "long_name": "bending angle of the bent ray (truth)"}),
            "bending_angle_derivative": ("time", dalpha, {
                "units": "rad m-1", "long_name": "d(bending angle)/d(impact parameter)"}),
            "tangent_radius": ("time", r0, {
                "units": "m", "long_name": "radius of the bent ray's tangent point"}),
            "tx_direction": (("time", "xyz"), e_tx, {
                "units": "1", "long_name": "unit propagation direction leaving the transmitter"}),
            "rx_direction": (("time", "xyz"), e_rx, {
                "units": "1", "long_name": "unit propagation direction arriving at the receiver"}),
            "status": ("time", status, {
                "long_name": "ray solution status",
                "flag_values": np.array(list(STATUS.values()), dtype=np.int8),
                "flag_meanings": " ".join(STATUS)}),
        },
        coords={"xyz": ["x", "y", "z"]},
        attrs={"frequency_hz": f_t, "profile": getattr(profile, "description", ""),
               "model": "exact bent ray, spherical symmetry (synth.raytrace.solve_link)"},
    )
    if time_s is not None:
        ds = ds.assign_coords(time=("time", np.asarray(time_s, float), {"units": "s"}))
    return ds


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
    r_tx, v_tx, r_rx, v_rx = _states(r_tx, v_tx, r_rx, v_rx)
    f_t = _check_freq(freq_hz)
    m = r_tx.shape[0]
    status = np.zeros(m, dtype=np.int8)
    finite = np.all(np.isfinite(np.hstack([r_tx, v_tx, r_rx, v_rx])), axis=1)
    status[~finite] = STATUS["invalid_input"]
    rt_safe = np.where(finite[:, None], r_tx, [[1.0, 0.0, 0.0]])
    rr_safe = np.where(finite[:, None], r_rx, [[-1.0, 1.0, 0.0]])
    e0, dist, a0, q, u_tx, u_rx = _line_geometry(rt_safe, rr_safe)
    geometric = finite & (u_tx < 0) & (u_rx > 0)
    status[finite & ~geometric] = STATUS["no_occultation_geometry"]
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


# --------------------------------------------------------------------------------------
# Two-way coherent link
# --------------------------------------------------------------------------------------
def solve_two_way(r_up_tx, v_up_tx, r_sc, v_sc, r_dn_rx, v_dn_rx, uplink_freq_hz,
                  profile_for_freq, turnaround=(TURNAROUND_X, TURNAROUND_S), band=("X", "S"),
                  time_s=None):
    """Exact two-way coherent residual Doppler, Earth -> spacecraft -> Earth.

    Parameters
    ----------
    r_up_tx, v_up_tx : array_like (n, 3)
        Ground station at uplink emission [m, m/s] (Mars-centred inertial).
    r_sc, v_sc : array_like (n, 3)
        Spacecraft at uplink reception = downlink emission (instant turnaround).
    r_dn_rx, v_dn_rx : array_like (n, 3)
        Ground station at downlink reception.
    uplink_freq_hz : float
        Uplink carrier [Hz] (e.g. 7.17 GHz X band).
    profile_for_freq : callable
        ``profile_for_freq(freq_hz) -> RefractivityProfile`` (the plasma term is dispersive,
        so each leg gets the profile at its own carrier).
    turnaround : sequence of float
        Downlink/uplink ratios k of the simultaneous coherent downlinks
        (880/749 X, 240/749 S).
    band : sequence of str
        Labels of the downlinks (coordinate ``band``).

    Returns
    -------
    xarray.Dataset
        ``frequency_residual`` (time, band): two-way residual at the ground [Hz];
        ``uplink_residual`` (time) [Hz, at the spacecraft, at f_up]; ``downlink_residual``
        (time, band): one-way residual of each downlink alone [Hz]; impact parameters and
        bending angles of each leg; ``status`` (time) = worst leg status.

    Notes
    -----
    Each leg is an exact bent ray (:func:`solve_link`) at its own carrier. With P = A/B of the
    uplink and Q = A/B of a downlink, the received frequency is f_3 = k f_up P Q, so

    .. math:: \\Delta f_{2way} = k\\,(\\Delta f_{up}\\, Q + f_{up} P_0\\, \\Delta Q)

    exactly (no subtraction of large numbers); this is the "df_2way = k df_up + df_down"
    of [3]_ with its O(v/c) factors kept. Approximation: the downlink refractivity is taken at
    the nominal k f_up (the carrier's ~1e-5 Doppler offset changes the plasma refractivity by
    ~2e-5 relative) and the turnaround is instantaneous.
    """
    f_up = _check_freq(uplink_freq_hz)
    turnaround = tuple(float(k) for k in turnaround)
    band = tuple(band)
    if len(turnaround) != len(band) or not turnaround:
        raise RoharnessError("Two-way link: give one band label per turnaround ratio.")
    up = solve_link(r_up_tx, v_up_tx, r_sc, v_sc, f_up, profile_for_freq(f_up))
    p_0 = up["frequency_vacuum"].values / f_up
    df_up = up["frequency_residual"].values
    status = up["status"].values.copy()
    res, dn_res, dn_a, dn_alpha = [], [], [], []
    for k in turnaround:
        dn = solve_link(r_sc, v_sc, r_dn_rx, v_dn_rx, 1.0, profile_for_freq(k * f_up))
        q_0 = dn["frequency_vacuum"].values
        d_q = dn["frequency_residual"].values  # f_T = 1: this is Q - Q0
        q = q_0 + d_q
        res.append(k * (df_up * q + f_up * p_0 * d_q))
        dn_res.append(k * f_up * d_q)
        dn_a.append(dn["impact_parameter"].values)
        dn_alpha.append(dn["bending_angle"].values)
        status = np.maximum(status, dn["status"].values)
    ds = xr.Dataset(
        {
            "frequency_residual": (("time", "band"), np.stack(res, axis=1), {
                "units": "Hz", "long_name": "two-way residual Doppler at the ground station"}),
            "uplink_residual": ("time", df_up, {
                "units": "Hz", "long_name": "uplink residual Doppler at the spacecraft"}),
            "downlink_residual": (("time", "band"), np.stack(dn_res, axis=1), {
                "units": "Hz", "long_name": "one-way residual Doppler of the downlink alone"}),
            "uplink_impact_parameter": ("time", up["impact_parameter"].values, {"units": "m"}),
            "uplink_bending_angle": ("time", up["bending_angle"].values, {"units": "rad"}),
            "downlink_impact_parameter": (("time", "band"), np.stack(dn_a, axis=1),
                                          {"units": "m"}),
            "downlink_bending_angle": (("time", "band"), np.stack(dn_alpha, axis=1),
                                       {"units": "rad"}),
            "status": ("time", status, dict(up["status"].attrs)),
        },
        coords={"band": list(band), "turnaround": ("band", np.array(turnaround))},
        attrs={"uplink_frequency_hz": f_up,
               "model": "exact two-way coherent bent rays (synth.raytrace.solve_two_way)"},
    )
    if time_s is not None:
        ds = ds.assign_coords(time=("time", np.asarray(time_s, float), {"units": "s"}))
    return ds
