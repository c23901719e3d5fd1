"""The level-1 (I/Q) path of a round trip: synth.instrument -> carrier -> drift -> inversion.

Used by :func:`validation.roundtrip.run_roundtrip` when the scenario's ``[receiver]`` is
enabled. The retrieval side sees only the I/Q record (``i``, ``q``, ``quality_flag``, the
LO tuning polynomial in its attrs) and the SPICE state vectors of the level-2 times; never
the residual or the TRUTH variables.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval.carrier import FLAG_GAP, FLAG_NO_CARRIER, extract_carrier
from retrieval.drift import correct_drift, predicted_frequency
from retrieval.errors import RoharnessError
from synth.instrument import level1_record
from synth.scenario import Scenario

STATE_VARS = ("et_tx", "et_rx", "tx_position", "rx_position", "tx_velocity", "rx_velocity")


def level4_observation(iq: xr.Dataset, states: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Carrier extraction and prediction: I/Q + states -> level-4 observation Dataset.

    Parameters
    ----------
    iq : xarray.Dataset
        Level-1 record (:func:`synth.instrument.level1_record` layout).
    states : xarray.Dataset
        State vectors on the level-2 ``time`` grid (RO contract variables and attrs; its
        ``frequency_residual``, if present, is ignored).

    Returns
    -------
    (observation, carrier)
        ``observation``: the states at the usable windows (gap / no-carrier windows removed,
        not interpolated) with ``frequency_residual`` = measured minus predicted frequency
        [Hz] (level 4); ``carrier``: the full output of
        :func:`retrieval.carrier.extract_carrier`.
    """
    st = states[list(STATE_VARS)]
    st.attrs.update(states.attrs)
    t = np.asarray(st["time"].values, float)
    f_t = float(iq.attrs["frequency_hz"])
    f_pred = predicted_frequency(st.assign_attrs(frequency_hz=f_t))
    x = (t - iq.attrs["lo_tuning_t0_s"]) / iq.attrs["lo_tuning_scale_s"]
    f_tune = np.polyval(np.asarray(iq.attrs["lo_tuning_coefficients_hz"], float), x)
    pred_baseband = f_pred - f_t - f_tune  # level 3 in the receiver's baseband
    retrieval_iq = iq[["i", "q", "quality_flag"]]
    retrieval_iq.attrs["sample_rate_hz"] = iq.attrs["sample_rate_hz"]
    car = extract_carrier(retrieval_iq, iq.attrs["window_s"], iq.attrs["step_s"], method="ml",
                          predicted=(t, pred_baseband))
    tc = car["time"].values
    idx = np.rint((tc - t[0]) / iq.attrs["step_s"]).astype(int)
    flag = car["flag"].values.astype(int)
    usable = (((flag & (FLAG_GAP | FLAG_NO_CARRIER)) == 0)
              & np.isfinite(car["frequency_hz"].values) & (idx >= 0) & (idx < t.size))
    usable &= np.abs(tc - t[np.clip(idx, 0, t.size - 1)]) < 1e-3  # window centred on a sample
    if usable.sum() < 10:
        raise RoharnessError(f"only {int(usable.sum())} carrier windows are usable (no gap, "
                             "carrier detected); at least 10 are needed to invert")
    i = idx[usable]
    level4 = car["frequency_hz"].values[usable] - pred_baseband[i]
    obs = st.isel(time=i)
    obs["frequency_residual"] = ("time", level4, {
        "units": "Hz", "long_name": "measured minus predicted frequency (level 4: "
        "atmosphere + oscillator drift)"})
    obs["frequency_sigma"] = ("time", car["frequency_sigma_hz"].values[usable], {
        "units": "Hz", "long_name": "1-sigma carrier frequency uncertainty"})
    obs.attrs["data_level"] = "4: measured minus predicted Doppler"
    return obs, car


def _smoothing(scn: Scenario):
    """The scenario's ``[retrieval] smoothing_s`` as :func:`correct_drift` takes it."""
    value = scn["retrieval"].get("smoothing_s")
    return "auto" if value is None else float(value)


def correct_level4(obs4: xr.Dataset, scn: Scenario, drift_model: str | None = None):
    """Level 4 -> 5 with the scenario's ``[retrieval]`` settings (drift correction,
    threshold, baseline order, smoothing); the round trip and the budget both use it."""
    r = scn["retrieval"]
    return correct_drift(obs4, drift_model or r["drift_correction"],
                         threshold_altitude_m=r["threshold_altitude_km"] * 1e3,
                         max_order=r["max_order"], smoothing_s=_smoothing(scn))


def run_iq_path(scn: Scenario, obs2: xr.Dataset, drift_model: str | None = None):
    """I/Q simulation and retrieval of one occultation.

    Returns
    -------
    dict
        ``observation`` (level 5, what was inverted), ``level4``, ``carrier``, ``iq``
        (level 1), ``drift_model``.
    """
    model = drift_model or scn["retrieval"]["drift_correction"]
    iq = level1_record(scn, obs2)
    obs4, car = level4_observation(iq, obs2)
    obs5 = correct_level4(obs4, scn, model)
    return dict(observation=obs5, level4=obs4, carrier=car, iq=iq, drift_model=model)
