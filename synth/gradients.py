r"""Horizontal gradients: a non-spherical ionosphere seen along straight rays.

The spherical forward model (:mod:`synth.observe`) evaluates the Chapman ionosphere at ONE
solar zenith angle (the tangent point's) everywhere, which is what the retrieval assumes.
Here the electron density varies along each ray with the local SZA :math:`\chi(\vec p)` of
every point :math:`\vec p`,

.. math::

    N_e(\vec p) = \sum_\text{layers} N_0 \exp\left\{\tfrac12\left[1 - z
        - q(x, \chi)\, e^{-z}\right]\right\},\quad z = \frac{h - h_0}{H},\quad
    x = \frac{R + h}{H},\quad \cos\chi = \hat p\cdot\hat s

with the SAME subsolar-equivalent layers (N_0, h_0, H) as the truth (the truth's
``layers`` attribute) and the Chapman grazing-incidence function :math:`q = \mathrm{Ch}(x,
\chi)` (or sec chi) of :mod:`synth.ionosphere`: a photochemical ionosphere whose shape
follows the Sun, through the terminator into the night side. :math:`\hat s` is the
Mars-to-Sun direction (SPICE, Mars-centred J2000, light-time corrected as in
:func:`retrieval.geometry.sun_vector_iau_mars`) at the time the ray passes the limb.
The parallax of the Sun seen from a point 3400 km from Mars' centre (1.5e-5 rad) is
ignored.

Anchoring (``anchor_sza_deg``): the truth of a simulated occultation is the profile at ONE
SZA (the tangent point's near 130 km), while the tangent point drifts by a few degrees of SZA
during the occultation. With an anchor, the Sun direction of each sample is rotated in the
plane of the tangent point and the Sun so that the tangent point sits exactly at the anchor
SZA: the ray then samples the truth profile at its tangent point and the ionosphere's
variation along the ray is the true one (a rigid rotation of the Sun-fixed pattern about
Mars' centre). The difference from the spherical model is then purely the along-ray
(horizontal) gradient, the error that the spherical-symmetry assumption makes.

Excess phase path and residual Doppler (first order in n - 1, straight ray; the weak-
refraction model of :func:`synth.raytrace.weak_refraction_residual`, generalised to a
non-spherical medium). With plasma refractivity :math:`\nu = n - 1 = -K N_e / f^2`,
:math:`K = e^2/(8\pi^2\varepsilon_0 m_e)` (scipy.constants), along the segment
:math:`\vec p(s) = \vec r_T + s \vec D`, :math:`\vec D = \vec r_R - \vec r_T`:

.. math::

    L = |\vec D| \int_0^1 \nu(\vec p(s))\,ds,\qquad
    \nabla_{r_R} L\cdot\vec w = (\hat e_0\cdot\vec w)\frac{L}{|\vec D|}
        + \int s\,\nabla\nu\cdot\vec w\,du,\qquad
    \nabla_{r_T} L\cdot\vec w = -(\hat e_0\cdot\vec w)\frac{L}{|\vec D|}
        + \int (1 - s)\,\nabla\nu\cdot\vec w\,du

(u = |D| s the distance along the line), with the 3-D gradient

.. math::

    \nabla\nu = -\frac{K}{f^2}\left[\frac{\partial N_e}{\partial h}\hat p
        + \frac{\partial N_e}{\partial\mu}\,\frac{\hat s - \mu\hat p}{|\vec p|}\right],
    \qquad \mu = \cos\chi.

By Fermat's principle [1]_ the bent ray's end directions are :math:`\hat e_R = \hat e_0 +
\nabla_{r_R} L` and :math:`\hat e_T = \hat e_0 - \nabla_{r_T} L` (first order), so with
:math:`g_R = \nabla_{r_R}L\cdot\vec v_R`, :math:`g_T = \nabla_{r_T}L\cdot\vec v_T` the
contract's Doppler formula gives the residual (received minus straight-ray frequency)

.. math::

    \Delta f = f_T\left[\frac{A_0 - g_R/c}{B_0 + g_T/c} - \frac{A_0}{B_0}\right],\quad
    A_0 = 1 - \hat e_0\cdot\vec v_R/c,\ B_0 = 1 - \hat e_0\cdot\vec v_T/c,

i.e. :math:`\Delta f \approx -(f_T/c)\,dL/dt` (a growing excess path delays the phase and
lowers the received frequency). The time derivative is analytic (no finite differences).

Numerics: the line is split at its closest point to Mars' centre (impact parameter
:math:`a_0`) into two legs, integrated in :math:`u = a_0\sinh\sigma` (no singularity at the
tangent point, :math:`du = r\,d\sigma`) with 8-point Gauss-Legendre panels uniform in
sigma up to the leg's end or the top of the ionosphere. ln q(h, mu) of each layer is
tabulated over the altitudes and mu the rays visit (exact Chapman function of
:mod:`synth.ionosphere` on a 10 km x 0.005 grid) and interpolated (linear in h, cubic
Hermite in mu; error of ln q < 1e-6 where the ionosphere is lit, tests). With the SZA
held constant along the ray the model reproduces
:func:`synth.raytrace.weak_refraction_residual` (tests: < 1e-3 of the peak residual;
measured 1.5e-8 for mex-tgo-uhf, 5e-7 for maven-x-oneway). Cost: ~1 s for 600 samples.

API
---
``sun_direction_j2000(et)``: unit Mars-to-Sun vectors (n, 3).
``excess_path_residual(r_tx, v_tx, r_rx, v_rx, freq_hz, layers, sun_direction, ...)``:
    per-sample L, dL/dt, residual Doppler, tangent-point SZA, for a varying or constant SZA.
``gradient_perturbation(obs, truth, anchor="tangent")``: residual of the non-spherical
    model minus that of the spherical (constant-SZA) one, per sample of an observation.

References
----------
.. [1] Born, M. and Wolf, E. (1999), Principles of Optics, 7th ed., section 3.2 (eikonal:
   the gradient of the optical path length is n times the ray direction).
.. [2] Chapman, S. (1931), Proc. Phys. Soc. 43, 483-501, doi:10.1088/0959-5309/43/5/302
   (grazing incidence).
.. [3] Ahmad, B. and Tyler, G. L. (1998), The two-dimensional resolution kernel associated
   with retrieval of ionospheric and atmospheric refractivity profiles by Abelian
   inversion of radio occultation phase data, Radio Sci. 33, 129-142,
   doi:10.1029/97RS02762 (horizontal gradients and spherical symmetry in RO).
"""

from __future__ import annotations

import numpy as np
import scipy.constants as sc
import xarray as xr

from retrieval import spice
from retrieval.constants import MARS_MEAN_RADIUS_M
from retrieval.errors import RoharnessError
from synth.ionosphere import (
    GRAZING_MODELS,
    ChapmanLayer,
    ionosphere_top_altitude_m,
    log_chapman_grazing,
)

#: Plasma refractivity constant K = e^2 / (8 pi^2 eps0 m_e) [m^3 s^-2] (CODATA via scipy).
PLASMA_K_M3_S2 = sc.e**2 / (8.0 * sc.pi**2 * sc.epsilon_0 * sc.m_e)

ANCHORS = ("tangent", "none")

_GL_T, _GL_W = np.polynomial.legendre.leggauss(8)
_DSIGMA = 0.02         # panel width in sigma = asinh(u / a0), 8 nodes per panel: a panel is
                       # a0 sigma dsigma ~ 1.4 km of height at 10 km above the tangent point,
                       # ~40 km at the top (sigma ~ 0.6); vs 0.002: 1e-9 of the peak (measured)
_MAX_NODES = 1_500_000  # nodes per chunk of rays (memory ~ 20 arrays x 12 MB)
_TABLE_DH_M = 10e3     # ln q table: altitude step (see _LogObliquity)
_TABLE_DMU = 0.005     # and mu step


# --------------------------------------------------------------------------------------
# Sun direction
# --------------------------------------------------------------------------------------
def sun_direction_j2000(et) -> np.ndarray:
    """Unit vectors from Mars' centre to the Sun in J2000 axes (light-time corrected).

    Parameters
    ----------
    et : float or array_like
        Ephemeris times [s past J2000 TDB].

    Returns
    -------
    ndarray (n, 3)
    """
    st, _ = spice.states("SUN", np.atleast_1d(np.asarray(et, float)), "MARS", "J2000", "LT")
    pos = st[:, :3]
    return pos / np.linalg.norm(pos, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------
# ln q(h, mu) of one layer
# --------------------------------------------------------------------------------------
class _LogObliquity:
    """ln q and its partial derivatives d/dh, d/dmu for one scale height over (h, mu).

    ``grazing="chapman"``: ln Ch(x, chi) tabulated on a uniform (h, mu) grid with the exact
    function of :mod:`synth.ionosphere`, interpolated linearly in h (ln Ch is nearly linear
    in x = (R + h)/H: |d2 ln Ch/dx2| < 5e-6 on Mars, so a 1 x step errs by < 1e-6) and by
    cubic Hermite in mu (derivatives by 4th-order differences; ln Ch varies on a mu scale
    ~1/sqrt(x) ~ 0.05 at the terminator, sampled every 0.005). Measured against the exact
    function for H = 10 km, 50-700 km: |error of ln q| < 1e-6 for SZA < 99 deg (7e-7,
    largest near 85-99 deg), < 1e-4 deeper in the night where ln q > 5 and N_e is
    negligible anyway (tests).
    """

    def __init__(self, scale_height_m, grazing, h_range_m, mu_range, reference_radius_m):
        self.grazing = grazing
        if grazing == "sec":
            return
        h_lo, h_hi = h_range_m
        nh = max(2, int(np.ceil((h_hi - h_lo) / _TABLE_DH_M)) + 1)
        self.h0, self.dh, self.nh = h_lo, _TABLE_DH_M, nh
        h = h_lo + _TABLE_DH_M * np.arange(nh)
        mu_lo, mu_hi = mu_range
        nm = max(5, int(np.ceil((mu_hi - mu_lo) / _TABLE_DMU)) + 1)
        self.mu0, self.dmu, self.nm = mu_lo, (mu_hi - mu_lo) / (nm - 1), nm
        mu = np.linspace(mu_lo, mu_hi, nm)
        x = (reference_radius_m + h[:, None]) / scale_height_m
        chi = np.degrees(np.arccos(np.clip(mu, -1.0, 1.0)))[None, :]
        y, _ = log_chapman_grazing(np.broadcast_to(x, (nh, nm)),
                                   np.broadcast_to(chi, (nh, nm)))
        dy = np.empty_like(y)  # d ln q / dmu * dmu: 4th order inside, 2nd order at the edges
        dy[:, 2:-2] = (-y[:, 4:] + 8.0 * y[:, 3:-1] - 8.0 * y[:, 1:-3] + y[:, :-4]) / 12.0
        dy[:, :2] = np.gradient(y[:, :3], axis=1, edge_order=2)[:, :2]
        dy[:, -2:] = np.gradient(y[:, -3:], axis=1, edge_order=2)[:, -2:]
        self.y, self.dy = y.ravel(), dy.ravel()

    def __call__(self, h, mu, need_mu=True):
        if self.grazing == "sec":
            with np.errstate(divide="ignore", invalid="ignore"):
                lit = mu > 0
                logq = np.where(lit, -np.log(np.where(lit, mu, 1.0)), np.inf)
                dmu = np.where(lit, -1.0 / np.where(lit, mu, 1.0), 0.0)
            return logq, np.zeros_like(h), dmu
        uh = (h - self.h0) / self.dh
        i = np.clip(uh.astype(np.intp), 0, self.nh - 2)
        th = uh - i
        um = (mu - self.mu0) / self.dmu
        j = np.clip(um.astype(np.intp), 0, self.nm - 2)
        t = um - j
        t2 = t * t
        t3 = t2 * t
        b00, b10, b01, b11 = 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, 3 * t2 - 2 * t3, t3 - t2
        k0 = i * self.nm + j
        k1 = k0 + self.nm
        y, dy = self.y, self.dy
        v0 = b00 * y[k0] + b10 * dy[k0] + b01 * y[k0 + 1] + b11 * dy[k0 + 1]
        v1 = b00 * y[k1] + b10 * dy[k1] + b01 * y[k1 + 1] + b11 * dy[k1 + 1]
        logq = v0 + th * (v1 - v0)
        dlogq_dh = (v1 - v0) / self.dh
        if not need_mu:
            return logq, dlogq_dh, np.zeros_like(h)
        c00, c10, c01, c11 = 6 * t2 - 6 * t, 3 * t2 - 4 * t + 1, 6 * t - 6 * t2, 3 * t2 - 2 * t
        w0 = c00 * y[k0] + c10 * dy[k0] + c01 * y[k0 + 1] + c11 * dy[k0 + 1]
        w1 = c00 * y[k1] + c10 * dy[k1] + c01 * y[k1 + 1] + c11 * dy[k1 + 1]
        return logq, dlogq_dh, (w0 + th * (w1 - w0)) / self.dmu


def _layer_terms(layer, table, h, mu, need_mu):
    """N, dN/dh, dN/dmu of one Chapman layer at altitudes h and mu = cos(SZA)."""
    logq, dlogq_dh, dlogq_dmu = table(h, mu, need_mu)
    z = (h - layer.h0_m) / layer.scale_height_m
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(np.minimum(logq - z, 700.0))
    n = layer.n0_m3 * np.exp(0.5 * (1.0 - z - e))
    dn_dh = n * 0.5 * (-1.0 + e * (1.0 - dlogq_dh * layer.scale_height_m)) / \
        layer.scale_height_m
    dn_dmu = -0.5 * n * e * dlogq_dmu
    live = n > 0
    return n, np.where(live, dn_dh, 0.0), np.where(live, dn_dmu, 0.0)


# --------------------------------------------------------------------------------------
# Geometry and quadrature
# --------------------------------------------------------------------------------------
def _as_states(name, value, n=None):
    v = np.atleast_2d(np.asarray(value, dtype=float))
    if v.ndim != 2 or v.shape[1] != 3 or (n is not None and v.shape[0] != n):
        raise RoharnessError(f"{name} must have shape (n, 3) [m or m/s], got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise RoharnessError(f"{name} contains non-finite values")
    return v


def _anchored_sun(q_hat, s_hat, e0, anchor_sza_deg):
    """Sun directions rotated in the (tangent point, Sun) plane to put the tangent point at
    the anchor SZA (see the module docstring)."""
    c = np.einsum("ij,ij->i", q_hat, s_hat)
    perp = s_hat - c[:, None] * q_hat
    norm = np.linalg.norm(perp, axis=1)
    tiny = norm < 1e-12  # tangent point at the subsolar/antisolar point: any perpendicular
    perp = np.where(tiny[:, None], e0, perp / np.where(tiny, 1.0, norm)[:, None])
    chi = np.deg2rad(np.broadcast_to(np.asarray(anchor_sza_deg, float), c.shape))
    return np.cos(chi)[:, None] * q_hat + np.sin(chi)[:, None] * perp


def _check_model(grazing, layers, freq_hz):
    """Checked grazing model, layers (as a tuple) and frequency [Hz]."""
    if grazing not in GRAZING_MODELS:
        raise ValueError(f"unknown grazing model {grazing!r}; known: {', '.join(GRAZING_MODELS)}")
    layers = tuple(layers)
    if not layers or not all(isinstance(L, ChapmanLayer) for L in layers):
        raise RoharnessError("gradient model: expected a non-empty sequence of ChapmanLayer")
    f_t = float(freq_hz)
    if not (np.isfinite(f_t) and f_t > 0):
        raise RoharnessError(f"gradient model: frequency {freq_hz} Hz must be > 0")
    return layers, f_t


def _straight_line(r_tx, r_rx, R):
    """Straight line T -> R: length, direction, signed end positions along it, foot point q,
    its radius a0 and direction, and the status (0 ok, 1 no occultation geometry, 2 below
    the reference sphere)."""
    d = r_rx - r_tx
    dist = np.linalg.norm(d, axis=1)
    e0 = d / dist[:, None]
    u_t = np.einsum("ij,ij->i", r_tx, e0)
    q = r_tx - u_t[:, None] * e0
    a0 = np.linalg.norm(q, axis=1)
    u_r = u_t + dist
    q_hat = q / a0[:, None]
    status = np.zeros(r_tx.shape[0], np.int8)
    status[~((u_t < 0) & (u_r > 0))] = 1
    status[(status == 0) & (a0 < R)] = 2
    return dist, e0, u_t, u_r, q, a0, q_hat, status


def _sun_model(q_hat, s_hat, e0, sza_deg, anchor_sza_deg):
    """Sun directions (anchored if asked), SZA at the closest point [deg] and the constant
    mu = cos(SZA) of the spherical model (None when the SZA varies along the ray)."""
    m = q_hat.shape[0]
    if sza_deg is None and anchor_sza_deg is not None:
        s_hat = _anchored_sun(q_hat, s_hat, e0, anchor_sza_deg)
    tangent_sza = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", q_hat, s_hat), -1, 1)))
    const_mu = None
    if sza_deg is not None:
        const_mu = np.broadcast_to(np.cos(np.deg2rad(np.asarray(sza_deg, float))), (m,))
        tangent_sza = np.broadcast_to(np.asarray(sza_deg, float), (m,)).astype(float)
    return s_hat, tangent_sza, const_mu


def _sigma_ends(a0, u_t, u_r, good, top):
    """sigma = asinh(u / a0) at the two ends of each leg, capped at the top radius (0 for
    the samples that are not ``good``)."""
    sig_top = np.arccosh(np.maximum(top / np.where(good, a0, top), 1.0))
    sig_t = np.minimum(np.arcsinh(-u_t / a0), sig_top)   # leg toward T (u < 0)
    sig_r = np.minimum(np.arcsinh(u_r / a0), sig_top)    # leg toward R (u > 0)
    sig_t[~good] = 0.0
    sig_r[~good] = 0.0
    return sig_t, sig_r


def _unit_nodes(sig_t, sig_r):
    """Gauss-Legendre nodes and weights on [0, 1], in panels of at most :data:`_DSIGMA`
    for the longest leg (every leg uses the same rule, scaled to its end)."""
    p = max(1, int(np.ceil(max(sig_t.max(initial=0.0), sig_r.max(initial=0.0)) / _DSIGMA)))
    frac_edges = np.arange(p + 1) / p
    t_nodes = ((frac_edges[:-1, None] + frac_edges[1:, None]) / 2
               + (frac_edges[1:, None] - frac_edges[:-1, None]) / 2 * _GL_T).ravel()
    w_nodes = np.repeat(np.diff(frac_edges), 8) / 2 * np.tile(_GL_W, p)
    return t_nodes, w_nodes


def _obliquity_tables(layers, grazing, a0, good, top, R, const_mu, tangent_sza, sig_t,
                      sig_r):
    """Tables of ln q over the (h, mu) the rays visit, one per layer (layers of equal scale
    height share one)."""
    h_lo = max(float(np.min(a0[good], initial=top)) - R - 1e3, -R + 1.0)
    h_hi = top - R + 1e3
    if const_mu is not None:
        mu_lo, mu_hi = float(np.min(const_mu)) - 0.01, float(np.max(const_mu)) + 0.01
    else:
        # |mu - mu_tangent| <= the angle subtended at Mars' centre by the leg (sigma_top)
        mu_t = np.cos(np.deg2rad(tangent_sza[good])) if good.any() else np.zeros(1)
        span = np.max(np.maximum(sig_t, sig_r)[good], initial=0.0)
        mu_lo, mu_hi = float(mu_t.min() - span - 0.01), float(mu_t.max() + span + 0.01)
    mu_lo, mu_hi = max(mu_lo, -1.0), min(mu_hi, 1.0)
    by_h = {}
    for L in layers:  # layers of equal scale height share one table
        if L.scale_height_m not in by_h:
            by_h[L.scale_height_m] = _LogObliquity(L.scale_height_m, grazing, (h_lo, h_hi),
                                                   (mu_lo, mu_hi), R)
    return [by_h[L.scale_height_m] for L in layers]


def _density_terms(layers, tables, h, mu, need_mu):
    """N, dN/dh and dN/dmu of all layers summed, at altitudes h and mu = cos(SZA)."""
    n_e = np.zeros(h.shape)
    dn_dh = np.zeros(h.shape)
    dn_dmu = np.zeros(h.shape)
    for layer, table in zip(layers, tables):
        n1, dh1, dm1 = _layer_terms(layer, table, h, mu, need_mu)
        n_e += n1
        dn_dh += dh1
        dn_dmu += dm1
    return n_e, dn_dh, dn_dmu


def _path_integrals(a0, u_t, dist, q, e0, s_hat, v_rx, v_tx, sig_t, sig_r, good, const_mu,
                    layers, tables, scale, R):
    """Excess path L and the integrals of grad N . v over both legs (receiver, transmitter
    weighting), in chunks of rays of at most :data:`_MAX_NODES` nodes.

    Returns
    -------
    path, int_r, int_t : ndarray (m,)
        L [m] and the integral terms of g_R, g_T [m/s] (0 where not ``good``).
    """
    m = a0.size
    t_nodes, w_nodes = _unit_nodes(sig_t, sig_r)
    path = np.zeros(m)
    int_r = np.zeros(m)
    int_t = np.zeros(m)
    # per-sample scalars of the dot products
    dot = lambda a, b: np.einsum("ij,ij->i", a, b)  # noqa: E731
    qs, es = dot(q, s_hat), dot(e0, s_hat)
    qvr, evr, svr = dot(q, v_rx), dot(e0, v_rx), dot(s_hat, v_rx)
    qvt, evt, svt = dot(q, v_tx), dot(e0, v_tx), dot(s_hat, v_tx)
    rows = np.flatnonzero(good)
    step = max(1, _MAX_NODES // (2 * t_nodes.size))
    for i0 in range(0, rows.size, step):
        j = rows[i0:i0 + step]
        for sign, sig_end in ((-1.0, sig_t[j]), (1.0, sig_r[j])):
            sig = sig_end[:, None] * t_nodes[None, :]
            w = sig_end[:, None] * w_nodes[None, :]
            a = a0[j, None]
            sh = np.sinh(0.5 * sig)
            r = a * np.cosh(sig)
            h = (a - R) + 2.0 * a * sh * sh          # a cosh(sig) - R without cancellation
            u = sign * a * np.sinh(sig)
            wu = w * r                               # du = r dsigma
            if const_mu is None:
                mu = (qs[j, None] + u * es[j, None]) / r
            else:
                mu = np.broadcast_to(const_mu[j, None], r.shape)
            n_e, dn_dh, dn_dmu = _density_terms(layers, tables, h, mu, const_mu is None)
            s_frac = (u - u_t[j, None]) / dist[j, None]
            path[j] += scale * np.sum(n_e * wu, axis=1)
            for vq, ve, vs, weight, acc in ((qvr, evr, svr, s_frac, int_r),
                                            (qvt, evt, svt, 1.0 - s_frac, int_t)):
                phw = (vq[j, None] + u * ve[j, None]) / r          # p_hat . w
                grad = dn_dh * phw
                if const_mu is None:
                    grad = grad + dn_dmu * (vs[j, None] - mu * phw) / r
                acc[j] += scale * np.sum(grad * weight * wu, axis=1)
    return path, int_r, int_t


def _path_dataset(path, g_r, g_t, resid, good, tangent_sza, a0, R, status, attrs):
    """The :func:`excess_path_residual` dataset (NaN where the status is not ok)."""
    nan = np.where(good, 1.0, np.nan)
    return xr.Dataset(
        {
            "excess_path": ("time", path * nan, {
                "units": "m", "long_name": "plasma excess phase path along the straight line"}),
            "excess_path_rate": ("time", (g_r + g_t) * nan, {
                "units": "m s-1", "long_name": "time derivative of the excess phase path"}),
            "frequency_residual": ("time", resid * nan, {
                "units": "Hz", "long_name": "residual Doppler of the straight-ray "
                                            "excess-phase model (received minus vacuum)"}),
            "tangent_sza_deg": ("time", tangent_sza, {
                "units": "degree", "long_name": "solar zenith angle at the closest point"}),
            "tangent_altitude": ("time", a0 - R, {
                "units": "m", "long_name": "altitude of the straight line's closest point"}),
            "status": ("time", status, {
                "long_name": "status", "flag_values": np.array([0, 1, 2], np.int8),
                "flag_meanings": "ok no_occultation_geometry blocked_by_surface"}),
        },
        attrs=attrs)


def excess_path_residual(r_tx, v_tx, r_rx, v_rx, freq_hz, layers, sun_direction, *,
                         grazing="chapman", sza_deg=None, anchor_sza_deg=None, time_s=None,
                         reference_radius_m=MARS_MEAN_RADIUS_M) -> xr.Dataset:
    """Excess phase path and residual Doppler of straight rays through a Sun-fixed ionosphere.

    Parameters
    ----------
    r_tx, v_tx, r_rx, v_rx : array_like (n, 3)
        Transmitter (at emission) and receiver (at reception) states, Mars-centred J2000
        [m, m/s].
    freq_hz : float
        Transmitted frequency f_T [Hz].
    layers : sequence of synth.ionosphere.ChapmanLayer
        Subsolar-equivalent layers (as in the truth's ``layers`` attribute).
    sun_direction : array_like (n, 3) or (3,)
        Mars-to-Sun direction per sample (need not be normalised), J2000.
    grazing : {"chapman", "sec"}
    sza_deg : float or array_like (n,), optional
        If given, the SZA is held CONSTANT along every ray at this value (spherical model).
    anchor_sza_deg : float or array_like (n,), optional
        Rotate each sample's Sun direction so that the ray's closest point to Mars' centre
        has this SZA (module docstring). Ignored when ``sza_deg`` is given.
    time_s : array_like (n,), optional
        Time coordinate of the output.
    reference_radius_m : float
        Radius of the reference sphere for altitudes [m].

    Returns
    -------
    xarray.Dataset
        ``excess_path`` L [m], ``excess_path_rate`` dL/dt [m/s], ``frequency_residual``
        [Hz] (module docstring), ``tangent_sza_deg`` (SZA at the closest point, after
        anchoring), ``tangent_altitude`` [m] of the straight line, ``status`` (0 ok,
        1 no occultation geometry, 2 line below the surface; NaN residual for 1 and 2).
    """
    layers, f_t = _check_model(grazing, layers, freq_hz)
    r_tx = _as_states("r_tx", r_tx)
    m = r_tx.shape[0]
    v_tx, r_rx, v_rx = (_as_states(k, v, m) for k, v in
                        (("v_tx", v_tx), ("r_rx", r_rx), ("v_rx", v_rx)))
    s_hat = np.broadcast_to(np.asarray(sun_direction, float), (m, 3))
    s_hat = s_hat / np.linalg.norm(s_hat, axis=1, keepdims=True)
    R = float(reference_radius_m)

    # straight line: direction, length, foot point q, signed end positions along it
    dist, e0, u_t, u_r, q, a0, q_hat, status = _straight_line(r_tx, r_rx, R)
    good = status == 0
    s_hat, tangent_sza, const_mu = _sun_model(q_hat, s_hat, e0, sza_deg, anchor_sza_deg)

    top = ionosphere_top_altitude_m(layers) + R
    sig_t, sig_r = _sigma_ends(a0, u_t, u_r, good, top)
    # tables of ln q over the (h, mu) the rays visit
    tables = _obliquity_tables(layers, grazing, a0, good, top, R, const_mu, tangent_sza,
                               sig_t, sig_r)

    scale = -PLASMA_K_M3_S2 / f_t**2
    path, int_r, int_t = _path_integrals(a0, u_t, dist, q, e0, s_hat, v_rx, v_tx, sig_t, sig_r,
                                         good, const_mu, layers, tables, scale, R)
    evr = np.einsum("ij,ij->i", e0, v_rx)
    evt = np.einsum("ij,ij->i", e0, v_tx)
    g_r = evr * path / dist + int_r
    g_t = -evt * path / dist + int_t
    a_0 = 1.0 - evr / sc.c
    b_0 = 1.0 - evt / sc.c
    resid = f_t * (-g_r * b_0 - a_0 * g_t) / (sc.c * b_0 * (b_0 + g_t / sc.c))
    attrs = {"frequency_hz": f_t, "grazing": grazing,
             "sza_model": ("constant" if sza_deg is not None else
                           "anchored" if anchor_sza_deg is not None else "sun"),
             "model": "straight-ray excess phase path, SZA-dependent Chapman layers "
                      "(synth.gradients)"}
    ds = _path_dataset(path, g_r, g_t, resid, good, tangent_sza, a0, R, status, attrs)
    if time_s is not None:
        ds = ds.assign_coords(time=("time", np.asarray(time_s, float), {"units": "s"}))
    return ds


# --------------------------------------------------------------------------------------
# Perturbation of an observation
# --------------------------------------------------------------------------------------
def layers_from_truth(truth: xr.Dataset):
    """The Chapman layers recorded in a truth Dataset (variables on its ``layer`` dim)."""
    names = ("layer_peak_density", "layer_peak_altitude", "layer_scale_height")
    if "layer" not in truth.coords or not all(n in truth for n in names):
        raise RoharnessError("the truth Dataset lacks its Chapman layer table ('layer' with "
                             "layer_peak_density, layer_peak_altitude, layer_scale_height; "
                             "synth.observe.simulate writes it)")
    return tuple(ChapmanLayer(str(name), float(n0), float(h0), float(h))
                 for name, n0, h0, h in zip(truth["layer"].values, *(truth[n].values
                                                                      for n in names)))


def limb_times(obs: xr.Dataset) -> np.ndarray:
    """Epoch [s TDB] at which each straight ray passes its closest point to Mars' centre."""
    r_t, r_r = obs["tx_position"].values, obs["rx_position"].values
    dvec = r_r - r_t
    s = np.clip(-np.einsum("ij,ij->i", r_t, dvec) / np.einsum("ij,ij->i", dvec, dvec), 0, 1)
    et_t, et_r = obs["et_tx"].values, obs["et_rx"].values
    return et_t + s * (et_r - et_t)


def gradient_perturbation(obs: xr.Dataset, truth: xr.Dataset, *, anchor="tangent",
                          sun_direction=None) -> xr.Dataset:
    """One-way residual of the SZA-varying ionosphere minus that of the spherical one.

    Parameters
    ----------
    obs : xarray.Dataset
        Observation per the RO contract; its (downlink) ``tx_*``/``rx_*`` states and
        ``frequency_hz`` are used.
    truth : xarray.Dataset
        The truth of :func:`synth.observe.simulate` (``layers``, ``grazing``, ``sza_deg``
        attributes).
    anchor : {"tangent", "none"}
        ``"tangent"``: each ray's closest point sits at the truth's SZA (pure along-ray
        gradient, the default); ``"none"``: the actual SZA of every point (adds the drift of
        the tangent point's SZA during the occultation to the perturbation).
    sun_direction : array_like (n, 3), optional
        Mars-to-Sun directions (default: SPICE at :func:`limb_times`).

    Returns
    -------
    xarray.Dataset
        ``frequency_residual_perturbation`` [Hz] (gradient minus spherical, at
        ``frequency_hz`` of the observation, one-way), ``frequency_residual_gradient`` and
        ``frequency_residual_spherical`` [Hz], ``tangent_sza_deg`` (actual SZA of each
        sample's closest point, before anchoring), on the observation's ``time``.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor {anchor!r}; known: {', '.join(ANCHORS)}")
    layers = layers_from_truth(truth)
    grazing = truth.attrs.get("grazing", "chapman")
    sza = float(truth.attrs["sza_deg"])
    f = float(obs.attrs["frequency_hz"])
    if sun_direction is None:
        sun_direction = sun_direction_j2000(limb_times(obs))
    args = (obs["tx_position"].values, obs["tx_velocity"].values,
            obs["rx_position"].values, obs["rx_velocity"].values, f, layers, sun_direction)
    t = obs["time"].values
    actual = excess_path_residual(*args, grazing=grazing, time_s=t, sza_deg=None,
                                  anchor_sza_deg=None) if anchor == "none" else None
    grad = actual if actual is not None else excess_path_residual(
        *args, grazing=grazing, time_s=t, anchor_sza_deg=sza)
    sph = excess_path_residual(*args, grazing=grazing, time_s=t, sza_deg=sza)
    if actual is None:  # the closest point's actual SZA (cheap: geometry only)
        pos_t = obs["tx_position"].values
        dvec = obs["rx_position"].values - pos_t
        e0 = dvec / np.linalg.norm(dvec, axis=1, keepdims=True)
        qv = pos_t - np.einsum("ij,ij->i", pos_t, e0)[:, None] * e0
        sh = np.broadcast_to(np.asarray(sun_direction, float), qv.shape)
        c = np.einsum("ij,ij->i", qv / np.linalg.norm(qv, axis=1, keepdims=True),
                      sh / np.linalg.norm(sh, axis=1, keepdims=True))
        tsza = np.degrees(np.arccos(np.clip(c, -1, 1)))
    else:
        tsza = actual["tangent_sza_deg"].values
    pert = grad["frequency_residual"].values - sph["frequency_residual"].values
    hz = {"units": "Hz"}
    return xr.Dataset(
        {"frequency_residual_perturbation": ("time", pert, dict(
            hz, long_name="horizontal-gradient residual minus spherical residual")),
         "frequency_residual_gradient": ("time", grad["frequency_residual"].values, dict(
             hz, long_name="residual of the SZA-varying ionosphere (straight ray)")),
         "frequency_residual_spherical": ("time", sph["frequency_residual"].values, dict(
             hz, long_name="residual of the spherical ionosphere (straight ray)")),
         "tangent_sza_deg": ("time", tsza, {"units": "degree", "long_name":
                                            "actual SZA at each ray's closest point"})},
        coords={"time": ("time", t, {"units": "s"})},
        attrs={"anchor": anchor, "sza_deg": sza, "frequency_hz": f, "grazing": grazing})
