"""Occultation search (``retrieval.occultation.find_events`` through validation.events)."""

from __future__ import annotations

import time

from . import _common  # noqa: F401  (puts the script benchmarks on sys.path)


class EventSearch:
    """MEX -> TGO and MAVEN -> Earth over 7 and 365 days.

    Timed in CPU time (``timer``): the benchmark machine is shared. ``track_epochs`` counts
    the ephemeris epochs a search evaluates: deterministic, so a change of the search's
    work shows whatever the machine's load.
    """

    params = (["mex-tgo", "maven-earth"], [7, 365])
    param_names = ["link", "days"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600
    timer = time.process_time

    def setup(self, link, days):
        from retrieval import spice
        from validation.events import search

        self.tx, self.rx = link.split("-")
        self.stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + days * 86400.0, 0)
        search(self.tx, self.rx, "2023-01-01", "2023-01-02")  # kernels, orbit SPKs

    def time_search(self, link, days):
        from validation.events import search

        search(self.tx, self.rx, "2023-01-01", self.stop)

    def track_epochs(self, link, days):
        from events_bench import count_epochs

        from validation.events import search

        return count_epochs(search, self.tx, self.rx, "2023-01-01", self.stop)[1]

    track_epochs.unit = "epochs"
