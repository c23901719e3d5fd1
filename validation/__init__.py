"""The judge: round trips, error budgets, campaigns, the CI gate, reports and the CLI.

The public surface (imported lazily, so ``import validation`` stays cheap):

* :func:`run_roundtrip` (scenario -> truth, observation, profile, metrics) and
  :func:`compare` (truth + any retrieved profile -> metrics).
* :func:`run_budget` (Monte Carlo error budget per error source, on dask).
* :func:`run_gate`, :func:`load_thresholds` (the CI regression gate).
* :func:`run_campaign`, :func:`load_campaign` (campaign design studies).
* :func:`run_sheet_roundtrip` (current-sheet crossing and its MVA retrieval).
* Judging any retrieval: :func:`parse_retrieval` (``builtin``, ``module:function``, an
  entry-point name, ``cmd:TEMPLATE``), :func:`check_profile` (the profile contract),
  :func:`score_profile`; :func:`export_scenario`, :func:`observation_product`,
  :func:`score_files` (the file path).
* :func:`find_requirement` (the parameter value a target needs).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from retrieval.lazy import attach

try:
    __version__ = version("roharness")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_API = {
    "run_roundtrip": "validation.roundtrip",
    "compare": "validation.roundtrip",
    "run_budget": "validation.budget",
    "run_gate": "validation.gate",
    "load_thresholds": "validation.gate",
    "run_campaign": "validation.campaign",
    "load_campaign": "validation.campaign",
    "run_sheet_roundtrip": "validation.sheet",
    "score_profile": "validation.roundtrip",
    "export_scenario": "validation.export",
    "observation_product": "validation.export",
    "score_files": "validation.export",
    "parse_retrieval": "validation.plugins",
    "check_profile": "validation.plugins",
    "find_requirement": "validation.requirement",
}

__all__ = ["__version__", *_API]


__getattr__, __dir__ = attach(__name__, _API, __all__)
