"""Real-data I/Q processing: level-1 I/Q samples + SPICE state vectors -> level 4.

What a scientist runs on a recorded open-loop carrier: predict the sky frequency from the
spacecraft states (level 3), remove the receiver's LO tuning, extract the carrier with a
maximum-likelihood estimator around the prediction (:func:`retrieval.carrier.
extract_carrier`), and difference measured and predicted frequency (level 4: atmosphere +
oscillator drift). Level 4 -> 5 is :func:`retrieval.drift.correct_drift`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from retrieval.carrier import FLAG_GAP, FLAG_NO_CARRIER, extract_carrier
from retrieval.drift import predicted_frequency
from retrieval.errors import RoharnessError

STATE_VARS = ("et_tx", "et_rx", "tx_position", "rx_position", "tx_velocity", "rx_velocity")


def level4_observation(iq: xr.Dataset, states: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """Carrier extraction and prediction: I/Q + states -> level-4 observation Dataset.

    Parameters
    ----------
    iq : xarray.Dataset
        Level-1 record (``i``, ``q``, ``quality_flag`` on
        ``sample``; attrs ``frequency_hz``, ``sample_rate_hz``, ``window_s``, ``step_s`` and the
        LO tuning polynomial ``lo_tuning_*``).
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
