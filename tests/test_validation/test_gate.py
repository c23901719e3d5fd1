"""The CI regression gate: strict thresholds files, pass/fail/exit status, JUnit XML, and
that the gate fails when a threshold is too strict or the retrieval is degraded."""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET

import pytest

import retrieval.electron_density as electron_density
from retrieval.errors import RoharnessError
from validation import gate
from validation.cli import main

# The cheapest RO round trip (a level-2 one-way X-band link, ~4 s); its numerical floor is
# ~1e-4 of the peak (measured, see validation/gate_thresholds.toml).
CHEAP = "maven-x-oneway"


def _check(**kw) -> str:
    """One [[check]] table as TOML text."""
    lines = ["[[check]]"]
    for k, v in kw.items():
        lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def _write(tmp_path, text, name="thresholds.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = dict(kind="roundtrip", scenario=CHEAP, metric="ne_max_abs_error_over_peak",
            maximum=1.0)


# --- the thresholds file is checked strictly, one sentence per error ---------------------
@pytest.mark.parametrize("text, match", [
    (_check(**GOOD, colour="red"), r"check 1: unknown key 'colour'"),
    (_check(**{k: v for k, v in GOOD.items() if k != "maximum"}),
     r"check 1: missing key 'maximum'"),
    (_check(**GOOD) + _check(**{**GOOD, "metric": "ne_error"}),
     r"check 2: key 'metric' is 'ne_error'; expected one of"),
    (_check(**{**GOOD, "maximum": "small"}), r"check 1: key 'maximum' must be a number"),
    (_check(**{**GOOD, "maximum": -1.0}), r"check 1: key 'maximum' must be a finite number >= 0"),
    (_check(**{**GOOD, "seed": 1.5}), r"check 1: key 'seed' must be an integer"),
    (_check(**{**GOOD, "seed": True}), r"check 1: key 'seed' must be an integer"),
    (_check(**{**GOOD, "kind": "campaign"}), r"check 1: key 'kind' is 'campaign'; expected one"),
    (_check(**{**GOOD, "scenario": "no-such-scenario"}),
     r"check 1: key 'scenario' is 'no-such-scenario', neither a built-in roundtrip scenario"),
    (_check(**{**GOOD, "kind": "sheet", "metric": "lag_error_s"}),
     r"check 1: key 'scenario' is 'maven-x-oneway', neither a built-in sheet scenario"),
    (_check(**{**GOOD, "realisations": 3}),
     r"check 1: key 'realisations' is only used with kind = 'budget'"),
    (_check(**{**GOOD, "kind": "budget", "metric": "total_bogus"}),
     r"check 1: key 'metric' is 'total_bogus'; expected one of total_"),
    (_check(**{**GOOD, "kind": "budget", "metric": "thermal.ne_rms_over_peak_100_200km",
               "sources": ["sampling"]}),
     r"check 1: key 'metric' is 'thermal\.ne_rms_over_peak_100_200km', but source 'thermal' "
     r"is not in this check's 'sources'"),
    (_check(**{**GOOD, "kind": "budget", "metric": "total_tn_rms_k", "sources": []}),
     r"check 1: key 'sources' must be a non-empty list of names"),
    (_check(**{**GOOD, "kind": "budget", "metric": "total_tn_rms_k", "realisations": 0}),
     r"check 1: key 'realisations' must be >= 1"),
    ("title = 'x'\n" + _check(**GOOD), r"unknown top-level key 'title'"),
    ("", r"expected at least one \[\[check\]\] table"),
    ("[[check]\n", r"is not valid TOML"),
])
def test_bad_thresholds_file(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(RoharnessError, match=match) as err:
        gate.load_thresholds(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg  # names the file; one sentence


def test_bad_scenario_file_is_bad_input(tmp_path):
    _write(tmp_path, "name = 'x'\n[nonsense]\n", "bad-scenario.toml")
    path = _write(tmp_path, _check(**{**GOOD, "scenario": "bad-scenario.toml"}))
    # a relative scenario path is resolved against the thresholds file's directory
    with pytest.raises(RoharnessError, match=r"check 1: key 'scenario': scenario .*unknown "
                       r"section \[nonsense\]"):
        gate.load_thresholds(path)


def test_cli_bad_input_exits_2(tmp_path, capsys):
    path = _write(tmp_path, _check(**GOOD, colour="red"))
    assert main(["gate", "--thresholds", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'colour'" in err
    assert main(["gate", "--thresholds", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_default_thresholds_file_is_valid():
    checks = gate.load_thresholds()  # the built-in file; loads its scenarios, runs nothing
    assert checks and all(c.maximum >= 0 for c in checks)
    # every maximum is justified by a measured value in a comment on its line
    text = gate.default_thresholds_path().read_text()
    for line in text.splitlines():
        if line.startswith("maximum"):
            assert "measured" in line, line
    # every gated scenario is fixed-seed
    assert all(c.seed is not None for c in checks)


# --- running the gate ------------------------------------------------------------------
def _junit(path):
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    return root, cases, [c for c in cases if c.find("failure") is not None]


_MEMO: dict = {}


@pytest.fixture
def memo_compute(monkeypatch):
    """The real :func:`validation.gate.compute`, memoised across the tests that use this
    fixture (one ~4 s round trip instead of one per test); counts the calls it receives."""
    real = gate.compute
    calls = []

    def memo(*args):
        calls.append(args)
        if args not in _MEMO:
            _MEMO[args] = real(*args)
        return _MEMO[args]

    monkeypatch.setattr(gate, "compute", memo)
    return calls


def test_gate_passes_with_loose_thresholds(tmp_path, capsys, memo_compute):
    # loose by design: max |Ne error| <= the whole peak, |M2 altitude error| <= 50 km
    text = _check(**GOOD, seed=0) + _check(**{**GOOD, "metric": "m2_peak_altitude_error_km",
                                               "maximum": 50.0, "seed": 0})
    junit = tmp_path / "out" / "gate.xml"
    assert main(["gate", "--thresholds", str(_write(tmp_path, text)),
                 "--junit", str(junit)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.endswith((" PASS", " FAIL"))]
    assert "2/2 checks passed" in out and len(rows) == 2 and "FAIL" not in out
    root, cases, failures = _junit(junit)
    assert len(cases) == 2 and not failures
    assert root.get("tests") == "2" and root.get("failures") == "0"
    assert not list(junit.parent.glob(".gate.xml.*"))  # atomic write left no temporary


def test_gate_fails_when_threshold_too_strict(tmp_path, capsys, memo_compute):
    # 1e-9 of the peak is far below the round trip's numerical floor (~1e-4 of the peak)
    text = (_check(**GOOD, seed=0)
            + _check(**{**GOOD, "maximum": 1e-9, "seed": 0}))
    junit = tmp_path / "gate.xml"
    status = main(["gate", "--thresholds", str(_write(tmp_path, text)),
                   "--junit", str(junit), "--json"])
    assert status == 1
    assert len(memo_compute) == 1  # both checks read one computation
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] is False and [c["passed"] for c in res["checks"]] == [True, False]
    assert "exceeds the maximum" in res["checks"][1]["message"]
    assert res["elapsed_s"] > 0
    root, cases, failures = _junit(junit)
    assert len(cases) == 2 and len(failures) == 1
    assert root.get("failures") == "1"
    assert "check2" in failures[0].get("name")
    assert "exceeds the maximum" in failures[0].find("failure").get("message")


def _default_checks_for(scenario) -> str:
    """The built-in thresholds of one scenario, as a thresholds file."""
    data = tomllib.loads(gate.default_thresholds_path().read_text())
    picked = [c for c in data["check"] if c["scenario"] == scenario]
    assert picked
    return "".join(_check(**c) for c in picked)


def test_gate_fails_when_retrieval_degraded(tmp_path, capsys, monkeypatch):
    # A 1 % bias on every retrieved density (what a wrong constant in the refractivity ->
    # N_e conversion would do): 1e-2 of the peak, ~100 x the built-in maxima.
    real = electron_density.electron_density_from_refractivity
    monkeypatch.setattr(electron_density, "electron_density_from_refractivity",
                        lambda *a, **k: 1.01 * real(*a, **k))
    path = _write(tmp_path, _default_checks_for(CHEAP))
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--thresholds", str(path), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL check 1: |ne_max_abs_error_over_peak|" in out
    assert "FAIL check 3: |m2_peak_density_rel_error|" in out
    _, cases, failures = _junit(junit)
    names = {f.get("name").split(":")[1] for f in failures}
    assert len(cases) == 5 and {"ne_max_abs_error_over_peak", "m2_peak_density_rel_error",
                                "tec_rel_error"} <= names


def test_failing_retrieval_is_a_regression_not_a_crash(tmp_path, capsys, monkeypatch):
    import validation.sheet

    def broken(obs):
        raise RoharnessError("the crossing has no current sheet")

    monkeypatch.setattr(validation.sheet, "analyse_sheet_crossing", broken)
    text = _check(kind="sheet", scenario="mars-2024-11-07", metric="lag_error_s",
                  maximum=2.0, seed=0)
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--thresholds", str(_write(tmp_path, text)),
                 "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "the sheet computation failed: RoharnessError: the crossing has no current sheet" in out
    _, cases, failures = _junit(junit)
    assert len(cases) == 1 and len(failures) == 1


def test_non_finite_value_fails(monkeypatch):
    monkeypatch.setattr(gate, "compute", lambda *a: {"lag_error_s": float("nan")})
    chk = gate.Check(index=1, kind="sheet", scenario="mars-2024-11-07",
                     metric="lag_error_s", maximum=2.0, seed=0)
    res = gate.run_gate([chk])
    assert res["passed"] is False and "not a finite number" in res["checks"][0]["message"]


def test_sheet_passes_and_negative_values_compare_by_magnitude(tmp_path):
    # measured lag error at seed 0 is negative (-0.056 s, gate_thresholds.toml): a maximum
    # of 2 s (the issue-7 limit) passes on |value|, and the signed value is reported
    text = _check(kind="sheet", scenario="mars-2024-11-07", metric="lag_error_s",
                  maximum=2.0, seed=0)
    res = gate.run_gate(gate.load_thresholds(_write(tmp_path, text)))
    row = res["checks"][0]
    assert res["passed"] and row["value"] < 0 and abs(row["value"]) <= 2.0
    table = gate.format_table(res)
    assert "PASS" in table and "mars-2024-11-07" in table


def test_budget_summary_is_flattened(monkeypatch):
    # the budget computation itself is exercised by the default gate (tox) and
    # tests/test_validation/test_budget.py; here only the gate's reading of its summary
    import validation.budget

    seen = {}

    def fake_run_budget(scenario, sources, realisations, **kw):
        seen.update(scenario=scenario, sources=sources, realisations=realisations, **kw)
        return dict(sources=["thermal"], total_ne_rms_over_peak_100_200km=0.02,
                    per_source={"thermal": dict(ne_rms_over_peak_100_200km=0.02, failed=1)})

    monkeypatch.setattr(validation.budget, "run_budget", fake_run_budget)
    common = dict(index=1, kind="budget", scenario="mex-tgo-uhf", seed=3,
                  sources=("thermal",), realisations=4)
    checks = [gate.Check(metric="total_ne_rms_over_peak_100_200km", maximum=0.03, **common),
              gate.Check(metric="thermal.failed", maximum=0, **common),
              gate.Check(metric="mc_total_failed", maximum=0, **common)]
    res = gate.run_gate(checks)
    assert [c["passed"] for c in res["checks"]] == [True, False, False]
    assert res["checks"][1]["value"] == 1
    assert "has no metric 'mc_total_failed'" in res["checks"][2]["message"]
    # serial, in-process, nothing written, silent; the check's seed/sources/realisations
    assert seen == dict(scenario="mex-tgo-uhf", sources=["thermal"], realisations=4, seed=3,
                        workers=0, out_dir=None, progress=False)


@pytest.mark.slow
def test_default_gate_passes(tmp_path):
    # the whole built-in gate, as CI runs it (tox); < 3 min on 2 cores (measured)
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--junit", str(junit)]) == 0
    _, cases, failures = _junit(junit)
    assert len(cases) == len(gate.load_thresholds()) and not failures
