"""Bending angle and impact parameter of an observation Dataset.

For each sample of an occultation, the residual Doppler (bent minus straight-line received
frequency) and the positions and velocities of the transmitter T and the receiver R give the
two ray directions, hence the bending angle :math:`\\alpha` and the impact parameter
:math:`a`. The ray lies in the plane of :math:`r_T`, :math:`r_R` and Mars' centre.

This module reads observation Datasets (:func:`one_way_residual`,
:func:`bending_from_observation`). The per-sample solvers and their formulation in
deviations from the straight line are in :mod:`retrieval.doppler_bending`
(:func:`bending_from_doppler`, :func:`doppler_from_bending`); the two-way and dual-frequency
relations, one-ray and joint, in :mod:`retrieval.two_way` (:func:`two_way_to_one_way`,
:func:`differential_doppler`, :func:`one_way_from_differential`,
:func:`joint_two_way_residual`). Their names are re-exported here.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval.doppler_bending import bending_from_doppler as bending_from_doppler
from retrieval.doppler_bending import doppler_from_bending as doppler_from_bending
from retrieval.doppler_bending import straight_line_geometry as straight_line_geometry
from retrieval.errors import RoharnessError
from retrieval.two_way import S_TO_X_RATIO as S_TO_X_RATIO
from retrieval.two_way import _bending_interpolant as _bending_interpolant
from retrieval.two_way import differential_doppler as differential_doppler
from retrieval.two_way import joint_two_way_residual as joint_two_way_residual
from retrieval.two_way import one_way_from_differential as one_way_from_differential
from retrieval.two_way import two_way_to_one_way as two_way_to_one_way

#: Ways to obtain the one-way residual from an observation Dataset.
RESIDUAL_MODELS = ("auto", "one_way", "two_way", "dual_frequency")
#: How a two-way or dual-frequency residual becomes a one-way one (:func:`one_way_residual`).
TWO_WAY_MODELS = ("joint", "one_ray")


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
        return np.asarray(obs.variables["frequency_residual"].values, float), f_hz, kind, {}
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


def _bending_arrays(obs, residual, band, two_way, max_iterations):
    """What :func:`bending_from_observation` computes, as arrays: ``(out, residual_hz,
    frequency_hz, kind, two_way_info)``, ``out`` the dict of :func:`bending_from_doppler`
    (:func:`retrieval.electron_density.invert_observation` reads them without the
    Dataset)."""
    for v in ("tx_position", "tx_velocity", "rx_position", "rx_velocity"):
        if v not in obs:
            raise RoharnessError(f"the observation lacks the state-vector variable '{v}' "
                                 "(time, xyz) required by the RO contract")
    df, f_hz, kind, two_way_info = _one_way_residual(obs, residual, band, two_way)
    rows = [obs.variables[v].transpose("time", "xyz").values
            for v in ("tx_position", "tx_velocity", "rx_position", "rx_velocity")]
    out = bending_from_doppler(*rows, df, f_hz, max_iterations=max_iterations)
    return out, df, f_hz, kind, two_way_info


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
    out, df, f_hz, kind, two_way_info = _bending_arrays(obs, residual, band, two_way,
                                                        max_iterations)
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
