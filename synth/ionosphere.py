"""Truth ionosphere and neutral atmosphere of Mars for the forward model.

Alpha-Chapman layers in the standard form, with the subsolar peak density N_0 [1]_ (the
mutual-RO paper prints the equation without N_0: erratum, see ../shared/SCIENCE.md):

.. math::

    N(h, \\chi) = N_0 \\exp\\left\\{\\tfrac12\\left[1 - z - q(x, \\chi)\\, e^{-z}\\right]\\right\\},
    \\qquad z = \\frac{h - h_0}{H}, \\qquad x = \\frac{R + h}{H}

with the obliquity factor :math:`q = \\sec\\chi` (flat atmosphere, ``grazing="sec"``) or the
Chapman grazing-incidence function :math:`q = \\mathrm{Ch}(x, \\chi)` (spherical atmosphere,
``grazing="chapman"``, valid beyond 90 deg). With :math:`q = \\sec\\chi` the peak sits at
:math:`h_0 + H \\ln\\sec\\chi` with density :math:`N_0 \\cos^{1/2}\\chi`.

Layers are summed (M2, M1, optionally more). Peak laws (the density and altitude of each
peak versus SZA) are selected by ``model=``: ``parrott2025``, ``segale2024`` (with a
``group``), ``fox_weber2012``, ``fallows2015``; :func:`layers_from_peak_law` turns them into
Chapman layers whose peaks sit where the law puts them at the requested SZA.

The neutral CO2 atmosphere is an optional exponential (:class:`NeutralAtmosphere`).

API
---
``ChapmanLayer(name, n0_m3, h0_m, scale_height_m)``
``chapman_grazing(x, sza_deg)`` and ``log_chapman_grazing(x, sza_deg)`` (with d/dx)
``chapman_layer_density(altitude_m, sza_deg, layer, grazing=...)``
``electron_density(altitude_m, sza_deg, layers, grazing=..., derivative=False)``
``peak_parameters(sza_deg, model=..., ...)`` and ``layers_from_peak_law(sza_deg, model=...)``
``ElectronDensityProfile(layers, sza_deg, grazing)``: fast N_e(h), dN_e/dh at a fixed SZA
``NeutralAtmosphere(surface_number_density_m3, scale_height_m)``

References
----------
.. [1] Chapman, S. (1931), The absorption and ionising effect of monochromatic radiation in
   an atmosphere on a rotating earth, Proc. Phys. Soc. 43, 26-45 and 483-501,
   doi:10.1088/0959-5309/43/1/305, doi:10.1088/0959-5309/43/5/302.
.. [2] Huestis, D. L. (2001), Accurate evaluation of the Chapman function for atmospheric
   attenuation, J. Quant. Spectrosc. Radiat. Transfer 69, 709-721,
   doi:10.1016/S0022-4073(00)00107-2. (Ch(x, 90 deg) = x e^x K_1(x); the reflection
   formula beyond 90 deg.)
.. [3] Parrott, J. et al. (2025), mutual radio occultations MEX-TGO: M1/M2 peak laws versus
   SZA and solar flux (numbers as transcribed in ../shared/SCIENCE.md).
.. [4] Segale, A. et al. (2024), MAVEN ROSE peak altitudes h = z0 + L ln Ch(chi) in four
   dawn/dusk x aphelion/perihelion groups, with the Fox & Weber (2012) and Fallows et al.
   (2015) rows (table in ../shared/SCIENCE.md).
.. [5] Nemec, F. et al. (2011), Empirical model of the Martian dayside ionosphere: effects
   of crustal magnetic fields and solar ionizing flux at higher altitudes, J. Geophys. Res.
   116, E07003, doi:10.1029/2010JE003789 (M2 N_0 = 1.59e11 m^-3, k = 0.546).
.. [6] Fox, J. L. and Weber, A. J. (2012), MGS electron density profiles: analysis and
   modeling of peak altitudes, Icarus 221, 1002-1019, doi:10.1016/j.icarus.2012.10.002.
.. [7] Fallows, K. et al. (2015), Dayside ionosphere of Mars from MGS radio occultations,
   J. Geophys. Res. Space Physics, doi:10.1002/2015JA021108.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from retrieval.constants import MARS_MEAN_RADIUS_M
from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

GRAZING_MODELS = ("chapman", "sec")
PEAK_LAW_MODELS = ("parrott2025", "segale2024", "fox_weber2012", "fallows2015")
SEGALE_GROUPS = ("dawn_aphelion", "dawn_perihelion", "dusk_aphelion", "dusk_perihelion")

#: Default neutral scale height for the Chapman layers [m]: H = k_B T / (m_CO2 g) with
#: T ~ 180 K and g(130 km) = 3.46 m s^-2 gives ~9.8 km; rounded (the peak laws give no H).
DEFAULT_SCALE_HEIGHT_M = 10.0e3


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChapmanLayer:
    """One alpha-Chapman layer.

    Parameters
    ----------
    name : str
        Label, e.g. ``"M2"``.
    n0_m3 : float
        Subsolar peak density N_0 [m^-3].
    h0_m : float
        Subsolar peak altitude h_0 above the reference sphere [m].
    scale_height_m : float
        Neutral scale height H [m].
    """

    name: str
    n0_m3: float
    h0_m: float
    scale_height_m: float

    def __post_init__(self):
        for key in ("n0_m3", "h0_m", "scale_height_m"):
            value = getattr(self, key)
            if not np.isfinite(value):
                raise RoharnessError(f"Chapman layer {self.name!r}: {key} is {value}, "
                                     "expected a finite number.")
        if self.n0_m3 < 0 or self.scale_height_m <= 0:
            raise RoharnessError(f"Chapman layer {self.name!r}: n0_m3 must be >= 0 and "
                                 f"scale_height_m > 0, got {self.n0_m3} and "
                                 f"{self.scale_height_m}.")


@dataclass(frozen=True)
class NeutralAtmosphere:
    """Exponential neutral CO2 atmosphere n(h) = n_s exp(-h / H).

    Parameters
    ----------
    surface_number_density_m3 : float
        Number density at the reference sphere (h = 0) [m^-3]; a typical Mars value is
        p / (k_B T) = 610 Pa / (k_B 210 K) = 2.1e23 m^-3.
    scale_height_m : float
        Density scale height [m] (~11 km near the surface).
    """

    surface_number_density_m3: float
    scale_height_m: float

    def __post_init__(self):
        if not (np.isfinite(self.surface_number_density_m3)
                and self.surface_number_density_m3 >= 0):
            raise RoharnessError("Neutral atmosphere: surface_number_density_m3 must be a "
                                 f"finite number >= 0, got {self.surface_number_density_m3}.")
        if not (np.isfinite(self.scale_height_m) and self.scale_height_m > 0):
            raise RoharnessError("Neutral atmosphere: scale_height_m must be a finite "
                                 f"number > 0, got {self.scale_height_m}.")

    def number_density(self, altitude_m, derivative=False):
        """Number density [m^-3] (and d/dh [m^-4] if ``derivative``) at ``altitude_m``."""
        h = np.asarray(altitude_m, dtype=float)
        n = self.surface_number_density_m3 * np.exp(-h / self.scale_height_m)
        if derivative:
            return n, -n / self.scale_height_m
        return n

    def top_altitude_m(self, rel=1e-12):
        """Altitude above which the density is below ``rel`` of its surface value [m]."""
        return float(self.scale_height_m * np.log(1.0 / rel))


# --------------------------------------------------------------------------------------
# Chapman grazing-incidence function
# --------------------------------------------------------------------------------------
def _gl_panels(edges, order):
    t, w = np.polynomial.legendre.leggauss(order)
    mid = 0.5 * (edges[1:] + edges[:-1])
    half = 0.5 * (edges[1:] - edges[:-1])
    return (mid[:, None] + half[:, None] * t).ravel(), (half[:, None] * w).ravel()


# Nodes for the v-integral below: v in [0, 7] (e^-49 ~ 5e-22 truncation), panels geometric
# from 1e-8 so that the transition of the integrand at v ~ cos(chi) sqrt(x/2) is resolved
# however close chi is to 90 deg.
_CH_V, _CH_W = _gl_panels(np.concatenate(([0.0], np.geomspace(1e-8, 7.0, 44))), 8)
_CH_W = _CH_W * np.exp(-_CH_V**2)


def _chapman_le90(x, c, chunk=4096, derivative=True, block=512):
    """Ch(x, chi) and dCh/dx for cos(chi) = c >= 0, by quadrature of the exact definition.

    Ch(x, chi) = int_0^inf exp(x - sqrt(x^2 + t^2 + 2 x t c)) dt; with
    w = sqrt(x^2 + t^2 + 2 x t c) - x and w = v^2 this is
    int_0^inf exp(-v^2) 2 v (x + v^2) / sqrt(x^2 c^2 + 2 x v^2 + v^4) dv (smooth at c = 0).
    With ``derivative=False`` dCh/dx is not formed (None; Ch is the same to the last bit).

    The integrands are formed in place, ``block`` rows at a time in reused buffers (the
    operations of the plain expressions, in their order), and summed against the weights
    ``chunk`` rows at a time (the matrix-vector products see the same shapes whatever the
    block, so the result does not depend on it).
    """
    ch = np.empty_like(x)
    dch = np.empty_like(x) if derivative else None
    v = _CH_V[None, :]
    v2 = v * v
    v4 = v2 * v2
    tv = 2.0 * v
    k = max(1, min(chunk, x.size))
    g = np.empty((k, v.size))
    dg = np.empty((k, v.size)) if derivative else None
    b = min(block, k)
    s2, s, t = np.empty((b, v.size)), np.empty((b, v.size)), np.empty((b, v.size))
    for i in range(0, x.size, chunk):
        n = min(chunk, x.size - i)
        for j in range(0, n, block):
            m = min(block, n - j)
            xi = x[i + j:i + j + m, None]
            ci = c[i + j:i + j + m, None]
            s2_, s_, t_, g_ = s2[:m], s[:m], t[:m], g[j:j + m]
            np.multiply(2.0 * xi, v2, out=s2_)
            s2_ += xi * xi * ci * ci      # s^2 = x^2 c^2 + 2 x v^2 + v^4
            s2_ += v4
            np.sqrt(s2_, out=s_)
            np.add(xi, v2, out=g_)        # g = 2 v (x + v^2) / s
            g_ *= tv
            g_ /= s_
            if derivative:                # dg = 2 v (1/s - (x + v^2)(x c^2 + v^2) / s^3)
                d_ = dg[j:j + m]
                np.add(xi, v2, out=d_)
                np.add(xi * ci * ci, v2, out=t_)
                d_ *= t_
                np.multiply(s2_, s_, out=t_)
                d_ /= t_
                np.divide(1.0, s_, out=t_)
                np.subtract(t_, d_, out=d_)
                d_ *= tv
        ch[i:i + n] = g[:n] @ _CH_W
        if derivative:
            dch[i:i + n] = dg[:n] @ _CH_W
    return ch, dch


def log_chapman_grazing(x, sza_deg):
    """Natural log of the Chapman grazing-incidence function and its x-derivative.

    Parameters
    ----------
    x : array_like
        (R + h) / H, the radius in units of the scale height [1]; > 0.
    sza_deg : array_like
        Solar zenith angle chi [deg], 0-180 (broadcast against ``x``).

    Returns
    -------
    log_ch, dlog_ch_dx : ndarray
        ln Ch(x, chi) and d ln Ch / dx.

    Notes
    -----
    For chi <= 90 deg the exact integral definition [1]_ is integrated numerically
    (composite Gauss-Legendre, relative error < 2e-12 against adaptive quadrature). For
    chi > 90 deg the reflection formula [2]_

    .. math::

        \\mathrm{Ch}(x, \\chi) = 2\\, e^{x (1 - \\sin\\chi)}\\,
        \\mathrm{Ch}(x \\sin\\chi, 90^\\circ)
        - \\mathrm{Ch}(x, 180^\\circ - \\chi), \\quad
        \\mathrm{Ch}(y, 90^\\circ) = y\\, e^{y} K_1(y)

    is used, in log form so that large x (1 - sin chi) cannot overflow. The function is the
    mathematical one: it ignores the planet's shadow (valid while the grazing ray's tangent
    point, at radius (R + h) sin chi, is above the surface).
    """
    return _log_chapman(x, sza_deg, True)


def _log_chapman(x, sza_deg, derivative):
    """ln Ch and (if ``derivative``, else None) d ln Ch/dx: :func:`log_chapman_grazing`."""
    x, chi = np.broadcast_arrays(np.asarray(x, dtype=float),
                                 np.deg2rad(np.asarray(sza_deg, dtype=float)))
    shape = x.shape
    x = x.ravel().astype(float)
    chi = chi.ravel().astype(float)
    if np.any(~np.isfinite(x)) or np.any(x <= 0):
        raise RoharnessError("Chapman function: x = (R + h) / H must be finite and > 0.")
    if np.any(~np.isfinite(chi)) or np.any(chi < 0) or np.any(chi > np.pi):
        raise RoharnessError("Chapman function: solar zenith angle must be within 0-180 deg.")
    log_ch = np.empty_like(x)
    dlog = np.empty_like(x) if derivative else None
    day = chi <= 0.5 * np.pi
    if np.any(day):
        ch, dch = _chapman_le90(x[day], np.cos(chi[day]), derivative=derivative)
        log_ch[day] = np.log(ch)
        if derivative:
            dlog[day] = dch / ch
    night = ~day
    if np.any(night):
        xn = x[night]
        s = np.sin(chi[night])
        y = xn * s
        ch90 = y * special.k1e(y)                       # Ch(y, 90 deg) = y e^y K1(y)
        ch_m, dch_m = _chapman_le90(xn, -np.cos(chi[night]),  # Ch(x, 180 deg - chi)
                                    derivative=derivative)
        e = xn * (1.0 - s)
        damp = np.exp(-e)
        inner = 2.0 * ch90 - ch_m * damp               # Ch e^{-x(1 - sin chi)}
        log_ch[night] = e + np.log(inner)
        if derivative:
            dch90 = y * (special.k1e(y) - special.k0e(y))   # d/dy [y e^y K1(y)]
            # d/dx [Ch] = 2 e^e [s Ch90'(y) + (1 - s) Ch90(y)] - dCh_m/dx
            d_inner = 2.0 * (s * dch90 + (1.0 - s) * ch90) - dch_m * damp
            dlog[night] = d_inner / inner
    return log_ch.reshape(shape), (dlog.reshape(shape) if derivative else None)


def chapman_grazing(x, sza_deg):
    """Chapman grazing-incidence function Ch(x, chi) (see :func:`log_chapman_grazing`).

    Ch -> sec(chi) (1 - tan^2(chi) / x) for large x at chi < 90 deg, and
    Ch(x, 90 deg) = x e^x K_1(x) ~ sqrt(pi x / 2).
    """
    return np.exp(_log_chapman(x, sza_deg, False)[0])


# --------------------------------------------------------------------------------------
# Electron density
# --------------------------------------------------------------------------------------
def _check_grazing(grazing):
    if grazing not in GRAZING_MODELS:
        raise ValueError(f"unknown grazing model {grazing!r}; known: {', '.join(GRAZING_MODELS)}")


def _log_obliquity(altitude_m, sza_deg, layer, grazing, reference_radius_m, derivative=True):
    """ln q and d ln q / dz for one layer (q = sec chi or Ch(x, chi); the derivative is
    None unless ``derivative``)."""
    h, chi = np.broadcast_arrays(np.asarray(altitude_m, float), np.asarray(sza_deg, float))
    if grazing == "sec":
        c = np.cos(np.deg2rad(chi))
        with np.errstate(divide="ignore"):
            logq = np.where(c > 0, -np.log(np.where(c > 0, c, 1.0)), np.inf)
        return logq, np.zeros_like(logq)
    x = (reference_radius_m + h) / layer.scale_height_m
    return _log_chapman(x, chi, derivative)  # dz = dx for a fixed layer


def _chapman_from_logq(h, layer, logq, dlogq_dz, derivative):
    # N = N0 exp{(1 - z - q e^-z) / 2}, dN/dz = N/2 [-1 + q e^-z (1 - dlnq/dz)]: evaluated
    # in place (the ray tracer calls this on ~1e7 nodes; temporaries cost more than the
    # arithmetic); every operation is that of the plain expression, in the same order
    if np.ndim(h) == 0 and np.ndim(logq) == 0:  # scalars: the same on arrays of one
        out = _chapman_from_logq(np.reshape(h, 1), layer, np.reshape(logq, 1),
                                 None if dlogq_dz is None else np.reshape(dlogq_dz, 1),
                                 derivative)
        return (out[0][0], out[1][0]) if derivative else out[0]
    z = np.subtract(h, layer.h0_m)
    z /= layer.scale_height_m                 # z = (h - h0) / H
    qe = np.subtract(logq, z)
    np.minimum(qe, 700.0, out=qe)
    with np.errstate(over="ignore"):
        np.exp(qe, out=qe)                    # q e^{-z}; beyond e^700 N is 0 anyway
    n = np.subtract(1.0, z, out=z)
    n -= qe
    n *= 0.5
    np.exp(n, out=n)
    n *= layer.n0_m3
    if not derivative:
        return n
    dn = np.subtract(1.0, dlogq_dz)
    dn *= qe
    dn += -1.0
    dn *= n * 0.5
    np.copyto(dn, 0.0, where=~(n > 0))
    dn /= layer.scale_height_m
    return n, dn


def chapman_layer_density(altitude_m, sza_deg, layer, grazing="chapman",
                          reference_radius_m=MARS_MEAN_RADIUS_M, derivative=False):
    """Electron density of one alpha-Chapman layer [m^-3].

    Parameters
    ----------
    altitude_m : array_like
        Altitude above the reference sphere [m].
    sza_deg : array_like
        Solar zenith angle [deg] (broadcast against ``altitude_m``).
    layer : ChapmanLayer
    grazing : {"chapman", "sec"}
        Obliquity factor: Chapman grazing-incidence function or sec(chi) (which is 0 sun,
        i.e. N = 0, for chi >= 90 deg).
    reference_radius_m : float
        Radius R of the reference sphere [m] (for x = (R + h) / H).
    derivative : bool
        Also return dN/dh [m^-4].

    Returns
    -------
    N : ndarray, or (N, dN/dh)

    Notes
    -----
    .. math:: N = N_0 \\exp\\{\\tfrac12[1 - z - q e^{-z}]\\}, \\quad
              \\frac{dN}{dh} = \\frac{N}{2H}\\left[-1 + q e^{-z}
              \\left(1 - \\frac{d\\ln q}{dz}\\right)\\right]
    """
    _check_grazing(grazing)
    h = np.asarray(altitude_m, dtype=float)
    logq, dlogq = _log_obliquity(h, sza_deg, layer, grazing, reference_radius_m, derivative)
    h = np.broadcast_to(h, logq.shape)
    return _chapman_from_logq(h, layer, logq, dlogq, derivative)


def electron_density(altitude_m: ArrayLike, sza_deg: ArrayLike,
                     layers: Sequence[ChapmanLayer], grazing: str = "chapman",
                     reference_radius_m: float = MARS_MEAN_RADIUS_M, derivative: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Electron density of a sum of alpha-Chapman layers [m^-3].

    Parameters
    ----------
    altitude_m : array_like
        Altitude above the reference sphere [m].
    sza_deg : array_like
        Solar zenith angle [deg], broadcast against ``altitude_m``.
    layers : sequence of ChapmanLayer
    grazing : {"chapman", "sec"}
    reference_radius_m : float
    derivative : bool
        Also return dN/dh [m^-4].

    Returns
    -------
    N_e : ndarray, or (N_e, dN_e/dh)
        Shaped like the broadcast of ``altitude_m`` and ``sza_deg``.
    """
    _check_grazing(grazing)
    layers = _check_layers(layers)
    shape = np.broadcast_shapes(np.shape(altitude_m), np.shape(sza_deg))
    h = np.asarray(altitude_m, dtype=float)
    total = np.zeros(shape)
    dtotal = np.zeros(shape)
    obliquity = {}  # ln q depends on a layer through H only: layers of equal H share it
    for layer in layers:
        key = layer.scale_height_m
        if key not in obliquity:
            obliquity[key] = _log_obliquity(h, sza_deg, layer, grazing, reference_radius_m,
                                            derivative)
        logq, dlogq = obliquity[key]
        out = _chapman_from_logq(np.broadcast_to(h, logq.shape), layer, logq, dlogq,
                                 derivative)
        if derivative:
            total = total + out[0]
            dtotal = dtotal + out[1]
        else:
            total = total + out
    return (total, dtotal) if derivative else total


def _check_layers(layers):
    layers = tuple(layers)
    if not layers or not all(isinstance(layer, ChapmanLayer) for layer in layers):
        raise RoharnessError("Ionosphere: expected a non-empty sequence of ChapmanLayer.")
    return layers


def ionosphere_top_altitude_m(layers, rel=1e-12):
    """Altitude above which every layer is below ``rel`` of its N_0 [m].

    On the topside N/N_0 < exp((1 - z)/2), so z = 1 + 2 ln(1/rel) suffices.
    """
    layers = _check_layers(layers)
    zt = 1.0 + 2.0 * np.log(1.0 / rel)
    return float(max(layer.h0_m + zt * layer.scale_height_m for layer in layers))


class ElectronDensityProfile:
    """N_e(h) and dN_e/dh of a layer set at ONE solar zenith angle, fast.

    The ray tracer evaluates the profile at ~1e7 points; calling the Chapman-function
    quadrature each time would cost ~300 times more. Here ln Ch(x, chi) of each layer is
    tabulated once on a 2 km altitude grid from -100 km to 6000 km with its exact
    x-derivative, and evaluated by cubic Hermite interpolation (C1, error O(step^4); the
    relative error of ln Ch is < 1e-10, checked in tests/test_synth/test_ionosphere.py).
    The layer formula itself is evaluated exactly. With ``grazing="sec"`` nothing is
    tabulated.

    Parameters
    ----------
    layers : sequence of ChapmanLayer
    sza_deg : float
        Solar zenith angle of the (spherically symmetric) profile [deg].
    grazing : {"chapman", "sec"}
    reference_radius_m : float
    """

    _GRID_M = np.arange(-100e3, 6000e3 + 1.0, 2e3)

    def __init__(self, layers, sza_deg, grazing="chapman",
                 reference_radius_m=MARS_MEAN_RADIUS_M):
        _check_grazing(grazing)
        self.layers = _check_layers(layers)
        self.sza_deg = float(sza_deg)
        if not (0.0 <= self.sza_deg <= 180.0):
            raise RoharnessError(f"Ionosphere: sza_deg = {sza_deg} is outside 0-180 deg.")
        self.grazing = grazing
        self.reference_radius_m = float(reference_radius_m)
        self._tables = []
        by_h = {}  # layers of equal scale height share one table (the same object)
        for layer in self.layers:
            if grazing == "sec":
                self._tables.append(None)
                continue
            if layer.scale_height_m not in by_h:
                x = (self.reference_radius_m + self._GRID_M) / layer.scale_height_m
                logq, dlogq_dx = log_chapman_grazing(x, self.sza_deg)
                by_h[layer.scale_height_m] = (logq, dlogq_dx / layer.scale_height_m)
            self._tables.append(by_h[layer.scale_height_m])

    def _hermite(self, table, h):
        """Cubic Hermite interpolation of (value, d/dh) tabulated on the uniform grid.

        Evaluated as a per-interval cubic in Horner form, c0 + t (c1 + t (c2 + t c3)),
        with the coefficients precomputed once per table (see :meth:`_coefficients`).
        """
        c0, c1, c2, c3 = self._coefficients(table)
        if np.ndim(h) == 0:  # a scalar: the same on an array of one
            value, deriv = self._hermite(table, np.reshape(h, 1))
            return value[0], deriv[0]
        step = self._GRID_M[1] - self._GRID_M[0]
        u = np.clip(h, self._GRID_M[0], self._GRID_M[-1])
        u -= self._GRID_M[0]
        u /= step
        i = u.astype(np.intp)
        np.minimum(i, self._GRID_M.size - 2, out=i)
        t = u - i
        a1, a2, a3 = np.take(c1, i), np.take(c2, i), np.take(c3, i)
        # value = a0 + t (a1 + t (a2 + t a3)), deriv = (a1 + t (2 a2 + t 3 a3)) / step, in
        # place, each operation that of the plain expression
        value = np.multiply(t, a3)
        value += a2
        value *= t
        value += a1
        value *= t
        value += np.take(c0, i)
        a3 *= 3.0
        a3 *= t
        a2 *= 2.0
        a3 += a2
        a3 *= t
        a3 += a1
        a3 /= step
        return value, a3

    def _coefficients(self, table):
        """Hermite cubic of each grid interval: value = sum_k c_k t^k, t in [0, 1]."""
        key = id(table)
        cache = self.__dict__.setdefault("_coef_cache", {})
        if key not in cache:
            y, dy = table
            step = self._GRID_M[1] - self._GRID_M[0]
            y0, y1 = y[:-1], y[1:]
            m0, m1 = dy[:-1] * step, dy[1:] * step
            cache[key] = (y0, m0, 3.0 * (y1 - y0) - 2.0 * m0 - m1,
                          2.0 * (y0 - y1) + m0 + m1)
        return cache[key]

    def __call__(self, altitude_m, derivative=False):
        """N_e [m^-3] (and dN_e/dh [m^-4]) at ``altitude_m`` [m]."""
        h = np.asarray(altitude_m, dtype=float)
        total = np.zeros(h.shape)
        dtotal = np.zeros(h.shape)
        interpolated = {}  # a table shared by several layers is interpolated once
        for layer, table in zip(self.layers, self._tables):
            if table is None:
                logq, dlogq = _log_obliquity(h, self.sza_deg, layer, "sec", 0.0)
            else:
                if id(table) not in interpolated:
                    interpolated[id(table)] = self._hermite(table, h)
                logq, dlogq_dh = interpolated[id(table)]
                dlogq = dlogq_dh * layer.scale_height_m
            n, dn = _chapman_from_logq(h, layer, logq, dlogq, True)
            total += n
            dtotal += dn
        return (total, dtotal) if derivative else total

    def top_altitude_m(self, rel=1e-12):
        """See :func:`ionosphere_top_altitude_m`."""
        return ionosphere_top_altitude_m(self.layers, rel)


# --------------------------------------------------------------------------------------
# Peak laws
# --------------------------------------------------------------------------------------
#: Segale et al. (2024) table (SCIENCE.md): group -> (M2 z0, M1 z0, M2 L, M1 L) [km].
SEGALE_TABLE_KM = {
    "dawn_aphelion": (114.7, 98.5, 12.2, 7.0),
    "dawn_perihelion": (122.8, 103.1, 9.4, 6.4),
    "dusk_aphelion": (121.3, 107.1, 9.5, 3.1),
    "dusk_perihelion": (119.8, 99.4, 10.3, 8.3),
    "fox_weber2012": (125.0, 109.0, 7.2, 4.0),
    "fallows2015": (130.9, 104.9, 5.2, 2.5),
}

#: Density law N_m = N_0 cos(chi)^k used with the Segale-family altitude laws:
#: M2 from Nemec et al. (2011) [5]; M1 (our choice, no ROSE fit is published in the brief):
#: Parrott (2025)'s M1 law at solar minimum (Segale's data are solar-minimum), i.e.
#: N_0 = 7.3e10 + 2.5e8 * 70 sfu = 9.05e10 m^-3 with Parrott's exponent k = 0.34.
SEGALE_DENSITY_LAW = {"M2": (1.59e11, 0.546), "M1": (7.3e10 + 2.5e8 * 70.0, 0.34)}


def peak_parameters(sza_deg, model="parrott2025", *, f107_sfu=None, f_euv_mw_m2=None,
                    group=None, scale_height_m=DEFAULT_SCALE_HEIGHT_M,
                    reference_radius_m=MARS_MEAN_RADIUS_M, density_law=None):
    """Peak density and altitude of M2 and M1 from a published empirical law.

    Parameters
    ----------
    sza_deg : float
        Solar zenith angle [deg]; the laws are fitted below 90 deg, so 0 <= sza < 90.
    model : {"parrott2025", "segale2024", "fox_weber2012", "fallows2015"}
    f107_sfu : float, optional
        F10.7 solar radio flux [sfu] as used in Parrott's regression (``parrott2025``).
    f_euv_mw_m2 : float, optional
        EUV flux [mW m^-2], alternative to ``f107_sfu`` (``parrott2025``).
    group : str, optional
        Segale group for ``segale2024``: dawn_aphelion, dawn_perihelion, dusk_aphelion,
        dusk_perihelion.
    scale_height_m : float or dict
        H used in x = (R + z0) / H of Ch(x, chi) for the Segale-family altitude laws [m]
        (a dict maps layer name to H).
    reference_radius_m : float
    density_law : dict, optional
        ``{"M2": (N0_m3, k), "M1": (N0_m3, k)}`` for the Segale family; default
        :data:`SEGALE_DENSITY_LAW`.

    Returns
    -------
    dict
        ``{"M2": (peak_density_m3, peak_altitude_m), "M1": (...)}``.

    Notes
    -----
    ``parrott2025`` [3]_:

    .. math::
        N_{M2} = 1.6\\times10^{11} \\cos^{0.25}\\chi + 4.3\\times10^{8} F_{10.7}
        \\;(\\text{or } + 5.3\\times10^{10} F_{EUV}),\\quad
        h_{M2} = 125.9\\,\\mathrm{km} + 5.9\\,\\mathrm{km} \\ln\\sec\\chi

        N_{M1} = 7.3\\times10^{10} \\cos^{0.34}\\chi + 2.5\\times10^{8} F_{10.7}
        \\;(\\text{or } + 3.1\\times10^{10} F_{EUV}),\\quad
        h_{M1} = 106.2\\,\\mathrm{km} + 5.3\\,\\mathrm{km} \\ln\\sec\\chi

    The paper prints the exponents as cos(SZA)^-0.25 and cos(SZA)^-0.34 while describing
    densities that FALL with SZA; a negative exponent would make them rise. We read them as
    positive exponents on cos (the physical reading, consistent with Chapman theory's
    cos^0.5 and older fits 0.476-0.57).

    Segale family [4]_: :math:`h_m = z_0 + L \\ln \\mathrm{Ch}(x_0, \\chi)` with
    :math:`x_0 = (R + z_0)/H`, densities :math:`N_m = N_0 \\cos^k\\chi`
    (:data:`SEGALE_DENSITY_LAW`).
    """
    if model not in PEAK_LAW_MODELS:
        raise ValueError(f"unknown peak-law model {model!r}; known: {', '.join(PEAK_LAW_MODELS)}")
    chi = float(sza_deg)
    if not (0.0 <= chi < 90.0):
        raise RoharnessError(f"Peak law {model}: sza_deg = {sza_deg} is outside its fitted "
                             "range; expected 0 <= sza < 90 deg.")
    cos_chi = np.cos(np.deg2rad(chi))
    lnsec = -np.log(cos_chi)
    if model == "parrott2025":
        if (f107_sfu is None) == (f_euv_mw_m2 is None):
            raise RoharnessError("Peak law parrott2025: give exactly one of f107_sfu and "
                                 "f_euv_mw_m2.")
        flux = f107_sfu if f107_sfu is not None else f_euv_mw_m2
        if not (np.isfinite(flux) and flux >= 0):
            raise RoharnessError(f"Peak law parrott2025: solar flux {flux} must be >= 0.")
        if f107_sfu is not None:
            s2, s1 = 4.3e8 * f107_sfu, 2.5e8 * f107_sfu
        else:
            s2, s1 = 5.3e10 * f_euv_mw_m2, 3.1e10 * f_euv_mw_m2
        return {
            "M2": (1.6e11 * cos_chi**0.25 + s2, 125.9e3 + 5.9e3 * lnsec),
            "M1": (7.3e10 * cos_chi**0.34 + s1, 106.2e3 + 5.3e3 * lnsec),
        }
    if model == "segale2024":
        if group not in SEGALE_GROUPS:
            raise ValueError(f"unknown segale2024 group {group!r}; known: "
                             f"{', '.join(SEGALE_GROUPS)}")
        row = SEGALE_TABLE_KM[group]
    else:
        row = SEGALE_TABLE_KM[model]
    law = dict(SEGALE_DENSITY_LAW if density_law is None else density_law)
    out = {}
    for name, z0_km, l_km in (("M2", row[0], row[2]), ("M1", row[1], row[3])):
        h_sc = scale_height_m[name] if isinstance(scale_height_m, dict) else scale_height_m
        x0 = (reference_radius_m + z0_km * 1e3) / h_sc
        log_ch = float(log_chapman_grazing(x0, chi)[0])
        n0, k = law[name]
        out[name] = (n0 * cos_chi**k, z0_km * 1e3 + l_km * 1e3 * log_ch)
    return out


def layers_from_peak_law(sza_deg, model="parrott2025", *, scale_height_m=DEFAULT_SCALE_HEIGHT_M,
                         grazing="chapman", reference_radius_m=MARS_MEAN_RADIUS_M, **law_kw):
    """Chapman layers whose peaks at ``sza_deg`` sit where a peak law puts them.

    Parameters
    ----------
    sza_deg : float
        Solar zenith angle of the profile [deg].
    model : str
        Peak law, see :func:`peak_parameters` (``law_kw`` are passed on to it).
    scale_height_m : float or dict
        Scale height H of every layer, or a dict by layer name [m].
    grazing : {"chapman", "sec"}
        Obliquity factor the layers will be evaluated with.

    Returns
    -------
    tuple of ChapmanLayer
        (M2, M1), with subsolar-equivalent N_0 and h_0.

    Notes
    -----
    The laws give the peak (N_m, h_m) at chi, not a subsolar layer. We set
    :math:`N_0 = N_m \\sqrt{q}` and :math:`h_0 = h_m - H \\ln q` with q = sec(chi), or
    q = Ch(x_m, chi) at x_m = (R + h_m) / H. With ``"sec"`` the layer's peak at chi is then
    exactly (N_m, h_m); with ``"chapman"`` it is within the small shift due to the
    x-dependence of Ch (a few metres and ~1e-4 relative at SZA < 80 deg). Evaluate the layers at
    the same ``sza_deg``.
    """
    _check_grazing(grazing)
    peaks = peak_parameters(sza_deg, model, scale_height_m=scale_height_m,
                            reference_radius_m=reference_radius_m, **law_kw)
    layers = []
    for name in ("M2", "M1"):
        nm, hm = peaks[name]
        h_sc = scale_height_m[name] if isinstance(scale_height_m, dict) else scale_height_m
        if grazing == "sec":
            logq = -np.log(np.cos(np.deg2rad(sza_deg)))
        else:
            logq = float(log_chapman_grazing((reference_radius_m + hm) / h_sc, sza_deg)[0])
        layers.append(ChapmanLayer(name, float(nm * np.exp(0.5 * logq)),
                                   float(hm - h_sc * logq), float(h_sc)))
    return tuple(layers)
