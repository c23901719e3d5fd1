"""The import rule of ../shared/STYLE.md, checked by parsing every module's imports.

* ``retrieval`` imports neither ``synth`` nor ``validation`` (it stands alone on real data).
* ``synth`` never imports ``validation``.
* ``synth`` may use only ``retrieval``'s SPICE/frame plumbing, never its physics.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: retrieval modules that are plumbing (kernels, frames, solar geometry, errors, constants,
#: occultation geometry of straight lines); synth may import these and nothing else.
RETRIEVAL_PLUMBING = {
    "retrieval",
    "retrieval.errors",
    "retrieval.constants",
    "retrieval.spice",
    "retrieval.geometry",
    "retrieval.fileio",
    "retrieval.occultation",
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # "from retrieval import abel" imports retrieval.abel
                yield node.lineno, f"{node.module}.{alias.name}"


def _modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def _violations(package: str, rule):
    bad = []
    for path in _modules(package):
        for lineno, name in _imports(path):
            if rule(name):
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    return bad


def _top(name: str) -> str:
    return name.split(".")[0]


def test_retrieval_stands_alone():
    assert _violations("retrieval", lambda n: _top(n) in {"synth", "validation"}) == []


def test_synth_never_imports_validation():
    assert _violations("synth", lambda n: _top(n) == "validation") == []


def test_synth_uses_only_retrieval_plumbing():
    def rule(name):
        if _top(name) != "retrieval":
            return False
        # "from retrieval.spice import furnish" yields retrieval.spice and
        # retrieval.spice.furnish: accept anything inside a plumbing module.
        return not any(name == p or name.startswith(p + ".") for p in RETRIEVAL_PLUMBING)

    assert _violations("synth", rule) == []


@pytest.mark.parametrize("source, expected", [
    ("import synth.orbits\n", ["synth.orbits"]),
    ("from retrieval import abel\n", ["retrieval", "retrieval.abel"]),
])
def test_import_parser_sees_imports(tmp_path, source, expected):
    """The checker itself: it must see both import forms (else the rule tests prove nothing)."""
    f = tmp_path / "m.py"
    f.write_text(source)
    assert [n for _, n in _imports(f)] == expected
