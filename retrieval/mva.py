"""Minimum variance analysis (MVA) of a magnetic field series across a current sheet.

Given M field vectors :math:`\\mathbf B^{(m)}` the magnetic variance matrix is

.. math::

    M_{\\mu\\nu} = \\langle B_\\mu B_\\nu \\rangle
        - \\langle B_\\mu \\rangle \\langle B_\\nu \\rangle

(normalised by 1/M, as in [1]_). Its eigenvalues :math:`\\lambda_1 \\ge \\lambda_2 \\ge
\\lambda_3` and unit eigenvectors :math:`\\mathbf x_1, \\mathbf x_2, \\mathbf x_3` give the
directions of maximum, intermediate and minimum variance. For a one-dimensional current
sheet :math:`\\mathbf x_3` estimates the normal ``N``, :math:`\\mathbf x_1` the direction ``L``
of the reversing field and :math:`\\mathbf x_2` the out-of-plane (X-line) direction ``M``.

Sign convention (eigenvectors are defined only up to sign; this module fixes it so that
results are reproducible and comparable with the ISSI worked example of [1]_):

1. :math:`\\mathbf x_3` has a non-negative component along ``n_ref`` if given, otherwise its
   component of largest magnitude is positive;
2. :math:`\\mathbf x_1` has a non-negative component along ``l_ref`` if given, otherwise
   :math:`\\langle \\mathbf B \\rangle \\cdot \\mathbf x_1 \\ge 0`;
3. :math:`\\mathbf x_2 = \\mathbf x_3 \\times \\mathbf x_1`, so the triad is right-handed
   (:math:`\\mathbf x_1 \\times \\mathbf x_2 = \\mathbf x_3`, i.e. ``M = N x L``).

For the AMPTE/IRM example this reproduces the published signs of all three vectors.

Statistical errors (Sonnerup & Scheible [1]_, eq. 8.23-8.24), for M independent samples:

.. math::

    \\Delta\\varphi_{ij} = \\sqrt{\\frac{\\lambda_3 (\\lambda_i + \\lambda_j - \\lambda_3)}
                                  {(M - 1)(\\lambda_i - \\lambda_j)^2}}  \\; [\\mathrm{rad}],

    \\Delta \\langle \\mathbf B \\cdot \\mathbf x_3 \\rangle = \\sqrt{\\frac{\\lambda_3}{M-1}
        + (\\Delta\\varphi_{32} \\langle \\mathbf B \\rangle \\cdot \\mathbf x_2)^2
        + (\\Delta\\varphi_{31} \\langle \\mathbf B \\rangle \\cdot \\mathbf x_1)^2 }.

:math:`\\Delta\\varphi_{32}` is the rotation of the normal towards :math:`\\mathbf x_2`,
:math:`\\Delta\\varphi_{31}` towards :math:`\\mathbf x_1`. Correlated noise lowers the number
of independent samples; pass ``n_independent`` to use an effective number instead of M.

Constrained MVA (<B_n> = 0, [1]_ section 8.2.6): with :math:`\\hat{\\mathbf e} =
\\langle\\mathbf B\\rangle / |\\langle\\mathbf B\\rangle|` and
:math:`P = I - \\hat{\\mathbf e}\\hat{\\mathbf e}^T`, the normal is the eigenvector of
:math:`P M P` with the smallest non-zero eigenvalue (``e`` itself has eigenvalue 0).

References
----------
.. [1] Sonnerup, B. U. O. and Scheible, M. (1998), Minimum and maximum variance analysis,
   in Analysis Methods for Multi-Spacecraft Data, ISSI Scientific Report SR-001, ch. 8,
   pp. 185-220, ESA Publications Division. https://www.issibern.ch/forads/sr-001-08.pdf
.. [2] Khrabrov, A. V. and Sonnerup, B. U. O. (1998), Error estimates for minimum variance
   analysis, J. Geophys. Res. 103(A4), 6641-6651, doi:10.1029/97JA03731.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from numpy.typing import ArrayLike

__all__ = ["MVAResult", "variance_matrix", "minimum_variance", "sonnerup_scheible_errors",
           "to_lmn"]


@dataclass(frozen=True)
class MVAResult:
    """Result of :func:`minimum_variance` (arrays carry any leading batch dimensions).

    Attributes
    ----------
    eigenvalues : ndarray (..., 3)
        :math:`\\lambda_1 \\ge \\lambda_2 \\ge \\lambda_3` [unit of B squared]. For the
        constrained analysis these are the Rayleigh quotients :math:`x_i^T M x_i`.
    eigenvectors : ndarray (..., 3, 3)
        Rows ``x1`` (max, L), ``x2`` (intermediate, M), ``x3`` (min, N) in the input frame.
    ratio_12, ratio_23 : ndarray (...)
        :math:`\\lambda_1/\\lambda_2` and :math:`\\lambda_2/\\lambda_3`.
    dphi_21, dphi_31, dphi_32 : ndarray (...)
        Sonnerup-Scheible angular errors [rad].
    mean_b : ndarray (..., 3)
        Mean field [unit of B].
    bn_mean, bn_error : ndarray (...)
        :math:`\\langle \\mathbf B\\cdot\\mathbf x_3\\rangle` and its error [unit of B].
    n_samples : int
        Number of vectors M; ``n_independent`` the number used in the errors.
    constrained : bool
        True for the <B_n> = 0 analysis.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    ratio_12: np.ndarray
    ratio_23: np.ndarray
    dphi_21: np.ndarray
    dphi_31: np.ndarray
    dphi_32: np.ndarray
    mean_b: np.ndarray
    bn_mean: np.ndarray
    bn_error: np.ndarray
    n_samples: int
    n_independent: float
    constrained: bool

    @property
    def l(self):  # noqa: E743 - the physics name
        """Maximum-variance direction x1 (L)."""
        return self.eigenvectors[..., 0, :]

    @property
    def m(self):
        """Intermediate-variance direction x2 (M = N x L)."""
        return self.eigenvectors[..., 1, :]

    @property
    def n(self):
        """Minimum-variance direction x3 (the normal N)."""
        return self.eigenvectors[..., 2, :]


def _as_field(b) -> np.ndarray:
    b = np.asarray(b, dtype=float)
    if b.ndim < 2 or b.shape[-1] != 3:
        raise RoharnessError(
            f"the field for minimum variance analysis has shape {b.shape}; expected "
            "(..., M, 3) vectors."
        )
    if b.shape[-2] < 3:
        raise RoharnessError(
            f"minimum variance analysis got {b.shape[-2]} field vectors; at least 3 are needed."
        )
    if not np.all(np.isfinite(b)):
        raise RoharnessError("the field for minimum variance analysis contains NaN or inf values.")
    return b


def variance_matrix(b) -> np.ndarray:
    """Magnetic variance matrix with 1/M normalisation.

    Parameters
    ----------
    b : array_like (..., M, 3)
        Field vectors [any unit].

    Returns
    -------
    ndarray (..., 3, 3)
        :math:`M_{\\mu\\nu} = \\langle B_\\mu B_\\nu\\rangle - \\langle B_\\mu\\rangle
        \\langle B_\\nu\\rangle` [unit squared].
    """
    b = _as_field(b)
    d = b - b.mean(axis=-2, keepdims=True)
    return np.einsum("...mi,...mj->...ij", d, d) / b.shape[-2]


def sonnerup_scheible_errors(eigenvalues, n_samples):
    """Statistical angular errors of the MVA eigenvectors ([1]_ eq. 8.23).

    Parameters
    ----------
    eigenvalues : array_like (..., 3)
        :math:`\\lambda_1 \\ge \\lambda_2 \\ge \\lambda_3`.
    n_samples : float
        Number of independent samples M.

    Returns
    -------
    dphi_21, dphi_31, dphi_32 : ndarray
        :math:`\\Delta\\varphi_{ij} = \\sqrt{\\lambda_3(\\lambda_i+\\lambda_j-\\lambda_3) /
        ((M-1)(\\lambda_i-\\lambda_j)^2)}` [rad]; inf for degenerate eigenvalues.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    l1, l2, l3 = lam[..., 0], lam[..., 1], lam[..., 2]
    m1 = float(n_samples) - 1.0

    def dphi(li, lj):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(l3 * (li + lj - l3) / (m1 * (li - lj) ** 2))

    return dphi(l2, l1), dphi(l3, l1), dphi(l3, l2)


def _orient(vec, ref):
    """Flip ``vec`` (..., 3) so that vec . ref >= 0 (ref broadcastable)."""
    s = np.sign(np.einsum("...i,...i->...", vec, ref))
    s = np.where(s == 0, 1.0, s)
    return vec * s[..., None]


def minimum_variance(b: ArrayLike, *, constrain_bn: bool = False,
                     n_ref: ArrayLike | None = None, l_ref: ArrayLike | None = None,
                     n_independent: int | None = None) -> MVAResult:
    """Minimum variance analysis of field vectors (see the module docstring).

    Parameters
    ----------
    b : array_like (..., M, 3)
        Field vectors [nT or T; errors come out in the same unit]. Leading dimensions are
        independent analyses (vectorised, e.g. for Monte Carlo runs).
    constrain_bn : bool
        Impose :math:`\\langle \\mathbf B\\cdot\\mathbf n\\rangle = 0` ([1]_ sec. 8.2.6).
    n_ref, l_ref : array_like (3,) or (..., 3), optional
        Reference directions fixing the signs of x3 and x1 (module docstring).
    n_independent : float, optional
        Effective number of independent samples for the errors (default M).

    Returns
    -------
    MVAResult
    """
    b = _as_field(b)
    m_samples = b.shape[-2]
    n_ind = float(m_samples if n_independent is None else n_independent)
    if not n_ind > 1.0:
        raise RoharnessError(
            f"n_independent = {n_independent} for minimum variance analysis; expected a "
            "number of independent samples greater than 1."
        )
    mat = variance_matrix(b)
    mean_b = b.mean(axis=-2)
    if constrain_bn:
        e = mean_b / np.linalg.norm(mean_b, axis=-1, keepdims=True)
        proj = np.eye(3) - e[..., :, None] * e[..., None, :]
        w, v = np.linalg.eigh(proj @ mat @ proj)
        vecs = np.swapaxes(v, -1, -2)  # rows ascending: ~e (0), normal, max
        # the normal: the direction perpendicular to e in the span of the two smallest
        # eigenvectors. Usually that is the second one; when the data have no variance
        # along the normal either (noise-free), both eigenvalues are round-off and the
        # eigen solver returns any orthonormal pair of that plane
        v0, v1 = vecs[..., 0, :], vecs[..., 1, :]
        d0 = np.einsum("...i,...i->...", v0, e)[..., None]
        d1 = np.einsum("...i,...i->...", v1, e)[..., None]
        x3 = d1 * v0 - d0 * v1
        x3 = x3 / np.linalg.norm(x3, axis=-1, keepdims=True)
        x1 = vecs[..., 2, :]
        lam_other = w[..., 2]
    else:
        w, v = np.linalg.eigh(mat)
        vecs = np.swapaxes(v, -1, -2)  # rows in ascending eigenvalue order
        x3 = vecs[..., 0, :]
        x1 = vecs[..., 2, :]
    # sign convention 1: normal
    if n_ref is not None:
        x3 = _orient(x3, np.asarray(n_ref, dtype=float))
    else:
        idx = np.argmax(np.abs(x3), axis=-1)
        big = np.take_along_axis(x3, idx[..., None], axis=-1)
        x3 = x3 * np.where(big < 0, -1.0, 1.0)
    # sign convention 2: maximum-variance direction
    x1 = _orient(x1, mean_b if l_ref is None else np.asarray(l_ref, dtype=float))
    # convention 3: right-handed triad
    x2 = np.cross(x3, x1)
    vectors = np.stack([x1, x2, x3], axis=-2)
    rq = np.einsum("...ki,...ij,...kj->...k", vectors, mat, vectors)  # Rayleigh quotients
    if constrain_bn:
        lam = rq
        lam3, lam_o = np.maximum(rq[..., 2], 0.0), lam_other  # >= 0 (round-off when noise-free)
        with np.errstate(divide="ignore", invalid="ignore"):
            d_n = np.sqrt(lam3 * lam_o / ((n_ind - 1.0) * (lam_o - lam3) ** 2))
        nan = np.full_like(d_n, np.nan)
        d21, d31, d32 = nan, d_n, nan
        bn_err = np.sqrt(lam3 / (n_ind - 1.0))
    else:
        lam = w[..., ::-1]
        d21, d31, d32 = sonnerup_scheible_errors(lam, n_ind)
        bx1 = np.einsum("...i,...i->...", mean_b, x1)
        bx2 = np.einsum("...i,...i->...", mean_b, x2)
        bn_err = np.sqrt(lam[..., 2] / (n_ind - 1.0) + (d32 * bx2) ** 2 + (d31 * bx1) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        r12 = lam[..., 0] / lam[..., 1]
        r23 = lam[..., 1] / lam[..., 2]
    return MVAResult(
        eigenvalues=lam, eigenvectors=vectors, ratio_12=r12, ratio_23=r23,
        dphi_21=d21, dphi_31=d31, dphi_32=d32, mean_b=mean_b,
        bn_mean=np.einsum("...i,...i->...", mean_b, x3), bn_error=bn_err,
        n_samples=m_samples, n_independent=n_ind, constrained=bool(constrain_bn),
    )


def to_lmn(b, basis) -> np.ndarray:
    """Components of vectors in the LMN basis.

    Parameters
    ----------
    b : array_like (..., 3)
        Vectors in the frame of ``basis`` (e.g. MSO).
    basis : array_like (3, 3)
        Rows L, M, N (e.g. ``MVAResult.eigenvectors``).

    Returns
    -------
    ndarray (..., 3)
        :math:`(\\mathbf b\\cdot\\mathbf L, \\mathbf b\\cdot\\mathbf M,
        \\mathbf b\\cdot\\mathbf N)`.
    """
    basis = np.asarray(basis, dtype=float)
    if basis.shape != (3, 3):
        raise RoharnessError(f"an LMN basis has shape {basis.shape}; expected (3, 3) rows L, M, N.")
    return np.asarray(b, dtype=float) @ basis.T
