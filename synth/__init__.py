"""Forward models: what nature and the instruments do (truth -> observables).

``synth`` never imports ``validation``; it may use ``retrieval``'s SPICE/frame plumbing
(``retrieval.spice``, ``retrieval.geometry``, ``retrieval.errors``, ``retrieval.constants``)
but never its physics, so that a shared mistake cannot cancel out in a round trip.

The public surface (imported lazily, so ``import synth`` stays cheap):

* Scenarios: :func:`load_scenario` (built-in name or TOML file), :func:`builtin_names`,
  :class:`Scenario`, :class:`ScenarioError`.
* RO forward model: :func:`simulate` (scenario -> truth + level-2 observation),
  :func:`level1_record` (the I/Q samples a receiver records), :func:`perturb` (one
  realisation of the error sources), :func:`electron_density`, :func:`oscillator`.
* Current sheets: :func:`load_sheet_scenario`, :func:`simulate_sheet_crossing`.
"""

from __future__ import annotations

from retrieval.lazy import attach
from synth.errors import ScenarioError

_API = {
    "load_scenario": "synth.scenario",
    "builtin_names": "synth.scenario",
    "Scenario": "synth.scenario",
    "simulate": "synth.observe",
    "level1_record": "synth.instrument",
    "perturb": "synth.error_sources",
    "electron_density": "synth.ionosphere",
    "oscillator": "synth.oscillator",
    "load_sheet_scenario": "synth.sheet_scenario",
    "simulate_sheet_crossing": "synth.current_sheet",
}

__all__ = ["ScenarioError", *_API]


__getattr__, __dir__ = attach(__name__, _API, __all__)
