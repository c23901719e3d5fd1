"""Data products for outside retrievals: the observation file, the truth file, the score.

``roharness export`` writes what a real pipeline would be given (``observation.nc``) and,
in a separate file, what only the judge may see (``truth.nc``); ``roharness score`` compares
any profile a pipeline wrote with the truth. The contract of both files, every variable with
its unit and sign convention, is the data product guide ``validation/data_products.md``
(``roharness export --guide`` prints it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path

if TYPE_CHECKING:  # annotations only
    import os

    from synth.scenario import Scenario

#: Observation variables of the contract (whichever the link has); nothing else is exported.
OBSERVATION_VARS = (
    "frequency_residual", "frequency_residual_two_way", "frequency_residual_xx",
    "frequency_residual_xs", "frequency_sigma",
    "et_tx", "et_rx", "et_uplink_tx",
    "tx_position", "tx_velocity", "rx_position", "rx_velocity",
    "uplink_tx_position", "uplink_tx_velocity",
)
#: Observation attributes of the contract.
OBSERVATION_ATTRS = ("link", "frequency_hz", "occultation", "reference_radius_m",
                     "tx_naif_id", "rx_naif_id", "epoch_utc", "turnaround_ratio",
                     "data_level", "scenario", "scenario_sha256")
#: Level-1 I/Q variables (receiver-level scenarios), renamed onto the ``sample`` dimension.
IQ_VARS = {"i": "iq_i", "q": "iq_q", "quality_flag": "iq_quality_flag"}
IQ_ATTRS = ("sample_rate_hz", "lo_tuning_coefficients_hz", "lo_tuning_t0_s",
            "lo_tuning_scale_s", "window_s", "step_s")

LEVEL4 = "4: measured minus predicted Doppler"
_CONVENTIONS = dict(
    Conventions="CF-1.10",
    state_frame="J2000",
    state_center="Mars (NAIF 499)",
    light_time_convention=(
        "transmitter states at emission time et_tx, receiver states at reception time et_rx, "
        "light time solved in Mars' inertial rest frame (no stellar aberration)"),
    residual_sign_convention=(
        "frequency_residual = received frequency minus the frequency predicted for the vacuum "
        "(straight-line) link from the same state vectors [Hz]"),
)


def observation_product(observation: xr.Dataset, scn: Scenario | None = None,
                        iq: xr.Dataset | None = None) -> xr.Dataset:
    """The observation as a pipeline receives it: contract variables and attributes only.

    Parameters
    ----------
    observation : xarray.Dataset
        A (possibly perturbed) observation from :func:`synth.simulate`, or a level-4
        observation from :func:`retrieval.level4_observation`.
    scn : Scenario, optional
        On an instrument-level scenario (``[receiver] enabled``) a level-2 observation that
        carries the oscillators' drift (the budget's perturbations) is labelled level 4, as
        the measured-minus-predicted Doppler it stands for.
    iq : xarray.Dataset, optional
        Level-1 I/Q record to include on the ``sample`` dimension (truth variables dropped).

    Returns
    -------
    xarray.Dataset
        With CF attributes and the frame / light-time conventions in its global attributes.
    """
    keep = [v for v in OBSERVATION_VARS if v in observation.data_vars]
    if not keep or not any(v.startswith("frequency_residual") for v in keep):
        raise RoharnessError("the observation has no frequency_residual variable to export")
    out = observation[keep].copy()
    out.attrs = {k: observation.attrs[k] for k in OBSERVATION_ATTRS if k in observation.attrs}
    out.attrs.update(_CONVENTIONS)
    if scn is not None and scn["receiver"]["enabled"] and \
            str(out.attrs.get("data_level", "")).startswith("2"):
        out.attrs["data_level"] = LEVEL4
    out["time"].attrs.setdefault("units", "s")
    out["time"].attrs.setdefault("long_name", "time since epoch_utc (reception)")
    if "xyz" in out.coords:
        out["xyz"].attrs.setdefault("long_name", "Cartesian component in J2000")
    for name in keep:
        out[name].attrs.setdefault("long_name", name.replace("_", " "))
    if iq is not None:
        iq_part = xr.Dataset(
            {new: ("sample", np.asarray(iq[old].values)) for old, new in IQ_VARS.items()
             if old in iq},
            coords={"sample_time": ("sample", np.asarray(iq["time"].values, float),
                                    {"units": "s", "long_name": "sample time since "
                                     "epoch_utc"})})
        iq_part["iq_i"].attrs.update(units="1", long_name="in-phase baseband sample")
        iq_part["iq_q"].attrs.update(units="1", long_name="quadrature baseband sample")
        if "iq_quality_flag" in iq_part:
            iq_part["iq_quality_flag"].attrs.update(long_name="receiver quality flag "
                                                    "(0 good; bit set: fault)")
        out = out.merge(iq_part)
        for k in IQ_ATTRS:
            if k in iq.attrs:
                v = iq.attrs[k]
                out.attrs[f"iq_{k}"] = np.asarray(v).tolist() if np.ndim(v) else v
        out.attrs["data_level"] = (str(out.attrs.get("data_level", ""))
                                   + "; level 1 I/Q samples included")
    return out


def truth_product(truth: xr.Dataset) -> xr.Dataset:
    """The truth as written to ``truth.nc`` (everything :func:`validation.compare` needs)."""
    out = truth.copy()
    out.attrs.setdefault("Conventions", "CF-1.10")
    out.attrs["title"] = "roharness ground truth (for the judge only; never give it to a " \
                         "retrieval)"
    return out


def export_scenario(scenario: Scenario | str | os.PathLike, seed: int | None = None,
                    out_dir: str | os.PathLike = ".", *, include_iq: bool = True) -> dict:
    """Simulate a scenario and write ``observation.nc`` and ``truth.nc`` into ``out_dir``.

    Instrument-level scenarios (``[receiver] enabled``) export level 4 (measured minus
    predicted Doppler, oscillator drift still in it) from the harness's own carrier
    extraction, plus the level-1 I/Q samples so that a pipeline may start from either.

    Returns
    -------
    dict
        ``observation`` and ``truth`` paths, ``scenario``, ``seed``, ``data_level``.
    """
    from pathlib import Path

    from synth.observe import simulate
    from synth.scenario import Scenario, load_scenario

    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if seed is not None:
        scn.sections[""]["seed"] = int(seed)
    truth, obs = simulate(scn)
    iq = None
    if scn["receiver"]["enabled"]:
        from retrieval.iq import level4_observation
        from synth.instrument import level1_record

        iq = level1_record(scn, obs)
        obs, _ = level4_observation(iq, obs)
    product = observation_product(obs, scn, iq if include_iq else None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RoharnessError(f"output directory '{out}' exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = dict(observation=out / "observation.nc", truth=out / "truth.nc")
    encoding = {v: {"zlib": True, "complevel": 4} for v in ("iq_i", "iq_q")
                if v in product}
    with atomic_path(paths["observation"], suffix=".nc") as tmp:
        product.to_netcdf(tmp, encoding=encoding)
    with atomic_path(paths["truth"], suffix=".nc") as tmp:
        truth_product(truth).to_netcdf(tmp)
    return dict(observation=str(paths["observation"]), truth=str(paths["truth"]),
                scenario=scn.name, seed=scn.seed, data_level=product.attrs["data_level"])


def _open(path, what: str) -> xr.Dataset:
    from pathlib import Path

    p = Path(path)
    if "\x00" in str(path) or not p.is_file():
        raise RoharnessError(f"{what} file '{p}' does not exist")
    try:
        return xr.load_dataset(p)
    except Exception as exc:  # any reader failure on a user's file is bad input
        raise RoharnessError(f"{what} file '{p}' is not a readable netCDF file "
                             f"({type(exc).__name__})") from None


def score_files(truth_path: str | os.PathLike, profile_path: str | os.PathLike) -> dict:
    """Score a profile file written by any pipeline against a ``truth.nc`` (the round-trip
    metrics and, when the profile has bending angles, the Doppler -> bending stage)."""
    from validation.plugins import check_profile
    from validation.roundtrip import score_profile

    truth = _open(truth_path, "truth")
    if "electron_density" not in truth or "layers" not in truth.attrs and \
            "layer" not in truth.dims:
        raise RoharnessError(f"truth file '{truth_path}' is not a roharness truth file "
                             "(written by roharness export)")
    profile = check_profile(_open(profile_path, "profile"), f"profile file '{profile_path}'")
    return score_profile(truth, profile)
