"""Separation of the neutral atmosphere from the ionosphere in a retrieved refractivity profile.

A radio occultation measures the total refractivity :math:`\\nu = n - 1` of the rays'
tangent layers. Below ~100 km at Mars it holds, besides the (negative, dispersive) plasma
term, the positive, non-dispersive refractivity of the neutral CO2 atmosphere [1]_ [2]_:

.. math:: \\nu(h) = -\\frac{K N_e(h)}{f^2} + \\kappa_{CO_2}\\, n_{CO_2}(h)

Attributing all of :math:`\\nu` to electrons turns the neutral term into a negative
electron density that grows downward, in proportion to :math:`f^2` (at X band a few % of a
weak layer's peak at 80-100 km, at UHF below 1e-3).

Real pipelines separate the two in one of two ways:

* **Dual frequency** (X and S downlinks): the differential Doppler cancels every
  non-dispersive term, the neutral included, before the inversion
  (:func:`retrieval.two_way.differential_doppler`). Nothing is left to remove here.
* **Single frequency**: a neutral model is fitted below the ionosphere, where the plasma
  term is negligible, and its upward extrapolation is removed [3]_. This module fits

  - ``"exponential"``: an isothermal, hydrostatic atmosphere of constant scale height H,

    .. math:: \\nu_n(h) = \\nu_0 \\exp[-(h - h_0) / H];

  - ``"exponential_gradient"``: a scale height varying linearly with altitude,
    :math:`H(h) = H_0 + \\gamma (h - h_0)`, exact for a hydrostatic atmosphere whose
    temperature changes linearly with altitude under constant gravity
    (:math:`H_\\rho = T / (m g / k_B + dT/dh)`),

    .. math:: \\nu_n(h) = \\nu_0 \\left[1 + \\gamma \\frac{h - h_0}{H_0}\\right]^{-1/\\gamma}
              \\quad (\\to \\text{the exponential as } \\gamma \\to 0).

The fit window is chosen from the data (:func:`choose_window`): it starts at the lowest
level and ends where the plasma part, as the fit itself sees it, reaches
:data:`PLASMA_NEGLIGIBLE` of the neutral term (on coarse profiles two levels may do,
:data:`COARSE_STEP_M`). ``"auto"`` takes the gradient model only where the data show the
curvature (:func:`select_model`). The residual neutral error is estimated from the spread
of alternative fits (the window's lower and upper two thirds; the other model unless the
data reject it) over the levels where the retrieved density exceeds 1 % of its peak; it
measures how well the data fix the model, not a true atmosphere outside both models
(measured on hydrostatic profiles with 1-2 K/km gradients: actual error <= 4.3e-4 of the
peak, 2-60x the estimate). Where the bottom is positive but no clean window exists the
profile is flagged ``"not_separable"`` and left as it is.

API
---
``NEUTRAL_MODELS``, ``KAPPA_CO2_M3``
``neutral_refractivity_model(altitude_m, refractivity_ref, scale_height_m, ...)``
``fit_neutral(altitude_m, refractivity, model, window_m)`` -> :class:`NeutralFit`
``choose_window(altitude_m, refractivity, model)``
``select_model(altitude_m, refractivity)``
``separate_neutral(altitude_m, refractivity, frequency_hz, neutral="auto", ...)``
``remove_neutral(profile, neutral="auto")`` (what :func:`retrieval.invert_observation`
calls)

References
----------
.. [1] Tyler, G. L. and Howard, H. T. (1969), Refractivity of carbon dioxide under
   simulated Martian conditions, Radio Sci. 4, 899-904, doi:10.1029/RS004i010p00899.
.. [2] Withers, P. (2010), Prediction of uncertainties in atmospheric properties measured
   by radio occultation experiments, Adv. Space Res. 46, 58-73,
   doi:10.1016/j.asr.2010.03.004.
.. [3] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), The neutral atmosphere of
   Venus as studied with the Mariner V radio occultation experiments, Astron. J. 76,
   123-140, doi:10.1086/111096 (neutral and plasma parts of one refractivity profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval import constants as K
from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    import xarray as xr
    from numpy.typing import ArrayLike

#: Neutral treatments of :func:`separate_neutral` / :func:`retrieval.invert_observation`.
NEUTRAL_MODELS = ("auto", "none", "exponential", "exponential_gradient")
#: The fitted models (``"auto"`` chooses between them, :func:`select_model`).
FIT_MODELS = ("exponential", "exponential_gradient")

#: Refractive volume of CO2 at radio frequencies [m^3 per molecule], used only to report
#: the fitted refractivity as a number density: 1.804e-29 m^3 lies inside the laboratory
#: range of Tyler & Howard (1969) [1]_, 1.78e-29 (Martian conditions) to 1.84e-29 (STP).
KAPPA_CO2_M3 = 1.804e-29

#: The plasma part inside the fit window may reach this fraction of the neutral term
#: (the window's top is where the fit's own plasma estimate crosses it). 1e-3 of the
#: neutral at the window top biases the fitted slope by less than that; extrapolated over
#: ~2 windows to the ionosphere's bottomside, where the neutral is a few % of a weak X-band
#: layer's peak, that is ~1e-4 of the peak.
PLASMA_NEGLIGIBLE = 1e-3
#: Fewest levels a fit window may hold: the model's parameters + 1 to judge the fit (2 + 1
#: for the exponential, 3 + 1 for the gradient model). More would force plasma-contaminated
#: levels into the window on coarse profiles (measured at 0.59 Hz, 3.5 km steps: a
#: 5-level window reached 76 km, fitted H = 10.0 km for 11, and left 4e-3 of the peak).
MIN_WINDOW_LEVELS = {"exponential": 3, "exponential_gradient": 4}
#: Bottom level spacing [m] from which a two-level exponential window is accepted
#: (:func:`_coarse_window`): the Chapman bottomside's local scale where it meets the neutral
#: term is 1.2-3 km (scale heights 7-14 km), so at steps of 2.5 km and more a clean neutral
#: region may hold only two levels (measured at 0.5 Hz on Earth links, 5.4 km steps: two
#: clean levels, the neutral left in cost 1.5e-2 and 4.1e-2 of the peak). Finer profiles
#: (drift-corrected UHF at ~1 km) never take this path.
COARSE_STEP_M = 2.5e3
#: Shortest fit window [m]: with H ~ 10 km a shorter one hardly constrains the slope.
MIN_WINDOW_M = 3e3
#: Physical neutral scale heights at Mars [m]: ~8-20 km from the surface to the lower
#: thermosphere (T = 120-300 K); a fit outside 3-40 km is not a neutral atmosphere.
SCALE_HEIGHT_RANGE_M = (3e3, 40e3)
#: Largest |dH/dh| of a neutral atmosphere [1]: dH/dh ~ (dT/dh) / (m g / k_B) with
#: m g / k_B = 19.6 K/km for CO2 at Mars; Mars' dry adiabatic lapse rate g / c_p ~ 4.5 K/km
#: (c_p ~ 820 J/kg/K near 200 K) bounds a stable atmosphere's cooling, and inversions of
#: similar size bound its warming: |dH/dh| <= ~0.25. A fit needing more is fitting plasma
#: (measured: a UHF window gave 1.0 and an extrapolated "neutral" of 7e-5 of the peak at
#: 270 km).
MAX_SCALE_HEIGHT_GRADIENT = 0.25
#: ``"auto"`` removes a neutral only if the window's relative level-to-level noise
#: (:attr:`NeutralFit.noise_rel`) is below 1 / this factor (a noise-only bottom of a
#: drift-corrected profile gives a relative noise of order 1).
DETECTION_SNR = 20.0
#: ``"auto"`` removes a neutral only if its fitted refractivity at the window bottom exceeds
#: this fraction of the largest plasma refractivity |n - 1| of the profile: a smaller term
#: changes N_e by less than 1e-4 of the peak anywhere above the window (10x below the 1e-3
#: accuracy goal), and the inversion's numerical floor (~1e-6 of the peak) is not mistaken
#: for a neutral atmosphere (measured: a plasma-only X-band profile's bottom gave a
#: "neutral" of 2e-6 of the plasma peak with H = 22 km).
MIN_NEUTRAL_FRACTION = 1e-4
#: ``"auto"`` chooses the scale-height-gradient model when the exponential's rms misfit on
#: the gradient model's window exceeds the gradient model's by this factor (measured: 1.0-1.5
#: on exact exponentials through the inversion, > 10 on hydrostatic profiles with a 1 K/km
#: temperature gradient).
CURVATURE_RATIO = 3.0
#: ``"auto"`` judges the curvature only on a gradient-model window of at least this many
#: levels (two more than its three parameters): on four levels the gradient model keeps one
#: degree of freedom and absorbs a single plasma-touched level at the window's top as
#: "curvature". Found 2026-12 by a property draw: MEX -> DSS-43 X band at 1 Hz (2.66 km
#: levels), an H = 14 km fallows2015 layer reaching 1.2e-3 of its peak at 70 km; the
#: four-level window 62-70 km chose the gradient model (dH/dh = -0.067 for an isothermal
#: truth) and left 3.9e-3 of the peak, the exponential on its clean three levels 1e-4.
MIN_CURVATURE_LEVELS = 5
#: Levels whose retrieved N_e exceeds this fraction of its peak are where the residual
#: neutral error is reported (the round-trip metric's "significant" levels).
SIGNIFICANT_FRACTION = 0.01


def neutral_refractivity_model(altitude_m: ArrayLike, refractivity_ref: float,
                               scale_height_m: float, reference_altitude_m: float,
                               scale_height_gradient: float = 0.0) -> np.ndarray:
    r"""Neutral refractivity of an exponential atmosphere, optionally with a linear
    scale-height gradient.

    .. math:: \nu_n(h) = \nu_0 \left[1 + \gamma \frac{h - h_0}{H_0}\right]^{-1/\gamma},
              \qquad \nu_n = \nu_0 e^{-(h - h_0)/H_0} \ (\gamma = 0)

    Where :math:`1 + \gamma (h - h_0)/H_0 \le 0` (a scale height extrapolated through
    zero) the model is not defined and returns NaN.

    Parameters
    ----------
    altitude_m : array_like
        Altitude h [m].
    refractivity_ref : float
        :math:`\nu_0 = n - 1` at the reference altitude [1].
    scale_height_m : float
        Scale height :math:`H_0` at the reference altitude [m].
    reference_altitude_m : float
        Reference altitude :math:`h_0` [m].
    scale_height_gradient : float
        :math:`\gamma = dH/dh` [1].

    Returns
    -------
    ndarray
        :math:`\nu_n(h)` [1], shaped like ``altitude_m``.
    """
    x = (np.asarray(altitude_m, float) - reference_altitude_m) / scale_height_m
    g = float(scale_height_gradient)
    if abs(g) < 1e-9:
        return refractivity_ref * np.exp(-x)
    base = 1.0 + g * x
    with np.errstate(invalid="ignore", divide="ignore"):
        out = refractivity_ref * np.exp(-np.log(base) / g)
    return np.where(base > 0, out, np.nan)


@dataclass(frozen=True)
class NeutralFit:
    """A neutral refractivity model fitted to the bottom of a profile.

    Attributes
    ----------
    model : str
        ``"exponential"`` or ``"exponential_gradient"``.
    reference_altitude_m : float
        Reference altitude h_0 (the window's bottom) [m].
    refractivity_ref : float
        Fitted neutral refractivity at h_0 [1].
    scale_height_m : float
        Fitted scale height at h_0 [m].
    scale_height_gradient : float
        Fitted dH/dh [1] (0 for the exponential).
    window_m : tuple of float
        Bottom and top altitude of the fit window [m].
    levels : int
        Levels in the window.
    rms_rel : float
        Rms of (data - fit) / fit over the window [1].
    noise_rel : float
        Relative level-to-level noise of the window's refractivity [1]: the rms second
        difference of ln(n - 1) over sqrt(6) (white noise; a smooth profile gives ~0).
    """

    model: str
    reference_altitude_m: float
    refractivity_ref: float
    scale_height_m: float
    scale_height_gradient: float
    window_m: tuple
    levels: int
    rms_rel: float
    noise_rel: float = 0.0

    def evaluate(self, altitude_m: ArrayLike) -> np.ndarray:
        """The fitted neutral refractivity at ``altitude_m`` [1] (NaN where undefined)."""
        return neutral_refractivity_model(altitude_m, self.refractivity_ref,
                                          self.scale_height_m, self.reference_altitude_m,
                                          self.scale_height_gradient)

    @property
    def number_density_ref_m3(self) -> float:
        """CO2 number density at h_0 [m^-3] (:data:`KAPPA_CO2_M3`)."""
        return self.refractivity_ref / KAPPA_CO2_M3


def _check_model(model, allowed):
    if model not in allowed:
        raise ValueError(f"unknown neutral model {model!r}; known: {list(allowed)}")


def fit_neutral(altitude_m: ArrayLike, refractivity: ArrayLike, model: str = "exponential",
                window_m: tuple | None = None, min_levels: int | None = None) -> NeutralFit:
    r"""Least-squares fit of a neutral model to the refractivity inside a window.

    The fit minimises the residuals of :math:`\ln \nu` (relative errors: the neutral term
    spans a factor ~e^2 over a window), linear for the exponential, by
    :func:`scipy.optimize.least_squares` from the exponential's solution for the gradient
    model.

    Parameters
    ----------
    altitude_m, refractivity : array_like, shape (n,)
        Profile levels [m] and their refractivity n - 1 [1].
    model : {"exponential", "exponential_gradient"}
    window_m : (float, float), optional
        Bottom and top of the window [m], inclusive; default: all levels.
    min_levels : int, optional
        Fewest levels accepted (default :data:`MIN_WINDOW_LEVELS` of the model; at least
        the number of parameters).

    Returns
    -------
    NeutralFit

    Raises
    ------
    RoharnessError
        A gradient beyond :data:`MAX_SCALE_HEIGHT_GRADIENT`, fewer than ``min_levels``
        levels in the window, or a non-positive
        refractivity among them (no neutral term to fit there).
    """
    _check_model(model, FIT_MODELS)
    h = np.asarray(altitude_m, float)
    nu = np.asarray(refractivity, float)
    lo, hi = (h.min(), h.max()) if window_m is None else window_m
    m = (h >= lo) & (h <= hi) & np.isfinite(nu)
    need = max(min_levels or MIN_WINDOW_LEVELS[model], MIN_WINDOW_LEVELS[model] - 1)
    if m.sum() < need:
        raise RoharnessError(f"the neutral fit window {lo / 1e3:.1f}-{hi / 1e3:.1f} km holds "
                             f"{int(m.sum())} levels; at least {need} are needed")
    hw, nw = h[m], nu[m]
    if np.any(nw <= 0):
        raise RoharnessError(f"the refractivity in the neutral fit window {lo / 1e3:.1f}-"
                             f"{hi / 1e3:.1f} km is not positive everywhere; a neutral term "
                             "is positive, so the window must lie below the ionosphere")
    h0 = float(hw.min())
    y = np.log(nw)
    slope, icpt = np.polyfit(hw - h0, y, 1)
    if not slope < 0:
        raise RoharnessError(f"the refractivity in the neutral fit window {lo / 1e3:.1f}-"
                             f"{hi / 1e3:.1f} km does not decrease with altitude; a neutral "
                             "atmosphere's does")
    nu0, big_h, gamma = float(np.exp(icpt)), float(-1.0 / slope), 0.0
    if model == "exponential_gradient":
        from scipy.optimize import least_squares

        def resid(p):
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.log(neutral_refractivity_model(hw, np.exp(p[0]), p[1], h0, p[2]))
            return np.where(np.isfinite(v), v - y, 1e3)
        # start from the quadratic in ln(n - 1): d ln nu / dh = -1/H0 + gamma x / H0^2
        c2, c1, c0 = np.polyfit(hw - h0, y, 2)
        g0 = float(np.clip(2.0 * c2 / c1**2, -0.5, 0.5)) if c1 < 0 else 0.0
        start = [c0, -1.0 / c1, g0] if c1 < 0 else [np.log(nu0), big_h, 0.0]
        start[1] = float(np.clip(start[1], SCALE_HEIGHT_RANGE_M[0], SCALE_HEIGHT_RANGE_M[1]))
        sol = least_squares(resid, start, x_scale=[1.0, big_h, 0.1],
                            bounds=([-np.inf, SCALE_HEIGHT_RANGE_M[0] / 3, -1.0],
                                    [np.inf, SCALE_HEIGHT_RANGE_M[1] * 3, 1.0]))
        nu0, big_h, gamma = float(np.exp(sol.x[0])), float(sol.x[1]), float(sol.x[2])
        if not abs(gamma) <= MAX_SCALE_HEIGHT_GRADIENT:
            raise RoharnessError(
                f"the neutral fit in {lo / 1e3:.1f}-{hi / 1e3:.1f} km needs a scale-height "
                f"gradient of {gamma:.3g}, beyond the physical +-{MAX_SCALE_HEIGHT_GRADIENT:g}"
                " (the window is not a neutral atmosphere)")
    fit = NeutralFit(model, h0, nu0, big_h, gamma, (float(lo), float(hi)), int(m.sum()), 0.0)
    rms = float(np.sqrt(np.mean((nw / fit.evaluate(hw) - 1.0) ** 2)))
    order = np.argsort(hw)
    d2 = np.diff(y[order], 2)
    noise = float(np.sqrt(np.mean(d2**2) / 6.0)) if d2.size else 0.0
    return NeutralFit(model, h0, nu0, big_h, gamma, (h0, float(hw.max())), int(m.sum()), rms,
                      noise)


def choose_window(altitude_m: ArrayLike, refractivity: ArrayLike,
                  model: str = "exponential", max_iterations: int = 8) -> NeutralFit | None:
    """Fit window at the bottom of a profile, chosen from the data, and the fit on it.

    1. The candidate levels are the run of positive refractivity from the lowest level up
       (plasma refractivity is negative, so the run ends where the ionosphere takes over).
    2. First window: the lower third of that run (at least :data:`MIN_WINDOW_LEVELS`).
    3. Fit; the fit's plasma estimate is data minus fit. The new window extends from the
       bottom up to the last level below which every level's |data - fit| stays within
       :data:`PLASMA_NEGLIGIBLE` of the fit. Refit; repeat until the window no longer
       changes. If not even the :data:`MIN_WINDOW_LEVELS` lowest levels pass, there is no
       clean window (a noisy bottom, relative noise above ~1e-3, ends here too: nothing is
       fitted rather than a noise-driven extrapolation), except on coarse profiles, where
       two levels may do (:func:`_coarse_window`).

    Parameters
    ----------
    altitude_m, refractivity : array_like, shape (n,)
        Profile levels [m] (any order) and refractivity n - 1 [1].
    model : {"exponential", "exponential_gradient"}
    max_iterations : int

    Returns
    -------
    NeutralFit or None
        None when the bottom holds no clean neutral term (fewer than
        :data:`MIN_WINDOW_LEVELS` positive levels, plasma-contaminated ones, less than
        :data:`MIN_WINDOW_M`, a refractivity not decreasing upward, or a fitted scale height outside
        :data:`SCALE_HEIGHT_RANGE_M`).
    """
    _check_model(model, FIT_MODELS)
    h = np.asarray(altitude_m, float)
    nu = np.asarray(refractivity, float)
    order = np.argsort(h)
    h, nu = h[order], nu[order]
    nonpos = np.flatnonzero(~(nu > 0))
    run = int(nonpos[0]) if nonpos.size else h.size
    least = MIN_WINDOW_LEVELS[model]
    if run < least or h[run - 1] - h[0] < MIN_WINDOW_M:
        return _coarse_window(h, nu, run, model)
    top = max(least - 1, run // 3)
    fit = None
    for _ in range(max_iterations):
        try:
            fit = fit_neutral(h[:top + 1], nu[:top + 1], model)
        except RoharnessError:
            return None
        model_nu = fit.evaluate(h[:run])
        bad = np.flatnonzero(~(np.abs(nu[:run] / model_nu - 1.0) <= PLASMA_NEGLIGIBLE))
        new_top = (int(bad[0]) - 1) if bad.size else run - 1
        if new_top < least - 1:  # even the smallest window is not clean
            return _coarse_window(h, nu, run, model)
        if new_top == top:
            break
        top = new_top
    else:  # not settled: keep the last window that was fitted
        top = fit.levels - 1
    if fit is None or h[top] - h[0] < MIN_WINDOW_M:
        return None
    if not SCALE_HEIGHT_RANGE_M[0] <= fit.scale_height_m <= SCALE_HEIGHT_RANGE_M[1]:
        return None
    return fit


def _coarse_window(h, nu, run, model):
    """The two-level exponential of :func:`choose_window` on coarse profiles (sorted
    ``h``, ``nu``; ``run`` positive levels from the bottom), or None.

    Where the bottom levels are at least :data:`COARSE_STEP_M` apart, a clean neutral
    region may hold only two of them (the plasma's bottomside falls on a scale of 1-3 km).
    The exponential through them is used when the next level lies below its
    extrapolation (the negative plasma term, not noise, ends the window) and the scale
    height is physical; it is flagged by ``levels == 2``.
    """
    if model != "exponential" or run < 2 or h[1] - h[0] < COARSE_STEP_M:
        return None
    try:
        fit = fit_neutral(h[:2], nu[:2], "exponential", min_levels=2)
    except RoharnessError:
        return None
    if h.size > 2 and not nu[2] < fit.evaluate(h[2]):
        return None
    if not SCALE_HEIGHT_RANGE_M[0] <= fit.scale_height_m <= SCALE_HEIGHT_RANGE_M[1]:
        return None
    return fit


def _plasma_in_window(h, nu, fit):
    """The plasma refractivity magnitude [1] at each level, extrapolated down into the fit
    window from the two lowest levels above it (an exponential through the plasma part
    ``fit.evaluate(h) - nu`` there; zero outside the window and where no such pair exists).
    A Chapman bottomside falls faster than that going down, so this bounds the plasma the
    window's top levels hold rather than underestimating it."""
    lo, hi = fit.window_m
    order = np.argsort(h)
    hs, ps = h[order], (fit.evaluate(h) - nu)[order]
    j = np.flatnonzero((hs > hi) & np.isfinite(ps))[:2]
    out = np.zeros_like(h)
    if j.size < 2 or not (0.0 < ps[j[0]] < ps[j[1]]):
        return out
    scale = (hs[j[1]] - hs[j[0]]) / np.log(ps[j[1]] / ps[j[0]])
    inside = (h >= lo) & (h <= hi)
    out[inside] = ps[j[0]] * np.exp((h[inside] - hs[j[0]]) / scale)
    return out


def _alternatives(h, nu, fit, other_rejected=False):
    """Alternative fits for the error estimate: the same model on the lower and on the upper
    two thirds of the window's levels (at least its number of parameters; a window
    position that changes the fit shows the model's misfit to the true profile), the same
    model and window with the plasma extrapolated into the window removed
    (:func:`_plasma_in_window`: what plasma the window's top may hold, e.g. in a coarse
    two-level window that admits no other alternative) and, unless the data rejected it
    (:func:`select_model`), the other model on the same window.
    """
    lo, hi = fit.window_m
    inside = np.sort(h[(h >= lo) & (h <= hi)])
    keep = max(MIN_WINDOW_LEVELS[fit.model] - 1, int(np.ceil(2.0 * inside.size / 3.0)))
    cases = []
    above = np.sort(h[h > hi])
    if inside.size == 2 and above.size:  # coarse two-level window: with the next level
        cases.append((fit.model, (lo, above[0])))  # (plasma-contaminated: an upper bound)
    if keep < inside.size:
        cases += [(fit.model, (lo, inside[keep - 1])), (fit.model, (inside[-keep], hi))]
    if not other_rejected:
        cases.append((FIT_MODELS[1 - FIT_MODELS.index(fit.model)], (lo, hi)))
    out = []
    for model, window in cases:
        try:
            out.append(fit_neutral(h, nu, model, window, min_levels=1))
        except RoharnessError:
            continue
    plasma = _plasma_in_window(h, nu, fit)
    if np.any(plasma > 0):
        try:
            out.append(fit_neutral(h, nu + plasma, fit.model, fit.window_m, min_levels=1))
        except RoharnessError:
            pass
    return out


def select_model(altitude_m: ArrayLike, refractivity: ArrayLike
                 ) -> tuple[NeutralFit | None, bool]:
    """The neutral model the data support (``"auto"``), and whether they reject the other.

    Both models are fitted on windows of their own (:func:`choose_window`). The
    exponential is refitted on the gradient model's window; if its rms misfit there exceeds
    the gradient model's by more than :data:`CURVATURE_RATIO` (an F-test-like comparison
    of nested models: the extra parameter must explain the curvature of ln(n - 1), not
    noise or the inversion's smooth numerical error), the scale height measurably varies
    and the gradient model is chosen; otherwise the exponential (fewer parameters, a
    steadier extrapolation). A gradient window of fewer than
    :data:`MIN_CURVATURE_LEVELS` levels cannot show curvature: the exponential.

    Returns
    -------
    fit : NeutralFit or None
        None when no window is found for the exponential nor the gradient model.
    other_rejected : bool
        True when the data reject the exponential (the gradient model was chosen).
    """
    fit_e = choose_window(altitude_m, refractivity, "exponential")
    fit_g = choose_window(altitude_m, refractivity, "exponential_gradient")
    if fit_g is None or fit_g.levels < MIN_CURVATURE_LEVELS:
        return fit_e, False
    try:
        on_g = fit_neutral(altitude_m, refractivity, "exponential", fit_g.window_m)
    except RoharnessError:
        return fit_e, False
    if on_g.rms_rel > CURVATURE_RATIO * max(fit_g.rms_rel, np.finfo(float).eps):
        return fit_g, True
    return fit_e, False


def separate_neutral(altitude_m: ArrayLike, refractivity: ArrayLike, frequency_hz: float,
                     neutral: str = "auto") -> dict:
    r"""Fit and remove the neutral term of a single-frequency refractivity profile.

    Parameters
    ----------
    altitude_m, refractivity : array_like, shape (n,)
        Profile levels [m] and total refractivity n - 1 [1] at ``frequency_hz``.
    frequency_hz : float
        Carrier frequency [Hz] (to express the neutral error as an electron density,
        :math:`\delta N_e = \delta\nu f^2 / K`).
    neutral : {"auto", "none", "exponential", "exponential_gradient"}
        ``"none"``: nothing removed. ``"exponential"``/``"exponential_gradient"``: fit that
        model on the window of :func:`choose_window` and remove it; raise if the bottom
        holds no neutral term to fit. ``"auto"``: the exponential, removed only if it is
        detected (window found, relative noise below 1 / :data:`DETECTION_SNR`, the term
        above :data:`MIN_NEUTRAL_FRACTION` of the plasma peak refractivity), with the
        model the data support (:func:`select_model`);
        otherwise nothing is removed and ``status`` says why.

    Returns
    -------
    dict
        ``neutral_refractivity`` (array, 0 where nothing is removed) [1], ``status``
        (``"removed"``, ``"not_detected"``, ``"not_separable"``, ``"off"``), ``fit``
        (:class:`NeutralFit` or None), ``error_refractivity`` (array, the spread of the
        alternative fits) [1],
        (``status`` ``"not_separable"`` when ``"auto"`` sees a positive refractivity at the
        lowest level, above :data:`MIN_NEUTRAL_FRACTION` of the plasma peak, but no clean
        window -- a neutral the ionosphere overlaps or a residual of the drift
        correction: nothing is removed and ``error_*`` give the lowest level's refractivity as
        an N_e leak),
        ``error_m3`` and ``error_over_peak`` (its maximum as an N_e error over the levels
        whose corrected N_e exceeds :data:`SIGNIFICANT_FRACTION` of its peak) [m^-3], [1];
        NaN when the window is too short for any alternative fit. The alternatives
        include the fit with the plasma extrapolated down into the window removed
        (:func:`_plasma_in_window`), so a coarse two-level window whose top level still
        holds plasma reports it (measured: 1.24e-3 of the peak for an actual 7.9e-4).
        The estimate covers how well the data fix the chosen model, not a true profile
        outside both models (measured on hydrostatic profiles with a tanh temperature
        profile: the gradient model's actual error was up to 7x the estimate, both
        <= 4.1e-4 of the peak).

    Raises
    ------
    RoharnessError
        An explicit model and no neutral term found at the bottom of the profile.
    """
    _check_model(neutral, NEUTRAL_MODELS)
    h = np.asarray(altitude_m, float)
    nu = np.asarray(refractivity, float)
    zero = np.zeros_like(h)
    out = dict(neutral_refractivity=zero, status="off", fit=None, error_refractivity=zero,
               error_m3=0.0, error_over_peak=0.0)
    if neutral == "none":
        return out
    rejected = False
    if neutral == "auto":
        fit, rejected = select_model(h, nu)
    else:
        fit = choose_window(h, nu, neutral)
    if fit is not None and neutral == "auto":
        plasma_peak = float(np.nanmax(-nu)) if np.any(nu < 0) else 0.0
        if not (fit.noise_rel * DETECTION_SNR < 1.0
                and fit.refractivity_ref > MIN_NEUTRAL_FRACTION * plasma_peak):
            fit = None
    if fit is None:
        if neutral != "auto":
            raise RoharnessError(
                f"no neutral atmosphere to fit at the bottom of the profile (lowest level "
                f"{h.min() / 1e3:.1f} km): expected at least {MIN_WINDOW_LEVELS[neutral]} "
                "clean levels of positive refractivity decreasing upward with a scale height of "
                f"{SCALE_HEIGHT_RANGE_M[0] / 1e3:g}-{SCALE_HEIGHT_RANGE_M[1] / 1e3:g} km")
        lowest = float(nu[np.argmin(h)])
        plasma_peak = float(np.nanmax(-nu)) if np.any(nu < 0) else 0.0
        seen = lowest > MIN_NEUTRAL_FRACTION * plasma_peak
        # a positive bottom without a clean window: a neutral term the ionosphere overlaps
        # (it reaches too low, or the levels are too coarse), or an uncorrected residual
        # (measured: 4 of 5 drift-corrected mex-tgo-uhf-drift seeds end 30-90 noise sigma
        # above 0); its leak into N_e is about the bottom refractivity as a density
        # (reported, not removed)
        out["status"] = "not_separable" if seen else "not_detected"
        if seen and plasma_peak > 0:
            out["error_over_peak"] = lowest / plasma_peak
            out["error_m3"] = lowest * float(frequency_hz) ** 2 / K.PLASMA_K
        return out
    nu_n = fit.evaluate(h)
    nu_n = np.where(np.isfinite(nu_n), nu_n, 0.0)
    alternatives = _alternatives(h, nu, fit, rejected)
    spread = zero.copy() if alternatives else np.full(h.shape, np.nan)
    for alt in alternatives:  # undefined extrapolations (H through 0) count as 0, as above
        v = alt.evaluate(h)
        spread = np.maximum(spread, np.abs(np.where(np.isfinite(v), v, 0.0) - nu_n))
    scale = float(frequency_hz) ** 2 / K.PLASMA_K
    ne = -(nu - nu_n) * scale
    peak = float(np.nanmax(ne)) if np.any(np.isfinite(ne)) else np.nan
    sig = ne > SIGNIFICANT_FRACTION * peak if peak > 0 else np.zeros(h.shape, bool)
    err = float(np.max(spread[sig]) * scale) if sig.any() else 0.0
    out.update(neutral_refractivity=nu_n, status="removed", fit=fit,
               error_refractivity=spread, error_m3=err,
               error_over_peak=err / peak if peak > 0 else float("nan"))
    return out


def remove_neutral(profile: xr.Dataset, neutral: str = "auto") -> xr.Dataset:
    """Separate the neutral term of a retrieved profile in place (and return it).

    On a dual-frequency profile (``attrs["residual_kind"] == "dual_frequency"``) the
    differential Doppler has already cancelled the non-dispersive neutral term: ``"auto"``
    removes nothing and says so (an explicit model is still fitted, at the user's word).
    Otherwise :func:`separate_neutral` on ``altitude``/``refractivity``; the electron
    density is recomputed from the plasma part, ``refractivity`` stays the total.

    Adds the variables ``neutral_refractivity`` [1] and ``neutral_refractivity_error`` [1]
    and the attrs ``neutral_model``, ``neutral_status`` (``"removed"``, ``"not_detected"``,
    ``"not_separable"``, ``"off"``, ``"cancelled_by_dual_frequency"``), ``neutral_detected`` (0/1),
    ``neutral_error_m3``, ``neutral_error_over_peak`` and, when a fit was removed,
    ``neutral_reference_altitude_m``, ``neutral_refractivity_at_reference``,
    ``neutral_number_density_at_reference_m3``, ``neutral_scale_height_m``,
    ``neutral_scale_height_gradient``, ``neutral_window_bottom_m``,
    ``neutral_window_top_m``, ``neutral_window_levels``, ``neutral_fit_rms_rel``,
    ``neutral_noise_rel``.

    Parameters
    ----------
    profile : xarray.Dataset
        A profile of :func:`retrieval.electron_density.profile_dataset` (``refractivity``
        on ``altitude``, ``attrs["frequency_hz"]``).
    neutral : {"auto", "none", "exponential", "exponential_gradient"}

    Returns
    -------
    xarray.Dataset
    """
    _check_model(neutral, NEUTRAL_MODELS)
    variables, ne, attrs = _neutral_parts(profile["altitude"].values,
                                          profile["refractivity"].values, profile.attrs,
                                          neutral)
    if ne is not None:
        variables["electron_density"] = profile.variables["electron_density"].copy(data=ne)
    profile.update(variables)  # one update: each assignment would realign the Dataset
    profile.attrs.update(attrs)
    return profile


def _neutral_parts(h, nu, profile_attrs, neutral):
    """What :func:`remove_neutral` adds to a profile, from its ``altitude`` ``h`` [m],
    ``refractivity`` ``nu`` and attrs: ``(variables, ne, attrs)`` with ``variables`` the
    two new variables as ``(dims, values, attrs)``, ``ne`` the corrected electron density
    [m^-3] (None when nothing was removed) and ``attrs`` the new attrs
    (:func:`retrieval.electron_density.invert_observation` builds its Dataset with them)."""
    f = float(profile_attrs["frequency_hz"])
    if neutral == "auto" and profile_attrs.get("residual_kind") == "dual_frequency":
        res = separate_neutral(h, nu, f, "none")
        res["status"] = "cancelled_by_dual_frequency"
    else:
        res = separate_neutral(h, nu, f, neutral)
    fit = res["fit"]
    variables = {
        "neutral_refractivity": ("altitude", res["neutral_refractivity"], {
            "units": "1", "long_name": "neutral (CO2) refractivity removed before N_e"}),
        "neutral_refractivity_error": ("altitude", res["error_refractivity"], {
            "units": "1", "long_name": "spread of alternative neutral fits (error estimate)"}),
    }
    ne = None
    if res["status"] == "removed":
        ne = -(nu - res["neutral_refractivity"]) * f * f / K.PLASMA_K
    attrs = dict(neutral_model=fit.model if fit else "none", neutral_status=res["status"],
                 neutral_detected=int(fit is not None), neutral_error_m3=res["error_m3"],
                 neutral_error_over_peak=res["error_over_peak"])
    if fit is not None:
        attrs.update(neutral_reference_altitude_m=fit.reference_altitude_m,
                     neutral_refractivity_at_reference=fit.refractivity_ref,
                     neutral_number_density_at_reference_m3=fit.number_density_ref_m3,
                     neutral_scale_height_m=fit.scale_height_m,
                     neutral_scale_height_gradient=fit.scale_height_gradient,
                     neutral_window_bottom_m=fit.window_m[0],
                     neutral_window_top_m=fit.window_m[1],
                     neutral_window_levels=fit.levels, neutral_fit_rms_rel=fit.rms_rel,
                     neutral_noise_rel=fit.noise_rel)
    return variables, ne, attrs
