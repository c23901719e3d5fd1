"""Inverse Abel transform of a bending-angle profile (spherical symmetry).

Under spherical symmetry the bending angle :math:`\\alpha(a)` of a ray with impact
parameter :math:`a` and the refractive index :math:`n(r)` are an Abel pair [1]_ [2]_:

.. math::

    \\ln n(x_0) = \\frac{1}{\\pi} \\int_{x_0}^{\\infty}
                 \\frac{\\alpha(a)}{\\sqrt{a^2 - x_0^2}}\\, da ,
    \\qquad r = x_0 / n(x_0),

with :math:`x_0 = n(r)\\, r` the impact parameter of the ray whose closest approach is at
radius :math:`r` (Bouguer's rule). Sign convention: :math:`\\alpha > 0` bends the ray toward
the planet (then :math:`n > 1` below, as in a neutral atmosphere).

Numerical scheme
----------------
:math:`\\alpha(a)` is taken as piecewise linear between the samples and every segment is
integrated **exactly**. On :math:`[a_j, a_{j+1}]` write
:math:`\\alpha = \\alpha_j + q_j (a - a_j)`, :math:`q_j = (\\alpha_{j+1}-\\alpha_j)/h_j`; with
:math:`C(a) = \\operatorname{arccosh}(a/x_0)` and :math:`s(a) = \\sqrt{a^2 - x_0^2}`,

.. math::

    \\int_{a_j}^{a_{j+1}} \\frac{\\alpha(a)\\,da}{\\sqrt{a^2-x_0^2}}
      = \\alpha_j\\,\\Delta C_j + q_j\\,(\\Delta s_j - a_j\\,\\Delta C_j).

The kernel's singularity at :math:`a = x_0` is integrable and handled exactly by these
primitives (:math:`C(x_0) = s(x_0) = 0`); a segment straddling :math:`x_0` is integrated
from :math:`x_0` (lower limits are clamped, :math:`\\max(a_j, x_0)`), a segment below
contributes nothing. :math:`C` is evaluated as
:math:`\\operatorname{log1p}((a - x_0 + s)/x_0)` and :math:`s` as
:math:`\\sqrt{(a-x_0)(a+x_0)}` so that nothing cancels near the lower limit. The error is
second order in the grid spacing (piecewise-linear interpolation of a smooth
:math:`\\alpha`).

The segment integrals for all levels are built with numpy broadcasting, in blocks of rows
so that memory stays bounded (a full 4000 x 4000 float64 matrix would be 128 MB per
temporary; a block holds at most ``_BLOCK_ELEMENTS`` = 65536 elements, 0.5 MB, which also
keeps it in cache: measured 2-5x faster than one full matrix). A block of rows only needs
the columns at and above its lowest level, so the work is close to the upper triangle,
N^2/2. There is no Python loop over levels or segments (only over blocks of rows).

Above the top sample (``top=``)
-------------------------------
* ``"zero"`` (default): :math:`\\alpha = 0` above the highest impact parameter. Right for
  real data whose top is above the ionosphere (the ROSE archive's own convention: its top
  row has zero bending and zero refractivity).
* ``"exponential"``: :math:`\\alpha(a) = \\alpha_N \\exp[-(a - a_N)/H]` above the top sample
  :math:`a_N`, continuous with the top sample; :math:`H` is fitted by least squares to
  :math:`\\ln|\\alpha|` of the top ``top_fit_samples`` samples (which must share one sign and
  decay upward). The tail integral is evaluated with the substitution
  :math:`a = x_0 + v^2` (removing the singularity) and 48-point Gauss-Legendre quadrature.
  Use it when the profile stops inside the ionosphere (synthetic scenarios with a low top).

References
----------
.. [1] Fjeldbo, G., Kliore, A. J. and Eshleman, V. R. (1971), The neutral atmosphere of
   Venus as studied with the Mariner V radio occultation experiments, Astron. J. 76,
   123-140, doi:10.1086/111096.
.. [2] Withers, P. et al. (2014), Recommended observation strategies for radio occultation
   measurements of planetary atmospheres and ionospheres, Planet. Space Sci. 101, 77-88,
   doi:10.1016/j.pss.2014.06.011 (and references therein on the inverse Abel step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

#: Treatments of the bending angle above the top sample.
TOP_MODELS = ("zero", "exponential")

#: Maximum number of elements of one block of the segment-integral matrices.
_BLOCK_ELEMENTS = 1 << 16

#: Gauss-Legendre nodes and weights on [0, 1] for the exponential tail.
_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)
_GL_X = 0.5 * (_GL_X + 1.0)
_GL_W = 0.5 * _GL_W
#: The exponential tail is integrated up to exp(-_TAIL_E_FOLDS).
_TAIL_E_FOLDS = 40.0


def _check_profile(impact_parameter_m, bending_angle_rad):
    """Validate and sort the profile; return (a ascending, alpha, order)."""
    a = np.asarray(impact_parameter_m, dtype=float)
    alpha = np.asarray(bending_angle_rad, dtype=float)
    if a.ndim != 1 or alpha.shape != a.shape:
        raise RoharnessError(
            f"impact parameter and bending angle must be 1-D arrays of one length, got "
            f"shapes {a.shape} and {alpha.shape}")
    if a.size < 2:
        raise RoharnessError(
            f"the inverse Abel transform needs at least 2 samples, got {a.size}")
    bad = ~np.isfinite(a) | ~np.isfinite(alpha)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise RoharnessError(
            f"the bending-angle profile has {int(bad.sum())} NaN or infinite samples (first "
            f"at index {i}); expected finite impact parameters and bending angles")
    if np.any(a <= 0.0):
        raise RoharnessError("impact parameters must be positive distances from the centre "
                             "of the planet [m]")
    step = np.diff(a)
    if np.all(step > 0):
        order = np.arange(a.size)
    elif np.all(step < 0):
        order = np.arange(a.size)[::-1]
    else:
        i = int(np.flatnonzero(np.sign(step) != np.sign(step[0]))[0]) + 1 \
            if step[0] != 0 else 1
        raise RoharnessError(
            f"impact parameters are not strictly monotonic (at sample {i}): the inverse Abel "
            "transform needs a strictly ascending or descending profile")
    return a[order], alpha[order], order


def _exponential_tail_scale(a, alpha, n_fit):
    """Scale height [m] of an exponential fitted to the top ``n_fit`` samples of |alpha|."""
    n_fit = int(n_fit)
    if n_fit < 2 or n_fit > a.size:
        raise RoharnessError(
            f"top_fit_samples must be between 2 and the number of samples ({a.size}), got "
            f"{n_fit}")
    at, al = a[-n_fit:], alpha[-n_fit:]
    if not (np.all(al > 0) or np.all(al < 0)):
        raise RoharnessError(
            f"the top {n_fit} bending angles change sign or are zero, so no exponential can "
            "be fitted above the top sample; use top='zero' or fewer top_fit_samples")
    slope = np.polyfit(at - at[-1], np.log(np.abs(al)), 1)[0]
    if not slope < 0:
        raise RoharnessError(
            f"the top {n_fit} bending angles do not decay with height (fitted log-slope "
            f"{slope:.3g} per m), so no exponential can be extrapolated above the top; use "
            "top='zero'")
    return -1.0 / slope


def _exponential_tail(x0, a_top, alpha_top, scale_m):
    """Exact-to-quadrature tail integral above ``a_top`` for every level ``x0``.

    .. math:: T(x_0) = \\int_{a_N}^{\\infty} \\frac{\\alpha_N e^{-(a-a_N)/H}}
              {\\sqrt{a^2-x_0^2}} da
              = 2\\alpha_N \\int_0^{W} \\frac{e^{-(2\\sqrt{d}\\,w + w^2)/H}}
              {\\sqrt{2x_0 + (\\sqrt{d} + w)^2}} dw,

    with :math:`a = x_0 + (\\sqrt{d} + w)^2`, :math:`d = a_N - x_0` and :math:`W` the point
    where the exponent reaches ``_TAIL_E_FOLDS``: the integrand is smooth (no singularity).
    """
    d = a_top - x0
    rd = np.sqrt(d)
    w_max = np.sqrt(d + _TAIL_E_FOLDS * scale_m) - rd
    w = w_max[:, None] * _GL_X[None, :]
    v = rd[:, None] + w
    f = np.exp(-(2.0 * rd[:, None] * w + w * w) / scale_m) / np.sqrt(2.0 * x0[:, None] + v * v)
    return 2.0 * alpha_top * w_max * (f @ _GL_W)


def _segment_sums(a, alpha, x0):
    r"""Sum of the exact segment integrals of piecewise-linear alpha for each level x0.

    ``a`` ascending, ``x0`` ascending. Summation by parts turns the segment sum into a sum
    over nodes with row-independent weights: with the primitives clamped at the level
    (:math:`C_k = s_k = 0` for :math:`a_k \le x_0`),

    .. math::

        \sum_j [\alpha_j \Delta C_j + q_j(\Delta s_j - a_j \Delta C_j)]
        = \sum_k u_k (s_k - a_k C_k) + \alpha_N C_N,
        \quad u_k = q_{k-1} - q_k \;(q_{-1} = q_N = 0),

    (continuity of :math:`\alpha` at the nodes), so one matrix of node kernels
    :math:`s_k - a_k C_k` and one matrix-vector product do all levels. Rows are processed
    in blocks; a block needs only the nodes from its lowest level upward.
    """
    n = a.size
    q = np.diff(alpha) / np.diff(a)
    u = np.empty(n)
    u[0] = -q[0]
    u[1:-1] = q[:-1] - q[1:]
    u[-1] = q[-1]
    out = np.empty(x0.size)
    rows_per_block = max(1, min(x0.size, _BLOCK_ELEMENTS // n))
    for i0 in range(0, x0.size, rows_per_block):  # blocks of rows, not a loop over levels
        i1 = min(i0 + rows_per_block, x0.size)
        x = x0[i0:i1, None]
        j0 = max(0, int(np.searchsorted(a, x0[i0], side="right")) - 1)
        aj = a[None, j0:]
        d = aj - x
        np.maximum(d, 0.0, out=d)                        # clamped (a_k - x0), exact
        s = d + 2.0 * x
        s *= d
        np.sqrt(s, out=s)                                # sqrt(a_k^2 - x0^2)
        c = d + s
        c *= 1.0 / x
        np.log1p(c, out=c)                               # arccosh(a_k / x0)
        top = c[:, -1] * alpha[-1]
        c *= aj
        s -= c                                           # s_k - a_k C_k
        out[i0:i1] = s @ u[j0:] + top
    return out


def inverse_abel(impact_parameter_m: ArrayLike, bending_angle_rad: ArrayLike, *,
                 top: str = "zero", top_fit_samples: int = 10) -> np.ndarray:
    """Natural log of the refractive index at each impact parameter (inverse Abel).

    .. math::

        \\ln n(x_0) = \\frac{1}{\\pi}\\int_{x_0}^{\\infty}
                     \\frac{\\alpha(a)}{\\sqrt{a^2 - x_0^2}}\\,da

    evaluated at every sample :math:`x_0 = a_i`, with :math:`\\alpha` piecewise linear in
    :math:`a` and each segment integrated exactly (see the module notes).

    Parameters
    ----------
    impact_parameter_m : array_like, shape (n,)
        Impact parameters :math:`a` [m], strictly ascending or strictly descending.
    bending_angle_rad : array_like, shape (n,)
        Bending angles :math:`\\alpha(a)` [rad], positive toward the planet.
    top : {"zero", "exponential"}
        Treatment above the highest impact parameter (module notes).
    top_fit_samples : int
        Number of top samples the ``"exponential"`` scale height is fitted to.

    Returns
    -------
    log_refractive_index : ndarray, shape (n,)
        :math:`\\ln n` at each input sample, in the input order [1].

    Raises
    ------
    RoharnessError
        NaN/inf samples, a non-monotonic grid, or a tail that cannot be fitted.
    ValueError
        Unknown ``top`` model.
    """
    if top not in TOP_MODELS:
        raise ValueError(f"unknown top model {top!r}; known: {', '.join(TOP_MODELS)}")
    a, alpha, order = _check_profile(impact_parameter_m, bending_angle_rad)
    total = _segment_sums(a, alpha, a)
    if top == "exponential":
        scale = _exponential_tail_scale(a, alpha, top_fit_samples)
        total += _exponential_tail(a, a[-1], alpha[-1], scale)
    out = np.empty_like(total)
    out[order] = total / np.pi
    return out


def radius_from_impact_parameter(impact_parameter_m, log_refractive_index):
    """Radius of closest approach :math:`r = a / n` [m] (Bouguer's rule with n at r)."""
    return np.asarray(impact_parameter_m, float) * np.exp(-np.asarray(log_refractive_index,
                                                                      float))


def invert_bending_angle(impact_parameter_m: ArrayLike, bending_angle_rad: ArrayLike, *,
                         top: str = "zero", top_fit_samples: int = 10
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Radius and refractivity from a bending-angle profile.

    Parameters
    ----------
    impact_parameter_m, bending_angle_rad, top, top_fit_samples
        As in :func:`inverse_abel`.

    Returns
    -------
    radius_m : ndarray
        :math:`r = a/n(r)` [m], in the input order.
    refractivity : ndarray
        :math:`n - 1 = \\operatorname{expm1}(\\ln n)` [1], in the input order.
    """
    log_n = inverse_abel(impact_parameter_m, bending_angle_rad, top=top,
                         top_fit_samples=top_fit_samples)
    return radius_from_impact_parameter(impact_parameter_m, log_n), np.expm1(log_n)
