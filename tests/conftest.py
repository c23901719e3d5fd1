"""Shared test fixtures: hypothesis profiles and the path to ../shared/data.

Hypothesis profiles (``HYPOTHESIS_PROFILE``, default ``ci``) are the only place where the
number of examples is set: no test overrides ``max_examples``, so cost is controlled here.

* ``ci``: a fresh random sample on every run (not derandomized: a CI run that always draws
  the same examples explores nothing new), a modest number of examples so the suite stays
  well under 10 minutes on 2 cores; ``print_blob=True`` makes a failure print the
  ``@reproduce_failure`` blob and hypothesis prints the ``@seed`` to rerun it. No shrink
  phase: a round-trip example costs ~1 s and a CI failure once spent the 5-minute shrink
  limit (2026-12), pushing the suite past 9 minutes; the failing example is reported as
  drawn (the round-trip properties note its scenario text), and ``dev`` shrinks it.
* ``slow``: many more examples (``tox -e slow``). ``tox -e slow`` runs ``pytest -m slow``,
  so under this profile every hypothesis test is also marked ``slow`` (hook below) and the
  property suites run there at full strength.
* ``dev``: in between, for local work.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, is_hypothesis_test, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=10, derandomize=False,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
                          **_COMMON)
settings.register_profile("slow", max_examples=200, **_COMMON)
settings.register_profile("dev", max_examples=30, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Reference and real data written by others (see ../shared/data/README.md).
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.hookimpl(tryfirst=True)  # before the -m deselection of pytest's mark plugin
def pytest_collection_modifyitems(config, items):
    """Under the ``slow`` profile, property tests belong to the slow suite (``-m slow``)."""
    if PROFILE != "slow":
        return
    for item in items:
        if is_hypothesis_test(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; the tests that need it skip loudly if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED_DATA}")
    return SHARED_DATA
