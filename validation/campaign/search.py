"""Chunked event search over a campaign span, with each event's top altitude.

Step 1 of :func:`validation.campaign.run_campaign`: every ingress/egress of the link
(:func:`retrieval.occultation.find_events`, the Lipschitz scan), in chunks of ``[span]
chunk_days`` run as :class:`validation.engine.Engine` tasks. Each chunk is padded by
:data:`CHUNK_PAD_S` on both sides and keeps the events whose reference crossing lies in it,
so the result equals one long search; :func:`top_altitude_km` adds the highest tangent
altitude the ray reaches.
"""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr

from retrieval.errors import RoharnessError
from validation.engine import Engine

#: Padding of each search chunk on both sides [s]: longer than any occultation's
#: reference-to-surface time (grazing events of the presets last < 40 min).
CHUNK_PAD_S = 3 * 3600.0


#: Offsets [s] of the march away from the reference crossing in :func:`top_altitude_km`.
TOP_OFFSETS_S = (20.0, 60.0, 150.0, 300.0, 600.0, 1200.0, 2400.0)


#: Bisection steps refining where the tangent point leaves the segment.
TOP_BISECTIONS = 6


def top_altitude_km(tx, rx, et_link, kinds) -> np.ndarray:
    """Highest tangent altitude the straight ray reaches before ingress / after egress [km].

    Marching away from the reference crossing (backwards for an ingress, forwards for an
    egress) at the offsets :data:`TOP_OFFSETS_S`, the ray keeps a true tangent point until
    the closest point of the segment to Mars becomes one of its ends (the lower spacecraft
    comes into view of the limb); the tangent altitude is then that spacecraft's altitude.
    The first offset without a tangent point is refined by :data:`TOP_BISECTIONS`
    bisections; the result is the largest tangent altitude found up to there (capped by the
    last offset, 40 min, for rays that keep a tangent point, e.g. downlinks to Earth).
    """
    from retrieval.occultation import tangent_altitude

    et_link = np.asarray(et_link, float)
    n = len(et_link)
    if n == 0:
        return np.zeros(0)
    sign = np.where(np.asarray(kinds) == "ingress", -1.0, 1.0)
    off = np.asarray(TOP_OFFSETS_S)
    t = et_link[:, None] + sign[:, None] * off[None, :]
    g = tangent_altitude(tx, rx, t.ravel())
    alt = g["altitude_m"].reshape(n, -1)
    inside = ((g["s"] > 1e-9) & (g["s"] < 1 - 1e-9)).reshape(n, -1)
    first_out = np.where(inside.all(axis=1), len(off), np.argmin(inside, axis=1))
    best = np.full(n, -np.inf)
    for i in range(n):
        k = first_out[i]
        best[i] = np.max(alt[i, :k]) if k > 0 else -np.inf
    todo = np.nonzero(first_out < len(off))[0]
    if len(todo):
        k = first_out[todo]
        lo = np.where(k > 0, off[np.maximum(k - 1, 0)], 0.0)
        hi = off[k]
        for _ in range(TOP_BISECTIONS):
            mid = 0.5 * (lo + hi)
            gm = tangent_altitude(tx, rx, et_link[todo] + sign[todo] * mid)
            ins = (gm["s"] > 1e-9) & (gm["s"] < 1 - 1e-9)
            best[todo] = np.where(ins, np.maximum(best[todo], gm["altitude_m"]), best[todo])
            lo = np.where(ins, mid, lo)
            hi = np.where(ins, hi, mid)
        # at the edge the tangent altitude equals the end's altitude: take it at ``hi``
        gh = tangent_altitude(tx, rx, et_link[todo] + sign[todo] * hi)
        best[todo] = np.maximum(best[todo], gh["altitude_m"])
    return best / 1e3


def search_chunk(tx, rx, kernels, span_et, chunk_et, reference_altitude_km, step_s,
                 last=False) -> xr.Dataset:
    """Engine task: the events of one chunk of the span (module docstring, step 1)."""
    from retrieval import spice
    from retrieval.occultation import find_events
    from synth.orbits import resolve_body

    cpu0 = time.process_time()
    spice.ensure_kernels()
    if kernels:
        spice.furnish(kernels)
    tx_id = resolve_body(tx, *span_et)  # the SPK of the whole span: written once, cached
    rx_id = resolve_body(rx, *span_et)
    c0, c1 = chunk_et
    w0, w1 = max(c0 - CHUNK_PAD_S, span_et[0] - CHUNK_PAD_S), c1 + CHUNK_PAD_S
    ds = find_events(tx_id, rx_id, w0, w1, reference_altitude_km * 1e3, step_s)
    et = ds.et_link.values
    keep = (et >= c0) & ((et <= c1) if last else (et < c1))
    ds = ds.isel(event=np.nonzero(keep)[0])
    ds["top_altitude_km"] = ("event", top_altitude_km(tx_id, rx_id, ds.et_link.values,
                                                      ds.kind.values),
                             {"units": "km", "long_name": "highest tangent altitude of the "
                              "straight ray before ingress / after egress"})
    ds.attrs["search_cpu_s"] = time.process_time() - cpu0
    return ds


def search_link(tx, rx, start_utc, stop_utc, *, kernels=(), reference_altitude_km=200.0,
                step_s=120.0, chunk_days=30.0, engine: Engine | None = None,
                progress=None, label="search") -> xr.Dataset:
    """All events of ``tx -> rx`` over a span, searched in chunks on an engine.

    Returns the :func:`retrieval.occultation.find_events` Dataset over the whole span (the
    chunks are joined) with ``top_altitude_km`` added.
    """
    from retrieval import spice
    from synth.orbits import resolve_body

    spice.ensure_kernels()
    if kernels:
        spice.furnish(kernels)
    et0, et1 = spice.utc_to_et(start_utc), spice.utc_to_et(stop_utc)
    if not et1 > et0:
        raise RoharnessError(f"the campaign span is empty: stop {stop_utc} is not after "
                             f"start {start_utc}")
    spice.require_coverage(et0 - CHUNK_PAD_S, et1 + CHUNK_PAD_S)
    ids = resolve_body(tx, et0, et1), resolve_body(rx, et0, et1)  # errors here, SPK cached
    if ids[0] == ids[1]:
        raise RoharnessError(f"transmitter and receiver are the same body ({tx})")
    n = max(1, int(math.ceil((et1 - et0) / (chunk_days * 86400.0))))
    edges = np.linspace(et0, et1, n + 1)
    tasks = {f"{label}-{i:04d}": (tx, rx, list(kernels), (et0, et1), (edges[i], edges[i + 1]),
                                  float(reference_altitude_km), float(step_s), i == n - 1)
             for i in range(n)}
    own = engine is None
    eng = Engine(workers=0) if own else engine
    if own:
        eng.__enter__()
    try:
        parts = list(eng.map(search_chunk, tasks, label=label, progress=progress).values())
    finally:
        if own:
            eng.__exit__(None, None, None)
    cpu = float(sum(p.attrs.get("search_cpu_s", 0.0) for p in parts))
    parts = [p for p in parts if p.sizes["event"]] or parts[:1]
    ds = xr.concat(parts, dim="event", data_vars="all", coords="minimal",
                   combine_attrs="override") if len(parts) > 1 else parts[0]
    ds = ds.assign_coords(event=np.arange(ds.sizes["event"]))
    ds.attrs.update(start_utc=start_utc, stop_utc=stop_utc, tx=str(tx), rx=str(rx),
                    search_cpu_s=cpu)
    return ds
