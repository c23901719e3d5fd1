"""CI regression gate: fixed-seed computations checked in two-sided bands around recorded values.

``roharness gate`` runs the computations of a thresholds TOML file (the built-in default is
``validation/gate_thresholds.toml``): fixed-seed round trips, a current-sheet crossing,
small Monte Carlo error budgets and occultation searches. Each is deterministic, so each
metric is compared with the value *recorded* when the file was last updated, in a band
``recorded - tol <= value <= recorded + tol``. A number that moves either way fails: a
regression, and also an improvement that nobody acknowledged (``roharness gate --update``
re-measures and rewrites the recorded values, printing old -> new for review). The gate
prints value, recorded value, band and PASS/FAIL per check, writes JUnit XML for CI and
exits 1 if any check fails, 2 on a bad thresholds file.

Thresholds file
---------------
One table per computation, named freely, holding its metrics::

    [uhf-roundtrip]
    kind = "roundtrip"           # roundtrip | sheet | budget | events
    scenario = "mex-tgo-uhf"     # built-in name, or a TOML path (relative to this file)
    seed = 0
    rel = 0.02                   # default band of the metrics below (relative to |recorded|)

    [uhf-roundtrip.metrics]
    ne_max_abs_error_over_peak = 8.71686e-05               # recorded value, table band
    m2_peak_altitude_error_km = { value = 9.3226e-04, abs = 1e-4 }  # own band

A metric is the recorded number (band from the table's ``rel``/``abs``) or an inline table
``{ value, rel, abs }`` (its own band, replacing the table's). Dotted keys name nested
metrics (``thermal.tn_rms_k = 0.19`` is the budget metric ``thermal.tn_rms_k``). The
tolerance is ``max(abs, rel * |recorded|)`` (``abs`` alone, ``rel`` alone, or ``rel`` with
an absolute floor for numbers near zero); ``minimum = recorded - tol``, ``maximum =
recorded + tol``. A band of 0 demands the exact value (counts).

Kinds, their keys and metrics (:data:`METRICS`):

* ``roundtrip`` (``scenario``, ``seed``, ``overrides``): one RO occultation,
  :func:`validation.roundtrip.run_roundtrip`; its numeric metrics (signed errors, e.g.
  ``m2_peak_altitude_error_km``, plus ``n_samples``, ``sza_deg``).
* ``sheet`` (``scenario``, ``seed``): one current-sheet crossing,
  :func:`validation.sheet.run_sheet_roundtrip`.
* ``budget`` (``scenario``, ``seed``, ``sources``, ``realisations``, ``overrides``,
  ``gradient_sza_deg``, default ``[]``: no SZA sweep): a Monte Carlo error budget,
  :func:`validation.budget.run_budget` in-process (``workers=0``); metrics are the
  summary's ``total_*``/``mc_total_*`` keys, ``SOURCE.KEY`` (one source's entry of
  ``per_source``) and ``floor.KEY`` (the clean retrieval's own error). With a current-sheet
  scenario, :func:`validation.sheet_budget.run_sheet_budget` (``run_budget`` dispatches):
  ``SOURCE.KEY`` for its sources and ``all`` (:data:`SHEET_BUDGET_SOURCE_METRICS`) and
  ``floor.KEY`` (the clean crossing, :data:`validation.sheet_budget.METRICS`).
* ``events`` (``tx``, ``rx``, ``start_utc``, ``stop_utc``, ``reference_altitude_km``,
  ``step_s``): the occultation search :func:`validation.events.search`; counts, the
  first event's times (seconds after ``start_utc``) and geometry, the lowest SZA.

``overrides`` changes scenario keys for this computation (``overrides.ionosphere.model =
"fallows2015"``); the result is checked like a scenario file.

A value that is not finite fails. A computation that raises (the retrieval failing on a
scenario) fails every check that uses it: the gate reports it as a regression, never
crashes on it. Each distinct computation runs once, however many checks read it.

The file is checked strictly before anything runs: an unknown or missing key, a bad type,
an unknown kind, metric or scenario, a metric without a band is a
:class:`retrieval.errors.RoharnessError` naming the file, the table and the key.
"""

from __future__ import annotations

import math
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import RoharnessError
from retrieval.fileio import write_text_atomic

# The thresholds file's schema and parsing (validation/gate_schema.py) and the --update
# rewriting (validation/gate_update.py) live in their own modules; every name is re-exported
# here, so ``from validation.gate import X`` works as before.
from validation.gate_schema import (
    BUDGET_FLOOR_METRICS,
    BUDGET_SOURCE_METRICS,
    BUDGET_TOTAL_METRICS,
    EVENTS_METRICS,
    METRICS,
    ROUNDTRIP_METRICS,
    SHEET_BUDGET_SOURCE_METRICS,
    SHEET_METRICS,
    Check,
    default_thresholds_path,
    load_thresholds,
    parse_thresholds,
    scenario_with_overrides,
)
from validation.gate_update import format_update, rewrite_recorded, update_thresholds

if TYPE_CHECKING:  # annotations only
    from collections.abc import Callable

    from validation.plugins import Retrieval

__all__ = [
    "BUDGET_FLOOR_METRICS",
    "BUDGET_SOURCE_METRICS",
    "BUDGET_TOTAL_METRICS",
    "EVENTS_METRICS",
    "METRICS",
    "ROUNDTRIP_METRICS",
    "SHEET_BUDGET_SOURCE_METRICS",
    "SHEET_METRICS",
    "Check",
    "compare_check",
    "compute",
    "default_thresholds_path",
    "format_table",
    "format_update",
    "junit_xml",
    "load_thresholds",
    "measure",
    "parse_thresholds",
    "rewrite_recorded",
    "run_gate",
    "scenario_with_overrides",
    "update_thresholds",
    "write_junit",
]


# --------------------------------------------------------------------------- computing
def _events_metrics(ds, start_utc) -> dict:
    import numpy as np

    from retrieval import spice

    et0 = spice.utc_to_et(start_utc)
    kind = ds.kind.values.astype(str) if ds.sizes["event"] else np.array([], str)
    sza = ds.sza_deg.values
    out = dict(n_events=int(ds.sizes["event"]), n_ingress=int((kind == "ingress").sum()),
               n_egress=int((kind == "egress").sum()),
               n_below_sza_45=int((sza < 45.0).sum()),
               min_sza_deg=float(np.min(sza)) if len(sza) else float("nan"))
    first = {k: float("nan") for k in EVENTS_METRICS if k.startswith("first_")}
    if ds.sizes["event"]:
        first.update(first_time_s=float(ds.et.values[0] - et0),
                     first_link_time_s=float(ds.et_link.values[0] - et0),
                     first_sza_deg=float(sza[0]), first_lat_deg=float(ds.lat_deg.values[0]),
                     first_lon_deg=float(ds.lon_deg.values[0]),
                     first_duration_s=float(ds.duration_s.values[0]))
    out.update(first)
    return out


def compute(kind, params, retrieval=None) -> dict:
    """Run one computation of the gate; return its metrics as a flat dict.

    ``params`` are a table's checked parameters (:attr:`Check.parameters`). ``retrieval``
    (a plug-in retrieval spec, :mod:`validation.plugins`) is passed to the round trip and
    the budget only when given, so the default is each function's own (the built-in
    retrieval). Budget summaries are flattened: ``per_source[s][k]`` becomes ``"s.k"``,
    ``floor[k]`` ``"floor.k"``.
    """
    extra = {} if retrieval is None else {"retrieval": retrieval}
    if kind == "roundtrip":
        from validation.roundtrip import run_roundtrip
        scn = scenario_with_overrides(params["scenario"], params.get("overrides"))
        return dict(run_roundtrip(scn, params.get("seed"), **extra)["metrics"])
    if kind == "sheet":
        from validation.sheet import run_sheet_roundtrip
        seed = params.get("seed")
        return dict(run_sheet_roundtrip(params["scenario"], seed=0 if seed is None else seed))
    if kind == "budget":
        from validation.budget import run_budget
        scn = scenario_with_overrides(params["scenario"], params.get("overrides"))
        summary = run_budget(scn, params.get("sources"), params.get("realisations"),
                             seed=params.get("seed"), workers=0, out_dir=None, progress=False,
                             gradient_sza_deg=tuple(params.get("gradient_sza_deg", ())),
                             **extra)
        flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
        for src, entry in summary.get("per_source", {}).items():
            for k, v in entry.items():
                flat[f"{src}.{k}"] = v
        for k, v in (summary.get("floor") or {}).items():
            flat[f"floor.{k}"] = v
        return flat
    if kind == "events":
        from validation.events import search
        ds = search(params["tx"], params["rx"], params["start_utc"], params["stop_utc"],
                    reference_altitude_km=params.get("reference_altitude_km", 200.0),
                    step_s=params.get("step_s", 60.0))
        return _events_metrics(ds, params["start_utc"])
    raise ValueError(f"unknown gate kind {kind!r}; known kinds: {', '.join(METRICS)}")


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _describe(chk: Check) -> str:
    p = chk.parameters
    if chk.kind == "events":
        text = f"{p['tx']} -> {p['rx']}, {p['start_utc']} .. {p['stop_utc']}"
    else:
        text = _short(p["scenario"])
        if p.get("seed") is not None:
            text += f", seed {p['seed']}"
        if p.get("overrides"):
            text += ", overrides " + ", ".join(f"{s}.{k}" for s, d in p["overrides"].items()
                                               for k in d)
    if chk.kind == "budget":
        text += (f", sources {','.join(p['sources']) if p.get('sources') else 'default'}"
                 f", realisations {p.get('realisations') or 'default'}")
    return f"[{chk.table}] {chk.kind} {text}"


def compare_check(chk: Check, value) -> tuple[bool, str]:
    """Whether a measured value is inside the check's two-sided band, and why not."""
    value = _as_float(value)
    if not math.isfinite(value):
        return False, f"{chk.metric} is {value!r}, not a finite number"
    if chk.minimum <= value <= chk.maximum:
        return True, ""
    side = "above" if value > chk.maximum else "below"
    change = ""
    if chk.recorded != 0:
        change = f", {100.0 * (value / chk.recorded - 1.0):+.3g} % from recorded"
    return False, (f"{chk.metric} = {value:.6g} is {side} the band "
                   f"[{chk.minimum:.6g}, {chk.maximum:.6g}] around the recorded "
                   f"{chk.recorded:.6g}{change} ([{chk.table}]); if the change is intended, "
                   "re-record with roharness gate --update")


def measure(checks: list[Check], log=None, retrieval=None) -> dict:
    """Run each distinct computation of ``checks`` once.

    Returns ``{run_key: (metrics | None, error text | None, seconds)}``.
    """
    results: dict[tuple, tuple] = {}
    for chk in checks:
        if chk.run_key in results:
            continue
        if log:
            log(f"gate: {_describe(chk)}")
        t1 = time.perf_counter()
        try:
            metrics, error = compute(chk.kind, chk.parameters, retrieval=retrieval), None
        except Exception as exc:  # a failing retrieval is a regression, not a crash
            metrics = None
            error = f"{type(exc).__name__}: {exc}"
            frames = traceback.extract_tb(exc.__traceback__)
            if not isinstance(exc, RoharnessError) and frames:  # an internal fault: where
                error += f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})"
        results[chk.run_key] = (metrics, error, time.perf_counter() - t1)
    return results


def run_gate(checks: list[Check], log: Callable[[str], None] | None = None,
             retrieval: str | Retrieval | None = None) -> dict:
    """Run every check (each computation once) and compare it with its band.

    Parameters
    ----------
    checks : list of Check
        From :func:`load_thresholds`.
    log : callable, optional
        Called with one line of text before each computation (progress).
    retrieval : optional
        A plug-in retrieval (:mod:`validation.plugins`) for the round trips and budgets;
        default the built-in one.

    Returns
    -------
    dict
        ``checks``: one dict per check (``index``, ``name``, ``table``, ``kind``,
        ``scenario``, ``metric``, ``seed``, ``value``, ``recorded``, ``minimum``,
        ``maximum``, ``passed``, ``message``, ``time_s``); ``passed`` (all checks passed);
        ``elapsed_s``.
    """
    t0 = time.perf_counter()
    results = measure(checks, log=log, retrieval=retrieval)
    rows = []
    seen = set()
    for chk in checks:
        metrics, error, seconds = results[chk.run_key]
        time_s = 0.0 if chk.run_key in seen else seconds
        seen.add(chk.run_key)
        value = float("nan")
        if metrics is None:
            passed, message = False, f"the {chk.kind} computation [{chk.table}] failed: {error}"
        elif chk.metric not in metrics:
            passed = False
            message = f"the {chk.kind} result [{chk.table}] has no metric '{chk.metric}'"
        else:
            value = _as_float(metrics[chk.metric])
            passed, message = compare_check(chk, metrics[chk.metric])
        rows.append(dict(index=chk.index, name=chk.name, table=chk.table, kind=chk.kind,
                         scenario=chk.scenario, metric=chk.metric, seed=chk.seed,
                         value=value, recorded=chk.recorded, minimum=chk.minimum,
                         maximum=chk.maximum, rel=chk.rel, abs=chk.abs, passed=passed,
                         message=message, time_s=time_s))
    return dict(checks=rows, passed=all(r["passed"] for r in rows),
                elapsed_s=time.perf_counter() - t0)


# --------------------------------------------------------------------------- output
def _short(scenario: str) -> str:
    return Path(scenario).name if ("/" in scenario or "\\" in scenario) else scenario


def format_table(result: dict) -> str:
    """The human table: check, metric, value, recorded, band, PASS/FAIL."""
    head = ("table", "metric", "value", "recorded", "band", "result")
    lines = [head]
    for r in result["checks"]:
        tol = max(r["maximum"] - r["recorded"], 0.0)
        lines.append((r["table"], r["metric"], f"{r['value']:.6g}", f"{r['recorded']:.6g}",
                      f"+-{tol:.2g}", "PASS" if r["passed"] else "FAIL"))
    widths = [max(len(row[j]) for row in lines) for j in range(len(head))]
    out = ["  ".join(c.ljust(w) if j < 2 or j == 5 else c.rjust(w)
                     for j, (c, w) in enumerate(zip(row, widths))).rstrip()
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    for r in result["checks"]:
        if not r["passed"]:
            out.append(f"FAIL {r['name']}: {r['message']}")
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
        case = ET.SubElement(suite, "testcase", classname=f"roharness.gate.{r['table']}",
                             name=r["metric"], time=f"{r['time_s']:.3f}")
        ET.SubElement(case, "system-out").text = (
            f"value {r['value']!r}, recorded {r['recorded']!r}, band "
            f"[{r['minimum']!r}, {r['maximum']!r}]")
        if not r["passed"]:
            fail = ET.SubElement(case, "failure", message=r["message"], type="regression")
            fail.text = r["message"]
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def write_junit(result: dict, path) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically."""
    return write_text_atomic(path, junit_xml(result))
