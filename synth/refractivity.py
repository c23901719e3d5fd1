"""Refractivity n - 1 of the Mars ionosphere and neutral atmosphere, as functions of radius.

Plasma (cold, unmagnetised, first order in f_p^2 / f^2, as in the observation contract):

.. math:: n - 1 = -K \\frac{N_e}{f^2}, \\qquad K = \\frac{e^2}{8 \\pi^2 \\varepsilon_0 m_e}
          \\approx 40.3\\ \\mathrm{m^3\\,s^{-2}}

with K computed here from :mod:`scipy.constants` (CODATA), never typed in. Neutral CO2:

.. math:: n - 1 = \\kappa_{CO_2}\\, n_{CO_2}, \\qquad
          \\kappa_{CO_2} = 1.804\\times10^{-29}\\ \\mathrm{m^3}

The ray tracer (:mod:`synth.raytrace`) needs a spherically symmetric profile as a function
of radius r: a :class:`RefractivityProfile` bundles ``evaluate(r) -> (n - 1, d(n - 1)/dr)``
with the radius above which n - 1 is negligible (``top_radius_m``) and the radius of the
solid surface (``surface_radius_m``; rays whose tangent point is lower are blocked).

API
---
``PLASMA_K_M3_S2``, ``KAPPA_CO2_M3``
``plasma_refractivity(electron_density_m3, freq_hz)``
``neutral_refractivity(number_density_m3)``
``RefractivityProfile(evaluate, top_radius_m, surface_radius_m, description, panel_m)``
``refractivity_profile(layers, sza_deg, freq_hz, neutral=None, grazing="chapman")``

References
----------
.. [1] Tyler, G. L. and Howard, H. T. (1969), Refractivity of carbon dioxide under
   simulated Martian conditions, Radio Sci. 4, 899-904, doi:10.1029/RS004i010p00899
   (1.78e-29 m^3 per molecule at 150-190 K, 1.84e-29 m^3 at STP, 2.26 GHz).
.. [2] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured
   by radio occultation experiments, Adv. Space Res. 46, 58-73,
   doi:10.1016/j.asr.2010.03.004 (radio occultation refractivity relations).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import scipy.constants as sc

from retrieval.constants import MARS_MEAN_RADIUS_M
from retrieval.errors import RoharnessError
from synth.ionosphere import ElectronDensityProfile, NeutralAtmosphere

#: Plasma refractivity constant K = e^2 / (8 pi^2 eps0 m_e) [m^3 s^-2] (CODATA via scipy).
PLASMA_K_M3_S2 = sc.e**2 / (8.0 * sc.pi**2 * sc.epsilon_0 * sc.m_e)

#: Refractive volume of CO2 at radio frequencies [m^3 per molecule]: the value of the
#: project's observation contract, inside the laboratory range 1.78e-29 (Martian
#: conditions) .. 1.84e-29 (STP) of Tyler & Howard (1969) [1].
KAPPA_CO2_M3 = 1.804e-29


def plasma_refractivity(electron_density_m3, freq_hz):
    """Plasma refractivity n - 1 = -K N_e / f^2 [1].

    Parameters
    ----------
    electron_density_m3 : array_like
        Electron density [m^-3].
    freq_hz : float or array_like
        Carrier frequency [Hz].
    """
    f = np.asarray(freq_hz, dtype=float)
    if np.any(~np.isfinite(f)) or np.any(f <= 0):
        raise RoharnessError(f"Plasma refractivity: frequency {freq_hz} Hz must be > 0.")
    return -PLASMA_K_M3_S2 * np.asarray(electron_density_m3, dtype=float) / f**2


def neutral_refractivity(number_density_m3, kappa_m3=KAPPA_CO2_M3):
    """Neutral refractivity n - 1 = kappa n [1]; CO2 by default."""
    return kappa_m3 * np.asarray(number_density_m3, dtype=float)


@dataclass(frozen=True)
class RefractivityProfile:
    """A spherically symmetric refractivity profile for the ray tracer.

    Attributes
    ----------
    evaluate : callable
        ``evaluate(radius_m) -> (nu, dnu_dr)`` with nu = n - 1 [1] and d nu / dr [m^-1],
        vectorised over any array shape.
    top_radius_m : float
        Radius above which nu is negligible (taken as 0 by the quadratures) [m].
    surface_radius_m : float
        Radius of the solid surface [m]; rays with a lower tangent point are blocked.
    description : str
    panel_m : float
        Width [m] of the ray tracer's quadrature panels (8 Gauss-Legendre nodes each) that
        resolves this profile; default the tracer's 2 km (:func:`panel_width_m`).
    """

    evaluate: Callable
    top_radius_m: float
    surface_radius_m: float = MARS_MEAN_RADIUS_M
    description: str = ""
    panel_m: float = 2000.0

    def refractivity(self, radius_m):
        """n - 1 at ``radius_m`` [1]."""
        return self.evaluate(np.asarray(radius_m, dtype=float))[0]


#: Quadrature panel width per scale height, and the smallest width (the ray tracer's default).
#: The bending integrand of an exponential or Chapman profile is self-similar in h / H, so
#: the relative error of a panel rule depends on panel / H only: 8 Gauss-Legendre nodes on
#: 0.4 H give < 2e-13 relative (measured against 250 m panels, H = 5, 7 and 10 km, SZA
#: 20-85 deg, with and without CO2; 0.5 H gives 1e-12, 0.6 H 1e-11).
PANEL_PER_SCALE_HEIGHT = 0.4
MIN_PANEL_M = 2000.0


def panel_width_m(scale_heights_m: Iterable[float]) -> float:
    """Quadrature panel width [m] for a profile whose thinnest scale height is given:
    :data:`PANEL_PER_SCALE_HEIGHT` of it, never below :data:`MIN_PANEL_M` (the width the
    ray tracer has always used, so a thin layer is integrated as before)."""
    return max(MIN_PANEL_M, PANEL_PER_SCALE_HEIGHT * float(min(scale_heights_m)))


@functools.lru_cache(maxsize=32)
def _electron_density_profile(layers, sza_deg, grazing, reference_radius_m):
    """Cached: the same ionosphere at several carriers (two-way, X and S) shares its
    Chapman-function tables (layers are frozen dataclasses, hence hashable)."""
    return ElectronDensityProfile(layers, sza_deg, grazing, reference_radius_m)


def refractivity_profile(layers, sza_deg, freq_hz, neutral=None, grazing="chapman",
                         reference_radius_m=MARS_MEAN_RADIUS_M, include_plasma=True):
    """Refractivity profile of a Chapman ionosphere (+ optional neutral CO2) at one SZA.

    Parameters
    ----------
    layers : sequence of ChapmanLayer
        Ionospheric layers (may be empty when ``include_plasma`` is False).
    sza_deg : float
        Solar zenith angle of the spherically symmetric profile [deg].
    freq_hz : float
        Carrier frequency [Hz] (the plasma term is dispersive).
    neutral : NeutralAtmosphere, optional
        Neutral CO2 atmosphere; None for an ionosphere only.
    grazing : {"chapman", "sec"}
    reference_radius_m : float
        Radius of the reference sphere for altitudes and of the surface [m].

    Returns
    -------
    RefractivityProfile
        nu(r) = -K N_e(r - R) / f^2 + kappa n_CO2(r - R); top_radius_m where every term is
        below 1e-12 of its own peak (N_0 or surface density).
    """
    f = float(freq_hz)
    if not (np.isfinite(f) and f > 0):
        raise RoharnessError(f"Refractivity profile: frequency {freq_hz} Hz must be > 0.")
    if neutral is not None and not isinstance(neutral, NeutralAtmosphere):
        raise RoharnessError("Refractivity profile: neutral must be a NeutralAtmosphere.")
    ne = _electron_density_profile(tuple(layers), float(sza_deg), grazing,
                                   float(reference_radius_m)) if include_plasma else None
    if ne is None and neutral is None:
        raise RoharnessError("Refractivity profile: neither plasma nor neutral term given.")
    scale = -PLASMA_K_M3_S2 / f**2
    r_ref = float(reference_radius_m)

    def evaluate(radius_m):
        h = np.asarray(radius_m, dtype=float) - r_ref
        nu = np.zeros(h.shape)
        dnu = np.zeros(h.shape)
        if ne is not None:
            n, dn = ne(h, derivative=True)
            nu += scale * n
            dnu += scale * dn
        if neutral is not None:
            n, dn = neutral.number_density(h, derivative=True)
            nu += KAPPA_CO2_M3 * n
            dnu += KAPPA_CO2_M3 * dn
        return nu, dnu

    tops = []
    if ne is not None:
        tops.append(ne.top_altitude_m())
    if neutral is not None:
        tops.append(neutral.top_altitude_m())
    desc = (f"{'+'.join(layer.name for layer in ne.layers) if ne else 'no plasma'}"
            f"{' + CO2' if neutral is not None else ''} at SZA {float(sza_deg):g} deg, "
            f"{f:g} Hz, grazing={grazing}")
    heights = [layer.scale_height_m for layer in ne.layers] if ne is not None else []
    if neutral is not None:
        heights.append(neutral.scale_height_m)
    return RefractivityProfile(evaluate, r_ref + max(tops), r_ref, desc, panel_width_m(heights))
