"""CI regression gate: fixed-seed round trips and small budgets against thresholds.

``roharness gate`` runs a suite of checks read from a thresholds TOML file (the built-in
default is ``validation/gate_thresholds.toml``) and reports, for each check, the measured
metric, its maximum and PASS/FAIL; it writes JUnit XML for CI and exits 1 if any check
fails (a regression), 2 on a bad thresholds file.

Thresholds file
---------------
A list of ``[[check]]`` tables, nothing else::

    [[check]]
    kind = "roundtrip"            # "roundtrip", "sheet" or "budget"
    scenario = "mex-tgo-uhf"      # built-in name, or a TOML path (relative to this file)
    metric = "ne_max_abs_error_over_peak"
    maximum = 2e-4                # the check passes when |value| <= maximum
    seed = 0                      # optional: overrides the scenario's seed (sheet: 0)
    # budget only (optional): sources = ["thermal"], realisations = 4

Kinds and their metrics (:data:`METRICS`):

* ``roundtrip``: one RO occultation, :func:`validation.roundtrip.run_roundtrip`; metrics are
  its numeric ``metrics`` keys (signed errors, e.g. ``m2_peak_altitude_error_km``).
* ``sheet``: one current-sheet crossing, :func:`validation.sheet.run_sheet_roundtrip`.
* ``budget``: a Monte Carlo error budget, :func:`validation.budget.run_budget` run in-process
  (``workers=0``); metrics are the summary's ``total_*`` and ``mc_total_*`` keys, or
  ``SOURCE.KEY`` for one source's entry of ``per_source`` (e.g.
  ``thermal.ne_rms_over_peak_100_200km``).

Every check is compared on the **absolute value** of the metric, ``|value| <= maximum``:
signed errors (a peak altitude error of -0.3 km) regress in either direction; RMS values
and counts are non-negative anyway. A value that is not finite fails. A computation that
raises (the retrieval failing on a scenario) fails every check that uses it: the gate
reports it as a regression, never crashes on it. Each distinct computation (kind,
scenario, seed, sources, realisations) runs once, however many checks read it.

The file is checked strictly before anything runs: an unknown or missing key, a bad type,
an unknown kind, metric or scenario is a :class:`retrieval.errors.RoharnessError` naming
the file, the check (1-based, in file order) and the key.
"""

from __future__ import annotations

import math
import time
import tomllib
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from retrieval.errors import RoharnessError
from retrieval.fileio import write_text_atomic

#: Numeric metrics of a round trip (:func:`validation.roundtrip.compare`).
ROUNDTRIP_METRICS = (
    "ne_max_abs_error_over_peak",
    "m2_peak_altitude_error_km",
    "m2_peak_density_rel_error",
    "m1_peak_altitude_error_km",
    "m1_peak_density_rel_error",
    "neutral_temperature_error_k",
    "tec_rel_error",
)

#: Numeric error metrics of a current-sheet round trip (:func:`validation.sheet.compare_sheet`).
SHEET_METRICS = (
    "normal_angle_error_deg",
    "l_angle_error_deg",
    "m_angle_error_deg",
    "guide_field_error_nt",
    "lag_error_s",
    "escape_flux_rel_error",
    "half_thickness_rel_error",
    "alfven_speed_rel_error",
    "outflow_rel_error",
)

#: Keys of one source's entry in a budget summary's ``per_source`` (metric ``SOURCE.KEY``);
#: see :func:`validation.budget.summarise`.
BUDGET_SOURCE_METRICS = (
    "ne_rms_over_peak_100_200km",
    "m2_peak_altitude_rms_km",
    "m2_peak_density_rel_rms",
    "ne150_rel_rms",
    "tn_rms_k",
    "tec_rel_rms",
    "failed",
)

#: Top-level metrics of a budget summary: root-sum-square of the physical sources
#: (``total_*``), all physical sources on at once (``mc_total_*``), failed realisations of
#: that run.
BUDGET_TOTAL_METRICS = tuple(
    f"{prefix}_{key}" for prefix in ("total", "mc_total") for key in BUDGET_SOURCE_METRICS[:-1]
) + ("mc_total_failed",)

#: kind -> metric names it accepts (budget also accepts ``SOURCE.KEY``).
METRICS = {
    "roundtrip": ROUNDTRIP_METRICS,
    "sheet": SHEET_METRICS,
    "budget": BUDGET_TOTAL_METRICS,
}

_REQUIRED = {"kind": str, "scenario": str, "metric": str, "maximum": float}
_OPTIONAL = {"seed": int, "sources": list, "realisations": int}
_BUDGET_ONLY = ("sources", "realisations")


def default_thresholds_path() -> Path:
    """The built-in thresholds file shipped with the package."""
    return Path(str(resources.files("validation") / "gate_thresholds.toml"))


@dataclass(frozen=True)
class Check:
    """One line of the gate: a metric of one computation and its maximum."""

    index: int  #: 1-based position in the thresholds file
    kind: str
    scenario: str  #: built-in name, or an absolute path
    metric: str
    maximum: float
    seed: int | None = None
    sources: tuple[str, ...] | None = None
    realisations: int | None = None

    @property
    def run_key(self) -> tuple:
        """Checks with the same key share one computation."""
        return (self.kind, self.scenario, self.seed, self.sources, self.realisations)


def _typed(where, key, typ, value):
    """Check one value's type; return it converted (int -> float for numbers)."""
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RoharnessError(f"{where}: key '{key}' must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise RoharnessError(f"{where}: key '{key}' must be a finite number >= 0, "
                                 f"got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RoharnessError(f"{where}: key '{key}' must be an integer, got {value!r}")
        if value < 0:
            raise RoharnessError(f"{where}: key '{key}' must be >= 0, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str) or not value:
            raise RoharnessError(f"{where}: key '{key}' must be a non-empty string, "
                                 f"got {value!r}")
        return value
    if typ is list:
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, str) and v for v in value)):
            raise RoharnessError(f"{where}: key '{key}' must be a non-empty list of names, "
                                 f"got {value!r}")
        return tuple(value)
    raise AssertionError(typ)  # pragma: no cover


def _ro_names():
    from synth.scenario import builtin_names
    return [n for n in builtin_names("ro")]


def _sheet_names():
    from synth.sheet_scenario import BUILTIN_SHEET_SCENARIOS
    return list(BUILTIN_SHEET_SCENARIOS)


def _resolve_scenario(where, kind, text, base_dir):
    """A built-in name (kept as is) or an existing file (made absolute); load it to check."""
    from synth.scenario import load_scenario
    from synth.sheet_scenario import load_sheet_scenario

    builtins = _sheet_names() if kind == "sheet" else _ro_names()
    if text in builtins:
        resolved = text
    else:
        path = Path(text)
        if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
            path = base_dir / path
        if not path.is_file():
            raise RoharnessError(
                f"{where}: key 'scenario' is {text!r}, neither a built-in {kind} scenario "
                f"({', '.join(builtins)}) nor an existing TOML file")
        resolved = str(path.resolve())
    try:  # a bad scenario is bad input too: find it now, not half-way through the run
        (load_sheet_scenario if kind == "sheet" else load_scenario)(resolved)
    except RoharnessError as exc:
        raise RoharnessError(f"{where}: key 'scenario': {str(exc).rstrip('.')}") from None
    return resolved


def _check_budget_metric(where, metric, sources):
    if metric in BUDGET_TOTAL_METRICS:
        return
    source, dot, key = metric.partition(".")
    if dot and key in BUDGET_SOURCE_METRICS:
        known = None
        try:
            from synth.error_sources import SOURCES
            known = list(SOURCES)
        except ImportError:  # the error-source models are not installed yet
            pass
        if known is not None and source not in known:
            raise RoharnessError(f"{where}: key 'metric' is {metric!r}, but {source!r} is not "
                                 f"an error source; known sources: {', '.join(known)}")
        if sources is not None and source not in sources:
            raise RoharnessError(f"{where}: key 'metric' is {metric!r}, but source {source!r} "
                                 f"is not in this check's 'sources' ({', '.join(sources)})")
        return
    raise RoharnessError(
        f"{where}: key 'metric' is {metric!r}; expected one of "
        f"{', '.join(BUDGET_TOTAL_METRICS)}, or SOURCE.KEY with KEY one of "
        f"{', '.join(BUDGET_SOURCE_METRICS)}")


def parse_thresholds(text: str, source: str = "<string>", base_dir=None) -> list[Check]:
    """Parse and strictly check thresholds TOML text; return its checks in file order.

    Parameters
    ----------
    text : str
        The TOML text.
    source : str
        Name of the file, used in error messages.
    base_dir : path, optional
        Directory that relative scenario paths are resolved against (the file's own).

    Raises
    ------
    RoharnessError
        One sentence naming the file, the check number and the key.
    """
    where0 = f"thresholds file {source}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoharnessError(f"{where0} is not valid TOML: {exc}") from None
    for key in data:
        if key != "check":
            raise RoharnessError(f"{where0}: unknown top-level key '{key}'; expected only "
                                 "[[check]] tables")
    tables = data.get("check")
    if not isinstance(tables, list) or not tables:
        raise RoharnessError(f"{where0}: expected at least one [[check]] table")
    base_dir = Path(base_dir) if base_dir is not None else None
    checks = []
    for i, table in enumerate(tables, start=1):
        where = f"{where0} check {i}"
        if not isinstance(table, dict):
            raise RoharnessError(f"{where} must be a table ([[check]])")
        for key in table:
            if key not in _REQUIRED and key not in _OPTIONAL:
                raise RoharnessError(f"{where}: unknown key '{key}'; known keys: "
                                     f"{', '.join([*_REQUIRED, *_OPTIONAL])}")
        for key in _REQUIRED:
            if key not in table:
                raise RoharnessError(f"{where}: missing key '{key}'")
        values = {k: _typed(where, k, t, table[k])
                  for k, t in {**_REQUIRED, **_OPTIONAL}.items() if k in table}
        kind = values["kind"]
        if kind not in METRICS:
            raise RoharnessError(f"{where}: key 'kind' is {kind!r}; expected one of "
                                 f"{', '.join(METRICS)}")
        if kind != "budget":
            for key in _BUDGET_ONLY:
                if key in values:
                    raise RoharnessError(f"{where}: key '{key}' is only used with "
                                         "kind = 'budget'")
        metric = values["metric"]
        if kind == "budget":
            _check_budget_metric(where, metric, values.get("sources"))
        elif metric not in METRICS[kind]:
            raise RoharnessError(f"{where}: key 'metric' is {metric!r}; expected one of "
                                 f"{', '.join(METRICS[kind])}")
        if kind == "budget" and values.get("realisations") == 0:
            raise RoharnessError(f"{where}: key 'realisations' must be >= 1")
        scenario = _resolve_scenario(where, kind, values["scenario"], base_dir)
        checks.append(Check(index=i, kind=kind, scenario=scenario, metric=metric,
                            maximum=values["maximum"], seed=values.get("seed"),
                            sources=values.get("sources"),
                            realisations=values.get("realisations")))
    return checks


def load_thresholds(path=None) -> list[Check]:
    """Read a thresholds file (default: the built-in :func:`default_thresholds_path`)."""
    path = Path(path) if path is not None else default_thresholds_path()
    if not path.is_file():
        raise RoharnessError(f"thresholds file '{path}' does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RoharnessError(f"thresholds file '{path}' cannot be read: {exc}") from None
    return parse_thresholds(text, str(path), base_dir=path.parent)


def compute(kind, scenario, seed, sources, realisations) -> dict:
    """Run one computation of the gate; return its metrics as a flat dict.

    Budget summaries are flattened: ``per_source[s][k]`` becomes ``"s.k"``.
    """
    if kind == "roundtrip":
        from validation.roundtrip import run_roundtrip
        return dict(run_roundtrip(scenario, seed)["metrics"])
    if kind == "sheet":
        from validation.sheet import run_sheet_roundtrip
        return dict(run_sheet_roundtrip(scenario, seed=0 if seed is None else seed))
    if kind == "budget":
        from validation.budget import run_budget
        summary = run_budget(scenario, list(sources) if sources else None, realisations,
                             seed=seed, workers=0, out_dir=None, progress=False)
        flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
        for src, entry in summary.get("per_source", {}).items():
            for k, v in entry.items():
                flat[f"{src}.{k}"] = v
        return flat
    raise ValueError(f"unknown gate kind {kind!r}; known kinds: {', '.join(METRICS)}")


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def run_gate(checks: list[Check], log=None) -> dict:
    """Run every check (each computation once) and compare with its maximum.

    Parameters
    ----------
    checks : list of Check
        From :func:`load_thresholds`.
    log : callable, optional
        Called with one line of text before each computation (progress).

    Returns
    -------
    dict
        ``checks``: one dict per check (``index``, ``kind``, ``scenario``, ``metric``,
        ``seed``, ``value``, ``maximum``, ``passed``, ``message``, ``time_s``); ``passed``
        (all checks passed); ``elapsed_s``.
    """
    t0 = time.perf_counter()
    results: dict[tuple, tuple] = {}  # run_key -> (metrics | None, error text, seconds)
    rows = []
    for chk in checks:
        time_s = 0.0
        if chk.run_key not in results:
            if log:
                extra = f", seed {chk.seed}" if chk.seed is not None else ""
                if chk.kind == "budget":
                    extra += (f", sources {','.join(chk.sources) if chk.sources else 'default'}"
                              f", realisations {chk.realisations or 'default'}")
                log(f"gate: {chk.kind} {chk.scenario}{extra}")
            t1 = time.perf_counter()
            try:
                metrics, error = compute(*chk.run_key), None
            except Exception as exc:  # a failing retrieval is a regression, not a crash
                metrics = None
                error = f"{type(exc).__name__}: {exc}"
                frames = traceback.extract_tb(exc.__traceback__)
                if not isinstance(exc, RoharnessError) and frames:  # an internal fault: where
                    error += f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})"
            time_s = time.perf_counter() - t1
            results[chk.run_key] = (metrics, error, time_s)
        metrics, error, _ = results[chk.run_key]
        value = float("nan")
        if metrics is None:
            passed, message = False, f"the {chk.kind} computation failed: {error}"
        elif chk.metric not in metrics:
            passed = False
            message = f"the {chk.kind} result has no metric '{chk.metric}'"
        else:
            value = _as_float(metrics[chk.metric])
            if not math.isfinite(value):
                passed = False
                message = f"{chk.metric} is {metrics[chk.metric]!r}, not a finite number"
            elif abs(value) <= chk.maximum:
                passed, message = True, ""
            else:
                passed = False
                message = (f"|{chk.metric}| = {abs(value):.4g} exceeds the maximum "
                           f"{chk.maximum:.4g} ({chk.kind} {chk.scenario})")
        rows.append(dict(index=chk.index, kind=chk.kind, scenario=chk.scenario,
                         metric=chk.metric, seed=chk.seed,
                         sources=list(chk.sources) if chk.sources else None,
                         realisations=chk.realisations, value=value, maximum=chk.maximum,
                         passed=passed, message=message, time_s=time_s))
    return dict(checks=rows, passed=all(r["passed"] for r in rows),
                elapsed_s=time.perf_counter() - t0)


def _short(scenario: str) -> str:
    return Path(scenario).name if ("/" in scenario or "\\" in scenario) else scenario


def format_table(result: dict) -> str:
    """The human table: check, scenario, metric, value, maximum, PASS/FAIL."""
    head = ("check", "scenario", "metric", "value", "maximum", "result")
    lines = [head]
    for r in result["checks"]:
        lines.append((f"{r['index']} {r['kind']}", _short(r["scenario"]), r["metric"],
                      f"{r['value']:.4g}", f"{r['maximum']:.4g}",
                      "PASS" if r["passed"] else "FAIL"))
    widths = [max(len(row[j]) for row in lines) for j in range(len(head))]
    out = ["  ".join(c.ljust(w) if j < 3 or j == 5 else c.rjust(w)
                     for j, (c, w) in enumerate(zip(row, widths))).rstrip()
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    for r in result["checks"]:
        if not r["passed"]:
            out.append(f"FAIL check {r['index']}: {r['message']}")
    n_ok = sum(r["passed"] for r in result["checks"])
    out.append(f"gate: {n_ok}/{len(result['checks'])} checks passed in "
               f"{result['elapsed_s']:.1f} s: {'PASSED' if result['passed'] else 'FAILED'}")
    return "\n".join(out)


def junit_xml(result: dict) -> str:
    """JUnit XML of a gate result: one testcase per check, a <failure> per regression."""
    rows = result["checks"]
    n_fail = sum(not r["passed"] for r in rows)
    suites = ET.Element("testsuites", name="roharness gate", tests=str(len(rows)),
                        failures=str(n_fail), errors="0", time=f"{result['elapsed_s']:.3f}")
    suite = ET.SubElement(suites, "testsuite", name="roharness.gate", tests=str(len(rows)),
                          failures=str(n_fail), errors="0", skipped="0",
                          time=f"{result['elapsed_s']:.3f}")
    for r in rows:
        case = ET.SubElement(suite, "testcase",
                             classname=f"roharness.gate.{r['kind']}.{_short(r['scenario'])}",
                             name=f"check{r['index']}:{r['metric']}", time=f"{r['time_s']:.3f}")
        ET.SubElement(case, "system-out").text = (
            f"value {r['value']!r}, maximum {r['maximum']!r} (|value| <= maximum)")
        if not r["passed"]:
            fail = ET.SubElement(case, "failure", message=r["message"], type="regression")
            fail.text = r["message"]
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def write_junit(result: dict, path) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically."""
    return write_text_atomic(path, junit_xml(result))
