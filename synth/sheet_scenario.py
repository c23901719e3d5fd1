"""Scenarios for synthetic current-sheet crossings (TOML, read with :mod:`tomllib`).

A sheet scenario is a TOML file with the tables ``[sheet]``, ``[crossing]``,
``[magnetometer]``, ``[ions]``, ``[imf]`` and ``[analysis]`` and the top-level keys ``name``
and ``description``. Every key is checked: an unknown key or a bad value raises
:class:`retrieval.errors.ScenarioError` with one sentence naming the key. Built-in
scenarios live next to this module in ``scenarios/NAME.toml``; the built-in
``mars-2024-11-07`` documents every key.

This is a reader for sheet scenarios only; the radio-occultation scenarios have their own.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from pathlib import Path

import numpy as np

from synth.errors import ScenarioError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
#: Names of the built-in sheet scenarios.
BUILTIN_SHEET_SCENARIOS = ("mars-2024-11-07",)

_POS = "positive"
_NONNEG = "non-negative"
_ANY = "finite"

# key -> (kind, constraint, default). Default None means required.
_SCHEMA = {
    "sheet": {
        "l_mso": ("vec3", "unit", None),
        "n_mso": ("vec3", "unit", None),
        "b0_nt": ("float", _POS, "absent"),
        "alfven_speed_m_s": ("float", _POS, "absent"),
        "guide_field_nt": ("float", _ANY, 0.0),
        "normal_field_nt": ("float", _ANY, 0.0),
        "half_thickness_km": ("float", _POS, None),
        "hall_field_nt": ("float", _ANY, 0.0),
        "hall_length_km": ("float", _POS, None),
        "hall_width_km": ("float", _POS, "absent"),
        "temperature_k": ("float", _POS, None),
        "background_density_m3": ("float", _POS, None),
        "ion_mass_u": ("float", _POS, 16.0),
        "outflow_speed_m_s": ("float", _NONNEG, 0.0),
        "background_flow_mso_m_s": ("vec3", _ANY, [0.0, 0.0, 0.0]),
    },
    "crossing": {
        "center_utc": ("str", "utc", None),
        "center_mso_km": ("vec3", _ANY, [0.0, 0.0, 0.0]),
        "speed_m_s": ("float", _POS, None),
        "angle_to_normal_deg": ("float", "angle90", None),
        "azimuth_deg": ("float", _ANY, 0.0),
        "offset_l_km": ("float", _ANY, 0.0),
        "offset_m_km": ("float", _ANY, 0.0),
        "span_s": ("float", _POS, 180.0),
    },
    "magnetometer": {
        "rate_hz": ("float", _POS, 32.0),
        "noise_nt": ("float", _NONNEG, 0.0),
        "correlation_time_s": ("float", _NONNEG, 0.0),
        "offset_nt": ("vec3", _ANY, [0.0, 0.0, 0.0]),
    },
    "ions": {
        "cadence_s": ("float", _POS, 4.0),
        "density_noise_rel": ("float", _NONNEG, 0.0),
        "velocity_noise_m_s": ("float", _NONNEG, 0.0),
    },
    "imf": {
        "span_s": ("float", _POS, 1800.0),
        "cadence_s": ("float", _POS, 1.0),
        "magnitude_nt": ("float", _POS, 3.0),
        "cone_angle_deg": ("float", "angle180", 90.0),
        "clock_start_deg": ("float", _ANY, None),
        "clock_rotation_deg": ("float", _ANY, None),
        "rotation_time_s": ("float", _NONNEG, None),
        "rotation_duration_s": ("float", _POS, 300.0),
        "fluctuation_deg": ("float", _NONNEG, 0.0),
        "fluctuation_time_s": ("float", _POS, 60.0),
        "upstream_noise_nt": ("float", _NONNEG, 0.0),
        "lag_s": ("float", _NONNEG, None),
        "draping_gain": ("float", _POS, 1.0),
        "draping_bx_nt": ("float", _ANY, 0.0),
        "downstream_noise_nt": ("float", _NONNEG, 0.0),
        "downstream_noise_time_s": ("float", _NONNEG, 0.0),
    },
    "analysis": {
        "window_utc": ("pair_utc", "utc", None),
        "max_lag_s": ("float", _POS, 600.0),
    },
}
_TOP = {"name": ("str", "", None), "description": ("str", "", "")}


def _where(source, table, key):
    return f"key '{table}.{key}' of sheet scenario {source}" if table else \
        f"key '{key}' of sheet scenario {source}"


def _check_utc(text, where):
    try:
        np.datetime64(text.rstrip("Z"), "ns")
    except (ValueError, TypeError):
        raise ScenarioError(f"{where} is {text!r}; expected an ISO UTC time such as "
                            "'2024-11-07T02:19:10'.") from None


def _value(kind, rule, value, where):
    if kind == "str":
        if not isinstance(value, str):
            raise ScenarioError(f"{where} is {value!r}; expected a string.")
        if rule == "utc":
            _check_utc(value, where)
        return value
    if kind == "pair_utc":
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise ScenarioError(f"{where} is {value!r}; expected two ISO UTC time strings [start, end].")
        for v in value:
            _check_utc(v, where)
        if np.datetime64(value[1].rstrip("Z")) <= np.datetime64(value[0].rstrip("Z")):
            raise ScenarioError(f"{where} is {value!r}; expected the start before the end.")
        return list(value)
    if kind == "vec3":
        if not (isinstance(value, list) and len(value) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                and all(math.isfinite(v) for v in value)):
            raise ScenarioError(f"{where} is {value!r}; expected a list of three finite numbers.")
        value = [float(v) for v in value]
        if rule == "unit" and math.hypot(*value) < 1e-6:
            raise ScenarioError(f"{where} is {value!r}; expected a non-zero direction vector.")
        return value
    # float
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScenarioError(f"{where} is {value!r}; expected a finite number.")
    value = float(value)
    if rule == _POS and not value > 0:
        raise ScenarioError(f"{where} is {value!r}; expected a positive number.")
    if rule == _NONNEG and value < 0:
        raise ScenarioError(f"{where} is {value!r}; expected a non-negative number.")
    if rule == "angle90" and not 0.0 <= value < 90.0:
        raise ScenarioError(f"{where} is {value!r}; expected an angle in [0, 90) degrees.")
    if rule == "angle180" and not 0.0 <= value <= 180.0:
        raise ScenarioError(f"{where} is {value!r}; expected an angle in [0, 180] degrees.")
    return value


def parse_sheet_scenario(data: dict, source: str = "<dict>") -> dict:
    """Validate a sheet-scenario mapping and fill defaults.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    source : str
        Where it came from (used in error messages).

    Returns
    -------
    dict
        Nested dict ``{table: {key: value}}`` plus ``name``, ``description``.
    """
    out = {}
    for key in data:  # unknown keys first: a misspelt key explains a "missing" one
        if key not in _TOP and key not in _SCHEMA:
            known = ", ".join(sorted(list(_TOP) + list(_SCHEMA)))
            raise ScenarioError(f"unknown key '{key}' in sheet scenario {source}; expected one of {known}.")
        if key in _SCHEMA and isinstance(data[key], dict):
            for sub in data[key]:
                if sub not in _SCHEMA[key]:
                    raise ScenarioError(
                        f"unknown key '{key}.{sub}' in sheet scenario {source}; expected one of "
                        f"{', '.join(sorted(_SCHEMA[key]))}."
                    )
    for key, (kind, rule, default) in _TOP.items():
        if key not in data:
            if default is None:
                raise ScenarioError(f"sheet scenario {source} lacks the required key '{key}'.")
            out[key] = default
        else:
            out[key] = _value(kind, rule, data[key], _where(source, "", key))
    for table, schema in _SCHEMA.items():
        given = data.get(table, {})
        if not isinstance(given, dict):
            raise ScenarioError(f"key '{table}' of sheet scenario {source} must be a table [{table}].")
        for key in given:
            if key not in schema:
                raise ScenarioError(
                    f"unknown key '{table}.{key}' in sheet scenario {source}; expected one of "
                    f"{', '.join(sorted(schema))}."
                )
        section = {}
        for key, (kind, rule, default) in schema.items():
            if key in given:
                section[key] = _value(kind, rule, given[key], _where(source, table, key))
            elif default is None:
                raise ScenarioError(f"sheet scenario {source} lacks the required key '{table}.{key}'.")
            elif default != "absent":
                section[key] = default
        out[table] = section
    sheet = out["sheet"]
    if ("b0_nt" in sheet) == ("alfven_speed_m_s" in sheet):
        raise ScenarioError(
            f"sheet scenario {source} must give exactly one of 'sheet.b0_nt' and "
            "'sheet.alfven_speed_m_s' (the lobe field or the Alfven speed that fixes it)."
        )
    l_vec, n_vec = sheet["l_mso"], sheet["n_mso"]
    cosang = abs(sum(a * b for a, b in zip(l_vec, n_vec))) / (math.hypot(*l_vec) * math.hypot(*n_vec))
    if cosang > 0.2:
        raise ScenarioError(
            f"keys 'sheet.l_mso' and 'sheet.n_mso' of sheet scenario {source} are "
            f"{math.degrees(math.acos(min(cosang, 1.0))):.1f} deg apart; expected nearly "
            "perpendicular directions (within 11.5 deg of 90)."
        )
    return out


def load_sheet_scenario(name_or_path) -> dict:
    """Load a sheet scenario by built-in name or TOML file path.

    Parameters
    ----------
    name_or_path : str or path
        A built-in name (:data:`BUILTIN_SHEET_SCENARIOS`) or the path of a TOML file.

    Returns
    -------
    dict
        As :func:`parse_sheet_scenario`, plus ``source`` and ``sha256`` (of the file bytes).
    """
    text = str(name_or_path)
    if text in BUILTIN_SHEET_SCENARIOS:
        path = SCENARIO_DIR / f"{text}.toml"
    else:
        path = Path(text)
        if not path.is_file():
            raise ScenarioError(
                f"sheet scenario {text!r} is neither a built-in name "
                f"({', '.join(BUILTIN_SHEET_SCENARIOS)}) nor an existing TOML file."
            )
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"sheet scenario {path} is not valid TOML ({exc}).") from None
    scenario = parse_sheet_scenario(data, source=str(path))
    scenario["source"] = str(path)
    scenario["sha256"] = hashlib.sha256(raw).hexdigest()
    return scenario
