"""Rays that end inside the ionosphere: the truncated half-path correction.

The oracle here is written independently of :mod:`retrieval.one_sided`: the bending of
each half of a ray is integrated in radius (not in x = n r) with scipy's adaptive
quadrature, for an alpha-Chapman layer whose electron density and its derivative are
written out analytically, with the plasma constant from CODATA via scipy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
from scipy.integrate import quad
from scipy.optimize import brentq

from retrieval.abel import inverse_abel
from retrieval.errors import RoharnessError
from retrieval.one_sided import complete_bending, half_path_bending

R = 3389.5e3                       # Mars mean radius [m]
F = 8.4e9                          # X band [Hz]
KP = sc.e**2 / (8 * np.pi**2 * sc.epsilon_0 * sc.m_e)
N0, H0, SH = 1.2e11, 130e3, 10e3   # a subsolar-like M2 layer


def _ne(r):
    z = (r - R - H0) / SH
    return N0 * np.exp(0.5 * (1.0 - z - np.exp(-z)))


def _n(r):
    return 1.0 - KP * _ne(r) / F**2


def _dn_dr(r):
    z = (r - R - H0) / SH
    return -KP / F**2 * _ne(r) * 0.5 * (np.exp(-z) - 1.0) / SH


def _r0(a):
    return brentq(lambda r: _n(r) * r - a, a - 1e4, a + 1e4, xtol=1e-7)


def _half(a, r0, r1):
    """-a * integral_{r0}^{r1} n' / (n sqrt(n^2 r^2 - a^2)) dr, with r = r0 + u^2."""
    def g(u):
        r = r0 + u * u
        nn = _n(r)
        return -a * _dn_dr(r) / (nn * np.sqrt((nn * r) ** 2 - a * a)) * 2.0 * u
    return quad(g, 0.0, np.sqrt(r1 - r0), limit=200, epsabs=1e-16, epsrel=1e-10)[0]


TOP = R + 1500e3  # the layer is ~1e-27 of its peak there: vacuum beyond


@pytest.fixture(scope="module")
def rays():
    """Rays every 1 km from 400 to 80 km; the spacecraft end descends from 450 to 150 km
    altitude (always >= 30 km above the tangent point), as MAVEN's does near periapsis."""
    alt = np.arange(400e3, 79e3, -1e3)
    a = R + alt
    rs = np.maximum(R + np.linspace(450e3, 150e3, a.size), a + 30e3)
    r0 = np.array([_r0(x) for x in a])
    far = np.array([_half(x, q, TOP) for x, q in zip(a, r0)])
    near = np.array([_half(x, q, s) for x, q, s in zip(a, r0, rs)])
    return dict(a=a, rs=rs, r0=r0, full=2 * far, observed=far + near, far=far, near=near)


def _ne_error_over_peak(log_n, r0):
    return float(np.max(np.abs(-np.expm1(log_n) * F**2 / KP - _ne(r0))) / N0)


def test_half_path_bending_against_quadrature(rays):
    """beta(a; x_s) = far half minus near half of the oracle, from the exact ln n at the
    levels: within 1e-5 of the largest half-path bending (measured 9.5e-7: 4-point Gauss on
    1 km levels of a cubic spline of ln n, H = 10 km; the bound allows 10x)."""
    a, rs = rays["a"], rays["rs"]
    log_n = np.log(_n(rays["r0"]))
    xs = rs * _n(rs)
    beta = half_path_bending(a, xs, a, log_n)
    expect = rays["far"] - rays["near"]
    scale = np.max(np.abs(rays["far"]))
    assert np.max(np.abs(beta - expect)) <= 1e-5 * scale
    assert np.max(np.abs(expect)) > 0.05 * scale  # the case really truncates rays


def test_complete_bending_restores_the_full_path_inversion(rays):
    """Uncorrected, the truncated rays put 8.1e-2 of the peak into N_e (measured); the
    completed bending inverts to within 1.5x the error of the true full-path bending
    (the Abel scheme's own floor on 1 km levels)."""
    a = rays["a"]
    def invert(al):
        return inverse_abel(a, al)
    floor = _ne_error_over_peak(invert(rays["full"]), rays["r0"])
    raw = _ne_error_over_peak(invert(rays["observed"]), rays["r0"])
    res = complete_bending(a, rays["observed"], rays["rs"][:, None], invert)
    fixed = _ne_error_over_peak(res["log_n"], rays["r0"])
    assert res["converged"] and 2 <= res["iterations"] <= 8
    assert raw >= 20 * max(floor, 1e-4)  # the truncation is the dominant error
    assert fixed <= 1.5 * max(floor, 1e-5)
    assert fixed <= 1e-3


def test_ends_above_the_profile_add_nothing_without_a_tail(rays):
    a = rays["a"]
    log_n = np.log(_n(rays["r0"]))
    beta = half_path_bending(a, np.full(a.size, a.max() + 5e3), a, log_n)
    assert np.all(beta == 0.0)
    # with an exponential tail above the top level they do (ln n < 0 decaying upward:
    # plasma, bending away from the planet)
    tail = half_path_bending(a, np.full(a.size, a.max() + 5e3), a, log_n,
                             top_scale_height_m=20e3)
    assert np.all(tail < 0.0)


def test_an_end_below_the_tangent_point_is_one_sentence(rays):
    a = rays["a"]
    with pytest.raises(RoharnessError, match="cannot lie below the ray's tangent point"):
        half_path_bending(a, a - 1.0, a, np.zeros(a.size))
