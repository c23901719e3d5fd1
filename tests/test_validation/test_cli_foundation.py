"""The command line: version, help, geometry, events, and one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import xarray as xr

from validation.cli import main


def _run(*args):
    """Run the installed CLI entry point in a subprocess (as a user would)."""
    return subprocess.run([sys.executable, "-m", "validation", *args], capture_output=True,
                          text=True, timeout=600)


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("roharness ")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("geometry", "events"):
        assert cmd in out


def test_geometry_json_keys(capsys):
    assert main(["geometry", "--utc", "2022-07-19T19:58:45", "--lat", "-30", "--lon", "322",
                 "--alt-km", "130", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"sza_deg", "ltst_hours", "ls_deg", "subsolar_lat_deg",
                        "subsolar_lon_deg"}
    assert 0 <= out["sza_deg"] <= 180 and 0 <= out["ltst_hours"] < 24


def test_events_json_and_files(tmp_path, capsys):
    args = ["events", "--tx", "mex", "--rx", "tgo", "--start", "2023-01-01",
            "--stop", "2023-01-01T12:00:00"]
    assert main(args + ["--json", "-o", str(tmp_path / "ev.nc")]) == 0
    events = json.loads(capsys.readouterr().out)["events"]
    assert len(events) > 3
    for ev in events:
        assert {"time_utc", "kind", "lat_deg", "lon_deg", "sza_deg", "ltst_hours",
                "ls_deg"} <= set(ev)
        assert ev["kind"] in ("ingress", "egress")
    ds = xr.open_dataset(tmp_path / "ev.nc")
    assert ds.sizes["event"] == len(events)
    assert main(args + ["-o", str(tmp_path / "ev.csv")]) == 0
    lines = (tmp_path / "ev.csv").read_text().splitlines()
    assert len(lines) == len(events) + 1 and "sza_deg" in lines[0]


@pytest.mark.parametrize("args, words", [
    (["geometry", "--utc", "2022-02-30", "--lat", "0", "--lon", "0"], "time"),
    (["geometry", "--utc", "noon", "--lat", "0", "--lon", "0"], "time"),
    (["geometry", "--utc", "2022-01-01", "--lat", "91", "--lon", "0"], "latitude"),
    (["events", "--tx", "voyager", "--stop", "2023-01-02"], "unknown body"),
    (["events", "--start", "2023-02-01", "--stop", "2023-01-01"], "empty"),
    (["events", "--start", "2023-01-01", "--stop", "2023-01-01"], "empty"),
    (["events", "--start", "2700-01-01", "--stop", "2700-01-02"], "coverage"),
    (["events", "--start", "1400-01-01", "--stop", "1400-01-02"], "coverage"),
    (["events", "--stop", "2023-01-02", "-o", "x.txt"], ".nc"),
    (["events", "--kernels", "/nonexistent.bsp"], "does not exist"),
    (["geometry", "--lat", "x"], "error"),
])
def test_bad_input_is_one_sentence_exit_2(args, words, tmp_path):
    r = subprocess.run([sys.executable, "-m", "validation", *args], capture_output=True,
                       text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and words in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_console_script_is_installed():
    """The `roharness` entry point of pyproject.toml maps to validation.cli:main."""
    import importlib.metadata as md
    try:
        eps = md.entry_points(group="console_scripts")
    except Exception:  # pragma: no cover
        pytest.skip("no entry points")
    names = {e.name: e.value for e in eps}
    if "roharness" not in names:
        pytest.skip("roharness not installed as a distribution (source checkout)")
    assert names["roharness"] == "validation.cli:main"
