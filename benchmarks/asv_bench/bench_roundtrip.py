"""The round trip of the issue's figure: ``roharness roundtrip --scenario mex-tgo-uhf``."""

from __future__ import annotations


class RoundTrip:
    number = 1
    repeat = (3, 10, 60.0)
    timeout = 300

    def setup(self):
        from validation.roundtrip import run_roundtrip

        run_roundtrip("mex-tgo-uhf")  # imports, kernels and caches of the process

    def track_elapsed_s(self):
        """``elapsed_s`` as the command reports it (fresh scenario, warm process)."""
        from validation.roundtrip import run_roundtrip

        return run_roundtrip("mex-tgo-uhf")["metrics"]["elapsed_s"]

    track_elapsed_s.unit = "s"

    def peakmem_roundtrip(self):
        from validation.roundtrip import run_roundtrip

        run_roundtrip("mex-tgo-uhf")


def timeraw_roundtrip_fresh_process():
    """The whole round trip in a new interpreter: imports, kernels, event search, rays,
    retrieval, scoring (what one CLI call costs)."""
    return ("from validation.roundtrip import run_roundtrip\n"
            "run_roundtrip('mex-tgo-uhf')\n")


timeraw_roundtrip_fresh_process.repeat = (2, 5, 120.0)
timeraw_roundtrip_fresh_process.timeout = 300
