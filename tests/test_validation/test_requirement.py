"""The requirement search (validation.requirement) against an analytic answer.

With thermal noise as the only error source and common random numbers, every realisation's
error scales as the noise amplitude, 10^(-C/N0 / 20), as long as the retrieval is linear in
the noise (checked below on the data). So one evaluation at a reference C/N0 predicts, per
realisation, the C/N0 at which it starts to meet the target, and the required fraction's
threshold is a quantile of those: an answer the bracketing search and the logistic fit never
see.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval.errors import RoharnessError
from synth.scenario import load_scenario
from validation.cli import main
from validation.requirement import evaluate_task, find_requirement, parse_targets

SMALL = str(Path(__file__).parent / "data" / "budget-small.toml")
# N_e at 150 km is linear in the noise (Abel inversion and interpolation); the M2 peak
# density is not (its error ratio for 10 dB scatters 1.5-7.5 per realisation, measured:
# the peak finder's noise-adaptive smoothing), so it cannot carry an analytic check.
TARGET = {"ne150_rel_error": 0.002}


@pytest.fixture(scope="module")
def thermal_only():
    scn = load_scenario(SMALL)
    scn.sections["budget"]["sources"] = ["thermal"]
    return scn


def test_threshold_matches_the_linear_scaling(thermal_only):
    from validation.budget import altitude_grid_m

    n = 30
    grid = altitude_grid_m(thermal_only)
    ref = {c: evaluate_task(thermal_only, "cn0_dbhz", c, ("thermal",), n, thermal_only.seed,
                            grid) for c in (30.0, 40.0)}
    key = "ne150_rel_error"
    floor = ref[30.0][f"floor_{key}"]  # the clean retrieval's own error, the same at any C/N0
    assert floor == ref[40.0][f"floor_{key}"]
    g30 = ref[30.0][key] - floor
    g40 = ref[40.0][key] - floor
    # linearity in the noise: 10 dB less noise is sqrt(10) x smaller errors, per realisation
    # (measured 3.07-3.17: to 5 %)
    np.testing.assert_allclose(g30 / g40, np.sqrt(10.0), rtol=0.05)
    # e_r(s) = floor + g_r s with s = 10^(-(C/N0 - 30)/20): realisation r meets |e| <= b for
    # s <= (b - floor sign g_r) / |g_r|
    b = TARGET[key]
    s_r = (b - floor * np.sign(g30)) / np.abs(g30)
    cn0_r = 30.0 - 20.0 * np.log10(s_r)
    expected = float(np.quantile(cn0_r, 0.8, method="inverted_cdf"))
    s = find_requirement(thermal_only, "cn0_dbhz", TARGET, fraction=0.8, realisations=n,
                         value_range=(20.0, 60.0), scan_points=5, bisections=3, workers=0,
                         bootstrap=200)
    assert s["status"] == "found"
    # The finder's threshold (a logistic fitted to the success fraction) and `expected` (the
    # inverted-cdf 0.8 quantile of the 30 exact per-realisation thresholds) estimate one
    # quantile from the same draws; they differ by the logistic's misfit to the skewed
    # spread of the draws, not by an error of either. Two checks that follow from the
    # sampling: the exact quantile lies inside the finder's own 95 % interval, and the
    # finder's threshold lies inside the 95 % order-statistic band of the quantile
    # (ranks n p -+ 1.96 sqrt(n p (1 - p)), i.e. the 19th-29th of 30 values). Measured
    # with the data-chosen top: threshold 29.14 dB, quantile 30.74, interval 26.9-31.1,
    # band 25.9-32.9 (the former fixed 1.5 dB between the two estimators failed at 1.6).
    lo, hi = s["ci95"]
    assert lo <= s["threshold"] <= hi and hi - lo < 10.0
    assert lo <= expected <= hi, (lo, expected, hi)
    half = 1.96 * np.sqrt(n * 0.8 * 0.2)
    ranks = np.sort(cn0_r)[[int(np.floor(0.8 * n - half)) - 1, int(np.ceil(0.8 * n + half)) - 1]]
    assert ranks[0] <= s["threshold"] <= ranks[1], (s["threshold"], ranks)
    fr = [r["fraction"] for r in s["curve"]]
    assert fr == sorted(fr)  # common random numbers: more C/N0 never meets fewer


def test_never_met_is_reported_not_invented(thermal_only):
    s = find_requirement(thermal_only, "cn0_dbhz", {"m2_peak_density_rel_error": 1e-7},
                         realisations=5, value_range=(30.0, 50.0), scan_points=2, workers=0)
    assert s["status"] == "never met in the range" and np.isnan(s["threshold"])


@pytest.mark.parametrize("text, words", [
    ("m2_peak_density_rel", "KEY=VALUE"),
    ("nonsense=1", "KEY=VALUE"),
    ("m2_peak_altitude_km=-2", "positive number"),
    ("", "no target"),
])
def test_bad_targets_are_one_sentence(text, words):
    with pytest.raises(RoharnessError, match=words):
        parse_targets(text)


def test_cli_unknown_parameter(capsys, tmp_path):
    assert main(["requirement", "--scenario", SMALL, "--vary", "colour", "--target",
                 "m2_peak_density_rel=0.05", "-o", str(tmp_path), "--workers", "0"]) == 2
    assert "unknown parameter 'colour'" in capsys.readouterr().err


def test_cli_json_and_files(capsys, tmp_path, thermal_only):
    assert main(["requirement", "--scenario", SMALL, "--vary", "cn0_dbhz", "--target",
                 "m2_peak_density_rel=0.05", "--realisations", "5", "--range", "25,45",
                 "--workers", "0", "-o", str(tmp_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {"threshold", "curve", "ci95", "status"} <= set(s)
    for f in ("summary.json", "requirement.png", "report.html"):
        assert (tmp_path / f).stat().st_size > 0


@pytest.mark.parametrize("top", ["exponential", "zero"])
def test_a_data_chosen_top_is_kept_and_stays_linear_in_the_noise(thermal_only, top):
    """A top chosen from the data per realisation is not linear in the noise: with
    `top = "auto"` chosen again per realisation, the clean retrieval of this occultation
    took the exponential topside and the noisy ones fell back to vacuum (30/40 dB-Hz ratios
    1.6-17 measured); a fitted scale height moves with the noise too. The budget keeps the
    clean retrieval's model and scale height for every realisation: ratios 3.151-3.191
    measured. (This top is faint, 1e-4 of the peak, so `auto` now keeps the vacuum top,
    retrieval.abel.AUTO_TOP_MATERIAL; the exponential is forced to exercise the pinning.)"""
    from validation.budget import altitude_grid_m, base_task

    thermal_only.sections["retrieval"]["top"] = top
    grid = altitude_grid_m(thermal_only)
    model, scale = base_task(thermal_only, ("thermal",), grid)["top"]
    assert model == top  # the case exercises the switch
    assert (1e3 < scale < 1e6) if top == "exponential" else not np.isfinite(scale or np.nan)
    ref = {c: evaluate_task(thermal_only, "cn0_dbhz", c, ("thermal",), 30, thermal_only.seed,
                            grid) for c in (30.0, 40.0)}
    key = "ne150_rel_error"
    floor = ref[30.0][f"floor_{key}"]
    np.testing.assert_allclose((ref[30.0][key] - floor) / (ref[40.0][key] - floor),
                               np.sqrt(10.0), rtol=0.05)
