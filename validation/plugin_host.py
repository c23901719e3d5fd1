"""Child process that hosts one Python plug-in retrieval (see :mod:`validation.plugins`).

Run as ``python -m validation.plugin_host KIND TARGET`` (KIND ``python`` with TARGET
``module:function``, or ``entry_point`` with a registered name). It loads the callable,
answers ``("ready", None)`` or ``("error", sentence)``, then serves ``("call", observation)``
messages with ``("ok", profile)`` or ``("error", "ExceptionType: message")`` until its stdin
closes. Messages are 8-byte little-endian lengths followed by a pickle. The plug-in's own
output on stdout is redirected to stderr so that it cannot corrupt the protocol.
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import sys


def _send(fh, obj) -> None:
    try:
        blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # the plug-in returned something that cannot travel
        blob = pickle.dumps(("error", f"its result cannot be pickled ({type(exc).__name__}: "
                                      f"{exc})"))
    fh.write(struct.pack("<Q", len(blob)))
    fh.write(blob)
    fh.flush()


def _recv(fh):
    head = fh.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    return pickle.loads(fh.read(n))


def _load(kind: str, target: str):
    if kind == "python":
        module, _, attr = target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    elif kind == "entry_point":
        from importlib.metadata import entry_points

        from validation.plugins import ENTRY_POINT_GROUP

        eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == target]
        if not eps:
            raise LookupError(f"no entry point '{target}' in group {ENTRY_POINT_GROUP}")
        obj = eps[0].load()
    else:
        raise ValueError(f"unknown plug-in kind {kind!r}")
    if not callable(obj):
        raise TypeError(f"'{target}' is a {type(obj).__name__}, not a callable")
    return obj


def main(argv=None) -> int:
    kind, target = (argv or sys.argv[1:])[:2]
    proto_in = sys.stdin.buffer
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the plug-in's prints go to the log, not into the protocol
    sys.stdout = sys.stderr
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        func = _load(kind, target)
    except BaseException as exc:  # report any failure to load as one sentence
        _send(proto_out, ("error", f"{type(exc).__name__}: {exc}"))
        return 1
    _send(proto_out, ("ready", None))
    while True:
        msg = _recv(proto_in)
        if msg is None:
            return 0
        _, observation = msg
        try:
            result = func(observation)
        except BaseException as exc:  # the plug-in's failure is the caller's data
            _send(proto_out, ("error", f"{type(exc).__name__}: {exc}"))
            continue
        _send(proto_out, ("ok", result))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
