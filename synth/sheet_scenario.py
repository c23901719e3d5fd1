"""Scenarios for synthetic current-sheet crossings (TOML, read with :mod:`tomllib`).

A sheet scenario is a TOML file with the tables ``[sheet]``, ``[crossing]``,
``[magnetometer]``, ``[ions]``, ``[imf]`` and ``[analysis]`` and the top-level keys ``name``
and ``description``. Every key has a type, unit and physical range (:data:`SCHEMA`, a
:class:`synth.config.Schema` like the radio-occultation scenarios' and the campaigns'),
checked before any work starts: an unknown key or a bad value raises
:class:`synth.errors.ScenarioError` with one sentence naming the file, table, key, value
and what is allowed. Built-in scenarios live next to this module in
``scenarios/NAME.toml``; the built-in ``mars-2024-11-07`` documents every key.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING

from synth import config
from synth.config import ABSENT, REQUIRED, F, I, Key, Range, Schema
from synth.errors import ScenarioError

if TYPE_CHECKING:  # annotations only
    import os

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
#: Names of the built-in sheet scenarios.
BUILTIN_SHEET_SCENARIOS = ("mars-2024-11-07",)

WHY_B = ("fields near Mars: IMF ~3 nT, induced lobes 10-100 nT, crustal fields up to ~200 nT "
         "at 400 km; 1000 nT is beyond any of them")
WHY_DIR = "components of a direction in MSO; normalised by the model, so only its sense counts"
WHY_SPAN = "at most a day of data (the sheet model is stationary)"
WHY_NOISE = "instrument noise and fluctuations are below the fields themselves"
WHY_CLOCK = "angles in degrees, one turn either way"


def _vec(default, doc, unit, lo, hi, why, nonzero=False) -> Key:
    return Key("floats", default, doc, unit, Range(lo, hi), why, length=3, nonzero=nonzero)


def _range(default, doc, unit, lo, hi, why) -> Key:
    return Key("floats", default, doc + " [low, high], drawn uniformly", unit, Range(lo, hi),
               why, length=2)


#: Error sources of the current-sheet budget (validation.sheet_budget documents each).
BUDGET_SOURCES = ("mag_white", "mag_correlated", "mag_offset", "ion_noise", "geometry",
                  "hall", "motion", "mva_interval", "imf")


_SECTIONS = {
    "": {
        "name": Key("str", REQUIRED, "scenario name"),
        "description": Key("str", "", "one-line description"),
    },
    "sheet": {
        "l_mso": _vec(REQUIRED, "L direction of the sheet (MSO; orthogonalised against N)",
                      "1", -1.0, 1.0, WHY_DIR, nonzero=True),
        "n_mso": _vec(REQUIRED, "normal N of the sheet (MSO)", "1", -1.0, 1.0, WHY_DIR,
                      nonzero=True),
        "b0_nt": F(ABSENT, "lobe field B0 (give this or alfven_speed_m_s)", "nT", 0.1, 1000.0,
                   WHY_B),
        "alfven_speed_m_s": F(ABSENT, "upstream Alfven speed; fixes B0 = vA sqrt(mu0 n m_i)",
                              "m/s", 100.0, 3e7, "from dense ionospheric O+ (~1 km/s) to the "
                              "solar wind (~100 km/s); 0.1 c keeps MHD non-relativistic"),
        "guide_field_nt": F(0.0, "guide field B_g along M", "nT", -1000.0, 1000.0, WHY_B),
        "normal_field_nt": F(0.0, "normal field B_N", "nT", -1000.0, 1000.0, WHY_B),
        "half_thickness_km": F(REQUIRED, "Harris half-thickness lambda", "km", 1.0, 1e4,
                               "O+ inertial lengths near Mars are ~10-100 km; sheets are "
                               "observed from a few km to thousands"),
        "hall_field_nt": F(0.0, "Hall quadrupole amplitude B_H", "nT", -1000.0, 1000.0, WHY_B),
        "hall_length_km": F(REQUIRED, "extent of the Hall quadrupole / jets along L", "km",
                            1.0, 1e4, "of the order of the ion inertial length (10-100 km)"),
        "hall_width_km": F(ABSENT, "Hall layer width along N (default: the model's)", "km",
                           0.1, 1e4, "inside the sheet: a fraction of its thickness"),
        "temperature_k": F(REQUIRED, "Ti + Te of the sheet plasma", "K", 100.0, 1e8,
                           "ionospheric plasma 1e3-1e4 K, magnetosheath 1e5-1e6 K"),
        "background_density_m3": F(REQUIRED, "ion density outside the sheet", "m^-3", 1e4,
                                   1e13, "solar wind ~1e6 m^-3, dayside ionosphere up to "
                                   "~1e11 m^-3"),
        "ion_mass_u": F(16.0, "ion mass (O+ = 16)", "u", 1.0, 100.0,
                        "from H+ (1) to CO2+ (44) with room to spare"),
        "outflow_speed_m_s": F(0.0, "reconnection outflow (jet) amplitude", "m/s", 0.0, 1e6,
                               "up to ~10 Alfven speeds of the solar wind"),
        "background_flow_mso_m_s": _vec([0.0, 0.0, 0.0], "bulk flow (MSO)", "m/s", -1e6, 1e6,
                                        "the solar wind flows at ~400 km/s, 1000 km/s in "
                                        "the fastest streams"),
    },
    "crossing": {
        "center_utc": Key("utc", REQUIRED, "time of the crossing's centre"),
        "center_mso_km": _vec([0.0, 0.0, 0.0], "position of the centre (labels the data)",
                              "km", -1e5, 1e5, "Mars' induced magnetosphere extends a few "
                              "Mars radii (3390 km); 1e5 km is far upstream"),
        "speed_m_s": F(REQUIRED, "spacecraft speed relative to the sheet", "m/s", 1.0, 1e6,
                       "orbital speeds are 1-5 km/s; sheets move at up to the solar wind's "
                       "speed"),
        "angle_to_normal_deg": F(REQUIRED, "angle between the velocity and the normal", "deg",
                                 0.0, 90.0, "a crossing needs a velocity component along "
                                 "the normal: below 90 deg", hi_open=True),
        "azimuth_deg": F(0.0, "in-plane direction of motion from +L toward +M", "deg",
                         -360.0, 360.0, WHY_CLOCK),
        "offset_l_km": F(0.0, "offset from the X-line along L", "km", -1e5, 1e5,
                         "within the induced magnetosphere's scale"),
        "offset_m_km": F(0.0, "offset along M", "km", -1e5, 1e5,
                         "within the induced magnetosphere's scale"),
        "span_s": F(180.0, "data span around the centre", "s", 1.0, 86400.0, WHY_SPAN),
    },
    "magnetometer": {
        "rate_hz": F(32.0, "vector sample rate", "Hz", 0.01, 1000.0,
                     "spacecraft magnetometers sample 1-128 Hz (MAVEN MAG 32 Hz)"),
        "noise_nt": F(0.0, "white noise per component", "nT", 0.0, 100.0, WHY_NOISE),
        "correlation_time_s": F(0.0, "noise correlation time (0 = white)", "s", 0.0, 3600.0,
                                "up to an hour"),
        "offset_nt": _vec([0.0, 0.0, 0.0], "residual zero offsets", "nT", -100.0, 100.0,
                          "calibrated offsets are ~0.1-1 nT"),
    },
    "ions": {
        "cadence_s": F(4.0, "ion-moment cadence", "s", 0.01, 3600.0,
                       "plasma instruments give moments every 0.1-60 s"),
        "density_noise_rel": F(0.0, "relative density noise per moment", "1", 0.0, 10.0,
                               "a relative error"),
        "velocity_noise_m_s": F(0.0, "velocity noise per component", "m/s", 0.0, 1e6,
                                "below the flows themselves"),
    },
    "imf": {
        "span_s": F(1800.0, "monitor data span ending with the crossing span", "s", 1.0,
                    86400.0, WHY_SPAN),
        "cadence_s": F(1.0, "monitor cadence", "s", 0.01, 3600.0,
                       "solar-wind monitors give 1-60 s averages"),
        "magnitude_nt": F(3.0, "IMF magnitude", "nT", 0.1, 1000.0, WHY_B),
        "cone_angle_deg": F(90.0, "cone angle", "deg", 0.0, 180.0, "an angle to the Sun-Mars "
                            "line, 0-180 deg by definition"),
        "clock_start_deg": F(REQUIRED, "clock angle before the rotation", "deg", -360.0,
                             360.0, WHY_CLOCK),
        "clock_rotation_deg": F(REQUIRED, "clock-angle rotation", "deg", -360.0, 360.0,
                                WHY_CLOCK),
        "rotation_time_s": F(REQUIRED, "time of the rotation from the start of the span", "s",
                             0.0, 86400.0, WHY_SPAN),
        "rotation_duration_s": F(300.0, "tanh time scale of the rotation", "s", 0.01, 86400.0,
                                 WHY_SPAN),
        "fluctuation_deg": F(0.0, "rms clock-angle fluctuations", "deg", 0.0, 180.0,
                             "an angle"),
        "fluctuation_time_s": F(60.0, "time scale of the fluctuations", "s", 0.01, 86400.0,
                                WHY_SPAN),
        "upstream_noise_nt": F(0.0, "monitor noise per component", "nT", 0.0, 100.0,
                               WHY_NOISE),
        "lag_s": F(REQUIRED, "lag of the field at the spacecraft behind the monitor", "s",
                   0.0, 86400.0, "solar-wind propagation lags are minutes; at most a day"),
        "draping_gain": F(1.0, "pile-up / draping amplification", "1", 0.01, 100.0,
                          "pile-up at Mars amplifies the IMF ~2-10x"),
        "draping_bx_nt": F(0.0, "draping field along x", "nT", -1000.0, 1000.0, WHY_B),
        "downstream_noise_nt": F(0.0, "local fluctuations at the spacecraft", "nT", 0.0,
                                 1000.0, WHY_NOISE),
        "downstream_noise_time_s": F(0.0, "their correlation time (0 = white)", "s", 0.0,
                                     3600.0, "up to an hour"),
    },
    "motion": {
        "oscillation_amplitude_km": F(0.0, "amplitude of the sheet's oscillation along its "
                                      "normal (non-constant normal speed)", "km", 0.0, 1e4,
                                      "a fraction of the thickness up to a large flapping"),
        "oscillation_period_s": F(20.0, "period of that oscillation", "s", 0.1, 86400.0,
                                  WHY_SPAN),
        "oscillation_phase_deg": F(0.0, "phase of the oscillation at the centre time", "deg",
                                   -360.0, 360.0, WHY_CLOCK),
        "curvature_per_km": F(0.0, "curvature of the sheet along L (1 / radius of "
                              "curvature; 0 = planar)", "1/km", -0.1, 0.1,
                              "radii of curvature of 10 km or more: above the O+ inertial "
                              "length, below which a sheet is not a sheet"),
        "tilt_rate_deg_s": F(0.0, "rotation rate of the sheet in the L-N plane (a tilting "
                             "sheet)", "deg/s", -10.0, 10.0,
                             "up to a quarter turn in 10 s, far faster than observed"),
    },
    "second": {
        "separation_km": _vec(ABSENT, "position of a second magnetometer relative to the "
                              "first (MSO; absent = single spacecraft)", "km", -1e4, 1e4,
                              "formations fly 1-10000 km apart", nonzero=True),
        "noise_nt": F(0.0, "white noise per component of the second magnetometer", "nT",
                      0.0, 100.0, WHY_NOISE),
    },
    "budget": {
        "realisations": I(40, "Monte Carlo realisations per error source", 1, 100000,
                          "at least one; 1e5 round trips take hours"),
        "seed": I(0, "root seed of the Monte Carlo", 0, 2**63 - 1, "a numpy seed"),
        "sources": Key("strs", list(BUDGET_SOURCES), "error sources of `roharness budget`"),
        "correlation_time_s": F(0.25, "correlation time of the correlated magnetometer "
                                "noise", "s", 0.0, 3600.0, "up to an hour"),
        "offset_rms_nt": F(0.3, "rms of the zero offsets drawn per component", "nT", 0.0,
                           100.0, "calibrated offsets are ~0.1-1 nT"),
        "angle_to_normal_deg": _range([20.0, 60.0], "range of crossing angles to the normal",
                                      "deg", 0.0, 85.0, "a crossing needs a normal component"),
        "offset_l_km": _range([50.0, 250.0], "range of distances from the X-line along L",
                              "km", -1e5, 1e5, "within the induced magnetosphere's scale"),
        "hall_rel": _range([0.0, 2.0], "range of the Hall amplitude over the scenario's",
                           "1", 0.0, 10.0, "from none to 10x"),
        "oscillation_amplitude_km": F(5.0, "amplitude of the sheet's normal oscillation",
                                      "km", 0.0, 1e4, "a fraction of the thickness"),
        "oscillation_period_s": _range([10.0, 40.0], "range of its period", "s", 0.1,
                                       86400.0, WHY_SPAN),
        "curvature_rms_per_km": F(1e-3, "rms curvature of the sheet along L", "1/km", 0.0,
                                  0.1, "radii of curvature of 10 km or more"),
        "tilt_rate_rms_deg_s": F(0.1, "rms tilt rate of the sheet", "deg/s", 0.0, 10.0,
                                 "far below a quarter turn in 10 s"),
        "window_jitter_s": F(5.0, "half-width of the uniform jitter of each end of the MVA "
                             "interval", "s", 0.0, 3600.0, "a fraction of the interval"),
    },
    "analysis": {
        "window_utc": Key("utc_pair", REQUIRED, "the MVA interval [start, stop]"),
        "max_lag_s": F(600.0, "largest lag searched", "s", 1.0, 86400.0, WHY_SPAN),
    },
}

#: Samples one series may hold (3-vectors of float64: 1e7 is 0.24 GB).
MAX_SAMPLES = 10_000_000


def _rule_field(doc, ctx) -> None:
    sheet = doc["sheet"]
    if ("b0_nt" in sheet) == ("alfven_speed_m_s" in sheet):
        ctx.fail("sheet", "must give exactly one of b0_nt and alfven_speed_m_s (the lobe "
                 "field or the Alfven speed that fixes it)")
    l_vec, n_vec = sheet["l_mso"], sheet["n_mso"]
    cosang = abs(sum(a * b for a, b in zip(l_vec, n_vec))) / (math.hypot(*l_vec)
                                                              * math.hypot(*n_vec))
    if cosang > 0.2:
        ctx.fail("sheet", f"l_mso = {config.show(l_vec)} and n_mso = {config.show(n_vec)} are "
                 f"{math.degrees(math.acos(min(cosang, 1.0))):.1f} deg apart; expected nearly "
                 "perpendicular directions (within 11.5 deg of 90)")


def _rule_memory(doc, ctx) -> None:
    for sec, span, rate in (("crossing", doc["crossing"]["span_s"],
                             doc["magnetometer"]["rate_hz"]),
                            ("imf", doc["imf"]["span_s"], 1.0 / doc["imf"]["cadence_s"])):
        if span * rate > MAX_SAMPLES:
            ctx.fail(sec, f"span_s = {span:g} s at {rate:g} samples/s is {span * rate:.3g} "
                     f"samples; at most {MAX_SAMPLES:.0e} fit the memory estimate")


def _rule_budget(doc, ctx) -> None:
    bud = doc["budget"]
    unknown = [s for s in bud["sources"] if s not in BUDGET_SOURCES]
    if unknown:
        ctx.fail("budget", f"names an unknown error source '{unknown[0]}'; known sources: "
                 f"{', '.join(BUDGET_SOURCES)}")
    if not bud["sources"]:
        ctx.fail("budget", "has an empty list of sources; expected at least one of "
                 f"{', '.join(BUDGET_SOURCES)}")
    for k, key in _SECTIONS["budget"].items():
        if key.kind == "floats" and key.length == 2 and bud[k][0] > bud[k][1]:
            ctx.fail("budget", f"{k} = {config.show(bud[k])} is not [low, high]")


#: The sheet-scenario file: every key, its type, unit, range (with its reason) and meaning.
SCHEMA = Schema("sheet scenario", _SECTIONS, rules=(_rule_field, _rule_memory, _rule_budget))


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
    if not isinstance(data, dict):
        raise ScenarioError(f"sheet scenario {source} is not a TOML table.")
    doc = config.check(SCHEMA, data, source)
    out = doc.pop("")
    out.update(doc)
    return out


def _is_file(path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_sheet_scenario(name_or_path: str | os.PathLike) -> dict:
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
        if not config.is_file_name(text) or not _is_file(path):
            raise ScenarioError(
                f"sheet scenario {text!r} is neither a built-in name "
                f"({', '.join(BUILTIN_SHEET_SCENARIOS)}) nor an existing TOML file."
            )
    what = f"sheet scenario file {path}"
    body, raw = config.read_file(path, what)
    scenario = parse_sheet_scenario(config.parse_toml(body, what), source=str(path))
    scenario["source"] = str(path)
    scenario["sha256"] = hashlib.sha256(raw).hexdigest()
    return scenario
