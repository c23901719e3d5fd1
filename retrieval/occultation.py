"""Occultation finder: when does the straight ray of a link graze Mars?

For a link (transmitter, receiver) the straight-line ray's closest approach to Mars'
centre defines the *tangent altitude* h(t) (above the reference sphere). Every crossing of
0 km (the ray is cut by the planet) and of a reference altitude (default 200 km, the top
of the photochemical ionosphere) is found over a time window:

1. h is Lipschitz: the distance of the segment from the centre changes no faster than the
   speed of its ends, |dh/dt| <= v_max (for a far end such as Earth, only the fraction of its
   speed that moves the near part of the ray counts). An interval [t_i, t_i+1] without a sign
   change of h - L can hide a double crossing of level L only if
   |h_i - L| + |h_i+1 - L| <= 1.3 v_max (t_i+1 - t_i) (1.3: margin for speed changes within the
   interval).
2. h is sampled on a regular grid (default 60 s), coarse to fine: every 64th grid point,
   then the grid midpoints of the intervals that hold a sign change or that step 1 cannot
   clear, down to single grid steps (an interval far from every level is never looked
   into: a few epochs per hour instead of 60). Below the grid step, intervals that step 1
   cannot clear are bisected until they are cleared or shorter than 0.05 s. No event lasting
   longer than that can be missed, and the crossings are bracketed by the same grid steps
   as on the full grid.
3. Each bracketed crossing is refined (Illinois regula falsi, all at once) to 1 ms.

Light time is accounted for (:func:`retrieval.geometry.link_states`); event times are the
times at which the ray passes the tangent point. A crossing whose closest point is an end of
the segment (a spacecraft below the reference altitude looking up, e.g. MAVEN at periapsis)
is not a tangent-point event and is discarded.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.geometry import (
    FAR_END_M,
    j2000_to_latlon,
    link_states,
    solar_geometry,
    tangent_point,
)

_MIN_INTERVAL_S = 0.05
_SAFETY = 1.3


def tangent_altitude(tx, rx, et) -> dict:
    """Straight-ray tangent geometry of a link at reference-end times ``et``.

    Returns
    -------
    dict
        ``altitude_m`` (n,), ``s`` (n,), ``point`` (n, 3), ``et_tangent`` (n,), ``speed_bound``
        (n,) [m/s] and the link states of :func:`retrieval.geometry.link_states`.
    """
    st = link_states(tx, rx, et)
    point, radius, s = tangent_point(st["tx_position"], st["rx_position"])
    v_tx = np.linalg.norm(st["tx_velocity"], axis=1)
    v_rx = np.linalg.norm(st["rx_velocity"], axis=1)
    far_tx = np.linalg.norm(st["tx_position"], axis=1) > FAR_END_M
    far_rx = np.linalg.norm(st["rx_position"], axis=1) > FAR_END_M
    # A far end moves the near part of the ray by at most s (or 1 - s) of its speed.
    bound = np.where(far_rx, v_tx + s * v_rx, np.where(far_tx, v_rx + (1 - s) * v_tx,
                                                         np.maximum(v_tx, v_rx)))
    et_tp = st["et_tx"] + s * (st["et_rx"] - st["et_tx"])
    return dict(st, altitude_m=radius - K.MARS_MEAN_RADIUS_M, s=s, point=point,
                et_tangent=et_tp, speed_bound=bound)


def _ambiguous(h0, h1, b0, b1, dt, levels):
    """Intervals that may hold a crossing of a level: a sign change, or the same sign with
    both ends close enough to the level for h to reach it and come back at the speed bound
    (with the margin :data:`_SAFETY`)."""
    vmax = _SAFETY * np.maximum(b0, b1)
    out = np.zeros(len(dt), bool)
    for lev in levels:
        d0, d1 = h0 - lev, h1 - lev
        same = np.sign(d0) == np.sign(d1)
        out |= ~same | (np.abs(d0) + np.abs(d1) <= vmax * dt)
    return out


def _scan(tx, rx, et_grid, levels, progress=None, chunk=20000, coarse=64):
    """Sample h on the grid and bisect ambiguous intervals; return (t, h).

    The grid is sampled coarse to fine: every ``coarse``-th point first, then the midpoint
    (on the grid) of every interval that may hold a crossing (:func:`_ambiguous`), down to
    single grid steps; an interval cleared by the speed bound is never looked into, so the
    stretches where the ray is far from every level cost a few epochs, not one a step. Every
    grid step that holds a crossing, or that the speed bound cannot clear, is sampled at
    both ends as on the full grid; below the grid step, ambiguous steps (same sign, both
    ends near a level) are bisected until cleared or shorter than 0.05 s. The brackets of
    the crossings, and so the events, are those of the full grid.
    """
    n = len(et_grid)

    def sample(idx_or_t, frac):
        t = et_grid[idx_or_t] if idx_or_t.dtype.kind in "iu" else idx_or_t
        hs, bs = [], []
        for i0 in range(0, len(t), chunk):
            g = tangent_altitude(tx, rx, t[i0:i0 + chunk])
            hs.append(g["altitude_m"])
            bs.append(g["speed_bound"])
        if progress:
            progress(frac)
        empty = np.empty(0)
        return (np.concatenate(hs) if hs else empty), (np.concatenate(bs) if bs else empty)

    # coarse to fine on grid indices
    idx = np.unique(np.r_[np.arange(0, n, coarse), n - 1])
    h, b = sample(idx, 0.1)
    while True:
        gap = np.diff(idx)
        split = (gap > 1) & _ambiguous(h[:-1], h[1:], b[:-1], b[1:],
                                       et_grid[idx[1:]] - et_grid[idx[:-1]], levels)
        if not split.any():
            break
        mid = (idx[:-1][split] + idx[1:][split]) // 2
        hm, bm = sample(mid, min(0.8, 0.1 + 0.7 * (1.0 - gap.max() / coarse)))
        idx = np.concatenate([idx, mid])
        order = np.argsort(idx)
        idx, h, b = idx[order], np.concatenate([h, hm])[order], np.concatenate([b, bm])[order]
    t = et_grid[idx]
    # below the grid step: bisect ambiguous steps (same sign, both ends near a level)
    for _ in range(40):
        dt = np.diff(t)
        vmax = _SAFETY * np.maximum(b[:-1], b[1:])
        amb = np.zeros(len(dt), bool)
        for lev in levels:
            d0, d1 = h[:-1] - lev, h[1:] - lev
            same = np.sign(d0) == np.sign(d1)
            amb |= same & (np.abs(d0) + np.abs(d1) <= vmax * dt) & (dt > _MIN_INTERVAL_S)
        if not amb.any():
            break
        mid = 0.5 * (t[:-1][amb] + t[1:][amb])
        hm, bm = sample(mid, 0.8)
        t = np.concatenate([t, mid])
        h = np.concatenate([h, hm])
        b = np.concatenate([b, bm])
        order = np.argsort(t)
        t, h, b = t[order], h[order], b[order]
    return t, h


def _refine(tx, rx, lo, hi, f_lo, f_hi, level, tol_s=1e-3):
    """Refine all brackets at once (Illinois regula falsi, one SPICE batch a step).

    A bracket is done when the root estimate is within ``tol_s`` of the true crossing,
    judged from the local slope (|f| < tol_s * |slope|) or from the bracket width.
    """
    a, b, fa, fb = lo.copy(), hi.copy(), f_lo.copy(), f_hi.copy()
    root = 0.5 * (a + b)
    todo = np.ones(len(a), bool)
    for _ in range(100):
        if not todo.any():
            break
        i = np.nonzero(todo)[0]
        c = b[i] - fb[i] * (b[i] - a[i]) / (fb[i] - fa[i])
        fc = tangent_altitude(tx, rx, c)["altitude_m"] - level
        slope = np.abs((fb[i] - fa[i]) / (b[i] - a[i]))
        switch = np.sign(fc) != np.sign(fb[i])
        a[i] = np.where(switch, b[i], a[i])
        fa[i] = np.where(switch, fb[i], 0.5 * fa[i])  # Illinois: halve the stale end
        b[i], fb[i] = c, fc
        root[i] = c
        done = (np.abs(fc) < tol_s * slope) | (np.abs(b[i] - a[i]) < tol_s)
        todo[i[done]] = False
    return root


def find_events(tx: int | str, rx: int | str, start_et: float, stop_et: float,
                reference_altitude_m: float = 200e3, step_s: float = 60.0,
                progress: Callable[[float], None] | None = None) -> xr.Dataset:
    """Find every ingress and egress of the link ``tx -> rx`` in a time window.

    Parameters
    ----------
    tx, rx : str or int
        NAIF names or IDs (kernels must be loaded).
    start_et, stop_et : float
        Window [s past J2000 TDB], times at the Mars-side reference end of the link.
    reference_altitude_m : float
        The reference tangent altitude [m] (default 200 km).
    step_s : float
        Initial sampling step [s]; ambiguous intervals are refined automatically.
    progress : callable, optional
        Called with the completed fraction (0-1).

    Returns
    -------
    xarray.Dataset
        Dimension ``event``; variables ``kind`` (ingress|egress), ``et`` and ``time_utc``
        (tangent-point time at the reference altitude), ``et_0km``/``time_0km_utc`` (crossing of
        the surface, NaN/"" if the ray never reached it), ``duration_s`` (between the two),
        ``lat_deg``, ``lon_deg``, ``sza_deg``, ``ltst_hours``, ``ls_deg`` (tangent point at the
        reference altitude), ``vertical_speed_km_s`` (rate of the tangent altitude there),
        ``bottom_altitude_km`` (lowest tangent altitude reached, 0 if the ray was cut).
    """
    if not (np.isfinite(start_et) and np.isfinite(stop_et)) or stop_et <= start_et:
        raise RoharnessError("the search window is empty: --stop must be after --start")
    if not reference_altitude_m > 0:
        raise RoharnessError(f"reference altitude {reference_altitude_m} m must be above 0 km")
    if not step_s > 0:
        raise RoharnessError(f"search step {step_s} s must be positive")
    nstep = int(np.ceil((stop_et - start_et) / step_s))
    grid = np.linspace(start_et, stop_et, nstep + 1)
    levels = (0.0, float(reference_altitude_m))
    t, h = _scan(tx, rx, grid, levels, progress)

    crossings = []  # (et, level index, direction +1 rising / -1 falling)
    for li, lev in enumerate(levels):
        d = h - lev
        idx = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
        if len(idx):
            roots = _refine(tx, rx, t[idx], t[idx + 1], d[idx], d[idx + 1], lev)
            crossings += [(r, li, 1 if d[i + 1] > d[i] else -1) for r, i in zip(roots, idx)]
    crossings.sort()
    if progress:
        progress(0.9)

    # a reference-level crossing whose closest point is an end of the segment (a spacecraft
    # below the reference altitude looking up) is not a tangent-point event: drop it first
    if crossings:
        ref_times = np.array([c[0] for c in crossings if c[1] == 1])
        if len(ref_times):
            g = tangent_altitude(tx, rx, ref_times)
            interior = iter((g["s"] > 1e-9) & (g["s"] < 1 - 1e-9))
            crossings = [c for c in crossings if c[1] == 0 or next(interior)]
    events = []  # (et at reference level, kind, et of the matching 0 km crossing)
    for k, (et_c, li, direction) in enumerate(crossings):
        if li != 1:
            continue
        kind = "ingress" if direction < 0 else "egress"
        # matching surface crossing: the next (ingress) / previous (egress) level-0 crossing
        # before the ray comes back through the reference altitude
        partner = np.nan
        other_side = t[-1] if kind == "ingress" else t[0]
        rng_ = range(k + 1, len(crossings)) if kind == "ingress" else range(k - 1, -1, -1)
        for j in rng_:
            if crossings[j][1] == 1:
                other_side = crossings[j][0]
                break
            if crossings[j][1] == 0 and not np.isfinite(partner):
                partner = crossings[j][0]
        events.append((et_c, kind, partner, other_side))
    return _events_dataset(tx, rx, events, t, h, reference_altitude_m)


def _events_dataset(tx, rx, events, t, h, ref_alt_m) -> xr.Dataset:
    n = len(events)
    out = {k: np.full(n, np.nan) for k in (
        "et", "et_link", "et_0km", "duration_s", "lat_deg", "lon_deg", "sza_deg", "ltst_hours",
        "ls_deg", "vertical_speed_km_s", "bottom_altitude_km")}
    kinds = [e[1] for e in events]
    if n:
        et_c = np.array([e[0] for e in events])
        partner = np.array([e[2] for e in events])
        g = tangent_altitude(tx, rx, et_c)
        et_tp = g["et_tangent"]
        lat, lon, _ = j2000_to_latlon(et_tp, g["point"])
        sol = solar_geometry(et_tp, lat, lon, g["altitude_m"])
        dt = 0.5
        rate = (tangent_altitude(tx, rx, et_c + dt)["altitude_m"]
                - tangent_altitude(tx, rx, et_c - dt)["altitude_m"]) / (2 * dt)
        out["et"][:] = et_tp
        out["et_link"][:] = et_c
        out["et_0km"][:] = partner + (et_tp - et_c)
        out["duration_s"][:] = np.abs(partner - et_c)
        out["lat_deg"][:], out["lon_deg"][:] = lat, lon
        for key in ("sza_deg", "ltst_hours", "ls_deg"):
            out[key][:] = sol[key]
        out["vertical_speed_km_s"][:] = rate / 1e3
        for i in range(n):
            if np.isfinite(partner[i]):
                out["bottom_altitude_km"][i] = 0.0
            else:  # grazing: lowest sampled tangent altitude until the ray comes back up
                lo, hi = sorted((et_c[i], events[i][3]))
                near = (t >= lo) & (t <= hi)
                out["bottom_altitude_km"][i] = float(np.min(h[near])) / 1e3 if near.any() \
                    else float(min(h[np.argmin(np.abs(t - et_c[i]))], 0.0)) / 1e3
    utc = spice.et_to_utc(out["et"], 3) if n else []
    utc0 = [spice.et_to_utc(e, 3) if np.isfinite(e) else "" for e in out["et_0km"]]
    units = dict(et="s", et_link="s", et_0km="s", duration_s="s", lat_deg="degrees_north",
                 lon_deg="degrees_east", sza_deg="degree", ltst_hours="hour", ls_deg="degree",
                 vertical_speed_km_s="km s-1", bottom_altitude_km="km")
    names = dict(
        et="ephemeris time (TDB past J2000) of the tangent point at the reference altitude",
        et_link="time at the link's reference end (the receiver, or the spacecraft "
        "transmitter of a downlink to Earth) when the ray is at the reference altitude",
        et_0km="ephemeris time of the tangent point at 0 km", duration_s="time from the "
        "reference altitude to 0 km", lat_deg="tangent point areocentric latitude",
        lon_deg="tangent point east longitude", sza_deg="solar zenith angle at the tangent "
        "point", ltst_hours="local true solar time at the tangent point",
        ls_deg="areocentric solar longitude", vertical_speed_km_s="rate of change of the "
        "tangent altitude", bottom_altitude_km="lowest tangent altitude reached")
    data = {k: ("event", v, {"units": units[k], "long_name": names[k]}) for k, v in out.items()}
    data["kind"] = ("event", np.array(kinds, dtype=str))
    data["time_utc"] = ("event", np.array(utc, dtype=str))
    data["time_0km_utc"] = ("event", np.array(utc0, dtype=str))
    ds = xr.Dataset(data, coords={"event": np.arange(n)})
    ds.attrs.update(transmitter=spice.body_name(spice.body_id(tx)),
                    receiver=spice.body_name(spice.body_id(rx)),
                    reference_altitude_m=float(ref_alt_m),
                    reference_radius_m=K.MARS_MEAN_RADIUS_M,
                    title="radio occultation events of a link")
    return ds


def events_to_records(ds: xr.Dataset) -> list[dict]:
    """Events as a list of plain dicts (for JSON)."""
    keys = ["time_utc", "kind", "lat_deg", "lon_deg", "sza_deg", "ltst_hours", "ls_deg",
            "time_0km_utc", "duration_s", "vertical_speed_km_s", "bottom_altitude_km"]
    recs = []
    for i in range(ds.sizes["event"]):
        rec = {}
        for k in keys:
            v = ds[k].values[i]
            rec[k] = v.item() if hasattr(v, "item") else v
        recs.append(rec)
    return recs
