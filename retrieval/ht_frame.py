"""The de Hoffmann-Teller frame and the Walen test of a current-sheet crossing [1]_.

Used by :func:`retrieval.reconnection.analyse_sheet_crossing` over the ion moments of the
crossing; both names are re-exported by :mod:`retrieval.reconnection`.

References
----------
.. [1] Paschmann, G. and Sonnerup, B. U. O. (2008), Proper frame determination and Walen
   test, ISSI Scientific Report SR-008, ch. 7.
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc

from retrieval.errors import RoharnessError


def de_hoffmann_teller(v_m_s, b):
    """The de Hoffmann-Teller frame velocity ([1]_ eq. 7.5-7.6).

    :math:`\\mathbf V_{HT}` minimises :math:`D(\\mathbf V) = \\langle|(\\mathbf v - \\mathbf V)
    \\times \\mathbf B|^2\\rangle`, the residual convection electric field:

    .. math::

        K_0 \\mathbf V_{HT} = \\langle K \\mathbf v\\rangle, \\qquad
        K_{\\mu\\nu} = B^2 \\delta_{\\mu\\nu} - B_\\mu B_\\nu .

    Parameters
    ----------
    v_m_s : array_like (k, 3)
        Plasma bulk velocities [m/s].
    b : array_like (k, 3)
        Magnetic fields at the same times [any unit].

    Returns
    -------
    dict
        ``v_ht`` (3,) [m/s]; ``cc`` the correlation coefficient of the convection electric
        fields :math:`-\\mathbf v\\times\\mathbf B` and :math:`-\\mathbf V_{HT}\\times\\mathbf B`
        (all components pooled); ``d_ratio`` :math:`D(\\mathbf V_{HT})/D(0)`.
    """
    v = np.asarray(v_m_s, dtype=float)
    bb = np.asarray(b, dtype=float)
    if v.ndim != 2 or v.shape != bb.shape or v.shape[1] != 3 or v.shape[0] < 3:
        raise RoharnessError(f"the de Hoffmann-Teller analysis got velocities {v.shape} and "
                             f"fields {bb.shape}; expected matching (k, 3) with k >= 3.")
    b2 = np.einsum("ki,ki->k", bb, bb)
    kmat = b2[:, None, None] * np.eye(3) - bb[:, :, None] * bb[:, None, :]
    k0 = kmat.mean(0)
    rhs = np.einsum("kij,kj->i", kmat, v) / v.shape[0]
    try:
        v_ht = np.linalg.solve(k0, rhs)
    except np.linalg.LinAlgError:
        raise RoharnessError("the de Hoffmann-Teller matrix is singular: the field direction "
                             "does not vary; expected a rotating field.") from None
    e_c = -np.cross(v, bb)
    e_ht = -np.cross(v_ht, bb)
    cc = float(np.corrcoef(e_c.ravel(), e_ht.ravel())[0, 1])
    d0 = np.mean(np.sum(e_c**2, axis=1))
    d_ht = np.mean(np.sum((e_c - e_ht) ** 2, axis=1))
    return {"v_ht": v_ht, "cc": cc, "d_ratio": float(d_ht / d0) if d0 > 0 else np.nan}


def walen_test(v_m_s, b_t, n_m3, ion_mass_kg, v_ht=None):
    """The Walen test ([1]_ sec. 7.4): plasma velocity in the HT frame against the Alfven velocity.

    .. math::

        \\mathbf v - \\mathbf V_{HT} = s\\,\\mathbf v_A, \\qquad
        \\mathbf v_A = \\mathbf B / \\sqrt{\\mu_0 \\rho}

    fitted as a line through the origin over all components pooled; a rotational
    discontinuity (an Alfvenic jet) has :math:`|s| \\approx 1` (sign: the side of the X-line
    / direction of propagation relative to B) and correlation near +-1.

    Parameters
    ----------
    v_m_s : array_like (k, 3)
        Bulk velocities [m/s].
    b_t : array_like (k, 3)
        Fields [T].
    n_m3 : array_like (k,)
        Ion densities [m^-3].
    ion_mass_kg : float
        Ion mass [kg].
    v_ht : array_like (3,), optional
        HT velocity (default: :func:`de_hoffmann_teller` of these data).

    Returns
    -------
    dict
        ``slope`` s (least squares through the origin), ``correlation`` (Pearson r of the pooled
        components), ``v_ht`` [m/s].
    """
    v = np.asarray(v_m_s, dtype=float)
    bb = np.asarray(b_t, dtype=float)
    if v_ht is None:
        v_ht = de_hoffmann_teller(v, bb)["v_ht"]
    rho = np.asarray(n_m3, dtype=float) * float(ion_mass_kg)
    v_a = bb / np.sqrt(sc.mu_0 * rho)[:, None]
    x, y = v_a.ravel(), (v - np.asarray(v_ht)).ravel()
    slope = float(x @ y / (x @ x))
    return {"slope": slope, "correlation": float(np.corrcoef(x, y)[0, 1]),
            "v_ht": np.asarray(v_ht, dtype=float)}
