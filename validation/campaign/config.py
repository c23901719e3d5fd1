"""Campaign files: the schema, :class:`Campaign`, and the scenario variants they make.

A campaign file (TOML; built-ins in ``validation/campaigns``) is described by
:data:`SCHEMA`, a :class:`synth.config.Schema` like the scenarios': every key has a type,
unit and physical range, checked before any work starts, and every error is one sentence
naming the file, section, key, value and what is allowed. The template scenario
(``[accuracy] scenario``) is loaded and checked too, and every ``[[design]]`` must make a
valid scenario (:func:`design_scenario`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synth import config
from synth.config import REQUIRED, C, F, I, Key, Schema
from synth.errors import ScenarioError
from synth.scenario import (
    WHY_CARRIER,
    WHY_CN0,
    WHY_LEVEL2,
    WHY_SEED,
    Scenario,
    load_scenario,
    parse_scenario,
)
from validation.campaign.cadence import CADENCE_RULES

if TYPE_CHECKING:  # annotations only
    import os

WHY_PER_WEEK = ("from one profile in two years to one every ~10 min; two orbiters give "
                "~10 occultations a day")
WHY_REL = "a relative 1-sigma error: 0.01 % to 10 times the value"
#: Longest campaign span [days]: ten years, a long mission with its extensions.
MAX_SPAN_DAYS = 3660.0
#: Most search chunks (engine tasks) of one campaign.
MAX_CHUNKS = 10_000

_SECTIONS: dict[str, dict[str, Key]] = {
    "": {
        "name": Key("str", None, "campaign name (default: the file name)"),
        "description": Key("str", "", "one-line description"),
        "kind": C("campaign", "file kind", "campaign"),
        "seed": I(0, "root random seed of the budget runs", 0, 2**63 - 1, WHY_SEED),
    },
    "link": {
        "transmitter": Key("str", None, "preset orbit (mex, tgo, maven) or NAIF name/ID from "
                           "`kernels` (default: the template scenario's)"),
        "receiver": Key("str", None, "as transmitter"),
        "frequency_hz": F(None, "carrier frequency (default: the template's)", "Hz", 100e6,
                          40e9, WHY_CARRIER),
        "kernels": Key("strs", None, "extra SPICE kernels (default: the template's)"),
    },
    "span": {
        "start_utc": Key("utc", "2023-01-01", "campaign start (UTC)"),
        "stop_utc": Key("utc", "2023-06-30", "campaign stop (UTC)"),
        "reference_altitude_km": F(200.0, "tangent altitude at which events are timed and "
                                   "their geometry (SZA, LTST, ...) is given", "km", 20.0,
                                   1000.0, "within the ionosphere: 200 km is the top of the "
                                   "photochemical region"),
        "step_s": F(120.0, "initial search step (ambiguous intervals are refined, so the step "
                    "changes the cost, not the events; 120 s measured fastest)", "s", 1.0,
                    3600.0, "an occultation lasts minutes; steps beyond an hour only defer "
                    "the work to the refinement"),
        "chunk_days": F(30.0, "search chunk length (one engine task per chunk)", "days", 0.05,
                        366.0, "an hour to a year per engine task"),
    },
    "accuracy": {
        "scenario": Key("str", "mex-tgo-uhf-drift", "template scenario (built-in name or TOML "
                        "file relative to the campaign file): ionosphere, oscillators, "
                        "receiver, retrieval and [budget] settings"),
        "sources": Key("strs", None, "error sources (default: the template's [budget] "
                       "sources without the 'parrott' recipe)"),
        "realisations": I(10, "Monte Carlo realisations per source and subset event", 1,
                          100_000, "as the scenario's [budget] realisations"),
        "subset": I(8, "events run through the budget per design (stratified in SZA and "
                    "vertical speed)", 1, 1000, "each subset event is a full error budget"),
        "check": I(0, "events outside the subset run as a direct Monte Carlo to check the "
                   "prediction (0 = none)", 0, 1000, "each checked event is a full error "
                   "budget"),
        "check_realisations": I(None, "realisations of the check (default: realisations)", 2,
                                100_000, "a spread needs two; as realisations above"),
        "max_sza_deg": F(85.0, "events above this SZA get no accuracy prediction (the M2 peak "
                         "laws are fitted below 90 deg)", "deg", 0.0, 90.0, "the peak laws "
                         "hold on the dayside only", lo_open=True, hi_open=True),
    },
    "target": {
        "m2_peak_density_rel": F(0.10, "1-sigma relative error of the M2 peak density "
                                 "required", "1", 1e-4, 10.0, WHY_REL),
        "m2_peak_altitude_km": F(2.0, "1-sigma M2 peak altitude error required", "km", 0.01,
                                 100.0, "10 m to the whole ionosphere"),
        "ne150_rel": F(None, "1-sigma relative N_e(150 km) error required (none: not "
                       "required)", "1", 1e-4, 10.0, WHY_REL),
        "max_bottom_altitude_km": F(100.0, "the ray must reach this tangent altitude (below "
                                    "the M2 peak)", "km", 0.0, 1000.0, "from the surface "
                                    "up"),
        "min_top_altitude_km": F(260.0, "the ray must start above this tangent altitude (a "
                                 "vacuum baseline above the ionosphere)", "km", 0.0, 2000.0,
                                 "up to the sampling top's limit"),
    },
    "cadence": {
        "per_week": F(2.0, "observations per week (one per slot of 7/per_week days)",
                      "1/week", 0.01, 1000.0, WHY_PER_WEEK),
        "rule": C("lowest_sza", "which event of a slot is observed: lowest_sza (an event "
                  "meeting the target first, then the lowest SZA), first (the first "
                  "observable event), all (every observable event, no cadence)",
                  *CADENCE_RULES),
    },
    "comparison": {
        "enabled": Key("bool", True, "also search a conventional spacecraft -> Earth link"),
        "transmitter": Key("str", "mex", "spacecraft of the conventional link"),
        "receiver": Key("str", "earth", "earth or a DSN station (dss-14/43/63)"),
    },
}

#: Keys of each ``[[design]]`` table (``None`` = the campaign/template value).
DESIGN_KEYS: dict[str, Key] = {
    "name": Key("str", REQUIRED, "design name (letters, digits, - _ .)",
                pattern=r"[A-Za-z0-9_.-]+"),
    "oscillator": C(None, "receiver oscillator class ([oscillator] receiver_preset of the "
                    "template)", "uso", "tcxo", "electra", "none"),
    "frequency_hz": F(None, "carrier frequency (UHF 437.1e6, X band 8.4e9)", "Hz", 100e6,
                      40e9, WHY_CARRIER),
    "sampling_rate_hz": F(None, "level-2 sample rate ([sampling] rate_hz)", "Hz", 0.01,
                          100.0, WHY_LEVEL2),
    "cn0_dbhz": F(None, "carrier-to-noise density ([receiver] cn0_dbhz)", "dB-Hz", 10.0,
                  90.0, WHY_CN0),
    "per_week": F(None, "cadence (default: [cadence] per_week)", "1/week", 0.01, 1000.0,
                  WHY_PER_WEEK),
}


def _rule_span(doc, ctx) -> None:
    sp = doc["span"]
    days = (config.utc(sp["stop_utc"]) - config.utc(sp["start_utc"])) / np.timedelta64(1, "D")
    if not 0 < days <= MAX_SPAN_DAYS:
        ctx.fail("span", f"start_utc = \"{sp['start_utc']}\" to stop_utc = "
                 f"\"{sp['stop_utc']}\" is a span of {days:g} days; expected a stop after the "
                 f"start and at most {MAX_SPAN_DAYS:g} days")
    if days / sp["chunk_days"] > MAX_CHUNKS:
        ctx.fail("span", f"chunk_days = {sp['chunk_days']:g} cuts the {days:g}-day span into "
                 f"more than {MAX_CHUNKS} search tasks")


def _rule_accuracy(doc, ctx) -> None:
    if doc["accuracy"]["sources"] is not None and not doc["accuracy"]["sources"]:
        ctx.fail("accuracy", "sources = [] names no error source; give at least one or "
                 "leave the key out")


def _rule_target(doc, ctx) -> None:
    t = doc["target"]
    if not t["max_bottom_altitude_km"] < t["min_top_altitude_km"]:
        ctx.fail("target", f"max_bottom_altitude_km = {t['max_bottom_altitude_km']:g} km must "
                 f"be below min_top_altitude_km = {t['min_top_altitude_km']:g} km "
                 "(0 <= bottom < top)")


def _rule_designs(doc, ctx) -> None:
    seen = set()
    for i, d in enumerate(doc["design"]):
        if d["name"] in seen:
            ctx.fail(f"[design]] {i + 1}", f"name = \"{d['name']}\" is used twice")
        seen.add(d["name"])


#: The campaign file: every key, its type, unit, range (with its reason) and meaning.
SCHEMA = Schema("campaign", _SECTIONS, arrays={"design": DESIGN_KEYS},
                rules=(_rule_span, _rule_accuracy, _rule_target, _rule_designs))


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


def builtin_text(name: str, annotated: bool = False) -> str:
    """The TOML text of a built-in campaign (``annotated``: every key documented, see
    :func:`synth.config.annotate`)."""
    if name not in builtin_names():
        raise ScenarioError(config.sentence(f"unknown campaign {name!r}; built-in campaigns: "
                                            f"{', '.join(builtin_names())}"))
    text = (builtin_dir() / f"{name}.toml").read_text(encoding="utf-8")
    return config.annotate(text, SCHEMA) if annotated else text


def parse_campaign(text: str, source: str = "<string>", base_dir=None) -> Campaign:
    """Parse and check campaign TOML text (every unknown key or bad value is an error)."""
    ctx = config.Context(SCHEMA, source)
    doc = config.check(SCHEMA, config.parse_toml(text, ctx.file), source)
    designs = doc.pop("design")
    name = doc[""]["name"] or Path(source).stem
    template = _template(doc["accuracy"]["scenario"], base_dir, ctx)
    camp = Campaign(name=name, source=source, text=text, sections=doc, designs=designs,
                    template=template)
    _check_designs(camp, ctx)
    return camp


def _template(tname: str, base_dir, ctx) -> Scenario:
    """The template scenario: a built-in name or a file relative to the campaign file."""
    tpath = Path(tname)
    if base_dir is not None and tname.endswith(".toml") and not tpath.is_absolute():
        tpath = Path(base_dir) / tpath
    try:
        template = load_scenario(tpath if tname.endswith(".toml") else tname)
    except ScenarioError as exc:
        ctx.fail("accuracy", f"scenario = {config.show(tname)} cannot be used: "
                 f"{str(exc).rstrip('.')}")
    if template["link"]["kind"] != "mutual":
        ctx.fail("accuracy", f"scenario = {config.show(tname)} must be a mutual one-way link, "
                 f"got kind = \"{template['link']['kind']}\"")
    return template


def _check_designs(c: Campaign, ctx) -> None:
    if not c.designs:  # the template as the only design
        c.designs.append({k: None for k in DESIGN_KEYS} | {"name": "baseline"})
    for i, d in enumerate(c.designs):
        if d["oscillator"] is not None and not c.template["oscillator"]["enabled"]:
            ctx.fail(f"[design]] {i + 1}", f"oscillator = \"{d['oscillator']}\" needs a "
                     "template scenario with [oscillator] enabled = true")
        design_scenario(c, d)  # a design must make a valid scenario


def load_campaign(name_or_path: str | os.PathLike) -> Campaign:
    """Load a built-in campaign by name, or a TOML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if config.is_file_name(text):
        what = f"campaign file {path}"
        config.check_file(path, what)
        body, _ = config.read_file(path, what)
        return parse_campaign(body, str(path), base_dir=path.parent)
    return parse_campaign(builtin_text(text), text)


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
        raise ScenarioError(config.sentence(
            f"{config.Context(SCHEMA, c.source).file} [[design]] {design['name']} makes an "
            f"invalid scenario: {str(exc).rstrip('.')}")) from None



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
