"""Shared plumbing of the ray models in :mod:`synth.raytrace`: input checks, status codes and
the straight-line geometry of a link (conventions in the :mod:`synth.raytrace` docstring)."""

from __future__ import annotations

import numpy as np
import scipy.constants as sc

from retrieval.errors import RoharnessError

C_M_S = sc.c

#: Per-sample status codes of :func:`solve_link` (CF flag_values / flag_meanings).
STATUS = {
    "ok": 0,
    "no_occultation_geometry": 1,  # the straight line's closest point is not between ends
    "blocked_by_surface": 2,       # tangent point below the surface
    "multipath": 3,                # d alpha / da >= 1/D_T + 1/D_R: ray not unique
    "not_converged": 4,
    "invalid_input": 5,
}


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------
def _vectors(name, value, n=None):
    v = np.asarray(value, dtype=float)
    if v.ndim == 1 and v.shape == (3,):
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != 3:
        raise RoharnessError(f"{name} has shape {np.shape(value)}; expected (n, 3).")
    if n is not None and v.shape[0] != n:
        raise RoharnessError(f"{name} has {v.shape[0]} rows; expected {n} like the others.")
    return v


def _states(r_tx, v_tx, r_rx, v_rx):
    r_tx = _vectors("r_tx", r_tx)
    n = r_tx.shape[0]
    return r_tx, _vectors("v_tx", v_tx, n), _vectors("r_rx", r_rx, n), _vectors("v_rx", v_rx, n)


def _check_freq(freq_hz):
    f = float(freq_hz)
    if not (np.isfinite(f) and f > 0):
        raise RoharnessError(f"Link frequency {freq_hz} Hz must be a finite number > 0.")
    return f



# --------------------------------------------------------------------------------------
# Straight-line geometry shared by the exact and weak models
# --------------------------------------------------------------------------------------
def _norm(v):
    return np.sqrt(np.einsum("ij,ij->i", v, v))


def _dot(u, v):
    return np.einsum("ij,ij->i", u, v)


def _line_geometry(r_tx, r_rx):
    """Straight line T -> R: unit direction, length, impact parameter, foot-point vector,
    signed positions of the ends along the line measured from the foot point."""
    d = r_rx - r_tx
    dist = _norm(d)
    e0 = d / dist[:, None]
    u_tx = _dot(r_tx, e0)          # < 0 when T is before the closest approach
    q = r_tx - u_tx[:, None] * e0  # foot point of the perpendicular from Mars' centre
    a0 = _norm(q)
    u_rx = u_tx + dist
    return e0, dist, a0, q, u_tx, u_rx


def _kinematic(e_tx, e_rx, v_tx, v_rx):
    """A = 1 - e_R . v_R / c and B = 1 - e_T . v_T / c."""
    return 1.0 - _dot(e_rx, v_rx) / C_M_S, 1.0 - _dot(e_tx, v_tx) / C_M_S



def _link_inputs(r_tx, v_tx, r_rx, v_rx, freq_hz):
    """Checked link inputs and the straight line of each sample, shared by the bent-ray
    solver and the weak-refraction model.

    Returns a dict: ``r_tx``, ``v_tx``, ``r_rx``, ``v_rx`` (checked arrays), ``f_t``,
    ``status`` (``invalid_input`` for non-finite samples, ``no_occultation_geometry`` where
    the line does not pass between the ends), ``finite``, ``rt_safe``/``rr_safe`` (positions
    with placeholders where not finite), the straight line ``e0``, ``dist``, ``a0``, ``q``,
    ``u_tx``, ``u_rx`` (:func:`_line_geometry`), and ``geometric``.
    """
    r_tx, v_tx, r_rx, v_rx = _states(r_tx, v_tx, r_rx, v_rx)
    f_t = _check_freq(freq_hz)
    status = np.zeros(r_tx.shape[0], dtype=np.int8)
    finite = np.all(np.isfinite(np.hstack([r_tx, v_tx, r_rx, v_rx])), axis=1)
    status[~finite] = STATUS["invalid_input"]
    rt_safe = np.where(finite[:, None], r_tx, [[1.0, 0.0, 0.0]])
    rr_safe = np.where(finite[:, None], r_rx, [[-1.0, 1.0, 0.0]])
    e0, dist, a0, q, u_tx, u_rx = _line_geometry(rt_safe, rr_safe)
    geometric = finite & (u_tx < 0) & (u_rx > 0)
    status[finite & ~geometric] = STATUS["no_occultation_geometry"]
    return dict(r_tx=r_tx, v_tx=v_tx, r_rx=r_rx, v_rx=v_rx, f_t=f_t, status=status,
                finite=finite, rt_safe=rt_safe, rr_safe=rr_safe, e0=e0, dist=dist, a0=a0,
                q=q, u_tx=u_tx, u_rx=u_rx, geometric=geometric)
