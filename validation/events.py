"""Occultation search for a link between preset orbits, Earth, or kernel bodies."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path
from retrieval.occultation import find_events
from synth.orbits import resolve_body


def search(tx, rx, start_utc, stop_utc, kernels=(), reference_altitude_km=200.0,
           step_s=60.0, progress=None) -> xr.Dataset:
    """Find the occultation events of ``tx -> rx`` between two UTC times.

    ``tx``/``rx`` are preset orbit names (``mex``, ``tgo``, ``maven``), Earth ends
    (``earth``, ``dss-14``, ``dss-43``, ``dss-63``) or NAIF names/IDs from ``kernels``.
    """
    if kernels:
        spice.furnish(kernels)
    et0 = spice.utc_to_et(start_utc)
    et1 = spice.utc_to_et(stop_utc)
    if et1 <= et0:
        raise RoharnessError(f"the search window is empty: stop {stop_utc} is not after "
                             f"start {start_utc}")
    spice.require_coverage(et0, et1)
    tx_id = resolve_body(tx, et0, et1)
    rx_id = resolve_body(rx, et0, et1)
    if tx_id == rx_id:
        raise RoharnessError(f"transmitter and receiver are the same body ({tx})")
    spice.require_coverage(et0, et1, bodies=(tx_id, rx_id))
    ds = find_events(tx_id, rx_id, et0, et1, reference_altitude_km * 1e3, step_s, progress)
    ds.attrs.update(start_utc=start_utc, stop_utc=stop_utc, tx=str(tx), rx=str(rx))
    return ds


def write_events(ds: xr.Dataset, path) -> Path:
    """Write events atomically: netCDF for ``.nc``, CSV for ``.csv``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".csv"):
        raise RoharnessError(f"output file '{path}' must end in .nc (netCDF) or .csv")
    with atomic_path(path) as tmp:
        if suffix == ".nc":
            ds.to_netcdf(tmp)
        else:
            ds.to_dataframe().to_csv(tmp, index=False, float_format="%.6f")
    return path
