"""The judge: round trips, error budgets, campaigns, the CI gate, reports and the CLI.

The public surface (imported lazily, so ``import validation`` stays cheap):

* :func:`run_roundtrip` (scenario -> truth, observation, profile, metrics) and
  :func:`compare` (truth + any retrieved profile -> metrics).
* :func:`run_budget` (Monte Carlo error budget per error source, on dask).
* :func:`run_gate`, :func:`load_thresholds` (the CI regression gate).
* :func:`run_campaign`, :func:`load_campaign` (campaign design studies).
* :func:`run_sheet_roundtrip` (current-sheet crossing and its MVA retrieval).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

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
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'validation' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
