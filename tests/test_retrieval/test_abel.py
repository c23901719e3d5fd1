"""Inverse Abel transform against analytic Abel pairs (and an independent quadrature).

Pairs (ln n(x) <-> alpha(a), alpha > 0 toward the planet):

* Gaussian: ln n = A exp(-x^2/s^2)  <->  alpha = 2 sqrt(pi) A (a/s) exp(-a^2/s^2);
* polynomial, support x < R: ln n = A (1 - x^2/R^2)^m  <->
  alpha = 2 A m B(1/2, m) (a/R) (1 - a^2/R^2)^(m - 1/2)  (B the beta function), derived by
  substituting u = x^2 - a^2 in alpha(a) = -2a int_a^R (d ln n/dx) / sqrt(x^2 - a^2) dx.

The pairs are exact, so the only error is the piecewise-linear interpolation of alpha:
second order in the grid spacing h.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, target
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import beta

from retrieval.abel import inverse_abel, invert_bending_angle
from retrieval.errors import RoharnessError


class GaussianPair:
    """Oracle: r-grid, ln n (func) and alpha (abel) of the Gaussian pair; valid everywhere
    on a grid reaching 7 s (alpha < 1e-20 A there, so 'alpha = 0 above the top' is exact)."""

    def __init__(self, amplitude, scale_m, lo, n):
        self.A, self.s = amplitude, scale_m
        self.a = np.linspace(lo * scale_m, 7.0 * scale_m, n)
        self.h = self.a[1] - self.a[0]
        self.log_n = amplitude * np.exp(-(self.a / scale_m) ** 2)
        self.alpha = 2 * np.sqrt(np.pi) * amplitude * (self.a / scale_m) * np.exp(
            -(self.a / scale_m) ** 2)


class PolynomialPair:
    """Oracle for ln n = A (1 - x^2/R^2)^m on [lo R, R] (zero above R, exactly)."""

    def __init__(self, amplitude, radius_m, m, lo, n):
        self.A, self.R, self.m = amplitude, radius_m, m
        self.a = np.linspace(lo * radius_m, radius_m, n)
        self.h = self.a[1] - self.a[0]
        w = 1 - (self.a / radius_m) ** 2
        self.log_n = amplitude * w**m
        self.alpha = 2 * amplitude * m * beta(0.5, m) * (self.a / radius_m) * np.abs(w) ** (m - 0.5)


def test_oracles_themselves():
    """The pairs satisfy the forward Abel integral (scipy quad), checked at a few a."""
    g = GaussianPair(1e-3, 1.0, 0.3, 50)
    p = PolynomialPair(-2e-6, 2.0, 3, 0.2, 50)
    for o, dlogn in [
        (g, lambda x: -2 * x / g.s**2 * g.A * np.exp(-(x / g.s) ** 2)),
        (p, lambda x: -2 * p.m * x / p.R**2 * p.A * (1 - (x / p.R) ** 2) ** (p.m - 1)),
    ]:
        top = 7.0 * g.s if o is g else p.R
        for i in (3, 20, 40):
            a = o.a[i]
            # alpha(a) = -2a int_a^top dlogn(x) / sqrt(x^2 - a^2) dx, x = a cosh(t)
            val = quad(lambda t: dlogn(a * np.cosh(t)), 0, np.arccosh(top / a), limit=200)[0]
            assert -2 * a * val == pytest.approx(o.alpha[i], rel=1e-9)  # quad ~1e-12


@pytest.mark.parametrize("oracle", [
    lambda n: GaussianPair(1e-3, 1.0, 0.3, n),
    lambda n: GaussianPair(-5e-8, 3.6e6, 0.9, n),            # Mars-sized scale [m], plasma-like
    lambda n: PolynomialPair(-2e-6, 3.9e6, 3, 0.86, n),      # support up to 3900 km radius
    lambda n: PolynomialPair(4e-4, 1.0, 4, 0.05, n),
], ids=["gauss", "gauss-mars", "poly3-mars", "poly4"])
def test_second_order_convergence(oracle):
    """Linear scheme: max error falls by 4 per halving of h (observed order 1.8-2.2)."""
    errs = []
    for n in (200, 400, 800, 1600):
        o = oracle(n)
        errs.append(np.max(np.abs(inverse_abel(o.a, o.alpha, scheme="linear") - o.log_n))
                    / abs(o.A))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    # second order: the interpolation error of a smooth alpha is h^2 alpha''/8
    assert np.all((orders > 1.8) & (orders < 2.2)), (errs, orders)
    assert errs[-1] < 1e-5  # 1600 levels: relative error well below the 1e-4 round-trip aim


@given(
    amplitude=st.floats(1e-9, 1e-2), sign=st.sampled_from([-1.0, 1.0]),
    scale_m=st.floats(1e5, 1e7), lo=st.floats(0.05, 1.5), n=st.integers(150, 600),
    descending=st.booleans(),
)
@example(amplitude=1e-3, sign=1.0, scale_m=1e6, lo=0.05, n=150, descending=False)
def test_gaussian_pair_property(amplitude, sign, scale_m, lo, n, descending):
    """Error bounded by C (h/s)^2 |A| with C = 1: measured C ~ 0.27 (h = grid step)."""
    o = GaussianPair(sign * amplitude, scale_m, lo, n)
    a, alpha = (o.a[::-1], o.alpha[::-1]) if descending else (o.a, o.alpha)
    got = inverse_abel(a, alpha)
    if descending:
        got = got[::-1]
    err = np.max(np.abs(got - o.log_n)) / (amplitude * (o.h / scale_m) ** 2)
    target(float(err), label="error / (A (h/s)^2)")
    assert err < 1.0


@given(amplitude=st.floats(1e-9, 1e-2), m=st.integers(3, 6), lo=st.floats(0.05, 0.95),
       n=st.integers(150, 600))
def test_polynomial_pair_property(amplitude, m, lo, n):
    """Polynomial pair: error bounded by C m^2 (h/R)^2 |A| (alpha'' grows like m^2)."""
    o = PolynomialPair(-amplitude, 3.9e6, m, lo, n)
    err = np.max(np.abs(inverse_abel(o.a, o.alpha) - o.log_n)) / (
        amplitude * m**2 * (o.h / o.R) ** 2)
    target(float(err), label="error / (A m^2 (h/R)^2)")
    assert err < 1.0  # measured up to ~0.1


def test_radius_and_refractivity():
    o = PolynomialPair(-3e-6, 3.9e6, 3, 0.87, 400)
    r, refr = invert_bending_angle(o.a, o.alpha)
    n_true = np.exp(o.log_n)
    # r = a / n: the relative error is that of ln n (~1e-6 |A| here), i.e. < 1e-11 of r
    np.testing.assert_allclose(r, o.a / n_true, rtol=1e-11)
    np.testing.assert_allclose(refr, np.expm1(o.log_n), atol=1e-5 * 3e-6)


def test_exponential_tail_against_quadrature():
    """The exponential tail integral equals scipy's quadrature of the same tail.

    The test substitutes a = a_N + w^2 (the module uses a = x0 + v^2), so the singular
    endpoint is removed differently.
    """
    scale = 40e3
    a = np.linspace(3.50e6, 3.70e6, 201)
    alpha = -3e-5 * np.exp(-(a - a[0]) / scale)       # exactly exponential: the fit is exact
    tail = (inverse_abel(a, alpha, top="exponential", top_fit_samples=10)
            - inverse_abel(a, alpha, top="zero")) * np.pi
    a_top, al_top = a[-1], alpha[-1]
    for i in (0, 100, 190, 199, 200):
        x = a[i]

        def f(w):
            return (2 * w * al_top * np.exp(-w * w / scale)
                    / np.sqrt((a_top + w * w) ** 2 - x * x))

        ref = quad(f, 0, np.sqrt(60 * scale), limit=400, epsabs=0, epsrel=1e-12)[0]
        assert tail[i] == pytest.approx(ref, rel=1e-9, abs=1e-22)  # 48-node Gauss: ~1e-12


def test_top_treatments_differ_only_by_the_tail():
    o = GaussianPair(1e-3, 1.0, 0.3, 300)
    cut = o.a < 2.0  # stop inside the profile: the zero top then misses the tail
    zero = inverse_abel(o.a[cut], o.alpha[cut], top="zero")
    expo = inverse_abel(o.a[cut], o.alpha[cut], top="exponential", top_fit_samples=5)
    full = inverse_abel(o.a, o.alpha)[cut]
    # the Gaussian tail is not exponential, but the fitted tail recovers most of the missing
    # contribution near the top
    assert np.abs(expo - full)[-1] < 0.5 * np.abs(zero - full)[-1]


@pytest.mark.parametrize("a, alpha, match", [
    ([1.0, 2.0, np.nan, 4.0], [1, 2, 3, 4], "NaN or infinite"),
    ([1.0, 2.0, 3.0, 4.0], [1, np.inf, 3, 4], "NaN or infinite"),
    ([1.0, 3.0, 2.0, 4.0], [1, 2, 3, 4], "not strictly monotonic"),
    ([1.0, 2.0, 2.0, 4.0], [1, 2, 3, 4], "not strictly monotonic"),
    ([1.0], [1.0], "at least 2 samples"),
    ([1.0, 2.0], [1.0], "1-D arrays of one length"),
    ([-1.0, 2.0], [1.0, 1.0], "positive"),
])
def test_bad_input_one_sentence(a, alpha, match):
    with pytest.raises(RoharnessError, match=match) as exc:
        inverse_abel(np.array(a), np.array(alpha, float))
    assert "\n" not in str(exc.value)


def test_bad_tail_and_model():
    a = np.linspace(1, 2, 20)
    with pytest.raises(RoharnessError, match="change sign"):
        inverse_abel(a, np.sin(8 * a), top="exponential")
    with pytest.raises(RoharnessError, match="do not decay"):
        inverse_abel(a, np.exp(a), top="exponential")
    with pytest.raises(ValueError, match="known: zero, exponential"):
        inverse_abel(a, a, top="linear")
