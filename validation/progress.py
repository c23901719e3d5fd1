"""Progress display for long runs: a one-line bar on a terminal, silence otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Callable progress reporter ``progress(fraction)``; draws only on a TTY (stderr)."""

    def __init__(self, label: str, stream=None, enabled: bool | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - self._last < 0.01 and fraction < 1.0:
            return
        self._last = fraction
        width = 30
        done = int(width * fraction)
        elapsed = time.perf_counter() - self.t0
        self.stream.write(f"\r{self.label} [{'#' * done}{'.' * (width - done)}] "
                          f"{100 * fraction:5.1f}% {elapsed:6.1f} s")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()

    def close(self):
        if self.enabled and self._last < 1.0:
            self(1.0)
