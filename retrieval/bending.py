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
down-link rays as one ray (first order in the bending).

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
    u, nh = g["u"], g["n_hat"]
    geo = {
        "vtu": _dot(v_t, u), "vtn": _dot(v_t, nh), "vru": _dot(v_r, u), "vrn": _dot(v_r, nh),
        "tt": g["tt"], "tr": g["tr"], "a0": g["a0"], "f": float(frequency_hz),
    }
    geo["dt0"] = 1.0 - geo["vtu"] / K.C
    geo["dr0"] = 1.0 - geo["vru"] / K.C
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
            active = ok & ~converged
            dt = np.where(active, dt + step_t, dt)
            dr = np.where(active, dr + step_r, dr)
            # converged when the step is at the rounding level of the angles (relative
            # 1e-13, or 1e-20 rad absolute for the vanishing bending above an ionosphere)
            small = (np.abs(step_t) <= 1e-13 * np.abs(dt) + 1e-20) & \
                    (np.abs(step_r) <= 1e-13 * np.abs(dr) + 1e-20)
            converged |= active & small
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


# --- observation Datasets -------------------------------------------------------------

def one_way_residual(obs: xr.Dataset, residual="auto", band="x"):
    """The one-way residual Doppler [Hz] and its frequency [Hz] from an observation.

    Variables read (observation contract, plus two proposed extensions):

    * ``frequency_residual`` -- one-way residual at ``attrs["frequency_hz"]`` (contract);
    * ``frequency_residual_two_way`` -- two-way residual at the downlink frequency
      ``attrs["frequency_hz"]``, turnaround ratio ``attrs["turnaround_ratio"]`` (default
      880/749), converted with :func:`two_way_to_one_way`;
    * ``frequency_residual_xx`` and ``frequency_residual_xs`` -- two-way residuals of the X
      and S downlinks of an X uplink, ``attrs["frequency_hz"]`` the X downlink frequency;
      combined with :func:`differential_doppler` and returned at ``band`` (the S-band
      downlink frequency is ``attrs.get("frequency_s_hz", 3/11 f_X)``).

    Parameters
    ----------
    obs : xarray.Dataset
        Observation (contract).
    residual : {"auto", "one_way", "two_way", "dual_frequency"}
        ``"auto"`` picks dual-frequency, else two-way, else one-way by which variables exist.
    band : {"x", "s"}
        Band of the returned residual for ``"dual_frequency"``.

    Returns
    -------
    residual_hz : ndarray
    frequency_hz : float
    kind : str
        The residual model used.
    """
    if residual not in RESIDUAL_MODELS:
        raise ValueError(f"unknown residual model {residual!r}; known: "
                         f"{', '.join(RESIDUAL_MODELS)}")
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
        return np.asarray(obs["frequency_residual"].values, float), f_hz, kind
    if kind == "two_way":
        k = float(obs.attrs.get("turnaround_ratio", K.TURNAROUND_X))
        return two_way_to_one_way(obs["frequency_residual_two_way"].values, k), f_hz, kind
    ddf = differential_doppler(obs["frequency_residual_xs"].values,
                               obs["frequency_residual_xx"].values)
    if band == "s":
        f_hz = float(obs.attrs.get("frequency_s_hz", S_TO_X_RATIO * f_hz))
    return one_way_from_differential(ddf, band=band), f_hz, kind


def bending_from_observation(obs: xr.Dataset, *, residual="auto", band="x",
                             max_iterations=30) -> xr.Dataset:
    """Per-sample bending angle and impact parameter of an observation Dataset.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation per the RO contract (``tx_position``, ``tx_velocity``,
        ``rx_position``, ``rx_velocity`` on (time, xyz), a residual, ``frequency_hz``).
    residual, band
        See :func:`one_way_residual`.
    max_iterations : int
        See :func:`bending_from_doppler`.

    Returns
    -------
    xarray.Dataset
        On dim ``time``: ``bending_angle`` [rad], ``impact_parameter`` [m],
        ``straight_impact_parameter`` [m], ``tx_deviation``, ``rx_deviation`` [rad],
        ``one_way_residual`` [Hz], ``converged``; ``tangent_point_direction`` (time, xyz);
        ``et_rx`` if present. Attrs: ``frequency_hz`` used, ``residual_kind`` and the
        observation's attrs.
    """
    for v in ("tx_position", "tx_velocity", "rx_position", "rx_velocity"):
        if v not in obs:
            raise RoharnessError(f"the observation lacks the state-vector variable '{v}' "
                                 "(time, xyz) required by the RO contract")
    df, f_hz, kind = one_way_residual(obs, residual=residual, band=band)
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
        attrs={**obs.attrs, "frequency_hz": f_hz, "residual_kind": kind},
    )
    if "et_rx" in obs:
        ds["et_rx"] = obs["et_rx"]
    return ds
