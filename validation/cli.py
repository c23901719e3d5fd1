"""The ``roharness`` command line.

Every user-caused error is a :class:`retrieval.errors.RoharnessError`; it is printed as one
sentence on stderr with exit status 2. No traceback is ever shown for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

from retrieval.errors import RoharnessError
from validation import __version__
from validation.commands import COMMAND_MODULES


def one_line(text) -> str:
    """``text`` with control and line-breaking characters escaped (``\\r``, ``\\n``,
    ``\\u2028``...): a message that quotes what the user typed stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one sentence and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        sys.stderr.write(f"roharness: error: {one_line(message)} (see '{self.prog} --help').\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = _Parser(
        prog="roharness",
        description="Simulation-and-validation harness for planetary radio occultation.",
    )
    parser.add_argument("--version", action="version", version=f"roharness {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def _clean(obj):
    """Replace NaN/inf by None so that the JSON output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalar
        return _clean(obj.item())
    return obj


def print_json(obj) -> None:
    """Print one strict-JSON object on stdout."""
    sys.stdout.write(json.dumps(_clean(obj), indent=2) + "\n")


def main(argv=None) -> int:
    """Entry point of the ``roharness`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from validation.limits import forced

    try:
        with forced(bool(getattr(args, "force", False))):
            return int(args.func(args) or 0)
    except RoharnessError as exc:
        sys.stderr.write(f"roharness: error: {one_line(exc)}\n")
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("roharness: interrupted; finished work is kept.\n")
        return 130
    except Exception as exc:  # an internal fault, not a user error
        if os.environ.get("ROHARNESS_DEBUG"):
            raise
        sys.stderr.write(
            f"roharness: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(set ROHARNESS_DEBUG=1 to see the traceback).\n"
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
