"""CF conventions shared by every Dataset the harness writes (CF-1.10).

What every stage output follows (checked by ``tests/test_validation/test_cf.py`` with the
IOOS compliance checker):

* every variable and coordinate has ``long_name`` and ``units`` (``"1"`` when
  dimensionless); string and flag variables carry no ``units`` (CF has none for them);
  flags carry ``flag_values`` (or ``flag_masks``) and ``flag_meanings``;
* lists are variables on a dimension (a layer table on ``layer``, source lists on
  ``source``), never JSON strings in attributes;
* coordinate variables carry no ``_FillValue`` (CF 2.5.1): :func:`coordinate_encoding`;
* the global attribute ``Conventions = "CF-1.10"``.

Altitudes are heights above the 3389.5 km reference sphere, i.e. above a reference
ellipsoid with equal axes: ``standard_name = "height_above_reference_ellipsoid"``
(CF's ``altitude`` is above the geoid, which for Mars would be the areoid).
"""

from __future__ import annotations

CONVENTIONS = "CF-1.10"

#: Attributes of an altitude coordinate above the reference sphere (add ``long_name``).
ALTITUDE = {"units": "m", "standard_name": "height_above_reference_ellipsoid",
            "positive": "up", "axis": "Z"}


def coordinate_encoding(ds) -> dict:
    """``to_netcdf(encoding=...)`` for ``ds``: no ``_FillValue`` on coordinate variables."""
    return {name: {"_FillValue": None} for name in ds.coords if name in ds.dims}


def mark_coordinates(ds):
    """Set :func:`coordinate_encoding` on ``ds`` itself (so a plain ``to_netcdf`` follows
    it) and return ``ds``."""
    for name in coordinate_encoding(ds):
        ds.variables[name].encoding["_FillValue"] = None
    return ds
