"""Synthetic spacecraft orbits around Mars, written as real SPK kernels.

Mars-centred Keplerian elements, two-body motion with optional J2 secular drift of the
node, the argument of periapsis and the mean anomaly (first-order secular theory, e.g.
Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed., sec. 9.6):

.. math::

   \\dot\\Omega = -\\tfrac32 n J_2 (R/p)^2 \\cos i, \\qquad
   \\dot\\omega = \\tfrac34 n J_2 (R/p)^2 (5\\cos^2 i - 1), \\qquad
   \\dot M = n\\,[1 + \\tfrac34 J_2 (R/p)^2 \\sqrt{1-e^2}(3\\cos^2 i - 1)]

with :math:`n = \\sqrt{GM/a^3}`, :math:`p = a(1-e^2)`; GM, J2 and R from
:mod:`retrieval.constants` (Konopliv et al. 2016). Elements are referred to SPICE's
built-in ``MARSIAU`` frame (Mars mean equator and IAU vector of J2000) and states are
written in J2000 to an SPK of type 13 (Hermite interpolation, unequal time steps) with
spiceypy's writer, under a NAIF ID, so downstream code reads them with ``spkezr`` exactly as
it reads a mission kernel.

Presets (assumptions modelled on the real orbits; SCIENCE.md section 1):

=========  ======================  ======  ===============================================
name       altitude (peri x apo)    incl.  notes
=========  ======================  ======  ===============================================
``mex``    300 x 10,000 km          86.6   Mars Express-like, period ~6.7 h
``tgo``    400 x 400 km             74.0   ExoMars TGO-like, period ~2.0 h
``maven``  150 x 6,200 km           75.0   MAVEN-like, period ~4.5 h
=========  ======================  ======  ===============================================
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import spiceypy as sp

from retrieval import constants as K
from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.fileio import atomic_path

_DAY = 86400.0


@dataclass(frozen=True)
class OrbitElements:
    """Mars-centred osculating elements at ``epoch_utc`` (angles in degrees, SI lengths)."""

    a_m: float
    e: float
    inclination_deg: float
    raan_deg: float = 0.0
    argp_deg: float = 0.0
    mean_anomaly_deg: float = 0.0
    epoch_utc: str = "2023-01-01T00:00:00"
    j2: bool = True

    def __post_init__(self):
        if not (self.a_m > K.MARS_MEAN_RADIUS_M):
            raise RoharnessError(f"orbit semi-major axis {self.a_m} m is not above Mars' radius")
        if not (0.0 <= self.e < 1.0):
            raise RoharnessError(f"orbit eccentricity {self.e} is outside [0, 1)")
        if not (0.0 <= self.inclination_deg <= 180.0):
            raise RoharnessError(f"orbit inclination {self.inclination_deg} deg is outside "
                                 "[0, 180] deg")
        periapsis_alt = self.a_m * (1.0 - self.e) - K.MARS_MEAN_RADIUS_M
        if periapsis_alt < 50e3:
            raise RoharnessError(f"orbit periapsis altitude {periapsis_alt / 1e3:.1f} km is "
                                 "below 50 km; the spacecraft would hit the atmosphere")

    @classmethod
    def from_altitudes(cls, periapsis_alt_m, apoapsis_alt_m, inclination_deg, **kw):
        """Elements from periapsis/apoapsis altitudes above the reference sphere [m]."""
        if apoapsis_alt_m < periapsis_alt_m:
            raise RoharnessError(f"apoapsis altitude {apoapsis_alt_m} m is below periapsis "
                                 f"altitude {periapsis_alt_m} m")
        rp = K.MARS_MEAN_RADIUS_M + periapsis_alt_m
        ra = K.MARS_MEAN_RADIUS_M + apoapsis_alt_m
        return cls(a_m=0.5 * (rp + ra), e=(ra - rp) / (ra + rp),
                   inclination_deg=inclination_deg, **kw)

    @property
    def period_s(self) -> float:
        """Keplerian period [s]."""
        return 2.0 * np.pi * np.sqrt(self.a_m**3 / K.MARS_GM_M3_S2)

    def key(self) -> str:
        """Stable text identifying the elements (for cache names)."""
        return repr(sorted(asdict(self).items()))


#: Preset orbits: name -> (elements, synthetic NAIF ID, NAIF name).
PRESETS = {
    "mex": (OrbitElements.from_altitudes(300e3, 10_000e3, 86.6, raan_deg=30.0, argp_deg=300.0,
                                         mean_anomaly_deg=0.0), -1041, "SYNTH_MEX"),
    "tgo": (OrbitElements.from_altitudes(400e3, 400e3, 74.0, raan_deg=120.0, argp_deg=0.0,
                                         mean_anomaly_deg=90.0), -1143, "SYNTH_TGO"),
    "maven": (OrbitElements.from_altitudes(150e3, 6200e3, 75.0, raan_deg=250.0, argp_deg=200.0,
                                           mean_anomaly_deg=180.0), -1202, "SYNTH_MAVEN"),
}


def secular_rates(el: OrbitElements):
    """J2 secular rates (dOmega/dt, domega/dt, dM/dt) [rad/s]."""
    n = np.sqrt(K.MARS_GM_M3_S2 / el.a_m**3)
    if not el.j2:
        return 0.0, 0.0, n
    p = el.a_m * (1.0 - el.e**2)
    f = K.MARS_J2 * (K.MARS_GRAVITY_REFERENCE_RADIUS_M / p) ** 2
    ci = np.cos(np.radians(el.inclination_deg))
    raan_dot = -1.5 * n * f * ci
    argp_dot = 0.75 * n * f * (5.0 * ci**2 - 1.0)
    m_dot = n * (1.0 + 0.75 * f * np.sqrt(1.0 - el.e**2) * (3.0 * ci**2 - 1.0))
    return raan_dot, argp_dot, m_dot


def _solve_kepler(mean_anomaly, e):
    """Eccentric anomaly from mean anomaly (Newton iterations to machine precision)."""
    m = np.mod(mean_anomaly, 2.0 * np.pi)
    ecc = m + e * np.sin(m) if e < 0.8 else np.full_like(m, np.pi)
    for _ in range(50):
        f = ecc - e * np.sin(ecc) - m
        step = f / (1.0 - e * np.cos(ecc))
        ecc = ecc - step
        if np.max(np.abs(step)) < 1e-15:
            break
    return ecc


def orbit_states(el: OrbitElements, et) -> np.ndarray:
    """Mars-centred J2000 states [m, m/s], shape (n, 6), of the orbit at ephemeris times."""
    spice.ensure_kernels()
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    epoch = spice.utc_to_et(el.epoch_utc)
    dt = ets - epoch
    raan_dot, argp_dot, m_dot = secular_rates(el)
    raan = np.radians(el.raan_deg) + raan_dot * dt
    argp = np.radians(el.argp_deg) + argp_dot * dt
    mean = np.radians(el.mean_anomaly_deg) + m_dot * dt
    e, a = el.e, el.a_m
    ecc = _solve_kepler(mean, e)
    cos_e, sin_e = np.cos(ecc), np.sin(ecc)
    b = a * np.sqrt(1.0 - e**2)
    # perifocal position and its time derivative; the velocity is the exact derivative of
    # the drifting-ellipse position (so the SPK's Hermite interpolation is consistent).
    edot = m_dot / (1.0 - e * cos_e)
    x, y = a * (cos_e - e), b * sin_e
    vx, vy = -a * sin_e * edot, b * cos_e * edot
    ci, si = np.cos(np.radians(el.inclination_deg)), np.sin(np.radians(el.inclination_deg))
    co, so = np.cos(raan), np.sin(raan)
    cw, sw = np.cos(argp), np.sin(argp)
    # rotation perifocal -> MARSIAU (R3(-raan) R1(-i) R3(-argp))
    p_vec = np.stack([co * cw - so * sw * ci, so * cw + co * sw * ci, sw * si], axis=-1)
    q_vec = np.stack([-co * sw - so * cw * ci, -so * sw + co * cw * ci, cw * si], axis=-1)
    pos = x[:, None] * p_vec + y[:, None] * q_vec
    vel = vx[:, None] * p_vec + vy[:, None] * q_vec
    vel += argp_dot * (x[:, None] * q_vec - y[:, None] * p_vec)  # dP/domega = Q, dQ = -P
    vel += raan_dot * np.stack([-pos[:, 1], pos[:, 0], np.zeros_like(x)], axis=-1)  # z x r
    rot = np.asarray(sp.pxform("MARSIAU", "J2000", float(epoch)))  # both inertial: constant
    return np.hstack([pos @ rot.T, vel @ rot.T])


def write_orbit_spk(el: OrbitElements, naif_id: int, start_et: float, stop_et: float, path,
                    step_s: float = 60.0, degree: int = 11):
    """Write the orbit to an SPK file (type 13, Hermite) covering [start_et, stop_et].

    States are sampled every ``step_s`` seconds; with the default 60 s and degree 11 the
    interpolation error is far below 1 m for the preset orbits (checked by a test).
    """
    spice.ensure_kernels()
    if not stop_et > start_et:
        raise RoharnessError("the orbit time window is empty: stop must be after start")
    nstep = int(np.ceil((stop_et - start_et) / step_s))
    epochs = start_et + step_s * np.arange(nstep + 1)
    epochs[-1] = max(epochs[-1], stop_et)
    st_km = orbit_states(el, epochs) * 1e-3
    max_per_segment = 200_000  # keep each segment modest in memory
    with atomic_path(path, suffix=".bsp") as tmp:
        handle = sp.spkopn(str(tmp), "roharness synthetic orbit", 4096)
        try:
            i0 = 0
            while i0 < len(epochs) - 1:
                i1 = min(i0 + max_per_segment, len(epochs) - 1)
                sl = slice(i0, i1 + 1)
                sp.spkw13(handle, int(naif_id), 499, "J2000", float(epochs[i0]),
                          float(epochs[i1]), f"roharness synthetic {naif_id}", degree,
                          i1 - i0 + 1, st_km[sl], epochs[sl])
                i0 = i1
        finally:
            sp.spkcls(handle)
    return path


_loaded_orbits: dict[tuple, str] = {}


def ensure_orbit(el: OrbitElements, naif_id: int, name: str | None, start_et: float,
                 stop_et: float, step_s: float = 60.0) -> int:
    """Write (once, into the cache) and load an SPK for the orbit covering the window.

    The window is widened to whole days plus one day of margin so that nearby requests
    reuse the same file. Returns the NAIF ID.
    """
    spice.ensure_kernels()
    t0 = np.floor(start_et / _DAY) * _DAY - _DAY
    t1 = np.ceil(stop_et / _DAY) * _DAY + _DAY
    key = (el.key(), int(naif_id), float(t0), float(t1), float(step_s))
    if key in _loaded_orbits:
        return int(naif_id)
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    path = spice.cache_dir() / f"orbit_{naif_id}_{digest}.bsp"
    if not path.exists():
        write_orbit_spk(el, naif_id, t0, t1, path, step_s=step_s)
    sp.furnsh(str(path))
    if name:
        sp.boddef(name, int(naif_id))
    _loaded_orbits[key] = str(path)
    return int(naif_id)


#: Far ends of conventional links: Earth's centre and DSN stations (NAIF IDs).
EARTH_ENDS = {"earth": 399, "dss-14": 399014, "dss-43": 399043, "dss-63": 399063}


def resolve_body(name, start_et: float, stop_et: float) -> int:
    """NAIF ID for a link end: a preset orbit (loaded for the window), Earth, or a NAIF body.

    Preset names (``mex``, ``tgo``, ``maven``) and Earth ends (``earth``, ``dss-14``,
    ``dss-43``, ``dss-63``) are matched case-insensitively first; anything else is looked
    up as a NAIF name or ID in the loaded kernels (e.g. a real mission SPK).
    """
    text = str(name).strip().lower()
    if text in PRESETS:
        el, code, naif_name = PRESETS[text]
        return ensure_orbit(el, code, naif_name, start_et, stop_et)
    if text in EARTH_ENDS:
        spice.ensure_kernels()
        return EARTH_ENDS[text]
    return spice.body_id(name)
