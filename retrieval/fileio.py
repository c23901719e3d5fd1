"""Atomic file writes: a reader never sees a half-written file.

Everything the harness writes (kernels in the cache, netCDF results, reports) goes
through these helpers: the content is written to a temporary file in the destination
directory and then renamed over the target with :func:`os.replace` (atomic on POSIX).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    On an exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp"
    )
    os.close(fd)
    os.unlink(tmp)  # writers such as SPICE refuse to open an existing file
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(target, text: str) -> Path:
    """Write ``text`` to ``target`` atomically; return the target path."""
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)
    return Path(target)


def write_bytes_atomic(target, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; return the target path."""
    with atomic_path(target) as tmp:
        Path(tmp).write_bytes(data)
    return Path(target)
