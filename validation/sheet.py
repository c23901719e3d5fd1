"""Round trip of a current-sheet crossing: scenario -> synth -> retrieval -> metrics.

The forward model (:mod:`synth.current_sheet`) makes a truth and an observation; the
retrieval (:func:`retrieval.reconnection.analyse_sheet_crossing`) sees only the
observation; this module compares the estimate with the truth.

Conventions of the comparison:

* axes are compared as lines (MVA signs are a convention): angle = arccos |a . b|;
* the guide field is compared along the true M axis: :math:`s B_g^{ret} - B_g^{true}` with
  :math:`s = \\mathrm{sign}(\\hat M_{ret}\\cdot\\hat M_{true})`;
* the true escape flux is :math:`|\\langle n\\mathbf V\\rangle|` of the noise-free 32 Hz truth
  over the same two windows the retrieval used (so it includes the density tail of the
  sheet there exactly); the true outflow is the peak jet :math:`|\\mathbf V - \\mathbf V_{bg}|
  \\cdot\\hat L` along the path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from retrieval.reconnection import analyse_sheet_crossing
from synth.current_sheet import simulate_sheet_crossing
from synth.sheet_scenario import load_sheet_scenario

if TYPE_CHECKING:  # annotations only
    import os

#: Acceptance limits on ``mars-2024-11-07`` (issue 7).
ACCEPTANCE = {
    "normal_angle_error_deg": 3.0,
    "guide_field_error_nt": 0.3,
    "lag_error_s": 2.0,
    "escape_flux_rel_error": 0.10,
}


def _line_angle_deg(a, b):
    a = np.asarray(a, dtype=float) / np.linalg.norm(a)
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(abs(a @ b), 0.0, 1.0))))


def compare_sheet(truth, estimate) -> dict:
    """Metrics of an estimate against the truth (module docstring for the conventions)."""
    basis = truth["lmn_basis"].values
    mva = estimate["lmn_mva"].values
    lmn = estimate["lmn_basis"].values
    s_m = np.sign(lmn[1] @ basis[1]) or 1.0
    epoch = np.datetime64(estimate.attrs["epoch_utc"])
    t = (truth["time_mag"].values - epoch) / np.timedelta64(1, "s")
    before, after = estimate.attrs["window_before_s"], estimate.attrs["window_after_s"]
    mask = ((t >= before[0]) & (t <= before[1])) | ((t >= after[0]) & (t <= after[1]))
    flux_true = float(np.linalg.norm(
        (truth["density"].values[mask, None] * truth["velocity_mso"].values[mask]).mean(0)))
    v_bg = truth["velocity_mso"].values[mask].mean(0)
    jet = (truth["velocity_mso"].values - v_bg) @ basis[0]
    out_true = float(jet[np.argmax(np.abs(jet))])
    ta = truth.attrs
    flux = float(estimate["escape_flux"])
    metrics = {
        "normal_angle_error_deg": _line_angle_deg(mva[2], basis[2]),
        "l_angle_error_deg": _line_angle_deg(lmn[0], basis[0]),
        "guide_field_error_nt": float(s_m * estimate["guide_field"] - ta["guide_field_nt"]),
        "lag_error_s": float(estimate["imf_lag"]) - float(ta["lag_s"]),
        "eigenvalue_ratio_12": float(estimate["eigenvalue_ratio_12"]),
        "eigenvalue_ratio_23": float(estimate["eigenvalue_ratio_23"]),
        "escape_flux_rel_error": (flux - flux_true) / flux_true,
        # beyond the required keys
        "normal_error_predicted_deg": float(np.degrees(estimate["normal_error_rad"])),
        "l_angle_error_mva_deg": _line_angle_deg(mva[0], basis[0]),
        "m_angle_error_deg": _line_angle_deg(lmn[1], basis[1]),
        "guide_field_nt": float(estimate["guide_field"]),
        "guide_field_true_nt": float(ta["guide_field_nt"]),
        "half_thickness_rel_error":
            float(estimate["half_thickness"]) / ta["half_thickness_m"] - 1.0,
        "alfven_speed_rel_error": float(estimate["alfven_speed"]) / ta["alfven_speed_m_s"] - 1.0,
        "outflow_rel_error": (abs(float(estimate["outflow_speed"])) - abs(out_true)) / abs(out_true)
        if out_true else float("nan"),
        "escape_flux_m2_s": flux,
        "escape_flux_true_m2_s": flux_true,
        "imf_lag_s": float(estimate["imf_lag"]),
        "imf_correlation": float(estimate["imf_correlation"]),
        "outflow_error_m_s": abs(float(estimate["outflow_speed"])) - abs(out_true),
        "normal_angle_error_constrained_deg": _line_angle_deg(
            estimate["normal_constrained"].values, basis[2]),
        "walen_slope": float(estimate["walen_slope"]),
        "walen_correlation": float(estimate["walen_correlation"]),
        "hall_detected": bool(estimate["hall_detected"]),
        "hall_polarity_correct": bool(np.sign(float(estimate["hall_amplitude"])) * s_m
                                      == np.sign(ta["hall_field_nt"] * ta["b0_nt"])),
    }
    if "normal_timing" in estimate:
        metrics["timing_normal_angle_error_deg"] = _line_angle_deg(
            estimate["normal_timing"].values, basis[2])
    return metrics


def run_sheet_roundtrip(scenario: dict | str | os.PathLike = "mars-2024-11-07", seed: int = 0
                        ) -> dict:
    """Simulate, retrieve and compare one crossing.

    Parameters
    ----------
    scenario : str, path or dict
        Built-in name, TOML path, or an already parsed sheet scenario.
    seed : int
        Seed of the noise.

    Returns
    -------
    dict
        The metrics of :func:`compare_sheet` plus ``scenario``, ``seed`` and ``passed`` (the
        acceptance of issue 7: each limit in :data:`ACCEPTANCE` on the absolute error).
    """
    scen = scenario if isinstance(scenario, dict) else load_sheet_scenario(scenario)
    truth, obs = simulate_sheet_crossing(scen, seed)
    estimate = analyse_sheet_crossing(obs)
    metrics = compare_sheet(truth, estimate)
    metrics["passed"] = {k: bool(abs(metrics[k]) <= v) for k, v in ACCEPTANCE.items()}
    return {"scenario": scen.get("name", ""), "seed": int(seed), **metrics}
