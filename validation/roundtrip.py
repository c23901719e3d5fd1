"""Round trip of one occultation: scenario -> truth + observation -> retrieval -> metrics.

The retrieval sees only the observation; the comparison with the truth happens here.
Metrics (all in physical units, see :func:`compare`):

* ``ne_max_abs_error_over_peak``: max |N_e retrieved - N_e true| / true peak density, over
  the retrieved levels where the true density exceeds 1 % of its peak.
* ``m2_peak_altitude_error_km``, ``m2_peak_density_rel_error``: retrieved (interpolated)
  M2 peak minus the true peak of the full profile.
* ``m1_class`` (retrieved), ``m1_peak_altitude_error_km``, ``m1_peak_density_rel_error``:
  against the true M1 local maximum (NaN when the true profile has no distinct one).
* ``neutral_temperature_error_k``: retrieved T_n minus T = H g m_CO2 / k_B of the true M2
  layer's scale height H, with g = GM/(R + h)^2 at the true M2 peak.
* ``tec_rel_error``: retrieved vertical TEC relative to the true TEC over the same
  altitude range as the retrieved profile.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval import cf
from retrieval import constants as K
from retrieval.electron_density import invert_observation
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path
from retrieval.profile import M1_MIN_DIP, profile_science
from synth.observe import simulate
from synth.scenario import Scenario, load_scenario

if TYPE_CHECKING:  # annotations only
    import os

    from validation.plugins import Retrieval


def _true_m1_peak(alt_m, ne):
    """The true M1 peak: the highest distinct local maximum of the fine truth profile below M2.

    "Distinct" follows the published class definition as the project documents it
    (:data:`retrieval.profile.M1_MIN_DIP`): the density must dip by at least that fraction
    between the maximum and the M2 peak; a barely-there bump is a shoulder, not a peak.
    """
    i2 = int(np.argmax(ne))
    below = ne[:i2]
    if len(below) < 3:
        return np.nan, np.nan
    idx = np.nonzero((below[1:-1] > below[:-2]) & (below[1:-1] >= below[2:]))[0] + 1
    idx = idx[below[idx] > 1e-3 * ne[i2]]
    idx = np.array([j for j in idx if ne[j] - ne[j:i2 + 1].min() >= M1_MIN_DIP * ne[j]], int)
    if not len(idx):
        return np.nan, np.nan
    j = idx[np.argmax(below[idx])]
    return float(alt_m[j]), float(ne[j])


def true_quantities(truth: xr.Dataset, alt_range_m=None) -> dict:
    """Peaks, temperature and TEC implied by the truth Dataset."""
    alt = truth.altitude.values
    ne = truth.electron_density.values
    i2 = int(np.argmax(ne))
    # refine the peak by a parabola through the three fine-grid points (100 m grid)
    if 0 < i2 < len(ne) - 1:
        y0, y1, y2 = ne[i2 - 1:i2 + 2]
        d = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        h2 = alt[i2] + d * (alt[1] - alt[0])
        n2 = y1 - 0.25 * (y0 - y2) * d
    else:
        h2, n2 = alt[i2], ne[i2]
    h1, n1 = _true_m1_peak(alt, ne)
    names = [str(n).upper() for n in truth["layer"].values]  # the truth's layer table
    m2 = names.index("M2") if "M2" in names else 0
    g = sc.G * (K.MARS_GM_M3_S2 / sc.G) / (K.MARS_MEAN_RADIUS_M + h2) ** 2
    t_n = float(truth["layer_scale_height"].values[m2]) * g * K.CO2_MASS_KG / sc.k
    lo, hi = alt_range_m if alt_range_m is not None else (alt[0], alt[-1])
    m = (alt >= lo) & (alt <= hi)
    tec = float(np.trapezoid(ne[m], alt[m]))
    return dict(m2_peak_altitude_m=float(h2), m2_peak_density_m3=float(n2),
                m1_peak_altitude_m=h1, m1_peak_density_m3=n1, neutral_temperature_k=t_n,
                tec_m2=tec)


def compare(truth: xr.Dataset, profile: xr.Dataset) -> dict:
    """Metrics of a retrieved profile against the truth (see the module docstring)."""
    alt = profile.altitude.values
    ne = profile.electron_density.values
    ne_true = np.interp(alt, truth.altitude.values, truth.electron_density.values)
    peak = float(truth.electron_density.max())
    sig = ne_true > 0.01 * peak
    if not sig.any():
        raise RoharnessError("the retrieved profile does not reach the ionosphere (no level "
                             "where the true density exceeds 1 % of its peak)")
    sci = profile_science(alt, ne)
    tru = true_quantities(truth, (alt.min(), alt.max()))
    m1_alt_err = (sci["m1_peak_altitude_m"] - tru["m1_peak_altitude_m"]) / 1e3
    m1_den_err = sci["m1_peak_density_m3"] / tru["m1_peak_density_m3"] - 1.0
    return dict(
        ne_max_abs_error_over_peak=float(np.max(np.abs(ne - ne_true)[sig]) / peak),
        m2_peak_altitude_error_km=(sci["m2_peak_altitude_m"] - tru["m2_peak_altitude_m"]) / 1e3,
        m2_peak_density_rel_error=sci["m2_peak_density_m3"] / tru["m2_peak_density_m3"] - 1.0,
        m1_class=sci["m1_class"],
        m1_peak_altitude_error_km=float(m1_alt_err) if np.isfinite(m1_alt_err) else float("nan"),
        m1_peak_density_rel_error=float(m1_den_err) if np.isfinite(m1_den_err) else float("nan"),
        neutral_temperature_error_k=sci["neutral_temperature_k"] - tru["neutral_temperature_k"],
        tec_rel_error=sci["tec_m2"] / tru["tec_m2"] - 1.0,
        science=sci, truth=tru,
    )


def bending_stage(truth: xr.Dataset, profile: xr.Dataset) -> dict:
    """Score the Doppler -> bending stage of a profile that carries its bending angles.

    The true bending angle alpha(a) of the rays (``truth.bending_angle`` against
    ``truth.impact_parameter``) is interpolated onto the profile's impact parameters, over
    the rays whose impact parameter lies inside the truth's range.

    Returns
    -------
    dict
        ``bending_max_abs_error_rad``; ``bending_rel_error`` = that maximum over the largest
        true |alpha| of those rays; ``bending_rays`` (how many were compared). Empty when
        the profile has no bending angles.
    """
    if "bending_angle" not in profile or "impact_parameter" not in profile:
        return {}
    a_t = np.asarray(truth.impact_parameter.values, float)
    al_t = np.asarray(truth.bending_angle.values, float)
    ok = np.isfinite(a_t) & np.isfinite(al_t)
    a_t, al_t = a_t[ok], al_t[ok]
    order = np.argsort(a_t)
    a_t, al_t = a_t[order], al_t[order]
    a = np.asarray(profile.impact_parameter.values, float).ravel()
    al = np.asarray(profile.bending_angle.values, float).ravel()
    m = np.isfinite(a) & np.isfinite(al) & (a >= a_t[0]) & (a <= a_t[-1])
    if m.sum() < 3 or len(a_t) < 3:
        return dict(bending_max_abs_error_rad=float("nan"), bending_rel_error=float("nan"),
                    bending_rays=int(m.sum()))
    truth_at = np.interp(a[m], a_t, al_t)
    err = float(np.max(np.abs(al[m] - truth_at)))
    scale = float(np.max(np.abs(truth_at)))
    return dict(bending_max_abs_error_rad=err,
                bending_rel_error=err / scale if scale > 0 else float("nan"),
                bending_rays=int(m.sum()))


def _unanalysable(truth: xr.Dataset, profile: xr.Dataset, why: str) -> dict:
    """The metrics that remain when the profile science cannot run (no positive layer...):
    the N_e error over the truth's significant levels, everything else NaN, and why."""
    alt = profile.altitude.values
    ne_true = np.interp(alt, truth.altitude.values, truth.electron_density.values)
    peak = float(truth.electron_density.max())
    sig = ne_true > 0.01 * peak
    err = (float(np.max(np.abs(profile.electron_density.values - ne_true)[sig]) / peak)
           if sig.any() else float("nan"))
    nan = float("nan")
    return dict(ne_max_abs_error_over_peak=err, m2_peak_altitude_error_km=nan,
                m2_peak_density_rel_error=nan, m1_class="none", m1_peak_altitude_error_km=nan,
                m1_peak_density_rel_error=nan, neutral_temperature_error_k=nan,
                tec_rel_error=nan, science_error=why, science={}, truth={})


#: A stage is called failing when its relative error reaches this (1 %: ten times the
#: built-in retrieval's noiseless floor on every built-in link, ~1e-4 of the peak).
STAGE_FAIL_REL = 0.01


def score_profile(truth: xr.Dataset, profile: xr.Dataset, compared: dict | None = None
                  ) -> dict:
    """The round-trip metrics of any retrieved profile, plus its stage scores.

    :func:`compare` plus :func:`bending_stage` when the profile has bending angles, and
    ``failing_stage``: ``"none"``, ``"doppler_to_bending"`` (the bending angles are off by
    :data:`STAGE_FAIL_REL` of their maximum or more) or ``"abel_to_density"`` (bending
    within that, the density off by as much of the peak), or ``"unknown"`` without
    bending angles. ``compared``: the result of :func:`compare`, if already computed.
    """
    if compared is not None:
        cmp = compared
    else:
        try:
            cmp = compare(truth, profile)
        except RoharnessError as exc:  # a profile so wrong that it has no layer to analyse
            cmp = _unanalysable(truth, profile, str(exc))
    metrics = {k: v for k, v in cmp.items() if k not in ("science", "truth")}
    stage = bending_stage(truth, profile)
    metrics.update(stage)
    ne_bad = not (abs(metrics["ne_max_abs_error_over_peak"]) < STAGE_FAIL_REL)
    if not stage:
        verdict = "unknown" if ne_bad else "none"
    elif not (stage["bending_rel_error"] < STAGE_FAIL_REL):
        verdict = "doppler_to_bending"
    else:
        verdict = "abel_to_density" if ne_bad else "none"
    metrics["failing_stage"] = verdict
    return metrics


def run_roundtrip(scenario: Scenario | str | os.PathLike, seed: int | None = None,
                  retrieval: str | Retrieval | None = None, top: str | None = None) -> dict:
    """Simulate, retrieve and compare one occultation.

    Parameters
    ----------
    scenario : Scenario, str or path
        A scenario object, a built-in name or a TOML file.
    seed : int, optional
        Overrides the scenario's root seed (noise realisations).
    retrieval : str or validation.plugins.Retrieval, optional
        The retrieval to judge (:mod:`validation.plugins`); default the built-in chain. A
        plug-in receives :func:`validation.export.observation_product` of the observation
        (level 4 plus the I/Q samples on instrument-level scenarios).
    top : {"auto", "zero", "exponential"}, optional
        Overrides the scenario's ``[retrieval] top`` (the built-in retrieval's treatment of
        the bending above the top sample, :func:`retrieval.abel.choose_top_model`).

    Returns
    -------
    dict
        ``metrics`` (the JSON keys), ``truth``, ``observation``, ``profile`` Datasets.
        With the built-in retrieval the metrics also carry the Abel step's own flags:
        ``top_model``, ``top_model_reason``, ``abel_scheme``,
        ``abel_discretisation_error_over_peak``, ``under_resolved``.
    """
    from validation.plugins import parse_retrieval

    ret = parse_retrieval(retrieval)
    t0 = time.perf_counter()
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if seed is not None:
        scn.sections[""]["seed"] = int(seed)
    truth, obs = simulate(scn)
    t_sim = time.perf_counter() - t0
    if ret.is_builtin:
        if scn["receiver"]["enabled"]:  # level-1 path: I/Q -> carrier -> drift -> level 5
            from validation.iq_path import run_iq_path
            obs = run_iq_path(scn, obs)["observation"]
        rset = scn["retrieval"]
        profile = invert_observation(obs, top=top or rset["top"],
                                     scheme=rset["abel_scheme"], neutral=rset["neutral"])
    else:
        iq = None
        if scn["receiver"]["enabled"]:  # the plug-in gets level 4 and the I/Q samples
            from retrieval.iq import level4_observation
            from synth.instrument import level1_record
            iq = level1_record(scn, obs)
            obs, _ = level4_observation(iq, obs)
        from validation.export import observation_product
        obs = observation_product(obs, scn, iq)
        profile = ret(obs)
    t_ret = time.perf_counter() - t0 - t_sim
    if ret.is_builtin:  # the project's own retrieval must give an analysable profile
        cmp = compare(truth, profile)
    else:  # an outside one is scored as far as its profile allows
        try:
            cmp = compare(truth, profile)
        except RoharnessError as exc:
            cmp = _unanalysable(truth, profile, str(exc))
    metrics = score_profile(truth, profile, cmp)
    if "spacecraft_in_ionosphere" in profile.attrs:  # the retrieval's own warning
        metrics["spacecraft_in_ionosphere"] = int(profile.attrs["spacecraft_in_ionosphere"])
    if ret.is_builtin and "top_model" in profile.attrs:  # the Abel step's own flags
        metrics.update(top_model=str(profile.attrs["top_model"]),
                       top_model_reason=str(profile.attrs["top_model_reason"]),
                       abel_scheme=str(profile.attrs.get("abel_scheme", "")))
    if ret.is_builtin and "under_resolved" in profile.attrs:
        metrics.update(abel_discretisation_error_over_peak=float(
            profile.attrs["abel_discretisation_error_over_peak"]),
            under_resolved=int(profile.attrs["under_resolved"]))
    metrics.update(n_samples=int(obs.sizes["time"]), scenario=scn.name, seed=scn.seed,
                   retrieval=ret.spec, sza_deg=float(truth.attrs["sza_deg"]),
                   retrieval_s=t_ret, elapsed_s=time.perf_counter() - t0)
    return dict(metrics=metrics, truth=truth, observation=obs, profile=profile,
                science=cmp["science"], true_quantities=cmp["truth"])


def write_roundtrip(result: dict, path) -> None:
    """Write estimate, truth and observation side by side (netCDF groups), atomically.

    The root group holds the retrieved profile with the truth interpolated onto its levels
    (``electron_density_true``) and the metrics as attributes; groups ``truth`` and
    ``observation`` hold the full truth and the level-2 observation.
    """
    prof = result["profile"].copy()
    truth = result["truth"]
    prof["electron_density_true"] = ("altitude", np.interp(
        prof.altitude.values, truth.altitude.values, truth.electron_density.values),
        {"units": "m-3", "long_name": "true electron density at the retrieved levels"})
    for k, v in result["metrics"].items():
        prof.attrs[f"metric_{k}"] = v if not isinstance(v, bool) else int(v)
    for k, v in result["science"].items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            prof.attrs[f"science_{k}"] = v
    prof.attrs.update(Conventions=cf.CONVENTIONS, title="roharness round trip: retrieved "
                      "profile (root), truth and observation (groups)")
    obs = result["observation"]
    with atomic_path(path, suffix=".nc") as tmp:
        prof.to_netcdf(tmp, mode="w", encoding=cf.coordinate_encoding(prof))
        truth.to_netcdf(tmp, mode="a", group="truth", encoding=cf.coordinate_encoding(truth))
        obs.to_netcdf(tmp, mode="a", group="observation", encoding=cf.coordinate_encoding(obs))
