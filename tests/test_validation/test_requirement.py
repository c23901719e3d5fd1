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
    # the bisection brackets to 40 dB / 2^5 = 1.25 dB; the logistic threshold lies inside
    # the bracket's neighbourhood of the empirical quantile
    assert abs(s["threshold"] - expected) < 1.5, (s["threshold"], expected)
    lo, hi = s["ci95"]
    assert lo <= s["threshold"] <= hi and hi - lo < 10.0
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


def test_a_data_chosen_top_is_kept_and_stays_linear_in_the_noise(thermal_only):
    """With `[retrieval] top = "auto"` the clean retrieval of this occultation picks the
    exponential topside; chosen again per realisation, the noisy ones fell back to vacuum
    and the errors were no longer linear in the noise (30/40 dB-Hz ratios 1.6-17 measured).
    The budget keeps the clean choice and its scale height: ratios 3.151-3.191 measured."""
    from validation.budget import altitude_grid_m, base_task

    thermal_only.sections["retrieval"]["top"] = "auto"
    grid = altitude_grid_m(thermal_only)
    model, scale = base_task(thermal_only, ("thermal",), grid)["top"]
    assert model == "exponential" and 1e3 < scale < 1e6  # the case exercises the switch
    ref = {c: evaluate_task(thermal_only, "cn0_dbhz", c, ("thermal",), 30, thermal_only.seed,
                            grid) for c in (30.0, 40.0)}
    key = "ne150_rel_error"
    floor = ref[30.0][f"floor_{key}"]
    np.testing.assert_allclose((ref[30.0][key] - floor) / (ref[40.0][key] - floor),
                               np.sqrt(10.0), rtol=0.05)
