"""Radio-occultation scenarios: TOML files with documented, strictly checked keys.

A scenario says which link to simulate, which occultation of it, what ionosphere and
neutral atmosphere it grazes, how it is sampled, and (for instrument-level simulations)
which oscillators and receiver record it. Built-in scenarios ship in ``synth/scenarios``;
``roharness scenarios`` lists them and ``roharness scenarios --show NAME`` prints one to copy
and edit. Unknown keys and bad values are rejected with one sentence naming the key.

Keys (section, key, type, default, meaning) are those of :data:`SCHEMA`; the built-in files
document every key in comments.
"""

from __future__ import annotations

import copy
import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from synth.errors import ScenarioError

_ANY = object()


def _choice(*values):
    return ("choice", values)


#: section -> key -> (type, default, help). Type is a Python type, "choice" tuple, or "list".
SCHEMA: dict[str, dict[str, tuple]] = {
    "": {
        "name": (str, None, "scenario name"),
        "description": (str, "", "one-line description"),
        "kind": (_choice("ro"), "ro", "scenario kind (radio occultation)"),
        "seed": (int, 0, "root random seed (noise realisations derive from it)"),
    },
    "link": {
        "kind": (_choice("mutual", "earth_downlink", "earth_twoway"), "mutual",
                 "mutual one-way, spacecraft -> Earth one-way, or Earth -> spacecraft -> "
                 "Earth two-way coherent"),
        "transmitter": (str, "mex", "preset orbit (mex, tgo, maven), earth/dss-14/43/63, or a "
                        "NAIF name/ID from `kernels` (two-way: the ground station)"),
        "receiver": (str, "tgo", "as transmitter (two-way: the spacecraft)"),
        "frequency_hz": (float, 437.1e6, "transmitted frequency; two-way: the X-band downlink "
                         "frequency (uplink = downlink / (880/749))"),
        "dual_frequency": (bool, False, "two-way only: add the coherent S-band downlink "
                           "(240/749) for differential Doppler"),
        "kernels": (list, [], "extra SPICE kernels or meta-kernels"),
    },
    "event": {
        "start_utc": (str, "2023-01-01", "search window start (UTC)"),
        "stop_utc": (str, "2023-01-03", "search window stop (UTC)"),
        "kind": (_choice("ingress", "egress", "any"), "any", "which kind of occultation"),
        "index": (int, 0, "which matching event (0 = the first)"),
        "min_sza_deg": (float, 0.0, "smallest accepted solar zenith angle at the tangent point"),
        "max_sza_deg": (float, 90.0, "largest accepted solar zenith angle"),
        "top_altitude_km": (float, 400.0, "sampling starts where the straight ray's tangent "
                            "altitude crosses this"),
        "bottom_altitude_km": (float, 60.0, "sampling stops at this tangent altitude (or where "
                               "the planet cuts the ray)"),
    },
    "sampling": {
        "rate_hz": (float, 1.0, "level-2 (Doppler) sample rate [Hz]"),
    },
    "ionosphere": {
        "model": (_choice("parrott2025", "segale2024", "fox_weber2012", "fallows2015", "layers"),
                  "parrott2025", "peak law for M2/M1, or explicit `layers`"),
        "f107_sfu": (float, 100.0, "F10.7 at Earth [sfu] (parrott2025)"),
        "f_euv_mw_m2": (float, None, "EUV flux [mW m^-2] instead of F10.7 (parrott2025)"),
        "group": (_choice("dawn_aphelion", "dawn_perihelion", "dusk_aphelion",
                          "dusk_perihelion", "auto"), "auto",
                  "segale2024 group; auto = from the event's LTST and Ls"),
        "scale_height_km": (float, 10.0, "neutral scale height H of the Chapman layers [km]"),
        "grazing": (_choice("chapman", "sec"), "chapman",
                    "SZA dependence: Chapman grazing-incidence function or sec(chi)"),
        "sza_deg": (float, None, "override the solar zenith angle (default: the event's)"),
        "layers": (list, [], "explicit layers: [{name, n0_m3, h0_km, scale_height_km}]"),
    },
    "neutral": {
        "enabled": (bool, False, "add the neutral CO2 refractivity"),
        "surface_number_density_m3": (float, 2.1e23, "CO2 number density at 0 km [m^-3]"),
        "scale_height_km": (float, 11.0, "density scale height [km]"),
    },
    "oscillator": {
        "enabled": (bool, False, "add transmitter and receiver oscillator errors to the "
                    "carrier (needs [receiver] enabled = true)"),
        "transmitter_preset": (_choice("uso", "tcxo", "none"), "uso",
                               "transmitter oscillator class (synth.oscillator.PRESETS); none "
                               "= ideal"),
        "receiver_preset": (_choice("uso", "tcxo", "none"), "tcxo",
                            "receiver oscillator class; none = ideal"),
        "noise": (bool, True, "include the presets' power-law noise"),
        "receiver_adev_scale": (float, 1.0, "multiplies the receiver preset's Allan "
                                "deviation (its h_alpha by the square)"),
        "drift": (bool, True, "include the deterministic drift (presets' ageing plus the "
                  "offsets and rates below)"),
        "transmitter_offset": (float, 0.0, "transmitter fractional frequency offset y0 [1]"),
        "transmitter_rate_per_s": (float, None, "transmitter drift rate [1/s] (default: "
                                   "the preset's)"),
        "receiver_offset": (float, 0.0, "receiver fractional frequency offset y0 [1]"),
        "receiver_rate_per_s": (float, None, "receiver drift rate [1/s] (default: the "
                                "preset's)"),
        "tau0_s": (float, 0.1, "oscillator sample interval [s]"),
    },
    "receiver": {
        "enabled": (bool, False, "simulate the level-1 I/Q record and retrieve from it "
                    "(carrier extraction + drift correction); false = level-2 round trip"),
        "sample_rate_hz": (float, 2000.0, "complex I/Q sample rate [Hz] (1-10 kHz)"),
        "cn0_dbhz": (float, 45.0, "carrier-to-noise density [dB-Hz]"),
        "thermal_noise": (bool, True, "add thermal noise at cn0_dbhz"),
        "window_s": (float, None, "carrier-extraction window [s] (default 1 / "
                     "[sampling] rate_hz; at most that)"),
        "tuning_order": (int, 3, "order of the receiver's open-loop LO tuning polynomial "
                         "(a coarse Doppler prediction, recorded with the I/Q)"),
        "silent_periods": (list, [], "carrier-off periods [[start_s, stop_s], ...] since "
                           "the observation epoch"),
        "gaps": (list, [], "lost-data periods [[start_s, stop_s], ...]"),
        "spur_hz": (float, None, "spurious line at this baseband frequency [Hz]"),
        "spur_dbc": (float, -10.0, "spurious line power relative to the carrier [dBc]"),
    },
    "retrieval": {
        "drift_correction": (_choice("none", "baseline_poly", "withers2020", "parrott2025"),
                             "parrott2025", "drift-correction strategy of the I/Q path "
                             "(retrieval.drift)"),
        "threshold_altitude_km": (float, 230.0, "tangent altitude above which the residual "
                                  "is taken as vacuum (no ionosphere)"),
        "max_order": (int, 3, "highest baseline polynomial order tried"),
        "smoothing_s": (float, None, "Savitzky-Golay window of the drift-corrected residual "
                        "[s]; default: chosen from the noise "
                        "(retrieval.drift.choose_smoothing_window); 0 = none"),
    },
    "budget": {
        "sources": (list, ["thermal", "oscillator", "drift", "ephemeris", "sampling",
                           "gradients", "parrott"],
                    "error sources of `roharness budget` (synth.error_sources.SOURCES)"),
        "realisations": (int, 20, "Monte Carlo realisations per source"),
        "ephemeris_frame": (_choice("rtn", "xyz"), "rtn",
                            "axes of the ephemeris sigmas: radial/along-track/cross-track "
                            "of each spacecraft, or Mars-centred J2000 x/y/z"),
        "tx_position_sigma_m": (list, [20.0, 100.0, 20.0],
                                "1-sigma error of the transmitter's reconstructed position, "
                                "3 components [m] (assumed; see synth.error_sources)"),
        "tx_velocity_sigma_m_s": (list, [0.005, 0.005, 0.005],
                                  "1-sigma error of the transmitter's reconstructed "
                                  "velocity, 3 components [m/s] (assumed)"),
        "rx_position_sigma_m": (list, [20.0, 100.0, 20.0],
                                "as tx_position_sigma_m, receiver [m] (assumed)"),
        "rx_velocity_sigma_m_s": (list, [0.005, 0.005, 0.005],
                                  "as tx_velocity_sigma_m_s, receiver [m/s] (assumed)"),
        "parrott_fraction": (float, 0.05, "Parrott et al. (2025) recipe: white noise of this "
                             "fraction of the maximum residual amplitude"),
        "integration_time_s": (float, None, "Doppler integration time [s] (default 1 / "
                               "[sampling] rate_hz)"),
        "altitude_min_km": (float, 80.0, "error-profile grid start [km]"),
        "altitude_max_km": (float, 300.0, "error-profile grid stop [km]"),
        "altitude_step_km": (float, 1.0, "error-profile grid step [km]"),
    },
}

_LAYER_KEYS = {"name": str, "n0_m3": float, "h0_km": float, "scale_height_km": float}


@dataclass
class Scenario:
    """A checked scenario: ``sections[section][key]`` with every default filled in."""

    name: str
    source: str
    text: str
    sections: dict = field(default_factory=dict)

    def __getitem__(self, section):
        return self.sections[section]

    @property
    def seed(self) -> int:
        return int(self.sections[""]["seed"])

    @property
    def digest(self) -> str:
        """Hash of the scenario text (provenance in outputs)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def builtin_dir():
    return resources.files("synth") / "scenarios"


def builtin_names(kind: str | None = None) -> list[str]:
    """Names of the built-in scenarios (all kinds, or those whose `kind` key matches)."""
    names = []
    for f in sorted(builtin_dir().iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            if kind is None or _file_kind(f.read_text()) == kind:
                names.append(f.name[:-5])
    return names


def _file_kind(text: str) -> str:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "?"
    return str(data.get("kind", "sheet" if "sheet" in data else "ro"))


def builtin_text(name: str) -> str:
    """The TOML text of a built-in scenario."""
    f = builtin_dir() / f"{name}.toml"
    if not f.is_file():
        raise ScenarioError(f"unknown scenario '{name}'; built-in scenarios: "
                            f"{', '.join(builtin_names())}")
    return f.read_text()


def builtin_description(name: str) -> str:
    data = tomllib.loads(builtin_text(name))
    return str(data.get("description", ""))


def _check_value(where, key, spec, value):
    typ = spec[0]
    if value is None:
        return None
    if isinstance(typ, tuple) and typ[0] == "choice":
        if value not in typ[1]:
            raise ScenarioError(f"{where}: key '{key}' is {value!r}; expected one of "
                                f"{', '.join(map(str, typ[1]))}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where}: key '{key}' must be a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ScenarioError(f"{where}: key '{key}' must be finite, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: key '{key}' must be an integer, got {value!r}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: key '{key}' must be true or false, got {value!r}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: key '{key}' must be a string, got {value!r}")
        return value
    if typ is list:
        if not isinstance(value, list):
            raise ScenarioError(f"{where}: key '{key}' must be a list, got {value!r}")
        return value
    raise AssertionError(typ)  # pragma: no cover


def parse_scenario(text: str, source: str = "<string>", schema=None) -> Scenario:
    """Parse and check scenario TOML text (every unknown key or bad value is an error)."""
    schema = schema or SCHEMA
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {source} is not valid TOML: {exc}") from None
    sections = {}
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for k, v in data.items():
        if isinstance(v, dict) and k not in schema:
            raise ScenarioError(f"scenario {source}: unknown section [{k}]; known sections: "
                                f"{', '.join('[' + s + ']' for s in schema if s)}")
    for sec, keys in schema.items():
        given = top if sec == "" else data.get(sec, {})
        where = f"scenario {source}" + (f" [{sec}]" if sec else "")
        for k in given:
            if k not in keys:
                raise ScenarioError(f"{where}: unknown key '{k}'; known keys: "
                                    f"{', '.join(keys)}")
        sections[sec] = {k: _check_value(where, k, spec, copy.deepcopy(given.get(k, spec[1])))
                         for k, spec in keys.items()}
    name = sections[""]["name"] or Path(source).stem
    scn = Scenario(name=name, source=source, text=text, sections=sections)
    _check_semantics(scn)
    return scn


def _check_semantics(scn: Scenario) -> None:
    src = f"scenario {scn.source}"
    link, ev, ion = scn["link"], scn["event"], scn["ionosphere"]
    if link["frequency_hz"] <= 0:
        raise ScenarioError(f"{src} [link]: key 'frequency_hz' must be positive")
    if link["dual_frequency"] and link["kind"] != "earth_twoway":
        raise ScenarioError(f"{src} [link]: key 'dual_frequency' needs kind = 'earth_twoway'")
    if scn["sampling"]["rate_hz"] <= 0:
        raise ScenarioError(f"{src} [sampling]: key 'rate_hz' must be positive")
    if not 0 <= ev["bottom_altitude_km"] < ev["top_altitude_km"]:
        raise ScenarioError(f"{src} [event]: keys 'bottom_altitude_km' and 'top_altitude_km' "
                            "must satisfy 0 <= bottom < top")
    if not 0 <= ev["min_sza_deg"] <= ev["max_sza_deg"] <= 180:
        raise ScenarioError(f"{src} [event]: keys 'min_sza_deg'/'max_sza_deg' must satisfy "
                            "0 <= min <= max <= 180")
    if ev["index"] < 0:
        raise ScenarioError(f"{src} [event]: key 'index' must be >= 0")
    if ion["model"] == "layers":
        if not ion["layers"]:
            raise ScenarioError(f"{src} [ionosphere]: model 'layers' needs a non-empty "
                                "'layers' list")
        for i, layer in enumerate(ion["layers"]):
            where = f"{src} [ionosphere] layers[{i}]"
            if not isinstance(layer, dict):
                raise ScenarioError(f"{where} must be a table {{name, n0_m3, h0_km, "
                                    "scale_height_km}")
            for k in layer:
                if k not in _LAYER_KEYS:
                    raise ScenarioError(f"{where}: unknown key '{k}'; known keys: "
                                        f"{', '.join(_LAYER_KEYS)}")
            for k, typ in _LAYER_KEYS.items():
                if k not in layer:
                    raise ScenarioError(f"{where}: missing key '{k}'")
                layer[k] = _check_value(where, k, (typ,), layer[k])
    elif ion["layers"]:
        raise ScenarioError(f"{src} [ionosphere]: key 'layers' is only used with "
                            "model = 'layers'")
    if ion["scale_height_km"] <= 0:
        raise ScenarioError(f"{src} [ionosphere]: key 'scale_height_km' must be positive")
    rcv = scn["receiver"]
    if not 1e3 <= rcv["sample_rate_hz"] <= 1e4:
        raise ScenarioError(f"{src} [receiver]: key 'sample_rate_hz' must be 1000-10000 Hz, "
                            f"got {rcv['sample_rate_hz']:g}")
    step = 1.0 / scn["sampling"]["rate_hz"]
    if rcv["window_s"] is not None and not 0 < rcv["window_s"] <= step:
        raise ScenarioError(f"{src} [receiver]: key 'window_s' must be in (0, {step:g}] s "
                            "(one level-2 sample interval)")
    if rcv["tuning_order"] < 0:
        raise ScenarioError(f"{src} [receiver]: key 'tuning_order' must be >= 0")
    for key in ("silent_periods", "gaps"):
        for iv in rcv[key]:
            if (not isinstance(iv, list) or len(iv) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               for v in iv) or not iv[1] > iv[0]):
                raise ScenarioError(f"{src} [receiver]: key '{key}' entries must be "
                                    f"[start_s, stop_s] with stop > start, got {iv!r}")
    if scn["oscillator"]["enabled"] and not rcv["enabled"]:
        raise ScenarioError(f"{src} [oscillator]: enabled = true needs [receiver] "
                            "enabled = true (oscillators act on the I/Q record)")
    if not scn["oscillator"]["tau0_s"] > 0:
        raise ScenarioError(f"{src} [oscillator]: key 'tau0_s' must be positive")
    if not scn["oscillator"]["receiver_adev_scale"] >= 0:
        raise ScenarioError(f"{src} [oscillator]: key 'receiver_adev_scale' must be >= 0")
    if scn["retrieval"]["max_order"] < 0:
        raise ScenarioError(f"{src} [retrieval]: key 'max_order' must be >= 0")


def load_scenario(name_or_path) -> Scenario:
    """Load a built-in scenario by name, or a TOML file by path."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file '{path}' does not exist")
        return parse_scenario(path.read_text(), str(path))
    return parse_scenario(builtin_text(text_name), text_name)
