r"""Campaign design: the occultations of a link over months, their coverage and accuracy.

"With these two orbits, this oscillator, this frequency and this cadence, how many profiles
do we get, where and when, and how accurate will each be?" A *campaign file* (TOML, strictly
checked like a scenario; built-ins in ``validation/campaigns``) names the link, the span, the
scenario used as the accuracy template, the accuracy target, the cadence, the trade designs
and a conventional (spacecraft -> Earth) comparison link. :func:`run_campaign` then

1. **searches** every ingress/egress of the link over the span
   (:func:`retrieval.occultation.find_events`, the Lipschitz scan), in chunks of
   ``[span] chunk_days`` run as :class:`validation.engine.Engine` tasks (each chunk is padded
   by :data:`CHUNK_PAD_S` on both sides and keeps the events whose reference crossing lies in
   it, so the result equals one long search), and adds the **top altitude** reached
   (:func:`top_altitude_km`);
2. **predicts the accuracy** of every dayside event for every design: the error budget
   (:func:`validation.budget.run_budget`) runs on a *representative subset* of events
   (:func:`select_subset`: stratified in SZA and in tangent-point vertical speed), each
   pinned by a scenario variant (:func:`event_scenario`), and the result is carried to the
   other events by the scaling rule of :func:`fit_with_floor`;
3. applies the **cadence** (:func:`apply_cadence`) and counts, per design, the profiles
   meeting the target and their SZA coverage;
4. searches the **comparison** link over the same span (the conventional-RO SZA floor);
5. optionally (``[accuracy] check = N``) runs a **direct Monte Carlo** of N events that are
   not in the subset and compares it with the prediction.

Design choices
--------------
* Events are timed and located where the straight ray's tangent point crosses the
  reference altitude (``[span] reference_altitude_km``, 200 km: the top of the
  photochemical ionosphere), as ``roharness events`` does. "Top altitude" is the highest
  tangent altitude before ingress / after egress (the lower spacecraft's altitude where the
  tangent point reaches the end of the segment); "bottom" is 0 km when the ray is cut.
* *Observable*: the ray spans ``[target] min_top_altitude_km`` (a vacuum baseline above the
  ionosphere for the drift correction) down to ``max_bottom_altitude_km`` (below the M2
  peak). Accuracy is predicted only for observable events with SZA <= ``[accuracy]
  max_sza_deg`` (the peak laws are fitted below 90 deg); the others count as not meeting
  the target.
* A design changes the template scenario: ``oscillator`` -> ``[oscillator]
  receiver_preset`` (the receiver is the end without a USO in MEX -> TGO),
  ``frequency_hz`` -> ``[link]``, ``sampling_rate_hz`` -> ``[sampling] rate_hz`` (with the
  integration time and I/Q window back to one sample interval), ``cn0_dbhz`` ->
  ``[receiver]``, ``per_week`` -> the cadence only. Designs that differ only in cadence share
  one budget run. The metric of an event is the Monte Carlo RMS with every selected
  physical source on at once (the budget's ``mc_total``), what a direct Monte Carlo of that
  event measures.
* Cadence: see :func:`apply_cadence` (one observation per slot of 7 / per_week days; by
  default the slot's lowest-SZA event among those meeting the target, else the slot's
  lowest-SZA observable event).

Accuracy rule (interpolation from the subset to every event)
------------------------------------------------------------
For a white frequency error :math:`\sigma_f` the electron-density error of a one-way
occultation scales as (Withers 2010, eq. 19-20 and the discussion of the thermal-noise
term)

.. math::  \sigma_{N_e} \propto \frac{f\,\sigma_f}{V},

with V the vertical speed of the tangent point: a slower ray spends longer at each altitude
and averages the frequency noise down. A relative error divides by the density itself,
which at the M2 peak falls with SZA as the Chapman layer does. Each metric of an event is
therefore predicted as

.. math::  \sigma_m(V, \chi) = C_m\,|V|^{-p_m} \,/\, \hat N_m(\chi),

where :math:`\hat N_m` is the template ionosphere's density at the M2 peak (for the M2
relative density and the M2 altitude error; a peak's altitude error is the density error
over the peak curvature, :math:`\propto H\,\sigma_N / N_{M2}`) or at 150 km (for
:math:`N_e(150\,\mathrm{km})`), normalised to the subsolar value. :math:`C_m` and
:math:`p_m` are fitted by least squares in log space to the subset's Monte Carlo results;
``p`` is bounded to [0, 3] and falls back to the thermal value p = 1 when fewer than three
subset events succeeded or their speeds span less than a factor 1.3. Oscillator drift
errors are also frequency errors mapped through 1/V, but they grow with the duration of the
occultation (itself ~ 1/V), hence the fitted exponent rather than a fixed 1. The scatter of
the fit (RMS of the log residuals) is reported as ``scatter_log``.

The retrieval's own error on clean data (the budget's *floor*: discretisation, smoothing,
the drift correction fitted to drift-free data) does not follow this scaling. The rule is
therefore fitted to the sources' part, :math:`\sqrt{\sigma^2 - \sigma_{floor}^2}` per
subset event, and the prediction adds the subset's RMS floor back in quadrature,
:math:`\sigma_m = \sqrt{\sigma_{floor,m}^2 + (C_m |V|^{-p_m} / \hat N_m)^2}`
(:func:`fit_with_floor`). Measured effect on the direct Monte Carlo check (USO receiver,
M2 altitude, three events): predicted / direct 1.32, 1.14, 1.28 without the floor term,
1.30, 1.11, 1.25 with it.

References
----------
.. [1] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured by
   radio occultation experiments, Adv. Space Res. 46, 58-73, doi:10.1016/j.asr.2010.03.004.
.. [2] Parrott, J. et al. (2025), mutual radio occultations MEX-TGO (campaign statistics:
   124 measurements, about two per week; ../shared/SCIENCE.md).
"""

from __future__ import annotations

import copy
import json
import math
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr

from retrieval.errors import RoharnessError
from synth.errors import ScenarioError
from retrieval.fileio import atomic_path, write_text_atomic
from synth.scenario import Scenario, _check_value, _choice, load_scenario, parse_scenario
from validation.engine import Engine

#: Padding of each search chunk on both sides [s]: longer than any occultation's
#: reference-to-surface time (grazing events of the presets last < 40 min).
CHUNK_PAD_S = 3 * 3600.0
#: Offsets [s] of the march away from the reference crossing in :func:`top_altitude_km`.
TOP_OFFSETS_S = (20.0, 60.0, 150.0, 300.0, 600.0, 1200.0, 2400.0)
#: Bisection steps refining where the tangent point leaves the segment.
TOP_BISECTIONS = 6
#: SZA bins of the coverage histograms [deg].
SZA_BINS_DEG = np.arange(0.0, 190.0, 10.0)
#: Metrics predicted per event: name -> (budget variable, reference density, unit, long name)
METRICS = {
    "m2_peak_density_rel": ("m2_peak_density_rel_error", "m2", "1",
                            "predicted 1-sigma relative error of the M2 peak density"),
    "m2_peak_altitude_km": ("m2_peak_altitude_error_km", "m2", "km",
                            "predicted 1-sigma error of the M2 peak altitude"),
    "ne150_rel": ("ne150_rel_error", "ne150", "1",
                  "predicted 1-sigma relative error of N_e at 150 km"),
}
CADENCE_RULES = ("lowest_sza", "first", "all")


#: section -> key -> (type, default, help). ``None`` defaults mean "from the template".
SCHEMA: dict[str, dict[str, tuple]] = {
    "": {
        "name": (str, None, "campaign name"),
        "description": (str, "", "one-line description"),
        "kind": (_choice("campaign"), "campaign", "file kind"),
        "seed": (int, 0, "root random seed of the budget runs"),
    },
    "link": {
        "transmitter": (str, None, "preset orbit (mex, tgo, maven) or NAIF name/ID from "
                        "`kernels` (default: the template scenario's)"),
        "receiver": (str, None, "as transmitter"),
        "frequency_hz": (float, None, "carrier frequency (default: the template's)"),
        "kernels": (list, None, "extra SPICE kernels (default: the template's)"),
    },
    "span": {
        "start_utc": (str, "2023-01-01", "campaign start (UTC)"),
        "stop_utc": (str, "2023-06-30", "campaign stop (UTC)"),
        "reference_altitude_km": (float, 200.0, "tangent altitude at which events are timed "
                                  "and their geometry (SZA, LTST, ...) is given"),
        "step_s": (float, 120.0, "initial search step (ambiguous intervals are refined, so "
                   "the step changes the cost, not the events; 120 s measured fastest)"),
        "chunk_days": (float, 30.0, "search chunk length (one engine task per chunk)"),
    },
    "accuracy": {
        "scenario": (str, "mex-tgo-uhf-drift", "template scenario (built-in name or TOML file "
                     "relative to the campaign file): ionosphere, oscillators, receiver, "
                     "retrieval and [budget] settings"),
        "sources": (list, None, "error sources (default: the template's [budget] sources "
                    "without the 'parrott' recipe)"),
        "realisations": (int, 10, "Monte Carlo realisations per source and subset event"),
        "subset": (int, 8, "events run through the budget per design (stratified in SZA "
                   "and vertical speed)"),
        "check": (int, 0, "events outside the subset run as a direct Monte Carlo to check "
                  "the prediction (0 = none)"),
        "check_realisations": (int, None, "realisations of the check (default: "
                               "realisations)"),
        "max_sza_deg": (float, 85.0, "events above this SZA get no accuracy prediction "
                        "(the M2 peak laws are fitted below 90 deg)"),
    },
    "target": {
        "m2_peak_density_rel": (float, 0.10, "1-sigma relative error of the M2 peak density "
                                "required"),
        "m2_peak_altitude_km": (float, 2.0, "1-sigma M2 peak altitude error required [km]"),
        "ne150_rel": (float, None, "1-sigma relative N_e(150 km) error required (none: not "
                      "required)"),
        "max_bottom_altitude_km": (float, 100.0, "the ray must reach this tangent altitude "
                                   "(below the M2 peak)"),
        "min_top_altitude_km": (float, 260.0, "the ray must start above this tangent "
                                "altitude (a vacuum baseline above the ionosphere)"),
    },
    "cadence": {
        "per_week": (float, 2.0, "observations per week (one per slot of 7/per_week days)"),
        "rule": (_choice(*CADENCE_RULES), "lowest_sza", "which event of a slot is observed: "
                 "lowest_sza (an event meeting the target first, then the lowest SZA), first "
                 "(the first observable event), all (every observable event, no cadence)"),
    },
    "comparison": {
        "enabled": (bool, True, "also search a conventional spacecraft -> Earth link"),
        "transmitter": (str, "mex", "spacecraft of the conventional link"),
        "receiver": (str, "earth", "earth or a DSN station (dss-14/43/63)"),
    },
}

#: Keys of each ``[[design]]`` table (``None`` = the campaign/template value).
DESIGN_KEYS: dict[str, tuple] = {
    "name": (str, None, "design name (letters, digits, - _ .)"),
    "oscillator": (_choice("uso", "tcxo", "none"), None, "receiver oscillator class "
                   "([oscillator] receiver_preset of the template)"),
    "frequency_hz": (float, None, "carrier frequency (UHF 437.1e6, X band 8.4e9)"),
    "sampling_rate_hz": (float, None, "level-2 sample rate ([sampling] rate_hz)"),
    "cn0_dbhz": (float, None, "carrier-to-noise density ([receiver] cn0_dbhz)"),
    "per_week": (float, None, "cadence (default: [cadence] per_week)"),
}


@dataclass
class Campaign:
    """A checked campaign: ``sections``, ``designs`` (list of dicts) and the template."""

    name: str
    source: str
    text: str
    sections: dict
    designs: list
    template: Scenario = field(repr=False)

    def __getitem__(self, section):
        return self.sections[section]

    @property
    def link(self) -> dict:
        """The link with the template's values filled in."""
        lk, tl = self.sections["link"], self.template["link"]
        return dict(transmitter=lk["transmitter"] or tl["transmitter"],
                    receiver=lk["receiver"] or tl["receiver"],
                    frequency_hz=lk["frequency_hz"] or tl["frequency_hz"],
                    kernels=tl["kernels"] if lk["kernels"] is None else lk["kernels"])


def builtin_dir():
    return resources.files("validation") / "campaigns"


def builtin_names() -> list[str]:
    return sorted(f.name[:-5] for f in builtin_dir().iterdir() if f.name.endswith(".toml"))


def parse_campaign(text: str, source: str = "<string>", base_dir=None) -> Campaign:
    """Parse and check campaign TOML text (every unknown key or bad value is an error)."""
    src = f"campaign {source}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{src} is not valid TOML: {exc}") from None
    designs_raw = data.pop("design", [])
    for k, v in data.items():
        if isinstance(v, dict) and k not in SCHEMA:
            raise ScenarioError(f"{src}: unknown section [{k}]; known sections: "
                                f"{', '.join('[' + s + ']' for s in SCHEMA if s)}, [[design]]")
        if isinstance(v, list) and v and isinstance(v[0], dict):
            raise ScenarioError(f"{src}: unknown array of tables [[{k}]]; expected [[design]]")
    sections = {}
    for sec, keys in SCHEMA.items():
        given = {k: v for k, v in data.items() if not isinstance(v, dict)} if sec == "" \
            else data.get(sec, {})
        where = src + (f" [{sec}]" if sec else "")
        for k in given:
            if k not in keys:
                raise ScenarioError(f"{where}: unknown key '{k}'; known keys: "
                                    f"{', '.join(keys)}")
        sections[sec] = {k: _check_value(where, k, spec, copy.deepcopy(given.get(k, spec[1])))
                         for k, spec in keys.items()}
    if not isinstance(designs_raw, list) or not all(isinstance(d, dict) for d in designs_raw):
        raise ScenarioError(f"{src}: 'design' must be an array of tables [[design]]")
    designs = []
    for i, d in enumerate(designs_raw):
        where = f"{src} [[design]] {i + 1}"
        for k in d:
            if k not in DESIGN_KEYS:
                raise ScenarioError(f"{where}: unknown key '{k}'; known keys: "
                                    f"{', '.join(DESIGN_KEYS)}")
        designs.append({k: _check_value(where, k, spec, d.get(k, spec[1]))
                        for k, spec in DESIGN_KEYS.items()})
    name = sections[""]["name"] or Path(source).stem
    # the template scenario: a built-in name or a file relative to the campaign file
    tname = sections["accuracy"]["scenario"]
    tpath = Path(tname)
    if base_dir is not None and tname.endswith(".toml") and not tpath.is_absolute():
        tpath = Path(base_dir) / tpath
    try:
        template = load_scenario(tpath if tname.endswith(".toml") else tname)
    except ScenarioError as exc:
        raise ScenarioError(f"{src} [accuracy]: key 'scenario': {exc}") from None
    camp = Campaign(name=name, source=source, text=text, sections=sections, designs=designs,
                    template=template)
    _check_semantics(camp)
    return camp


def _check_semantics(c: Campaign) -> None:
    src = f"campaign {c.source}"
    sp, acc, tgt, cad = c["span"], c["accuracy"], c["target"], c["cadence"]
    if c.template["link"]["kind"] != "mutual":
        raise ScenarioError(f"{src} [accuracy]: the template scenario "
                            f"'{c.template.name}' must be a mutual one-way link, got kind = "
                            f"'{c.template['link']['kind']}'")
    for key in ("reference_altitude_km", "step_s", "chunk_days"):
        if not sp[key] > 0:
            raise ScenarioError(f"{src} [span]: key '{key}' must be positive")
    for key, lo in (("realisations", 1), ("subset", 1), ("check", 0)):
        if acc[key] < lo:
            raise ScenarioError(f"{src} [accuracy]: key '{key}' must be >= {lo}")
    if acc["check_realisations"] is not None and acc["check_realisations"] < 2:
        raise ScenarioError(f"{src} [accuracy]: key 'check_realisations' must be >= 2")
    if acc["sources"] is not None and (not acc["sources"] or not all(
            isinstance(s, str) for s in acc["sources"])):
        raise ScenarioError(f"{src} [accuracy]: key 'sources' must be a non-empty list of "
                            "error-source names")
    if not 0 < acc["max_sza_deg"] < 90:
        raise ScenarioError(f"{src} [accuracy]: key 'max_sza_deg' must be in (0, 90) deg")
    for key in ("m2_peak_density_rel", "m2_peak_altitude_km", "ne150_rel"):
        if tgt[key] is not None and not tgt[key] > 0:
            raise ScenarioError(f"{src} [target]: key '{key}' must be positive")
    if not 0 <= tgt["max_bottom_altitude_km"] < tgt["min_top_altitude_km"]:
        raise ScenarioError(f"{src} [target]: keys 'max_bottom_altitude_km' and "
                            "'min_top_altitude_km' must satisfy 0 <= bottom < top")
    if not cad["per_week"] > 0:
        raise ScenarioError(f"{src} [cadence]: key 'per_week' must be positive")
    if not c.designs:  # the template as the only design
        c.designs.append({k: None for k in DESIGN_KEYS} | {"name": "baseline"})
    seen = set()
    for i, d in enumerate(c.designs):
        where = f"{src} [[design]] {i + 1}"
        if not d["name"]:
            raise ScenarioError(f"{where}: key 'name' is required")
        if not all(ch.isalnum() or ch in "-_." for ch in d["name"]):
            raise ScenarioError(f"{where}: key 'name' {d['name']!r} may only contain letters, "
                                "digits, '-', '_' and '.'")
        if d["name"] in seen:
            raise ScenarioError(f"{where}: design name {d['name']!r} is used twice")
        seen.add(d["name"])
        for key in ("frequency_hz", "sampling_rate_hz", "per_week"):
            if d[key] is not None and not d[key] > 0:
                raise ScenarioError(f"{where}: key '{key}' must be positive")
        if d["oscillator"] is not None and not c.template["oscillator"]["enabled"]:
            raise ScenarioError(f"{where}: key 'oscillator' needs a template scenario with "
                                "[oscillator] enabled = true")
        design_scenario(c, d)  # a design must make a valid scenario


def load_campaign(name_or_path) -> Campaign:
    """Load a built-in campaign by name, or a TOML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"campaign file '{path}' does not exist")
        return parse_campaign(path.read_text(), str(path), base_dir=path.parent)
    f = builtin_dir() / f"{text}.toml"
    if not f.is_file():
        raise ScenarioError(f"unknown campaign '{text}'; built-in campaigns: "
                            f"{', '.join(builtin_names())}")
    return parse_campaign(f.read_text(), text)


# --------------------------------------------------------------------------- scenarios
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} to TOML")  # pragma: no cover


def scenario_text(sections: dict) -> str:
    """TOML text of scenario sections (keys whose value is None are left at their default)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in sections[""].items() if v is not None]
    for sec, keys in sections.items():
        if sec == "":
            continue
        lines.append(f"\n[{sec}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items() if v is not None]
    return "\n".join(lines) + "\n"


def _variant(sections: dict, source: str) -> Scenario:
    return parse_scenario(scenario_text(sections), source)


def design_scenario(c: Campaign, design: dict) -> Scenario:
    """The template scenario with the campaign link and one design's settings."""
    s = copy.deepcopy(c.template.sections)
    s[""]["seed"] = c[""]["seed"]
    link = c.link
    s["link"].update(transmitter=link["transmitter"], receiver=link["receiver"],
                     frequency_hz=design["frequency_hz"] or link["frequency_hz"],
                     kernels=link["kernels"])
    if design["oscillator"] is not None:
        s["oscillator"]["receiver_preset"] = design["oscillator"]
    if design["sampling_rate_hz"] is not None:
        s["sampling"]["rate_hz"] = design["sampling_rate_hz"]
        s["receiver"]["window_s"] = None  # default: one level-2 interval
        s["budget"]["integration_time_s"] = None
    if design["cn0_dbhz"] is not None:
        s["receiver"]["cn0_dbhz"] = design["cn0_dbhz"]
    s[""]["name"] = f"{c.name}-{design['name']}"
    try:
        return _variant(s, f"{c.source} design {design['name']}")
    except ScenarioError as exc:
        raise ScenarioError(f"campaign {c.source} design {design['name']!r} makes an invalid "
                            f"scenario: {exc}") from None


def event_scenario(scn: Scenario, event: dict) -> Scenario:
    """A variant of ``scn`` whose ``[event]`` window pins one event of the campaign table.

    ``event`` is a row of the events table (``kind``, ``et_link``, ``vertical_speed_km_s``,
    ``top_altitude_km``, ``duration_s``). The window opens before the ray passes the
    variant's top altitude (ingress) or closes after it (egress), allowing three times the
    straight-ray time from the reference altitude at the event's vertical speed plus 5 min,
    and extends 5 min beyond the surface crossing on the other side; the top altitude is
    lowered to 10 km under the event's own top when the ray starts lower. Any SZA is
    accepted (the event is chosen by time and kind).
    """
    from retrieval import spice

    s = copy.deepcopy(scn.sections)
    ev = s["event"]
    top = min(ev["top_altitude_km"], float(event["top_altitude_km"]) - 10.0)
    v = max(abs(float(event["vertical_speed_km_s"])), 0.05)
    lead = 3.0 * max(top - float(event["reference_altitude_km"]), 0.0) / v + 300.0
    t = float(event["et_link"])
    dur = float(event["duration_s"])
    below = (dur if np.isfinite(dur) else 1800.0) + 300.0  # past the surface crossing
    t0, t1 = (t - lead, t + below) if event["kind"] == "ingress" else (t - below, t + lead)
    ev.update(start_utc=spice.et_to_utc(t0, 3), stop_utc=spice.et_to_utc(t1, 3),
              kind=str(event["kind"]), index=0, min_sza_deg=0.0, max_sza_deg=180.0,
              top_altitude_km=top)
    s[""]["name"] = f"{scn.name}-e{int(event['event'])}"
    return _variant(s, f"{scn.source} event {int(event['event'])}")


# --------------------------------------------------------------------------- search
def top_altitude_km(tx, rx, et_link, kinds) -> np.ndarray:
    """Highest tangent altitude the straight ray reaches before ingress / after egress [km].

    Marching away from the reference crossing (backwards for an ingress, forwards for an
    egress) at the offsets :data:`TOP_OFFSETS_S`, the ray keeps a true tangent point until
    the closest point of the segment to Mars becomes one of its ends (the lower spacecraft
    comes into view of the limb); the tangent altitude is then that spacecraft's altitude.
    The first offset without a tangent point is refined by :data:`TOP_BISECTIONS`
    bisections; the result is the largest tangent altitude found up to there (capped by the
    last offset, 40 min, for rays that keep a tangent point, e.g. downlinks to Earth).
    """
    from retrieval.occultation import tangent_altitude

    et_link = np.asarray(et_link, float)
    n = len(et_link)
    if n == 0:
        return np.zeros(0)
    sign = np.where(np.asarray(kinds) == "ingress", -1.0, 1.0)
    off = np.asarray(TOP_OFFSETS_S)
    t = et_link[:, None] + sign[:, None] * off[None, :]
    g = tangent_altitude(tx, rx, t.ravel())
    alt = g["altitude_m"].reshape(n, -1)
    inside = ((g["s"] > 1e-9) & (g["s"] < 1 - 1e-9)).reshape(n, -1)
    first_out = np.where(inside.all(axis=1), len(off), np.argmin(inside, axis=1))
    best = np.full(n, -np.inf)
    for i in range(n):
        k = first_out[i]
        best[i] = np.max(alt[i, :k]) if k > 0 else -np.inf
    todo = np.nonzero(first_out < len(off))[0]
    if len(todo):
        k = first_out[todo]
        lo = np.where(k > 0, off[np.maximum(k - 1, 0)], 0.0)
        hi = off[k]
        for _ in range(TOP_BISECTIONS):
            mid = 0.5 * (lo + hi)
            gm = tangent_altitude(tx, rx, et_link[todo] + sign[todo] * mid)
            ins = (gm["s"] > 1e-9) & (gm["s"] < 1 - 1e-9)
            best[todo] = np.where(ins, np.maximum(best[todo], gm["altitude_m"]), best[todo])
            lo = np.where(ins, mid, lo)
            hi = np.where(ins, hi, mid)
        # at the edge the tangent altitude equals the end's altitude: take it at ``hi``
        gh = tangent_altitude(tx, rx, et_link[todo] + sign[todo] * hi)
        best[todo] = np.maximum(best[todo], gh["altitude_m"])
    return best / 1e3


def search_chunk(tx, rx, kernels, span_et, chunk_et, reference_altitude_km, step_s,
                 last=False) -> xr.Dataset:
    """Engine task: the events of one chunk of the span (module docstring, step 1)."""
    from retrieval import spice
    from retrieval.occultation import find_events
    from synth.orbits import resolve_body

    cpu0 = time.process_time()
    spice.ensure_kernels()
    if kernels:
        spice.furnish(kernels)
    tx_id = resolve_body(tx, *span_et)  # the SPK of the whole span: written once, cached
    rx_id = resolve_body(rx, *span_et)
    c0, c1 = chunk_et
    w0, w1 = max(c0 - CHUNK_PAD_S, span_et[0] - CHUNK_PAD_S), c1 + CHUNK_PAD_S
    ds = find_events(tx_id, rx_id, w0, w1, reference_altitude_km * 1e3, step_s)
    et = ds.et_link.values
    keep = (et >= c0) & ((et <= c1) if last else (et < c1))
    ds = ds.isel(event=np.nonzero(keep)[0])
    ds["top_altitude_km"] = ("event", top_altitude_km(tx_id, rx_id, ds.et_link.values,
                                                      ds.kind.values),
                             {"units": "km", "long_name": "highest tangent altitude of the "
                              "straight ray before ingress / after egress"})
    ds.attrs["search_cpu_s"] = time.process_time() - cpu0
    return ds


def search_link(tx, rx, start_utc, stop_utc, *, kernels=(), reference_altitude_km=200.0,
                step_s=120.0, chunk_days=30.0, engine: Engine | None = None,
                progress=None, label="search") -> xr.Dataset:
    """All events of ``tx -> rx`` over a span, searched in chunks on an engine.

    Returns the :func:`retrieval.occultation.find_events` Dataset over the whole span (the
    chunks are joined) with ``top_altitude_km`` added.
    """
    from retrieval import spice
    from synth.orbits import resolve_body

    spice.ensure_kernels()
    if kernels:
        spice.furnish(kernels)
    et0, et1 = spice.utc_to_et(start_utc), spice.utc_to_et(stop_utc)
    if not et1 > et0:
        raise RoharnessError(f"the campaign span is empty: stop {stop_utc} is not after "
                             f"start {start_utc}")
    spice.require_coverage(et0 - CHUNK_PAD_S, et1 + CHUNK_PAD_S)
    ids = resolve_body(tx, et0, et1), resolve_body(rx, et0, et1)  # errors here, SPK cached
    if ids[0] == ids[1]:
        raise RoharnessError(f"transmitter and receiver are the same body ({tx})")
    n = max(1, int(math.ceil((et1 - et0) / (chunk_days * 86400.0))))
    edges = np.linspace(et0, et1, n + 1)
    tasks = {f"{label}-{i:04d}": (tx, rx, list(kernels), (et0, et1), (edges[i], edges[i + 1]),
                                  float(reference_altitude_km), float(step_s), i == n - 1)
             for i in range(n)}
    own = engine is None
    eng = Engine(workers=0) if own else engine
    if own:
        eng.__enter__()
    try:
        parts = list(eng.map(search_chunk, tasks, label=label, progress=progress).values())
    finally:
        if own:
            eng.__exit__(None, None, None)
    cpu = float(sum(p.attrs.get("search_cpu_s", 0.0) for p in parts))
    parts = [p for p in parts if p.sizes["event"]] or parts[:1]
    ds = xr.concat(parts, dim="event", data_vars="all", coords="minimal",
                   combine_attrs="override") if len(parts) > 1 else parts[0]
    ds = ds.assign_coords(event=np.arange(ds.sizes["event"]))
    ds.attrs.update(start_utc=start_utc, stop_utc=stop_utc, tx=str(tx), rx=str(rx),
                    search_cpu_s=cpu)
    return ds


# --------------------------------------------------------------------------- accuracy
def reference_density(scn: Scenario, sza_deg, ltst_hours, ls_deg) -> dict:
    """Template ionosphere's M2 peak density and N_e(150 km) at each event, over subsolar.

    Evaluated on a 1-deg SZA grid per Segale group (when the template uses ``segale2024``
    with ``group = "auto"``) and interpolated; NaN where SZA >= 90 deg.
    """
    from synth import ionosphere
    from synth.observe import _segale_group, build_layers

    sza = np.asarray(sza_deg, float)
    grid = np.arange(0.0, 90.0, 1.0)
    alt = np.arange(90e3, 200e3, 250.0)  # M2 (~120-150 km at SZA < 90 deg) and 150 km
    ion = scn["ionosphere"]
    auto = ion["model"] == "segale2024" and ion["group"] == "auto"
    groups = np.array([_segale_group(lt, ls) if auto else "" for lt, ls in
                       zip(np.broadcast_to(ltst_hours, sza.shape).ravel(),
                           np.broadcast_to(ls_deg, sza.shape).ravel())]).reshape(sza.shape)
    out = {"m2": np.full(sza.shape, np.nan), "ne150": np.full(sza.shape, np.nan)}
    for grp in np.unique(groups):
        lt, ls = {"": (12.0, 0.0), "dawn_aphelion": (6.0, 90.0),
                  "dawn_perihelion": (6.0, 250.0), "dusk_aphelion": (18.0, 90.0),
                  "dusk_perihelion": (18.0, 250.0)}[grp]
        pk, n150 = [], []
        for x in grid:
            ne = ionosphere.electron_density(alt, x, build_layers(scn, x, lt, ls),
                                             grazing=ion["grazing"])
            i = int(np.clip(np.argmax(ne), 1, len(ne) - 2))
            y0, y1, y2 = ne[i - 1:i + 2]  # parabola through the three points at the maximum
            pk.append(y1 + 0.125 * (y0 - y2) ** 2 / (2 * y1 - y0 - y2))
            n150.append(np.interp(150e3, alt, ne))
        pk, n150 = np.array(pk), np.array(n150)
        m = (groups == grp) & (sza < 90.0)
        out["m2"][m] = np.interp(sza[m], grid, pk / pk[0])
        out["ne150"][m] = np.interp(sza[m], grid, n150 / n150[0])
    return out


def select_subset(events: xr.Dataset, eligible: np.ndarray, n: int,
                  exclude=()) -> np.ndarray:
    """Indices of ``n`` representative eligible events, stratified in SZA and speed.

    The eligible events (not in ``exclude``) are split into ceil(n/2) SZA bins of equal
    count; in each bin the events nearest the 20th and 80th percentiles of |vertical speed|
    are taken (one bin with an odd ``n`` gets only the 50th). Deterministic.
    """
    idx = np.array([i for i in np.nonzero(eligible)[0] if i not in set(exclude)], int)
    if len(idx) <= n:
        return idx
    sza = events.sza_deg.values[idx]
    v = np.abs(events.vertical_speed_km_s.values[idx])
    nb = int(math.ceil(n / 2))
    order = np.argsort(sza, kind="stable")
    bins = np.array_split(order, nb)
    chosen = []
    for b, members in enumerate(bins):
        qs = (50,) if (n % 2 and b == nb // 2) else (20, 80)
        for q in qs:
            target = np.percentile(v[members], q)
            cand = [m for m in members[np.argsort(np.abs(v[members] - target), kind="stable")]
                    if idx[m] not in chosen]
            if cand:
                chosen.append(int(idx[cand[0]]))
    return np.array(sorted(chosen[:n]), int)


def fit_scaling(sigma, speed_km_s, nref) -> dict:
    """Fit ``sigma = C |V|^-p / nref`` in log space (module docstring); return C, p, scatter."""
    sigma, v, nref = (np.asarray(x, float) for x in (sigma, speed_km_s, nref))
    ok = np.isfinite(sigma) & (sigma > 0) & np.isfinite(v) & (np.abs(v) > 0) \
        & np.isfinite(nref) & (nref > 0)
    if not ok.any():
        return dict(c=np.nan, p=np.nan, scatter_log=np.nan, n=0)
    y = np.log(sigma[ok] * nref[ok])
    x = np.log(np.abs(v[ok]))
    p = 1.0
    if ok.sum() >= 3 and x.max() - x.min() > np.log(1.3):
        slope = np.polyfit(x, y, 1)[0]
        p = float(np.clip(-slope, 0.0, 3.0))
    logc = float(np.mean(y + p * x))
    resid = y - (logc - p * x)
    return dict(c=float(np.exp(logc)), p=p, n=int(ok.sum()),
                scatter_log=float(np.sqrt(np.mean(resid ** 2))) if ok.sum() > 1 else np.nan)


def predict(fit: dict, speed_km_s, nref) -> np.ndarray:
    """Apply a :func:`fit_scaling` result to events."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return fit["c"] * np.abs(np.asarray(speed_km_s, float)) ** -fit["p"] / np.asarray(nref)


def fit_with_floor(sigma, floor, speed_km_s, nref) -> dict:
    """The scaling rule with the retrieval's floor added in quadrature.

    The budget's per-event RMS (all sources on) contains the clean retrieval's own error
    (the floor: discretisation, smoothing, the drift correction fitted to drift-free
    data), which does not follow the sources' |V|^-p / N_ref scaling. The sources' part,
    sqrt(RMS^2 - floor^2), is fitted with :func:`fit_scaling`; the floor is represented
    by its RMS over the subset events, and the prediction is
    sqrt(floor^2 + (C |V|^-p / N_ref)^2) (:func:`predict_with_floor`).
    """
    sigma, floor = np.asarray(sigma, float), np.asarray(floor, float)
    with np.errstate(invalid="ignore"):
        src = np.sqrt(np.clip(sigma ** 2 - np.nan_to_num(floor) ** 2, 0.0, None))
        fl = float(np.sqrt(np.nanmean(floor ** 2))) if np.isfinite(floor).any() else 0.0
    f = fit_scaling(src, speed_km_s, nref)
    f["floor"] = fl
    return f


def predict_with_floor(fit: dict, speed_km_s, nref) -> np.ndarray:
    """Apply a :func:`fit_with_floor` result to events."""
    n = np.shape(np.asarray(speed_km_s))
    src = predict(fit, speed_km_s, nref) if fit["n"] else np.zeros(n)
    return np.sqrt(fit["floor"] ** 2 + src ** 2)


def per_event_rms(ds: xr.Dataset) -> dict:
    """RMS over realisations of each metric, per occultation, of the all-sources run."""
    from validation.budget import ALL, STATUS_OK

    labels = [str(s) for s in ds.source.values]
    lab = ALL if ALL in labels else labels[0]
    d = ds.sel(source=lab)
    ok = d.status == STATUS_OK
    out = {}
    for m, (var, _, _, _) in METRICS.items():
        x = d[var].where(ok)
        with np.errstate(invalid="ignore"):
            out[m] = np.sqrt((x ** 2).mean("realisation")).values
        # the clean retrieval's own error (the budget's floor): it does not scale with
        # the error sources, see :func:`fit_with_floor`
        out[f"floor_{m}"] = np.abs(ds[f"floor_{var}"].values)
    out["n_ok"] = ok.sum("realisation").values
    return out


def budget_sources(c: Campaign, scn: Scenario):
    """Error sources of the campaign's budgets (``[accuracy] sources`` or the template's)."""
    if c["accuracy"]["sources"] is not None:
        return list(c["accuracy"]["sources"])
    from validation.budget import resolve_sources

    names, _ = resolve_sources(scn, None)
    return [s for s in names if s != "parrott"]


def _run_event_budgets(c, scn, events, rows, realisations, *, engine, out_dir, progress,
                       label):
    """The budget on the events ``rows`` (pinned variants of ``scn``): per-event RMS."""
    from validation.budget import run_budget

    if not len(rows):
        return {m: np.zeros(0) for m in METRICS} | {"n_ok": np.zeros(0, int)}
    recs = _rows(events, rows)
    variants = [event_scenario(scn, r) for r in recs]
    scheduler = engine.client.scheduler.address if (engine is not None
                                                    and not engine.serial) else None
    workers = 0 if engine is None or engine.serial else None
    n = len(variants)
    empty = ({m: np.full(n, np.nan) for m in METRICS} | {"n_ok": np.zeros(n, int)}
             | {f"floor_{m}": np.full(n, np.nan) for m in METRICS})
    try:
        summary, ds = run_budget(scn, sources=budget_sources(c, scn),
                                 realisations=realisations, seed=c[""]["seed"],
                                 scenarios=variants, scheduler=scheduler, workers=workers,
                                 out_dir=(Path(out_dir) / "budgets" / label
                                          if out_dir is not None else None),
                                 progress=progress, report=False, return_dataset=True)
    except RoharnessError:  # no event of the set could be simulated: no prediction
        return empty
    # occultations whose forward model failed are left out of the budget's Dataset
    failed = {int(f["index"]) for f in summary.get("occultations_failed", [])}
    kept = [o for o in range(n) if o not in failed]
    rms = per_event_rms(ds)
    for k, v in rms.items():
        empty[k][kept] = v
    return empty


def _rows(events: xr.Dataset, idx) -> list[dict]:
    keys = ("kind", "et_link", "vertical_speed_km_s", "top_altitude_km", "sza_deg",
            "duration_s")
    ref = float(events.attrs.get("reference_altitude_m", 200e3)) / 1e3
    return [dict({k: events[k].values[i] for k in keys}, event=int(i),
                 reference_altitude_km=ref) for i in idx]


def observable(events: xr.Dataset, c: Campaign) -> np.ndarray:
    """Events whose ray spans the target's altitude range (top above, bottom below)."""
    t = c["target"]
    return ((events.bottom_altitude_km.values <= t["max_bottom_altitude_km"])
            & (events.top_altitude_km.values >= t["min_top_altitude_km"]))


def budget_eligible(events: xr.Dataset, c: Campaign) -> np.ndarray:
    """Events the budget can simulate: observable, dayside, reaching the template's bottom."""
    tmpl = c.template["event"]
    return (observable(events, c)
            & (events.sza_deg.values <= c["accuracy"]["max_sza_deg"])
            & ((events.bottom_altitude_km.values <= tmpl["bottom_altitude_km"])
               | np.isfinite(events.et_0km.values))
            & (events.top_altitude_km.values >= tmpl["bottom_altitude_km"] + 150.0))


def meets_target(pred: dict, c: Campaign) -> np.ndarray:
    t = c["target"]
    ok = np.ones(len(pred["m2_peak_density_rel"]), bool)
    for m in METRICS:
        if t[m] is not None:
            with np.errstate(invalid="ignore"):
                ok &= pred[m] <= t[m]
    return ok


def apply_cadence(events: xr.Dataset, candidates: np.ndarray, good: np.ndarray,
                  per_week: float, rule: str, start_et: float) -> np.ndarray:
    """Boolean mask of the events observed under a cadence.

    The span is cut into slots of 7 / ``per_week`` days from its start; in each slot one
    candidate (observable) event is observed: ``lowest_sza`` prefers events meeting the
    target (``good``) and among them the lowest SZA; ``first`` takes the earliest
    candidate; ``all`` observes every candidate (no cadence).
    """
    if rule not in CADENCE_RULES:
        raise ValueError(f"unknown cadence rule {rule!r}; known rules: "
                         f"{', '.join(CADENCE_RULES)}")
    cand = np.asarray(candidates, bool)
    if rule == "all":
        return cand.copy()
    slot = np.floor((events.et_link.values - start_et) / (7.0 / per_week * 86400.0))
    sza = events.sza_deg.values
    chosen = np.zeros(len(cand), bool)
    idx = np.nonzero(cand)[0]
    for s in np.unique(slot[idx]):
        members = idx[slot[idx] == s]
        if rule == "first":
            pick = members[np.argmin(events.et_link.values[members])]
        else:
            key = np.lexsort((sza[members], ~np.asarray(good)[members]))
            pick = members[key[0]]
        chosen[pick] = True
    return chosen


def coverage(sza_deg) -> dict:
    """SZA coverage of a set of events: count, min, count below 45 deg, histogram."""
    sza = np.asarray(sza_deg, float)
    hist, _ = np.histogram(sza, bins=SZA_BINS_DEG)
    return dict(n=int(len(sza)), min_sza_deg=float(sza.min()) if len(sza) else np.nan,
                max_sza_deg=float(sza.max()) if len(sza) else np.nan,
                n_below_sza_45=int((sza < 45.0).sum()),
                n_dayside=int((sza < 90.0).sum()), n_nightside=int((sza >= 90.0).sum()),
                sza_histogram=hist.tolist())


# --------------------------------------------------------------------------- driver
def run_campaign(campaign="mex-tgo-180d", *, start_utc=None, stop_utc=None, out_dir=None,
                 scheduler=None, workers=None, progress=None, accuracy=True) -> dict:
    """Run a campaign design (module docstring); return the summary.

    Parameters
    ----------
    campaign : Campaign, str or path
        A campaign object, a built-in name or a TOML file.
    start_utc, stop_utc : str, optional
        Override the ``[span]``.
    out_dir : path, optional
        Writes ``events.csv``, ``events.nc``, ``comparison.csv``, ``summary.json`` and
        ``report.html``; budget checkpoints go to ``out_dir/budgets`` so a rerun resumes.
    scheduler, workers
        See :class:`validation.engine.Engine` (``workers=0``: in-process).
    accuracy : bool
        Run the budgets (False: geometry and coverage only).

    Returns
    -------
    dict
        ``n_events``, ``min_sza_deg``, ``n_below_sza_45``, ``designs`` (per design
        ``n_meeting_target`` and coverage), ``comparison``, ``check``, ``fits``, ...;
        the events Dataset is under the key ``"events"`` (not JSON).
    """
    from retrieval import spice

    t_start = time.perf_counter()
    c = campaign if isinstance(campaign, Campaign) else load_campaign(campaign)
    span = dict(c["span"])
    if start_utc:
        span["start_utc"] = start_utc
    if stop_utc:
        span["stop_utc"] = stop_utc
    link = c.link
    timing = {}
    with Engine(scheduler, workers) as eng:
        t0 = time.perf_counter()
        events = search_link(link["transmitter"], link["receiver"], span["start_utc"],
                             span["stop_utc"], kernels=link["kernels"],
                             reference_altitude_km=span["reference_altitude_km"],
                             step_s=span["step_s"], chunk_days=span["chunk_days"],
                             engine=eng, progress=progress, label="search")
        timing["search_s"] = time.perf_counter() - t0
        timing["search_cpu_s"] = events.attrs["search_cpu_s"]
        comp = None
        if c["comparison"]["enabled"]:
            t0 = time.perf_counter()
            comp = search_link(c["comparison"]["transmitter"], c["comparison"]["receiver"],
                               span["start_utc"], span["stop_utc"], kernels=link["kernels"],
                               reference_altitude_km=span["reference_altitude_km"],
                               step_s=span["step_s"], chunk_days=span["chunk_days"],
                               engine=eng, progress=progress, label="comparison")
            timing["comparison_search_s"] = time.perf_counter() - t0
        start_et = spice.utc_to_et(span["start_utc"])
        t0 = time.perf_counter()
        acc = _accuracy(c, events, eng, out_dir, progress) if accuracy else None
        timing["accuracy_s"] = time.perf_counter() - t0
        engine_description = eng.description
    events, designs, fits, check = _assemble(c, events, acc, start_et)
    cov = coverage(events.sza_deg.values)
    summary = dict(
        campaign=c.name, link=dict(link, kernels=list(link["kernels"])),
        start_utc=span["start_utc"], stop_utc=span["stop_utc"],
        reference_altitude_km=span["reference_altitude_km"],
        n_events=cov["n"], min_sza_deg=cov["min_sza_deg"], max_sza_deg=cov["max_sza_deg"],
        n_below_sza_45=cov["n_below_sza_45"], n_below_sza_10=int(
            (events.sza_deg.values < 10.0).sum()),
        n_nightside=cov["n_nightside"], n_observable=int(events.observable.values.sum()),
        n_ingress=int((events.kind.values == "ingress").sum()),
        sza_histogram=cov["sza_histogram"], sza_bins_deg=SZA_BINS_DEG.tolist(),
        target={k: v for k, v in c["target"].items()},
        cadence=dict(c["cadence"]), designs=designs, fits=fits, check=check,
        n_meeting_target={d: v["n_meeting_target"] for d, v in designs.items()},
        template=c.template.name, accuracy_run=bool(accuracy),
        budget_sources=budget_sources(c, design_scenario(c, c.designs[0])) if accuracy
        else [],
    )
    if comp is not None:
        cc = coverage(comp.sza_deg.values)
        obs_c = comp.bottom_altitude_km.values <= c["target"]["max_bottom_altitude_km"]
        summary["comparison"] = dict(
            transmitter=c["comparison"]["transmitter"], receiver=c["comparison"]["receiver"],
            n_events=cc["n"], min_sza_deg=cc["min_sza_deg"],
            n_below_sza_45=cc["n_below_sza_45"], n_below_sza_40=int(
                (comp.sza_deg.values < 40.0).sum()), sza_histogram=cc["sza_histogram"],
            n_observable=int(obs_c.sum()))
    summary.update(timing=timing, elapsed_s=time.perf_counter() - t_start,
                   engine=engine_description)
    if out_dir is not None:
        write_campaign(events, comp, summary, c, out_dir)
    summary["events"] = events
    summary["comparison_events"] = comp
    return summary


def _accuracy(c: Campaign, events: xr.Dataset, eng, out_dir, progress) -> dict:
    """Budgets of the subset (and the check events) for every distinct design."""
    acc = c["accuracy"]
    elig = budget_eligible(events, c)
    scn0 = design_scenario(c, c.designs[0])
    bad = []
    subset = _valid_selection(events, elig, acc["subset"], scn0, bad, ())
    check = _valid_selection(events, elig, acc["check"], scn0, bad, subset) \
        if acc["check"] else np.zeros(0, int)
    out = {"subset": subset, "check": check, "designs": {}}
    physics_cache = {}
    for d in c.designs:
        scn = design_scenario(c, d)
        key = json.dumps({k: v for k, v in d.items() if k not in ("name", "per_week")},
                         sort_keys=True)
        if key not in physics_cache:
            label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in d["name"])
            res = _run_event_budgets(c, scn, events, subset, acc["realisations"], engine=eng,
                                     out_dir=out_dir, progress=progress, label=f"{label}-subset")
            chk = None
            if len(check):
                chk = _run_event_budgets(c, scn, events, check, acc["check_realisations"]
                                         or acc["realisations"], engine=eng, out_dir=out_dir,
                                         progress=progress, label=f"{label}-check")
            physics_cache[key] = dict(subset=res, check=chk, scenario=scn)
        out["designs"][d["name"]] = physics_cache[key]
    return out


def pin_ok(scn: Scenario, events: xr.Dataset, i: int) -> bool:
    """Whether the pinned variant of event ``i`` simulates that very occultation.

    The variant's search (:func:`synth.observe.choose_event`) must find an event of the same
    kind whose surface crossing is the event's (to 1 s; both are refined to 1 ms), and the
    sampling must give enough samples; otherwise the event is replaced in the subset.
    """
    from synth.observe import choose_event, sample_times

    row = _rows(events, [i])[0]
    try:
        variant = event_scenario(scn, row)
        ends = choose_event(variant)
        sample_times(variant, ends)
    except RoharnessError:
        return False
    e0 = float(events.et_0km.values[i])
    return not np.isfinite(e0) or abs(float(ends["event"].et_0km) - e0) < 1.0


def _valid_selection(events, eligible, n, scn, bad, exclude, rounds=4):
    """:func:`select_subset`, replacing events whose pinned variant fails :func:`pin_ok`."""
    chosen = np.zeros(0, int)
    for _ in range(rounds):
        chosen = select_subset(events, eligible, n, exclude=list(exclude) + bad)
        new_bad = [int(i) for i in chosen if not pin_ok(scn, events, int(i))]
        if not new_bad:
            return chosen
        bad += new_bad
    return np.array([i for i in chosen if i not in bad], int)


def _assemble(c: Campaign, events: xr.Dataset, acc, start_et):
    """Add observability, predictions, cadence flags to the events; per-design results."""
    n = events.sizes["event"]
    names = [d["name"] for d in c.designs]
    events = events.copy()
    obs = observable(events, c)
    events["observable"] = ("event", obs, {"long_name": "ray spans the target's altitude "
                                           "range (top above min_top, bottom below "
                                           "max_bottom)"})
    nd = len(names)
    pred = {m: np.full((n, nd), np.nan) for m in METRICS}
    direct = {m: np.full((n, nd), np.nan) for m in METRICS}
    meets = np.zeros((n, nd), bool)
    observed = np.zeros((n, nd), bool)
    in_subset = np.zeros(n, bool)
    fits, check, designs = {}, None, {}
    nref = None
    if acc is not None:
        in_subset[acc["subset"]] = True
        nref = reference_density(c.template, events.sza_deg.values, events.ltst_hours.values,
                                 events.ls_deg.values)
        dayside = events.sza_deg.values <= c["accuracy"]["max_sza_deg"]
        v = events.vertical_speed_km_s.values
        check = {"events": acc["check"].tolist(), "designs": {}}
        for j, d in enumerate(c.designs):
            r = acc["designs"][d["name"]]
            fits[d["name"]] = {}
            for m in METRICS:
                direct[m][acc["subset"], j] = r["subset"][m]
                if r["check"] is not None and len(acc["check"]):
                    direct[m][acc["check"], j] = r["check"][m]
            for m, (_, ref, _, _) in METRICS.items():
                f = fit_with_floor(r["subset"][m], r["subset"][f"floor_{m}"],
                                   v[acc["subset"]], nref[ref][acc["subset"]])
                fits[d["name"]][m] = f
                p = predict_with_floor(f, v, nref[ref])
                if not f["n"] and not f["floor"] > 0:  # nothing measured: no prediction
                    p = np.full(n, np.nan)
                pred[m][:, j] = np.where(dayside & obs, p, np.nan)
            meets[:, j] = obs & meets_target({m: pred[m][:, j] for m in METRICS}, c)
            if r["check"] is not None and len(acc["check"]):
                rows = {}
                for m in METRICS:
                    mc = r["check"][m]
                    predicted = pred[m][acc["check"], j]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        ratio = predicted / mc
                    rows[m] = dict(predicted=predicted.tolist(), direct=mc.tolist(),
                                   ratio=ratio.tolist(),
                                   max_abs_rel_diff=float(np.nanmax(np.abs(ratio - 1)))
                                   if np.isfinite(ratio).any() else np.nan)
                check["designs"][d["name"]] = rows
    rule, per_week0 = c["cadence"]["rule"], c["cadence"]["per_week"]
    for j, d in enumerate(c.designs):
        per_week = d["per_week"] or per_week0
        observed[:, j] = apply_cadence(events, obs, meets[:, j], per_week, rule, start_et)
        good = observed[:, j] & meets[:, j]
        cov = coverage(events.sza_deg.values[good])
        designs[d["name"]] = dict(
            {k: v for k, v in d.items() if k != "name"}, per_week=per_week,
            n_observed=int(observed[:, j].sum()), n_meeting_target=int(good.sum()),
            n_meeting_target_all_events=int(meets[:, j].sum()),
            min_sza_deg=cov["min_sza_deg"], n_below_sza_45=cov["n_below_sza_45"],
            sza_histogram=cov["sza_histogram"],
            median_m2_peak_density_rel=_nanmedian(pred["m2_peak_density_rel"][observed[:, j], j]),
            median_m2_peak_altitude_km=_nanmedian(pred["m2_peak_altitude_km"][observed[:, j], j]))
    events = events.assign_coords(design=("design", names))
    for m, (_, _, unit, long_name) in METRICS.items():
        events[f"predicted_{m}"] = (("event", "design"), pred[m],
                                    {"units": unit, "long_name": long_name})
        events[f"budget_{m}"] = (("event", "design"), direct[m], {
            "units": unit, "long_name": long_name.replace("predicted", "Monte Carlo (error "
                                                          "budget, all sources on)")})
    events["meets_target"] = (("event", "design"), meets,
                              {"long_name": "observable and predicted to meet the target"})
    events["observed"] = (("event", "design"), observed,
                          {"long_name": "selected by the design's cadence"})
    events["in_budget_subset"] = ("event", in_subset,
                                  {"long_name": "run through the error budget"})
    if nref is not None:
        events["m2_reference_density"] = ("event", nref["m2"], {
            "units": "1", "long_name": "template M2 peak density over its subsolar value"})
    events.attrs.update(campaign=c.name, Conventions="CF-1.8",
                        title="roharness campaign: occultation events, coverage, accuracy")
    return events, designs, fits, check


def _nanmedian(x):
    x = np.asarray(x, float)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else np.nan


# --------------------------------------------------------------------------- outputs
def events_table(events: xr.Dataset):
    """One row per event (pandas DataFrame); (event, design) variables become columns
    ``<name>__<design>``."""
    import pandas as pd

    first = ("time_utc", "kind", "lat_deg", "lon_deg", "sza_deg", "ltst_hours", "ls_deg",
             "duration_s", "vertical_speed_km_s", "top_altitude_km", "bottom_altitude_km")
    cols = {"event": events.event.values}
    names = [k for k in first if k in events] + [k for k in events.data_vars
                                                 if k not in first]
    for k in names:
        if events[k].dims == ("event",):
            cols[k] = events[k].values
    for k, v in events.data_vars.items():
        if v.dims == ("event", "design"):
            for j, d in enumerate(events.design.values):
                cols[f"{k}__{d}"] = v.values[:, j]
    return pd.DataFrame(cols)


def write_campaign(events, comp, summary, c, out_dir) -> None:
    """``events.csv``, ``events.nc``, ``comparison.csv``, ``summary.json``, ``report.html``."""
    from validation.cli import _clean

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "events.nc", suffix=".nc") as tmp:
        ev = events.copy()
        for k in ("observable", "in_budget_subset", "meets_target", "observed"):
            ev[k] = ev[k].astype("i1")
        ev.to_netcdf(tmp)
    with atomic_path(out / "events.csv", suffix=".csv") as tmp:
        events_table(events).to_csv(tmp, index=False, float_format="%.6g")
    if comp is not None:
        with atomic_path(out / "comparison.csv", suffix=".csv") as tmp:
            events_table(comp).to_csv(tmp, index=False, float_format="%.6g")
    js = {k: v for k, v in summary.items() if k not in ("events", "comparison_events")}
    write_text_atomic(out / "summary.json", json.dumps(_clean(js), indent=2) + "\n")
    campaign_report(events, comp, js, out / "report.html")


# --------------------------------------------------------------------------- report
def _map_figure(events, designs):
    from validation.report import figure

    fig = figure()
    fig.set_size_inches(7.5, 5.5)
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(gs[1, 0])
    top = fig.add_subplot(gs[0, 0], sharex=ax)
    right = fig.add_subplot(gs[1, 1], sharey=ax)
    lt, lat, sza = (events[k].values for k in ("ltst_hours", "lat_deg", "sza_deg"))
    sc = ax.scatter(lt, lat, c=sza, s=6, cmap="viridis_r", vmin=0, vmax=180,
                    label="all events")
    if "observed" in events and events.sizes.get("design", 0):
        o = events.observed.values[:, 0]
        ax.scatter(lt[o], lat[o], s=22, facecolors="none", edgecolors="r", linewidths=0.8,
                   label=f"observed ({designs[0]})")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel("local true solar time at the tangent point [h]")
    ax.set_ylabel("latitude [deg]")
    ax.set_xlim(0, 24)
    ax.set_ylim(-90, 90)
    top.hist(lt, bins=np.arange(0, 25, 1), color="0.5")
    top.set_ylabel("events")
    top.tick_params(labelbottom=False)
    right.hist(lat, bins=np.arange(-90, 91, 10), orientation="horizontal", color="0.5")
    right.set_xlabel("events")
    right.tick_params(labelleft=False)
    fig.colorbar(sc, ax=right, label="SZA [deg]")
    return fig


def _sza_figure(events, comp, summary):
    from validation.report import figure

    fig = figure()
    ax = fig.add_subplot()
    ax.hist(events.sza_deg.values, bins=SZA_BINS_DEG, alpha=0.6,
            label=f"{summary['link']['transmitter']} -> {summary['link']['receiver']} "
            f"(mutual, {summary['n_events']})")
    if comp is not None and comp.sizes["event"]:
        ax.hist(comp.sza_deg.values, bins=SZA_BINS_DEG, alpha=0.6,
                label=f"{summary['comparison']['transmitter']} -> "
                f"{summary['comparison']['receiver']} (conventional, "
                f"{summary['comparison']['n_events']})")
    ax.axvline(45.0, color="k", ls="--", lw=0.8)
    ax.axvline(90.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("solar zenith angle at the tangent point [deg]")
    ax.set_ylabel("events")
    ax.legend(fontsize=8)
    return fig


def _accuracy_figure(events, summary):
    from validation.report import figure

    fig = figure()
    fig.set_size_inches(7.5, 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    sza = events.sza_deg.values
    # designs with the same predictions (cadence-only variants) are drawn once
    shown, seen = [], []
    for j, d in enumerate(events.design.values):
        y = events.predicted_m2_peak_density_rel.values[:, j]
        k = next((i for i, z in enumerate(seen) if np.array_equal(z, y, equal_nan=True)), None)
        if k is None:
            seen.append(y)
            shown.append([j, [str(d)]])
        else:
            shown[k][1].append(str(d))
    for (m, ylabel, tkey), ax in zip((("m2_peak_density_rel", "M2 peak density\n1-sigma [%]",
                                        "m2_peak_density_rel"),
                                       ("m2_peak_altitude_km", "M2 peak altitude\n1-sigma [km]",
                                        "m2_peak_altitude_km")), axes):
        scale = 100.0 if m.endswith("rel") else 1.0
        for j, names in shown:
            y = events[f"predicted_{m}"].values[:, j] * scale
            line = ax.scatter(sza, y, s=4, label=" = ".join(names))
            mc = events[f"budget_{m}"].values[:, j] * scale
            ax.scatter(sza, mc, s=30, marker="D", facecolors="none",
                       edgecolors=line.get_facecolor()[0])
        t = summary["target"][tkey]
        if t is not None:
            ax.axhline(t * scale, color="k", ls="--", lw=0.8, label="target")
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("solar zenith angle [deg] (dots: prediction; diamonds: Monte Carlo "
                       "of the events run through the budget)")
    return fig


def campaign_report(events, comp, summary, path) -> str:
    """The campaign's self-contained HTML report (:mod:`validation.report`)."""
    from validation.report import html_report, table_html

    d0 = list(summary["designs"])
    overview = [
        ("link", f"{summary['link']['transmitter']} -> {summary['link']['receiver']} at "
                 f"{summary['link']['frequency_hz'] / 1e6:g} MHz"),
        ("span", f"{summary['start_utc']} to {summary['stop_utc']}"),
        ("events (ingress + egress)", summary["n_events"]),
        ("observable (ray spans the target's altitudes)", summary["n_observable"]),
        ("min SZA [deg]", summary["min_sza_deg"]),
        ("events below SZA 45 deg", summary["n_below_sza_45"]),
        ("events below SZA 10 deg", summary["n_below_sza_10"]),
        ("nightside events (SZA >= 90 deg)", summary["n_nightside"]),
    ]
    if "comparison" in summary:
        cm = summary["comparison"]
        overview += [(f"conventional {cm['transmitter']} -> {cm['receiver']}: events",
                      cm["n_events"]),
                     ("conventional: min SZA [deg]", cm["min_sza_deg"]),
                     ("conventional: events below SZA 45 deg", cm["n_below_sza_45"])]
    cols = ["design", "oscillator", "frequency_hz", "sampling_rate_hz", "cn0_dbhz",
            "per_week", "n_observed", "n_meeting_target", "min_sza_deg", "n_below_sza_45",
            "median_m2_peak_density_rel", "median_m2_peak_altitude_km"]
    trade = [dict(v, design=k) for k, v in summary["designs"].items()]
    for r in trade:
        for k in cols:
            if r.get(k) is None:
                r[k] = "template"
    t = summary["target"]
    target = (f"Target (1-sigma): M2 peak density within {100 * t['m2_peak_density_rel']:g} %, "
              f"M2 peak altitude within {t['m2_peak_altitude_km']:g} km"
              + (f", N_e(150 km) within {100 * t['ne150_rel']:g} %" if t["ne150_rel"] else "")
              + f"; the ray must reach {t['max_bottom_altitude_km']:g} km and start above "
              f"{t['min_top_altitude_km']:g} km. Cadence: {summary['cadence']['per_week']:g} per "
              f"week, rule '{summary['cadence']['rule']}'.")
    sections = [("Overview", table_html(overview, ["quantity", "value"])),
                ("Coverage: latitude vs local time", _map_figure(events, d0)),
                ("SZA histogram: mutual vs conventional RO", _sza_figure(events, comp, summary))]
    if summary["accuracy_run"]:
        fit_rows = [dict(design=d, metric=m, C=f["c"], p=f["p"], floor=f.get("floor"),
                         n=f["n"], scatter_log=f["scatter_log"])
                    for d, fm in summary["fits"].items() for m, f in fm.items()]
        sections += [
            ("Predicted accuracy vs SZA", [_accuracy_figure(events, summary),
                                           "<p>sigma = sqrt(floor^2 + (C |V|^-p / "
                                           "N_ref(SZA))^2), fitted to the budget on the "
                                           "subset (module validation.campaign).</p>",
                                           table_html(fit_rows, ["design", "metric", "C", "p",
                                                                 "floor", "n",
                                                                 "scatter_log"])])]
        chk = summary.get("check") or {}
        if chk.get("designs"):
            rows = []
            for d, mm in chk["designs"].items():
                for m, r in mm.items():
                    for e, p, x in zip(chk["events"], r["predicted"], r["direct"]):
                        rows.append(dict(design=d, metric=m, event=e, predicted=p, direct=x,
                                         ratio=p / x if x else float("nan")))
            sections.append(("Prediction vs direct Monte Carlo (events outside the subset)",
                             table_html(rows, ["design", "metric", "event", "predicted",
                                               "direct", "ratio"])))
    sections.append(("Trade study", [f"<p>{target}</p>", table_html(trade, cols)]))
    return html_report(f"Campaign {summary['campaign']}", sections, path,
                       meta=f"template {summary['template']}, "
                       f"{summary['start_utc']} to {summary['stop_utc']}")
