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

import copy
import json
import math
import re
import time
import tomllib
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import RoharnessError
from retrieval.fileio import write_text_atomic

if TYPE_CHECKING:  # annotations only
    import os
    from collections.abc import Callable

    from validation.plugins import Retrieval

#: Numeric metrics of a round trip (:func:`validation.roundtrip.compare`, plus the number of
#: samples and the event's SZA, which the geometry decides).
ROUNDTRIP_METRICS = (
    "ne_max_abs_error_over_peak",
    "m2_peak_altitude_error_km",
    "m2_peak_density_rel_error",
    "m1_peak_altitude_error_km",
    "m1_peak_density_rel_error",
    "neutral_temperature_error_k",
    "tec_rel_error",
    "n_samples",
    "sza_deg",
)

#: Numeric metrics of a current-sheet round trip (:func:`validation.sheet.compare_sheet`).
SHEET_METRICS = (
    "normal_angle_error_deg",
    "l_angle_error_deg",
    "l_angle_error_mva_deg",
    "m_angle_error_deg",
    "guide_field_error_nt",
    "lag_error_s",
    "escape_flux_rel_error",
    "half_thickness_rel_error",
    "alfven_speed_rel_error",
    "outflow_rel_error",
    "eigenvalue_ratio_12",
    "eigenvalue_ratio_23",
    "imf_correlation",
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
    "realisations_ok",
    "failed",
)

#: Keys of the budget summary's ``floor`` (metric ``floor.KEY``).
BUDGET_FLOOR_METRICS = BUDGET_SOURCE_METRICS[:6] + ("failed",)

#: Top-level metrics of a budget summary: root-sum-square of the physical sources
#: (``total_*``), all physical sources on at once (``mc_total_*``), failed realisations of
#: that run.
BUDGET_TOTAL_METRICS = tuple(
    f"{prefix}_{key}" for prefix in ("total", "mc_total") for key in BUDGET_SOURCE_METRICS[:6]
) + ("mc_total_failed",)

#: Metrics of an occultation search: counts, the lowest SZA, and the first event's times
#: (tangent point ``first_time_s``, link reference end ``first_link_time_s``, seconds after
#: ``start_utc``), SZA, latitude, longitude and reference-to-0-km duration.
EVENTS_METRICS = (
    "n_events", "n_ingress", "n_egress", "n_below_sza_45", "min_sza_deg",
    "first_time_s", "first_link_time_s", "first_sza_deg", "first_lat_deg",
    "first_lon_deg", "first_duration_s",
)

#: Keys of one source's entry of a current-sheet budget (``SOURCE.KEY``, ``all.KEY``; see
#: :func:`validation.sheet_budget.summarise`).
SHEET_BUDGET_SOURCE_METRICS = (
    "normal_angle_rms_deg", "l_angle_rms_deg", "m_angle_rms_deg", "normal_constrained_rms_deg",
    "guide_field_rms_nt", "guide_field_bias_nt", "outflow_rms_m_s", "lag_rms_s",
    "escape_flux_rel_rms", "eigenvalue_ratio_12_median", "eigenvalue_ratio_23_median",
    "normal_predicted_median_deg", "sonnerup_scheible_ratio", "realisations_ok", "failed",
)

#: kind -> metric names it accepts (budget also accepts ``SOURCE.KEY`` and ``floor.KEY``).
METRICS = {
    "roundtrip": ROUNDTRIP_METRICS,
    "sheet": SHEET_METRICS,
    "budget": BUDGET_TOTAL_METRICS,
    "events": EVENTS_METRICS,
}

# key -> type, per kind; (required, optional)
_COMMON_OPTIONAL = {"rel": float, "abs": float}
_KEYS = {
    "roundtrip": ({"scenario": str}, {"seed": int, "overrides": dict}),
    "sheet": ({"scenario": str}, {"seed": int}),
    "budget": ({"scenario": str}, {"seed": int, "sources": list, "realisations": int,
                                   "overrides": dict, "gradient_sza_deg": "numbers"}),
    "events": ({"tx": str, "rx": str, "start_utc": str, "stop_utc": str},
               {"reference_altitude_km": float, "step_s": float}),
}
_BAND_KEYS = ("value", "rel", "abs")


def default_thresholds_path() -> Path:
    """The built-in thresholds file shipped with the package."""
    return Path(str(resources.files("validation") / "gate_thresholds.toml"))


@dataclass(frozen=True)
class Check:
    """One line of the gate: a metric of one computation, its recorded value and band."""

    index: int  #: 1-based position in the file (tables in order, metrics in order)
    table: str  #: name of the computation's table
    kind: str
    metric: str
    recorded: float
    rel: float = 0.0
    abs: float = 0.0
    params: str = "{}"  #: the computation's parameters, canonical JSON (see :func:`compute`)

    @property
    def name(self) -> str:
        """``table.metric``, unique in a file."""
        return f"{self.table}.{self.metric}"

    @property
    def parameters(self) -> dict:
        return json.loads(self.params)

    @property
    def scenario(self) -> str:
        p = self.parameters
        return p.get("scenario") or f"{p.get('tx')}->{p.get('rx')}"

    @property
    def seed(self):
        return self.parameters.get("seed")

    @property
    def tolerance(self) -> float:
        return max(self.abs, self.rel * abs(self.recorded))

    @property
    def minimum(self) -> float:
        return self.recorded - self.tolerance

    @property
    def maximum(self) -> float:
        return self.recorded + self.tolerance

    @property
    def run_key(self) -> tuple:
        """Checks with the same key share one computation."""
        return (self.kind, self.params)


# --------------------------------------------------------------------------- parsing
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
        return list(value)
    if typ == "numbers":
        if (not isinstance(value, list)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in value)):
            raise RoharnessError(f"{where}: key '{key}' must be a list of numbers, "
                                 f"got {value!r}")
        return [float(v) for v in value]
    if typ is dict:
        if not isinstance(value, dict) or not value:
            raise RoharnessError(f"{where}: key '{key}' must be a non-empty table, "
                                 f"got {value!r}")
        return value
    raise AssertionError(typ)  # pragma: no cover


def _ro_names():
    from synth.scenario import builtin_names
    return list(builtin_names("ro"))


def _sheet_names():
    from synth.sheet_scenario import BUILTIN_SHEET_SCENARIOS
    return list(BUILTIN_SHEET_SCENARIOS)


def _resolve_scenario(where, kind, text, base_dir):
    """A built-in name (kept as is) or an existing file (made absolute); load it to check."""
    from synth.scenario import load_scenario
    from synth.sheet_scenario import load_sheet_scenario

    sheet = kind == "sheet" or (kind == "budget" and _is_sheet(text, base_dir))
    builtins = _sheet_names() if sheet else _ro_names()
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
        (load_sheet_scenario if sheet else load_scenario)(resolved)
    except RoharnessError as exc:
        raise RoharnessError(f"{where}: key 'scenario': {str(exc).rstrip('.')}") from None
    return resolved


def scenario_with_overrides(scenario, overrides=None):
    """The RO scenario ``scenario`` (name or path) with ``{section: {key: value}}`` applied.

    The result is checked like a scenario file (unknown sections or keys, bad values raise
    :class:`retrieval.errors.RoharnessError`). Without overrides the name is returned.
    """
    if not overrides:
        return scenario
    from synth.scenario import load_scenario, parse_scenario
    from validation.campaign import scenario_text

    scn = load_scenario(scenario)
    sections = copy.deepcopy(scn.sections)
    for sec, keys in overrides.items():
        if not isinstance(keys, dict):
            raise RoharnessError(f"override {sec!r} must be a table of keys "
                                 f"({sec}.KEY = VALUE), got {keys!r}")
        if sec not in sections or sec == "":
            known = ", ".join(s for s in sections if s)
            raise RoharnessError(f"unknown scenario section [{sec}]; known sections: {known}")
        sections[sec].update(copy.deepcopy(keys))
    return parse_scenario(scenario_text(sections), f"{scn.name} with overrides")


def _check_overrides(where, scenario, overrides):
    try:
        scenario_with_overrides(scenario, overrides)
    except RoharnessError as exc:
        raise RoharnessError(f"{where}: key 'overrides': {str(exc).rstrip('.')}") from None


def _is_sheet(text, base_dir=None) -> bool:
    """Whether a budget table's scenario is a current-sheet scenario."""
    from validation.sheet_budget import is_sheet_scenario

    path = Path(text)
    if not path.is_absolute() and base_dir is not None and (base_dir / path).is_file():
        path = base_dir / path
    return is_sheet_scenario(text) or is_sheet_scenario(path)


def _check_sheet_budget_metric(where, key, metric, sources):
    from synth.sheet_scenario import BUDGET_SOURCES
    from validation.sheet_budget import METRICS as FLOOR_METRICS

    source, dot, sub = metric.partition(".")
    if dot and source == "floor" and sub in FLOOR_METRICS:
        return
    if dot and sub in SHEET_BUDGET_SOURCE_METRICS:
        known = [*BUDGET_SOURCES, "all"]
        if source not in known:
            raise RoharnessError(f"{where}: key '{key}' names {source!r}, which is not a "
                                 f"current-sheet error source; known: {', '.join(known)}")
        if sources is not None and source not in [*sources, "all"]:
            raise RoharnessError(f"{where}: key '{key}' names source {source!r}, which is "
                                 f"not in this table's 'sources' ({', '.join(sources)})")
        return
    raise RoharnessError(
        f"{where}: key '{key}' is not a current-sheet budget metric; expected SOURCE.KEY "
        f"with KEY one of {', '.join(SHEET_BUDGET_SOURCE_METRICS)}, or floor.KEY with KEY "
        f"one of {', '.join(FLOOR_METRICS)}")


def _check_budget_metric(where, key, metric, sources):
    if metric in BUDGET_TOTAL_METRICS:
        return
    source, dot, sub = metric.partition(".")
    if dot and source == "floor" and sub in BUDGET_FLOOR_METRICS:
        return
    if dot and sub in BUDGET_SOURCE_METRICS:
        from synth.error_sources import SOURCES
        known = list(SOURCES)
        if source not in known:
            raise RoharnessError(f"{where}: key '{key}' names {source!r}, which is not an "
                                 f"error source; known sources: {', '.join(known)}")
        if sources is not None and source not in sources:
            raise RoharnessError(f"{where}: key '{key}' names source {source!r}, which is "
                                 f"not in this table's 'sources' ({', '.join(sources)})")
        return
    raise RoharnessError(
        f"{where}: key '{key}' is not a budget metric; expected one of "
        f"{', '.join(BUDGET_TOTAL_METRICS)}, SOURCE.KEY with KEY one of "
        f"{', '.join(BUDGET_SOURCE_METRICS)}, or floor.KEY")


def _flatten_metrics(where, metrics, prefix=""):
    """``{"a": {"b": spec}}`` -> ``[("a.b", spec)]``: a table with ``value`` is a band spec,
    any other table is a namespace of dotted metric names."""
    out = []
    for name, spec in metrics.items():
        full = f"{prefix}{name}"
        if isinstance(spec, dict) and "value" not in spec:
            if not spec:
                raise RoharnessError(f"{where}: key 'metrics.{full}' is an empty table; "
                                     "expected a number or { value = ..., rel/abs = ... }")
            out += _flatten_metrics(where, spec, f"{full}.")
        else:
            out.append((full, spec))
    return out


def _metric_band(where, full, spec, default):
    """(recorded, rel, abs) of one metric entry."""
    key = f"metrics.{full}"
    if isinstance(spec, dict):
        for k in spec:
            if k not in _BAND_KEYS:
                raise RoharnessError(f"{where}: unknown key '{key}.{k}'; a metric's table "
                                     f"holds {', '.join(_BAND_KEYS)}")
        band = {k: _typed(where, f"{key}.{k}", float, spec[k]) for k in ("rel", "abs")
                if k in spec}
        value = spec["value"]
        vkey = f"{key}.value"
    else:
        band, value, vkey = dict(default), spec, key
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RoharnessError(f"{where}: key '{vkey}' must be the recorded number, "
                             f"got {value!r}")
    if not math.isfinite(value):
        raise RoharnessError(f"{where}: key '{vkey}' must be a finite recorded value, "
                             f"got {value!r}")
    if not band:
        raise RoharnessError(f"{where}: key '{key}' has no band; give rel and/or abs on the "
                             "metric ({ value = ..., rel = ... }) or on the table")
    return float(value), band.get("rel", 0.0), band.get("abs", 0.0)


def _parse_table(where, name, table, base_dir):
    """The checked parameters and metric list of one computation table."""
    if not isinstance(table, dict):
        raise RoharnessError(f"{where} must be a table ([{name}]), got {table!r}")
    if "kind" not in table:
        raise RoharnessError(f"{where}: missing key 'kind'")
    kind = _typed(where, "kind", str, table["kind"])
    if kind not in _KEYS:
        raise RoharnessError(f"{where}: key 'kind' is {kind!r}; expected one of "
                             f"{', '.join(_KEYS)}")
    required, optional = _KEYS[kind]
    known = ["kind", *required, *optional, *_COMMON_OPTIONAL, "metrics"]
    for key in table:
        if key not in known:
            extra = ""
            if any(key in opt for _, opt in _KEYS.values()) or any(
                    key in req for req, _ in _KEYS.values()):
                extra = f" (it is not used with kind = '{kind}')"
            raise RoharnessError(f"{where}: unknown key '{key}'{extra}; known keys for kind "
                                 f"'{kind}': {', '.join(known)}")
    for key in [*required, "metrics"]:
        if key not in table:
            raise RoharnessError(f"{where}: missing key '{key}'")
    params = {k: _typed(where, k, t, table[k])
              for k, t in {**required, **optional}.items() if k in table}
    default = {k: _typed(where, k, float, table[k]) for k in _COMMON_OPTIONAL if k in table}
    if kind == "budget":
        if params.get("realisations") == 0:
            raise RoharnessError(f"{where}: key 'realisations' must be >= 1")
        params.setdefault("gradient_sza_deg", [])
    if "scenario" in params:
        params["scenario"] = _resolve_scenario(where, kind, params["scenario"], base_dir)
    if "overrides" in params:
        _check_overrides(where, params["scenario"], params["overrides"])
    if kind == "events":
        from retrieval import spice
        for key in ("start_utc", "stop_utc"):
            try:
                spice.utc_to_et(params[key])
            except RoharnessError as exc:
                raise RoharnessError(f"{where}: key '{key}': {str(exc).rstrip('.')}") from None
        if not spice.utc_to_et(params["stop_utc"]) > spice.utc_to_et(params["start_utc"]):
            raise RoharnessError(f"{where}: key 'stop_utc' must be after 'start_utc'")
        if params.get("reference_altitude_km", 1.0) <= 0 or params.get("step_s", 1.0) <= 0:
            raise RoharnessError(f"{where}: keys 'reference_altitude_km' and 'step_s' must "
                                 "be positive")
    metrics = table["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise RoharnessError(f"{where}: key 'metrics' must be a non-empty table "
                             f"([{name}.metrics]), got {metrics!r}")
    entries = []
    for full, spec in _flatten_metrics(where, metrics):
        key = f"metrics.{full}"
        if kind == "budget" and _is_sheet(params["scenario"]):
            _check_sheet_budget_metric(where, key, full, params.get("sources"))
        elif kind == "budget":
            _check_budget_metric(where, key, full, params.get("sources"))
        elif full not in METRICS[kind]:
            raise RoharnessError(f"{where}: key '{key}' is not a {kind} metric; expected one "
                                 f"of {', '.join(METRICS[kind])}")
        entries.append((full, *_metric_band(where, full, spec, default)))
    return kind, params, entries


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
        One sentence naming the file, the table and the key.
    """
    where0 = f"thresholds file {source}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoharnessError(f"{where0} is not valid TOML: {exc}") from None
    if not data:
        raise RoharnessError(f"{where0}: expected at least one computation table "
                             "([NAME] with kind and metrics)")
    base_dir = Path(base_dir) if base_dir is not None else None
    checks = []
    for name, table in data.items():
        where = f"{where0} table [{name}]"
        if not isinstance(table, dict):
            raise RoharnessError(f"{where0}: top-level key '{name}' is not a table; expected "
                                 "only computation tables ([NAME] with kind and metrics)")
        kind, params, entries = _parse_table(where, name, table, base_dir)
        blob = json.dumps(params, sort_keys=True)
        for metric, recorded, rel, tol_abs in entries:
            checks.append(Check(index=len(checks) + 1, table=name, kind=kind, metric=metric,
                                recorded=recorded, rel=rel, abs=tol_abs, params=blob))
    return checks


def load_thresholds(path: str | os.PathLike | None = None) -> list[Check]:
    """Read a thresholds file (default: the built-in :func:`default_thresholds_path`)."""
    path = Path(path) if path is not None else default_thresholds_path()
    text = _read(path)
    return parse_thresholds(text, str(path), base_dir=path.parent)


def _read(path: Path) -> str:
    if not path.is_file():
        raise RoharnessError(f"thresholds file '{path}' does not exist")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RoharnessError(f"thresholds file '{path}' cannot be read: {exc}") from None


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


# --------------------------------------------------------------------------- updating
_NUMBER = r"[+-]?(?:nan|inf|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)"
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"' ]+?)(\s*=\s*)(\{\s*value\s*=\s*)?(" + _NUMBER
                     + r")(.*)$")


def _key_path(text: str) -> tuple[str, ...]:
    """A TOML key or table header as its parts (bare, quoted, dotted)."""
    parts, cur, quote = [], "", None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return tuple(parts)


def _format_value(new, old_text: str, tol: float) -> str:
    """The recorded value as TOML: an integer for counts, else the fewest significant digits
    (at least 7) whose rounding is below 1 % of the band (all 17 for a band of 0)."""
    if float(new).is_integer() and abs(new) < 1e15 and not re.search(r"[.eEna]", old_text):
        return str(int(new))
    text = repr(float(new))
    for digits in range(7, 17):
        short = f"{float(new):.{digits}g}"
        if tol > 0 and abs(float(short) - new) <= 0.01 * tol:
            text = short
            break
    if not re.search(r"[.eEn]", text):
        text += ".0"
    return text


def rewrite_recorded(text: str, new_values: dict[tuple[str, str], float]) -> tuple[str, list]:
    """Replace the recorded values in thresholds text, keeping everything else.

    ``new_values`` maps ``(table, metric)`` to the new recorded value and its tolerance
    (which sets the digits written, :func:`_format_value`). Each metric must be
    written on one line in its table's ``[TABLE.metrics]`` section (``metric = number`` or
    ``metric = { value = number, ... }``), as the files this project writes are.

    Returns
    -------
    text : str
    missing : list of (table, metric)
        Metrics whose line was not found (left unchanged).
    """
    lines = text.splitlines(keepends=True)
    section: tuple[str, ...] = ()
    done = set()
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("[["):
            section = _key_path(m.group(1))
            continue
        if len(section) != 2 or section[1] != "metrics":
            continue
        m = _ASSIGN.match(line.rstrip("\n"))
        if not m:
            continue
        metric = ".".join(_key_path(m.group(2)))
        key = (section[0], metric)
        if key not in new_values:
            continue
        value, tol = new_values[key]
        done.add(key)
        if float(m.group(5).replace("_", "")) == value:
            continue  # unchanged: keep the text as written
        new = _format_value(value, m.group(5), tol)
        eol = line[len(line.rstrip("\n")):]
        lines[i] = (m.group(1) + m.group(2) + m.group(3) + (m.group(4) or "") + new
                    + m.group(6) + eol)
    return "".join(lines), [k for k in new_values if k not in done]


def update_thresholds(path=None, log=None, retrieval=None) -> dict:
    """Re-measure every computation of a thresholds file and rewrite its recorded values.

    Bands, comments and layout are kept; only the recorded numbers change. The file is
    written atomically (:func:`retrieval.fileio.write_text_atomic`), and only if every
    value could be measured and rewritten.

    Returns
    -------
    dict
        ``path``; ``changes``: one dict per check (``name``, ``table``, ``metric``, ``old``,
        ``new``, ``changed``); ``failed``: checks that could not be measured (with
        ``message``); ``written`` (bool); ``elapsed_s``.
    """
    t0 = time.perf_counter()
    path = Path(path) if path is not None else default_thresholds_path()
    text = _read(path)
    checks = parse_thresholds(text, str(path), base_dir=path.parent)
    results = measure(checks, log=log, retrieval=retrieval)
    changes, failed, new_values = [], [], {}
    for chk in checks:
        metrics, error, _ = results[chk.run_key]
        value = float("nan") if metrics is None else _as_float(metrics.get(chk.metric))
        if not math.isfinite(value):
            why = (f"the {chk.kind} computation failed: {error}" if metrics is None
                   else f"{chk.metric} is {metrics.get(chk.metric)!r}, not a finite number")
            failed.append(dict(name=chk.name, table=chk.table, metric=chk.metric, message=why))
            continue
        new_values[(chk.table, chk.metric)] = (value, max(chk.abs, chk.rel * abs(value)))
        changes.append(dict(name=chk.name, table=chk.table, metric=chk.metric,
                            old=chk.recorded, new=value))
    new_text, missing = rewrite_recorded(text, new_values)
    for table, metric in missing:
        failed.append(dict(name=f"{table}.{metric}", table=table, metric=metric,
                           message=f"no line '{metric} = ...' under [{table}.metrics] to "
                           "rewrite; write each metric on its own line there"))
    written = False
    if not failed:
        reparsed = {c.name: c.recorded for c in parse_thresholds(new_text, str(path),
                                                                   base_dir=path.parent)}
        for ch in changes:
            ch["new"] = reparsed[ch["name"]]  # the value as written (7 digits)
            ch["changed"] = ch["new"] != ch["old"]
        if new_text != text:
            write_text_atomic(path, new_text)
        written = True
    else:
        for ch in changes:
            ch["changed"] = ch["new"] != ch["old"]
    return dict(path=str(path), changes=changes, failed=failed, written=written,
                elapsed_s=time.perf_counter() - t0)


def format_update(result: dict) -> str:
    """The human diff of :func:`update_thresholds`: ``old -> new`` per changed value."""
    out = []
    for ch in result["changes"]:
        if not ch["changed"]:
            continue
        rel = ""
        if ch["old"] != 0:
            rel = f" ({100.0 * (ch['new'] / ch['old'] - 1.0):+.3g} %)"
        out.append(f"{ch['name']}: {ch['old']:.7g} -> {ch['new']:.7g}{rel}")
    for f in result["failed"]:
        out.append(f"NOT UPDATED {f['name']}: {f['message']}")
    n_changed = sum(ch["changed"] for ch in result["changes"])
    n_same = len(result["changes"]) - n_changed
    if result["written"]:
        out.append(f"gate --update: {n_changed} recorded values changed, {n_same} unchanged; "
                   f"wrote {result['path']} (review the diff before committing)")
    else:
        out.append(f"gate --update: {len(result['failed'])} values could not be measured; "
                   f"{result['path']} left unchanged")
    return "\n".join(out)


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
