"""Reader for MAVEN ROSE level-3 electron density profiles (PDS4 ``mvn_rse_l3_edp_*.tab``).

The table is read through its PDS4 label with NASA's ``pds4_tools`` [3]_: field positions,
types and units come from the label, never from a copy in this module. The product (label
of [1]_) is fixed-width ASCII with 490-byte records ending in CR LF: a one-record header
table (observing conditions where the downlink ray's closest approach is 3550 km from Mars'
centre), then the profile table (25 fields), one row per level, ascending in radius.

Record count rule (the label is the reference):

* By default the profile table must hold exactly the label's ``records``. A file cut short
  at a record boundary (a partial download, a full disk) is otherwise well formed and would
  read "fine"; against the label it is caught, with one sentence naming the file, the
  label's count and the rows found.
* Copies that keep every K-th level of the archived table exist (the shared test file keeps
  every fourth level of 993, i.e. 249 rows, and its label is the untouched archive label).
  They are accepted only when the caller says so, ``thinned_every=K``: the table must then
  hold exactly :math:`\\lceil N_{label} / K \\rceil` rows (levels 1, 1+K, 1+2K ... of the
  archive), and the Dataset records ``thinned_every``, ``label_records`` and
  ``table_records`` in its attrs. Nothing in a thinned table proves it was thinned rather
  than cut, so the reader does not guess.
* The label's MD5 checksum is compared with the file's and reported in
  ``attrs['label_md5_match']`` (1/0); a thinned copy cannot match it.

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
.. [3] PDS Small Bodies Node, ``pds4_tools``: Python package to read PDS4 data,
   https://sbnwiki.astro.umd.edu/wiki/Python_PDS4_Tools (PyPI ``pds4-tools``).
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from retrieval import constants as K
from retrieval.errors import RoharnessError

#: Downlink frequency of the MAVEN X-band ROSE products [Hz] (README of the shared copy:
#: NELEC / REFRACTIVITYDOWN is constant to 1.6e-6 with this frequency and K = 40.308).
ROSE_DOWNLINK_HZ = 8.445282e9

#: Fields the reader uses; a label without them does not describe a ROSE level-3 EDP.
HEADER_REQUIRED = ("UTCTIME3550", "NXFLAG")
PROFILE_REQUIRED = ("RADIUS", "ALTITUDEMOLA", "NELEC", "SNELEC", "BENDINGANGLEDOWN",
                    "IMPACTPARAMDOWN", "REFRACTIVITYDOWN", "ERTDATETIME", "OCCTIME",
                    "OCCAREOCENTRICLAT", "OCCAREOCENTRICLON", "OCCSZA", "OCCLTST", "OCCLS",
                    "OCCFRESID", "OCCFRESIDADJ", "IMPACTPARAMAVERAGE", "OCCMSOX", "OCCMSOY",
                    "OCCMSOZ", "OCCMSOLAT", "OCCMSOLON")

#: Label units that are not udunits/CF spellings -> CF spelling.
_CF_UNITS = {"1/m**3": "m-3", "hertz": "Hz", "radian": "rad"}


def _label_path(path: Path, label) -> Path:
    if label is not None:
        return Path(label)
    return path.with_suffix(".xml")


def _fields(table):
    """(name, data_type, unit or None) of each field, from the table's label."""
    return [(f.findtext("name").strip(), f.findtext("data_type").strip(),
             (f.findtext("unit") or "").strip() or None)
            for f in table.label.findall(".//Field_Character")]


def _read_label(path: Path, label_path: Path):
    """The two table structures of the label (lazy: no data read yet)."""
    import pds4_tools  # noqa: PLC0415 (imported on use: ~0.3 s, only readers pay it)

    if not label_path.is_file():
        raise RoharnessError(f"'{path}' has no PDS4 label: expected '{label_path}' beside it "
                             "(a ROSE file is read through its label)")
    hook = sys.excepthook  # pds4_tools.read replaces the interpreter's excepthook
    try:
        structures = pds4_tools.read(str(label_path), lazy_load=True, quiet=True,
                                     decode_strings=True)
    except Exception as exc:  # noqa: BLE001 (malformed XML, not a PDS4 product ...)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RoharnessError(f"'{label_path}' is not a readable PDS4 label ({why})") from None
    finally:
        sys.excepthook = hook
    file_name = structures.label.findtext(".//File/file_name")
    if file_name is None or file_name.strip() != path.name:
        raise RoharnessError(f"the PDS4 label '{label_path}' describes file '{file_name}', "
                             f"not '{path.name}'")
    tables = [s for s in structures if s.type == "Table_Character"]
    ok = (len(tables) == 2 and tables[0].meta_data["records"] == 1
          and all(tables[0].meta_data.record["record_length"] ==
                  t.meta_data.record["record_length"] for t in tables)
          and set(HEADER_REQUIRED) <= {f[0] for f in _fields(tables[0])}
          and set(PROFILE_REQUIRED) <= {f[0] for f in _fields(tables[1])})
    if not ok:
        raise RoharnessError(f"'{label_path}' does not describe a MAVEN ROSE level-3 EDP "
                             "(a one-record header table and a profile table with RADIUS, "
                             "NELEC, BENDINGANGLEDOWN ...)")
    return structures, tables[0], tables[1]


def _check_records(path, label_path, data, header, profile, thinned_every):
    """Rows in the file against the label's count; return (rows, label_records)."""
    reclen = int(profile.meta_data.record["record_length"])
    offset = int(profile.meta_data["offset"])
    n_label = int(profile.meta_data["records"])
    if len(data) == 0 or len(data) % reclen or len(data) < offset:
        raise RoharnessError(
            f"'{path}' is not a MAVEN ROSE level-3 EDP table: its size ({len(data)} bytes) is "
            f"not a multiple of the {reclen}-byte record length of its label")
    crlf = np.frombuffer(data, np.uint8).reshape(-1, reclen)[:, -2:]
    bad = np.flatnonzero((crlf[:, 0] != 13) | (crlf[:, 1] != 10))
    if bad.size:
        raise RoharnessError(
            f"'{path}' is not a MAVEN ROSE level-3 EDP table: record {bad[0] + 1} does not end "
            f"in CR LF at byte {reclen}")
    rows = (len(data) - offset) // reclen
    if thinned_every is None:
        if rows != n_label:
            raise RoharnessError(
                f"'{path}' holds {rows} profile records but its PDS4 label '{label_path.name}' "
                f"describes {n_label}: the file is truncated (or a thinned copy: say so with "
                "thinned_every=K)")
    else:
        k = int(thinned_every)
        if k < 1 or k != thinned_every:
            raise ValueError(f"thinned_every must be a positive integer, got {thinned_every!r}")
        expected = math.ceil(n_label / k)
        if rows != expected:
            raise RoharnessError(
                f"'{path}' holds {rows} profile records but its PDS4 label '{label_path.name}' "
                f"describes {n_label}, so a copy keeping one level in {k} must hold "
                f"{expected}: the file is truncated")
    if rows < 4:
        raise RoharnessError(f"'{path}' holds {rows} profile records; a ROSE profile "
                             "needs at least 3 (plus the zero top row)")
    return rows, n_label


def _table_data(path, table, rows):
    """Read one table with pds4_tools, its label's record count set to ``rows``."""
    table.label.getroot().find("records").text = str(rows)
    table.meta_data["records"] = rows
    try:
        return table.data
    except ValueError as exc:  # "Unable to convert field 'RADIUS' to data_type ..."
        raise RoharnessError(f"'{path}': {exc}, as its PDS4 label requires") from None


def _header_values(header_t, header_rec):
    """The header record's fields as Python str, int or float, by field name."""
    header = {}
    for name, _, _ in _fields(header_t):
        v = header_rec[name][0]
        header[name] = (str(v).strip() if isinstance(v, str)
                        else int(v) if np.issubdtype(type(v), np.integer) else float(v))
    return header


def _profile_columns(profile_t, table):
    """The profile table's units and field kinds by name, and its columns as arrays
    (dates as datetime64[ns], integers as int64)."""
    units = {name: unit for name, _, unit in _fields(profile_t)}
    kinds = {name: kind for name, kind, _ in _fields(profile_t)}
    cols = {}
    for name in units:
        if kinds[name] == "ASCII_Date_Time_YMD":
            cols[name] = np.array([s.strip().rstrip("Z") for s in table[name]],
                                  dtype="datetime64[ns]")
        elif kinds[name] == "ASCII_Integer":
            cols[name] = np.asarray(table[name], dtype=np.int64)
        else:
            cols[name] = np.asarray(table[name])
    return units, kinds, cols


def _project_variables(cols, occ, epoch):
    """The project-named SI variables of :func:`read_rose_edp` from the archived columns
    (``occ`` the OCCTIME column, ``epoch`` its earliest value)."""
    km = 1e3

    def var(values, units, long_name, dims="altitude"):
        attrs = {"long_name": long_name}
        if units is not None:
            attrs["units"] = units
        return (dims, values, attrs)

    data_vars = {
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
    return data_vars


def read_rose_edp(path: str | os.PathLike, *, thinned_every: int | None = None,
                  label: str | os.PathLike | None = None) -> xr.Dataset:
    """Read a MAVEN ROSE level-3 EDP table through its PDS4 label into a profile Dataset.

    Parameters
    ----------
    path : str or Path
        The ``.tab`` file.
    thinned_every : int, optional
        The file keeps every K-th level of the archived table (levels 1, 1+K, ...); its
        row count is then checked against :math:`\\lceil N_{label} / K \\rceil`. Default:
        the file must hold all the label's records.
    label : str or Path, optional
        The PDS4 label; default the ``.xml`` beside ``path`` with the same stem.

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
        every archived column is also kept under its archive name (label units).
        Attrs: the header fields (``UTCTIME3550`` ...), ``occultation``
        (ingress/egress), ``frequency_hz`` (8.445282 GHz X-band downlink), ``source``,
        ``label_records``, ``table_records``, ``thinned_every``, ``label_md5_match``.

    Raises
    ------
    RoharnessError
        A file that is missing, has no (or another product's) label, is not 490-byte CRLF
        records, holds fewer or more records than its label says, or has unparsable fields.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        why = getattr(exc, "strerror", None) or exc
        raise RoharnessError(f"cannot read ROSE file {str(path)!r}: {why}") from None
    label_path = _label_path(path, label)
    _, header_t, profile_t = _read_label(path, label_path)
    rows, n_label = _check_records(path, label_path, data, header_t, profile_t, thinned_every)
    md5_label = (header_t.full_label.findtext(".//File/md5_checksum") or "").strip().lower()
    header_rec = _table_data(path, header_t, 1)
    table = _table_data(path, profile_t, rows)
    header = _header_values(header_t, header_rec)
    units, kinds, cols = _profile_columns(profile_t, table)
    radius_km = cols["RADIUS"]
    if not np.all(np.diff(radius_km) > 0):
        raise RoharnessError(f"'{path}': the profile table's RADIUS is not strictly ascending, "
                             "unlike a MAVEN ROSE level-3 EDP")
    zero_top = (cols["BENDINGANGLEDOWN"][-1] == 0 and cols["REFRACTIVITYDOWN"][-1] == 0
                and cols["NELEC"][-1] == 0)
    keep = slice(0, rows - 1) if zero_top else slice(0, rows)
    cols = {k: v[keep] for k, v in cols.items()}
    if header["NXFLAG"] not in (0, 1):
        raise RoharnessError(f"'{path}': NXFLAG is {header['NXFLAG']}, expected 0 (ingress) or "
                             "1 (egress)")
    occ = cols["OCCTIME"]
    epoch = occ.min()
    alt = cols["RADIUS"] * 1e3 - K.MARS_MEAN_RADIUS_M

    data_vars = _project_variables(cols, occ, epoch)
    for name, unit in units.items():
        attrs = {"long_name": f"archived {name}"}
        if kinds[name] != "ASCII_Date_Time_YMD":
            attrs["units"] = _CF_UNITS.get(unit, unit) if unit else "1"
        data_vars[name] = ("altitude", cols[name], attrs)
    attrs = dict(header)
    attrs.update({
        "occultation": "egress" if header["NXFLAG"] == 1 else "ingress",
        "link": "earth_downlink",
        "frequency_hz": ROSE_DOWNLINK_HZ,
        "reference_radius_m": K.MARS_MEAN_RADIUS_M,
        "epoch_utc": str(np.datetime_as_string(epoch, unit="ms")),
        "source": f"MAVEN ROSE level-3 EDP {path.name}",
        "label": label_path.name,
        "label_records": n_label,
        "table_records": rows,
        "thinned_every": int(thinned_every or 1),
        "label_md5_match": int(hashlib.md5(data).hexdigest() == md5_label),
        "top_row_dropped": int(zero_top),
    })
    return xr.Dataset(data_vars, coords={"altitude": ("altitude", alt, {
        "units": "m", "long_name": "altitude above the 3389.5 km reference sphere"}),
        "xyz": ("xyz", np.array(["x", "y", "z"]), {"long_name": "MSO axis"})}, attrs=attrs)
