"""Synthetic campaigns of ionospheric peaks: truth laws plus measurement noise.

A small forward helper (truth -> observed peak table) for the campaign statistics of
``retrieval.laws``; written independently of the retrieval code (its own Chapman
function, its own group rule), as the import rule asks.

Truth models (../shared/SCIENCE.md):

``parrott2025`` (Parrott et al. 2025, mutual RO, SZA 5-90 deg)
    N_M2 = 1.6e11 cos(chi)^0.25 + 4.3e8 F10.7,  h_M2 = 125.9 km + 5.9 km ln sec chi;
    N_M1 = 7.3e10 cos(chi)^0.34 + 2.5e8 F10.7,  h_M1 = 106.2 km + 5.3 km ln sec chi.
    **Exponent sign:** the paper prints ``cos(SZA)^-0.25`` while describing a density that
    falls with SZA; ``cos^-0.25`` would *rise* with SZA, so we use the physical reading,
    a positive exponent on cos (as every other published fit: 0.57, 0.49, 0.476, 0.546).
``segale2024`` (Segale et al. 2024, MAVEN ROSE, solar minimum)
    Peak altitude per group (dawn/dusk x aphelion/perihelion):
    h = z0 + L ln Ch(x, chi), x = (R + z0) / L, with the tabulated z0 and L.
    Segale's density fits are not in SCIENCE.md; the density truth uses the same form
    N = N_0 cos(chi)^k with the MARSIS values of Nemec et al. (2011) for M2
    (N_0 = 1.59e11 m^-3, k = 0.546) and, for M1, Parrott's 7.3e10 cos(chi)^0.34 without
    the F10.7 term (a stand-in, documented as such).

Noise on the measured peaks: the ROSE instrument error (5e9 m^-3, 1 km; Segale et al.)
plus optional natural variability (default 5 % in density, log-normal, and 2 km in
altitude: an assumption of day-to-day scatter about the SZA laws of the size seen in the
published scatter plots; set both to 0 for instrument noise only). The measured errors
reported in the table are the instrument errors only (as a real table would give).

Drivers: F10.7 uniform in ``f107_range`` [sfu]; Ls uniform 0-360 deg; solar distance
from Ls with Mars' orbit (a = 1.52368 au, e = 0.0934, Ls of perihelion 251 deg; Allison &
McEwen 2000, doi:10.1016/S0032-0633(99)00092-6); dawn or dusk with equal probability and
the local time of a point at that SZA: hour angle a random fraction (0.3-1) of the SZA.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.integrate import quad

from retrieval.constants import MARS_MEAN_RADIUS_M

#: Parrott et al. 2025 laws: (N0 [m^-3], k, c per sfu [m^-3], h0 [m], H [m]) per layer.
PARROTT2025 = {
    "m2": (1.6e11, 0.25, 4.3e8, 125.9e3, 5.9e3),
    "m1": (7.3e10, 0.34, 2.5e8, 106.2e3, 5.3e3),
}
#: Segale et al. 2024 peak-altitude table: group -> (M2 z0, M1 z0, M2 L, M1 L) [m].
SEGALE2024 = {
    "dawn_aphelion": (114.7e3, 98.5e3, 12.2e3, 7.0e3),
    "dawn_perihelion": (122.8e3, 103.1e3, 9.4e3, 6.4e3),
    "dusk_aphelion": (121.3e3, 107.1e3, 9.5e3, 3.1e3),
    "dusk_perihelion": (119.8e3, 99.4e3, 10.3e3, 8.3e3),
}
#: Density truth used with segale2024: (N0 [m^-3], k) per layer (see module notes).
SEGALE2024_DENSITY = {"m2": (1.59e11, 0.546), "m1": (7.3e10, 0.34)}

MODELS = ("parrott2025", "segale2024")

_MARS_A_AU = 1.52368
_MARS_E = 0.0934
_LS_PERIHELION_DEG = 251.0


def slant_column_ratio(x, sza_deg):
    """Ch(x, chi) as the ratio of the slant to the vertical column (chi <= 90 deg).

    .. math:: Ch = \\int_0^\\infty \\exp\\left(x - \\sqrt{x^2 + t^2 + 2 x t \\cos\\chi}\\right) dt

    (path length ``t`` in scale heights along the ray toward the Sun, exponential
    atmosphere of scale height H, ``x = (R + h)/H``); evaluated with adaptive quadrature.
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    chi = np.atleast_1d(np.radians(np.asarray(sza_deg, dtype=float)))
    x, chi = np.broadcast_arrays(x, chi)
    out = np.empty(x.shape)
    for i, (xx, cc) in enumerate(zip(x.ravel(), chi.ravel())):
        c = np.cos(cc)
        out.ravel()[i] = quad(lambda t: np.exp(xx - np.sqrt(xx * xx + t * t + 2 * xx * t * c)),
                              0.0, np.inf, limit=200, epsrel=1e-10)[0]
    return out


def _group(ltst_hours, ls_deg):
    dusk = ltst_hours >= 12.0
    perihelion = (ls_deg >= 161.0) & (ls_deg < 341.0)
    names = np.array(["dawn_aphelion", "dawn_perihelion", "dusk_aphelion", "dusk_perihelion"])
    return names[2 * dusk.astype(int) + perihelion.astype(int)]


def campaign_truth(n, model="parrott2025", seed=None, sza_range_deg=(5.0, 85.0),
                   density_error_m3=5e9, altitude_error_m=1e3, natural_density_rel=0.05,
                   natural_altitude_m=2e3, f107_range=(70.0, 200.0), group=None):
    """Draw a synthetic campaign of ``n`` occultations with truth and measured peaks.

    Parameters
    ----------
    n : int
        Number of occultations.
    model : {"parrott2025", "segale2024"}
        Truth laws (module notes).
    seed : int or numpy.random.Generator, optional
        Random state (``numpy.random.default_rng(seed)``).
    sza_range_deg : (float, float)
        SZA drawn uniformly in this range [deg].
    density_error_m3, altitude_error_m : float
        Instrument 1-sigma errors [m^-3], [m] (ROSE: 5e9 m^-3, 1 km).
    natural_density_rel, natural_altitude_m : float
        Natural variability (relative, log-normal; absolute [m]).
    f107_range : (float, float)
        F10.7 range [sfu].
    group : str, optional
        Draw every occultation inside one Segale group (``dawn_aphelion``,
        ``dawn_perihelion``, ``dusk_aphelion``, ``dusk_perihelion``): dawn/dusk fixed and Ls
        uniform over that season; default: dawn/dusk 50/50 and Ls uniform 0-360 deg.

    Returns
    -------
    xarray.Dataset
        Dimension ``occultation``; drivers ``sza_deg``, ``ltst_hours``, ``ls_deg``,
        ``f107``, ``solar_distance_au``, ``group``; per layer L in (m2, m1):
        ``true_L_peak_density_m3``, ``true_L_peak_altitude_km``, ``L_peak_density_m3``,
        ``L_peak_altitude_km``, ``L_peak_density_error_m3``, ``L_peak_altitude_error_km``
        (the measured columns use the names :func:`retrieval.laws.read_peak_table` reads).
    """
    if model not in MODELS:
        raise ValueError(f"unknown campaign model {model!r}; known: {MODELS}")
    if group is not None and group not in SEGALE2024:
        raise ValueError(f"unknown group {group!r}; known: {tuple(SEGALE2024)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sza = rng.uniform(*sza_range_deg, n)
    dusk = rng.random(n) < 0.5
    if group is not None:
        dusk = np.full(n, group.startswith("dusk"))
    hour_angle_deg = sza * rng.uniform(0.3, 1.0, n)
    ltst = np.where(dusk, 12.0 + hour_angle_deg / 15.0, 12.0 - hour_angle_deg / 15.0)
    ltst = np.clip(ltst, 0.0, 23.999)
    ls = rng.uniform(0.0, 360.0, n)
    if group is not None and group.endswith("perihelion"):
        ls = rng.uniform(161.0, 341.0, n)
    elif group is not None:
        ls = (rng.uniform(341.0, 341.0 + 180.0, n)) % 360.0
    f107 = rng.uniform(*f107_range, n)
    dist = _MARS_A_AU * (1 - _MARS_E**2) / (
        1 + _MARS_E * np.cos(np.radians(ls - _LS_PERIHELION_DEG)))
    group = _group(ltst, ls)
    cosz = np.cos(np.radians(sza))
    data = {"sza_deg": sza, "ltst_hours": ltst, "ls_deg": ls, "f107": f107,
            "solar_distance_au": dist}
    for k, layer in enumerate(("m2", "m1")):
        if model == "parrott2025":
            n0, kk, c, h0, hh = PARROTT2025[layer]
            dens = n0 * cosz**kk + c * f107
            alt = h0 + hh * np.log(1.0 / cosz)
        else:
            n0, kk = SEGALE2024_DENSITY[layer]
            dens = n0 * cosz**kk
            z0 = np.array([SEGALE2024[g][k] for g in group])
            ll = np.array([SEGALE2024[g][2 + k] for g in group])
            alt = z0 + ll * np.log(slant_column_ratio((MARS_MEAN_RADIUS_M + z0) / ll, sza))
        nat_d = dens * np.exp(natural_density_rel * rng.standard_normal(n))
        nat_h = alt + natural_altitude_m * rng.standard_normal(n)
        meas_d = nat_d + density_error_m3 * rng.standard_normal(n)
        meas_h = nat_h + altitude_error_m * rng.standard_normal(n)
        data[f"true_{layer}_peak_density_m3"] = dens
        data[f"true_{layer}_peak_altitude_km"] = alt / 1e3
        data[f"{layer}_peak_density_m3"] = meas_d
        data[f"{layer}_peak_altitude_km"] = meas_h / 1e3
        data[f"{layer}_peak_density_error_m3"] = np.full(n, float(density_error_m3))
        data[f"{layer}_peak_altitude_error_km"] = np.full(n, altitude_error_m / 1e3)
    units = {"sza_deg": "degree", "ltst_hours": "hour", "ls_deg": "degree", "f107": "sfu",
             "solar_distance_au": "au"}
    ds = xr.Dataset({name: ("occultation", v, {"units": units.get(
        name, "m-3" if name.endswith("_m3") else "km")}) for name, v in data.items()})
    ds["group"] = ("occultation", group.astype(str))
    ds.attrs.update({"model": model, "seed": str(seed) if not isinstance(seed, np.random.Generator)
                     else "generator", "title": "synthetic campaign of ionospheric peaks"})
    return ds
