"""The exact bent-ray link solver of :mod:`synth.raytrace`: the closure of the bent ray
between two ends, its root finders (bracketing and warm-started), the multipath check, the
one-way residual Doppler (:func:`solve_link`) and the two-way coherent link
(:func:`solve_two_way`). Conventions and numerics are in the :mod:`synth.raytrace`
docstring."""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval.constants import TURNAROUND_S, TURNAROUND_X
from retrieval.errors import RoharnessError
from synth.ray_bending import _bending, _radius_from_x, bending_angle, tangent_radius
from synth.ray_geometry import (
    C_M_S,
    STATUS,
    _check_freq,
    _dot,
    _kinematic,
    _link_inputs,
    _norm,
)


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
def _solve_rays(a0, rt, rr, u_tx, u_rx, rt_safe, rr_safe, work, profile, status):
    """Bent rays of the samples ``work`` (geometric, not hopelessly blocked).

    Solves the closure warm-started (:func:`_solve_warm`), re-solves with the bracketing
    solver where it did not converge or where the closure may have several roots, and flags
    the samples (``status`` is updated in place: not converged, multipath, blocked).

    Returns
    -------
    delta, alpha, dalpha, r0 : ndarray (m,)
        a - a0 [m], bending angle [rad], d alpha/da [rad/m] and tangent radius [m]; NaN
        outside ``work``.
    """
    m = a0.size
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
    return delta, alpha, dalpha, r0


def _direction_changes(dl, a0, rt_safe, rr_safe, rt, rr, dt0_all, dr0_all):
    """e - e0 at both ends for a ray moved by dl = a - a0, formed analytically.

    D - D0 = -dl (2 a0 + dl) / (D + D0) at each end (no cancellation); the change of
    direction is split along the radial unit vector and the in-plane tangent.

    Returns
    -------
    de_tx, de_rx : ndarray (m, 3)
        e_T - e0 and e_R - e0.
    """
    a = a0 + dl
    # in-plane unit vectors: m_hat normal to the plane, t_hat = m_hat x r_hat (toward R)
    mvec = np.cross(rt_safe, rr_safe)
    m_hat = mvec / np.maximum(_norm(mvec), 1e-300)[:, None]
    rt_hat = rt_safe / rt[:, None]
    rr_hat = rr_safe / rr[:, None]
    t_tx = np.cross(m_hat, rt_hat)
    t_rx = np.cross(m_hat, rr_hat)
    dd_t = -dl * (2 * a0 + dl) / np.maximum(
        np.sqrt(np.maximum((rt - a) * (rt + a), 0.0)) + dt0_all, 1e-300)
    dd_r = -dl * (2 * a0 + dl) / np.maximum(
        np.sqrt(np.maximum((rr - a) * (rr + a), 0.0)) + dr0_all, 1e-300)
    de_tx = (-dd_t[:, None] * rt_hat + dl[:, None] * t_tx) / rt[:, None]
    de_rx = (dd_r[:, None] * rr_hat + dl[:, None] * t_rx) / rr[:, None]
    return de_tx, de_rx


def _link_dataset(resid, f_vac, a, a0, alpha, dalpha, r0, e_tx, e_rx, status, good, finite,
                  f_t, profile):
    """The :func:`solve_link` dataset (dims time, xyz) from its per-sample arrays."""
    return xr.Dataset(
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
    li = _link_inputs(r_tx, v_tx, r_rx, v_rx, freq_hz)
    r_tx, v_tx, r_rx, v_rx, f_t, status = (li[k] for k in ("r_tx", "v_tx", "r_rx", "v_rx",
                                                            "f_t", "status"))
    finite, rt_safe, rr_safe, geometric = li["finite"], li["rt_safe"], li["rr_safe"], \
        li["geometric"]
    e0, dist, a0, q, u_tx, u_rx = (li[k] for k in ("e0", "dist", "a0", "q", "u_tx", "u_rx"))
    rt, rr = _norm(rt_safe), _norm(rr_safe)
    deep = geometric & (a0 < profile.surface_radius_m - 50e3)  # hopelessly behind Mars
    status[deep] = STATUS["blocked_by_surface"]
    work = np.flatnonzero(geometric & ~deep)
    delta, alpha, dalpha, r0 = _solve_rays(a0, rt, rr, u_tx, u_rx, rt_safe, rr_safe, work,
                                           profile, status)

    good = (status == STATUS["ok"]) | (status == STATUS["multipath"])
    dl = np.where(good, delta, 0.0)
    a = a0 + dl
    dt0_all = np.where(geometric, -u_tx, 0.0)
    dr0_all = np.where(geometric, u_rx, 0.0)
    de_tx, de_rx = _direction_changes(dl, a0, rt_safe, rr_safe, rt, rr, dt0_all, dr0_all)
    a_0, b_0 = _kinematic(e0, e0, v_tx, v_rx)
    b = b_0 - _dot(de_tx, v_tx) / C_M_S
    resid = f_t * (-_dot(de_rx, v_rx) * b_0 + a_0 * _dot(de_tx, v_tx)) / (C_M_S * b * b_0)
    resid = np.where(good, resid, np.nan)
    f_vac = np.where(finite, f_t * a_0 / b_0, np.nan)
    e_tx = np.where(good[:, None], e0 + de_tx, np.nan)
    e_rx = np.where(good[:, None], e0 + de_rx, np.nan)

    ds = _link_dataset(resid, f_vac, a, a0, alpha, dalpha, r0, e_tx, e_rx, status, good,
                       finite, f_t, profile)
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
