"""Two-way and dual-frequency links: from the observed two-way residuals to a one-way one.

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

Joint two-way solution
----------------------
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

References
----------
.. [3] Krishnan, S. et al. (2023), Radio Science 58, e2023RS007784,
   doi:10.1029/2023RS007784.
"""

from __future__ import annotations

import numpy as np

from retrieval import constants as K
from retrieval.doppler_bending import bending_from_doppler, doppler_from_bending
from retrieval.errors import RoharnessError

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


# --- the joint solution of separate bent rays -------------------------------------------

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


def _two_way_legs(residual_xx_hz, residual_xs_hz, turnaround_ratio, s_turnaround_ratio,
                  downlink_frequency_hz, band):
    """Check ``band`` and return the uplink frequency :math:`f_{up}`, the frequency
    :math:`f_d` of the returned one-way residual and the downlinks as
    ``{band: (turnaround ratio, observed two-way residual)}`` (:func:`joint_two_way_residual`).
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
    return f_up, f_d, legs


def _one_ray_combination(res, band, turnaround_ratio):
    """The one-ray combination :math:`G` of two-way residuals ``{"x": ..., ["s": ...]}``
    [Hz]: the dual-frequency one when an S downlink is present, else the two-way one."""
    if "s" in res:
        return one_way_from_differential(differential_doppler(res["s"], res["x"]), band)
    return two_way_to_one_way(res["x"], turnaround_ratio)


def _predict_two_way(bending, legs, f_up, f_d, sc, ground_rx, ground_tx):
    """Two-way residual [Hz] of each downlink in ``legs`` predicted from the bending profile
    ``bending(a, s)`` (:func:`_bending_interpolant`) with separate bent up- and down-link
    rays; ``sc``, ``ground_rx``, ``ground_tx`` are (position, velocity) pairs."""
    up = doppler_from_bending(ground_tx[0], ground_tx[1], sc[0], sc[1], f_up,
                              lambda a: bending(a, (f_d / f_up) ** 2))
    d_p = up["frequency_residual_hz"] / f_up
    pred = {}
    for b, (k, _) in legs.items():
        dn = doppler_from_bending(sc[0], sc[1], ground_rx[0], ground_rx[1], 1.0,
                                  lambda a, k=k: bending(a, (f_d / (k * f_up)) ** 2))
        d_q = dn["frequency_residual_hz"]  # f_T = 1: Q - Q0
        pred[b] = k * f_up * (d_p * (dn["vacuum_ratio"] + d_q) + up["vacuum_ratio"] * d_q)
    return pred


def joint_two_way_residual(sc_position_m, sc_velocity_m_s, ground_rx_position_m,
                           ground_rx_velocity_m_s, ground_tx_position_m,
                           ground_tx_velocity_m_s, residual_xx_hz, downlink_frequency_hz, *,
                           residual_xs_hz=None, turnaround_ratio=K.TURNAROUND_X,
                           s_turnaround_ratio=K.TURNAROUND_S, band="x", tolerance=1e-8,
                           max_iterations=20):
    """One-way downlink plasma residual of a two-way (or dual-frequency) link, with the
    up- and down-link rays solved as separate bent rays.

    The one-ray relations treat the uplink, the X downlink and the S downlink as one ray;
    here they are solved as separate bent rays, iterating on the one-way downlink residual
    until the modelled two-way observables match the observed ones (algorithm in the
    notes of :mod:`retrieval.two_way`).

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
    f_up, f_d, legs = _two_way_legs(residual_xx_hz, residual_xs_hz, turnaround_ratio,
                                    s_turnaround_ratio, downlink_frequency_hz, band)
    k_x = float(turnaround_ratio)
    g_obs = _one_ray_combination({b: v[1] for b, v in legs.items()}, band, k_x)
    scale = np.nanmax(np.abs(g_obs)) if np.any(np.isfinite(g_obs)) else 0.0
    df = g_obs.copy()
    info = {"frequency_hz": f_d, "iterations": 0, "misfit": np.nan,
            "one_ray_residual_hz": g_obs}
    if not scale > 0:
        return df, info
    sc = (sc_position_m, sc_velocity_m_s)
    ground_rx = (ground_rx_position_m, ground_rx_velocity_m_s)
    ground_tx = (ground_tx_position_m, ground_tx_velocity_m_s)
    second = None
    for it in range(int(max_iterations)):
        ret = bending_from_doppler(*sc, *ground_rx, df, f_d)
        # the second-order term (<= 4e-4 of the bending) is recomputed on the first three
        # passes only: by then alpha is good to ~1e-5 (measured: freezing it after two passes
        # costs 3e-7 of the peak residual in X/S, after three ~1e-8)
        bending = _bending_interpolant(ret["impact_parameter_m"], ret["bending_angle_rad"],
                                       second_order=second if it >= 3 else None)
        if bending is None:  # too few or non-monotone rays: the later checks report it
            break
        pred = _predict_two_way(bending, legs, f_up, f_d, sc, ground_rx, ground_tx)
        second = bending.second_order
        misfit = g_obs - _one_ray_combination(pred, band, k_x)
        misfit = np.where(np.isfinite(misfit), misfit, 0.0)
        df = df + misfit
        info.update(iterations=it + 1, misfit=float(np.max(np.abs(misfit))))
        if info["misfit"] <= tolerance * scale:
            break
    return df, info
