"""One-way Doppler <-> bending: the per-sample ray-angle solvers.

For each sample of an occultation, the residual Doppler (bent minus straight-line received
frequency) and the positions and velocities of the transmitter T and the receiver R give the
two ray directions, hence the bending angle :math:`\\alpha` and the impact parameter
:math:`a` [1]_ [2]_ (:func:`bending_from_doppler`); :func:`doppler_from_bending` is the
forward counterpart. Observation Datasets are handled by :mod:`retrieval.bending`, the
two-way and dual-frequency relations by :mod:`retrieval.two_way`.

Formulation in deviations from the straight line
------------------------------------------------
Let :math:`u = (r_R - r_T)/|r_R - r_T|` be the straight line, :math:`a_0` its impact
parameter and :math:`\\hat n` the in-plane unit vector from Mars' centre to its closest
point; in the plane :math:`T = (t_T, a_0)`, :math:`R = (t_R, a_0)` with
:math:`t_{T,R} = r_{T,R}\\cdot u` (:math:`t_T < 0 < t_R`: the tangent point lies between the
ends). A ray bent toward the planet by :math:`\\alpha = \\delta_T + \\delta_R` leaves T
tilted away from the planet by :math:`\\delta_T` and arrives at R tilted toward it by
:math:`\\delta_R`:

.. math::

    e_T = \\cos\\delta_T\\, u + \\sin\\delta_T\\, \\hat n, \\qquad
    e_R = \\cos\\delta_R\\, u - \\sin\\delta_R\\, \\hat n .

Bouguer's rule (:math:`a = |r_T \\times e_T| = |r_R \\times e_R|`) in deviations:

.. math::

    a - a_0 = |t_T|\\sin\\delta_T - 2 a_0 \\sin^2(\\delta_T/2)
            = t_R \\sin\\delta_R - 2 a_0 \\sin^2(\\delta_R/2).

Doppler (first order in v/c, the contract's form)
:math:`f_R = f_T (1 - e_R\\cdot v_R/c)/(1 - e_T\\cdot v_T/c)`; with
:math:`D_{X0} = 1 - u\\cdot v_X/c` and
:math:`\\epsilon_X = (e_X - u)\\cdot v_X / c` (computed from the deviations, never as the
difference of two nearly equal frequencies) the residual is exactly

.. math::

    \\Delta f = f_T\\,\\frac{D_{R0}\\,\\epsilon_T - D_{T0}\\,\\epsilon_R}
                          {(D_{T0} - \\epsilon_T)\\, D_{T0}} .

The two equations are solved for :math:`(\\delta_T, \\delta_R)` by Newton's method with the
analytic Jacobian, vectorised over samples, starting from zero (the first step is the
usual linearised solution). Working with deviations keeps full precision for Earth links,
where the Earth-end deviation is ~1e-8 rad at ~1e11 m.

References
----------
.. [1] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), Astron. J. 76, 123-140,
   doi:10.1086/111096.
.. [2] Withers, P. et al. (2014), Planet. Space Sci. 101, 77-88,
   doi:10.1016/j.pss.2014.06.011.
"""

from __future__ import annotations

import numpy as np

from retrieval import constants as K
from retrieval.errors import RoharnessError

# --- the per-sample solver ------------------------------------------------------------

def _rows(name, value, n=None):
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 1 and arr.size == 3 and n not in (None, 1):
        arr = np.broadcast_to(arr, (n, 3))
    arr = np.atleast_2d(arr)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise RoharnessError(f"{name} must have shape (n, 3) [m or m/s], got {arr.shape}")
    return arr


def _dot(a, b):
    return np.einsum("ij,ij->i", a, b)


def _residual_and_jacobian(dt, dr, geo):
    """Model residual Doppler, Bouguer mismatch and their Jacobian at (dt, dr)."""
    c = K.C
    st, sr = np.sin(dt), np.sin(dr)
    ct, cr = np.cos(dt), np.cos(dr)
    ht, hr = np.sin(0.5 * dt), np.sin(0.5 * dr)
    eps_t = (-2.0 * ht * ht * geo["vtu"] + st * geo["vtn"]) / c
    eps_r = (-2.0 * hr * hr * geo["vru"] - sr * geo["vrn"]) / c
    d_t = geo["dt0"] - eps_t
    d_r = geo["dr0"] - eps_r
    f_t = geo["f"]
    df = f_t * (geo["dr0"] * eps_t - geo["dt0"] * eps_r) / (d_t * geo["dt0"])
    da_t = geo["tt"] * st - 2.0 * geo["a0"] * ht * ht
    da_r = geo["tr"] * sr - 2.0 * geo["a0"] * hr * hr
    j11 = f_t * d_r / (d_t * d_t) * (-st * geo["vtu"] + ct * geo["vtn"]) / c
    j12 = -f_t / d_t * (-sr * geo["vru"] - cr * geo["vrn"]) / c
    j21 = geo["tt"] * ct - geo["a0"] * st
    j22 = -(geo["tr"] * cr - geo["a0"] * sr)
    return df, da_t, da_r, (j11, j12, j21, j22)


def _doppler_geometry(g, v_t, v_r, frequency_hz):
    """Velocity projections on the straight line (``u``) and its normal (``n_hat``), the
    vacuum Doppler factors :math:`D_{X0} = 1 - u\\cdot v_X/c` and the lever arms."""
    u, nh = g["u"], g["n_hat"]
    geo = {
        "vtu": _dot(v_t, u), "vtn": _dot(v_t, nh), "vru": _dot(v_r, u), "vrn": _dot(v_r, nh),
        "tt": g["tt"], "tr": g["tr"], "a0": g["a0"], "f": float(frequency_hz),
    }
    geo["dt0"] = 1.0 - geo["vtu"] / K.C
    geo["dr0"] = 1.0 - geo["vru"] / K.C
    return geo


def straight_line_geometry(tx_position_m, rx_position_m):
    """Straight-line (vacuum) geometry of each sample.

    Returns a dict with ``u`` (unit T->R direction), ``n_hat`` (unit in-plane vector from
    Mars' centre to the line's closest point), ``a0`` [m] (straight-line impact parameter),
    ``tt`` = :math:`-r_T\\cdot u` and ``tr`` = :math:`r_R\\cdot u` [m] (both positive when
    the closest point lies between the ends).
    """
    r_t = _rows("tx_position", tx_position_m)
    r_r = _rows("rx_position", rx_position_m, r_t.shape[0])
    r_t = np.broadcast_to(r_t, r_r.shape) if r_t.shape[0] == 1 else r_t
    line = r_r - r_t
    length = np.linalg.norm(line, axis=1)
    if np.any(length == 0):
        raise RoharnessError("transmitter and receiver positions coincide in some sample")
    u = line / length[:, None]
    tt = -_dot(r_t, u)
    tr = _dot(r_r, u)
    # perpendicular offset taken from the nearer end (no cancellation of a 1e11 m term)
    near_t = np.linalg.norm(r_t, axis=1) <= np.linalg.norm(r_r, axis=1)
    perp = np.where(near_t[:, None], r_t + tt[:, None] * u, r_r - tr[:, None] * u)
    a0 = np.linalg.norm(perp, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_hat = perp / a0[:, None]
    return {"u": u, "n_hat": n_hat, "a0": a0, "tt": tt, "tr": tr, "r_t": r_t, "r_r": r_r}


def _newton_step(dt, dr, step_t, step_r, active, converged):
    """Apply a Newton step to the active samples and update the convergence mask.

    Converged when the step is at the rounding level of the angles (relative 1e-13, or
    1e-20 rad absolute for the vanishing bending above an ionosphere).
    """
    dt = np.where(active, dt + step_t, dt)
    dr = np.where(active, dr + step_r, dr)
    small = (np.abs(step_t) <= 1e-13 * np.abs(dt) + 1e-20) & \
            (np.abs(step_r) <= 1e-13 * np.abs(dr) + 1e-20)
    return dt, dr, converged | (active & small)


def bending_from_doppler(tx_position_m, tx_velocity_m_s, rx_position_m, rx_velocity_m_s,
                         frequency_residual_hz, frequency_hz, *, max_iterations=30):
    """Bending angle and impact parameter of each sample from the residual Doppler.

    Solves the Doppler equation and Bouguer's rule for the deviations of the two ray
    directions from the straight line (module notes), per sample, vectorised.

    Parameters
    ----------
    tx_position_m, rx_position_m : array_like, shape (n, 3)
        Transmitter position at emission and receiver position at reception, Mars-centred
        inertial [m].
    tx_velocity_m_s, rx_velocity_m_s : array_like, shape (n, 3)
        Their velocities relative to Mars [m/s].
    frequency_residual_hz : array_like, shape (n,)
        One-way residual Doppler, bent minus straight-line received frequency [Hz].
    frequency_hz : float
        Transmitted frequency :math:`f_T` [Hz].
    max_iterations : int
        Newton iterations at most (2-4 are typical).

    Returns
    -------
    dict of ndarray, shape (n,)
        ``bending_angle_rad`` (:math:`\\alpha = \\delta_T + \\delta_R`, positive toward the
        planet), ``impact_parameter_m`` (:math:`a`), ``straight_impact_parameter_m``
        (:math:`a_0`), ``tx_deviation_rad``, ``rx_deviation_rad``,
        ``tangent_point_direction`` (n, 3) (unit vector from Mars' centre to the ray's
        closest approach, at :math:`\\arccos(a/r_T) + \\alpha/2` from :math:`\\hat r_T`
        toward :math:`\\hat r_R`), ``converged`` (bool; False where the Newton iteration
        did not converge or the geometry is degenerate, those samples are NaN).

    Raises
    ------
    RoharnessError
        Mis-shaped inputs, or a non-positive frequency.
    """
    g = straight_line_geometry(tx_position_m, rx_position_m)
    n = g["a0"].size
    v_t = _rows("tx_velocity", tx_velocity_m_s, n)
    v_r = _rows("rx_velocity", rx_velocity_m_s, n)
    df_obs = np.broadcast_to(np.asarray(frequency_residual_hz, float), (n,))
    if not (np.ndim(frequency_hz) == 0 and float(frequency_hz) > 0):
        raise RoharnessError(f"frequency_hz must be one positive number [Hz], got {frequency_hz!r}")
    if v_t.shape[0] != n or v_r.shape[0] != n:
        raise RoharnessError(f"velocities must have {n} rows like the positions")
    geo = _doppler_geometry(g, v_t, v_r, frequency_hz)
    ok = (g["tt"] > 0) & (g["tr"] > 0) & (g["a0"] > 0) & np.isfinite(df_obs)
    dt = np.zeros(n)
    dr = np.zeros(n)
    converged = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(int(max_iterations)):
            df, da_t, da_r, (j11, j12, j21, j22) = _residual_and_jacobian(dt, dr, geo)
            f1 = df - df_obs
            f2 = da_t - da_r
            det = j11 * j22 - j12 * j21
            step_t = (-f1 * j22 + j12 * f2) / det
            step_r = (-j11 * f2 + j21 * f1) / det
            dt, dr, converged = _newton_step(dt, dr, step_t, step_r, ok & ~converged, converged)
            if not (ok & ~converged).any():
                break
        # one last update of the Bouguer deviation at the solution
        _, da_t, da_r, _ = _residual_and_jacobian(dt, dr, geo)
    good = converged & np.isfinite(dt) & np.isfinite(dr)
    alpha = np.where(good, dt + dr, np.nan)
    a = np.where(good, g["a0"] + 0.5 * (da_t + da_r), np.nan)
    # tangent-point direction in the ray plane
    r_t = g["r_t"]
    rt_norm = np.linalg.norm(r_t, axis=1)
    rt_hat = r_t / rt_norm[:, None]
    rr_hat = g["r_r"] / np.linalg.norm(g["r_r"], axis=1)[:, None]
    p = rr_hat - _dot(rr_hat, rt_hat)[:, None] * rt_hat
    with np.errstate(invalid="ignore", divide="ignore"):
        p /= np.linalg.norm(p, axis=1)[:, None]
        psi = np.arccos(np.clip(a / rt_norm, -1.0, 1.0)) + 0.5 * alpha
    direction = np.cos(psi)[:, None] * rt_hat + np.sin(psi)[:, None] * p
    return {
        "bending_angle_rad": alpha,
        "impact_parameter_m": a,
        "straight_impact_parameter_m": g["a0"],
        "tx_deviation_rad": np.where(good, dt, np.nan),
        "rx_deviation_rad": np.where(good, dr, np.nan),
        "tangent_point_direction": direction,
        "converged": good,
    }


# --- the forward counterpart, for the two-way and dual-frequency corrections ------------

def doppler_from_bending(tx_position_m, tx_velocity_m_s, rx_position_m, rx_velocity_m_s,
                         frequency_hz, bending, *, max_iterations=30):
    """Residual Doppler of the bent ray through a known bending-angle profile.

    The forward counterpart of :func:`bending_from_doppler`, in the same deviation
    variables: for each sample solve Bouguer's rule and the closure
    :math:`\\delta_T + \\delta_R = \\alpha(a)` for :math:`(\\delta_T, \\delta_R)`, with
    :math:`a = a_0 + (\\Delta a_T + \\Delta a_R)/2`,

    .. math::

        \\Delta a_T(\\delta_T) = \\Delta a_R(\\delta_R), \\qquad
        \\delta_T + \\delta_R = \\alpha\\big(a_0 + \\Delta a_T\\big),

    by Newton's method (analytic Jacobian, vectorised over samples), then evaluate the
    residual Doppler of the module notes. Used by :func:`joint_two_way_residual` to predict
    each leg of a two-way link from the current estimate of :math:`\\alpha(a)`.

    Parameters
    ----------
    tx_position_m, tx_velocity_m_s, rx_position_m, rx_velocity_m_s : array_like (n, 3)
        As in :func:`bending_from_doppler` [m, m/s].
    frequency_hz : float
        Transmitted frequency [Hz].
    bending : callable
        ``bending(a) -> (alpha, dalpha_da)``: bending angle [rad] at this link's frequency
        and its derivative [rad/m] at impact parameters ``a`` [m].
    max_iterations : int
        Newton iterations at most (3-5 are typical).

    Returns
    -------
    dict of ndarray, shape (n,)
        ``frequency_residual_hz`` (bent minus straight received frequency),
        ``impact_parameter_m``, ``bending_angle_rad``, ``vacuum_ratio``
        (:math:`f_R/f_T` of the straight line, :math:`D_{R0}/D_{T0}`) and ``converged``.
    """
    g = straight_line_geometry(tx_position_m, rx_position_m)
    n = g["a0"].size
    v_t = _rows("tx_velocity", tx_velocity_m_s, n)
    v_r = _rows("rx_velocity", rx_velocity_m_s, n)
    if not (np.ndim(frequency_hz) == 0 and float(frequency_hz) > 0):
        raise RoharnessError(f"frequency_hz must be one positive number [Hz], got {frequency_hz!r}")
    geo = _doppler_geometry(g, v_t, v_r, frequency_hz)
    ok = (g["tt"] > 0) & (g["tr"] > 0) & (g["a0"] > 0)
    dt = np.zeros(n)
    dr = np.zeros(n)
    converged = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(int(max_iterations)):
            _, da_t, da_r, (_, _, j21, j22) = _residual_and_jacobian(dt, dr, geo)
            alpha, slope = bending(g["a0"] + 0.5 * (da_t + da_r))
            f1 = dt + dr - alpha
            f2 = da_t - da_r
            # d a / d dt = j21 / 2, d a / d dr = -j22 / 2 (see _residual_and_jacobian)
            m11 = 1.0 - 0.5 * slope * j21
            m12 = 1.0 + 0.5 * slope * j22
            det = m11 * j22 - m12 * j21
            step_t = (-f1 * j22 + m12 * f2) / det
            step_r = (-m11 * f2 + j21 * f1) / det
            dt, dr, converged = _newton_step(dt, dr, step_t, step_r, ok & ~converged, converged)
            if not (ok & ~converged).any():
                break
        df, da_t, da_r, _ = _residual_and_jacobian(dt, dr, geo)
    good = converged & np.isfinite(df)
    return {
        "frequency_residual_hz": np.where(good, df, np.nan),
        "impact_parameter_m": np.where(good, g["a0"] + 0.5 * (da_t + da_r), np.nan),
        "bending_angle_rad": np.where(good, dt + dr, np.nan),
        "vacuum_ratio": geo["dr0"] / geo["dt0"],
        "converged": good,
    }
