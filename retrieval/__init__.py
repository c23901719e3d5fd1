"""Inverse methods: what a scientist runs on real data (observables -> estimates).

``retrieval`` never imports ``synth`` or ``validation``: it must stand alone on real data
and must never see the truth.
"""

from retrieval.errors import RoharnessError, ScenarioError

__all__ = ["RoharnessError", "ScenarioError"]
