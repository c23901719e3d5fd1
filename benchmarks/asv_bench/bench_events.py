"""Occultation search (``retrieval.occultation.find_events`` through validation.events)."""

from __future__ import annotations


class EventSearch:
    """MEX -> TGO and MAVEN -> Earth over 7 and 365 days."""

    params = (["mex-tgo", "maven-earth"], [7, 365])
    param_names = ["link", "days"]
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, link, days):
        from retrieval import spice
        from validation.events import search

        self.tx, self.rx = link.split("-")
        self.stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + days * 86400.0, 0)
        search(self.tx, self.rx, "2023-01-01", "2023-01-02")  # kernels, orbit SPKs

    def time_search(self, link, days):
        from validation.events import search

        search(self.tx, self.rx, "2023-01-01", self.stop)
