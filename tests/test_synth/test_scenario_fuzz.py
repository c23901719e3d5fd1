"""Fuzzing the configuration files: every input loads or is one project-error sentence.

The built-in scenario, sheet-scenario and campaign files are mutated (a value replaced by
another type, an absurd magnitude, NaN/inf as numbers and as strings; keys dropped, keys
and sections added) and re-encoded (UTF-16, latin-1, random bytes). Every case must either
load or raise :class:`synth.errors.ScenarioError` / :class:`retrieval.errors.RoharnessError`
with a one-line message; any other exception is a bug. Examples per test come from the
hypothesis profile (tests/conftest.py: few in ``ci``, many in ``slow``).
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from retrieval.errors import RoharnessError
from synth.scenario import builtin_names, builtin_text, load_scenario, parse_scenario
from synth.sheet_scenario import load_sheet_scenario, parse_sheet_scenario
from validation.campaign import builtin_text as campaign_text
from validation.campaign import load_campaign, parse_campaign

RO = builtin_names("ro")
SHEET = builtin_names("sheet")
CAMPAIGNS = ["mex-tgo-180d"]


def _doc(kind: str, name: str) -> dict:
    text = campaign_text(name) if kind == "campaign" else builtin_text(name)
    return tomllib.loads(text)


# ----------------------------------------------------------------------------- TOML writer
def _key(k: str) -> str:
    bare = k and all(c.isalnum() and c.isascii() or c in "-_" for c in k)
    return k if bare else json.dumps(k, ensure_ascii=False)


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(doc: dict) -> str:
    """TOML text of a document of scalars, lists, tables and arrays of tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(
                 isinstance(x, dict) for x in v))]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{_key(k)}]")
            lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for t in v:
                lines.append(f"[[{_key(k)}]]")
                lines += [f"{_key(kk)} = {_value(vv)}" for kk, vv in t.items()]
    return "\n".join(lines) + "\n"


def test_writer_round_trips_the_builtins():
    for kind, names in (("ro", RO), ("sheet", SHEET), ("campaign", CAMPAIGNS)):
        for name in names:
            doc = _doc(kind, name)
            assert tomllib.loads(to_toml(doc)) == doc, name


# ----------------------------------------------------------------------------- strategies
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63, max_value=10**400),  # beyond TOML's 64 bits; tomllib reads them
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e-300, 1e308, 5e-324, 1e7, 1e12]),
    st.text(max_size=20),
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e30", "", "2023-13-45", "yesterday",
                     "2023-01-01", "mex", "uso", "\u2028", "a\nb"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
factors = st.sampled_from([0.0, -1.0, 1e-30, 1e-3, 0.5, 2.0, 1e3, 1e30, math.nan, math.inf,
                           -math.inf])
key_names = st.one_of(st.text(min_size=1, max_size=12),
                      st.sampled_from(["name", "kind", "seed", "rate_hz", "frequency_hz",
                                       "layers", "design", "sheet", "link", ""]))


@st.composite
def mutated(draw, kind, names):
    """A built-in document with a few mutations, and a label of what was done."""
    name = draw(st.sampled_from(names))
    doc = copy.deepcopy(_doc(kind, name))
    for _ in range(draw(st.integers(1, 3))):
        tables = [k for k, v in doc.items() if isinstance(v, dict)]
        sec = draw(st.sampled_from([None] + tables))
        target = doc if sec is None else doc[sec]
        what = draw(st.sampled_from(["set", "scale", "scale", "drop", "add", "add_section"]))
        keys = list(target)
        if what == "scale" and keys:  # an absurd magnitude of the right type
            k = draw(st.sampled_from(keys))
            f = draw(factors)
            v = target[k]
            if isinstance(v, float):
                target[k] = v * f if v else f
            elif isinstance(v, int) and not isinstance(v, bool) and math.isfinite(f) \
                    and abs(v) < 10**300:
                target[k] = int(v * f) if abs(v * f) < 1e300 else 10**300
            elif isinstance(v, list) and all(isinstance(x, float) for x in v):
                target[k] = [x * f for x in v]
        elif what == "set" and keys:
            target[draw(st.sampled_from(keys))] = draw(values)
        elif what == "drop" and keys:
            del target[draw(st.sampled_from(keys))]
        elif what == "add":
            target[draw(key_names)] = draw(values)
        elif what == "add_section":
            doc[draw(key_names)] = draw(st.dictionaries(key_names, values, max_size=3))
    return kind, name, doc


def _loads_or_one_sentence(fn, *args):
    try:
        fn(*args)
    except RoharnessError as exc:  # ScenarioError is one
        msg = str(exc)
        assert msg and len(msg.splitlines()) == 1, repr(msg)
        assert "Traceback" not in msg
        return msg
    return None


def _parse(kind, doc, source="fuzz.toml"):
    if kind == "sheet":
        return parse_sheet_scenario(doc, source)
    text = to_toml(doc)
    return (parse_campaign if kind == "campaign" else parse_scenario)(text, source)


# ----------------------------------------------------------------------------- tests
@given(mutated("ro", RO))
@example(("ro", "mex-tgo-uhf", {"ionosphere": {"f107_sfu": 1e30}}))
@example(("ro", "mex-tgo-uhf", {"sampling": {"rate_hz": 1e7}}))
@example(("ro", "mex-tgo-uhf", {"link": {"frequency_hz": 1e30}}))
@example(("ro", "mex-tgo-uhf", {"budget": {"realisations": 10**12}}))
@example(("ro", "mex-tgo-uhf", {"seed": 10**400}))
@example(("ro", "mex-tgo-uhf", {"link": "mutual"}))
@example(("ro", "mex-tgo-uhf", {"name": {"a": 1}}))
def test_mutated_scenarios(case):
    kind, _, doc = case
    _loads_or_one_sentence(_parse, kind, doc)


@given(mutated("sheet", SHEET))
@example(("sheet", "mars-2024-11-07", {"sheet": []}))
def test_mutated_sheet_scenarios(case):
    kind, _, doc = case
    _loads_or_one_sentence(_parse, kind, doc)


@given(mutated("campaign", CAMPAIGNS))
@example(("campaign", "mex-tgo-180d", {"accuracy": {"scenario": "a\x00b.toml"}}))
@example(("campaign", "mex-tgo-180d", {"design": {"name": "x"}}))
def test_mutated_campaigns(case):
    kind, _, doc = case
    _loads_or_one_sentence(_parse, kind, doc)


LOADERS = {"ro": load_scenario, "sheet": load_sheet_scenario, "campaign": load_campaign}


@given(kind=st.sampled_from(["ro", "sheet", "campaign"]), data=st.data(),
       encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1",
                                 "utf-8-sig", "cp1252"]),
       extra=st.text(alphabet="äöüéñ°µ", min_size=1, max_size=5))
def test_encodings(kind, data, encoding, extra):
    names = {"ro": RO, "sheet": SHEET, "campaign": CAMPAIGNS}[kind]
    name = data.draw(st.sampled_from(names))
    text = (campaign_text(name) if kind == "campaign" else builtin_text(name))
    text = text.replace('description = "', f'description = "{extra} ', 1)
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "enc.toml"
        raw = text.encode(encoding, errors="replace")
        f.write_bytes(raw)
        msg = _loads_or_one_sentence(LOADERS[kind], str(f))
    try:  # some latin-1 byte runs happen to be valid UTF-8 (mojibake, but loadable)
        utf8 = "\x00" not in raw.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = False
    if utf8:  # a UTF-8 byte-order mark is accepted
        assert msg is None
    else:  # UTF-16/32 and the 8-bit code pages of the non-ASCII text are not UTF-8
        assert msg is not None and "is not UTF-8 text" in msg and "enc.toml" in msg


@given(kind=st.sampled_from(["ro", "sheet", "campaign"]),
       raw=st.one_of(st.binary(max_size=200), st.binary(max_size=50).map(
           lambda b: b"name = \"x\"\n" + b)))
@example(kind="ro", raw=b"\xff\xfe\x00\x00")
@example(kind="ro", raw=b"a = " + b"[" * 5000)
def test_random_bytes(kind, raw):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "bytes.toml"
        f.write_bytes(raw)
        _loads_or_one_sentence(LOADERS[kind], str(f))


@pytest.mark.parametrize("kind", ["ro", "sheet", "campaign"])
def test_paths_that_are_not_files(kind, tmp_path):
    for arg in (str(tmp_path), str(tmp_path / "missing.toml"), "a\x00b.toml", "x" * 5000
                + ".toml"):
        assert _loads_or_one_sentence(LOADERS[kind], arg) is not None
