"""The gate's thresholds file: metric names per kind, :class:`Check`, strict parsing.

The file's format is documented in :mod:`validation.gate`, which re-exports every name here
(``from validation.gate import load_thresholds`` keeps working); running, comparing and
formatting the checks live there, rewriting recorded values (``--update``) in
:mod:`validation.gate_update`.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    import os

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
