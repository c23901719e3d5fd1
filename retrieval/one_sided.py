"""Rays that end inside the atmosphere: the one-sided (truncated) half-path correction.

The inverse Abel transform (:mod:`retrieval.abel`) assumes that both ends of every ray lie
outside the refracting medium, so that the measured bending angle is the full two-sided
integral

.. math::

    \\alpha(a) = -2a \\int_a^{\\infty} \\frac{d\\ln n/dx}{\\sqrt{x^2 - a^2}}\\, dx,
    \\qquad x = n(r)\\, r .

A spacecraft inside the ionosphere (MAVEN near its ~150 km periapsis; a low orbiter in a
dense topside) receives or sends the ray at radius :math:`r_s` with :math:`x_s = n(r_s)\\,
r_s > a`: on its side the ray misses the medium above :math:`x_s`, so the observed bending
is short by one half-path above the end [1]_ [2]_,

.. math::

    \\alpha_{\\rm obs}(a) = \\alpha(a) - \\sum_{\\rm ends}\\, \\beta(a; x_s), \\qquad
    \\beta(a; x_s) = -a \\int_{x_s}^{\\infty} \\frac{d\\ln n/dx}{\\sqrt{x^2-a^2}}\\, dx .

The medium above :math:`x_s` is sounded by the same occultation: every ray whose tangent
point lies above the end crossed it. :func:`complete_bending` therefore adds
:math:`\\beta` computed from the profile retrieved so far and inverts again, until the
profile stops changing. Each :math:`\\beta(a_j; x_s)` depends only on :math:`n` above
:math:`x_s > a_j`, i.e. on levels above ray :math:`j`, so the fixed point is reached from
the top down in a few iterations. The integrand is regular (:math:`x \\ge x_s > a`): a
cubic spline of :math:`\\ln n(x)` on the retrieved levels gives :math:`d\\ln n/dx`, and each
level interval above :math:`x_s` is integrated with 4-point Gauss-Legendre. Above the
highest level the medium is taken as vacuum, or as an exponential of scale
``top_scale_height_m`` continuous with the top level when the Abel top model is one.

References
----------
.. [1] Schreiner, W. S., Sokolovskiy, S. V., Rocken, C. and Hunt, D. C. (1999), Analysis
   and validation of GPS/MET radio occultation data in the ionosphere, Radio Sci. 34(4),
   949-966, doi:10.1029/1999RS900034 (the receiver inside the ionosphere; its rays'
   missing half-path above the orbit).
.. [2] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), The neutral atmosphere of
   Venus as studied with the Mariner V radio occultation experiments, Astron. J. 76,
   123-140, doi:10.1086/111096 (the bending integral along each half of the ray).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from scipy.interpolate import CubicSpline

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: Gauss-Legendre nodes and weights on [0, 1] (4 points per level interval).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W
#: 48-point rule for the exponential tail above the top level.
_GT_X, _GT_W = np.polynomial.legendre.leggauss(48)
_GT_X = 0.5 * (_GT_X + 1.0)
_GT_W = 0.5 * _GT_W
#: The tail is integrated over this many scale heights.
_TAIL_E_FOLDS = 40.0
#: Maximum number of elements of one block of the (rays x nodes) kernel matrix.
_BLOCK_ELEMENTS = 1 << 18


def half_path_bending(impact_parameter_m: ArrayLike, end_x_m: ArrayLike,
                      level_x_m: ArrayLike, log_n: ArrayLike, *,
                      top_scale_height_m: float | None = None) -> np.ndarray:
    """Bending of one half-path above the end of each ray, :math:`\\beta(a; x_s)` [rad].

    .. math:: \\beta(a; x_s) = -a \\int_{x_s}^{\\infty}
              \\frac{d\\ln n/dx}{\\sqrt{x^2-a^2}}\\, dx

    Parameters
    ----------
    impact_parameter_m : array_like, shape (m,)
        Impact parameter :math:`a` of each ray [m].
    end_x_m : array_like, shape (m,)
        :math:`x_s = n(r_s)\\, r_s` of the ray's end [m]; must exceed ``impact_parameter_m``.
        Ends above the highest level contribute only the tail (zero without one).
    level_x_m : array_like, shape (k,)
        :math:`x = n r` of the profile levels (the Abel output's impact parameters) [m],
        strictly monotonic.
    log_n : array_like, shape (k,)
        :math:`\\ln n` at those levels [1].
    top_scale_height_m : float, optional
        Scale height [m] of an exponential :math:`\\ln n` above the top level (continuous
        with it); None = vacuum above the top level.

    Returns
    -------
    ndarray, shape (m,)
        :math:`\\beta` [rad], positive toward the planet (as the bending angle).
    """
    a = np.asarray(impact_parameter_m, float)
    xs = np.asarray(end_x_m, float)
    x = np.asarray(level_x_m, float)
    ln = np.asarray(log_n, float)
    if a.shape != xs.shape or x.shape != ln.shape or x.ndim != 1 or x.size < 4:
        raise RoharnessError(
            f"half_path_bending needs matching rays (got {a.shape} and {xs.shape}) and at "
            f"least 4 matching levels (got {x.shape} and {ln.shape})")
    if np.any(xs <= a):
        i = int(np.flatnonzero(xs <= a)[0])
        raise RoharnessError(
            f"ray {i} ends at x = {xs[i]:.1f} m, not above its impact parameter {a[i]:.1f} m: "
            "an end of a ray cannot lie below the ray's tangent point")
    order = np.argsort(x)
    x, ln = x[order], ln[order]
    dlog = CubicSpline(x, ln).derivative()
    out = np.zeros(a.size)
    inside = xs < x[-1]
    if inside.any():
        out[inside] = _levels_part(a[inside], xs[inside], x, dlog)
    if top_scale_height_m is not None and np.isfinite(top_scale_height_m):
        out += _tail_part(a, np.maximum(xs, x[-1]), x[-1], ln[-1], float(top_scale_height_m))
    return out


def _levels_part(a, xs, x, dlog: Callable):
    """-a * integral of dlog/sqrt(x^2 - a^2) from xs to the top level, per ray."""
    lo, hi = x[:-1], x[1:]
    nodes = lo[:, None] + (hi - lo)[:, None] * _GL_X[None, :]          # (k-1, 4)
    weights = (hi - lo)[:, None] * _GL_W[None, :]
    wd = (weights * dlog(nodes)).ravel()
    xn = nodes.ravel()
    seg = np.repeat(np.arange(lo.size), _GL_X.size)
    k0 = np.searchsorted(x, xs, side="right") - 1                       # interval of xs
    out = np.empty(a.size)
    rows = max(1, _BLOCK_ELEMENTS // xn.size)
    for i0 in range(0, a.size, rows):
        i1 = min(i0 + rows, a.size)
        aa = a[i0:i1, None]
        use = seg[None, :] > k0[i0:i1, None]                            # whole intervals
        d = np.where(use, xn[None, :] - aa, 1.0)
        kern = np.where(use, 1.0 / np.sqrt(d * (xn[None, :] + aa)), 0.0)
        out[i0:i1] = kern @ wd
    # the partial interval [xs, x_{k0+1}]
    top = x[np.minimum(k0 + 1, x.size - 1)]
    width = np.maximum(top - xs, 0.0)
    pn = xs[:, None] + width[:, None] * _GL_X[None, :]
    out += (width[:, None] * _GL_W[None, :] * dlog(pn)
            / np.sqrt((pn - a[:, None]) * (pn + a[:, None]))).sum(axis=1)
    return -a * out


def _tail_part(a, start, x_top, log_n_top, scale):
    """-a * integral above ``start`` (>= x_top) of the exponential tail's d ln n/dx."""
    w = start[:, None] + _TAIL_E_FOLDS * scale * _GT_X[None, :]
    dlog = -log_n_top / scale * np.exp(-(w - x_top) / scale)
    return -a * (_TAIL_E_FOLDS * scale * (_GT_W[None, :] * dlog
                                          / np.sqrt((w - a[:, None]) * (w + a[:, None])))
                 ).sum(axis=1)


def complete_bending(impact_parameter_m: ArrayLike, bending_angle_rad: ArrayLike,
                     end_radius_m: ArrayLike, invert: Callable[[np.ndarray], np.ndarray], *,
                     top_scale_height_m: float | None = None, max_iterations: int = 8,
                     tolerance: float = 1e-6) -> dict:
    """Add the missing half-paths of rays that end inside the medium, self-consistently.

    Parameters
    ----------
    impact_parameter_m, bending_angle_rad : array_like, shape (m,)
        The observed rays [m], [rad].
    end_radius_m : array_like, shape (m, e)
        Radius [m] of each of the ray's ``e`` ends that may lie inside the medium (Mars-side
        spacecraft); NaN or anything above the top level plus the tail contributes nothing.
    invert : callable
        ``invert(bending) -> log_n`` at the same rays: the Abel inversion used (with its own
        top model and scheme).
    top_scale_height_m : float, optional
        Scale height of the exponential top the inversion assumes (None: vacuum above).
    max_iterations : int
        Upper limit on the fixed-point iterations.
    tolerance : float
        Stop when :math:`\\ln n` changes by less than this fraction of its largest
        magnitude.

    Returns
    -------
    dict
        ``bending_angle`` (completed, [rad]), ``log_n`` (its inversion), ``correction``
        (added [rad]), ``iterations``, ``converged`` (bool).
    """
    a = np.asarray(impact_parameter_m, float)
    alpha = np.asarray(bending_angle_rad, float)
    ends = np.asarray(end_radius_m, float).reshape(a.size, -1)
    log_n = invert(alpha)
    corr = np.zeros_like(alpha)
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        corr = np.zeros_like(alpha)
        for e in range(ends.shape[1]):
            r = ends[:, e]
            ok = np.isfinite(r)
            if not ok.any():
                continue
            # x_s = n(r_s) r_s: ln n at the end, interpolated in x ~ r (ln n ~ 1e-8 moves x
            # by centimetres, far below the level spacing)
            xs = r[ok] * np.exp(np.interp(r[ok], np.sort(a), log_n[np.argsort(a)],
                                          right=0.0))
            corr[ok] += half_path_bending(a[ok], xs, a, log_n,
                                          top_scale_height_m=top_scale_height_m)
        new = invert(alpha + corr)
        change = float(np.max(np.abs(new - log_n)))
        log_n = new
        if change <= tolerance * max(float(np.max(np.abs(log_n))), 1e-300):
            converged = True
            break
    return dict(bending_angle=alpha + corr, log_n=log_n, correction=corr, iterations=iterations,
                converged=converged)
