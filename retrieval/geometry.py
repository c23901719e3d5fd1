"""Solar and link geometry at Mars from SPICE (vectorised over points and times).

* :func:`solar_geometry`: solar zenith angle, local true solar time, Ls and the subsolar
  point at (UTC, areocentric latitude, east longitude, altitude).
* :func:`link_states`: transmitter and receiver states of a radio link with light time.
* :func:`tangent_point`: closest approach of the straight ray to Mars' centre.

Conventions. Latitudes are areocentric (planetocentric), longitudes east, in the body-fixed
``IAU_MARS`` frame of the project PCK (IAU 2009 rotation model). The Sun direction is
light-time corrected (no stellar aberration), which is what the MAVEN ROSE archive used
(see ../shared/data/real/maven_rose/README.md). Altitudes are above the reference sphere
of radius :data:`retrieval.constants.MARS_MEAN_RADIUS_M`. Local true solar time (LTST) is
12 h + (east longitude - subsolar east longitude) / 15 deg per hour, in Mars "hours" of
1/24 true solar day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import spiceypy as sp

from retrieval import constants as K
from retrieval import spice
from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: Distance [m] beyond which a link end counts as "far" (Earth): the event time then refers
#: to the Mars-side end.
FAR_END_M = 1.0e9


def _check_latlon(lat_deg, lon_deg):
    lat = np.asarray(lat_deg, dtype=float)
    lon = np.asarray(lon_deg, dtype=float)
    if not np.all(np.isfinite(lat)) or np.any(np.abs(lat) > 90.0):
        bad = lat[~(np.abs(lat) <= 90.0)].ravel()[0]
        raise RoharnessError(f"latitude {bad} deg is outside [-90, 90] deg")
    if not np.all(np.isfinite(lon)):
        raise RoharnessError("longitude must be a finite number of degrees east")
    return lat, lon


def sun_vector_iau_mars(et) -> np.ndarray:
    """Mars-centre-to-Sun vectors [m] in IAU_MARS (light time corrected), shape (n, 3)."""
    spice.ensure_kernels()
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    pos, _ = sp.spkpos("SUN", ets, "IAU_MARS", "LT", "MARS")
    return np.asarray(pos).reshape(-1, 3) * 1e3


def solar_longitude_deg(et) -> np.ndarray:
    """Areocentric solar longitude Ls [deg] at ephemeris time(s) (light time corrected)."""
    spice.ensure_kernels()
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    return np.degrees([sp.lspcn("MARS", float(e), "LT") for e in ets])


def solar_geometry(et: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike,
                   altitude_m: ArrayLike = 0.0) -> dict:
    """Solar zenith angle, LTST, Ls and subsolar point at points near Mars.

    Parameters
    ----------
    et : float or array
        Ephemeris time(s) [s past J2000 TDB] (see :func:`retrieval.spice.utc_to_et`).
    lat_deg, lon_deg : float or array
        Areocentric latitude and east longitude [deg].
    altitude_m : float or array
        Altitude above the reference sphere [m].

    Returns
    -------
    dict of arrays (broadcast shape of the inputs)
        ``sza_deg``, ``ltst_hours``, ``ls_deg``, ``subsolar_lat_deg``, ``subsolar_lon_deg``.

    Notes
    -----
    The SZA is the angle between the local radial direction at the point and the direction
    from the point to the Sun:

    .. math:: \\cos\\chi = \\hat r \\cdot (\\vec s - \\vec p) / |\\vec s - \\vec p|
    """
    lat, lon = _check_latlon(lat_deg, lon_deg)
    et_a, lat, lon, alt = np.broadcast_arrays(np.asarray(et, float), lat, lon,
                                              np.asarray(altitude_m, float))
    shape = et_a.shape
    et_f = et_a.ravel()
    uniq, inverse = np.unique(et_f, return_inverse=True)
    sun_u = sun_vector_iau_mars(uniq)
    ls_u = solar_longitude_deg(uniq)
    sun = sun_u[inverse]
    ls = ls_u[inverse]
    la, lo = np.radians(lat.ravel()), np.radians(lon.ravel())
    radial = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)
    point = radial * (K.MARS_MEAN_RADIUS_M + alt.ravel())[:, None]
    to_sun = sun - point
    cos_chi = np.einsum("ij,ij->i", radial, to_sun) / np.linalg.norm(to_sun, axis=1)
    sza = np.degrees(np.arccos(np.clip(cos_chi, -1.0, 1.0)))
    ss_lon = np.degrees(np.arctan2(sun[:, 1], sun[:, 0])) % 360.0
    ss_lat = np.degrees(np.arcsin(sun[:, 2] / np.linalg.norm(sun, axis=1)))
    ltst = (12.0 + ((lon.ravel() - ss_lon) % 360.0) / 15.0) % 24.0
    out = dict(sza_deg=sza, ltst_hours=ltst, ls_deg=ls % 360.0,
               subsolar_lat_deg=ss_lat, subsolar_lon_deg=ss_lon)
    return {k: v.reshape(shape) for k, v in out.items()}


_FAR_CACHE: dict = {}


def _far_ends(tx, rx, et0):
    """Whether each end of the link is far from Mars (cached per link: Earth stays far)."""
    key = (str(tx), str(rx))
    if key not in _FAR_CACHE:
        rx_mars, _ = spice.states(rx, [et0], "MARS")
        tx_mars, _ = spice.states(tx, [et0], "MARS")
        _FAR_CACHE[key] = (bool(np.linalg.norm(tx_mars[0, :3]) > FAR_END_M),
                           bool(np.linalg.norm(rx_mars[0, :3]) > FAR_END_M))
    return _FAR_CACHE[key]


def link_states(tx: int | str, rx: int | str, et: ArrayLike) -> dict:
    """States of both ends of a one-way link, with light time, in Mars' rest frame.

    The *reference end* is the receiver, unless the receiver is far (Earth, beyond
    :data:`FAR_END_M`) and the transmitter is not, in which case it is the transmitter: the
    times ``et`` are then reception (resp. emission) times at that end, and the other end is
    taken at emission (resp. reception) as light travels.

    Light time is solved in Mars' (inertial, Mars-centred) rest frame, where the ray through
    the spherically symmetric atmosphere is a straight line: the other end is at
    ``t -/+ tau`` with ``c tau = |r_ref(t) - r_other(t -/+ tau)|``, both positions relative to
    Mars' centre at their own times. (SPICE's ``CN`` corrections would give the geometry in
    the solar-system-barycentric frame instead, which differs by Mars' velocity times the
    light time: ~14,000 km at Earth, ~0.7 km at the tangent point of an Earth link.) The
    fixed-point iteration converges by a factor v/c per step; each epoch stops once its own
    change is below 1 us and the remainder is applied with the other end's velocity, so an
    epoch's states do not depend on the other epochs of the call.

    Parameters
    ----------
    tx, rx : str or int
        NAIF names or IDs of transmitter and receiver.
    et : float or array
        Times at the reference end [s past J2000 TDB].

    Returns
    -------
    dict
        ``tx_position``, ``tx_velocity``, ``rx_position``, ``rx_velocity`` (n, 3) [m, m/s]
        relative to Mars' centre in J2000 axes; ``et_tx``, ``et_rx`` (n,) [s];
        ``reference`` ("rx" or "tx").
    """
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    tx_far, rx_far = _far_ends(tx, rx, ets[0])
    if rx_far and tx_far:
        raise RoharnessError(f"both ends of the link {tx} -> {rx} are far from Mars; "
                             "an occultation link needs at least one spacecraft at Mars")
    if rx_far:  # downlink to Earth: reference = transmitter at emission, receiver later
        ref, other, sign = tx, rx, +1.0
    else:       # reference = receiver at reception, transmitter earlier
        ref, other, sign = rx, tx, -1.0
    ref_state, _ = spice.states(ref, ets, "MARS")
    tau = np.zeros_like(ets)
    change = np.zeros_like(ets)
    other_state = np.empty_like(ref_state)
    todo = np.arange(ets.size)
    for _ in range(8):  # each epoch iterates until its own change is below 1 us
        other_state[todo], _ = spice.states(other, ets[todo] + sign * tau[todo], "MARS")
        new_tau = np.linalg.norm(ref_state[todo, :3] - other_state[todo, :3], axis=1) / K.C
        change[todo] = new_tau - tau[todo]
        tau[todo] = new_tau
        todo = todo[np.abs(change[todo]) >= 1e-6]
        if todo.size == 0:
            break
    # apply the last (sub-microsecond) change with the velocity
    other_state[:, :3] += (sign * change)[:, None] * other_state[:, 3:]
    if ref == tx:
        return dict(tx_position=ref_state[:, :3], tx_velocity=ref_state[:, 3:],
                    rx_position=other_state[:, :3], rx_velocity=other_state[:, 3:],
                    et_tx=ets, et_rx=ets + tau, reference="tx")
    return dict(tx_position=other_state[:, :3], tx_velocity=other_state[:, 3:],
                rx_position=ref_state[:, :3], rx_velocity=ref_state[:, 3:],
                et_tx=ets - tau, et_rx=ets, reference="rx")


def tangent_point(r_tx, r_rx):
    """Closest approach of the straight segment ``r_tx -> r_rx`` to Mars' centre.

    Parameters
    ----------
    r_tx, r_rx : array (n, 3)
        End positions [m], Mars-centred.

    Returns
    -------
    point : array (n, 3)
        Closest point of the segment to the centre [m].
    radius : array (n,)
        Its distance from the centre [m].
    s : array (n,)
        Fractional position along the segment (0 at tx, 1 at rx), clipped to [0, 1]; an
        interior value means the ray has a true tangent point.
    """
    r_tx = np.atleast_2d(r_tx)
    d = np.atleast_2d(r_rx) - r_tx
    s = -np.einsum("ij,ij->i", r_tx, d) / np.einsum("ij,ij->i", d, d)
    s = np.clip(s, 0.0, 1.0)
    point = r_tx + s[:, None] * d
    return point, np.linalg.norm(point, axis=1), s


def j2000_to_latlon(et, position_m):
    """Areocentric latitude, east longitude [deg] and radius [m] of J2000 Mars-centred points."""
    spice.ensure_kernels()
    ets = np.atleast_1d(np.asarray(et, dtype=float))
    pos = np.atleast_2d(position_m)
    lat = np.empty(len(ets))
    lon = np.empty(len(ets))
    rad = np.linalg.norm(pos, axis=1)
    for i, e in enumerate(ets):
        m = sp.pxform("J2000", "IAU_MARS", float(e))
        v = m @ pos[i]
        lon[i] = np.degrees(np.arctan2(v[1], v[0])) % 360.0
        lat[i] = np.degrees(np.arcsin(v[2] / rad[i]))
    return lat, lon, rad
