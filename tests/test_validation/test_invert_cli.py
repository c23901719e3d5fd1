"""``roharness invert``: JSON keys and values on the real ROSE file, bad input exits 2."""

from __future__ import annotations

import json

import pytest

from validation.cli import main

STEM = "real/maven_rose/mvn_rse_l3_edp_20160823T192357_v01_r01"


def test_invert_json(shared_data, capsys, tmp_path):
    out = tmp_path / "rose.nc"
    assert main(["invert", str(shared_data / f"{STEM}.tab"), "--thinned-every", "4", "--json",
                 "-o", str(out)]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("m2_peak_radius_km", "m2_peak_density_m3",
                "refractivity_median_rel_diff_100_200km",
                "refractivity_max_rel_diff_100_200km"):
        assert isinstance(res[key], float)
    # README of the ROSE copy: peak 1.0837e11 m^-3 at r = 3524.713 km; our radius is a/n
    # from IMPACTPARAMDOWN, which the archive lists 50 m above RADIUS at the peak level
    assert res["m2_peak_same_level"] is True
    assert res["label_records"] == 993 and res["thinned_every"] == 4
    assert res["m2_peak_radius_km"] == pytest.approx(3524.713, abs=0.1)
    assert res["m2_peak_density_m3"] == pytest.approx(1.0837e11, rel=0.01)
    assert res["refractivity_median_rel_diff_100_200km"] <= 0.05  # README: 2.7 %
    assert res["refractivity_max_rel_diff_100_200km"] <= 0.08     # README: 6.4 %
    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert "electron_density_ours" in ds and "NELEC" in ds


def test_invert_human_summary(shared_data, capsys):
    assert main(["invert", str(shared_data / f"{STEM}.tab"), "--thinned-every", "4"]) == 0
    text = capsys.readouterr().out
    assert "M2 peak" in text and "same level" in text
    assert "every 4th of the label's 993 records" in text


def test_thinned_copy_undeclared_exit_2(shared_data, capsys):
    """The shared copy holds 249 of its label's 993 records: one sentence, exit 2."""
    assert main(["invert", str(shared_data / f"{STEM}.tab")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds 249 profile records" in err[0] and "993" in err[0]


@pytest.mark.parametrize("content", [b"", b"not a rose file\r\n"])
def test_bad_input_one_sentence_exit_2_nothing_written(shared_data, tmp_path, capsys, content):
    label = shared_data / f"{STEM}.xml"  # the real label beside a bad table of its name
    bad = tmp_path / label.with_suffix(".tab").name
    bad.write_bytes(content)
    (tmp_path / label.name).write_bytes(label.read_bytes())
    out = tmp_path / "out.nc"
    assert main(["invert", str(bad), "--json", "-o", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roharness: error: ")
    assert "490-byte" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [bad.name, label.name]  # nothing new


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["invert", str(tmp_path / "missing.tab")]) == 2
    assert "cannot read ROSE file" in capsys.readouterr().err
