"""Physical constants of Mars and the radio links, each with its source.

Fundamental constants come from :mod:`scipy.constants` (CODATA); planetary constants are
published values, cited here. Units are SI unless a suffix says otherwise.

References
----------
.. [1] Archinal, B. A. et al. (2011), Report of the IAU Working Group on Cartographic
   Coordinates and Rotational Elements: 2009, Celest. Mech. Dyn. Astr. 109, 101-135,
   doi:10.1007/s10569-010-9320-4.  (Mars and Earth orientation, Mars radii.)
.. [2] Archinal, B. A. et al. (2018), ... 2015, Celest. Mech. Dyn. Astr. 130:22,
   doi:10.1007/s10569-017-9805-5.  (Mars mean radius 3389.50 km; radii unchanged.)
.. [3] Konopliv, A. S. et al. (2016), An improved JPL Mars gravity field and orientation
   from Mars orbiter and lander tracking data, Icarus 274, 253-260,
   doi:10.1016/j.icarus.2016.02.052.  (GM and J2 of Mars, reference radius 3396 km.)
.. [4] Folkner, W. M. et al. (2014) / Park, R. S. et al. (2021), The JPL planetary and
   lunar ephemerides DE440 and DE441, Astron. J. 161:105, doi:10.3847/1538-3881/abd414.
.. [5] DSN Telecommunications Link Design Handbook 810-005, module 301 (station
   locations; rounded here to 1e-4 deg and 1 m, ample for occultation geometry).
"""

from __future__ import annotations

import scipy.constants as sc

# --- Mars -----------------------------------------------------------------------------
#: Mars equatorial radius [m] (IAU 2009/2015 [1, 2]).
MARS_EQUATORIAL_RADIUS_M = 3396.19e3
#: Mars polar radius [m] (IAU 2009/2015 [1, 2]).
MARS_POLAR_RADIUS_M = 3376.20e3
#: Mars mean radius [m] (IAU 2015 [2]); the reference sphere for RO altitudes, as in the
#: MAVEN ROSE archive ("altitude above a 3389.5 km sphere").
MARS_MEAN_RADIUS_M = 3389.50e3
#: GM of Mars [m^3 s^-2] (MRO120D, [3]: 42828.37 km^3 s^-2).
MARS_GM_M3_S2 = 42828.37e9
#: Unnormalised J2 of Mars (-C20, [3]: normalised C20 = -8.7502e-4 -> J2 = 1.95661e-3).
MARS_J2 = 1.95661e-3
#: Reference radius of the Mars gravity field [m] ([3]).
MARS_GRAVITY_REFERENCE_RADIUS_M = 3396.0e3

#: IAU 2009 Mars rotation model [1]: pole right ascension/declination [deg] and prime
#: meridian [deg] as polynomials in Julian centuries T / days d from J2000 TDB.
MARS_POLE_RA_DEG = (317.68143, -0.1061, 0.0)
MARS_POLE_DEC_DEG = (52.88650, -0.0609, 0.0)
MARS_PRIME_MERIDIAN_DEG = (176.630, 350.89198226, 0.0)

# --- Earth (for the far end of conventional links) -------------------------------------
#: IAU 2009 Earth rotation model [1] (adequate for station positions in RO geometry).
EARTH_POLE_RA_DEG = (0.0, -0.641, 0.0)
EARTH_POLE_DEC_DEG = (90.0, -0.557, 0.0)
EARTH_PRIME_MERIDIAN_DEG = (190.147, 360.9856235, 0.0)
#: Earth radii [m] (IAU 2009 [1]).
EARTH_RADII_M = (6378.1366e3, 6378.1366e3, 6356.7519e3)

#: DSN stations used as far ends of Earth links: NAIF ID, geodetic lat/east lon [deg],
#: height [m] ([5], rounded).
DSN_STATIONS = {
    "DSS-14": (399014, 35.4259, 243.1105, 1002.0),
    "DSS-43": (399043, -35.4024, 148.9813, 689.0),
    "DSS-63": (399063, 40.4314, 355.7520, 865.0),
}

# --- Molecules and plasma -------------------------------------------------------------
#: Molecular mass of CO2 [kg] (44.0095 u, IUPAC standard atomic weights).
CO2_MASS_KG = 44.0095 * sc.atomic_mass
#: Newtonian constant of gravitation [m^3 kg^-1 s^-2] (CODATA via scipy).
G = sc.G
#: Speed of light [m/s].
C = sc.c
#: Plasma refractivity constant K [m^3 s^-2]: n - 1 = -K N_e / f^2,
#: K = e^2 / (8 pi^2 eps0 m_e) = 40.308 m^3 s^-2 (computed, never typed in).
PLASMA_K = sc.e**2 / (8.0 * sc.pi**2 * sc.epsilon_0 * sc.m_e)

# --- Links ----------------------------------------------------------------------------
#: Mars Express MELACOM UHF transmit frequency [Hz].
MELACOM_UHF_HZ = 437.1e6
#: Transponder turnaround ratios (downlink/uplink) for X and S band coherent links.
TURNAROUND_X = 880.0 / 749.0
TURNAROUND_S = 240.0 / 749.0
