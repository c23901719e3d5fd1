"""Radio-occultation scenarios: TOML files with documented, strictly checked keys.

A scenario says which link to simulate, which occultation of it, what ionosphere and
neutral atmosphere it grazes, how it is sampled, and (for instrument-level simulations)
which oscillators and receiver record it. Built-in scenarios ship in ``synth/scenarios``;
``roharness scenarios`` lists them and ``roharness scenarios --show NAME`` prints one to copy
and edit. Unknown keys and bad values are rejected with one sentence naming the key.

Keys (section, key, type, unit, physical range with its reason, default, meaning) are those
of :data:`SCHEMA`, a :class:`synth.config.Schema` like every other configuration file of the
project; they are checked before any work starts. ``roharness scenarios --show NAME``
prints a built-in file with a comment on every key.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synth import config
from synth.config import C, F, I, Key, Range, Schema
from synth.errors import ScenarioError

if TYPE_CHECKING:  # annotations only
    import os

#: Reasons of the ranges shared by several keys (sources in the text).
WHY_CARRIER = ("RO carriers run from UHF proximity links (401-437 MHz) through S, X and Ka "
               "band (32 GHz); below 100 MHz the Martian ionosphere's plasma frequency "
               "(~5 MHz) is no longer small and the first-order dispersion the retrieval "
               "assumes fails")
WHY_LEVEL2 = ("level-2 Doppler is recorded at 1-50 Hz (MaRS 1 s, ROSE 1 Hz, CHAMP 50 Hz); "
              "at 100 Hz the longest event (2400 s x 1.2) is 2.9e5 samples, ~0.1 GB of "
              "states and ray traces, while 1e7 Hz would need ~70 GiB; 0.01 Hz still gives "
              "the 10 samples an inversion needs over a slow event")
WHY_IQ = ("open-loop recorders sample 1-16 kHz; the tuned baseband Doppler must stay inside "
          "+-fs/2, and the memory estimate (10 kHz x 2880 s x 16 B = 0.46 GB per complex "
          "array, several arrays) caps it for a 2-core worker")
WHY_CN0 = ("measured RO links run 25-70 dB-Hz (UHF proximity ~30-50, DSN X band 50-70); "
           "below 10 dB-Hz no carrier is found in a 1 s window, above 90 no link is that "
           "strong")
WHY_H = ("the neutral scale height at Mars is ~8-20 km from the surface to the lower "
         "thermosphere; 1-100 km leaves room for experiments")
WHY_TARGET = ("defaults: 5 % and 2 km on the M2 peak, the drift-correction acceptance; MAVEN "
              "ROSE quotes 5e9 m^-3 (~5 % of a 1e11 m^-3 peak) and 1 km as its instrument "
              "error; a target tighter than 1e-4 is below any retrieval's floor")
WHY_ALT = "tangent altitudes from the surface (0 km) up to well above the ionosphere"
WHY_SZA = "solar zenith angle is 0-180 deg by definition"
WHY_OFFSET = ("a calibrated crystal oscillator's fractional offset is below 1e-5 "
              "(10 ppm, an uncompensated XO); a USO's below 1e-9")
WHY_RATE = ("1e-8 /s over a 10-minute occultation is 6 ppm, beyond a crystal's full "
            "temperature-range specification; measured drifts are 1e-13-1e-10 /s")
WHY_POS_SIGMA = ("reconstructed Mars-orbiter positions are good to ~1-1000 m; 10 km is a "
                 "gross orbit error")
WHY_VEL_SIGMA = ("reconstructed velocities are good to ~0.1-10 mm/s; 1 m/s is a gross "
                 "error")
WHY_SEED = "numpy's SeedSequence takes a non-negative integer (TOML integers are 64-bit)"

#: Longest time span of one scenario's [event] search window [days].
MAX_WINDOW_DAYS = 366.0
#: Memory one simulation may use (a worker of a 2-core machine with 8 GB) [bytes].
MEMORY_BUDGET_BYTES = 4 * 2**30
#: Longest sampled record [s]: 1.2 x the longest reference-to-surface time of the preset
#: orbits' events (< 40 min; synth.observe.sample_times samples 1.2 x the duration).
LONGEST_RECORD_S = 1.2 * 2400.0
#: Working memory per sample [bytes] (measured order of magnitude, rounded up): a level-2
#: sample carries ~40 float64 (states, light times, tangent point, ray trace); an I/Q
#: sample ~6 complex128 arrays (record, noise, phase, tuning); an oscillator sample 6
#: float64 per oscillator, two oscillators (synth.oscillator).
BYTES_PER_LEVEL2_SAMPLE, BYTES_PER_IQ_SAMPLE, BYTES_PER_OSC_SAMPLE = 320, 96, 96


def memory_estimate_bytes(sections: dict) -> float:
    """Upper estimate of one simulation's working memory [bytes] over the longest record."""
    n2 = sections["sampling"]["rate_hz"] * LONGEST_RECORD_S
    total = n2 * BYTES_PER_LEVEL2_SAMPLE
    if sections["receiver"]["enabled"]:
        total += sections["receiver"]["sample_rate_hz"] * LONGEST_RECORD_S * BYTES_PER_IQ_SAMPLE
    if sections["oscillator"]["enabled"]:
        total += LONGEST_RECORD_S / sections["oscillator"]["tau0_s"] * BYTES_PER_OSC_SAMPLE
    return total

_LAYER = {
    "name": Key("str", doc="layer name (M2, M1, ...)"),
    "n0_m3": F(config.REQUIRED, "peak production density scale N0", "m^-3", 1e6, 1e14,
               "Mars' dayside M2 peak is ~1e11 m^-3, nightside patches ~1e9; 1e14 "
               "exceeds any planetary ionosphere"),
    "h0_km": F(config.REQUIRED, "altitude of the subsolar peak", "km", 0.0, 1000.0, WHY_ALT),
    "scale_height_km": F(config.REQUIRED, "neutral scale height of the layer", "km",
                         1.0, 100.0, WHY_H),
}

_SECTIONS: dict[str, dict[str, Key]] = {
    "": {
        "name": Key("str", None, "scenario name (default: the file name)"),
        "description": Key("str", "", "one-line description"),
        "kind": C("ro", "scenario kind (radio occultation)", "ro"),
        "seed": I(0, "root random seed (noise realisations derive from it)", 0, 2**63 - 1,
                  WHY_SEED),
    },
    "link": {
        "kind": C("mutual", "mutual one-way, spacecraft -> Earth one-way, or Earth -> "
                  "spacecraft -> Earth two-way coherent", "mutual", "earth_downlink",
                  "earth_twoway"),
        "transmitter": Key("str", "mex", "preset orbit (mex, tgo, maven), earth/dss-14/43/63, "
                           "or a NAIF name/ID from `kernels` (two-way: the ground station)"),
        "receiver": Key("str", "tgo", "as transmitter (two-way: the spacecraft)"),
        "frequency_hz": F(437.1e6, "transmitted frequency; two-way: the X-band downlink "
                          "frequency (uplink = downlink / (880/749))", "Hz", 100e6, 40e9,
                          WHY_CARRIER),
        "dual_frequency": Key("bool", False, "two-way only: add the coherent S-band downlink "
                              "(240/749) for differential Doppler"),
        "kernels": Key("strs", [], "extra SPICE kernels or meta-kernels"),
    },
    "event": {
        "start_utc": Key("utc", "2023-01-01", "search window start (UTC)"),
        "stop_utc": Key("utc", "2023-01-03", "search window stop (UTC)"),
        "kind": C("any", "which kind of occultation", "ingress", "egress", "any"),
        "index": I(0, "which matching event (0 = the first)", 0, 10_000,
                   "a year's window holds ~4000 events of two Mars orbiters"),
        "min_sza_deg": F(0.0, "smallest accepted solar zenith angle at the tangent point",
                         "deg", 0.0, 180.0, WHY_SZA),
        "max_sza_deg": F(90.0, "largest accepted solar zenith angle", "deg", 0.0, 180.0,
                         WHY_SZA),
        "top_altitude_km": F(400.0, "sampling starts where the straight ray's tangent "
                             "altitude crosses this", "km", 20.0, 2000.0,
                             "the ionosphere of Mars fades out below ~1000 km; the sampling "
                             "top must lie above the bottom and below the spacecraft"),
        "bottom_altitude_km": F(60.0, "sampling stops at this tangent altitude (or where the "
                                "planet cuts the ray)", "km", 0.0, 1000.0, WHY_ALT),
    },
    "sampling": {
        "rate_hz": F(1.0, "level-2 (Doppler) sample rate", "Hz", 0.01, 100.0, WHY_LEVEL2),
    },
    "ionosphere": {
        "model": C("parrott2025", "peak law for M2/M1, or explicit `layers`", "parrott2025",
                   "segale2024", "fox_weber2012", "fallows2015", "layers"),
        "f107_sfu": F(100.0, "F10.7 at Earth (parrott2025)", "sfu", 50.0, 400.0,
                      "daily F10.7 runs from ~65 sfu at solar minimum to ~250-300 at the "
                      "maxima of strong cycles, rare days higher; 50-400 covers every "
                      "observed solar condition"),
        "f_euv_mw_m2": F(None, "EUV flux instead of F10.7 (parrott2025)", "mW m^-2", 0.2, 5.0,
                         "Parrott's coefficients equate 1 mW m^-2 to ~123 sfu, so the F10.7 "
                         "range maps to ~0.4-3.3 mW m^-2; 0.2-5 allows for extremes"),
        "group": C("auto", "segale2024 group; auto = from the event's LTST and Ls",
                   "dawn_aphelion", "dawn_perihelion", "dusk_aphelion", "dusk_perihelion",
                   "auto"),
        "scale_height_km": F(10.0, "neutral scale height H of the Chapman layers", "km",
                             1.0, 100.0, WHY_H),
        "grazing": C("chapman", "SZA dependence: Chapman grazing-incidence function or "
                     "sec(chi)", "chapman", "sec"),
        "sza_deg": F(None, "override the solar zenith angle (default: the event's)", "deg",
                     0.0, 180.0, WHY_SZA),
        "layers": Key("tables", [], "explicit layers: [{name, n0_m3, h0_km, "
                      "scale_height_km}]", table=_LAYER),
    },
    "neutral": {
        "enabled": Key("bool", False, "add the neutral CO2 refractivity"),
        "surface_number_density_m3": F(2.1e23, "CO2 number density at 0 km", "m^-3", 1e22,
                                       1e24, "surface pressure 100-1200 Pa (Olympus Mons to "
                                       "Hellas) at 150-300 K gives 2e22-6e23 m^-3"),
        "scale_height_km": F(11.0, "density scale height", "km", 1.0, 100.0, WHY_H),
    },
    "oscillator": {
        "enabled": Key("bool", False, "add transmitter and receiver oscillator errors to the "
                       "carrier (needs [receiver] enabled = true)"),
        "transmitter_preset": C("uso", "transmitter oscillator class "
                                "(synth.oscillator.PRESETS); none = ideal", "uso", "tcxo",
                                "electra", "none"),
        "receiver_preset": C("tcxo", "receiver oscillator class (electra: inferred for TGO's "
                             "Electra, see synth.oscillator.PRESETS); none = ideal", "uso",
                             "tcxo", "electra", "none"),
        "noise": Key("bool", True, "include the presets' power-law noise"),
        "receiver_adev_scale": F(1.0, "multiplies the receiver preset's Allan deviation (its "
                                 "h_alpha by the square)", "1", 0.0, 1000.0,
                                 "0 switches the noise off; 1000 turns a TCXO (1e-9) into a "
                                 "poor free-running crystal (1e-6)"),
        "drift": Key("bool", True, "include the deterministic drift (presets' ageing plus the "
                     "offsets and rates below)"),
        "transmitter_offset": F(0.0, "transmitter fractional frequency offset y0", "1",
                                -1e-5, 1e-5, WHY_OFFSET),
        "transmitter_rate_per_s": F(None, "transmitter drift rate (default: the preset's)",
                                    "1/s", -1e-8, 1e-8, WHY_RATE),
        "receiver_offset": F(0.0, "receiver fractional frequency offset y0", "1", -1e-5, 1e-5,
                             WHY_OFFSET),
        "receiver_rate_per_s": F(None, "receiver drift rate (default: the preset's)", "1/s",
                                 -1e-8, 1e-8, WHY_RATE),
        "tau0_s": F(0.1, "oscillator sample interval", "s", 1e-3, 10.0,
                    "the oscillator series must resolve the 1 s level-2 interval; 1 ms over "
                    "2880 s is 3e6 samples (~0.1 GB of working memory)"),
    },
    "receiver": {
        "enabled": Key("bool", False, "simulate the level-1 I/Q record and retrieve from it "
                       "(carrier extraction + drift correction); false = level-2 round trip"),
        "sample_rate_hz": F(2000.0, "complex I/Q sample rate", "Hz", 1e3, 1e4, WHY_IQ),
        "cn0_dbhz": F(45.0, "carrier-to-noise density", "dB-Hz", 10.0, 90.0, WHY_CN0),
        "thermal_noise": Key("bool", True, "add thermal noise at cn0_dbhz"),
        "window_s": F(None, "carrier-extraction window (default 1 / [sampling] rate_hz; at "
                      "most that)", "s", 1e-3, 100.0, "at most one level-2 interval (1/rate), "
                      "at least a few I/Q samples"),
        "tuning_order": I(3, "order of the receiver's open-loop LO tuning polynomial (a "
                          "coarse Doppler prediction, recorded with the I/Q)", 0, 10,
                          "a polynomial fit above order ~10 is ill-conditioned"),
        "silent_periods": Key("intervals", [], "carrier-off periods [[start_s, stop_s], ...] "
                              "since the observation epoch", "s", Range(-86400.0, 86400.0),
                              "within a day of the epoch (an occultation lasts < 1 h)"),
        "gaps": Key("intervals", [], "lost-data periods [[start_s, stop_s], ...]", "s",
                    Range(-86400.0, 86400.0), "within a day of the epoch"),
        "spur_hz": F(None, "spurious line at this baseband frequency", "Hz", -5000.0, 5000.0,
                     "inside the I/Q band +-sample_rate_hz/2 (at most 10 kHz / 2)"),
        "spur_dbc": F(-10.0, "spurious line power relative to the carrier", "dBc", -150.0,
                      20.0, "from far below the noise to a line 100x the carrier"),
    },
    "retrieval": {
        "drift_correction": C("parrott2025", "drift-correction strategy of the I/Q path "
                              "(retrieval.drift)", "none", "baseline_poly", "withers2020",
                              "parrott2025"),
        "threshold_altitude_km": F(230.0, "tangent altitude above which the residual is "
                                   "taken as vacuum (no ionosphere)", "km", 100.0, 2000.0,
                                   "above the M2 peak (~120-150 km) and up to the sampling "
                                   "top's limit"),
        "max_order": I(3, "highest baseline polynomial order tried", 0, 10,
                       "a polynomial fit above order ~10 is ill-conditioned"),
        "neutral": C("auto", "neutral-atmosphere treatment of the inversion "
                     "(retrieval.neutral): a model fitted below the ionosphere and removed "
                     "on single-frequency links; auto = only where detected (dual-frequency "
                     "links cancel it already)", "auto", "none", "exponential",
                     "exponential_gradient"),
        "top": Key("choice", "auto", "bending above the top sample in the Abel inversion "
                   "(retrieval.abel.choose_top_model): auto = chosen from the top samples, "
                   "zero = vacuum, exponential = fitted topside added",
                   why="auto takes the exponential topside only when the top bending angles "
                   "are all negative, 5 standard errors from zero and exponential (an "
                   "ionised top); zero-mean noise keeps the vacuum top. An error budget "
                   "keeps the clean retrieval's choice and scale height for every "
                   "realisation (chosen per realisation, clean and noisy data would pick "
                   "different tops and the budget would not be linear in the noise). "
                   "Default auto, as the library's: a profile whose top is still at "
                   "1.3 % of the peak leaves 1.3e-2 of the peak with the vacuum top, "
                   "9e-6 with the fitted one",
                   choices=("auto", "zero", "exponential")),
        "abel_scheme": Key("choice", "cubic", "interpolation of the bending angle between "
                           "samples in the Abel inversion (retrieval.abel.inverse_abel): "
                           "cubic (fourth order), quintic (sixth), linear (second); auto = "
                           "cubic for clean samples, linear for noisy ones "
                           "(retrieval.abel.choose_scheme)",
                           why="cubic keeps <= 1e-4 of the peak at 1.5 km steps for "
                           "H >= 5 km; quintic halves the error of a clean ionosphere at "
                           "4-5 km steps (0.5 Hz Earth links: 1.4e-3 -> 5.9e-4) with the "
                           "same noise gain at 1.3-2.3x the CPU, but rings on a steep "
                           "neutral bottom there (1.9e-3 -> 3.9e-3 with the neutral on); "
                           "linear (second order) is the former scheme",
                           choices=("auto", "cubic", "quintic", "linear")),
        "smoothing_s": F(None, "Savitzky-Golay window of the drift-corrected residual; "
                         "default: chosen from the noise "
                         "(retrieval.drift.choose_smoothing_window); 0 = none", "s", 0.0,
                         600.0, "0 = none; 10 minutes is longer than the ionospheric part "
                         "of any occultation"),
    },
    "budget": {
        "sources": Key("strs", ["thermal", "oscillator", "drift", "ephemeris", "sampling",
                                "gradients", "parrott"],
                       "error sources of `roharness budget` (synth.error_sources.SOURCES)"),
        "realisations": I(20, "Monte Carlo realisations per source", 1, 100_000,
                          "1e5 realisations resolve a 1-sigma spread to 0.2 %; more only "
                          "costs time (each is a full retrieval)"),
        "ephemeris_frame": C("rtn", "axes of the ephemeris sigmas: radial/along-track/"
                             "cross-track of each spacecraft, or Mars-centred J2000 x/y/z",
                             "rtn", "xyz"),
        "tx_position_sigma_m": Key("floats", [20.0, 100.0, 20.0], "1-sigma error of the "
                                   "transmitter's reconstructed position, 3 components "
                                   "(assumed; see synth.error_sources)", "m",
                                   Range(0.0, 1e4), WHY_POS_SIGMA, length=3),
        "tx_velocity_sigma_m_s": Key("floats", [0.005, 0.005, 0.005], "1-sigma error of the "
                                     "transmitter's reconstructed velocity, 3 components "
                                     "(assumed)", "m/s", Range(0.0, 1.0), WHY_VEL_SIGMA,
                                     length=3),
        "rx_position_sigma_m": Key("floats", [20.0, 100.0, 20.0], "as tx_position_sigma_m, "
                                   "receiver (assumed)", "m", Range(0.0, 1e4), WHY_POS_SIGMA,
                                   length=3),
        "rx_velocity_sigma_m_s": Key("floats", [0.005, 0.005, 0.005], "as "
                                     "tx_velocity_sigma_m_s, receiver (assumed)", "m/s",
                                     Range(0.0, 1.0), WHY_VEL_SIGMA, length=3),
        "parrott_fraction": F(0.05, "Parrott et al. (2025) recipe: white noise of this "
                              "fraction of the maximum residual amplitude", "1", 0.0, 1.0,
                              "a fraction of the amplitude (Parrott used 0.05)"),
        "integration_time_s": F(None, "Doppler integration time (default 1 / [sampling] "
                                "rate_hz)", "s", 1e-3, 100.0, "at most a slow level-2 "
                                "interval; at least a few I/Q samples"),
        "altitude_min_km": F(80.0, "error-profile grid start", "km", 0.0, 1000.0, WHY_ALT),
        "altitude_max_km": F(300.0, "error-profile grid stop", "km", 0.0, 2000.0, WHY_ALT),
        "altitude_step_km": F(1.0, "error-profile grid step", "km", 0.01, 50.0,
                              "finer than 10 m is below any RO resolution; coarser than "
                              "50 km hides the layers"),
    },
    "target": {
        "m2_peak_density_rel": F(0.05, "1-sigma accuracy target on the M2 peak density "
                                 "(pass/fail in budget summaries and reports)", "1", 1e-4,
                                 10.0, WHY_TARGET),
        "m2_peak_altitude_km": F(2.0, "1-sigma accuracy target on the M2 peak altitude", "km",
                                 0.01, 100.0, WHY_TARGET),
        "ne150_rel": F(None, "1-sigma target on N_e at 150 km (unset: no target)", "1", 1e-4,
                       10.0, WHY_TARGET),
        "tn_k": F(None, "1-sigma target on the neutral temperature (unset: no target)", "K",
                  0.01, 1000.0, WHY_TARGET),
        "tec_rel": F(None, "1-sigma target on the vertical TEC (unset: no target)", "1",
                     1e-4, 10.0, WHY_TARGET),
    },
}


def _rule_link(doc, ctx) -> None:
    if doc["link"]["dual_frequency"] and doc["link"]["kind"] != "earth_twoway":
        ctx.fail("link", f"dual_frequency = true needs kind = \"earth_twoway\", got kind = "
                 f"\"{doc['link']['kind']}\"")


def _rule_event(doc, ctx) -> None:
    ev = doc["event"]
    if not ev["bottom_altitude_km"] < ev["top_altitude_km"]:
        ctx.fail("event", f"bottom_altitude_km = {ev['bottom_altitude_km']:g} km must be "
                 f"below top_altitude_km = {ev['top_altitude_km']:g} km (0 <= bottom < top)")
    if not ev["min_sza_deg"] <= ev["max_sza_deg"]:
        ctx.fail("event", f"min_sza_deg = {ev['min_sza_deg']:g} deg must not exceed "
                 f"max_sza_deg = {ev['max_sza_deg']:g} deg")
    days = (config.utc(ev["stop_utc"]) - config.utc(ev["start_utc"])) / np.timedelta64(1, "D")
    if not 0 < days <= MAX_WINDOW_DAYS:
        ctx.fail("event", f"start_utc = \"{ev['start_utc']}\" to stop_utc = "
                 f"\"{ev['stop_utc']}\" is a window of {days:g} days; expected a stop after "
                 f"the start and at most {MAX_WINDOW_DAYS:g} days (the search is linear in "
                 "the window)")


def _rule_ionosphere(doc, ctx) -> None:
    ion = doc["ionosphere"]
    if ion["model"] == "layers" and not ion["layers"]:
        ctx.fail("ionosphere", "model = \"layers\" needs a non-empty 'layers' list")
    if ion["model"] != "layers" and ion["layers"]:
        ctx.fail("ionosphere", f"layers is only used with model = \"layers\", got model = "
                 f"\"{ion['model']}\"")


def _rule_instrument(doc, ctx) -> None:
    rcv, rate = doc["receiver"], doc["sampling"]["rate_hz"]
    need = memory_estimate_bytes(doc)
    if need > MEMORY_BUDGET_BYTES:
        ctx.fail("receiver" if rcv["enabled"] else "sampling",
                 f"sample_rate_hz = {rcv['sample_rate_hz']:g} Hz with [sampling] rate_hz = "
                 f"{rate:g} Hz needs ~{need / 2**30:.1f} GiB over the longest record "
                 f"({LONGEST_RECORD_S:g} s), more than the {MEMORY_BUDGET_BYTES / 2**30:g} GiB "
                 "memory estimate allows")
    if rcv["window_s"] is not None and not rcv["window_s"] <= 1.0 / rate:
        ctx.fail("receiver", f"window_s = {rcv['window_s']:g} s is longer than one level-2 "
                 f"sample interval (1 / [sampling] rate_hz = {1.0 / rate:g} s)")
    if rcv["spur_hz"] is not None and not abs(rcv["spur_hz"]) < rcv["sample_rate_hz"] / 2:
        ctx.fail("receiver", f"spur_hz = {rcv['spur_hz']:g} Hz is outside the I/Q band "
                 f"+-{rcv['sample_rate_hz'] / 2:g} Hz (sample_rate_hz / 2)")
    if doc["oscillator"]["enabled"] and not rcv["enabled"]:
        ctx.fail("oscillator", "enabled = true needs [receiver] enabled = true (oscillators "
                 "act on the I/Q record)")


def _rule_budget(doc, ctx) -> None:
    from synth.error_sources import SOURCES

    b = doc["budget"]
    unknown = [s for s in b["sources"] if s not in SOURCES]
    if unknown:
        ctx.fail("budget", f"sources = {config.show(b['sources'])} names an unknown error "
                 f"source \"{unknown[0]}\"; known sources: {', '.join(SOURCES)}")
    lo, hi, step = b["altitude_min_km"], b["altitude_max_km"], b["altitude_step_km"]
    if not lo < hi:
        ctx.fail("budget", f"altitude_min_km = {lo:g} km must be below altitude_max_km = "
                 f"{hi:g} km")
    if (hi - lo) / step > 1e5:
        ctx.fail("budget", f"altitude_step_km = {step:g} km makes {(hi - lo) / step:.0f} grid "
                 "points from altitude_min_km to altitude_max_km; at most 1e5 are allowed")


#: The scenario file: every key, its type, unit, range (with its reason) and meaning.
SCHEMA = Schema("scenario", _SECTIONS, rules=(_rule_link, _rule_event, _rule_ionosphere,
                                              _rule_instrument, _rule_budget))


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
            if kind is None or _file_kind(f.read_text(encoding="utf-8")) == kind:
                names.append(f.name[:-5])
    return names


def _file_kind(text: str) -> str:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return "?"
    return str(data.get("kind", "sheet" if "sheet" in data else "ro"))


def builtin_text(name: str, annotated: bool = False) -> str:
    """The TOML text of a built-in scenario.

    With ``annotated``, every key line without a comment gets one giving its type, unit,
    allowed range and meaning from the schema (:func:`synth.config.annotate`); the data is
    unchanged. ``roharness scenarios --show`` prints this.
    """
    if name not in builtin_names():
        raise ScenarioError(config.sentence(f"unknown scenario {name!r}; built-in scenarios: "
                                            f"{', '.join(builtin_names())}"))
    text = (builtin_dir() / f"{name}.toml").read_text(encoding="utf-8")
    if not annotated:
        return text
    if _file_kind(text) == "sheet":
        from synth.sheet_scenario import SCHEMA as SHEET

        return config.annotate(text, SHEET)
    return config.annotate(text, SCHEMA)


def builtin_description(name: str) -> str:
    data = tomllib.loads(builtin_text(name))
    return str(data.get("description", ""))


def parse_scenario(text: str, source: str = "<string>", schema=None) -> Scenario:
    """Parse and check scenario TOML text (every unknown key or bad value is an error)."""
    schema = schema or SCHEMA
    ctx = config.Context(schema, source)
    data = config.parse_toml(text, ctx.file)
    sections = config.check(schema, data, source)
    name = sections[""]["name"] or Path(source).stem
    return Scenario(name=name, source=source, text=text, sections=sections)


def load_scenario(name_or_path: str | os.PathLike) -> Scenario:
    """Load a built-in scenario by name, or a TOML file by path."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if config.is_file_name(text_name):
        what = f"scenario file {path}"
        config.check_file(path, what)
        text, _ = config.read_file(path, what)
        return parse_scenario(text, str(path))
    return parse_scenario(builtin_text(text_name), text_name)
