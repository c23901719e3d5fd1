"""The public API: what each package's ``__init__`` promises exists, is documented and typed.

A user imports ``synth``, ``retrieval`` and ``validation`` and reaches for the names in
their ``__all__`` (README quick start); each must resolve, carry a docstring with a
Parameters or Returns section (numpydoc), and annotate every parameter and its return.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ("synth", "retrieval", "validation")


def _public():
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        for attr in pkg.__all__:
            if attr.startswith("__"):
                continue
            yield name, attr


@pytest.mark.parametrize("package, name", list(_public()))
def test_public_names_resolve_documented_and_typed(package, name):
    obj = getattr(importlib.import_module(package), name)
    assert inspect.getdoc(obj), f"{package}.{name} has no docstring"
    if isinstance(obj, type) or not callable(obj):
        return
    sig = inspect.signature(obj)
    untyped = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
    assert not untyped, f"{package}.{name}: parameters without a type hint: {untyped}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{package}.{name}: no return type"


@pytest.mark.parametrize("package", PACKAGES)
def test_import_is_cheap_and_dir_lists_the_api(package):
    import subprocess
    import sys

    code = (f"import sys, {package}; heavy = [m for m in ('xarray', 'scipy', 'dask', "
            "'matplotlib') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"import {package} pulls in {out}"
    pkg = importlib.import_module(package)
    assert set(pkg.__all__) <= set(dir(pkg))


def test_unknown_attribute_is_an_attribute_error():
    import synth

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        synth.nope  # noqa: B018
