"""The README stays true: its commands are what CI runs, and its quick start works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from validation.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith(("#", "set ", "cd "))]
    # the system package for the browser checks first, as the README says
    assert ci[0].startswith("command -v chromium") and ci[0] in README
    assert ci[1] == "python3 -m pip install tox && tox"  # then the test run
    assert "    python3 -m pip install tox && tox\n" in README
    main_cmd = re.search(r"^    (python3 -m pip install \. && roharness .+)$", README, re.M)
    # then the README's main job, exactly, and the gate's mutation suite
    assert ci[2:] == [main_cmd.group(1), "roharness gate --mutations"]
    assert "roharness gate --mutations" in README


def test_readme_main_command_runs(capsys, tmp_path):
    m = re.search(r"^    python3 -m pip install \. && roharness (.+)$", README, re.M)
    assert m, "the README must give the install-and-run command"
    args = m.group(1).split()
    assert args == ["budget"]
    # The default budget takes minutes (CI runs it as is, .ci/run); here the same command
    # with one realisation per source, in-process, proves it works end to end.
    assert main(args + ["--realisations", "1", "--workers", "0", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "error budget of mex-tgo-uhf-drift" in out
    assert (tmp_path / "report.html").is_file()
    _check_printed_budget(out, tmp_path)


def _check_printed_budget(out, out_dir):
    """The numbers the command prints are those of summary.json and budget.nc, and lie in
    physically expected ranges."""
    import json

    import numpy as np
    import xarray as xr

    from validation.budget import METRICS
    from validation.commands.budget import COLUMNS

    s = json.loads((out_dir / "summary.json").read_text())
    ds = xr.open_dataset(out_dir / "budget.nc")
    assert [c[0] for c in COLUMNS] == list(METRICS)
    scale = np.array([c[3] for c in COLUMNS])  # relative values are printed in %
    labels = {n if n in s["physical_sources"] else f"{n} (recipe)": n for n in s["sources"]}
    labels |= {"retrieval floor": "floor", "root-sum-square": "RSS total"}
    rows = {}
    for line in out.splitlines():
        text = line.strip()
        for label, name in labels.items():
            if text.startswith(label + " ") and text[len(label):].split()[0][0] in "0123456789":
                rows[name] = [float(v) for v in text[len(label):].split()]
    assert set(rows) == set(s["sources"]) | {"floor", "RSS total"}, out
    expect = {n: s["per_source"][n] for n in s["sources"]} | {"floor": s["floor"]}
    for name, printed in rows.items():
        if name == "RSS total":
            want = list(scale * [s[f"total_{k}"] for k in METRICS])
        else:
            want = list(scale * [expect[name][k] for k in METRICS]) + [expect[name]["failed"]]
        # printed with 3 significant digits ('.3g')
        np.testing.assert_allclose(printed, want, rtol=5e-3, atol=1e-12, err_msg=name)
    # targets and verdicts are printed as the summary has them
    for _metric, t in s["targets"].items():
        assert t["passed"] == (t["value"] <= t["target"])
    result = next(line for line in out.splitlines() if line.strip().startswith("result"))
    assert result.split()[1:] == ["PASS" if t["passed"] else "FAIL"
                                  for m, t in s["targets"].items()]
    # the file holds what the summary says: sources, one realisation, status per task
    assert list(ds.source.values)[:len(s["sources"])] == s["sources"]
    assert ds.sizes["realisation"] == s["realisations"] == 1
    assert s["occultations"] == ds.sizes["occultation"] >= 1
    assert s["floor"]["failed"] == 0
    # physically expected ranges for a UHF MEX -> TGO pass through the Electra receiver
    # (one realisation; measured with 10: oscillator 1.5 % of the peak, 1.6 % in peak density,
    # 0.15 km; the Parrott recipe 1 km): every RMS finite and >= 0, no source above 10 % of
    # the peak or 5 km
    for name, p in expect.items():
        ne, alt, dens = (p[k] for k in METRICS[:3])
        assert all(np.isfinite(p[k]) and p[k] >= 0 for k in METRICS), (name, p)
        assert ne < 0.1 and alt < 5.0 and dens < 0.1, (name, p)
        assert 0 <= p["failed"] <= s["realisations"] * s["occultations"]
    # the clean retrieval's own error (the floor): a few % of the peak and within 2 km
    fl = s["floor"]
    assert fl[METRICS[0]] < 0.05 and fl[METRICS[1]] < 2.0 and fl[METRICS[2]] < 0.05, fl
    # the RSS total is the root-sum-square of the physical sources and the floor
    phys = s["physical_sources"]
    for k in METRICS:
        rss = np.sqrt(sum(s["per_source"][n][k] ** 2 for n in phys) + s["floor"][k] ** 2)
        assert s[f"total_{k}"] == pytest.approx(rss, rel=1e-9), k


def test_readme_quick_start_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    err = float(out.split("=")[-1])
    assert err <= 1e-3
