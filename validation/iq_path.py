"""The level-1 (I/Q) path of a round trip: synth.instrument -> carrier -> drift -> inversion.

Used by :func:`validation.roundtrip.run_roundtrip` when the scenario's ``[receiver]`` is
enabled. The real-data part (prediction, LO tuning, carrier extraction -> level 4) is
:func:`retrieval.iq.level4_observation`; the retrieval side sees only the I/Q record
(``i``, ``q``, ``quality_flag``, the LO tuning polynomial in its attrs) and the SPICE state
vectors of the level-2 times; never the residual or the truth variables.
"""

from __future__ import annotations

import xarray as xr

from retrieval.drift import correct_drift
from retrieval.iq import level4_observation
from synth.instrument import level1_record
from synth.scenario import Scenario


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
