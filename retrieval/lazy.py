"""Lazy public APIs for the three packages (PEP 562 module ``__getattr__``).

``import synth`` / ``retrieval`` / ``validation`` stays cheap (no numerical stack) while
``synth.simulate`` and friends resolve on first use from the module that defines them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def attach(package: str, api: dict[str, str], names: list[str]
           ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` exporting ``api`` (name -> module)."""

    def __getattr__(name: str):
        if name in api:
            return getattr(importlib.import_module(api[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
