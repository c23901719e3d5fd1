"""Electron density from refractivity, and the whole inversion of one observation.

Plasma refractivity at carrier frequency :math:`f` (cold, collisionless, unmagnetised,
:math:`f` far above the plasma frequency) [1]_:

.. math::

    n - 1 = -\\frac{K N_e}{f^2}, \\qquad K = \\frac{e^2}{8\\pi^2\\varepsilon_0 m_e}
    \\approx 40.308\\ \\mathrm{m^3\\,s^{-2}}

(:data:`retrieval.constants.PLASMA_K`, from CODATA via scipy). Below ~80 km at Mars the
neutral atmosphere's positive refractivity dominates, and :math:`N_e` computed there is
not plasma (it is large and negative); :func:`invert_observation` fits and removes it on
single-frequency links (:mod:`retrieval.neutral`).

:func:`invert_observation` chains :func:`retrieval.bending.bending_from_observation`
(residual Doppler -> bending angle, impact parameter), :func:`retrieval.abel.inverse_abel`
(-> refractive index, radius) and the relation above, for one-way, two-way and
dual-frequency observations.

References
----------
.. [1] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured
   by radio occultation experiments, Adv. Space Res. 46, 58-73,
   doi:10.1016/j.asr.2010.03.004.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from retrieval import cf
from retrieval import constants as K
from retrieval.abel import (
    _exponential_tail_scale,
    choose_scheme,
    choose_top_model,
    inverse_abel,
    inverse_abel_with_error,
)
from retrieval.bending import _bending_arrays
from retrieval.errors import RoharnessError
from retrieval.neutral import _neutral_parts
from retrieval.one_sided import complete_bending

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: A profile "reaches the ionosphere" only if its lowest impact parameter lies at most this
#: far above the reference sphere [m]. The photochemical ionosphere (M1, M2 peaks, what
#: the profiles are for) lies below ~200 km; a profile whose lowest ray stays above 300 km
#: sees only the topside and cannot be inverted into a useful density profile.
MAX_LOWEST_ALTITUDE_M = 300e3

#: A profile is flagged ``under_resolved`` when the estimated discretisation error of the
#: Abel step (:func:`retrieval.abel.discretisation_error`) exceeds this fraction of the
#: retrieved peak: the round-trip accuracy target of issue 14 (1e-3 of the peak).
UNDER_RESOLVED_FRACTION = 1e-3

#: What :func:`invert_observation` does when the retrieved impact parameter is not strictly
#: monotonic in time (see :func:`isotonic_levels`).
MONOTONIC_MODELS = ("raise", "isotonic")

#: ``quality_flag`` bit of a profile level formed by merging samples (isotonic repair).
FLAG_MERGED = 1


def isotonic_levels(impact_parameter_m, decreasing):
    r"""Group consecutive samples into levels of strictly monotonic impact parameter.

    Where oscillator noise on the residual Doppler makes the retrieved impact parameter
    :math:`a(t)` of a single ingress or egress turn back (the ray cannot truly rise during
    an ingress; :math:`\partial a/\partial \Delta f` is ~ -1.5 to -2 km/Hz for
    mex-tgo-uhf, so 0.4 Hz of noise moves :math:`a` by more than the ~0.4 km descent per
    1-s sample), the least-squares monotone fit of :math:`a(t)` is the isotonic regression,
    computed by the pool-adjacent-violators algorithm [1]_ [2]_. Its solution is constant
    on blocks of consecutive samples; each block becomes ONE profile level whose
    :math:`(a, \alpha)` are the block means (the samples of a block are replaced by their
    average, i.e. longer integration where the noise made them indistinguishable). Blocks
    are pooled until the levels are *strictly* monotonic, as the Abel transform needs.

    Parameters
    ----------
    impact_parameter_m : array_like, shape (n,)
        Retrieved impact parameter in time order [m].
    decreasing : bool
        True for an ingress (the ray descends with time).

    Returns
    -------
    starts : ndarray of int, shape (m,)
        Index of the first sample of each level (blocks are contiguous, in time order);
        use with ``numpy.add.reduceat``.

    References
    ----------
    .. [1] Ayer, M. et al. (1955), An empirical distribution function for sampling with
       incomplete information, Ann. Math. Statist. 26(4), 641-647,
       doi:10.1214/aoms/1177728423.
    .. [2] Barlow, R. E. et al. (1972), Statistical Inference under Order Restrictions,
       Wiley (isotonic regression, pool-adjacent-violators).
    """
    y = np.asarray(impact_parameter_m, float)
    y = -y if decreasing else y  # make it non-decreasing
    means, weights, starts = [], [], []
    for i, v in enumerate(y):
        means.append(v)
        weights.append(1.0)
        starts.append(i)
        while len(means) > 1 and means[-2] >= means[-1]:  # strictness: pool ties too
            w = weights[-2] + weights[-1]
            means[-2] = (weights[-2] * means[-2] + weights[-1] * means[-1]) / w
            weights[-2] = w
            del means[-1], weights[-1], starts[-1]
    return np.asarray(starts, int)


def electron_density_from_refractivity(refractivity, frequency_hz):
    """Electron density :math:`N_e = -(n - 1) f^2 / K` [m^-3].

    Parameters
    ----------
    refractivity : array_like
        :math:`n - 1` [1] at the carrier frequency.
    frequency_hz : float
        Carrier frequency [Hz].
    """
    f = float(frequency_hz)
    return -np.asarray(refractivity, float) * f * f / K.PLASMA_K


def withers2010_density_noise(frequency_noise_hz, frequency_hz, ray_speed_m_s,
                              scale_height_m, radius_m):
    r"""Expected electron-density noise of a one-way RO profile, Withers (2010) [1]_.

    .. math::

        \sigma_{N_e} = \frac{4\pi\,\sigma_f\, f\, c\, m_e\,\varepsilon_0}{V e^2}
                        \sqrt{\frac{2\pi H}{R}}

    for white frequency noise :math:`\sigma_f` per sample (integration time
    :math:`\tau`, vertical resolution ~ :math:`V\tau`), carrier :math:`f`, speed
    :math:`V` at which the ray's tangent point moves through the atmosphere, scale height
    :math:`H` of the sounded layer and tangent radius :math:`R`. (Eq. derived from the
    Doppler -> bending -> Abel chain for an exponential layer; constants from CODATA via
    scipy.) It describes *uncorrelated* noise only: the low-frequency (flicker and
    random-walk FM) part of an oscillator's noise is not averaged down by the inversion
    and acts as an unknown drift instead (see :mod:`retrieval.drift`).

    Parameters
    ----------
    frequency_noise_hz : float or array
        1-sigma frequency noise per sample [Hz].
    frequency_hz : float
        Carrier frequency [Hz].
    ray_speed_m_s : float
        Vertical speed of the ray's tangent point [m/s].
    scale_height_m, radius_m : float
        Layer scale height and tangent radius [m].

    Returns
    -------
    float or ndarray
        1-sigma electron-density noise [m^-3].

    References
    ----------
    .. [1] Withers, P. (2010), Prediction of uncertainties in atmospheric properties
       measured by radio occultation experiments, Adv. Space Res. 46, 58-73,
       doi:10.1016/j.asr.2010.03.004.
    """
    import scipy.constants as sc

    return (4.0 * np.pi * np.asarray(frequency_noise_hz, float) * float(frequency_hz) * sc.c
            * sc.m_e * sc.epsilon_0 / (float(ray_speed_m_s) * sc.e**2)
            * np.sqrt(2.0 * np.pi * float(scale_height_m) / float(radius_m)))


def _attrs(units, long_name):
    return {"units": units, "long_name": long_name}


def profile_dataset(impact_parameter_m: ArrayLike, bending_angle_rad: ArrayLike,
                    frequency_hz: float, *, top: str = "auto", top_fit_samples: int = 10,
                    scheme: str = "cubic", error_estimate: bool = True,
                    reference_radius_m: float = K.MARS_MEAN_RADIUS_M,
                    extra: dict | None = None, attrs: dict | None = None,
                    end_radius_m: ArrayLike | None = None,
                    top_scale_height_m: float | None = None) -> xr.Dataset:
    """Invert a bending-angle profile into a profile Dataset.

    Parameters
    ----------
    impact_parameter_m, bending_angle_rad : array_like, shape (n,)
        Monotone impact parameters [m] and bending angles [rad] (positive toward the
        planet).
    frequency_hz : float
        Carrier frequency of the bending angles [Hz].
    top : {"auto", "zero", "exponential"}
        Treatment above the top sample (:func:`retrieval.abel.inverse_abel`); ``"auto"``
        (default) lets :func:`retrieval.abel.choose_top_model` decide from the data (an error budget
        fixes the clean retrieval's choice and scale height for its noisy realisations,
        see :func:`validation.budget.retrieve`). An exponential top the top
        samples cannot support (sign changes, no decay: noise) falls back to the vacuum
        top, with the reason in ``top_model_reason``.
    top_fit_samples : int
        Fit length of the exponential topside.
    scheme : {"cubic", "quintic", "linear", "auto"}
        Interpolation of the bending angle in the Abel integral: ``"cubic"`` (default,
        fourth order), ``"quintic"`` (sixth order: on a clean ionosphere at 4.1-4.7 km
        steps 2-2.5x smaller errors, e.g. 1.4e-3 -> 5.9e-4 of the peak, the same noise
        gain, 1.3-2.3x the CPU; but not the default, because at such steps it rings on the
        steep neutral bottom of an X-band profile, whose neutral fit then fails: 1.9e-3
        -> 3.9e-3 on a 0.5 Hz MAVEN -> DSS-14 case), ``"linear"``, or ``"auto"``
        (:func:`retrieval.abel.choose_scheme`: cubic for clean samples, linear for noisy
        ones; not the default because a data-dependent switch makes the retrieval
        non-linear in the noise, see that function).
    error_estimate : bool
        Estimate the discretisation error (:func:`retrieval.abel.discretisation_error`,
        ~15 % more Abel work).
    reference_radius_m : float
        Sphere for altitudes [m] (3389.5 km).
    extra : dict, optional
        More per-sample variables ``name -> (values, attrs)`` (same order as the input).
    attrs : dict, optional
        Dataset attributes.
    end_radius_m : array_like, shape (n, e), optional
        Radius [m] of each ray's ends that may lie inside the medium (Mars-side spacecraft;
        NaN for none). Where one lies below the top level (or an exponential top is
        used), the missing half-path above it is added before the inversion
        (:func:`retrieval.one_sided.complete_bending`); the measured bending is kept in
        ``bending_angle`` and the added part in ``one_sided_bending_correction``.
    top_scale_height_m : float, optional
        Scale height [m] of an exponential top, instead of fitting it to the top samples
        (:func:`retrieval.abel.inverse_abel`); the scale used is recorded in the attr
        ``top_scale_height_m`` (NaN under a vacuum top).

    Returns
    -------
    xarray.Dataset
        Dim ``altitude`` (ascending): ``radius`` [m], ``impact_parameter`` [m],
        ``bending_angle`` [rad], ``refractivity`` [1], ``electron_density`` [m^-3], plus
        ``extra``; attrs ``frequency_hz``, ``reference_radius_m``, ``abel_scheme`` (the
        scheme used), ``abel_scheme_requested``, ``abel_scheme_reason``,
        ``top_model`` (the model used: "zero" or "exponential"), ``top_model_requested``,
        ``top_model_reason``, and with ``error_estimate``
        ``abel_discretisation_error_over_peak`` (the largest estimated discretisation
        error of N_e over the largest retrieved |N_e|: the larger of the step-doubling
        estimate and the peak's :data:`PEAK_ERROR_MODEL` c (dh/H)^p),
        ``peak_levels_per_scale_height`` and ``under_resolved`` (1 when the error exceeds
        :data:`UNDER_RESOLVED_FRACTION`).
    """
    variables, coords, out_attrs = _profile_parts(
        impact_parameter_m, bending_angle_rad, frequency_hz, top=top,
        top_fit_samples=top_fit_samples, scheme=scheme, error_estimate=error_estimate,
        reference_radius_m=reference_radius_m, extra=extra, attrs=attrs,
        end_radius_m=end_radius_m, top_scale_height_m=top_scale_height_m)
    return cf.mark_coordinates(xr.Dataset(variables, coords=coords, attrs=out_attrs))


def _profile_parts(impact_parameter_m, bending_angle_rad, frequency_hz, *, top,
                   top_fit_samples, scheme, error_estimate, reference_radius_m, extra, attrs,
                   end_radius_m, top_scale_height_m):
    """The variables, coordinates and attrs of :func:`profile_dataset` (its arguments), as
    ``xarray.Dataset`` takes them (:func:`invert_observation` adds its own before building
    the Dataset once)."""
    a = np.asarray(impact_parameter_m, float)
    alpha = np.asarray(bending_angle_rad, float)
    if top == "auto":
        used, reason = choose_top_model(a, alpha, top_fit_samples)
    else:
        used, reason = top, f"{top} top requested"
    if scheme == "auto":
        scheme_used, scheme_reason = choose_scheme(a, alpha)
    else:
        scheme_used, scheme_reason = scheme, f"{scheme} requested"
    scale = None
    if used == "exponential" and top_scale_height_m is not None:
        scale = float(top_scale_height_m)
    elif used == "exponential":  # an exponential the top samples cannot support: vacuum
        order = np.argsort(a)
        try:
            scale = _exponential_tail_scale(a[order], alpha[order], top_fit_samples)
        except RoharnessError as exc:
            used, reason = "zero", (f"{reason}; but {str(exc).split('; use')[0]}: vacuum top "
                                    "used")
    alpha_in, one_sided = _complete_one_sided(a, alpha, end_radius_m, used, scale,
                                              top_fit_samples, scheme_used)
    if error_estimate:
        log_n, est = inverse_abel_with_error(a, alpha_in, top=used,
                                             top_fit_samples=top_fit_samples,
                                             scheme=scheme_used, top_scale_height_m=scale)
    else:
        log_n = inverse_abel(a, alpha_in, top=used, top_fit_samples=top_fit_samples,
                             scheme=scheme_used, top_scale_height_m=scale)
    radius = a * np.exp(-log_n)
    refr = np.expm1(log_n)
    ne = electron_density_from_refractivity(refr, frequency_hz)
    order = np.argsort(radius, kind="stable")
    data = {
        "radius": (radius, _attrs("m", "radius of the ray's closest approach")),
        "impact_parameter": (a, _attrs("m", "impact parameter")),
        "bending_angle": (alpha, _attrs("rad", "bending angle, positive toward the planet")),
        "refractivity": (refr, _attrs("1", "refractivity n - 1 at frequency_hz")),
        "electron_density": (ne, _attrs("m-3", "electron density")),
    }
    if one_sided["one_sided_correction"] == "applied":
        data["one_sided_bending_correction"] = (alpha_in - alpha, _attrs(
            "rad", "missing half-path bending above a ray end inside the medium, added "
            "before the inversion"))
    data.update(extra or {})
    variables = {}
    for name, (values, vattrs) in data.items():
        values = np.asarray(values)
        dims = ("altitude",) if values.ndim == 1 else ("altitude", "xyz")
        variables[name] = (dims, values[order], dict(vattrs))
    coords = {"altitude": ("altitude", radius[order] - reference_radius_m,
                           dict(cf.ALTITUDE, long_name="altitude above the reference sphere"))}
    if any(v[1].ndim == 2 for v in variables.values()):
        coords["xyz"] = ("xyz", np.array(["x", "y", "z"]),
                         {"long_name": "Cartesian axis of Mars-centred J2000"})
    out_attrs = dict(attrs or {})
    out_attrs.update({"frequency_hz": float(frequency_hz), "top_model": used,
                      "top_scale_height_m": float("nan") if scale is None else scale,
                      "top_model_requested": top, "top_model_reason": reason,
                      "abel_scheme": scheme_used, "abel_scheme_requested": scheme,
                      "abel_scheme_reason": scheme_reason,
                      "reference_radius_m": float(reference_radius_m), **one_sided,
                      "Conventions": cf.CONVENTIONS,
                      "title": "roharness retrieved electron density profile"})
    if error_estimate:
        peak = float(np.max(np.abs(ne))) if ne.size else 0.0
        err_ne = np.abs(electron_density_from_refractivity(est, frequency_hz))
        frac = (float(np.nanmax(err_ne) / peak) if peak > 0 and np.isfinite(est).any()
                else float("nan"))
        per_h, model = _peak_resolution(radius[order] - reference_radius_m, ne[order],
                                        scheme_used)
        if np.isfinite(model) and not model <= frac:  # the larger of the two estimates
            frac = model
        out_attrs.update(abel_discretisation_error_over_peak=frac,
                         peak_levels_per_scale_height=per_h,
                         under_resolved=int(frac > UNDER_RESOLVED_FRACTION))
    return variables, coords, out_attrs


#: Discretisation error of each Abel scheme at the peak of a Chapman-like layer, as
#: (coefficient, power) of dh / H, in units of the peak. Cubic: measured 0.011-0.017
#: (dh / H)^4 on noiseless round trips at dh / H = 0.59-0.7 (0.5 Hz Earth links), where
#: the step-doubling estimate reads low (0.3-0.7x; its coarse grids are far outside the
#: asymptotic regime); x1.5 margin. Quintic: 0.015-0.022 (dh / H)^6 on Chapman pairs at
#: dh / H = 0.5-0.82 (worst of four grid phases, retrieval.abel notes), 0.008-0.012 on
#: round trips; x1.4 margin. Linear: (0.025-0.06) (dh / H)^2 (retrieval.abel notes).
PEAK_ERROR_MODEL = {"quintic": (0.03, 6), "cubic": (0.025, 4), "linear": (0.06, 2)}


def _peak_resolution(altitude_m, ne, scheme="cubic"):
    r"""Levels per scale height at the N_e peak and the error they imply.

    The effective scale height comes from the curvature of the three levels around the
    largest N_e (a Chapman layer is :math:`N_0 e^{-z^2/4}` near its peak, so
    :math:`H = \sqrt{-N_0 / (2 N'')}`); the implied discretisation error is
    :data:`PEAK_ERROR_MODEL` :math:`c (dh/H)^p` of the peak (the scheme's), dh the larger
    step at the peak. NaN where the peak is at an end of the profile or not curved downward."""
    h = np.asarray(altitude_m, float)
    n = np.asarray(ne, float)
    ok = np.isfinite(h) & np.isfinite(n)
    h, n = h[ok], n[ok]
    if n.size < 3:
        return float("nan"), float("nan")
    i = int(np.argmax(n))
    if i == 0 or i == n.size - 1 or n[i] <= 0:
        return float("nan"), float("nan")
    hm, h0, hp = h[i - 1:i + 2]
    nm, n0, np_ = n[i - 1:i + 2]
    curv = 2.0 * ((np_ - n0) / (hp - h0) - (n0 - nm) / (h0 - hm)) / (hp - hm)
    if not curv < 0:
        return float("nan"), float("nan")
    scale = float(np.sqrt(n0 / (-2.0 * curv)))
    step = float(max(hp - h0, h0 - hm))
    coefficient, power = PEAK_ERROR_MODEL[scheme]
    return scale / step, coefficient * (step / scale) ** power


def _complete_one_sided(a, alpha, end_radius_m, top, scale, top_fit_samples, scheme):
    """The bending to invert and the ``one_sided_*`` attrs of :func:`profile_dataset`.

    Ends above the top level add nothing under a vacuum top, so the correction (two or more
    extra inversions) runs only when an end lies below the top level or the top is
    exponential."""
    if end_radius_m is None:
        return alpha, {"one_sided_correction": "no_end_positions"}
    ends = np.asarray(end_radius_m, float).reshape(a.size, -1)
    below = np.isfinite(ends) & (ends < a.max())
    if not (below.any() or (top == "exponential" and np.isfinite(ends).any())):
        return alpha, {"one_sided_correction": "not_needed"}
    res = complete_bending(
        a, alpha, ends,
        lambda al: inverse_abel(a, al, top=top, top_fit_samples=top_fit_samples,
                                scheme=scheme, top_scale_height_m=scale),
        top_scale_height_m=scale)
    return res["bending_angle"], {
        "one_sided_correction": "applied", "one_sided_iterations": int(res["iterations"]),
        "one_sided_converged": int(res["converged"]),
        "one_sided_max_correction_over_max_bending": float(
            np.max(np.abs(res["correction"])) / max(float(np.max(np.abs(alpha))), 1e-300))}


def _tangent_geometry(position_m, et):
    """Areocentric lat/lon [deg] and SZA [deg] of Mars-centred J2000 positions (SPICE)."""
    import spiceypy as sp

    from retrieval import spice

    spice.ensure_kernels()
    sun, _ = spice.states("SUN", et, observer="MARS", frame="J2000", abcorr="LT")
    fixed = np.empty_like(position_m)
    for i, e in enumerate(np.asarray(et, float)):  # pxform is not vectorised in spiceypy
        fixed[i] = np.asarray(sp.pxform("J2000", "IAU_MARS", float(e))) @ position_m[i]
    r = np.linalg.norm(fixed, axis=1)
    lat = np.degrees(np.arcsin(fixed[:, 2] / r))
    lon = np.degrees(np.arctan2(fixed[:, 1], fixed[:, 0])) % 360.0
    s = sun[:, :3]
    cos_sza = np.sum(position_m * s, axis=1) / (r * np.linalg.norm(s, axis=1))
    return lat, lon, np.degrees(np.arccos(np.clip(cos_sza, -1.0, 1.0)))


def _check_observation(obs: xr.Dataset, df, conv):
    """Raise unless the observation and the per-sample solution (residual ``df`` [Hz],
    ``conv`` converged) are usable (:func:`invert_observation`)."""
    t = np.asarray(obs.variables["time"].values, float)
    for name in ("time", "tx_position", "rx_position", "tx_velocity", "rx_velocity"):
        vals = np.asarray(obs.variables[name].values, float)
        bad = ~np.isfinite(vals)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise RoharnessError(
                f"the observation's {name} has NaN or infinite values ({int(bad.sum())}; "
                f"first at sample {i}); expected finite values at every sample")
    bad = ~np.isfinite(df)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RoharnessError(
            f"the observation's residual Doppler has {int(bad.sum())} NaN or infinite samples "
            f"(first at time {t[i]:.3f} s); remove or fill gaps before inverting")
    if not np.all(np.diff(t) > 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise RoharnessError(f"the observation's times are not strictly increasing (at sample "
                             f"{i}, t = {t[i]:.3f} s)")
    if not conv.all():
        i = int(np.flatnonzero(~conv)[0])
        raise RoharnessError(
            f"no bent ray was found for {int((~conv).sum())} samples (first at time "
            f"{t[i]:.3f} s): the straight line between the spacecraft does not pass between "
            "them past the planet or the Doppler does not constrain the ray")


def _tangent_epochs(obs):
    """Epoch [TDB s] of the end nearer to Mars at each sample, None without
    ``et_tx``/``et_rx``."""
    if not ("et_tx" in obs and "et_rx" in obs):
        return None
    var = obs.variables
    near_tx = (np.linalg.norm(var["tx_position"].values, axis=-1)
               <= np.linalg.norm(var["rx_position"].values, axis=-1))
    return np.where(near_tx, var["et_tx"].values, var["et_rx"].values)


def _monotonic_model(monotonic, obs):
    """The impact-parameter repair of :func:`invert_observation` (``monotonic``, else the
    observation's ``impact_parameter_repair``, else ``"raise"``), checked."""
    if monotonic is None:
        monotonic = obs.attrs.get("impact_parameter_repair", "raise")
    if monotonic not in MONOTONIC_MODELS:
        raise ValueError(f"unknown monotonic model {monotonic!r}; known: "
                         f"{list(MONOTONIC_MODELS)}")
    return monotonic


def _isotonic_merge(a, alpha, t, a_straight, direction, et):
    """The isotonic repair of :func:`invert_observation`: the samples merged into the levels
    of :func:`isotonic_levels` (means; unit directions renormalised; ``et`` None if absent),
    and the number of samples per level ``merged``."""
    starts = isotonic_levels(a, decreasing=bool(a_straight[-1] < a_straight[0]))
    merged = np.diff(np.append(starts, a.size))

    def mean(v):
        v = np.asarray(v, float)
        shape = (-1,) + (1,) * (v.ndim - 1)
        return np.add.reduceat(v, starts, axis=0) / merged.reshape(shape)
    a, alpha, t, a_straight = mean(a), mean(alpha), mean(t), mean(a_straight)
    direction = mean(direction)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    if et is not None:
        et = mean(et)
    if a.size < 2:
        raise RoharnessError(
            "the retrieved impact parameter shows no monotonic descent or ascent at all "
            "(isotonic repair left one level): the residual is dominated by noise")
    return a, alpha, t, a_straight, direction, et, merged


def _check_rays(a, alpha, t, step, obs, max_lowest_altitude_m):
    """Raise unless the impact parameter is strictly monotonic in time, the lowest ray
    reaches below ``max_lowest_altitude_m`` above the observation's reference sphere and
    some ray is bent (:func:`invert_observation`); return the reference radius [m]."""
    if not (np.all(step > 0) or np.all(step < 0)):
        i = int(np.flatnonzero(np.sign(step) != np.sign(step[0]))[0]) + 1
        raise RoharnessError(
            f"the retrieved impact parameter is not monotonic in time (it turns at time "
            f"{t[i]:.3f} s); a single ingress or egress is expected, split the observation")
    ref = float(obs.attrs.get("reference_radius_m", K.MARS_MEAN_RADIUS_M))
    lowest = float(a.min() - ref)
    if lowest > max_lowest_altitude_m:
        raise RoharnessError(
            f"the profile never reaches the ionosphere: its lowest ray passes "
            f"{lowest / 1e3:.1f} km above the {ref / 1e3:.1f} km sphere, above the "
            f"{max_lowest_altitude_m / 1e3:.0f} km limit")
    if not np.any(alpha != 0):
        raise RoharnessError("the residual Doppler shows no bending at all (every bending "
                             "angle is zero), so there is no ionosphere to invert")
    return ref


#: A link end farther than this from Mars' centre is outside any Martian medium (Earth) [m].
MARS_SIDE_LIMIT_M = 1e8


def _mars_side_ends(obs, t_levels):
    """Radius [m] of each Mars-side link end at each level's time, shape (levels, ends);
    None without Mars-side ends (the one-sided correction of :func:`profile_dataset`)."""
    t_obs = np.asarray(obs.variables["time"].values, float)
    cols = []
    for v in ("tx_position", "rx_position"):
        r = np.linalg.norm(np.asarray(obs.variables[v].values, float), axis=-1)
        if np.all(np.isfinite(r)) and np.max(r) < MARS_SIDE_LIMIT_M:
            cols.append(np.interp(t_levels, t_obs, r))
    return np.column_stack(cols) if cols else None


def _extra_variables(obs, t, a_straight, direction, merged, et):
    """The per-level variables :func:`invert_observation` adds to :func:`profile_dataset`
    (``et`` None if the observation has no epochs)."""
    extra = {
        "time": (t, dict(obs.variables["time"].attrs,
                         units=obs.variables["time"].attrs.get("units", "s"),
                         long_name="time of the sample")),
        "straight_impact_parameter": (a_straight,
                                      _attrs("m", "impact parameter of the straight line")),
        "tangent_point_position": (direction,
                                   _attrs("m", "tangent point, Mars-centred J2000")),
        "samples_merged": (merged, _attrs("1", "observation samples averaged into this "
                                          "level (isotonic repair; 1 = as observed)")),
        "quality_flag": (np.where(merged > 1, FLAG_MERGED, 0).astype(np.int8), {
            "long_name": "profile level quality flag", "flag_masks": np.int8(FLAG_MERGED),
            "flag_meanings": "merged_by_isotonic_repair"}),
    }
    if et is not None:
        extra["et"] = (et, _attrs("s", "TDB seconds past J2000 at the tangent point "
                                  "(epoch of the end nearer to Mars)"))
    return extra


def _tangent_geometry_variables(position_m, et):
    """The tangent point's ``latitude``, ``longitude`` and ``sza`` [deg] as profile
    variables, from its ``position_m`` (levels, 3) [m, J2000] and epochs ``et`` [s]."""
    lat, lon, sza = _tangent_geometry(position_m, et)
    return {
        "latitude": ("altitude", lat, dict(_attrs(
            "degree_north", "areocentric latitude of the tangent point"),
            standard_name="latitude")),
        "longitude": ("altitude", lon, dict(_attrs(
            "degree_east", "areocentric east longitude of the tangent point"),
            standard_name="longitude")),
        "sza": ("altitude", sza, _attrs("degree", "solar zenith angle at the tangent point")),
    }


def invert_observation(obs: xr.Dataset, *, residual: str = "auto", band: str = "x",
                       two_way: str = "joint", top: str = "auto", top_fit_samples: int = 10,
                       scheme: str = "cubic",
                       max_lowest_altitude_m: float = MAX_LOWEST_ALTITUDE_M,
                       tangent_geometry: bool = True, monotonic: str | None = None,
                       neutral: str = "auto", top_scale_height_m: float | None = None,
                       error_estimate: bool = True) -> xr.Dataset:
    """Residual Doppler + state vectors -> electron density profile (the whole retrieval).

    Steps: :func:`retrieval.bending.bending_from_observation` per sample (one-way, two-way
    or dual-frequency residual), checks (finite, strictly monotone impact parameter in time,
    reaches the ionosphere), :func:`retrieval.abel.inverse_abel`,
    :func:`electron_density_from_refractivity`.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation per the RO contract.
    residual : {"auto", "one_way", "two_way", "dual_frequency"}
        Which residual to invert, see :func:`retrieval.bending.one_way_residual`.
    band : {"x", "s"}
        Band for a dual-frequency observation.
    two_way : {"joint", "one_ray"}
        Two-way/dual-frequency to one-way conversion: ``"joint"`` (default) fits the exact
        two-way Doppler of separate up- and down-link bent rays (needs the observation's
        ``uplink_tx_position``/``uplink_tx_velocity`` for the uplink geometry),
        ``"one_ray"`` the one-ray relations; see
        :func:`retrieval.bending.joint_two_way_residual`.
    top, top_fit_samples, scheme, top_scale_height_m, error_estimate
        Above-the-top treatment (default ``"auto"``: chosen from the data; ``"zero"``;
        ``"exponential"``) and
        interpolation scheme (default ``"cubic"``) of the Abel integral, see
        :func:`profile_dataset`.
    max_lowest_altitude_m : float
        The profile must reach below this altitude above ``reference_radius_m`` (default
        300 km, :data:`MAX_LOWEST_ALTITUDE_M`), else it never reached the ionosphere.
    tangent_geometry : bool
        Add tangent-point ``latitude``, ``longitude``, ``sza`` [deg] via SPICE (needs
        ``et_tx``/``et_rx``; the epoch of the end nearer to Mars is used).
    monotonic : {None, "raise", "isotonic"}
        What to do when the retrieved impact parameter is not strictly monotonic in time:
        ``"raise"`` (a turning ray: split the observation) or ``"isotonic"`` (noise: merge
        the offending samples into levels by isotonic regression,
        :func:`isotonic_levels`, and flag them in ``quality_flag``/``samples_merged``).
        None (default) takes the observation's attr ``impact_parameter_repair`` (set by
        :func:`retrieval.drift.correct_drift` on a drift-corrected, noisy level-5
        residual), else ``"raise"``; on a clean observation both give the same profile.
    neutral : {"auto", "none", "exponential", "exponential_gradient"}
        Neutral-atmosphere treatment, :func:`retrieval.neutral.remove_neutral`: a neutral
        model fitted below the ionosphere and removed before N_e on single-frequency links
        (``"auto"``: only if detected; on a dual-frequency residual the neutral is already
        cancelled and nothing is removed).

    Returns
    -------
    xarray.Dataset
        Profile on dim ``altitude`` (ascending): ``radius``, ``impact_parameter``,
        ``bending_angle``, ``refractivity``, ``electron_density``, ``time`` [s, as the
        observation], ``tangent_point_position`` (altitude, xyz) [m, J2000],
        ``samples_merged`` [1] and ``quality_flag`` (bit 1: level merged by the isotonic
        repair), and if
        available ``latitude``, ``longitude``, ``sza``. Attrs: the observation's, plus
        ``frequency_hz`` (of the inverted residual), ``residual_kind``, the Abel step's
        (:func:`profile_dataset`: ``abel_scheme``, ``top_model``, ``top_model_reason``,
        ``abel_discretisation_error_over_peak``, ``under_resolved``), and
        for two-way links ``two_way_model``, ``two_way_iterations``, ``two_way_misfit_hz``,
        ``uplink_geometry`` ("observed" or "downlink_assumed"); ``neutral_refractivity``,
        ``neutral_refractivity_error`` and the ``neutral_*`` attrs of
        :func:`retrieval.neutral.remove_neutral`.

    Raises
    ------
    RoharnessError
        NaN samples, non-monotonic impact parameters, no ray solution, a profile that never
        reaches the ionosphere or shows no bending.
    """
    for v in ("time", "tx_position", "rx_position", "tx_velocity", "rx_velocity"):
        if v not in obs.variables:
            raise RoharnessError(f"the observation lacks '{v}', required by the RO contract")
    out, df, f_hz, kind, two_way_info = _bending_arrays(obs, residual, band, two_way,
                                                        max_iterations=30)
    _check_observation(obs, df, out["converged"])
    per_attrs = {**obs.attrs, "frequency_hz": f_hz, "residual_kind": kind, **two_way_info}
    t = np.asarray(obs.variables["time"].values, float)
    a = out["impact_parameter_m"]
    alpha = out["bending_angle_rad"]
    a_straight = out["straight_impact_parameter_m"]
    direction = out["tangent_point_direction"]
    et = _tangent_epochs(obs)
    has_et = et is not None
    monotonic = _monotonic_model(monotonic, obs)
    step = np.diff(a)
    merged = np.ones(a.size, int)
    if monotonic == "isotonic" and a.size > 1 and not (np.all(step > 0)
                                                       or np.all(step < 0)):
        a, alpha, t, a_straight, direction, et, merged = _isotonic_merge(
            a, alpha, t, a_straight, direction, et)
        step = np.diff(a)
    ref = _check_rays(a, alpha, t, step, obs, max_lowest_altitude_m)
    extra = _extra_variables(obs, t, a_straight, direction, merged, et)
    # the profile's variables are assembled first and the Dataset built once: each
    # assignment to a Dataset merges and realigns it (~0.5-1 ms apiece, a fifth of an error
    # budget's realisation for the four this used to make)
    variables, coords, attrs = _profile_parts(
        a, alpha, f_hz, top=top, top_fit_samples=top_fit_samples, scheme=scheme,
        top_scale_height_m=top_scale_height_m, error_estimate=error_estimate,
        reference_radius_m=ref, end_radius_m=_mars_side_ends(obs, t), extra=extra,
        attrs={**obs.attrs, **{key: per_attrs[key] for key in (
            "residual_kind", "two_way_model", "two_way_iterations", "two_way_misfit_hz",
            "uplink_geometry") if key in per_attrs}})
    # the direction (unit vector) becomes the position once the radius is known
    dims, unit, _ = variables["tangent_point_position"]
    position = unit * variables["radius"][1][:, None]
    variables["tangent_point_position"] = (dims, position,
                                           _attrs("m", "tangent point, Mars-centred J2000"))
    if tangent_geometry and has_et:
        variables.update(_tangent_geometry_variables(position, variables["et"][1]))
    altitude = coords["altitude"][1]
    new, ne, neutral_attrs = _neutral_parts(altitude, variables["refractivity"][1], attrs,
                                            neutral)
    if ne is not None:
        dims, _, ne_attrs = variables["electron_density"]
        variables["electron_density"] = (dims, ne, ne_attrs)
    variables.update(new)
    attrs.update(neutral_attrs)
    attrs.update(_spacecraft_attrs(altitude, variables["electron_density"][1],
                                   float(attrs.get("reference_radius_m",
                                                   K.MARS_MEAN_RADIUS_M)), obs))
    return cf.mark_coordinates(xr.Dataset(variables, coords=coords, attrs=attrs))


#: A spacecraft whose altitude is inside the retrieved ionosphere, where N_e exceeds this
#: fraction of the retrieved peak, breaks the Abel model's assumption that both ends lie
#: outside the medium (the ray is one-sided near it). Measured on MAVEN at 153 km in the M2
#: layer: bottomside errors of 4.7e-3 to 4.3e-2 of the peak with an exact bending stage.
INSIDE_IONOSPHERE_FRACTION = 1e-3


def _spacecraft_attrs(alt, ne, ref, obs) -> dict:
    """Profile attrs (none without a Mars-side end): the lowest altitude of a Mars-side
    end during the pass, the retrieved N_e there over the retrieved peak, and
    ``spacecraft_in_ionosphere`` (1 when it exceeds :data:`INSIDE_IONOSPHERE_FRACTION`);
    ``alt`` [m] and ``ne`` [m^-3] the profile's, ``ref`` its reference radius [m]."""
    lowest = np.inf
    for v in ("tx_position", "rx_position"):
        r = np.linalg.norm(np.asarray(obs.variables[v].values, float), axis=-1)
        r = r[np.isfinite(r) & (r < 1e8)]  # Mars-side ends only (Earth is ~1e11 m away)
        if r.size:
            lowest = min(lowest, float(r.min()) - ref)
    if not np.isfinite(lowest):
        return {}
    ok = np.isfinite(ne)
    peak = float(np.max(ne[ok])) if ok.any() else np.nan
    frac = 0.0
    if ok.any() and peak > 0 and alt[ok].min() <= lowest <= alt[ok].max():
        order = np.argsort(alt[ok])
        frac = float(np.interp(lowest, alt[ok][order], ne[ok][order]) / peak)
    return dict(lowest_spacecraft_altitude_m=lowest,
                electron_density_at_spacecraft_over_peak=frac,
                spacecraft_in_ionosphere=int(frac > INSIDE_IONOSPHERE_FRACTION))
