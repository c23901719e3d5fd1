"""Bending angle and impact parameter from the residual Doppler and the state vectors.

For each sample of an occultation, the residual Doppler (bent minus straight-line received
frequency) and the positions and velocities of the transmitter T and the receiver R give the
two ray directions, hence the bending angle :math:`\\alpha` and the impact parameter
:math:`a` [1]_ [2]_. The ray lies in the plane of :math:`r_T`, :math:`r_R` and Mars' centre.

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

Two-way and dual-frequency links [3]_: the plasma residual of a coherent two-way link with
turnaround ratio :math:`k` is :math:`\\Delta f_{2w} = (1 + k^2)\\,\\Delta f_{down}`; the
differential Doppler :math:`\\Delta\\Delta f = \\Delta f_{XS} - (3/11)\\Delta f_{XX}` of an
X-band uplink with coherent X and S downlinks cancels every non-dispersive term and the
uplink plasma term, leaving
:math:`\\Delta\\Delta f = \\Delta f_{S,down}(1 - (3/11)^2) = \\Delta f_{X,down}(11/3 - 3/11)`.
These relations are exact for the plasma term only (the neutral atmosphere cancels in the
differential and does not scale as :math:`1/f` in the two-way sum), and treat the up- and
down-link rays as one ray. They are not one ray: the ground station emits the uplink at
:math:`t - \\tau` and receives the downlink at :math:`t + \\tau` (~1e4 km apart for Earth's
~30 km/s relative to Mars), so the uplink passes the limb tens of metres beside the
downlink; the S-band ray, bent ~13 times more, passes ~10 times further from the straight
line than the X-band ray; and the plasma bending scales as :math:`f^{-2}` only to first
order. For mex-xs-twoway the one-ray relations leave 2.6e-3 (X) and 8.8e-3 (X/S) of the
peak residual, 1.2e-3 and 3.0e-3 of the peak N_e. :func:`joint_two_way_residual` (the
default, ``two_way="joint"``) instead fits the exact two-way Doppler of separate bent rays,
predicted from the current :math:`\\alpha(a)` by :func:`doppler_from_bending`, the forward
counterpart of :func:`bending_from_doppler`.

References
----------
.. [1] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), Astron. J. 76, 123-140,
   doi:10.1086/111096.
.. [2] Withers, P. et al. (2014), Planet. Space Sci. 101, 77-88,
   doi:10.1016/j.pss.2014.06.011.
.. [3] Krishnan, S. et al. (2023), Radio Science 58, e2023RS007784,
   doi:10.1029/2023RS007784.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval.errors import RoharnessError

#: Ways to obtain the one-way residual from an observation Dataset.
RESIDUAL_MODELS = ("auto", "one_way", "two_way", "dual_frequency")
#: How a two-way or dual-frequency residual becomes a one-way one (:func:`one_way_residual`).
TWO_WAY_MODELS = ("joint", "one_ray")
#: Ratio of the S- to the X-band downlink of a coherent X-uplink transponder (240/880).
S_TO_X_RATIO = K.TURNAROUND_S / K.TURNAROUND_X


# --- link combinations ---------------------------------------------------------------

def two_way_to_one_way(residual_two_way_hz, turnaround_ratio=K.TURNAROUND_X):
    """One-way downlink plasma residual of a coherent two-way link.

    .. math:: \\Delta f_{down} = \\Delta f_{2w} / (1 + k^2)

    Parameters
    ----------
    residual_two_way_hz : array_like
        Two-way residual Doppler at the downlink frequency [Hz].
    turnaround_ratio : float
        :math:`k = f_{down}/f_{up}` (880/749 X band, 240/749 S band) [1].

    Returns
    -------
    ndarray
        One-way downlink residual [Hz].
    """
    k = float(turnaround_ratio)
    return np.asarray(residual_two_way_hz, float) / (1.0 + k * k)


def differential_doppler(residual_xs_hz, residual_xx_hz):
    """Dual-frequency differential Doppler :math:`\\Delta\\Delta f = \\Delta f_{XS} - (3/11)
    \\Delta f_{XX}` [Hz] (X uplink; S and X coherent downlinks; 3/11 = 240/880)."""
    return np.asarray(residual_xs_hz, float) - S_TO_X_RATIO * np.asarray(residual_xx_hz, float)


def one_way_from_differential(differential_hz, band="x"):
    """One-way downlink plasma residual at one band from the differential Doppler.

    .. math::

        \\Delta f_{S,down} = \\frac{\\Delta\\Delta f}{1 - (3/11)^2}, \\qquad
        \\Delta f_{X,down} = \\frac{\\Delta\\Delta f}{11/3 - 3/11}

    Parameters
    ----------
    differential_hz : array_like
        :math:`\\Delta\\Delta f` [Hz] from :func:`differential_doppler`.
    band : {"x", "s"}
        Downlink band of the returned residual.
    """
    ratio = S_TO_X_RATIO
    ddf = np.asarray(differential_hz, float)
    if band == "s":
        return ddf / (1.0 - ratio * ratio)
    if band == "x":
        return ddf / (1.0 / ratio - ratio)
    raise ValueError(f"unknown band {band!r}; known: x, s")


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


def _abel_forward_piecewise_linear(x, g):
    """:math:`-2a \\int_a^{x_N} g(x) / \\sqrt{x^2 - a^2}\\,dx` at every node :math:`a = x_i`
    for :math:`g` piecewise linear on the ascending nodes ``x`` (each segment exactly:
    :math:`\\int (p + m x)/\\sqrt{x^2-a^2}\\,dx = p\\,\\operatorname{arccosh}(x/a) + m\\sqrt{x^2
    - a^2}`). Blocks of rows, each with only the segments above its lowest node."""
    slope = np.diff(g) / np.diff(x)
    icpt = g[:-1] - slope * x[:-1]
    out = np.zeros(x.size)
    rows = max(1, (1 << 17) // max(1, x.size))
    for i0 in range(0, x.size - 1, rows):
        aa = x[i0:i0 + rows, None]
        lo = np.maximum(x[None, i0:-1], aa)
        hi = np.maximum(x[None, i0 + 1:], aa)
        s_lo = np.sqrt((lo - aa) * (lo + aa))
        s_hi = np.sqrt((hi - aa) * (hi + aa))
        arc = np.log((hi + s_hi) / (lo + s_lo))
        out[i0:i0 + rows] = -2.0 * aa[:, 0] * (arc @ icpt[i0:] + (s_hi - s_lo) @ slope[i0:])
    return out


def _bending_interpolant(impact_parameter_m, bending_angle_rad, second_order=None):
    """``bending(a, s) -> (alpha, dalpha/da)``: the plasma bending at a carrier whose
    refractivity is ``s`` times that of the samples' carrier, :math:`s = (f_d/f)^2`.

    Plasma refractivity scales exactly as :math:`f^{-2}`, the bending angle as a function
    of impact parameter only to first order: with :math:`x = n r` and
    :math:`L(x) = \\ln n` the Abel pair is exact in :math:`x` (Fjeldbo et al. 1971), but
    :math:`x - r = (n - 1) r` depends on the carrier. Expanding :math:`L_f(x)` in the refractivity,
    :math:`L_f = s L_d + (s - s^2)\\,\\tfrac12 (x L_d^2)' + O((\\nu x/H)^2)`, so

    .. math::

        \\alpha_f(a) = s\\,\\alpha_d(a) + (s - s^2)\\,c(a), \\qquad
        c(a) = -2a \\int_a^\\infty \\frac{q''(x)\\,dx}{\\sqrt{x^2 - a^2}}, \\quad
        q = \\tfrac12 x L_d^2 .

    The second term is :math:`\\sim \\nu_f\\, r/H` of the first: 4e-4 for the S-band leg of
    a Mars link scaled from X band (~1e11 m^-3), 1e-5 for the 7.2 GHz uplink; the neglected
    third order is ~2e-7. :math:`\\alpha_d` is a cubic spline (not-a-knot) through the
    samples, :math:`L_d` from :func:`retrieval.abel.inverse_abel`, :math:`q''` the (piecewise
    linear) second derivative of a cubic spline of :math:`q`, integrated exactly per segment;
    both splines extrapolate by their end cubics over the tens to hundreds of metres by
    which the other legs pass beside the first and last samples. Returns None when fewer
    than 4 finite samples or a non-monotone set of impact parameters.

    ``second_order``: a :math:`c(a)` spline from an earlier call to reuse (the attribute
    ``bending.second_order``), instead of recomputing it.
    """
    from scipy.interpolate import CubicSpline

    from retrieval.abel import inverse_abel

    a = np.asarray(impact_parameter_m, float)
    alpha = np.asarray(bending_angle_rad, float)
    good = np.isfinite(a) & np.isfinite(alpha)
    order = np.argsort(a[good], kind="stable")
    a_s, al_s = a[good][order], alpha[good][order]
    if a_s.size < 4 or not np.all(np.diff(a_s) > 0):
        return None
    spline = CubicSpline(a_s, al_s, bc_type="not-a-knot", extrapolate=True)
    second = second_order
    if second is None:
        log_n = inverse_abel(a_s, al_s)
        q2 = CubicSpline(a_s, 0.5 * a_s * log_n * log_n, bc_type="not-a-knot")(a_s, 2)
        second = CubicSpline(a_s, _abel_forward_piecewise_linear(a_s, q2),
                             bc_type="not-a-knot", extrapolate=True)
    d_spline, d_second = spline.derivative(), second.derivative()

    def bending(x, s=1.0):
        w = s - s * s
        return s * spline(x) + w * second(x), s * d_spline(x) + w * d_second(x)

    bending.second_order = second
    return bending


def joint_two_way_residual(sc_position_m, sc_velocity_m_s, ground_rx_position_m,
                           ground_rx_velocity_m_s, ground_tx_position_m,
                           ground_tx_velocity_m_s, residual_xx_hz, downlink_frequency_hz, *,
                           residual_xs_hz=None, turnaround_ratio=K.TURNAROUND_X,
                           s_turnaround_ratio=K.TURNAROUND_S, band="x", tolerance=1e-8,
                           max_iterations=20):
    """One-way downlink plasma residual of a two-way (or dual-frequency) link, with the
    up- and down-link rays solved as separate bent rays.

    The one-ray relations (:func:`two_way_to_one_way`, :func:`one_way_from_differential`)
    treat the uplink, the X downlink and the S downlink as one ray. They are not: the
    ground station's uplink emission (at :math:`t - \\tau`) and downlink reception (at
    :math:`t + \\tau`, :math:`\\tau \\approx` 5-20 min) are ~1e4 km apart, so the uplink
    passes the limb tens of metres beside the downlink, with its own velocity projections;
    the S-band ray, bent ~13 times more than the X-band ray, passes ~10 times further from
    the straight line; and the two-way Doppler has O(v/c) cross factors. Here the
    combination :math:`G` of the observed two-way residuals (:math:`G = \\Delta f_{XX}/(1+k^2)`,
    or :math:`\\Delta\\Delta f/(11/3 - 3/11)` for dual frequency) is matched by a model of
    the exact two-way Doppler, iterating on the one-way downlink residual
    :math:`\\Delta f_d` at the band's frequency:

    1. start with :math:`\\Delta f_d^{(0)} = G_{obs}` (the one-ray value);
    2. invert :math:`\\Delta f_d^{(j)}` on the downlink geometry
       (:func:`bending_from_doppler`) into :math:`\\alpha_d(a)` per sample, interpolate it
       in :math:`a` (cubic spline) and scale it to each carrier as plasma bending,
       :math:`\\alpha_f(a) = s\\,\\alpha_d(a) + (s - s^2)\\,c(a)`, :math:`s = (f_d/f)^2`,
       with the second-order term :math:`c(a)` of :func:`_bending_interpolant` (4e-4 of
       the S-band bending scaled from X band);
    3. predict with :func:`doppler_from_bending` the uplink (ground at emission ->
       spacecraft, :math:`f_{up}`), and each downlink (spacecraft -> ground at reception,
       :math:`k f_{up}`) as exact bent rays, with ratios :math:`P = f_{sc}/f_{up}` and
       :math:`Q = f_{ground}/f_{sc}`; the coherent two-way residual of a downlink with
       turnaround :math:`k` is exactly (first order in v/c per leg, as the contract)

       .. math:: \\Delta F = k f_{up} (P Q - P_0 Q_0)
                 = k\\,\\big(\\Delta f_{up}\\, Q + f_{up} P_0\\, \\Delta Q\\big);

    4. :math:`\\Delta f_d^{(j+1)} = \\Delta f_d^{(j)} + G_{obs} - G(\\Delta F_{pred})`, until
       the misfit is below ``tolerance`` of the largest :math:`|G_{obs}|`.

    Since :math:`\\partial G / \\partial \\Delta f_d = 1 + O(10^{-2})`, each step shrinks the
    misfit ~100-fold (4-6 steps). At the fixed point the modelled two-way observables
    reproduce the observed ones, with each leg's own geometry.

    Parameters
    ----------
    sc_position_m, sc_velocity_m_s : array_like (n, 3)
        Spacecraft at uplink reception = downlink emission (the observation's ``tx_*``).
    ground_rx_position_m, ground_rx_velocity_m_s : array_like (n, 3)
        Ground station at downlink reception (the observation's ``rx_*``).
    ground_tx_position_m, ground_tx_velocity_m_s : array_like (n, 3)
        Ground station at uplink emission (the observation's ``uplink_tx_*``) [m, m/s].
    residual_xx_hz : array_like (n,)
        Two-way residual, X uplink / X downlink [Hz].
    downlink_frequency_hz : float
        X-band downlink frequency :math:`k_X f_{up}` [Hz].
    residual_xs_hz : array_like (n,), optional
        Two-way residual, X uplink / S downlink [Hz]; given, the dual-frequency
        combination is used (the non-dispersive terms cancel).
    turnaround_ratio, s_turnaround_ratio : float
        :math:`k_X` (880/749) and :math:`k_S` (240/749).
    band : {"x", "s"}
        Downlink of the returned residual (``"s"`` needs ``residual_xs_hz``).
    tolerance : float
        Relative misfit at which to stop.
    max_iterations : int
        Outer iterations at most.

    Returns
    -------
    residual_hz : ndarray (n,)
        One-way downlink residual at the band's frequency [Hz].
    info : dict
        ``frequency_hz`` (of the band), ``iterations``, ``misfit`` (final max
        :math:`|G_{obs} - G_{pred}|` [Hz]), ``one_ray_residual_hz`` (:math:`G_{obs}`).

    Notes
    -----
    Assumptions: the bending is plasma (refractivity scales as :math:`f^{-2}`; true for the
    differential combination, where the neutral term cancels, and for a two-way X link
    above the neutral atmosphere); the turnaround is instantaneous; the plasma
    refractivity of each leg is taken at its nominal carrier.
    """
    k_x, k_s = float(turnaround_ratio), float(s_turnaround_ratio)
    f_x = float(downlink_frequency_hz)
    f_up = f_x / k_x
    dual = residual_xs_hz is not None
    if band not in ("x", "s"):
        raise ValueError(f"unknown band {band!r}; known: x, s")
    if band == "s" and not dual:
        raise RoharnessError("an S-band one-way residual needs the X/S dual-frequency "
                             "residual 'frequency_residual_xs'")
    f_s = k_s * f_up
    f_d = f_s if band == "s" else f_x
    legs = {"x": (k_x, np.asarray(residual_xx_hz, float))}
    if dual:
        legs["s"] = (k_s, np.asarray(residual_xs_hz, float))

    def combine(res):
        if dual:
            return one_way_from_differential(differential_doppler(res["s"], res["x"]), band)
        return two_way_to_one_way(res["x"], k_x)

    g_obs = combine({b: v[1] for b, v in legs.items()})
    scale = np.nanmax(np.abs(g_obs)) if np.any(np.isfinite(g_obs)) else 0.0
    df = g_obs.copy()
    info = {"frequency_hz": f_d, "iterations": 0, "misfit": np.nan,
            "one_ray_residual_hz": g_obs}
    if not scale > 0:
        return df, info
    second = None
    for it in range(int(max_iterations)):
        ret = bending_from_doppler(sc_position_m, sc_velocity_m_s, ground_rx_position_m,
                                   ground_rx_velocity_m_s, df, f_d)
        # the second-order term (<= 4e-4 of the bending) is recomputed on the first three
        # passes only: by then alpha is good to ~1e-5 (measured: freezing it after two passes
        # costs 3e-7 of the peak residual in X/S, after three ~1e-8)
        bending = _bending_interpolant(ret["impact_parameter_m"], ret["bending_angle_rad"],
                                       second_order=second if it >= 3 else None)
        if bending is None:  # too few or non-monotone rays: the later checks report it
            break
        up = doppler_from_bending(ground_tx_position_m, ground_tx_velocity_m_s,
                                  sc_position_m, sc_velocity_m_s, f_up,
                                  lambda a: bending(a, (f_d / f_up) ** 2))
        d_p = up["frequency_residual_hz"] / f_up
        pred = {}
        for b, (k, _) in legs.items():
            dn = doppler_from_bending(sc_position_m, sc_velocity_m_s, ground_rx_position_m,
                                      ground_rx_velocity_m_s, 1.0,
                                      lambda a, k=k: bending(a, (f_d / (k * f_up)) ** 2))
            d_q = dn["frequency_residual_hz"]  # f_T = 1: Q - Q0
            pred[b] = k * f_up * (d_p * (dn["vacuum_ratio"] + d_q) + up["vacuum_ratio"] * d_q)
        second = bending.second_order
        misfit = g_obs - combine(pred)
        misfit = np.where(np.isfinite(misfit), misfit, 0.0)
        df = df + misfit
        info.update(iterations=it + 1, misfit=float(np.max(np.abs(misfit))))
        if info["misfit"] <= tolerance * scale:
            break
    return df, info


# --- observation Datasets -------------------------------------------------------------

def one_way_residual(obs: xr.Dataset, residual="auto", band="x", two_way="joint"):
    """The one-way residual Doppler [Hz] and its frequency [Hz] from an observation.

    Variables read (observation contract):

    * ``frequency_residual`` -- one-way residual at ``attrs["frequency_hz"]``;
    * ``frequency_residual_two_way`` -- two-way residual at the downlink frequency
      ``attrs["frequency_hz"]``, turnaround ratio ``attrs["turnaround_ratio"]`` (default
      880/749);
    * ``frequency_residual_xx`` and ``frequency_residual_xs`` -- two-way residuals of the X
      and S downlinks of an X uplink, ``attrs["frequency_hz"]`` the X downlink frequency;
      combined with :func:`differential_doppler` and returned at ``band`` (the S-band
      downlink frequency is ``attrs.get("frequency_s_hz", 3/11 f_X)``);
    * for ``two_way="joint"``: ``tx_position``, ``tx_velocity`` (spacecraft),
      ``rx_position``, ``rx_velocity`` (ground at downlink reception) and
      ``uplink_tx_position``, ``uplink_tx_velocity`` (ground at uplink emission). Without
      the uplink variables the uplink is taken from the ground at downlink reception (the
      one-ray geometry; the X/S ray difference and the v/c factors are still modelled).

    Parameters
    ----------
    obs : xarray.Dataset
        Observation (contract).
    residual : {"auto", "one_way", "two_way", "dual_frequency"}
        ``"auto"`` picks dual-frequency, else two-way, else one-way by which variables exist.
    band : {"x", "s"}
        Band of the returned residual for ``"dual_frequency"``.
    two_way : {"joint", "one_ray"}
        How a two-way or dual-frequency residual becomes a one-way one: ``"joint"``
        (default) fits the exact two-way Doppler of separate up- and down-link rays
        (:func:`joint_two_way_residual`); ``"one_ray"`` applies the one-ray relations
        (:func:`two_way_to_one_way`, :func:`one_way_from_differential`).

    Returns
    -------
    residual_hz : ndarray
    frequency_hz : float
    kind : str
        The residual model used.
    """
    return _one_way_residual(obs, residual, band, two_way)[:3]


def _one_way_residual(obs, residual, band, two_way):
    """:func:`one_way_residual` plus a dict describing the two-way solution."""
    if residual not in RESIDUAL_MODELS:
        raise ValueError(f"unknown residual model {residual!r}; known: "
                         f"{', '.join(RESIDUAL_MODELS)}")
    if two_way not in TWO_WAY_MODELS:
        raise ValueError(f"unknown two-way model {two_way!r}; known: "
                         f"{', '.join(TWO_WAY_MODELS)}")
    if "frequency_hz" not in obs.attrs:
        raise RoharnessError("the observation has no 'frequency_hz' attribute; expected the "
                             "transmitted (downlink) frequency in Hz")
    f_hz = float(obs.attrs["frequency_hz"])
    kind = residual
    if kind == "auto":
        if "frequency_residual_xx" in obs and "frequency_residual_xs" in obs:
            kind = "dual_frequency"
        elif "frequency_residual_two_way" in obs:
            kind = "two_way"
        else:
            kind = "one_way"
    need = {"one_way": ["frequency_residual"], "two_way": ["frequency_residual_two_way"],
            "dual_frequency": ["frequency_residual_xx", "frequency_residual_xs"]}[kind]
    missing = [v for v in need if v not in obs]
    if missing:
        raise RoharnessError(f"the observation lacks the variable(s) {', '.join(missing)} "
                             f"needed for a {kind.replace('_', '-')} residual")
    if kind == "one_way":
        return np.asarray(obs["frequency_residual"].values, float), f_hz, kind, {}
    k = float(obs.attrs.get("turnaround_ratio", K.TURNAROUND_X))
    f_s = float(obs.attrs.get("frequency_s_hz", S_TO_X_RATIO * f_hz))
    if kind == "two_way":
        xx, xs = obs["frequency_residual_two_way"].values, None
    else:
        xx, xs = obs["frequency_residual_xx"].values, obs["frequency_residual_xs"].values
    if two_way == "one_ray":
        if kind == "two_way":
            return two_way_to_one_way(xx, k), f_hz, kind, {"two_way_model": "one_ray"}
        ddf = differential_doppler(xs, xx)
        return (one_way_from_differential(ddf, band=band), f_s if band == "s" else f_hz,
                kind, {"two_way_model": "one_ray"})
    for v in ("tx_position", "tx_velocity", "rx_position", "rx_velocity"):
        if v not in obs:
            raise RoharnessError(f"the observation lacks the state-vector variable '{v}' "
                                 "(time, xyz) required by the RO contract")
    order = ["time", "xyz"]

    def rows(name):
        return np.asarray(obs[name].transpose(*order).values, float)

    if "uplink_tx_position" in obs and "uplink_tx_velocity" in obs:
        up_r, up_v, uplink = rows("uplink_tx_position"), rows("uplink_tx_velocity"), "observed"
        if not (np.all(np.isfinite(up_r)) and np.all(np.isfinite(up_v))):
            raise RoharnessError("the observation's uplink_tx_position or uplink_tx_velocity "
                                 "has NaN or infinite values; expected finite values at "
                                 "every sample")
    else:  # one-ray geometry for the uplink (ground at downlink reception)
        up_r, up_v, uplink = rows("rx_position"), rows("rx_velocity"), "downlink_assumed"
    df, info = joint_two_way_residual(
        rows("tx_position"), rows("tx_velocity"), rows("rx_position"), rows("rx_velocity"),
        up_r, up_v, xx, f_hz, residual_xs_hz=xs, turnaround_ratio=k,
        s_turnaround_ratio=f_s * k / f_hz, band=band if kind == "dual_frequency" else "x")
    return df, info["frequency_hz"], kind, {
        "two_way_model": "joint", "two_way_iterations": int(info["iterations"]),
        "two_way_misfit_hz": float(info["misfit"]), "uplink_geometry": uplink}


def bending_from_observation(obs: xr.Dataset, *, residual: str = "auto", band: str = "x",
                             two_way: str = "joint", max_iterations: int = 30) -> xr.Dataset:
    """Per-sample bending angle and impact parameter of an observation Dataset.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation per the RO contract (``tx_position``, ``tx_velocity``,
        ``rx_position``, ``rx_velocity`` on (time, xyz), a residual, ``frequency_hz``).
    residual, band, two_way
        See :func:`one_way_residual`.
    max_iterations : int
        See :func:`bending_from_doppler`.

    Returns
    -------
    xarray.Dataset
        On dim ``time``: ``bending_angle`` [rad], ``impact_parameter`` [m],
        ``straight_impact_parameter`` [m], ``tx_deviation``, ``rx_deviation`` [rad],
        ``one_way_residual`` [Hz], ``converged``; ``tangent_point_direction`` (time, xyz);
        ``et_rx`` if present. Attrs: ``frequency_hz`` used, ``residual_kind``, for two-way
        links ``two_way_model`` (and for ``"joint"`` ``two_way_iterations``,
        ``two_way_misfit_hz``, ``uplink_geometry``), and the observation's attrs.
    """
    for v in ("tx_position", "tx_velocity", "rx_position", "rx_velocity"):
        if v not in obs:
            raise RoharnessError(f"the observation lacks the state-vector variable '{v}' "
                                 "(time, xyz) required by the RO contract")
    df, f_hz, kind, two_way_info = _one_way_residual(obs, residual, band, two_way)
    order = ["time", "xyz"]
    out = bending_from_doppler(
        obs["tx_position"].transpose(*order).values, obs["tx_velocity"].transpose(*order).values,
        obs["rx_position"].transpose(*order).values, obs["rx_velocity"].transpose(*order).values,
        df, f_hz, max_iterations=max_iterations)
    t = obs["time"].values
    ds = xr.Dataset(
        {
            "bending_angle": ("time", out["bending_angle_rad"],
                              {"units": "rad", "long_name": "bending angle (positive toward "
                                                            "the planet)"}),
            "impact_parameter": ("time", out["impact_parameter_m"],
                                 {"units": "m", "long_name": "impact parameter of the bent "
                                                             "ray"}),
            "straight_impact_parameter": ("time", out["straight_impact_parameter_m"],
                                          {"units": "m", "long_name": "impact parameter of "
                                                                      "the straight line"}),
            "tx_deviation": ("time", out["tx_deviation_rad"],
                             {"units": "rad", "long_name": "ray deviation from the straight "
                                                           "line at the transmitter"}),
            "rx_deviation": ("time", out["rx_deviation_rad"],
                             {"units": "rad", "long_name": "ray deviation from the straight "
                                                           "line at the receiver"}),
            "one_way_residual": ("time", df, {"units": "Hz", "long_name": "one-way residual "
                                                                          "Doppler inverted"}),
            "converged": ("time", out["converged"],
                          {"long_name": "ray-angle solution converged"}),
            "tangent_point_direction": (("time", "xyz"), out["tangent_point_direction"],
                                        {"units": "1", "long_name": "unit vector to the "
                                         "tangent point, Mars-centred J2000"}),
        },
        coords={"time": ("time", t, dict(obs["time"].attrs)),
                "xyz": ("xyz", ["x", "y", "z"])},
        attrs={**obs.attrs, "frequency_hz": f_hz, "residual_kind": kind, **two_way_info},
    )
    if "et_rx" in obs:
        ds["et_rx"] = obs["et_rx"]
    return ds
