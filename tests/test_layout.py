"""Plain `pytest` in an editable install (`pip install -e '.[test]' && pytest`) collects the
suite and imports the project's packages, not look-alikes from tests/.

pytest's default ("prepend") import mode puts each test file's folder on sys.path and imports
it under its basename, since the test folders have no __init__.py. Two things would then
break collection or shadow the packages: a test folder named like a package (the folders
were renamed tests/test_synth, tests/test_retrieval, tests/test_validation for this), and
two test files with the same basename in different folders.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("synth", "retrieval", "validation")


@pytest.mark.parametrize("name", PACKAGES)
def test_packages_import_from_the_project_not_from_tests(name):
    assert not (ROOT / "tests" / name).exists()
    module = importlib.import_module(name)
    where = Path(module.__file__).resolve().parent
    # the checkout (editable install) or an installed copy (tox builds a wheel): never tests/
    assert where.name == name and ROOT / "tests" not in where.parents


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []
