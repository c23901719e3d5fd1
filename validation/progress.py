"""Progress display for long runs: a one-line bar on a terminal, timed lines otherwise.

On a terminal (stderr is a TTY) the bar is redrawn in place. Piped or logged (CI, ``nohup``,
``2> log``) a plain line ``label: 45 % after 20 s`` is written every :data:`LINE_INTERVAL_S`
seconds, and a last line at the end if any was written, so a long run is never silent and
a short one adds nothing to the log.
"""

from __future__ import annotations

import sys
import time

#: Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL_S = 10.0


class Progress:
    """Callable progress reporter ``progress(fraction)`` on stderr.

    Parameters
    ----------
    label : str
        Text before the bar / line.
    stream : file, optional
        Default ``sys.stderr``.
    enabled : bool, optional
        True: always the bar; False: silent; None (default): the bar on a terminal, timed
        lines otherwise.
    interval_s : float
        Seconds between lines when not on a terminal.
    """

    def __init__(self, label: str, stream=None, enabled: bool | None = None,
                 interval_s: float = LINE_INTERVAL_S):
        self.label = label
        self.stream = stream or sys.stderr
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        self.enabled = (tty if enabled is None else enabled) is True
        self.lines = enabled is None and not tty
        self.interval_s = float(interval_s)
        self.t0 = time.perf_counter()
        self._last = -1.0
        self._last_line_t = self.t0
        self._n_lines = 0
        self._fraction = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self._fraction = fraction
        if self.lines:
            now = time.perf_counter()
            if now - self._last_line_t >= self.interval_s or (fraction >= 1.0
                                                              and self._n_lines):
                if fraction >= 1.0 and self._last >= 1.0:
                    return
                self._line(fraction, now)
            return
        if not self.enabled:
            return
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

    def _line(self, fraction: float, now: float) -> None:
        self._last_line_t = now
        self._last = fraction
        self._n_lines += 1
        try:
            self.stream.write(f"{self.label}: {100 * fraction:.0f} % after "
                              f"{now - self.t0:.0f} s\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken log must not stop the run
            self.lines = False

    def close(self):
        if self.lines:
            if self._n_lines and self._last < 1.0:
                self._line(self._fraction, time.perf_counter())
            return
        if self.enabled and self._last < 1.0:
            self(1.0)
