"""Reader for MAVEN ROSE level-3 electron density profiles (PDS4 ``mvn_rse_l3_edp_*.tab``).

Format (from the PDS4 label of the product [1]_): fixed-width ASCII, 490-byte records
terminated by CR LF. Record 1 is a one-record header table (17 fields: observing conditions
where the downlink ray's closest approach is 3550 km from Mars' centre); the following
records form the profile table (25 fields), one row per level, ascending in radius. Field
byte positions below are the label's ``field_location`` (1-based) and ``field_length``.

Conventions of the archive honoured here:

* ``BENDINGANGLEDOWN`` is positive for a ray bent AWAY from the planet; the project's
  convention (positive toward the planet, as in the inverse Abel formula) is
  :math:`\\alpha = -` ``BENDINGANGLEDOWN`` (checked: it reproduces ``REFRACTIVITYDOWN``).
* The top row has zero bending angle, refractivity and density (the archive's inversion
  starts there); it carries no measurement and is dropped.
* Altitudes: ``ALTITUDEMOLA`` is above the MOLA areoid; ``altitude`` in the returned
  Dataset is ``RADIUS`` minus the 3389.5 km reference sphere
  (:data:`retrieval.constants.MARS_MEAN_RADIUS_M`), the project's convention.

References
----------
.. [1] Withers, P. (2016-), MAVEN Radio Occultation Science Experiment (ROSE) Level 3
   Electron Density Profiles, NASA Planetary Data System, urn:nasa:pds:maven.rose.
   Product mvn_rse_l3_edp_20160823T192357_v01_r01.
.. [2] Withers, P. et al. (2020), Observations of the Mars ionosphere by MAVEN ROSE,
   J. Geophys. Res. Space Physics 125, e2020JA028042, doi:10.1029/2020JA028042.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval.errors import RoharnessError

RECORD_BYTES = 490

#: Header table fields: name -> (field_location [1-based byte], field_length, kind, unit).
HEADER_FIELDS = {
    "UTCTIME3550": (2, 23, "time", None),
    "AREOCENTRICLAT3550": (25, 20, "real", "degree"),
    "AREOCENTRICLON3550": (45, 20, "real", "degree"),
    "SZA3550": (65, 20, "real", "degree"),
    "LTST3550": (85, 20, "real", "hour"),
    "LS3550": (105, 20, "real", "degree"),
    "NXFLAG": (140, 1, "int", None),
    "BSPFILENAME": (151, 30, "str", None),
    "UPLINKBAND": (190, 1, "str", None),
    "UPLINKANTENNA": (199, 2, "int", None),
    "DOWNLINKBAND": (210, 1, "str", None),
    "DOWNLINKANTENNA": (219, 2, "int", None),
    "MSOX3550": (221, 20, "real", "km"),
    "MSOY3550": (241, 20, "real", "km"),
    "MSOZ3550": (261, 20, "real", "km"),
    "MSOLAT3550": (281, 20, "real", "degree"),
    "MSOLON3550": (301, 20, "real", "degree"),
}

#: Profile table fields: name -> (field_location [1-based byte], field_length, kind, unit).
PROFILE_FIELDS = {
    "RADIUS": (1, 20, "real", "km"),
    "ALTITUDEMOLA": (21, 20, "real", "km"),
    "NELEC": (41, 20, "real", "1/m**3"),
    "SNELEC": (61, 20, "real", "1/m**3"),
    "BENDINGANGLEDOWN": (81, 20, "real", "radian"),
    "IMPACTPARAMDOWN": (101, 20, "real", "km"),
    "REFRACTIVITYDOWN": (121, 20, "real", None),
    "ERTYEAR": (147, 4, "int", "year"),
    "ERTDOY": (158, 3, "int", "day"),
    "ERTSEC": (169, 12, "real", "second"),
    "ERTDATETIME": (182, 23, "time", None),
    "OCCTIME": (206, 23, "time", None),
    "OCCAREOCENTRICLAT": (229, 20, "real", "degree"),
    "OCCAREOCENTRICLON": (249, 20, "real", "degree"),
    "OCCSZA": (269, 20, "real", "degree"),
    "OCCLTST": (289, 20, "real", "hour"),
    "OCCLS": (309, 20, "real", "degree"),
    "OCCFRESID": (329, 20, "real", "hertz"),
    "OCCFRESIDADJ": (349, 20, "real", "hertz"),
    "IMPACTPARAMAVERAGE": (369, 20, "real", "km"),
    "OCCMSOX": (389, 20, "real", "km"),
    "OCCMSOY": (409, 20, "real", "km"),
    "OCCMSOZ": (429, 20, "real", "km"),
    "OCCMSOLAT": (449, 20, "real", "degree"),
    "OCCMSOLON": (469, 20, "real", "degree"),
}

#: Downlink frequency of the MAVEN X-band ROSE products [Hz] (README of the shared copy:
#: NELEC / REFRACTIVITYDOWN is constant to 1.6e-6 with this frequency and K = 40.308).
ROSE_DOWNLINK_HZ = 8.445282e9


def _field(record: bytes, loc, length, kind, _unit, name, where):
    text = record[loc - 1:loc - 1 + length].decode("ascii", "replace").strip()
    try:
        if kind == "real":
            return float(text)
        if kind == "int":
            return int(text)
        if kind == "time":
            return np.datetime64(text.rstrip("Z"), "ns")
        return text
    except ValueError:
        raise RoharnessError(f"{where}: field {name} holds {text!r}, which is not a valid "
                             f"{'number' if kind in ('real', 'int') else 'ISO time'}") from None


def _records(path: Path):
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RoharnessError(f"cannot read ROSE file '{path}': {exc.strerror or exc}") from None
    if len(data) == 0 or len(data) % RECORD_BYTES:
        raise RoharnessError(
            f"'{path}' is not a MAVEN ROSE level-3 EDP table: its size ({len(data)} bytes) is "
            f"not a multiple of the {RECORD_BYTES}-byte record length")
    recs = [data[i:i + RECORD_BYTES] for i in range(0, len(data), RECORD_BYTES)]
    for i, r in enumerate(recs):
        if r[-2:] != b"\r\n":
            raise RoharnessError(
                f"'{path}' is not a MAVEN ROSE level-3 EDP table: record {i + 1} does not end "
                "in CR LF at byte 490")
    if len(recs) < 4:
        raise RoharnessError(f"'{path}' holds {len(recs) - 1} profile records; a ROSE profile "
                             "needs at least 3 (plus the zero top row)")
    return recs


def read_rose_edp(path) -> xr.Dataset:
    """Read a MAVEN ROSE level-3 EDP table into a profile Dataset.

    Parameters
    ----------
    path : str or Path
        The ``.tab`` file.

    Returns
    -------
    xarray.Dataset
        Dim ``altitude`` (ascending; the zero top row dropped). Project-named variables in
        SI: ``radius`` [m], ``altitude`` [m] (above the 3389.5 km sphere),
        ``altitude_mola`` [m], ``impact_parameter`` [m], ``bending_angle`` [rad]
        (:math:`-` BENDINGANGLEDOWN, positive toward the planet), ``refractivity`` [1],
        ``electron_density`` and ``electron_density_sigma`` [m^-3], ``occ_time``
        (datetime64, UTC at Mars), ``earth_receive_time`` (datetime64), ``time`` [s since
        ``attrs['epoch_utc']``, the earliest OCCTIME], ``latitude``, ``longitude``,
        ``sza`` [deg], ``ltst`` [h], ``ls`` [deg], ``frequency_residual`` and
        ``frequency_residual_adjusted`` [Hz], ``impact_parameter_average`` [m],
        ``mso_position`` (altitude, xyz) [m], ``mso_latitude``, ``mso_longitude`` [deg];
        every archived column is also kept under its archive name (archive units).
        Attrs: the header fields (``UTCTIME3550`` ...), ``occultation``
        (ingress/egress), ``frequency_hz`` (8.445282 GHz X-band downlink), ``source``.

    Raises
    ------
    RoharnessError
        A file that is missing, not 490-byte CRLF records, or has unparsable fields.
    """
    path = Path(path)
    recs = _records(path)
    header = {name: _field(recs[0], *spec, name, f"'{path}' header record")
              for name, spec in HEADER_FIELDS.items()}
    rows = recs[1:]
    cols = {name: [] for name in PROFILE_FIELDS}
    for i, r in enumerate(rows):
        for name, spec in PROFILE_FIELDS.items():
            cols[name].append(_field(r, *spec, name, f"'{path}' profile record {i + 1}"))
    cols = {k: np.array(v) for k, v in cols.items()}
    radius_km = cols["RADIUS"]
    if not np.all(np.diff(radius_km) > 0):
        raise RoharnessError(f"'{path}': the profile table's RADIUS is not strictly ascending, "
                             "unlike a MAVEN ROSE level-3 EDP")
    zero_top = (cols["BENDINGANGLEDOWN"][-1] == 0 and cols["REFRACTIVITYDOWN"][-1] == 0
                and cols["NELEC"][-1] == 0)
    keep = slice(0, len(rows) - 1) if zero_top else slice(0, len(rows))
    cols = {k: v[keep] for k, v in cols.items()}
    if header["NXFLAG"] not in (0, 1):
        raise RoharnessError(f"'{path}': NXFLAG is {header['NXFLAG']}, expected 0 (ingress) or "
                             "1 (egress)")
    occ = cols["OCCTIME"]
    epoch = occ.min()
    km = 1e3
    alt = cols["RADIUS"] * km - K.MARS_MEAN_RADIUS_M

    def var(values, units, long_name, dims="altitude"):
        attrs = {"long_name": long_name}
        if units is not None:
            attrs["units"] = units
        return (dims, values, attrs)

    data = {
        "radius": var(cols["RADIUS"] * km, "m", "radius of the level"),
        "altitude_mola": var(cols["ALTITUDEMOLA"] * km, "m", "altitude above the MOLA areoid"),
        "impact_parameter": var(cols["IMPACTPARAMDOWN"] * km, "m",
                                "impact parameter of the downlink ray"),
        "bending_angle": var(-cols["BENDINGANGLEDOWN"], "rad",
                             "bending angle, positive toward the planet (-BENDINGANGLEDOWN)"),
        "refractivity": var(cols["REFRACTIVITYDOWN"], "1", "refractivity n - 1 at the "
                                                           "downlink frequency"),
        "electron_density": var(cols["NELEC"], "m-3", "electron density"),
        "electron_density_sigma": var(cols["SNELEC"], "m-3", "one-sigma uncertainty of the "
                                                             "electron density"),
        "occ_time": var(occ, None, "UTC at Mars of the measurement"),
        "earth_receive_time": var(cols["ERTDATETIME"], None, "Earth receive time (UTC)"),
        "time": var((occ - epoch) / np.timedelta64(1, "s"), "s",
                    "time at Mars since epoch_utc"),
        "latitude": var(cols["OCCAREOCENTRICLAT"], "degree_north",
                        "areocentric latitude of the ray's closest approach"),
        "longitude": var(cols["OCCAREOCENTRICLON"], "degree_east",
                         "areocentric east longitude of the ray's closest approach"),
        "sza": var(cols["OCCSZA"], "degree", "solar zenith angle at closest approach"),
        "ltst": var(cols["OCCLTST"], "hour", "local true solar time at closest approach"),
        "ls": var(cols["OCCLS"], "degree", "areocentric solar longitude"),
        "frequency_residual": var(cols["OCCFRESID"], "Hz", "archived frequency residual"),
        "frequency_residual_adjusted": var(cols["OCCFRESIDADJ"], "Hz", "frequency residual "
                                           "after baseline correction"),
        "impact_parameter_average": var(cols["IMPACTPARAMAVERAGE"] * km, "m",
                                        "average of up and down impact parameters"),
        "mso_position": var(np.stack([cols["OCCMSOX"], cols["OCCMSOY"], cols["OCCMSOZ"]], 1) * km,
                            "m", "MSO position of the ray's closest approach",
                            ("altitude", "xyz")),
        "mso_latitude": var(cols["OCCMSOLAT"], "degree", "MSO latitude of closest approach"),
        "mso_longitude": var(cols["OCCMSOLON"], "degree", "MSO east longitude of closest "
                                                          "approach"),
    }
    for name, (_, _, kind, unit) in PROFILE_FIELDS.items():
        attrs = {"long_name": f"archived {name}"}
        if unit is not None and kind != "time":
            attrs["units"] = unit
        data[name] = ("altitude", cols[name], attrs)
    attrs = {k: (np.datetime_as_string(v, unit="ms") if isinstance(v, np.datetime64) else v)
             for k, v in header.items()}
    attrs.update({
        "occultation": "egress" if header["NXFLAG"] == 1 else "ingress",
        "link": "earth_downlink",
        "frequency_hz": ROSE_DOWNLINK_HZ,
        "reference_radius_m": K.MARS_MEAN_RADIUS_M,
        "epoch_utc": np.datetime_as_string(epoch, unit="ms"),
        "source": f"MAVEN ROSE level-3 EDP {path.name}",
        "top_row_dropped": int(zero_top),
    })
    return xr.Dataset(data, coords={"altitude": ("altitude", alt, {
        "units": "m", "long_name": "altitude above the 3389.5 km reference sphere"}),
        "xyz": ("xyz", ["x", "y", "z"])}, attrs=attrs)
