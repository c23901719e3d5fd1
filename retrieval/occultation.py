"""Occultation finder: when does the straight ray of a link graze Mars?

For a link (transmitter, receiver) the straight-line ray's closest approach to Mars'
centre defines the *tangent altitude* h(t) (above the reference sphere). Every crossing of
0 km (the ray is cut by the planet) and of a reference altitude (default 200 km, the top
of the photochemical ionosphere) is found over a time window:

1. Rate bounds. The tangent radius is the distance rho(t) = min_s |P(s, t)| of the segment
   P(s) = (1 - s) r_tx + s r_rx from the centre. Each fixed point P(s) moves at
   (1 - s) v_tx + s v_rx; its distance changes at the radial part of that velocity, which is
   bounded over an interval by S(s) (:class:`_Bounds`: two-body energy and radial-speed
   bounds of each end, the angle between P(s) and the end's position; 2 % margin for J2
   and small manoeuvres), and curves by at most A(s) (:meth:`_Bounds.curvature`). An
   interval with both ends on the same side of a level L is cleared (no crossing inside)
   if, above L, every point P(s) starts and ends farther from rho_L than it can travel and
   come back: min_s [|P0(s)| + |P1(s)| - dt S(s)] > 2 rho_L (a convex minimisation); below
   L, if the tangent points of the two ends cannot reach rho_L in time, by the rate bound
   or, tighter, by the second derivative from the tangent rate h' (:func:`_ambiguous`,
   :func:`_cleared_below`). The bounds are checked along intervals by a property test.
2. h is sampled on a regular grid (default 60 s), coarse to fine: every 64th grid point,
   then the grid midpoints of the intervals that hold a sign change or that step 1 cannot
   clear, down to single grid steps (an interval far from every level is never looked
   into). Below the grid step, intervals that step 1 cannot clear are bisected until they
   are cleared or shorter than 0.05 s. No event lasting longer than that can be missed,
   and the crossings are bracketed by the same grid steps as on the full grid. For two
   spacecraft at Mars the search evaluates the geometry with two ephemeris calls an epoch
   (:func:`_link_geometry`, within 2 cm of :func:`retrieval.geometry.link_states`).
3. Each bracketed crossing is refined (all at once) from the root of the cubic Hermite
   interpolant of h and h' by safeguarded Newton steps, to 0.1 ms.

Light time is accounted for (:func:`retrieval.geometry.link_states`); event times are the
times at which the ray passes the tangent point. A crossing whose closest point is an end of
the segment (a spacecraft below the reference altitude looking up, e.g. MAVEN at periapsis)
is not a tangent-point event and is discarded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.geometry import (
    FAR_END_M,
    j2000_to_latlon,
    link_states,
    solar_geometry,
    tangent_point,
)


def tangent_altitude(tx, rx, et) -> dict:
    """Straight-ray tangent geometry of a link at reference-end times ``et``.

    Returns
    -------
    dict
        ``altitude_m`` (n,), ``s`` (n,), ``point`` (n, 3), ``et_tangent`` (n,), ``speed_bound``
        (n,) [m/s] and the link states of :func:`retrieval.geometry.link_states`.
    """
    st = link_states(tx, rx, et)
    point, radius, s = tangent_point(st["tx_position"], st["rx_position"])
    v_tx = np.linalg.norm(st["tx_velocity"], axis=1)
    v_rx = np.linalg.norm(st["rx_velocity"], axis=1)
    far_tx = np.linalg.norm(st["tx_position"], axis=1) > FAR_END_M
    far_rx = np.linalg.norm(st["rx_position"], axis=1) > FAR_END_M
    # A far end moves the near part of the ray by at most s (or 1 - s) of its speed.
    bound = np.where(far_rx, v_tx + s * v_rx, np.where(far_tx, v_rx + (1 - s) * v_tx,
                                                         np.maximum(v_tx, v_rx)))
    et_tp = st["et_tx"] + s * (st["et_rx"] - st["et_tx"])
    return dict(st, altitude_m=radius - K.MARS_MEAN_RADIUS_M, s=s, point=point,
                et_tangent=et_tp, speed_bound=bound)


_MIN_INTERVAL_S = 0.05
#: Relative margin on the speed bounds for what two-body motion leaves out over one interval:
#: J2 moves a low orbiter's osculating energy and eccentricity by a few 1e-3 (J2 (R/r)^2 ~
#: 2e-3), so its speed and radial velocity by < 0.5 % of its speed; 2 % also covers a trim
#: manoeuvre of tens of m/s.
_MARGIN = 0.02
#: Margin on the speed of a far end (Earth, a DSN station) over one interval: the Sun's
#: differential pull (< 1e-2 m/s^2) and Earth's rotation (0.034 m/s^2 at a station) change a
#: >= 5 km/s Earth-Mars velocity by < 3 % in the longest interval (64 steps of 60 s).
_FAR_MARGIN = 0.1
#: A spacecraft cannot pass below Mars' polar radius (less 10 km for the deepest terrain):
#: the floor of the radius in the energy bound on the speed.
_R_FLOOR_M = K.MARS_POLAR_RADIUS_M - 10e3
#: Acceleration of a far end relative to Mars [m/s^2]: the Sun's differential pull on Earth
#: and Mars (< 0.01) and a DSN station's rotation about Earth's axis (0.034).
_FAR_ACCEL_M_S2 = 0.05
_GM = K.MARS_GM_M3_S2
#: What the bounds allow for the search's own geometry (:func:`_link_geometry`: the
#: transmitter's light-time position from its velocity, <= 0.02 m) [m].
_SCAN_ERROR_M = 0.05


def _end_columns(pos, vel):
    """Per-sample quantities of one link end for the speed bounds: radius [m], speed
    [m/s], two-body energy [m^2/s^2] and angular momentum [m^2/s]."""
    r = np.linalg.norm(pos, axis=1)
    v = np.linalg.norm(vel, axis=1)
    energy = 0.5 * v * v - _GM / r
    ang = np.linalg.norm(np.cross(pos, vel), axis=1)
    return np.column_stack([r, v, energy, ang])


def _radial_rate(point, s, v_tx, v_rx):
    """Rate of the tangent radius [m/s]: the radial component of the velocity of the
    closest point (envelope theorem; the closest point's own motion along the segment does
    not change the distance to first order)."""
    u = point / np.maximum(np.linalg.norm(point, axis=1), 1.0)[:, None]
    return np.einsum("ij,ij->i", u, (1 - s)[:, None] * v_tx + s[:, None] * v_rx)


def _link_geometry(tx, rx, et, near: bool) -> dict:
    """Tangent geometry for the search: two ephemeris calls an epoch for a Mars-side link.

    A far link (Earth) goes through :func:`tangent_altitude` (light time of minutes,
    iterated). For two spacecraft at Mars the transmitter is taken at t - tau from its state
    at t, r(t) - tau v(t) and v(t) - tau a(t) (a: Mars' two-body pull), with tau from one
    update of |r_rx(t) - r_tx(t - tau)| / c. The neglected terms keep the positions within
    0.02 m of :func:`retrieval.geometry.link_states`: a tau^2 / 2 with a <= GM / r^2 and
    tau <= 2 r / c is below 2 GM / c^2 = 1e-3 m, and one update leaves tau within
    (v/c) tau ~ 1e-6 s; the velocities within ~1e-3 m/s (J2's part of a, times tau).
    Returns ``altitude_m``, ``s``, ``rate_m_s``, end positions and velocities.
    """
    if not near:
        g = tangent_altitude(tx, rx, et)
        rate = _radial_rate(g["point"], g["s"], g["tx_velocity"], g["rx_velocity"])
        return dict(g, rate_m_s=rate)
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    rx_state, _ = spice.states(rx, ets, "MARS")
    tx_state, _ = spice.states(tx, ets, "MARS")
    r_rx, v_rx, v_tx = rx_state[:, :3], rx_state[:, 3:], tx_state[:, 3:]
    tau = np.linalg.norm(r_rx - tx_state[:, :3], axis=1) / K.C
    tau = np.linalg.norm(r_rx - tx_state[:, :3] + tau[:, None] * v_tx, axis=1) / K.C
    r_tx = tx_state[:, :3] - tau[:, None] * v_tx
    r3 = np.linalg.norm(tx_state[:, :3], axis=1) ** 3
    v_tx = v_tx + (tau * _GM / r3)[:, None] * tx_state[:, :3]  # v(t - tau) = v(t) - tau a
    point, radius, s = tangent_point(r_tx, r_rx)
    return dict(altitude_m=radius - K.MARS_MEAN_RADIUS_M, s=s, point=point,
                rate_m_s=_radial_rate(point, s, v_tx, v_rx), tx_position=r_tx,
                tx_velocity=v_tx, rx_position=r_rx, rx_velocity=v_rx)


def _sample_columns(tx, rx, t, near: bool) -> np.ndarray:
    """Tangent altitude and what the interval bounds need, one row per epoch ``t``.

    Columns: 0 altitude [m], 1 s, 2-4 tx position, 5-7 rx position [m], 8-11 tx and
    12-15 rx radius, speed, energy, angular momentum (:func:`_end_columns`), 16 rate of the
    altitude [m/s].
    """
    g = _link_geometry(tx, rx, t, near)
    return np.column_stack([g["altitude_m"], g["s"], g["tx_position"], g["rx_position"],
                            _end_columns(g["tx_position"], g["tx_velocity"]),
                            _end_columns(g["rx_position"], g["rx_velocity"]), g["rate_m_s"]])


def _end_bounds(c0, c1, dt):
    """Bounds over an interval for one end: speed V and radial speed W [m/s], lowest radius
    [m].

    A near end (a Mars orbiter) moves in Mars' field: with its two-body energy E (the
    larger of the two samples) its speed at radius r is sqrt(2E + 2GM/r), largest where r
    is smallest; the radius cannot drop below (r0 + r1 - V dt) / 2 in the interval (it
    changes no faster than the speed) nor below :data:`_R_FLOOR_M`. The radial speed of a
    two-body orbit is at most e sqrt(GM/p) = sqrt(2E + (GM/H)^2) (H: angular momentum).
    Both get the margin :data:`_MARGIN` (of the speed); the acceleration is at most
    GM / r_min^2 with the same margin (J2 adds < 0.5 %). A far end (beyond
    :data:`retrieval.geometry.FAR_END_M`) is not bound to Mars: its larger sampled speed
    with :data:`_FAR_MARGIN`, no radial-speed bound, and :data:`_FAR_ACCEL_M_S2`.
    Returns speed, radial speed [m/s], lowest radius [m], acceleration [m/s^2].
    """
    r0, v0, e0, a0 = c0.T
    r1, v1, e1, a1 = c1.T
    far = np.maximum(r0, r1) > FAR_END_M
    energy = np.maximum(e0, e1)
    v_floor = np.sqrt(np.maximum(2 * energy + 2 * _GM / _R_FLOOR_M, 0.0))
    r_min = np.maximum(_R_FLOOR_M, 0.5 * (r0 + r1 - v_floor * dt))
    vmax = np.sqrt(np.maximum.reduce([2 * energy + 2 * _GM / r_min, v0 * v0, v1 * v1]))
    ang = np.maximum(np.minimum(a0, a1), 1.0)
    radial = np.sqrt(np.maximum(2 * energy + (_GM / ang) ** 2, 0.0))
    vb = np.where(far, (1 + _FAR_MARGIN) * np.maximum(v0, v1), (1 + _MARGIN) * vmax)
    wb = np.where(far, vb, np.minimum(radial + _MARGIN * vmax, vb))
    acc = np.where(far, _FAR_ACCEL_M_S2, (1 + _MARGIN) * _GM / r_min ** 2)
    return vb, wb, np.where(far, np.minimum(r0, r1), r_min), acc


class _Bounds:
    """Rate bound S(s) of the distance from Mars' centre of the segment point at fixed
    fraction s, over one interval (vectorised over intervals).

    The point P(s) = (1 - s) r_tx + s r_rx moves at (1 - s) v_tx + s v_rx; its distance
    changes at the radial component u . v of that velocity (u = P / |P|). The radial
    component of an end's velocity along u is at most W + V sin(theta), theta the angle
    between u and that end's position, sin(theta) <= |P - r_end| / |r_end| (= s|D|/r_tx or
    (1 - s)|D|/r_rx, D = r_rx - r_tx), and never more than V:

    .. math::  S(s) = (1 - s) \\min(V_t, W_t + V_t s c_t) + s \\min(V_r, W_r + V_r (1 - s) c_r)

    with c = max |D| / min r over the interval. S is concave in s.
    """

    def __init__(self, z0, z1, dt):
        self.vt, self.wt, rt, self.at = _end_bounds(z0[:, 8:12], z1[:, 8:12], dt)
        self.vr, self.wr, rr, self.ar = _end_bounds(z0[:, 12:16], z1[:, 12:16], dt)
        d0 = np.linalg.norm(z0[:, 5:8] - z0[:, 2:5], axis=1)
        d1 = np.linalg.norm(z1[:, 5:8] - z1[:, 2:5], axis=1)
        dmax = 0.5 * (d0 + d1 + (self.vt + self.vr) * dt)
        self.ct = dmax / rt
        self.cr = dmax / rr

    def take(self, sel):
        out = object.__new__(_Bounds)
        for k in ("vt", "wt", "vr", "wr", "ct", "cr", "at", "ar"):
            setattr(out, k, getattr(self, k)[sel])
        return out

    def curvature(self, s, f_min):
        """Bound of |d^2 |P(s)| / dt^2| [m/s^2] where |P(s)| >= ``f_min``: with w = dP/dt,
        u = P / |P|, the second derivative is |w_perp|^2 / |P| + u . dw/dt."""
        speed = (1 - s) * self.vt + s * self.vr
        return speed * speed / f_min + (1 - s) * self.at + s * self.ar

    def rate(self, s):
        """S(s) [m/s] and a supergradient dS/ds."""
        at = self.wt + self.vt * s * self.ct
        ar = self.wr + self.vr * (1 - s) * self.cr
        cap_t = at >= self.vt
        cap_r = ar >= self.vr
        val = (1 - s) * np.minimum(self.vt, at) + s * np.minimum(self.vr, ar)
        der = (np.where(cap_t, -self.vt, -at + (1 - s) * self.vt * self.ct)
               + np.where(cap_r, self.vr, ar - s * self.vr * self.cr))
        return val, der


def _may_reach(z0, z1, dt, bounds, threshold, iterations=24):
    """Whether min over s of G(s) = |P0(s)| + |P1(s)| - dt S(s) may be <= ``threshold`` [m].

    G is convex (distances to points on lines; -S convex): bisection on the sign of its
    derivative. An interval is decided as soon as a value G(s) <= threshold is seen (yes)
    or the supporting lines at the two ends of its bracket bound the minimum above the
    threshold (no); after ``iterations`` halvings the undecided ones count as yes.
    """
    p0, q0 = z0[:, 2:5], z0[:, 5:8] - z0[:, 2:5]
    p1, q1 = z1[:, 2:5], z1[:, 5:8] - z1[:, 2:5]
    a0, b0, c0 = (q0 * q0).sum(1), (p0 * q0).sum(1), (p0 * p0).sum(1)
    a1, b1, c1 = (q1 * q1).sum(1), (p1 * q1).sum(1), (p1 * p1).sum(1)

    def g(s, i):
        f0 = np.sqrt(np.maximum(a0[i] * s * s + 2 * b0[i] * s + c0[i], 0.0))
        f1 = np.sqrt(np.maximum(a1[i] * s * s + 2 * b1[i] * s + c1[i], 0.0))
        rate, drate = bounds.take(i).rate(s)
        val = f0 + f1 - dt[i] * rate
        der = (a0[i] * s + b0[i]) / np.maximum(f0, 1.0) \
            + (a1[i] * s + b1[i]) / np.maximum(f1, 1.0) - dt[i] * drate
        return val, der

    n = len(dt)
    i = np.arange(n)
    lo, hi = np.zeros(n), np.ones(n)
    g_lo, d_lo = g(lo, i)
    g_hi, d_hi = g(hi, i)
    out = (g_lo <= threshold) | (g_hi <= threshold)
    for _ in range(iterations + 1):
        width = hi - lo
        # convexity: G >= its tangent at each end of the bracket; the minimum is inside
        # (or at an end where the derivative keeps one sign)
        low = np.maximum(g_lo + np.minimum(d_lo, 0) * width, g_hi - np.maximum(d_hi, 0) * width)
        keep = ~out[i] & (low <= threshold)
        i, lo, hi, g_lo, d_lo, g_hi, d_hi = (x[keep] for x in (i, lo, hi, g_lo, d_lo, g_hi,
                                                                d_hi))
        if not len(i):
            break
        mid = 0.5 * (lo + hi)
        g_m, d_m = g(mid, i)
        out[i[g_m <= threshold]] = True
        right = d_m < 0
        lo, g_lo, d_lo = (np.where(right, mid, lo), np.where(right, g_m, g_lo),
                          np.where(right, d_m, d_lo))
        hi, g_hi, d_hi = (np.where(right, hi, mid), np.where(right, g_hi, g_m),
                          np.where(right, d_hi, d_m))
    out[i] = True  # undecided after the last halving
    return out


def _cleared_below(z0, z1, dt, bounds, rate0, rate1, rho_level):
    """Intervals below a level at both ends that cannot rise to it, by the second
    derivative: the segment point at s0 (the tangent point at t0) starts at rho0 with the
    tangent rate h'(t0) (envelope theorem) and curves by at most A (:meth:`_Bounds.
    curvature`), so it stays below rho_L until tau0, the root of
    rho0 + h'(t0) tau + A tau^2 / 2 = rho_L; likewise backwards from t1. The ray can clear
    rho_L only where both points are above it: no crossing if tau0 + tau1 > dt.
    """
    rho0 = K.MARS_MEAN_RADIUS_M + z0[:, 0]
    rho1 = K.MARS_MEAN_RADIUS_M + z1[:, 0]
    # the search geometry's rates are within ~v/c (1e-5) of the true ones
    up0 = z0[:, 16] + 1e-4 * np.abs(z0[:, 16]) + 0.01
    up1 = -z1[:, 16] + 1e-4 * np.abs(z1[:, 16]) + 0.01
    out = np.zeros(len(dt), bool)
    for rho, up, s, rate, k in ((rho0, up0, z0[:, 1], rate0, 0), (rho1, up1, z1[:, 1], rate1, 1)):
        f_min = 0.5 * (rho0 + rho1 - rate * dt)  # the Lipschitz cones from both ends
        acc = bounds.curvature(s, np.maximum(f_min, 1.0))
        gap = rho_level - rho + _SCAN_ERROR_M
        q = np.sqrt(up * up + 2 * acc * gap)
        tau = np.where(up > 0, 2 * gap / (up + q), (q - up) / acc)
        tau = np.where(f_min > 0.5 * K.MARS_MEAN_RADIUS_M, tau, 0.0)
        if k == 0:
            tau0 = tau
    return out | (tau0 + tau > dt)


def _ambiguous(z0, z1, dt, levels, same_sign_only=False):
    """Intervals that may hold a crossing of a level (rows of :func:`_sample_columns` at
    both ends, ``dt`` [s]); with ``same_sign_only``, only a crossing pair between ends on
    the same side of a level.

    A sign change of h - L is a crossing. Below the level at both ends (radius rho < rho_L =
    R + L), a crossing at t' needs the segment to be clear of the sphere rho_L at t', so the
    segment point at the fraction s0 of the tangent point at t0 must have risen from rho0
    to rho_L: (rho_L - rho0) / S(s0) + (rho_L - rho1) / S(s1) <= dt. Above it at both ends,
    a crossing at t' means some point P(s') of the segment at rho_L at t', which was within
    (t' - t0) S(s') of it at t0 and within (t1 - t') S(s') at t1:
    min_s [|P0(s)| + |P1(s)| - dt S(s)] <= 2 rho_L (:func:`_may_reach`).
    """
    out = np.zeros(len(dt), bool)
    if not len(dt):
        return out
    bounds = _Bounds(z0, z1, dt)
    h0, h1 = z0[:, 0], z1[:, 0]
    rate0 = np.maximum(bounds.rate(z0[:, 1])[0], 1e-3)
    rate1 = np.maximum(bounds.rate(z1[:, 1])[0], 1e-3)
    vmax = np.maximum(bounds.vt, bounds.vr)
    for lev in levels:
        d0, d1 = h0 - lev, h1 - lev
        change = np.sign(d0) != np.sign(d1)
        below = (d0 < 0) & (d1 < 0) & ((_SCAN_ERROR_M - d0) / rate0
                                        + (_SCAN_ERROR_M - d1) / rate1 <= dt)
        if below.any():
            i = np.nonzero(below)[0]
            below[i] = ~_cleared_below(z0[i], z1[i], dt[i], bounds.take(i), rate0[i],
                                       rate1[i], K.MARS_MEAN_RADIUS_M + lev)
        above = (d0 > 0) & (d1 > 0) & (d0 + d1 - 2 * _SCAN_ERROR_M <= vmax * dt)  # S <= vmax
        if above.any():
            i = np.nonzero(above)[0]
            above[i] = _may_reach(z0[i], z1[i], dt[i], bounds.take(i),
                                  2 * (K.MARS_MEAN_RADIUS_M + lev + _SCAN_ERROR_M))
        out |= below | above if same_sign_only else change | below | above
    return out


class _Rows:
    """Append-only rows of samples (a buffer that doubles when full)."""

    def __init__(self, width):
        self.a = np.empty((1024, width))
        self.n = 0

    def append(self, rows):
        while self.n + len(rows) > len(self.a):
            self.a = np.concatenate([self.a, np.empty_like(self.a)])
        self.a[self.n:self.n + len(rows)] = rows
        self.n += len(rows)
        return np.arange(self.n - len(rows), self.n)


def _scan(tx, rx, et_grid, levels, progress=None, chunk=20000, coarse=64, near=False):
    """Sample h on the grid, skipping what the rate bounds clear, and bisect ambiguous steps;
    return (t, rows of :func:`_sample_columns`), sorted in time.

    The grid is sampled coarse to fine: every ``coarse``-th point first, then the midpoint
    (on the grid) of every interval that may hold a crossing (:func:`_ambiguous`), down to
    single grid steps; an interval cleared by the bounds is never looked into again, so the
    stretches where the ray is far from every level cost a few epochs, not one a step. Every
    grid step that holds a crossing, or that the bounds cannot clear, is sampled at both
    ends as on the full grid; below the grid step, ambiguous steps (same side of a level,
    near it) are bisected until cleared or shorter than 0.05 s. The brackets of the
    crossings are those of the full grid.
    """
    n = len(et_grid)
    rows = _Rows(18)  # the columns of _sample_columns, then the epoch

    def sample(t, frac):
        # in time order: SPICE reads an SPK's records far faster in sequence than at random
        # (measured 5.6 vs 15.5 us an epoch on the preset orbits)
        order = np.argsort(t, kind="stable")
        ts = t[order]
        parts = [_sample_columns(tx, rx, ts[i0:i0 + chunk], near)
                 for i0 in range(0, len(ts), chunk)]
        if progress:
            progress(frac)
        z = np.concatenate(parts) if parts else np.empty((0, 17))
        out = np.empty(len(t), int)
        out[order] = rows.append(np.column_stack([z, ts]))
        return out

    def split_loop(lo, hi, r_lo, r_hi, midpoint, usable, **kw):
        """Test the intervals (row pairs); split the ambiguous ones; repeat on the halves."""
        while len(lo):
            keep = usable(lo, hi, r_lo, r_hi)
            lo, hi, r_lo, r_hi = lo[keep], hi[keep], r_lo[keep], r_hi[keep]
            z = rows.a
            amb = _ambiguous(z[r_lo], z[r_hi], z[r_hi, 17] - z[r_lo, 17], levels, **kw)
            lo, hi, r_lo, r_hi = lo[amb], hi[amb], r_lo[amb], r_hi[amb]
            if not len(lo):
                break
            mid, t_mid, frac = midpoint(lo, hi, r_lo, r_hi)
            r_mid = sample(t_mid, frac)
            lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
            r_lo, r_hi = np.concatenate([r_lo, r_mid]), np.concatenate([r_mid, r_hi])

    # coarse to fine on grid indices
    idx = np.unique(np.r_[np.arange(0, n, coarse), n - 1])
    r = sample(et_grid[idx], 0.1)

    def grid_mid(lo, hi, r_lo, r_hi):
        mid = (lo + hi) // 2
        gap = int(np.max(hi - lo))
        return mid, et_grid[mid], min(0.8, 0.1 + 0.7 * (1.0 - gap / coarse))

    split_loop(idx[:-1], idx[1:], r[:-1], r[1:], grid_mid,
               lambda lo, hi, r_lo, r_hi: hi - lo > 1)
    # below the grid step: bisect ambiguous steps (same side of a level, near it)
    order = np.argsort(rows.a[:rows.n, 17], kind="stable")

    def sub_mid(lo, hi, r_lo, r_hi):
        t_mid = 0.5 * (rows.a[r_lo, 17] + rows.a[r_hi, 17])
        return np.zeros(len(lo), int), t_mid, 0.8

    split_loop(np.zeros(len(order) - 1, int), np.zeros(len(order) - 1, int), order[:-1],
               order[1:], sub_mid,
               lambda lo, hi, r_lo, r_hi: rows.a[r_hi, 17] - rows.a[r_lo, 17] > _MIN_INTERVAL_S,
               same_sign_only=True)
    z = rows.a[:rows.n]
    z = z[np.argsort(z[:, 17], kind="stable")]
    return z[:, 17].copy(), z[:, :17]


def _refine(tx, rx, lo, hi, z_lo, z_hi, level, near, tol_s=1e-4):
    """Refine all brackets at once: safeguarded Newton, one ephemeris batch a step.

    The first estimate is the root of the cubic Hermite interpolant of h through the
    bracket's ends (values and rates); a Newton step that leaves the bracket is replaced by
    regula falsi. A bracket is done when the estimate is within ``tol_s`` of the crossing
    judged from the local rate (|h - L| < tol_s |dh/dt|) or from the bracket width.
    """
    a, b = lo.copy(), hi.copy()
    fa, fb = z_lo[:, 0] - level, z_hi[:, 0] - level
    width = b - a
    m0, m1 = z_lo[:, 16] * width, z_hi[:, 16] * width
    # root of the cubic Hermite interpolant on u in [0, 1] (a few Newton steps from the
    # secant root; falls back to the secant root if it leaves [0, 1])
    u = np.clip(fa / (fa - fb), 0.0, 1.0)
    sec = u.copy()
    for _ in range(8):
        u2, u3 = u * u, u * u * u
        p = ((2 * u3 - 3 * u2 + 1) * fa + (u3 - 2 * u2 + u) * m0 + (-2 * u3 + 3 * u2) * fb
             + (u3 - u2) * m1)
        dp = (6 * u2 - 6 * u) * fa + (3 * u2 - 4 * u + 1) * m0 + (-6 * u2 + 6 * u) * fb \
            + (3 * u2 - 2 * u) * m1
        u = u - p / np.where(dp == 0, np.inf, dp)
    u = np.where(np.isfinite(u) & (u > 0) & (u < 1), u, sec)
    c = a + u * width
    root = c.copy()
    todo = np.arange(len(a))
    for _ in range(100):
        if not len(todo):
            break
        g = _link_geometry(tx, rx, c[todo], near)
        fc, rate = g["altitude_m"] - level, g["rate_m_s"]
        root[todo] = c[todo]
        done = (np.abs(fc) < tol_s * np.abs(rate)) | (b[todo] - a[todo] < tol_s)
        low_side = np.sign(fc) == np.sign(fa[todo])
        a[todo] = np.where(low_side, c[todo], a[todo])
        fa[todo] = np.where(low_side, fc, fa[todo])
        b[todo] = np.where(low_side, b[todo], c[todo])
        fb[todo] = np.where(low_side, fb[todo], fc)
        newton = c[todo] - fc / np.where(rate == 0, np.inf, rate)
        falsi = b[todo] - fb[todo] * (b[todo] - a[todo]) / (fb[todo] - fa[todo])
        inside = (newton > a[todo]) & (newton < b[todo])
        c[todo] = np.where(inside, newton, falsi)
        todo = todo[~done]
    return root


def find_events(tx: int | str, rx: int | str, start_et: float, stop_et: float,
                reference_altitude_m: float = 200e3, step_s: float = 60.0,
                progress: Callable[[float], None] | None = None) -> xr.Dataset:
    """Find every ingress and egress of the link ``tx -> rx`` in a time window.

    Parameters
    ----------
    tx, rx : str or int
        NAIF names or IDs (kernels must be loaded).
    start_et, stop_et : float
        Window [s past J2000 TDB], times at the Mars-side reference end of the link.
    reference_altitude_m : float
        The reference tangent altitude [m] (default 200 km).
    step_s : float
        Initial sampling step [s]; ambiguous intervals are refined automatically.
    progress : callable, optional
        Called with the completed fraction (0-1).

    Returns
    -------
    xarray.Dataset
        Dimension ``event``; variables ``kind`` (ingress|egress), ``et`` and ``time_utc``
        (tangent-point time at the reference altitude), ``et_0km``/``time_0km_utc`` (crossing of
        the surface, NaN/"" if the ray never reached it), ``duration_s`` (between the two),
        ``lat_deg``, ``lon_deg``, ``sza_deg``, ``ltst_hours``, ``ls_deg`` (tangent point at the
        reference altitude), ``vertical_speed_km_s`` (rate of the tangent altitude there),
        ``bottom_altitude_km`` (lowest tangent altitude reached, 0 if the ray was cut).
    """
    if not (np.isfinite(start_et) and np.isfinite(stop_et)) or stop_et <= start_et:
        raise RoharnessError("the search window is empty: --stop must be after --start")
    if not reference_altitude_m > 0:
        raise RoharnessError(f"reference altitude {reference_altitude_m} m must be above 0 km")
    if not step_s > 0:
        raise RoharnessError(f"search step {step_s} s must be positive")
    nstep = int(np.ceil((stop_et - start_et) / step_s))
    grid = np.linspace(start_et, stop_et, nstep + 1)
    levels = (0.0, float(reference_altitude_m))
    probe = tangent_altitude(tx, rx, grid[:1])
    near = bool(max(np.linalg.norm(probe["tx_position"][0]),
                    np.linalg.norm(probe["rx_position"][0])) <= FAR_END_M)
    t, z = _scan(tx, rx, grid, levels, progress, near=near)
    h = z[:, 0]

    crossings = []  # (et, level index, direction +1 rising / -1 falling)
    for li, lev in enumerate(levels):
        d = h - lev
        idx = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
        if len(idx):
            roots = _refine(tx, rx, t[idx], t[idx + 1], z[idx], z[idx + 1], lev, near)
            crossings += [(r, li, 1 if d[i + 1] > d[i] else -1) for r, i in zip(roots, idx)]
    crossings.sort()
    if progress:
        progress(0.9)

    # a reference-level crossing whose closest point is an end of the segment (a spacecraft
    # below the reference altitude looking up) is not a tangent-point event: drop it first
    geometry = None
    if crossings:
        ref_times = np.array([c[0] for c in crossings if c[1] == 1])
        if len(ref_times):
            geometry = tangent_altitude(tx, rx, ref_times)
            keep = (geometry["s"] > 1e-9) & (geometry["s"] < 1 - 1e-9)
            interior = iter(keep)
            crossings = [c for c in crossings if c[1] == 0 or next(interior)]
            geometry = {k: v[keep] if isinstance(v, np.ndarray) else v
                        for k, v in geometry.items()}
    events = []  # (et at reference level, kind, et of the matching 0 km crossing)
    for k, (et_c, li, direction) in enumerate(crossings):
        if li != 1:
            continue
        kind = "ingress" if direction < 0 else "egress"
        # matching surface crossing: the next (ingress) / previous (egress) level-0 crossing
        # before the ray comes back through the reference altitude
        partner = np.nan
        other_side = t[-1] if kind == "ingress" else t[0]
        rng_ = range(k + 1, len(crossings)) if kind == "ingress" else range(k - 1, -1, -1)
        for j in rng_:
            if crossings[j][1] == 1:
                other_side = crossings[j][0]
                break
            if crossings[j][1] == 0 and not np.isfinite(partner):
                partner = crossings[j][0]
        events.append((et_c, kind, partner, other_side))
    return _events_dataset(tx, rx, events, t, z, reference_altitude_m, geometry, near)


def _lowest_altitude(tx, rx, t, z, k, near, iterations=8):
    """Lowest tangent altitude [m] near the sampled minima ``z[k]``: regula falsi (Illinois)
    on the rate between the neighbouring samples, where it changes sign; the lowest of the
    samples and of the refined points (the sampled minimum where the rate does not bracket
    a turning point)."""
    best = z[k, 0].copy()
    ok = (k > 0) & (k < len(t) - 1)
    k = k[ok]
    a, b = t[k - 1], t[k + 1]
    ra, rb = z[k - 1, 16], z[k + 1, 16]
    turn = (ra < 0) & (rb > 0)
    idx = np.nonzero(ok)[0][turn]
    a, b, ra, rb = a[turn], b[turn], ra[turn], rb[turn]
    for _ in range(iterations):
        if not len(idx):
            break
        c = a - ra * (b - a) / (rb - ra)
        g = _link_geometry(tx, rx, c, near)
        best[idx] = np.minimum(best[idx], g["altitude_m"])
        rc = g["rate_m_s"]
        right = rc > 0
        ra, rb = np.where(right, 0.5 * ra, rc), np.where(right, rc, 0.5 * rb)
        a, b = np.where(right, a, c), np.where(right, c, b)
    return best


def _events_dataset(tx, rx, events, t, z, ref_alt_m, geometry=None,
                    near=False) -> xr.Dataset:
    n = len(events)
    out = {k: np.full(n, np.nan) for k in (
        "et", "et_link", "et_0km", "duration_s", "lat_deg", "lon_deg", "sza_deg", "ltst_hours",
        "ls_deg", "vertical_speed_km_s", "bottom_altitude_km")}
    kinds = [e[1] for e in events]
    if n:
        et_c = np.array([e[0] for e in events])
        partner = np.array([e[2] for e in events])
        g = geometry if geometry is not None else tangent_altitude(tx, rx, et_c)
        et_tp = g["et_tangent"]
        lat, lon, _ = j2000_to_latlon(et_tp, g["point"])
        sol = solar_geometry(et_tp, lat, lon, g["altitude_m"])
        rate = _radial_rate(g["point"], g["s"], g["tx_velocity"], g["rx_velocity"])
        out["et"][:] = et_tp
        out["et_link"][:] = et_c
        out["et_0km"][:] = partner + (et_tp - et_c)
        out["duration_s"][:] = np.abs(partner - et_c)
        out["lat_deg"][:], out["lon_deg"][:] = lat, lon
        for key in ("sza_deg", "ltst_hours", "ls_deg"):
            out[key][:] = sol[key]
        out["vertical_speed_km_s"][:] = rate / 1e3
        h = z[:, 0]
        out["bottom_altitude_km"][:] = 0.0
        lowest = []  # grazing: lowest tangent altitude until the ray comes back up
        for i in np.nonzero(~np.isfinite(partner))[0]:
            lo, hi = sorted((et_c[i], events[i][3]))
            inside = np.nonzero((t >= lo) & (t <= hi))[0]
            if len(inside):
                lowest.append((i, inside[np.argmin(h[inside])]))
            else:
                near_h = h[np.argmin(np.abs(t - et_c[i]))]
                out["bottom_altitude_km"][i] = float(min(near_h, 0.0)) / 1e3
        if lowest:
            rows, k = np.array(lowest).T
            out["bottom_altitude_km"][rows] = _lowest_altitude(tx, rx, t, z, k, near) / 1e3
    utc = spice.et_to_utc(out["et"], 3) if n else []
    fin = np.isfinite(out["et_0km"])
    utc0 = np.full(n, "", dtype=object)
    if fin.any():
        utc0[fin] = spice.et_to_utc(out["et_0km"][fin], 3)
    units = dict(et="s", et_link="s", et_0km="s", duration_s="s", lat_deg="degrees_north",
                 lon_deg="degrees_east", sza_deg="degree", ltst_hours="hour", ls_deg="degree",
                 vertical_speed_km_s="km s-1", bottom_altitude_km="km")
    names = dict(
        et="ephemeris time (TDB past J2000) of the tangent point at the reference altitude",
        et_link="time at the link's reference end (the receiver, or the spacecraft "
        "transmitter of a downlink to Earth) when the ray is at the reference altitude",
        et_0km="ephemeris time of the tangent point at 0 km", duration_s="time from the "
        "reference altitude to 0 km", lat_deg="tangent point areocentric latitude",
        lon_deg="tangent point east longitude", sza_deg="solar zenith angle at the tangent "
        "point", ltst_hours="local true solar time at the tangent point",
        ls_deg="areocentric solar longitude", vertical_speed_km_s="rate of change of the "
        "tangent altitude", bottom_altitude_km="lowest tangent altitude reached")
    data = {k: ("event", v, {"units": units[k], "long_name": names[k]}) for k, v in out.items()}
    data["kind"] = ("event", np.array(kinds, dtype=str))
    data["time_utc"] = ("event", np.array(utc, dtype=str))
    data["time_0km_utc"] = ("event", np.array(utc0, dtype=str))
    ds = xr.Dataset(data, coords={"event": np.arange(n)})
    ds.attrs.update(transmitter=spice.body_name(spice.body_id(tx)),
                    receiver=spice.body_name(spice.body_id(rx)),
                    reference_altitude_m=float(ref_alt_m),
                    reference_radius_m=K.MARS_MEAN_RADIUS_M,
                    title="radio occultation events of a link")
    return ds


def events_to_records(ds: xr.Dataset) -> list[dict]:
    """Events as a list of plain dicts (for JSON)."""
    keys = ["time_utc", "kind", "lat_deg", "lon_deg", "sza_deg", "ltst_hours", "ls_deg",
            "time_0km_utc", "duration_s", "vertical_speed_km_s", "bottom_altitude_km"]
    recs = []
    for i in range(ds.sizes["event"]):
        rec = {}
        for k in keys:
            v = ds[k].values[i]
            rec[k] = v.item() if hasattr(v, "item") else v
        recs.append(rec)
    return recs
