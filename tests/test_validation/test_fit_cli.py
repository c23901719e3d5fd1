"""``roharness fit FILE [--json]`` on a synthetic campaign table."""

from __future__ import annotations

import json

import pytest

from synth.campaign_truth import campaign_truth
from validation.cli import main

COLUMNS = ["sza_deg", "m2_peak_density_m3", "m2_peak_altitude_km", "m2_peak_density_error_m3",
           "m2_peak_altitude_error_km", "m1_peak_density_m3", "m1_peak_altitude_km",
           "ltst_hours", "ls_deg", "f107", "solar_distance_au"]


@pytest.fixture()
def table(tmp_path):
    ds = campaign_truth(70, "parrott2025", seed=7)
    p = tmp_path / "peaks.csv"
    p.write_text(",".join(COLUMNS) + "\n" + "\n".join(
        ",".join(f"{float(ds[c][i]):.8g}" for c in COLUMNS) for i in range(70)) + "\n")
    return p


def test_fit_json(table, capsys):
    assert main(["fit", str(table), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    d = out["m2"]["density_with_driver"]
    # the same 2-sigma criterion as the campaign test, on this one seed
    assert abs(d["k"] - 0.25) <= 2 * d["k_error"]
    assert out["m2"]["altitude_secant"]["h0_km"] == pytest.approx(125.9, abs=2.0)
    assert set(out["groups"]) == {"dawn_aphelion", "dawn_perihelion", "dusk_aphelion",
                                  "dusk_perihelion"}
    assert [c["driver"] for c in out["m2"]["density_residual_correlations"]] == [
        "solar_distance_au", "f107", "ls_deg", "ltst_hours"]


def test_fit_human(table, capsys):
    assert main(["fit", str(table)]) == 0
    out = capsys.readouterr().out
    assert "h0 + H ln sec" in out and "M2" in out and "M1" in out


def test_fit_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("sza_deg,m2_peak_density_m3\n1,2\n")
    assert main(["fit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "m2_peak_altitude_km" in err and err.count("\n") == 1
    assert main(["fit", str(tmp_path / "missing.csv")]) == 2
