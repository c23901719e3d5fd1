"""Cadence and coverage: which events a campaign observes, and their SZA spread."""

from __future__ import annotations

import numpy as np
import xarray as xr

#: SZA bins of the coverage histograms [deg].
SZA_BINS_DEG = np.arange(0.0, 190.0, 10.0)


CADENCE_RULES = ("lowest_sza", "first", "all")


def apply_cadence(events: xr.Dataset, candidates: np.ndarray, good: np.ndarray,
                  per_week: float, rule: str, start_et: float) -> np.ndarray:
    """Boolean mask of the events observed under a cadence.

    The span is cut into slots of 7 / ``per_week`` days from its start; in each slot one
    candidate (observable) event is observed: ``lowest_sza`` prefers events meeting the
    target (``good``) and among them the lowest SZA; ``first`` takes the earliest
    candidate; ``all`` observes every candidate (no cadence).
    """
    if rule not in CADENCE_RULES:
        raise ValueError(f"unknown cadence rule {rule!r}; known rules: "
                         f"{', '.join(CADENCE_RULES)}")
    cand = np.asarray(candidates, bool)
    if rule == "all":
        return cand.copy()
    slot = np.floor((events.et_link.values - start_et) / (7.0 / per_week * 86400.0))
    sza = events.sza_deg.values
    chosen = np.zeros(len(cand), bool)
    idx = np.nonzero(cand)[0]
    for s in np.unique(slot[idx]):
        members = idx[slot[idx] == s]
        if rule == "first":
            pick = members[np.argmin(events.et_link.values[members])]
        else:
            key = np.lexsort((sza[members], ~np.asarray(good)[members]))
            pick = members[key[0]]
        chosen[pick] = True
    return chosen


def coverage(sza_deg) -> dict:
    """SZA coverage of a set of events: count, min, count below 45 deg, histogram."""
    sza = np.asarray(sza_deg, float)
    hist, _ = np.histogram(sza, bins=SZA_BINS_DEG)
    return dict(n=int(len(sza)), min_sza_deg=float(sza.min()) if len(sza) else np.nan,
                max_sza_deg=float(sza.max()) if len(sza) else np.nan,
                n_below_sza_45=int((sza < 45.0).sum()),
                n_dayside=int((sza < 90.0).sum()), n_nightside=int((sza >= 90.0).sum()),
                sza_histogram=hist.tolist())
