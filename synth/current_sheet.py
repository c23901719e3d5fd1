"""Forward model of a Harris current sheet with a guide field, crossed by a spacecraft.

Truth model (local LMN coordinates, L along the reversing field, N the sheet normal,
M = N x L the out-of-plane / X-line direction; origin on the X-line):

.. math::

    B_L = B_0 \\tanh(N/\\lambda), \\qquad B_N = B_{N0} \\; (\\text{uniform, optional}),

    B_M = B_g + B_H \\tanh(L/\\ell) \\; 2 \\tanh(N/\\lambda_H) \\, \\mathrm{sech}(N/\\lambda_H),

    n = n_0 \\, \\mathrm{sech}^2(N/\\lambda) + n_b, \\qquad
    n_0 k_B T = B_0^2 / (2 \\mu_0),

    \\mathbf V = \\mathbf V_b
        + V_{out} \\tanh(L/\\ell) \\, \\mathrm{sech}^2(N/\\lambda) \\, \\hat{\\mathbf L}.

* The Harris sheet [1]_ is a Vlasov equilibrium: with the plasma temperature T
  (ions + electrons) uniform, total pressure :math:`B_L^2/2\\mu_0 + n k_B T` is constant when
  :math:`n_0 k_B T = B_0^2/2\\mu_0`; the background :math:`n_b` at the same temperature and the
  uniform :math:`B_g, B_{N0}` add constants.
* Hall field: the quadrupolar out-of-plane field of collisionless (Hall) reconnection
  [2]_, [3]_. The analytic form chosen here is odd in L and in N; along a crossing at fixed L
  it is bipolar in N, :math:`2\\tanh\\xi\\,\\mathrm{sech}\\,\\xi` with
  :math:`\\xi = N/\\lambda_H`, peaking at +-1 for
  :math:`\\xi = \\pm\\mathrm{asinh}(1) = \\pm 0.881`.
  The Hall layer width :math:`\\lambda_H \\le \\lambda` (default :math:`\\lambda`) lets the
  bipolar field sit inside the sheet, as in simulations where it is strongest near the
  separatrices close to the centre. Because it is odd in N like :math:`B_L`, it correlates
  with :math:`B_L` along a crossing and tilts the MVA maximum-variance direction away from the
  true L toward M (a real bias of MVA, measured by the validation, not an error of the
  model). Its sign follows the magnetotail observation of [3]_ (in tail LMN = GSM x, y, z:
  B_y > 0 earthward-north of the X-line), i.e.
  :math:`B_H > 0` for :math:`B_0 > 0`. It is a kinematic perturbation (not in pressure
  balance), of amplitude a fraction of :math:`B_0`.
* Outflow jets of amplitude :math:`V_{out}` (of order the Alfven speed) flow away from the
  X-line along +-L, reversing across it (:math:`\\tanh(L/\\ell)`), confined to the sheet.
* :math:`\\ell` is the extent of the ion diffusion region along L (about an ion inertial length).

The spacecraft moves on a straight line at constant velocity relative to a stationary sheet.
The magnetometer samples the field at ``rate_hz`` (default 32 vectors/s) with white or
AR(1)-correlated Gaussian noise and constant zero offsets; the ion moments (density and
bulk velocity) are box-car averages over ``cadence_s`` of the truth plus Gaussian noise.

The upstream monitor sees an IMF whose clock angle (from +Z toward +Y in MSO) rotates by
``clock_rotation_deg`` through a tanh ramp plus smooth random fluctuations; the downstream
spacecraft sees the draped field ``gain * (bx_d, By(t - lag), Bz(t - lag))`` plus noise.

References
----------
.. [1] Harris, E. G. (1962), On a plasma sheath separating regions of oppositely directed
   magnetic field, Il Nuovo Cimento 23, 115-121, doi:10.1007/BF02733547.
.. [2] Sonnerup, B. U. O. (1979), Magnetic field reconnection, in Solar System Plasma
   Physics vol. 3, pp. 45-108, North-Holland.
.. [3] Oieroset, M. et al. (2001), In situ detection of collisionless reconnection in the
   Earth's magnetotail, Nature 412, 414-417, doi:10.1038/35086520.
.. [4] Lin, R. et al. (2025), MAVEN + Tianwen-1 reconnection event of 2024-11-07 (numbers
   as in ../shared/SCIENCE.md section 3).
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval.errors import RoharnessError

__all__ = [
    "lmn_basis", "harris_field_lmn", "moving_sheet_frame", "rotate_from_local",
    "harris_density", "harris_peak_density",
    "outflow_velocity_lmn", "lmn_to_frame", "crossing_positions", "correlated_noise",
    "imf_series", "simulate_sheet_crossing",
]

_COMPONENT = ["x", "y", "z"]


def lmn_basis(l_dir, n_dir) -> np.ndarray:
    """Orthonormal right-handed LMN basis from approximate L and N directions.

    N is normalised and kept; L is made perpendicular to N (Gram-Schmidt) and normalised;
    M = N x L.

    Parameters
    ----------
    l_dir, n_dir : array_like (3,)
        Directions of L and N in the parent frame (e.g. MSO).

    Returns
    -------
    ndarray (3, 3)
        Rows L, M, N.
    """
    n = np.asarray(n_dir, dtype=float)
    n = n / np.linalg.norm(n)
    l_vec = np.asarray(l_dir, dtype=float)
    l_vec = l_vec - (l_vec @ n) * n
    norm = np.linalg.norm(l_vec)
    if norm < 1e-6:
        raise RoharnessError("the L and N directions of a current sheet are parallel; expected "
                             "two nearly perpendicular directions.")
    l_vec = l_vec / norm
    return np.stack([l_vec, np.cross(n, l_vec), n])


def harris_field_lmn(l_m, n_m, *, b0_t, half_thickness_m, guide_t=0.0, normal_t=0.0,
                     hall_t=0.0, hall_length_m=np.inf, hall_width_m=None):
    """Harris-sheet field with guide field, uniform normal field and Hall perturbation.

    Parameters
    ----------
    l_m, n_m : array_like
        Position along L and N from the X-line [m].
    b0_t : float
        Lobe field :math:`B_0` [T].
    half_thickness_m : float
        :math:`\\lambda` [m].
    guide_t, normal_t : float
        Uniform :math:`B_g` (along M) and :math:`B_{N0}` [T].
    hall_t : float
        Hall amplitude :math:`B_H` [T].
    hall_length_m : float
        :math:`\\ell` [m] (extent of the Hall quadrupole along L).
    hall_width_m : float, optional
        :math:`\\lambda_H` [m] (width of the Hall field along N); default ``half_thickness_m``.

    Returns
    -------
    b_l, b_m, b_n : ndarray
        Field components [T] (module docstring for the equations).
    """
    xi = np.asarray(n_m, dtype=float) / half_thickness_m
    along = np.tanh(np.asarray(l_m, dtype=float) / hall_length_m)
    b_l = b0_t * np.tanh(xi)
    xh = np.asarray(n_m, dtype=float) / (half_thickness_m if hall_width_m is None else hall_width_m)
    b_m = guide_t + hall_t * along * 2.0 * np.tanh(xh) / np.cosh(xh)
    b_n = np.full(np.broadcast(xi, along).shape, float(normal_t))
    return np.broadcast_to(b_l, b_n.shape).copy(), b_m + 0.0 * b_n, b_n


def harris_peak_density(b0_t, temperature_k):
    """Peak density of a Harris sheet in pressure balance.

    .. math:: n_0 = B_0^2 / (2 \\mu_0 k_B T)

    Parameters
    ----------
    b0_t : float
        Lobe field [T].
    temperature_k : float
        Ion + electron temperature :math:`T_i + T_e` [K].

    Returns
    -------
    float
        :math:`n_0` [m^-3].
    """
    return b0_t**2 / (2.0 * sc.mu_0 * sc.k * temperature_k)


def harris_density(n_m, *, peak_m3, background_m3, half_thickness_m):
    """Density :math:`n_0\\,\\mathrm{sech}^2(N/\\lambda) + n_b` [m^-3]."""
    xi = np.asarray(n_m, dtype=float) / half_thickness_m
    return peak_m3 / np.cosh(xi) ** 2 + background_m3


def outflow_velocity_lmn(l_m, n_m, *, outflow_m_s, half_thickness_m, hall_length_m):
    """Reconnection jet along L: :math:`V_{out}\\tanh(L/\\ell)\\,
    \\mathrm{sech}^2(N/\\lambda)` [m/s]."""
    xi = np.asarray(n_m, dtype=float) / half_thickness_m
    return outflow_m_s * np.tanh(np.asarray(l_m, dtype=float) / hall_length_m) / np.cosh(xi) ** 2


def lmn_to_frame(v_lmn, basis) -> np.ndarray:
    """Vectors (..., 3) given in LMN -> parent frame, with ``basis`` rows L, M, N."""
    return np.asarray(v_lmn, dtype=float) @ np.asarray(basis, dtype=float)


def crossing_positions(t_s, *, speed_m_s, angle_to_normal_deg, azimuth_deg=0.0,
                       offset_l_m=0.0, offset_m_m=0.0):
    """Straight-line spacecraft path through the sheet, in LMN relative to the X-line.

    The spacecraft crosses N = 0 at t = 0, moving toward +N; its velocity makes
    ``angle_to_normal_deg`` with +N and its in-plane part points ``azimuth_deg`` from +L
    toward +M.

    Parameters
    ----------
    t_s : array_like
        Time from the centre crossing [s].

    Returns
    -------
    pos_lmn_m : ndarray (..., 3)
        Position [m].
    vel_lmn_m_s : ndarray (3,)
        Velocity [m/s].
    """
    th, az = np.radians(angle_to_normal_deg), np.radians(azimuth_deg)
    vel = speed_m_s * np.array([np.sin(th) * np.cos(az), np.sin(th) * np.sin(az), np.cos(th)])
    t = np.asarray(t_s, dtype=float)[..., None]
    return np.array([offset_l_m, offset_m_m, 0.0]) + t * vel, vel


def moving_sheet_frame(pos_lmn_m, t_s, *, center_l_m=0.0, amplitude_m=0.0, period_s=1.0,
                       phase_deg=0.0, curvature_per_m=0.0, tilt_rate_rad_s=0.0):
    """Coordinates of points in the local frame of a moving, curved, tilting sheet.

    The sheet's centre surface, in the nominal LMN frame (the sheet at rest, planar, through
    the origin at t = 0), is displaced along N by

    .. math::

        N_s(L, t) = \\frac{\\kappa}{2}(L - L_c)^2 + \\tan(\\omega t)\\,(L - L_c)
                    + A\\,[\\sin(2\\pi t/P + \\phi) - \\sin\\phi],

    a curvature :math:`\\kappa` about the crossing point :math:`L_c`, a rotation of the sheet
    about M at :math:`\\omega` (a tilting sheet) and an oscillation along N (a non-constant
    normal speed :math:`\\dot N_s = (2\\pi A/P)\\cos(2\\pi t/P + \\phi)`). The local normal is
    tilted from N toward -L by :math:`\\alpha = \\arctan(\\partial N_s/\\partial L)`; the distance
    from the surface along the local normal is :math:`n' = (N - N_s)\\cos\\alpha`, the
    coordinate along the sheet is taken as L (:math:`|\\kappa| \\ell \\ll 1`).

    Parameters
    ----------
    pos_lmn_m : ndarray (n, 3)
        Positions in the nominal LMN frame [m].
    t_s : ndarray (n,)
        Times [s] (the spacecraft crosses N = 0 at t = 0).

    Returns
    -------
    l_m, n_m, alpha_rad : ndarray (n,)
        Local along-sheet and normal coordinates [m] and the local tilt [rad].
    """
    pos = np.asarray(pos_lmn_m, dtype=float)
    t = np.asarray(t_s, dtype=float)
    dl = pos[:, 0] - center_l_m
    phi = np.radians(phase_deg)
    tilt = np.tan(tilt_rate_rad_s * t)
    n_s = (0.5 * curvature_per_m * dl**2 + tilt * dl
           + amplitude_m * (np.sin(2.0 * np.pi * t / period_s + phi) - np.sin(phi)))
    alpha = np.arctan(curvature_per_m * dl + tilt)
    return pos[:, 0], (pos[:, 2] - n_s) * np.cos(alpha), alpha


def rotate_from_local(b_local_lmn, alpha_rad):
    """Vectors (n, 3) in a sheet frame tilted by ``alpha`` (about M, N toward -L) -> LMN.

    Local L' = cos(a) L + sin(a) N and N' = -sin(a) L + cos(a) N, so
    :math:`B_L = B_{L'}\\cos\\alpha - B_{N'}\\sin\\alpha`,
    :math:`B_N = B_{L'}\\sin\\alpha + B_{N'}\\cos\\alpha`.
    """
    b = np.asarray(b_local_lmn, dtype=float)
    c, s = np.cos(alpha_rad), np.sin(alpha_rad)
    return np.stack([b[:, 0] * c - b[:, 2] * s, b[:, 1], b[:, 0] * s + b[:, 2] * c], -1)


def correlated_noise(rng, shape, sigma, correlation_samples):
    """Gaussian noise of standard deviation ``sigma``, AR(1) along axis 0.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple
        Output shape; axis 0 is time.
    sigma : float
        Marginal standard deviation.
    correlation_samples : float
        e-folding correlation length in samples (0 = white noise); the AR(1) coefficient is
        :math:`\\rho = \\exp(-1/\\tau)`, innovations scaled by :math:`\\sqrt{1-\\rho^2}`.
    """
    white = rng.standard_normal(shape)
    if correlation_samples <= 0 or sigma == 0:
        return sigma * white
    return sigma * _ar1_stationary(white, np.exp(-1.0 / correlation_samples))


def _ar1_stationary(white, rho):
    """Stationary AR(1) series with unit variance driven by ``white``."""
    from scipy.signal import lfilter

    scaled = white * np.sqrt(1.0 - rho**2)
    scaled[0] = white[0]
    zi = np.zeros((1,) + white.shape[1:])
    out, _ = lfilter([1.0], [1.0, -rho], scaled, axis=0, zi=zi)
    return out


def _smooth_fluctuation(rng, t_s, rms, corr_s):
    """Smooth stationary random function on a uniform grid (Gaussian-filtered white noise)."""
    if rms == 0:
        return np.zeros_like(t_s)
    from scipy.ndimage import gaussian_filter1d

    dt = t_s[1] - t_s[0]
    w = gaussian_filter1d(rng.standard_normal(t_s.size), corr_s / dt, mode="wrap")
    return rms * w / w.std()


def imf_series(rng, t_s, *, magnitude_t, cone_angle_deg, clock_start_deg, clock_rotation_deg,
               rotation_time_s, rotation_duration_s, fluctuation_deg, fluctuation_time_s,
               lag_s, draping_gain, draping_bx_t, upstream_noise_t, downstream_noise_t,
               downstream_noise_samples=0.0):
    """Upstream IMF with a clock-angle rotation and its lagged, draped downstream copy.

    Clock angle :math:`\\theta(t) = \\theta_0 + \\Delta\\theta\\,[1 + \\tanh((t - t_r)/\\tau_r)]/2
    + \\delta\\theta(t)` measured from +Z toward +Y; upstream field
    :math:`|B|(\\cos\\alpha, \\sin\\alpha\\sin\\theta, \\sin\\alpha\\cos\\theta)` with cone angle
    :math:`\\alpha`. Downstream: :math:`g\\,(b_{x,d}/g, B_y(t-\\tau), B_z(t-\\tau))` + noise.

    Parameters
    ----------
    rng : numpy.random.Generator
    t_s : ndarray
        Uniform sample times [s] common to both monitors.

    Returns
    -------
    dict
        ``clock_up_deg``, ``clock_down_deg`` (noise-free truth at t_s), ``b_up_t``,
        ``b_down_t`` (noisy observations, (n, 3) [T]), ``b_up_true_t``, ``b_down_true_t``.
    """
    dt = t_s[1] - t_s[0]
    fine_dt = min(dt, 1.0) / 4.0
    t_fine = np.arange(t_s[0] - lag_s - 10 * dt, t_s[-1] + 10 * dt, fine_dt)
    fluct = _smooth_fluctuation(rng, t_fine, fluctuation_deg, fluctuation_time_s)
    theta_fine = (clock_start_deg + clock_rotation_deg * 0.5
                  * (1.0 + np.tanh((t_fine - rotation_time_s) / rotation_duration_s)) + fluct)

    def clock(t):
        return np.interp(t, t_fine, theta_fine)

    def field(theta_deg):
        th, al = np.radians(theta_deg), np.radians(cone_angle_deg)
        return magnitude_t * np.stack(
            [np.full_like(th, np.cos(al)), np.sin(al) * np.sin(th), np.sin(al) * np.cos(th)], -1)

    th_up, th_down = clock(t_s), clock(t_s - lag_s)
    b_up = field(th_up)
    b_down = draping_gain * field(th_down)
    b_down[:, 0] = draping_bx_t
    n = t_s.size
    noise_d = downstream_noise_t * _ar1_stationary(rng.standard_normal((n, 3)),
                                                  np.exp(-1.0 / downstream_noise_samples)) \
        if downstream_noise_samples > 0 else downstream_noise_t * rng.standard_normal((n, 3))
    return {
        "clock_up_deg": np.mod(th_up, 360.0), "clock_down_deg": np.mod(th_down, 360.0),
        "b_up_true_t": b_up, "b_down_true_t": b_down,
        "b_up_t": b_up + upstream_noise_t * rng.standard_normal((n, 3)),
        "b_down_t": b_down + noise_d,
    }


def _utc(text):
    return np.datetime64(text.rstrip("Z"), "ns")


def _seconds(delta_s):
    return (np.asarray(delta_s) * 1e9).round().astype("timedelta64[ns]")


def _lobe_field(sh):
    """Lobe field B0 [T], ion mass [kg] and background density [m^-3] of the sheet."""
    ion_mass_kg = sh["ion_mass_u"] * sc.atomic_mass
    nb = sh["background_density_m3"]
    if "b0_nt" in sh:
        b0 = sh["b0_nt"] * 1e-9
    else:  # v_A = B0 / sqrt(mu0 n_b m_i) fixes the lobe field
        b0 = sh["alfven_speed_m_s"] * np.sqrt(sc.mu_0 * nb * ion_mass_kg)
    return b0, ion_mass_kg, nb


def _field_model(scenario, sh, cr, b0, lam, ell, t_mag):
    """``field_at(p)``: field (LMN) [T] and local (L, N) coordinates of positions p (n, 3)
    at t_mag, for the stationary planar sheet or the moving one (scenario ``motion``)."""
    field_kw = dict(b0_t=b0, half_thickness_m=lam, guide_t=sh["guide_field_nt"] * 1e-9,
                    normal_t=sh["normal_field_nt"] * 1e-9, hall_t=sh["hall_field_nt"] * 1e-9,
                    hall_length_m=ell, hall_width_m=sh.get("hall_width_km", lam * 1e-3) * 1e3)
    mo = scenario.get("motion", {})
    moving = any(mo.get(k, 0.0) for k in ("oscillation_amplitude_km", "curvature_per_km",
                                          "tilt_rate_deg_s"))
    motion_kw = dict(center_l_m=cr["offset_l_km"] * 1e3,
                     amplitude_m=mo.get("oscillation_amplitude_km", 0.0) * 1e3,
                     period_s=mo.get("oscillation_period_s", 1.0),
                     phase_deg=mo.get("oscillation_phase_deg", 0.0),
                     curvature_per_m=mo.get("curvature_per_km", 0.0) * 1e-3,
                     tilt_rate_rad_s=np.radians(mo.get("tilt_rate_deg_s", 0.0)))

    def field_at(p):
        """Field (LMN) [T] and local (L, N) coordinates of positions p (n, 3) at t_mag."""
        if not moving:  # the stationary planar sheet, exactly as the equations read
            return np.stack(harris_field_lmn(p[:, 0], p[:, 2], **field_kw), -1), p[:, 0], p[:, 2]
        l_loc, n_loc, alpha = moving_sheet_frame(p, t_mag, **motion_kw)
        b_loc = np.stack(harris_field_lmn(l_loc, n_loc, **field_kw), -1)
        return rotate_from_local(b_loc, alpha), l_loc, n_loc

    return field_at


def _ion_moments(rng, ion, t_mag, half, dens, v_true):
    """Ion moments: box-car averages over cadence_s of the 32 Hz truth, plus noise.

    Returns t_ion [s], the noise-free n_ion, v_ion and the observed n_ion_obs, v_ion_obs.
    """
    cad = ion["cadence_s"]
    edges = np.arange(-half, half + 1e-9, cad)
    idx = np.digitize(t_mag, edges) - 1
    nbins = edges.size - 1
    keep = (idx >= 0) & (idx < nbins)
    counts = np.bincount(idx[keep], minlength=nbins)
    good = counts > 0
    n_ion = (np.bincount(idx[keep], dens[keep], nbins)[good] / counts[good])
    v_ion = np.stack([np.bincount(idx[keep], v_true[keep, k], nbins)[good] / counts[good]
                      for k in range(3)], -1)
    t_ion = 0.5 * (edges[:-1] + edges[1:])[good]
    n_ion_obs = n_ion * (1.0 + ion["density_noise_rel"] * rng.standard_normal(n_ion.size))
    v_ion_obs = v_ion + ion["velocity_noise_m_s"] * rng.standard_normal(v_ion.shape)
    return t_ion, n_ion, v_ion, n_ion_obs, v_ion_obs


def _imf_monitors(rng, imf, cr):
    """IMF monitors, times relative to the sheet centre; the rotation time is from the
    start. Returns t_imf [s] and the :func:`imf_series` output."""
    t_imf = np.arange(0.0, imf["span_s"], imf["cadence_s"]) - imf["span_s"] + 0.5 * cr["span_s"]
    imf_out = imf_series(
        rng, t_imf, magnitude_t=imf["magnitude_nt"] * 1e-9, cone_angle_deg=imf["cone_angle_deg"],
        clock_start_deg=imf["clock_start_deg"], clock_rotation_deg=imf["clock_rotation_deg"],
        rotation_time_s=t_imf[0] + imf["rotation_time_s"],
        rotation_duration_s=imf["rotation_duration_s"], fluctuation_deg=imf["fluctuation_deg"],
        fluctuation_time_s=imf["fluctuation_time_s"], lag_s=imf["lag_s"],
        draping_gain=imf["draping_gain"], draping_bx_t=imf["draping_bx_nt"] * 1e-9,
        upstream_noise_t=imf["upstream_noise_nt"] * 1e-9,
        downstream_noise_t=imf["downstream_noise_nt"] * 1e-9,
        downstream_noise_samples=imf["downstream_noise_time_s"] / imf["cadence_s"])
    return t_imf, imf_out


def _var(dims, data, units, long_name):
    return xr.Variable(dims, data, {"units": units, "long_name": long_name})


_TM, _TI, _TF, _CMP = ("time_mag",), ("time_ion",), ("time_imf",), "component"


def _observation_dataset(s, coords, provenance, ana, ion_mass_kg):
    """What instruments and ephemerides give (``s``: the simulated series by name)."""
    tm, ti, tf, cmp_, var = _TM, _TI, _TF, _CMP, _var
    return xr.Dataset(
        {
            "b_mso": var(tm + (cmp_,), s["b_obs_nt"], "nT", "magnetic field (magnetometer, MSO)"),
            "sc_position_mso": var(tm + (cmp_,), s["sc_pos"], "m", "spacecraft position (MSO)"),
            "sc_velocity_mso": var(tm + (cmp_,),
                                   np.broadcast_to(s["sc_vel"], s["sc_pos"].shape).copy(),
                                   "m s-1", "spacecraft velocity (MSO)"),
            "ion_density": var(ti, s["n_ion_obs"], "m-3", "ion number density (moments)"),
            "ion_velocity_mso": var(ti + (cmp_,), s["v_ion_obs"], "m s-1",
                                    "ion bulk velocity (MSO)"),
            "b_upstream_mso": var(tf + (cmp_,), s["imf_out"]["b_up_t"] * 1e9, "nT",
                                  "IMF at the upstream monitor (MSO)"),
            "b_downstream_mso": var(tf + (cmp_,), s["imf_out"]["b_down_t"] * 1e9, "nT",
                                    "draped field at the downstream spacecraft (MSO)"),
        },
        coords=coords,
        attrs={**provenance, "title": "synthetic current-sheet crossing: observation",
               "analysis_window_utc": list(ana["window_utc"]), "max_lag_s": ana["max_lag_s"],
               "ion_mass_kg": ion_mass_kg},
    )


def _truth_dataset(s, coords, provenance, sheet_attrs):
    """The noise-free series, the LMN basis, the sheet parameters and the lag."""
    tm, ti, tf, cmp_, var = _TM, _TI, _TF, _CMP, _var
    return xr.Dataset(
        {
            "b_mso": var(tm + (cmp_,), s["b_true_nt"], "nT", "magnetic field, noise-free (MSO)"),
            "b_lmn": var(tm + ("lmn",), s["b_lmn"] * 1e9, "nT", "magnetic field in LMN"),
            "position_lmn": var(tm + ("lmn",), s["pos"], "m",
                                "spacecraft position from the X-line"),
            "density": var(tm, s["dens"], "m-3", "ion number density, noise-free"),
            "velocity_mso": var(tm + (cmp_,), s["v_true"], "m s-1",
                                "ion bulk velocity, noise-free"),
            "ion_density": var(ti, s["n_ion"], "m-3", "ion density, box-car averaged, noise-free"),
            "ion_velocity_mso": var(ti + (cmp_,), s["v_ion"], "m s-1", "ion velocity, averaged"),
            "lmn_basis": var(("lmn", cmp_), s["basis"], "1", "rows L, M, N in MSO"),
            "clock_upstream": var(tf, s["imf_out"]["clock_up_deg"], "degree",
                                  "IMF clock angle upstream, from +Z toward +Y"),
            "clock_downstream": var(tf, s["imf_out"]["clock_down_deg"], "degree",
                                    "clock angle downstream (lagged copy), noise-free"),
        },
        coords=coords,
        attrs={**provenance, "title": "synthetic current-sheet crossing: truth", **sheet_attrs},
    )


def _sheet_attrs(sh, imf, b0, lam, ell, n0, nb, ion_mass_kg, vel):
    """Truth attributes: the sheet parameters, the lag and the normal crossing speed."""
    return {"b0_nt": b0 * 1e9, "guide_field_nt": sh["guide_field_nt"],
            "normal_field_nt": sh["normal_field_nt"], "hall_field_nt": sh["hall_field_nt"],
            "half_thickness_m": lam, "hall_length_m": ell, "peak_density_m3": n0,
            "background_density_m3": nb, "temperature_k": sh["temperature_k"],
            "ion_mass_kg": ion_mass_kg,
            "alfven_speed_m_s": b0 / np.sqrt(sc.mu_0 * nb * ion_mass_kg),
            "outflow_speed_m_s": sh["outflow_speed_m_s"], "lag_s": imf["lag_s"],
            "sc_normal_speed_m_s": float(vel[2])}


def simulate_sheet_crossing(scenario: dict, seed: int) -> tuple[xr.Dataset, xr.Dataset]:
    """Truth and observation of a current-sheet crossing and of the IMF monitors.

    Parameters
    ----------
    scenario : dict
        A parsed sheet scenario (:func:`synth.sheet_scenario.load_sheet_scenario`).
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    truth, observation : xarray.Dataset
        Dimensions ``time_mag`` (magnetometer), ``time_ion`` (ion moments), ``time_imf``
        (monitors), ``component`` (x, y, z of MSO) and ``lmn`` (L, M, N). The observation holds
        only what instruments and ephemerides give: ``b_mso`` [nT], ``ion_density`` [m^-3],
        ``ion_velocity_mso`` [m/s], ``sc_velocity_mso`` [m/s], ``sc_position_mso`` [m],
        ``b_upstream_mso`` and ``b_downstream_mso`` [nT], and the analysis window chosen by the
        scientist (``attrs``). The truth adds the noise-free series, the LMN basis, the sheet
        parameters and the lag.
    """
    rng = np.random.default_rng(seed)
    sh, cr, mag, ion, imf, ana = (scenario[k] for k in
                                  ("sheet", "crossing", "magnetometer", "ions", "imf", "analysis"))
    basis = lmn_basis(sh["l_mso"], sh["n_mso"])
    b0, ion_mass_kg, nb = _lobe_field(sh)
    lam = sh["half_thickness_km"] * 1e3
    ell = sh["hall_length_km"] * 1e3
    n0 = harris_peak_density(b0, sh["temperature_k"])
    center = _utc(cr["center_utc"])
    rate = mag["rate_hz"]

    # magnetometer grid
    half = 0.5 * cr["span_s"]
    t_mag = np.arange(-half, half + 0.5 / rate, 1.0 / rate)
    t_mag = t_mag[t_mag <= half]
    pos, vel = crossing_positions(
        t_mag, speed_m_s=cr["speed_m_s"], angle_to_normal_deg=cr["angle_to_normal_deg"],
        azimuth_deg=cr["azimuth_deg"], offset_l_m=cr["offset_l_km"] * 1e3,
        offset_m_m=cr["offset_m_km"] * 1e3)
    field_at = _field_model(scenario, sh, cr, b0, lam, ell, t_mag)

    b_lmn, l_loc, n_loc = field_at(pos)
    b_true_nt = lmn_to_frame(b_lmn, basis) * 1e9
    noise = correlated_noise(rng, b_true_nt.shape, mag["noise_nt"],
                             mag["correlation_time_s"] * rate)
    b_obs_nt = b_true_nt + noise + np.asarray(mag["offset_nt"])
    dens = harris_density(n_loc, peak_m3=n0, background_m3=nb, half_thickness_m=lam)
    v_jet = outflow_velocity_lmn(l_loc, n_loc, outflow_m_s=sh["outflow_speed_m_s"],
                                 half_thickness_m=lam, hall_length_m=ell)
    v_true = np.asarray(sh["background_flow_mso_m_s"]) + v_jet[:, None] * basis[0]
    sc_vel = lmn_to_frame(vel, basis)
    sc_pos = np.asarray(cr["center_mso_km"]) * 1e3 + t_mag[:, None] * sc_vel

    t_ion, n_ion, v_ion, n_ion_obs, v_ion_obs = _ion_moments(rng, ion, t_mag, half, dens,
                                                             v_true)
    t_imf, imf_out = _imf_monitors(rng, imf, cr)

    # a second magnetometer (drawn last: the single-spacecraft streams stay as they were)
    second = scenario.get("second", {})
    if "separation_km" in second:
        sep_mso = np.asarray(second["separation_km"], dtype=float) * 1e3
        b2_lmn, _, _ = field_at(pos + basis @ sep_mso)
        b2_true_nt = lmn_to_frame(b2_lmn, basis) * 1e9
        b2_obs_nt = b2_true_nt + second["noise_nt"] * rng.standard_normal(b2_true_nt.shape)

    coords = {
        "time_mag": center + _seconds(t_mag), "time_ion": center + _seconds(t_ion),
        "time_imf": center + _seconds(t_imf), "component": _COMPONENT, "lmn": ["L", "M", "N"],
    }
    provenance = {
        "scenario": scenario.get("name", ""), "scenario_sha256": scenario.get("sha256", ""),
        "seed": int(seed), "frame": "MSO",
        "producer": "synth.current_sheet.simulate_sheet_crossing",
    }
    series = dict(b_obs_nt=b_obs_nt, sc_pos=sc_pos, sc_vel=sc_vel, n_ion_obs=n_ion_obs,
                  v_ion_obs=v_ion_obs, imf_out=imf_out, b_true_nt=b_true_nt, b_lmn=b_lmn,
                  pos=pos, dens=dens, v_true=v_true, n_ion=n_ion, v_ion=v_ion, basis=basis)
    obs = _observation_dataset(series, coords, provenance, ana, ion_mass_kg)
    truth = _truth_dataset(series, coords, provenance,
                           _sheet_attrs(sh, imf, b0, lam, ell, n0, nb, ion_mass_kg, vel))
    if "separation_km" in second:
        tm, cmp_ = _TM, _CMP
        obs["b2_mso"] = _var(tm + (cmp_,), b2_obs_nt, "nT",
                             "magnetic field at the second spacecraft (MSO)")
        obs["sc2_position_mso"] = _var(tm + (cmp_,), sc_pos + sep_mso, "m",
                                       "second spacecraft position (MSO)")
        truth["b2_mso"] = _var(tm + (cmp_,), b2_true_nt, "nT",
                               "magnetic field at the second spacecraft, noise-free (MSO)")
    return truth, obs
