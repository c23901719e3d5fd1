"""``roharness gate --update``: re-measure a thresholds file and rewrite its recorded values.

Re-exported by :mod:`validation.gate` (``from validation.gate import update_thresholds``).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

from retrieval.fileio import write_text_atomic
from validation.gate_schema import _read, default_thresholds_path, parse_thresholds

_NUMBER = r"[+-]?(?:nan|inf|[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)"
_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^(\s*)([A-Za-z0-9_.\-\"' ]+?)(\s*=\s*)(\{\s*value\s*=\s*)?(" + _NUMBER
                     + r")(.*)$")


def _key_path(text: str) -> tuple[str, ...]:
    """A TOML key or table header as its parts (bare, quoted, dotted)."""
    parts, cur, quote = [], "", None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return tuple(parts)


def _format_value(new, old_text: str, tol: float) -> str:
    """The recorded value as TOML: an integer for counts, else the fewest significant digits
    (at least 7) whose rounding is below 1 % of the band (all 17 for a band of 0)."""
    if float(new).is_integer() and abs(new) < 1e15 and not re.search(r"[.eEna]", old_text):
        return str(int(new))
    text = repr(float(new))
    for digits in range(7, 17):
        short = f"{float(new):.{digits}g}"
        if tol > 0 and abs(float(short) - new) <= 0.01 * tol:
            text = short
            break
    if not re.search(r"[.eEn]", text):
        text += ".0"
    return text


def rewrite_recorded(text: str, new_values: dict[tuple[str, str], float]) -> tuple[str, list]:
    """Replace the recorded values in thresholds text, keeping everything else.

    ``new_values`` maps ``(table, metric)`` to the new recorded value and its tolerance
    (which sets the digits written, :func:`_format_value`). Each metric must be
    written on one line in its table's ``[TABLE.metrics]`` section (``metric = number`` or
    ``metric = { value = number, ... }``), as the files this project writes are.

    Returns
    -------
    text : str
    missing : list of (table, metric)
        Metrics whose line was not found (left unchanged).
    """
    lines = text.splitlines(keepends=True)
    section: tuple[str, ...] = ()
    done = set()
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m and not line.lstrip().startswith("[["):
            section = _key_path(m.group(1))
            continue
        if len(section) != 2 or section[1] != "metrics":
            continue
        m = _ASSIGN.match(line.rstrip("\n"))
        if not m:
            continue
        metric = ".".join(_key_path(m.group(2)))
        key = (section[0], metric)
        if key not in new_values:
            continue
        value, tol = new_values[key]
        done.add(key)
        if float(m.group(5).replace("_", "")) == value:
            continue  # unchanged: keep the text as written
        new = _format_value(value, m.group(5), tol)
        eol = line[len(line.rstrip("\n")):]
        lines[i] = (m.group(1) + m.group(2) + m.group(3) + (m.group(4) or "") + new
                    + m.group(6) + eol)
    return "".join(lines), [k for k in new_values if k not in done]


def update_thresholds(path=None, log=None, retrieval=None) -> dict:
    """Re-measure every computation of a thresholds file and rewrite its recorded values.

    Bands, comments and layout are kept; only the recorded numbers change. The file is
    written atomically (:func:`retrieval.fileio.write_text_atomic`), and only if every
    value could be measured and rewritten.

    Returns
    -------
    dict
        ``path``; ``changes``: one dict per check (``name``, ``table``, ``metric``, ``old``,
        ``new``, ``changed``); ``failed``: checks that could not be measured (with
        ``message``); ``written`` (bool); ``elapsed_s``.
    """
    # imported here: validation.gate imports this module (its re-export); measure() looks
    # up validation.gate.compute, so replacing that (as the tests do) reaches this too
    from validation.gate import _as_float, measure

    t0 = time.perf_counter()
    path = Path(path) if path is not None else default_thresholds_path()
    text = _read(path)
    checks = parse_thresholds(text, str(path), base_dir=path.parent)
    results = measure(checks, log=log, retrieval=retrieval)
    changes, failed, new_values = [], [], {}
    for chk in checks:
        metrics, error, _ = results[chk.run_key]
        value = float("nan") if metrics is None else _as_float(metrics.get(chk.metric))
        if not math.isfinite(value):
            why = (f"the {chk.kind} computation failed: {error}" if metrics is None
                   else f"{chk.metric} is {metrics.get(chk.metric)!r}, not a finite number")
            failed.append(dict(name=chk.name, table=chk.table, metric=chk.metric, message=why))
            continue
        new_values[(chk.table, chk.metric)] = (value, max(chk.abs, chk.rel * abs(value)))
        changes.append(dict(name=chk.name, table=chk.table, metric=chk.metric,
                            old=chk.recorded, new=value))
    new_text, missing = rewrite_recorded(text, new_values)
    for table, metric in missing:
        failed.append(dict(name=f"{table}.{metric}", table=table, metric=metric,
                           message=f"no line '{metric} = ...' under [{table}.metrics] to "
                           "rewrite; write each metric on its own line there"))
    written = False
    if not failed:
        reparsed = {c.name: c.recorded for c in parse_thresholds(new_text, str(path),
                                                                   base_dir=path.parent)}
        for ch in changes:
            ch["new"] = reparsed[ch["name"]]  # the value as written (7 digits)
            ch["changed"] = ch["new"] != ch["old"]
        if new_text != text:
            write_text_atomic(path, new_text)
        written = True
    else:
        for ch in changes:
            ch["changed"] = ch["new"] != ch["old"]
    return dict(path=str(path), changes=changes, failed=failed, written=written,
                elapsed_s=time.perf_counter() - t0)


def format_update(result: dict) -> str:
    """The human diff of :func:`update_thresholds`: ``old -> new`` per changed value."""
    out = []
    for ch in result["changes"]:
        if not ch["changed"]:
            continue
        rel = ""
        if ch["old"] != 0:
            rel = f" ({100.0 * (ch['new'] / ch['old'] - 1.0):+.3g} %)"
        out.append(f"{ch['name']}: {ch['old']:.7g} -> {ch['new']:.7g}{rel}")
    for f in result["failed"]:
        out.append(f"NOT UPDATED {f['name']}: {f['message']}")
    n_changed = sum(ch["changed"] for ch in result["changes"])
    n_same = len(result["changes"]) - n_changed
    if result["written"]:
        out.append(f"gate --update: {n_changed} recorded values changed, {n_same} unchanged; "
                   f"wrote {result['path']} (review the diff before committing)")
    else:
        out.append(f"gate --update: {len(result['failed'])} values could not be measured; "
                   f"{result['path']} left unchanged")
    return "\n".join(out)
