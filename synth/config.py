"""One declarative way to describe and check a configuration file (TOML).

Scenario, sheet-scenario and campaign files are all described by a :class:`Schema`: tables
of :class:`Key` (type, default, unit, physical range with the reason for it, meaning), plus
a few cross-key *rules* (bottom below top, a window inside one sample interval, a memory
estimate...). :func:`check` checks a parsed document against a schema before any work
starts and fills in the defaults; :func:`load_text` reads and decodes a file defensively.

Every error a user can cause is a :class:`synth.errors.ScenarioError` carrying one sentence
that names the file, the section, the key, the value and what is allowed, e.g.::

    scenario file x.toml [ionosphere] f107_sfu = 1e+30 is outside the allowed range
    50-400 sfu (observed daily F10.7 ...).

Why in-house rather than a validation library (pydantic): the schema is data that the
project also *prints* (``roharness scenarios --show`` annotates each key with its unit and
range, :func:`describe` renders the tables) and the error wording is part of the interface
(one sentence with file, section, key, value and range); TOML has only six value types, so
the checking itself is ~150 lines, and there is no coercion to switch off.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import ScenarioError


class _Sentinel:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


#: Default of a key that must be given.
REQUIRED = _Sentinel("REQUIRED")
#: Default of an optional key that is left out of the checked result when not given.
ABSENT = _Sentinel("ABSENT")

#: ISO UTC times the SPICE plumbing accepts (as :func:`retrieval.spice.utc_to_et`).
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?)?Z?$")
#: Accepted span of UTC times: the space age at Mars up to the end of the century (inside
#: DE440, 1550-2650, and the leap-second kernel's useful span).
UTC_RANGE = ("1960-01-01", "2100-01-01")


# ------------------------------------------------------------------------------- ranges
def _num(x) -> str:
    """A number as a user wrote it, short ('1e+30', '400', '0.05'); huge ints as digits."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x) if abs(x) < 10**16 else f"{x:.3e}" if abs(x) < 10**300 else "a huge integer"
    return f"{x:g}"


@dataclass(frozen=True)
class Range:
    """A closed interval [lo, hi]; either end may be open (excluded) or absent."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x) -> bool:
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            return False
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            return False
        return True

    def text(self, unit: str = "") -> str:
        u = f" {unit}" if unit and unit != "1" else ""
        lo, hi = (None if v is None else _num(v) for v in (self.lo, self.hi))
        if lo is None and hi is None:
            return "any finite value"
        if hi is None:
            return f"{'above' if self.lo_open else 'at least'} {lo}{u}"
        if lo is None:
            return f"{'below' if self.hi_open else 'at most'} {hi}{u}"
        sep = " to " if ("e" in lo + hi or lo.startswith("-") or hi.startswith("-")) else "-"
        ex = [v for v, o in ((lo, self.lo_open), (hi, self.hi_open)) if o]
        return f"{lo}{sep}{hi}{u}" + (f" ({' and '.join(ex)} excluded)" if ex else "")


# ------------------------------------------------------------------------------- keys
#: Kinds of value: float, int, bool, str, choice, utc, strs (list of strings), floats (list
#: of numbers, ``length`` fixed if given), intervals ([[start, stop], ...]), utc_pair,
#: tables (list of tables, each checked against ``table``).
KINDS = ("float", "int", "bool", "str", "choice", "utc", "strs", "floats", "intervals",
         "utc_pair", "tables")


@dataclass(frozen=True)
class Key:
    """One key of a configuration file.

    ``range`` applies to numbers and to every number of a list; ``why`` says where the
    range comes from. ``default`` is a value, ``None`` (optional: "not given", the code
    picks), :data:`REQUIRED` or :data:`ABSENT`.
    """

    kind: str
    default: Any = REQUIRED
    doc: str = ""
    unit: str = ""
    range: Range | None = None
    why: str = ""
    choices: tuple = ()
    length: int | None = None
    nonzero: bool = False
    table: dict | None = None
    pattern: str | None = None

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert self.kind != "choice" or self.choices
        assert self.range is None or self.why, "a range needs its reason"

    def describe(self) -> str:
        """One line: type, unit, allowed values."""
        what = {"float": "number", "int": "integer", "bool": "true/false", "str": "string",
                "utc": "ISO UTC time", "strs": "list of strings", "utc_pair":
                "[start, stop] ISO UTC times", "intervals": "[[start, stop], ...]",
                "tables": "list of tables"}.get(self.kind, "")
        if self.kind == "choice":
            what = " | ".join(map(str, self.choices))
        elif self.kind == "floats":
            what = f"list of {self.length or ''} numbers".replace("  ", " ")
        if self.range is not None:
            what += f", {self.range.text(self.unit)}"
        elif self.unit and self.unit != "1":
            what += f" [{self.unit}]"
        return what


def F(default, doc, unit, lo, hi, why, **kw) -> Key:
    """A number key in [lo, hi] (``lo_open``/``hi_open`` to exclude an end)."""
    r = Range(lo, hi, kw.pop("lo_open", False), kw.pop("hi_open", False))
    return Key("float", default, doc, unit, r, why, **kw)


def I(default, doc, lo, hi, why, unit="1") -> Key:  # noqa: E743 (reads as a type)
    """An integer key in [lo, hi]."""
    return Key("int", default, doc, unit, Range(lo, hi), why)


def C(default, doc, *choices) -> Key:
    """A key with one of a few string values."""
    return Key("choice", default, doc, choices=tuple(choices))


# ------------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Schema:
    """A file kind: ``sections`` (``""`` = top-level keys), arrays of tables and rules.

    ``rules`` are functions ``rule(doc, ctx)`` run after every key passed; they read the
    checked document and call ``ctx.fail(section, text)`` with a clause naming keys and
    values (the sentence's start, file and section, is added).
    """

    label: str
    sections: dict[str, dict[str, Key]]
    arrays: dict[str, dict[str, Key]] = field(default_factory=dict)
    rules: tuple[Callable, ...] = ()


class Context:
    """Where a document came from, for messages."""

    def __init__(self, schema: Schema, source: str):
        self.schema, self.source = schema, str(source)

    @property
    def file(self) -> str:
        s = self.source
        is_file = s.endswith(".toml") or "/" in s or "\\" in s
        return f"{self.schema.label} {'file ' if is_file else ''}{s}"

    def where(self, section: str) -> str:
        return self.file + (f" [{section}]" if section else "")

    def fail(self, section: str, text: str):
        raise ScenarioError(sentence(f"{self.where(section)} {text}"))


def sentence(text: str) -> str:
    """One line ending with a full stop."""
    text = " ".join(str(text).split())
    return text if text.endswith((".", "?", "!")) else text + "."


def show(value) -> str:
    """A value as it would be written in TOML (shortened)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _num(value)
    if isinstance(value, str):
        s = json.dumps(value, ensure_ascii=False)
        return s if len(s) <= 60 else s[:57] + '..."'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        s = "[" + ", ".join(show(v) for v in value[:6]) + (", ...]" if len(value) > 6 else "]")
        return s if len(s) <= 80 else s[:76] + " ...]"
    return type(value).__name__


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    return isinstance(v, int) or math.isfinite(v)


def _utc_ok(v) -> bool:
    if not isinstance(v, str) or not _ISO.match(v.strip()):
        return False
    try:
        t = utc(v)
    except (ValueError, TypeError, OverflowError):
        return False
    return np.datetime64(UTC_RANGE[0]) <= t <= np.datetime64(UTC_RANGE[1])


def utc(text: str) -> np.datetime64:
    """A checked ISO UTC string as datetime64[ms]."""
    return np.datetime64(text.strip().rstrip("Z").replace(" ", "T"), "ms")


class _Value:
    """Checks of one value, one method per kind (:data:`KINDS`); each returns the value
    normalised (numbers as float, lists copied) or raises the sentence."""

    def __init__(self, ctx: Context, section: str, name: str, key: Key, value):
        self.ctx, self.section, self.name, self.key, self.value = ctx, section, name, key, value

    def bad(self, expected):
        k = self.key
        rng = f" (allowed: {k.range.text(k.unit)})" if k.range is not None else ""
        self.ctx.fail(self.section, f"{self.name} = {show(self.value)} is not {expected}{rng}")

    def in_range(self, v):
        k = self.key
        if k.range is not None and v not in k.range:
            self.ctx.fail(self.section, f"{self.name} = {show(self.value)} is outside the "
                          f"allowed range {k.range.text(k.unit)}; {k.why}")

    def float(self):
        v = self.value
        if not _is_num(v):
            self.bad("a number")
        if not _finite(v):
            self.bad("a finite number")
        self.in_range(v)
        return float(v)

    def int(self):
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            self.bad("an integer")
        self.in_range(self.value)
        return self.value

    def bool(self):
        if not isinstance(self.value, bool):
            self.bad("true or false")
        return self.value

    def str(self):
        if not isinstance(self.value, str):
            self.bad("a string")
        if self.key.pattern is not None and not re.fullmatch(self.key.pattern, self.value):
            self.bad("a name of letters, digits, '-', '_' and '.'")
        return self.value

    def choice(self):
        if not isinstance(self.value, str) or self.value not in self.key.choices:
            self.bad("one of " + ", ".join(map(str, self.key.choices)))
        return self.value

    def utc(self):
        if not _utc_ok(self.value):
            self.bad(f"an ISO UTC time YYYY-MM-DD[THH:MM:SS] between {UTC_RANGE[0]} and "
                     f"{UTC_RANGE[1]}")
        return self.value

    def sequence(self, what):
        if not isinstance(self.value, list):
            self.bad(what)
        return self.value

    def strs(self):
        if not all(isinstance(v, str) for v in self.sequence("a list of strings")):
            self.bad("a list of strings")
        return list(self.value)

    def floats(self):
        n = self.key.length
        what = f"a list of {n} numbers" if n else "a list of numbers"
        value = self.sequence(what)
        if n is not None and len(value) != n:
            self.bad(what)
        if not all(_is_num(v) and _finite(v) for v in value):
            self.bad(what.replace("numbers", "finite numbers"))
        for v in value:
            self.in_range(v)
        out = [float(v) for v in value]
        if self.key.nonzero and math.fsum(v * v for v in out) < 1e-12:
            self.bad("a non-zero direction")
        return out

    def intervals(self):
        what = "a list of [start, stop] pairs with stop > start"
        for iv in self.sequence(what):
            if not (isinstance(iv, list) and len(iv) == 2 and all(
                    _is_num(v) and _finite(v) for v in iv) and iv[1] > iv[0]):
                self.bad(what)
            for v in iv:
                self.in_range(v)
        return [[float(a), float(b)] for a, b in self.value]

    def utc_pair(self):
        value = self.sequence("two ISO UTC times [start, stop]")
        if len(value) != 2 or not all(_utc_ok(v) for v in value):
            self.bad("two ISO UTC times [start, stop]")
        if utc(value[1]) <= utc(value[0]):
            self.bad("two ISO UTC times with the start before the stop")
        return list(value)

    def tables(self):
        what = "a list of tables {" + ", ".join(self.key.table) + "}"
        if not all(isinstance(v, dict) for v in self.sequence(what)):
            self.bad(what)
        return [check_table(self.ctx, f"{self.section}] {self.name}[{i}", self.key.table, v)
                for i, v in enumerate(self.value)]


def check_value(ctx: Context, section: str, name: str, key: Key, value):
    """Check one value against its key; return it normalised (numbers as float)."""
    if value is None:  # only defaults are None (TOML has no null)
        return None
    return getattr(_Value(ctx, section, name, key, value), key.kind)()


def check_table(ctx: Context, section: str, keys: dict[str, Key], given: dict) -> dict:
    """Check the keys of one table: unknown keys, missing required keys, each value."""
    for k in given:
        if k not in keys:
            ctx.fail(section, f"has an unknown key '{k}'; known keys: {', '.join(keys)}")
    out = {}
    for k, key in keys.items():
        if k in given:
            out[k] = check_value(ctx, section, k, key, given[k])
        elif key.default is REQUIRED:
            ctx.fail(section, f"lacks the required key '{k}' ({key.doc or key.describe()})")
        elif key.default is not ABSENT:
            out[k] = check_value(ctx, section, k, key,
                                 list(key.default) if isinstance(key.default, list)
                                 else key.default)
    return out


def check(schema: Schema, data: dict, source: str) -> dict:
    """Check a parsed TOML document; return ``{section: {key: value}}`` with defaults.

    Arrays of tables (``schema.arrays``) come back as lists of dicts under their names.
    Raises :class:`ScenarioError` (one sentence) on the first problem.
    """
    ctx = Context(schema, source)
    top_keys = schema.sections.get("", {})
    top = {k: v for k, v in data.items() if k not in schema.arrays
           and not (k in schema.sections and k)}
    for k, v in data.items():
        if k in schema.arrays:
            if not (isinstance(v, list) and all(isinstance(x, dict) for x in v)):
                ctx.fail("", f"key '{k}' must be an array of tables [[{k}]]")
        elif k in top_keys:
            continue
        elif isinstance(v, dict) and k not in schema.sections:
            known = [f"[{s}]" for s in schema.sections if s] + [f"[[{a}]]" for a in
                                                                  schema.arrays]
            ctx.fail("", f"has an unknown section [{k}]; known sections: {', '.join(known)}")
        elif k in schema.sections and k and not isinstance(v, dict):
            ctx.fail("", f"key '{k}' = {show(v)} must be a table [{k}]")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            ctx.fail("", f"has an unknown array of tables [[{k}]]"
                     + (f"; expected {', '.join(f'[[{a}]]' for a in schema.arrays)}"
                        if schema.arrays else ""))
    given = {sec: top if sec == "" else data.get(sec, {}) for sec in schema.sections}
    for sec, keys in schema.sections.items():  # unknown keys first: a misspelt key
        for k in given[sec]:                    # explains a "missing" one
            if k not in keys:
                ctx.fail(sec, f"has an unknown key '{k}'; known keys: {', '.join(keys)}")
    doc = {}
    for sec, keys in schema.sections.items():
        doc[sec] = check_table(ctx, sec, keys, given[sec])
    for name, keys in schema.arrays.items():
        doc[name] = [check_table(ctx, f"[{name}]] {i + 1}", keys, d).copy()
                     for i, d in enumerate(data.get(name, []))]
    for rule in schema.rules:
        rule(doc, ctx)
    return doc


# ------------------------------------------------------------------------------- files
def decode(raw: bytes, what: str) -> str:
    """UTF-8 text of a file's bytes (a UTF-8 byte-order mark is dropped), or one sentence."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScenarioError(sentence(f"{what} is not UTF-8 text (it starts with a UTF-16 "
                                     "byte-order mark); save it as UTF-8"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(sentence(f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                                     f"at offset {exc.start}); save it as UTF-8")) from None
    if "\x00" in text:
        raise ScenarioError(sentence(f"{what} is not UTF-8 text (it contains NUL bytes: "
                                     "UTF-16 or binary?); save it as UTF-8"))
    return text.removeprefix("\ufeff")


def read_file(path, what: str) -> tuple[str, bytes]:
    """Text and bytes of a configuration file, every failure as one sentence."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ScenarioError(sentence(f"{what} does not exist")) from None
    except (OSError, ValueError) as exc:  # a directory, no permission, a NUL in the name
        raise ScenarioError(sentence(f"{what} cannot be read "
                                     f"({getattr(exc, 'strerror', None) or exc})")) from None
    return decode(raw, what), raw


def is_file_name(text: str) -> bool:
    """Whether a name-or-path argument names a file (ends in .toml or exists)."""
    try:
        return text.endswith(".toml") or Path(text).exists()
    except (OSError, ValueError):  # a NUL in the name, a name too long for the system
        return False


def check_file(path, what: str) -> None:
    """One sentence unless ``path`` is an existing regular file."""
    try:
        if Path(path).is_file():
            return
        exists = Path(path).exists()
    except (OSError, ValueError):
        exists = False
    raise ScenarioError(sentence(f"{what} {'is not a file' if exists else 'does not exist'}"))


def parse_toml(text: str, what: str) -> dict:
    """``tomllib.loads`` with every failure as one sentence."""
    if not isinstance(text, str):
        raise ScenarioError(sentence(f"{what} is not text (got {type(text).__name__})"))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(sentence(f"{what} is not valid TOML: {exc}")) from None
    except RecursionError:
        raise ScenarioError(sentence(f"{what} is not valid TOML: it nests too deeply")) from None


# ------------------------------------------------------------------------------- docs
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*)$")
_SECTION_LINE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?\s*(#.*)?$")


def _comment_at(line: str) -> int:
    """Index of the first '#' outside a TOML string on one line, or -1."""
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return i
        i += 1
    return -1


def annotate(text: str, schema: Schema) -> str:
    """The file with every key's documentation in its comment; the TOML data is unchanged.

    A key line without a comment gets ``# meaning; type, allowed range``; a commented one
    keeps its comment and gets `` [allowed <range>]`` at the end of it (after the comment's
    indented continuation lines, if any) when the key has a range. Continuation lines of
    multi-line values and unknown keys are left as they are.
    """
    lines = text.splitlines()
    out, sec = list(lines), ""
    for i, line in enumerate(lines):
        m = _SECTION_LINE.match(line)
        if m:
            sec = m.group(1)
            continue
        k = _KEY_LINE.match(line)
        keys = schema.arrays.get(sec) or schema.sections.get(sec, {})
        key = keys.get(k.group(2)) if k else None
        at = _comment_at(line)
        try:
            tomllib.loads(line[:at] if at >= 0 else line)  # a complete one-line value
        except tomllib.TOMLDecodeError:
            key = None
        if key is None:
            continue
        if at < 0:
            note = f"{key.doc}; {key.describe()}" if key.doc else key.describe()
            out[i] = f"{line}{' ' * max(1, 34 - len(line))}# {note}"
        elif key.range is not None:
            j = i
            while j + 1 < len(lines) and re.match(r"^\s+#", lines[j + 1]):
                j += 1
            out[j] = f"{out[j].rstrip()} [allowed {key.range.text(key.unit)}]"
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def describe(schema: Schema) -> str:
    """Plain-text table of every key: section, key, type and range, unit, reason."""
    rows = []
    for sec, keys in list(schema.sections.items()) + [(f"[{a}]", k) for a, k in
                                                       schema.arrays.items()]:
        for name, key in keys.items():
            rows.append(f"[{sec}] {name}: {key.describe()} -- {key.doc}"
                        + (f" (range: {key.why})" if key.why else ""))
    return "\n".join(rows)
