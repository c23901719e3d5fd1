"""The CI regression gate: strict thresholds files, two-sided bands around recorded values,
``--update`` (re-record, diff), ``--json`` and JUnit output, and that the gate fails when the
retrieval is degraded."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

import retrieval.electron_density as electron_density
from retrieval.errors import RoharnessError
from validation import gate
from validation.cli import main

# The cheapest RO round trip (a level-2 one-way X-band link, ~3 s); its numerical floor is
# ~1e-4 of the peak (recorded in validation/gate_thresholds.toml).
CHEAP = "maven-x-oneway"


def _table(name="rt", metrics=None, **kw) -> str:
    """One computation table and its metrics as TOML text."""
    lines = [f"[{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in kw.items()]
    lines.append(f"[{name}.metrics]")
    for k, v in (metrics or {}).items():
        if isinstance(v, dict):
            v = "{ " + ", ".join(f"{a} = {json.dumps(b)}" for a, b in v.items()) + " }"
        else:  # a number as Python writes it (nan too, as TOML does), a string quoted
            v = json.dumps(v) if isinstance(v, str) else repr(v)
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def _write(tmp_path, text, name="thresholds.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = dict(kind="roundtrip", scenario=CHEAP, seed=0, rel=0.02)
GOOD_METRICS = {"ne_max_abs_error_over_peak": 1.2e-4}


def _good(metrics=None, **kw):
    return _table(metrics=GOOD_METRICS if metrics is None else metrics, **{**GOOD, **kw})


# --- the thresholds file is checked strictly, one sentence per error ---------------------
@pytest.mark.parametrize("text, match", [
    (_good(colour="red"), r"table \[rt\]: unknown key 'colour'; known keys for kind"),
    (_good(realisations=3), r"table \[rt\]: unknown key 'realisations' \(it is not used with "
                            r"kind = 'roundtrip'\)"),
    (_table(metrics=GOOD_METRICS, kind="roundtrip", rel=0.02),
     r"table \[rt\]: missing key 'scenario'"),
    ("[rt]\nkind = 'roundtrip'\nscenario = 'maven-x-oneway'\n",
     r"table \[rt\]: missing key 'metrics'"),
    (_table(metrics=GOOD_METRICS, scenario=CHEAP), r"table \[rt\]: missing key 'kind'"),
    (_good() + _good(metrics={"ne_error": 1.0}).replace("[rt", "[rt2"),
     r"table \[rt2\]: key 'metrics.ne_error' is not a roundtrip metric; expected one of"),
    (_good(rel="small"), r"table \[rt\]: key 'rel' must be a number"),
    (_good(rel=-1.0), r"table \[rt\]: key 'rel' must be a finite number >= 0"),
    (_good(metrics={"tec_rel_error": {"value": 1e-5, "abs": -1}}),
     r"table \[rt\]: key 'metrics.tec_rel_error.abs' must be a finite number >= 0"),
    (_good(metrics={"tec_rel_error": {"value": 1e-5, "tol": 1}}),
     r"table \[rt\]: unknown key 'metrics.tec_rel_error.tol'"),
    (_good(metrics={"tec_rel_error": "small"}),
     r"table \[rt\]: key 'metrics.tec_rel_error' must be the recorded number"),
    (_good(metrics={"tec_rel_error": float("nan")}),
     r"table \[rt\]: key 'metrics.tec_rel_error' must be a finite recorded value"),
    (_table(metrics=GOOD_METRICS, kind="roundtrip", scenario=CHEAP),
     r"table \[rt\]: key 'metrics.ne_max_abs_error_over_peak' has no band"),
    (_good(seed=1.5), r"table \[rt\]: key 'seed' must be an integer"),
    (_good(seed=True), r"table \[rt\]: key 'seed' must be an integer"),
    (_good(kind="campaign"), r"table \[rt\]: key 'kind' is 'campaign'; expected one of"),
    (_good(scenario="no-such-scenario"),
     r"table \[rt\]: key 'scenario' is 'no-such-scenario', neither a built-in roundtrip"),
    (_good(kind="sheet", metrics={"lag_error_s": -0.05}),
     r"table \[rt\]: key 'scenario' is 'maven-x-oneway', neither a built-in sheet scenario"),
    (_good(kind="budget", metrics={"total_bogus": 1.0}),
     r"table \[rt\]: key 'metrics.total_bogus' is not a budget metric; expected one of total_"),
    (_good(kind="budget", sources=["sampling"],
           metrics={"thermal.ne_rms_over_peak_100_200km": 1e-3}),
     r"table \[rt\]: key 'metrics.thermal.ne_rms_over_peak_100_200km' names source "
     r"'thermal', which is not in this table's 'sources'"),
    (_good(kind="budget", metrics={"bogus.tn_rms_k": 1.0}),
     r"key 'metrics.bogus.tn_rms_k' names 'bogus', which is not an error source"),
    (_good(kind="budget", sources=[], metrics={"total_tn_rms_k": 1.0}),
     r"table \[rt\]: key 'sources' must be a non-empty list of names"),
    (_good(kind="budget", realisations=0, metrics={"total_tn_rms_k": 1.0}),
     r"table \[rt\]: key 'realisations' must be >= 1"),
    (_good().replace("seed = 0", "seed = 0\noverrides.ionosphere.model = 'nope'"),
     r"table \[rt\]: key 'overrides': scenario .*model.*nope"),
    (_good().replace("seed = 0", "seed = 0\noverrides.nosuch.key = 1"),
     r"table \[rt\]: key 'overrides': unknown scenario section \[nosuch\]"),
    (_table(metrics={"n_events": 3}, kind="events", tx="mex", rx="tgo",
            start_utc="2023-01-04", stop_utc="2023-01-01", abs=0),
     r"table \[rt\]: key 'stop_utc' must be after 'start_utc'"),
    (_table(metrics={"n_events": 3}, kind="events", tx="mex", rx="tgo",
            start_utc="yesterday", stop_utc="2023-01-01", abs=0),
     r"table \[rt\]: key 'start_utc': time 'yesterday' is not an ISO UTC time"),
    ("title = 'x'\n" + _good(), r"top-level key 'title' is not a table"),
    ("", r"expected at least one computation table"),
    ("[rt\n", r"is not valid TOML"),
])
def test_bad_thresholds_file(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(RoharnessError, match=match) as err:
        gate.load_thresholds(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg  # names the file; one sentence


def test_bad_scenario_file_is_bad_input(tmp_path):
    _write(tmp_path, "name = 'x'\n[nonsense]\n", "bad-scenario.toml")
    path = _write(tmp_path, _good(scenario="bad-scenario.toml"))
    # a relative scenario path is resolved against the thresholds file's directory
    with pytest.raises(RoharnessError, match=r"table \[rt\]: key 'scenario': scenario .*unknown "
                       r"section \[nonsense\]"):
        gate.load_thresholds(path)


def test_cli_bad_input_exits_2(tmp_path, capsys):
    path = _write(tmp_path, _good(colour="red"))
    for extra in ([], ["--update"], ["--mutations"]):
        assert main(["gate", "--thresholds", str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "unknown key 'colour'" in err
    assert main(["gate", "--thresholds", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["gate", "--mutation", "bogus"]) == 2
    assert "unknown mutation 'bogus'; known mutations: noop" in capsys.readouterr().err


def test_metrics_forms_and_bands(tmp_path):
    text = _good(metrics={"ne_max_abs_error_over_peak": 1e-4,
                          "m2_peak_altitude_error_km": {"value": -2e-3, "abs": 1e-4},
                          "tec_rel_error": {"value": 5e-6, "rel": 0.1, "abs": 1e-6}})
    text += ("[bud]\nkind = 'budget'\nscenario = 'mex-tgo-uhf'\nseed = 0\nrel = 0.05\n"
             "[bud.metrics]\nthermal.tn_rms_k = 0.2\n\"floor.tn_rms_k\" = 0.3\n"
             "sampling = { failed = { value = 0, abs = 0 } }\n")
    checks = {c.name: c for c in gate.load_thresholds(_write(tmp_path, text))}
    assert list(checks) == ["rt.ne_max_abs_error_over_peak", "rt.m2_peak_altitude_error_km",
                            "rt.tec_rel_error", "bud.thermal.tn_rms_k", "bud.floor.tn_rms_k",
                            "bud.sampling.failed"]
    c = checks["rt.ne_max_abs_error_over_peak"]  # the table's rel
    assert (c.minimum, c.maximum) == pytest.approx((0.98e-4, 1.02e-4))
    c = checks["rt.m2_peak_altitude_error_km"]  # its own abs, around a negative value
    assert (c.minimum, c.maximum) == pytest.approx((-2.1e-3, -1.9e-3))
    c = checks["rt.tec_rel_error"]  # rel with an absolute floor: the larger applies
    assert c.tolerance == pytest.approx(1e-6)
    assert checks["bud.thermal.tn_rms_k"].tolerance == pytest.approx(0.01)
    c = checks["bud.sampling.failed"]
    assert c.minimum == c.maximum == 0  # a count: exact
    assert json.loads(c.params) == dict(scenario="mex-tgo-uhf", seed=0, gradient_sza_deg=[])


# --- the built-in file ---------------------------------------------------------------
def test_default_thresholds_file_is_valid():
    checks = gate.load_thresholds()  # the built-in file; loads its scenarios, runs nothing
    assert len({c.name for c in checks}) == len(checks)
    kinds = {c.kind for c in checks}
    assert kinds == {"roundtrip", "sheet", "budget", "events"}
    # every RO/sheet computation is fixed-seed
    assert all(c.seed is not None for c in checks if c.kind != "events")
    # what users rely on is gated: the main job's every source, two-way, sheet, M1, events
    names = {c.name for c in checks}
    for src in ("thermal", "oscillator", "drift", "ephemeris", "sampling", "gradients",
                "parrott"):
        for key in ("ne_rms_over_peak_100_200km", "ne150_rel_rms", "tn_rms_k", "tec_rel_rms"):
            assert f"main-budget.{src}.{key}" in names
    assert json.loads(next(c for c in checks if c.table == "main-budget").params)[
        "scenario"] == "mex-tgo-uhf-drift"
    assert {"m1-roundtrip.m1_peak_altitude_error_km", "sheet.l_angle_error_deg",
            "sheet.m_angle_error_deg", "sheet.half_thickness_rel_error",
            "sheet.outflow_rel_error", "twoway-budget.thermal.ne_rms_over_peak_100_200km",
            "events-mex-tgo.n_events", "events-mex-earth.first_time_s"} <= names
    # every band is justified by a comment on the line that sets it
    text = gate.default_thresholds_path().read_text()
    for line in text.splitlines():
        if line.startswith(("rel =", "abs =")) or "rel =" in line.split("#")[0] \
                or "abs =" in line.split("#")[0]:
            assert "#" in line, line


def _eps(chk):
    return max(0.5 * chk.tolerance, 1e-9 * abs(chk.recorded), 1e-12)


def test_every_default_check_is_two_sided():
    # fabricated values: the comparison logic on every band of the built-in file
    for chk in gate.load_thresholds():
        assert chk.minimum <= chk.recorded <= chk.maximum
        assert gate.compare_check(chk, chk.recorded) == (True, "")
        assert gate.compare_check(chk, chk.maximum)[0] and gate.compare_check(chk, chk.minimum)[0]
        above = gate.compare_check(chk, chk.maximum + _eps(chk))
        below = gate.compare_check(chk, chk.minimum - _eps(chk))
        assert not above[0] and "is above the band" in above[1], chk.name
        assert not below[0] and "is below the band" in below[1], chk.name
        assert "roharness gate --update" in above[1]
        assert not gate.compare_check(chk, float("nan"))[0]


def test_doubling_a_noise_rms_fails_and_halving_it_fails():
    # with 4 realisations the thermal RMS moves by ~100 % when the thermal sigma doubles
    chk = next(c for c in gate.load_thresholds()
               if c.name == "main-budget.thermal.ne_rms_over_peak_100_200km")
    assert not gate.compare_check(chk, 2 * chk.recorded)[0]
    assert not gate.compare_check(chk, 0.5 * chk.recorded)[0]
    assert gate.compare_check(chk, 1.001 * chk.recorded)[0]


# --- running the gate (fabricated computations) ---------------------------------------
@pytest.fixture
def fake_compute(monkeypatch):
    """:func:`validation.gate.compute` returning ``values[table kind]``; records calls."""
    calls = []
    values = {}

    def fake(kind, params, retrieval=None):
        calls.append((kind, params, retrieval))
        v = values[kind]
        if isinstance(v, Exception):
            raise v
        return dict(v)

    monkeypatch.setattr(gate, "compute", fake)
    return values, calls


SMALL = (_good(metrics={"ne_max_abs_error_over_peak": 1.2e-4,
                        "m2_peak_altitude_error_km": {"value": 1.4e-3, "abs": 1e-4}})
         .replace("rel = 0.02", "rel = 0.02          # band: platform round-off"))


def test_gate_json_shape_and_two_sided_failures(tmp_path, capsys, fake_compute):
    values, calls = fake_compute
    path = _write(tmp_path, SMALL)
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=1.2e-4, m2_peak_altitude_error_km=1.4e-3)
    assert main(["gate", "--thresholds", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] is True and len(res["checks"]) == 2 and len(calls) == 1
    row = res["checks"][1]
    assert {"name", "table", "kind", "scenario", "metric", "seed", "value", "recorded",
            "minimum", "maximum", "passed", "message", "time_s"} <= set(row)
    assert row["name"] == "rt.m2_peak_altitude_error_km"
    assert (row["minimum"], row["recorded"], row["maximum"]) == pytest.approx(
        (1.3e-3, 1.4e-3, 1.5e-3))
    assert calls[0][2] is None  # the built-in retrieval unless one is given
    # an improvement (smaller error) fails like a regression: it must be acknowledged
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=0.5e-4, m2_peak_altitude_error_km=2e-3)
    junit = tmp_path / "out" / "gate.xml"
    assert main(["gate", "--thresholds", str(path), "--json", "--junit", str(junit)]) == 1
    res = json.loads(capsys.readouterr().out)
    assert [c["passed"] for c in res["checks"]] == [False, False]
    assert "is below the band" in res["checks"][0]["message"]
    assert "is above the band" in res["checks"][1]["message"]
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2 and root.get("failures") == "2"
    assert cases[0].get("classname") == "roharness.gate.rt"
    assert not list(junit.parent.glob(".gate.xml.*"))  # atomic write left no temporary


def test_gate_human_table(tmp_path, capsys, fake_compute):
    values, _ = fake_compute
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=1.2e-4, m2_peak_altitude_error_km=9.0)
    assert main(["gate", "--thresholds", str(_write(tmp_path, SMALL))]) == 1
    out = capsys.readouterr().out
    assert "1/2 checks passed" in out and "FAILED" in out
    assert "FAIL rt.m2_peak_altitude_error_km: m2_peak_altitude_error_km = 9 is above the " \
           "band [0.0013, 0.0015]" in out


def test_failing_computation_and_missing_metric_are_regressions(tmp_path, fake_compute):
    values, _ = fake_compute
    checks = gate.load_thresholds(_write(tmp_path, SMALL))
    values["roundtrip"] = RoharnessError("the retrieved impact parameter is not monotonic")
    res = gate.run_gate(checks)
    assert not res["passed"]
    assert all("the roundtrip computation [rt] failed: RoharnessError: the retrieved impact "
               "parameter is not monotonic" in r["message"] for r in res["checks"])
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=float("nan"))
    rows = gate.run_gate(checks)["checks"]
    assert "not a finite number" in rows[0]["message"]
    assert "has no metric 'm2_peak_altitude_error_km'" in rows[1]["message"]


def test_retrieval_is_passed_only_when_given(monkeypatch):
    import validation.budget
    import validation.roundtrip

    seen = []

    def fake_roundtrip(scenario, seed=None, **kw):
        seen.append(("roundtrip", scenario, seed, kw))
        return dict(metrics=dict(tec_rel_error=1e-5))

    def fake_budget(scenario, sources, realisations, **kw):
        seen.append(("budget", scenario, sources, realisations, kw))
        return dict(sources=["thermal"], total_ne_rms_over_peak_100_200km=0.02,
                    per_source={"thermal": dict(ne_rms_over_peak_100_200km=0.02, failed=1)},
                    floor=dict(tn_rms_k=2.0), messages=[])

    monkeypatch.setattr(validation.roundtrip, "run_roundtrip", fake_roundtrip)
    monkeypatch.setattr(validation.budget, "run_budget", fake_budget)
    assert gate.compute("roundtrip", dict(scenario=CHEAP, seed=0)) == dict(tec_rel_error=1e-5)
    gate.compute("roundtrip", dict(scenario=CHEAP, seed=0), retrieval="my:func")
    assert seen[0] == ("roundtrip", CHEAP, 0, {})
    assert seen[1][3] == {"retrieval": "my:func"}
    flat = gate.compute("budget", dict(scenario="mex-tgo-uhf", seed=3, sources=["thermal"],
                                       realisations=4, gradient_sza_deg=[]))
    assert flat == {"total_ne_rms_over_peak_100_200km": 0.02,
                    "thermal.ne_rms_over_peak_100_200km": 0.02, "thermal.failed": 1,
                    "floor.tn_rms_k": 2.0}
    # serial, in-process, nothing written, silent, no SZA sweep; no retrieval keyword
    assert seen[2] == ("budget", "mex-tgo-uhf", ["thermal"], 4,
                       dict(seed=3, workers=0, out_dir=None, progress=False,
                            gradient_sza_deg=()))
    gate.compute("budget", dict(scenario="mex-tgo-uhf", gradient_sza_deg=[60.0]),
                 retrieval="cmd:x")
    assert seen[3][4]["retrieval"] == "cmd:x" and seen[3][4]["gradient_sza_deg"] == (60.0,)


# --- --update --------------------------------------------------------------------------
UPDATE_TEXT = """\
# my gate: comments and layout survive an update
[rt]
kind = "roundtrip"
scenario = "maven-x-oneway"
seed = 0
rel = 0.02                    # deterministic: round-off only

[rt.metrics]
ne_max_abs_error_over_peak = 1.2e-4          # floor
m2_peak_altitude_error_km = { value = 1.4e-3, abs = 1e-4 }   # own band
n_samples = { value = 594, abs = 0 }         # a count

[ev]
kind = "events"
tx = "mex"
rx = "tgo"
start_utc = "2023-01-01"
stop_utc = "2023-01-02"
abs = 0                       # counts are exact

[ev.metrics]
n_events = 20
first_time_s = { value = 5288.0, abs = 0.01 }  # refined to 1 ms
"""


def test_update_rewrites_recorded_values_and_prints_the_diff(tmp_path, capsys, fake_compute):
    values, _ = fake_compute
    path = _write(tmp_path, UPDATE_TEXT)
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=1.0e-4, m2_peak_altitude_error_km=1.4e-3,
                               n_samples=600)
    values["events"] = dict(n_events=22, first_time_s=5288.361234567)
    assert main(["gate", "--thresholds", str(path)]) == 1  # the numbers moved
    capsys.readouterr()
    assert main(["gate", "--update", "--thresholds", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rt.ne_max_abs_error_over_peak: 0.00012 -> 0.0001 (-16.7 %)" in out
    assert "rt.n_samples: 594 -> 600 (+1.01 %)" in out
    assert "ev.n_events: 20 -> 22" in out
    assert "m2_peak_altitude_error_km" not in out  # unchanged values are not listed
    assert "4 recorded values changed, 1 unchanged; wrote" in out
    new = path.read_text()
    # only the numbers changed: comments, bands, layout kept; times keep their digits
    assert new == (UPDATE_TEXT.replace("= 1.2e-4 ", "= 0.0001 ")
                   .replace("value = 594,", "value = 600,").replace("n_events = 20",
                                                                    "n_events = 22")
                   .replace("value = 5288.0,", "value = 5288.3612,"))
    assert not list(tmp_path.glob(".thresholds.toml.*"))  # atomic
    assert main(["gate", "--thresholds", str(path)]) == 0  # and now the gate passes
    capsys.readouterr()
    assert main(["gate", "--update", "--thresholds", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["written"] and not res["failed"] and not any(c["changed"] for c in res["changes"])


def test_update_keeps_the_file_when_a_value_cannot_be_measured(tmp_path, capsys, fake_compute):
    values, _ = fake_compute
    path = _write(tmp_path, UPDATE_TEXT)
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=1.0e-4, m2_peak_altitude_error_km=1e-3,
                               n_samples=600)
    values["events"] = RoharnessError("no kernel")
    assert main(["gate", "--update", "--thresholds", str(path)]) == 1
    out = capsys.readouterr().out
    assert "NOT UPDATED ev.n_events: the events computation failed: RoharnessError: no kernel" \
        in out and "left unchanged" in out
    assert path.read_text() == UPDATE_TEXT


def test_update_needs_one_line_per_metric(tmp_path, capsys, fake_compute):
    # valid TOML the gate reads, but with no [rt.metrics] line to rewrite
    values, _ = fake_compute
    text = ('[rt]\nkind = "roundtrip"\nscenario = "maven-x-oneway"\nseed = 0\n'
            'rel = 0.02                    # round-off\n'
            'metrics.ne_max_abs_error_over_peak = 1.2e-4\n')
    path = _write(tmp_path, text)
    values["roundtrip"] = dict(ne_max_abs_error_over_peak=1.0e-4)
    assert main(["gate", "--update", "--thresholds", str(path)]) == 1
    assert "no line 'ne_max_abs_error_over_peak = ...' under [rt.metrics]" in \
        capsys.readouterr().out
    assert path.read_text() == text


# --- real computations (cheap ones) ---------------------------------------------------
def _default_tables(*names) -> str:
    """Tables of the built-in file, as a thresholds file of their own."""
    text = gate.default_thresholds_path().read_text()
    blocks = text.split("\n[")
    keep = [b for b in blocks[1:] if b.split("]")[0].split(".")[0] in names]
    assert keep
    return "".join("[" + b.rstrip("\n") + "\n\n" for b in keep)


def test_recorded_sheet_and_events_values_hold(tmp_path):
    # the cheapest real computations of the built-in file (~2 s): recorded values reproduce
    path = _write(tmp_path, _default_tables("sheet", "events-mex-tgo", "events-mex-earth"))
    res = gate.run_gate(gate.load_thresholds(path))
    assert res["passed"], [r["message"] for r in res["checks"] if not r["passed"]]
    assert len(res["checks"]) > 30


def test_gate_fails_when_retrieval_degraded(tmp_path, capsys, monkeypatch):
    # A 1 % bias on every retrieved density (what a wrong constant in the refractivity ->
    # N_e conversion would do): 1e-2 of the peak, ~100 x the recorded floor
    real = electron_density.electron_density_from_refractivity
    monkeypatch.setattr(electron_density, "electron_density_from_refractivity",
                        lambda *a, **k: 1.01 * real(*a, **k))
    path = _write(tmp_path, _default_tables("maven-roundtrip"))
    assert main(["gate", "--thresholds", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL maven-roundtrip.ne_max_abs_error_over_peak:" in out
    assert "FAIL maven-roundtrip.m2_peak_density_rel_error:" in out
    assert "FAIL maven-roundtrip.tec_rel_error:" in out
    assert "FAIL maven-roundtrip.sza_deg" not in out  # the geometry did not change


@pytest.mark.slow
def test_default_gate_passes(tmp_path):
    # the whole built-in gate, as CI runs it (tox); ~30 s on 2 cores (measured)
    junit = tmp_path / "gate.xml"
    assert main(["gate", "--junit", str(junit)]) == 0
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == len(gate.load_thresholds())
    assert not [c for c in cases if c.find("failure") is not None]
