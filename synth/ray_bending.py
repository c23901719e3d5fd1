"""Forward Abel bending integrals of :mod:`synth.raytrace`: Gauss-Legendre quadrature on
shells, the bending angle of a ray and the radius of its tangent point (numerics in the
:mod:`synth.raytrace` docstring)."""

from __future__ import annotations

import numpy as np

from retrieval.errors import RoharnessError

_GL_T, _GL_W = np.polynomial.legendre.leggauss(8)
#: Quadrature nodes per chunk of impact parameters. Small enough that the ~10 temporaries of
#: a chunk (0.5 MiB each) stay in cache and are reused instead of being faulted in afresh
#: (3 M nodes cost 250 k page faults per round trip and 190 MiB more peak memory); large
#: enough that the Python loop over chunks costs nothing. The result does not depend on it.
_MAX_NODES = 65_536
_PANEL_M = 2000.0  # 8 nodes per 2 km panel: < 1e-12 relative for H >= 5 km (tests); a
# profile may ask for wider panels (RefractivityProfile.panel_m: 0.4 H, same accuracy)


# --------------------------------------------------------------------------------------
# Quadrature on shells: int f(a cosh s) ds between heights dlo, dhi above a
# --------------------------------------------------------------------------------------
def _acosh1p(eps):
    """arccosh(1 + eps) without cancellation for small eps >= 0."""
    return np.log1p(eps + np.sqrt(eps * (2.0 + eps)))


#: Panel counts a ray may get: a geometric ladder (ratio ~1.25), so that the rays of a batch
#: fall into a few groups of one rule each while every ray's panels stay <= ``panel_m``
#: wide and at most ~25 % narrower than needed.
_PANEL_LADDER = np.unique(np.ceil(1.25 ** np.arange(80)).astype(np.int64))


def _panel_groups(width, panel_m=_PANEL_M):
    """Rows grouped by panel count, in chunks of at most :data:`_MAX_NODES` nodes.

    Each row (interval of width ``width`` in d) gets the smallest panel count P of
    :data:`_PANEL_LADDER` with panels no wider than ``panel_m``: its own, whatever the other
    rows of the batch, so a ray's bending angle does not depend on the rays it is computed
    with. Yields (row indices, P).
    """
    need = np.maximum(1.0, np.ceil(np.asarray(width, float) / panel_m))
    p_row = _PANEL_LADDER[np.searchsorted(_PANEL_LADDER, need)]
    order = np.argsort(p_row, kind="stable")
    cuts = np.flatnonzero(np.diff(p_row[order])) + 1
    for group in np.split(order, cuts):
        if group.size == 0:
            continue
        p = int(p_row[group[0]])
        step = max(1, _MAX_NODES // (8 * p))
        for i in range(0, group.size, step):
            yield group[i:i + step], p


def _shell_nodes(a, dlo, dhi, panel_m=_PANEL_M, p=None):
    """Gauss-Legendre nodes for int_{s(dlo)}^{s(dhi)} f(a cosh s) ds, s(d) = acosh(1 + d/a).

    The interval is cut into P panels of equal width in d = a cosh s - a (the height above
    the tangent point in x), each integrated in s with 8 nodes; P is ``p`` if given (so that
    every row of a chunk uses the same rule), else the smallest with widths <= ``panel_m``.

    Returns
    -------
    x : ndarray (m, P*8)
        a cosh s at the nodes [m].
    w : ndarray (m, P*8)
        Weights (ds).
    d : ndarray (m, P*8)
        x - a = 2 a sinh^2(s/2), without cancellation [m].
    """
    if p is None:
        width = np.max(dhi - dlo) if dlo.size else 0.0
        p = max(1, int(np.ceil(width / panel_m)))
    frac = np.arange(p + 1) / p
    d_edges = dlo[:, None] + (dhi - dlo)[:, None] * frac[None, :]
    s_edges = _acosh1p(np.maximum(d_edges, 0.0) / a[:, None])
    mid = 0.5 * (s_edges[:, 1:] + s_edges[:, :-1])
    half = 0.5 * (s_edges[:, 1:] - s_edges[:, :-1])
    s = mid[:, :, None] + half[:, :, None] * _GL_T
    w = half[:, :, None] * _GL_W
    sh = np.sinh(0.5 * s)
    d = (2.0 * a[:, None, None] * sh * sh).reshape(a.size, -1)  # a cosh s - a, exactly
    return a[:, None] + d, w.reshape(a.size, -1), d


def _radius_from_x(x, evaluate):
    """Solve x = n(r) r for r by Newton's method from r = x / n(x); return r, n - 1 and
    d(n - 1)/dr at r. On Mars |r dn/dr| < 1e-2, and one step brings r to < 1e-6 m; the loop
    continues (up to 8 steps) until every correction is below 1e-7 m, so that strongly
    refracting test profiles (r dn/dr ~ 0.3) are also solved exactly."""
    nu, _ = evaluate(x)
    r = x / (1.0 + nu)
    for _ in range(8):
        nu, dnu = evaluate(r)
        step = (r * (1.0 + nu) - x) / (1.0 + nu + r * dnu)
        r = r - step
        if not np.any(np.abs(step) > 1e-7):
            break
    nu, dnu = evaluate(r)
    return r, nu, dnu


def _leg_integral(a, r0, nu0, dlo, dhi, evaluate, panel_m):
    """int over s of the bending integrand between heights dlo < dhi above the tangent.

    With r = r0 cosh s (r0 the tangent radius, n(r0) r0 = a) and x = n r,

    .. math:: \\int_{r_0} \\frac{n'/n\\, dr}{\\sqrt{x^2 - a^2}} =
              \\int \\frac{n'}{n} \\frac{2 r_0 \\cosh(s/2)}{\\sqrt{2 r_0 Q (x + a)}}\\,ds,
              \\quad Q = \\frac{x - a}{r - r_0} = n + r_0 \\frac{\\nu - \\nu_0}{r - r_0}

    (r - r0 = 2 r0 sinh^2(s/2)); the integrand is smooth and finite at s = 0, and each node
    costs one evaluation of the profile. Returns 0 where dhi <= dlo.
    """
    out = np.zeros(a.size)
    live = dhi > dlo
    if not np.any(live):
        return out
    idx = np.flatnonzero(live)
    for rows, p in _panel_groups(dhi[idx] - dlo[idx], panel_m):
        j = idx[rows]
        r, w, dr = _shell_nodes(r0[j], dlo[j], dhi[j], panel_m, p)  # dr = r - r0 > 0
        rj, aj, nu0j = r0[j][:, None], a[j][:, None], nu0[j][:, None]
        nu, dnu = evaluate(r)
        n = 1.0 + nu
        # 2 r0 cosh(s/2) / sqrt(2 r0 Q (x + a)) = sqrt((2 r0 + dr) / (Q (x + a))), in place
        q = np.subtract(nu, nu0j)
        q *= rj
        q /= dr
        q += n                      # Q
        xa = np.multiply(r, n)
        xa += aj                    # x + a
        xa *= q
        np.add(dr, 2.0 * rj, out=q)
        q /= xa
        np.sqrt(q, out=q)
        g = np.divide(dnu, n)       # (the profile's arrays are left alone)
        g *= q
        g *= w
        out[j] = np.sum(g, axis=1)
    return out


def _bending(a, r_tx_end, r_rx_end, profile, panel_m=None):
    """alpha_T + alpha_R for impact parameters a whose legs end at radii r_tx_end, r_rx_end
    (``panel_m`` None: the profile's own panel width, :func:`profile_panel_m`)."""
    panel_m = profile_panel_m(profile) if panel_m is None else panel_m
    r0 = _radius_from_x(a, profile.evaluate)[0]
    nu0 = profile.evaluate(r0)[0]
    top = profile.top_radius_m
    lo = np.clip(np.minimum(r_tx_end, r_rx_end), None, top) - r0
    hi = np.clip(np.maximum(r_tx_end, r_rx_end), None, top) - r0
    lo = np.maximum(lo, 0.0)
    hi = np.maximum(hi, lo)
    zero = np.zeros_like(a)
    common = _leg_integral(a, r0, nu0, zero, lo, profile.evaluate, panel_m)
    extra = _leg_integral(a, r0, nu0, lo, hi, profile.evaluate, panel_m)
    return -a * (2.0 * common + extra)


def profile_panel_m(profile: object) -> float:
    """The quadrature panel width [m] of a profile: its ``panel_m`` (a
    :class:`synth.refractivity.RefractivityProfile` sets it from its scale heights), else
    :data:`_PANEL_M`."""
    return float(getattr(profile, "panel_m", _PANEL_M) or _PANEL_M)


def bending_angle(impact_m, profile, tx_radius_m=None, rx_radius_m=None, panel_m=None):
    """Bending angle of a ray through a spherically symmetric refractivity profile.

    Parameters
    ----------
    impact_m : array_like
        Impact parameter a = n r sin(z) [m].
    profile : synth.refractivity.RefractivityProfile
        n - 1 and its radial derivative as functions of radius.
    tx_radius_m, rx_radius_m : array_like, optional
        Radii where the two legs of the ray end [m]; default (None) is the top of the
        profile, giving the full bending angle.
    panel_m : float, optional
        Quadrature panel width in x [m] (8 Gauss-Legendre nodes per panel); default the
        profile's ``panel_m`` (0.4 of its thinnest scale height, at least 2 km).

    Returns
    -------
    ndarray
        alpha [rad], shaped like ``impact_m``; > 0 means bent toward the planet.

    Notes
    -----
    With x = n r and the substitution x = a cosh s [1]_:

    .. math::
        \\alpha(a) = -2a \\int_a^{\\infty} \\frac{d\\ln n/dx}{\\sqrt{x^2 - a^2}}\\,dx
                   = -2a \\int_0^{\\infty} \\frac{d\\ln n}{dx}(a\\cosh s)\\,ds,\\qquad
        \\frac{d\\ln n}{dx} = \\frac{n'/n}{n + r n'}

    (each leg contributes half of the integral, up to its own end).
    """
    a = np.asarray(impact_m, dtype=float)
    shape = a.shape
    a = a.ravel()
    if np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise RoharnessError("Bending angle: impact parameters must be finite and > 0 m.")
    top = np.full(a.shape, float(profile.top_radius_m))
    r_tx = top if tx_radius_m is None else np.broadcast_to(
        np.asarray(tx_radius_m, float).ravel(), a.shape)
    r_rx = top if rx_radius_m is None else np.broadcast_to(
        np.asarray(rx_radius_m, float).ravel(), a.shape)
    return _bending(a, r_tx, r_rx, profile, panel_m).reshape(shape)


def tangent_radius(impact_m, profile):
    """Radius r0 of the tangent point, n(r0) r0 = a (Newton's method) [m]."""
    a = np.asarray(impact_m, dtype=float)
    return _radius_from_x(a, profile.evaluate)[0]

