r"""From a level-2 observation to the level-1 record: open-loop I/Q samples of the carrier.

Data levels (../shared/SCIENCE.md): 1 I/Q samples, 2 net Doppler, 3 predicted Doppler,
4 = 2 - 3 (atmosphere + oscillator drift), 5 drift-corrected residual. This module makes
level 1 from the synthetic level-2 observation of :func:`synth.observe.simulate`.

The sky frequency received at sample time :math:`t` is the straight-ray (vacuum) frequency
plus the residual Doppler of the bent ray (the RO contract, first order in v/c),

.. math::

    f_{\rm sky} = f_T \frac{1 - \hat e\cdot v_R / c}{1 - \hat e\cdot v_T / c}
                  + \Delta f_{\rm res},\qquad \hat e = \frac{r_R - r_T}{|r_R - r_T|},

computed here independently of the retrieval. An open-loop receiver mixes the carrier
with a local oscillator tuned to :math:`f_T + f_{\rm tune}(t)`, where
:math:`f_{\rm tune}` is a coarse Doppler prediction: a polynomial of order
``[receiver] tuning_order`` in time, least-squares fitted to the vacuum Doppler (real
open-loop recordings carry their tuning polynomial; the retrieval reads it from the
record and predicts the vacuum Doppler itself from SPICE states). The baseband carrier is

.. math::

    f_{\rm bb}(t) = f_{\rm sky}(t) - f_T - f_{\rm tune}(t) + f_T\,[y_T(t) - y_R(t)],

with the oscillator errors :math:`y_T`, :math:`y_R` of :mod:`synth.oscillator` and the
thermal noise, silent periods, gaps and spur of :func:`synth.receiver.iq_samples`.

The record spans the level-2 samples 1 .. n-2: carrier-extraction windows of ``window_s``,
spaced one level-2 interval, are centred on those sample times, so a retrieval can use the
state vectors of the level-2 times (the first and last samples are dropped to keep the
windows inside the simulated span).

Random numbers: three independent streams (transmitter oscillator, receiver oscillator,
receiver noise) spawned with :class:`numpy.random.SeedSequence` from the scenario's root
seed; no global state.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval.errors import RoharnessError
from synth.oscillator import PRESETS, oscillator
from synth.receiver import iq_samples
from synth.scenario import Scenario


def vacuum_sky_frequency(tx_position_m, tx_velocity_m_s, rx_position_m, rx_velocity_m_s,
                         freq_hz):
    r"""Received frequency of the straight (vacuum) ray [Hz], first order in v/c.

    .. math::  f_R = f_T (1 - \hat e\cdot v_R/c) / (1 - \hat e\cdot v_T/c)
    """
    d = np.asarray(rx_position_m, float) - np.asarray(tx_position_m, float)
    e = d / np.linalg.norm(d, axis=-1, keepdims=True)
    num = 1.0 - np.einsum("ij,ij->i", e, np.asarray(rx_velocity_m_s, float)) / sc.c
    den = 1.0 - np.einsum("ij,ij->i", e, np.asarray(tx_velocity_m_s, float)) / sc.c
    return freq_hz * num / den


def _oscillator(scn, which, duration_s, rng):
    osc = scn["oscillator"]
    preset = osc[f"{which}_preset"]
    if not osc["enabled"] or preset == "none":
        return None
    kw = {}
    if osc[f"{which}_rate_per_s"] is not None:
        kw["rate_per_s"] = osc[f"{which}_rate_per_s"]
    h = {}
    if osc["noise"]:
        scale = osc["receiver_adev_scale"] if which == "receiver" else 1.0
        h = {k: v * scale**2 for k, v in PRESETS[preset]["h"].items()}
    return oscillator(duration_s, osc["tau0_s"], rng=rng, preset=preset, h=h,
                      drift=osc["drift"],
                      offset=osc[f"{which}_offset"], **kw)


def level1_record(scn: Scenario, obs: xr.Dataset, *,
                  seed: int | np.random.SeedSequence | None = None) -> xr.Dataset:
    """Simulate the level-1 I/Q record of a level-2 one-way observation.

    Parameters
    ----------
    scn : Scenario
        Uses ``[oscillator]``, ``[receiver]`` and ``[sampling] rate_hz``.
    obs : xarray.Dataset
        Level-2 observation of :func:`synth.observe.simulate` (one-way link).
    seed : int or numpy.random.SeedSequence, optional
        Root of the random streams (default: the scenario's root seed).

    Returns
    -------
    xarray.Dataset
        The output of :func:`synth.receiver.iq_samples` (``i``, ``q``, ``quality_flag`` and
        TRUTH variables), plus attrs ``frequency_hz`` (f_T), ``lo_tuning_coefficients_hz``
        (polynomial in ``(t - lo_tuning_t0_s) / lo_tuning_scale_s``, highest power first),
        ``lo_tuning_t0_s``, ``lo_tuning_scale_s``, ``window_s``, ``step_s`` and
        ``epoch_utc`` (that of the observation; ``time`` is seconds since it).

    Raises
    ------
    RoharnessError
        Two-way observations (level 1 is simulated for one-way links), fewer than 5
        samples, or a sample rate too low for the baseband Doppler (aliasing).
    """
    if "frequency_residual" not in obs:
        raise RoharnessError("the I/Q path simulates one-way links only; the observation "
                             "has no one-way 'frequency_residual'")
    rcv = scn["receiver"]
    t = np.asarray(obs["time"].values, float)
    if t.size < 5:
        raise RoharnessError(f"the observation has {t.size} samples; the I/Q path needs >= 5")
    f_t = float(obs.attrs["frequency_hz"])
    step = 1.0 / scn["sampling"]["rate_hz"]
    window = rcv["window_s"] if rcv["window_s"] is not None else step
    fs = rcv["sample_rate_hz"]
    nwin, nstep = int(round(window * fs)), int(round(step * fs))
    f_vac = vacuum_sky_frequency(obs["tx_position"].values, obs["tx_velocity"].values,
                                 obs["rx_position"].values, obs["rx_velocity"].values, f_t)
    doppler_vac = f_vac - f_t
    t0_tune, scale = 0.5 * (t[0] + t[-1]), max(0.5 * (t[-1] - t[0]), 1.0)
    coef = np.polyfit((t - t0_tune) / scale, doppler_vac, rcv["tuning_order"])
    f_tune = np.polyval(coef, (t - t0_tune) / scale)
    baseband = doppler_vac + obs["frequency_residual"].values - f_tune

    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(
        scn.seed if seed is None else int(seed))
    s_tx, s_rx, s_noise = seq.spawn(3)
    duration = t[-1] + step
    tx_osc = _oscillator(scn, "transmitter", duration, np.random.default_rng(s_tx))
    rx_osc = _oscillator(scn, "receiver", duration, np.random.default_rng(s_rx))
    t_start = t[1] - (nwin - 1) / (2.0 * fs)
    t_stop = t_start + ((t.size - 3) * nstep + nwin) / fs
    noisy = rcv["thermal_noise"]
    iq = iq_samples(t, baseband, fs, rng=np.random.default_rng(s_noise), carrier_hz=f_t,
                    cn0_dbhz=rcv["cn0_dbhz"] if noisy else None,
                    tx_oscillator=tx_osc, rx_oscillator=rx_osc,
                    t_start_s=t_start, t_stop_s=t_stop - 0.5 / fs,
                    silent_periods=[tuple(p) for p in rcv["silent_periods"]],
                    gaps=[tuple(p) for p in rcv["gaps"]], spur_hz=rcv["spur_hz"],
                    spur_dbc=rcv["spur_dbc"])
    if rx_osc is not None:
        iq["truth_rx_frac_freq"] = ("time_osc", rx_osc["frac_freq_error"].values,
                                    {"units": "1", "long_name": "TRUTH: receiver fractional "
                                     "frequency error"})
    if tx_osc is not None:
        iq["truth_tx_frac_freq"] = ("time_osc", tx_osc["frac_freq_error"].values,
                                    {"units": "1", "long_name": "TRUTH: transmitter "
                                     "fractional frequency error"})
    if rx_osc is not None or tx_osc is not None:
        osc = rx_osc if rx_osc is not None else tx_osc
        iq = iq.assign_coords(time_osc=("time_osc", osc["time_mid"].values, {"units": "s"}))
    iq.attrs.update(frequency_hz=f_t, lo_tuning_coefficients_hz=coef,
                    lo_tuning_t0_s=t0_tune, lo_tuning_scale_s=scale, window_s=nwin / fs,
                    step_s=nstep / fs, epoch_utc=obs.attrs.get("epoch_utc", ""),
                    scenario=scn.name, scenario_sha256=scn.digest, seed=int(seq.entropy),
                    data_level="1: open-loop complex baseband I/Q samples")
    return iq
