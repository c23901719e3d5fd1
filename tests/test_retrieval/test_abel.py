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

import functools

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


# --- The fourth-order (cubic) scheme, its error estimate and the data-chosen top ----------
#
# Oracles on a Mars-sized sphere (levels a few hundred km above 3389.5 km):
# * ExponentialPair, closed form: ln n = eps exp(-(x - x_b)/H) <-> alpha(a) = (2 a eps / H)
#   e^{x_b/H} K_0(a/H) (substitute into alpha = -2a int_a^inf (d ln n/dx)/sqrt(x^2-a^2) dx
#   and use int_a^inf e^{-x/H}/sqrt(x^2-a^2) dx = K_0(a/H)), written with scipy's scaled
#   k0e to avoid overflow;
# * ChapmanPair: ln n = -eps exp{1/2 [1 - z - e^-z]}, z = (x - x_m)/H (plasma-like, negative)
#   with alpha(a) from scipy.integrate.quad of the same integral (x = a + u^2 removes the
#   singularity); the grid ends 50 H above the peak where ln n < 1e-10 eps.

MARS_R = 3389.5e3


class ExponentialPair:
    """Oracle: levels every ``step_m`` from ``x_b``; alpha and ln n in closed form."""

    def __init__(self, eps, scale_m, step_m, base_m=MARS_R + 80e3, span_m=None):
        from scipy.special import k0e
        self.eps, self.H = eps, scale_m
        span = 40.0 * scale_m if span_m is None else span_m
        self.a = base_m + np.arange(0.0, span + 0.5 * step_m, step_m)
        self.log_n = eps * np.exp(-(self.a - base_m) / scale_m)
        self.alpha = (2 * self.a * eps / scale_m * np.exp(-(self.a - base_m) / scale_m)
                      * k0e(self.a / scale_m))


class ChapmanPair:
    """Oracle: a Chapman-shaped (negative) ln n; alpha by scipy quad (valid everywhere)."""

    def __init__(self, eps, peak_m, scale_m, step_m, lo_m=60e3):
        self.eps, self.H = eps, scale_m
        xm = MARS_R + peak_m
        top = xm + 50.0 * scale_m
        self.a = np.arange(MARS_R + lo_m, top + 0.5 * step_m, step_m)
        self.a = self.a[self.a <= top]

        def lnn(x):
            z = (x - xm) / scale_m
            return -eps * np.exp(0.5 * (1.0 - z - np.exp(-z)))

        def dlnn(x):
            z = (x - xm) / scale_m
            return lnn(x) * 0.5 * (np.exp(-z) - 1.0) / scale_m

        self.log_n = lnn(self.a)
        self.alpha = np.array([
            -2 * a * quad(lambda u: 2 * dlnn(a + u * u) / np.sqrt(2 * a + u * u), 0,
                          np.sqrt(top - a), limit=400, epsabs=0, epsrel=1e-10,
                          points=[np.sqrt(max(xm - a, 0.0))] if xm > a else None)[0]
            for a in self.a])


def _max_err(o, **kw):
    return float(np.max(np.abs(inverse_abel(o.a, o.alpha, **kw) - o.log_n)) / abs(o.eps))


def test_exponential_oracle_itself():
    """The closed-form bending angle equals scipy's quadrature of the Abel integral."""
    o = ExponentialPair(1e-7, 10e3, 2e3)
    for i in (0, 10, 50):
        a = o.a[i]
        val = quad(lambda u: 2 * (-o.eps / o.H) * np.exp(-(a + u * u - o.a[0]) / o.H)
                   / np.sqrt(2 * a + u * u), 0, np.sqrt(60 * o.H), epsabs=0, epsrel=1e-12)[0]
        assert -2 * a * val == pytest.approx(o.alpha[i], rel=1e-9)  # quad ~1e-12


def test_cubic_integrates_its_spline():
    """The cubic scheme's quadrature (near band + end-corrected trapezoid) equals scipy
    quad of the same not-a-knot spline times the kernel, on a non-uniform grid: only the
    far-field rule's error remains (the spline times the kernel is not a cubic: measured up
    to 4.9e-7 of the largest integral on this deliberately rough profile, a 44 km sine on
    random 0.5-2 km steps; ~5e-8 on smooth layers)."""
    from scipy.interpolate import CubicSpline
    rng = np.random.default_rng(3)
    a = MARS_R + 60e3 + np.cumsum(rng.uniform(0.5e3, 2.0e3, 300))
    alpha = -1e-5 * np.exp(-0.5 * ((a - a[0] - 80e3) / 15e3) ** 2) + 3e-6 * np.sin(a / 7e3)
    spline = CubicSpline(a, alpha, bc_type="not-a-knot")
    got = inverse_abel(a, alpha) * np.pi
    for i in (0, 1, 57, 150, 290, 298):
        x0 = a[i]
        ref = quad(lambda u: 2 * spline(x0 + u * u) / np.sqrt(2 * x0 + u * u), 0,
                   np.sqrt(a[-1] - x0), limit=2000, epsabs=0, epsrel=1e-12,
                   points=np.sqrt(a[i + 1:] - x0)[:200])[0]
        # 1e-6 of the largest integral: 2x the measured worst (4.9e-7), 1000x below the
        # accuracy target; a wrong weight or a missed segment gives >= 1e-3
        assert abs(got[i] - ref) <= 1e-6 * np.max(np.abs(got)), (i, got[i], ref)


@pytest.mark.parametrize("pair", ["exponential", "chapman"])
@pytest.mark.parametrize("scale_km", [5.0, 7.0, 14.0])
def test_cubic_convergence_and_accuracy(pair, scale_km):
    """Cubic: observed order >= 3 (measured 3.7-4.4) where the linear's is 2 (1.9-1.96), on
    steps of 0.1, 0.2, 0.4 H (above the far-field floor, ~1e-7); and <= 1e-3 of the peak at
    1.5 km steps (measured 6.6e-7 to 6.2e-5, the latter for H = 5 km)."""
    H = scale_km * 1e3
    make = ((lambda dh: ExponentialPair(1e-7, H, dh)) if pair == "exponential"
            else (lambda dh: ChapmanPair(1e-7, 130e3, H, dh)))
    steps = np.array([0.1, 0.2, 0.4]) * H
    cub, lin = [], []
    for dh in steps:
        o = make(dh)
        cub.append(_max_err(o))
        lin.append(_max_err(o, scheme="linear"))
    order_c = np.log2(np.array(cub[1:]) / np.array(cub[:-1]))
    order_l = np.log2(np.array(lin[1:]) / np.array(lin[:-1]))
    # bounds: the asymptotic orders 2 and 4, with room for the pre-asymptotic 0.4 H step
    assert np.all((order_l > 1.8) & (order_l < 2.2)), (lin, order_l)
    assert np.all((order_c > 3.3) & (order_c < 4.8)), (cub, order_c)
    o = make(1.5e3)
    err = _max_err(o)
    # floor 1e-8: the scheme is not exact for a non-polynomial alpha (a zero error means the
    # test compares the scheme with itself); ceiling 1e-3, the acceptance of issue 14
    assert 1e-8 < err <= 1e-3, err


@pytest.mark.parametrize("scale_km, step_km", [
    (5.0, 2.5), (5.0, 3.0), (5.0, 5.0), (7.0, 2.5), (7.0, 3.0), (7.0, 5.0), (10.0, 5.0),
    (14.0, 5.0)])
def test_discretisation_error_estimate_tracks_the_true_error(scale_km, step_km):
    """Estimate / true max error where the error exceeds 1e-4 of the peak: measured
    0.85-6.2 (low by at most 15 %, conservative where the coarse grids saturate); the bounds
    0.75-8 leave ~12 % / 30 % margin. An error above 1e-3 is always flagged."""
    from retrieval.abel import discretisation_error
    o = ChapmanPair(1e-7, 130e3, scale_km * 1e3, step_km * 1e3)
    est = np.nanmax(np.abs(discretisation_error(o.a, o.alpha))) / o.eps
    err = _max_err(o)
    assert err > 1e-4  # the regime this test is about (measured 1.4e-4 to 1.9e-2)
    assert 0.75 <= est / err <= 8.0, (est, err)
    assert est > 1e-3 or err <= 1e-3, (est, err)


def test_discretisation_error_estimate_fine_grid():
    """Fine sampling (H/7): estimate and error both ~1e-5 (measured 1.5e-5 and 1.4e-5)."""
    from retrieval.abel import discretisation_error
    o = ChapmanPair(1e-7, 130e3, 7e3, 1e3 * 1.5)
    est = np.nanmax(np.abs(discretisation_error(o.a, o.alpha))) / o.eps
    assert 5e-6 <= est <= 5e-5 and 5e-6 <= _max_err(o) <= 5e-5


def _top_case(rng, kind, n=400, top_rad=2e-7):
    """A layer's bending plus, for "ionised", an exponential topside (30 km) reaching the
    top sample at ``-top_rad``, faded out 150 km below the top (an exponential all the way
    down would outgrow the layer)."""
    a = MARS_R + 60e3 + np.arange(n) * 700.0
    base = -1e-5 * np.exp(-0.5 * ((a - MARS_R - 140e3) / 20e3) ** 2)
    if kind == "ionised":
        fade = 1.0 / (1.0 + np.exp(-(a - a[-1] + 150e3) / 10e3))
        return a, base - top_rad * np.exp(-(a - a[-1]) / 30e3) * fade
    return a, base


def test_auto_top_takes_the_exponential_on_an_ionised_top():
    from retrieval.abel import choose_top_model
    a, alpha = _top_case(None, "ionised")
    model, reason = choose_top_model(a, alpha)
    assert model == "exponential" and "30 km" in reason and "\n" not in reason
    auto = inverse_abel(a, alpha, top="auto")
    np.testing.assert_array_equal(auto, inverse_abel(a, alpha, top="exponential"))
    # positive bending at the top is no plasma topside, whatever its shape
    assert choose_top_model(a, -alpha)[0] == "zero"


@pytest.mark.parametrize("top_rad, share_band", [(1e-9, (7e-5, 9e-5)),
                                                 (2e-7, (6e-3, 9e-3))])
def test_auto_top_adds_only_a_topside_that_matters(top_rad, share_band):
    """The fitted topside's share of the peak |ln n| decides (AUTO_TOP_MATERIAL = 3e-4): an
    ionised top 200x fainter stays vacuum, and says why. The share is measured here
    independently, as the difference of the exponential and vacuum inversions."""
    from retrieval.abel import AUTO_TOP_MATERIAL, choose_top_model
    a, alpha = _top_case(None, "ionised", top_rad=top_rad)
    model, reason = choose_top_model(a, alpha)
    vacuum = inverse_abel(a, alpha, top="zero")
    tail = inverse_abel(a, alpha, top="exponential") - vacuum
    share = float(np.max(np.abs(tail)) / -np.min(vacuum))
    assert share_band[0] <= share <= share_band[1], share  # measured 8.2e-5 and 7.7e-3
    if share < AUTO_TOP_MATERIAL:
        assert model == "zero" and "not worth its noise" in reason, reason
        assert f"{share:.2g}" in reason
    else:
        assert model == "exponential", reason


@given(seed=st.integers(0, 2**32 - 1), sigma=st.floats(1e-9, 1e-5),
       corr=st.integers(1, 40), offset=st.floats(-1.0, 1.0))
@example(seed=0, sigma=1e-6, corr=40, offset=-0.3)
def test_auto_top_keeps_the_vacuum_top_on_noise(seed, sigma, corr, offset):
    """Zero-mean noise (white, or smoothed over up to 40 samples like a drift-corrected,
    Savitzky-Golay-smoothed residual) plus a bias of up to one sigma never looks like an
    ionised top: measured 0 of 8000 draws."""
    from scipy.ndimage import uniform_filter1d

    from retrieval.abel import choose_top_model
    rng = np.random.default_rng(seed)
    a, alpha = _top_case(rng, "vacuum")
    noise = rng.normal(size=a.size + 2 * corr)
    noise = uniform_filter1d(noise, corr)[corr:-corr] if corr > 1 else noise[:a.size]
    noise = noise / np.std(noise)
    model, reason = choose_top_model(a, alpha + sigma * (noise + offset))
    assert model == "zero", reason


def test_bad_scheme():
    a = np.linspace(1, 2, 20)
    with pytest.raises(ValueError, match="known: cubic, linear"):
        inverse_abel(a, a, scheme="spline")


def test_auto_scheme_cubic_on_clean_linear_on_noisy_samples():
    """Clean samples (a smooth layer, an ionised top) get the cubic; noise of 1e-2 of the
    largest bending (the drift-corrected residual's level) the linear."""
    from retrieval.abel import AUTO_SCHEME_NOISE, choose_scheme
    a, clean = _top_case(None, "ionised")
    assert choose_scheme(a, clean)[0] == "cubic"
    noisy = clean + 1e-2 * np.max(np.abs(clean)) * np.random.default_rng(1).normal(
        size=a.size)
    scheme, reason = choose_scheme(a, noisy)
    assert scheme == "linear" and f"> {AUTO_SCHEME_NOISE:g}" in reason
    np.testing.assert_array_equal(inverse_abel(a, noisy, scheme="auto"),
                                  inverse_abel(a, noisy, scheme="linear"))


# --- The sixth-order (quintic) scheme ------------------------------------------------------
#
# Same oracles (ExponentialPair, ChapmanPair); the Chapman pairs are cached here because
# their bending angles cost one scipy quad per level.

_chapman = functools.lru_cache(maxsize=None)(ChapmanPair)


def test_quintic_integrates_its_spline():
    """The quintic's quadrature (near band + sixth-order end-corrected trapezoid) equals
    scipy quad of the same not-a-knot quintic spline times the kernel on a non-uniform grid
    and a rough profile (measured 4.9e-10 of the largest integral)."""
    from scipy.interpolate import make_interp_spline
    rng = np.random.default_rng(3)
    a = MARS_R + 60e3 + np.cumsum(rng.uniform(0.5e3, 2.0e3, 300))
    alpha = -1e-5 * np.exp(-0.5 * ((a - a[0] - 80e3) / 15e3) ** 2) + 3e-6 * np.sin(a / 7e3)
    spline = make_interp_spline(a, alpha, k=5)
    got = inverse_abel(a, alpha, scheme="quintic") * np.pi
    for i in (0, 1, 57, 150, 287, 290, 298):
        x0 = a[i]
        ref = quad(lambda u: 2 * spline(x0 + u * u) / np.sqrt(2 * x0 + u * u), 0,
                   np.sqrt(a[-1] - x0), limit=2000, epsabs=0, epsrel=1e-12,
                   points=np.sqrt(a[i + 1:] - x0)[:200])[0]
        # 1e-8: 20x the measured worst, the aim for the quadrature floor; a wrong weight or
        # a missed segment gives >= 1e-3
        assert abs(got[i] - ref) <= 1e-8 * np.max(np.abs(got)), (i, got[i], ref)


def test_quintic_is_exact_for_a_quintic_alpha():
    """A degree-5 polynomial alpha is its own not-a-knot quintic spline, so only the
    quadrature remains: measured 1.4e-9 of the largest integral on random 0.5-3 km steps
    (the cubic: 1.0e-6, its interpolation error), against scipy quad of the polynomial."""
    rng = np.random.default_rng(5)
    a = MARS_R + 60e3 + np.cumsum(rng.uniform(0.5e3, 3.0e3, 200))
    coef = [2e-6, -3e-6, 1e-6, 4e-6, -2e-6, 1.5e-6]

    def poly(x):
        return np.polyval(coef, (x - a[0]) / (a[-1] - a[0]))

    got = {s: inverse_abel(a, poly(a), scheme=s) * np.pi for s in ("quintic", "cubic")}
    err = dict.fromkeys(got, 0.0)
    for i in (0, 1, 50, 120, 190, 195, 198):
        x0 = a[i]
        ref = quad(lambda u: 2 * poly(x0 + u * u) / np.sqrt(2 * x0 + u * u), 0,
                   np.sqrt(a[-1] - x0), epsabs=0, epsrel=1e-13, limit=200)[0]
        for s in got:
            err[s] = max(err[s], abs(got[s][i] - ref) / np.max(np.abs(got[s])))
    # 1e-8: 7x the measured 1.4e-9 (the far-field floor); the cubic's 1e-6 shows the test
    # can tell a scheme that is not exact for quintics
    assert err["quintic"] <= 1e-8 and err["cubic"] > 1e-7, err


@pytest.mark.parametrize("pair", ["exponential", "chapman"])
@pytest.mark.parametrize("scale_km, err_15km", [(5.0, (1.77e-6, 3.46e-6)),
                                               (7.0, (2.32e-7, 2.56e-7)),
                                               (14.0, (3.33e-9, 2.63e-9))])
def test_quintic_convergence_and_accuracy(pair, scale_km, err_15km):
    """Quintic: observed order 6 between steps 0.1 H and 0.2 H (measured 6.08 exponential,
    6.48 Chapman; the cubic's 3.7-3.9 fails the bound), and the measured error at 1.5 km
    steps, 20-600x below the cubic's."""
    H = scale_km * 1e3
    make = ((lambda dh: ExponentialPair(1e-7, H, dh)) if pair == "exponential"
            else (lambda dh: _chapman(1e-7, 130e3, H, dh)))
    e1, e2 = (_max_err(make(f * H), scheme="quintic") for f in (0.1, 0.2))
    order = np.log2(e2 / e1)
    # 5.5-7: around the asymptotic 6, room for the Chapman pair's pre-asymptotic 6.5 and
    # the far-field floor (~2e-9 of the peak, 0.1 H errors are ~2e-9)
    assert 5.5 < order < 7.0, (e1, e2, order)
    o = make(1.5e3)
    err = _max_err(o, scheme="quintic")
    expected = err_15km[pair == "chapman"]
    # deterministic numbers: +-30 % for rounding and scipy's spline solver; a cubic would
    # be 20-600x above, a broken quadrature far off either way
    assert 0.7 * expected <= err <= 1.3 * expected, (err, expected)
    assert err < _max_err(o) / 10


@pytest.mark.parametrize("scale_km, step_km, expected, cubic", [
    (7.0, 4.1, 2.21e-4, 9.44e-4), (7.0, 5.0, 2.76e-3, 4.76e-3), (8.0, 4.1, 2.81e-4, 9.05e-4),
    (8.0, 5.0, 5.53e-4, 1.71e-3), (10.0, 4.1, 4.27e-5, 2.85e-4),
    (10.0, 5.0, 1.81e-4, 7.50e-4), (14.0, 4.1, 3.13e-6, 5.62e-5),
    (14.0, 5.0, 1.42e-5, 1.37e-4)])
def test_quintic_at_coarse_steps(scale_km, step_km, expected, cubic):
    """0.5 Hz-like steps (4.1, 5 km) on Chapman layers of H 7-14 km: the measured max error
    over the peak (grid from 60 km, peak at 130 km; the number depends on the grid phase,
    module notes), 1.7-18x below the cubic's."""
    o = _chapman(1e-7, 130e3, scale_km * 1e3, step_km * 1e3)
    err = _max_err(o, scheme="quintic")
    # deterministic: +-25 % (rounding, scipy's spline solver); the cubic's number is 1.7x
    # above the upper bound at worst (7 km, 5 km steps), so a silent cubic fails
    assert 0.75 * expected <= err <= 1.25 * expected, err
    assert _max_err(o) == pytest.approx(cubic, rel=0.01)  # the cubic's, as measured


@pytest.mark.parametrize("scale_km, step_km, phase, ratio", [
    (5.0, 3.0, 0.0, 6.17), (5.0, 4.1, 0.0, 17.5), (5.0, 5.0, 0.0, 0.54), (7.0, 4.1, 0.0, 1.61),
    (7.0, 5.0, 0.0, 0.72), (8.0, 5.0, 0.0, 2.18), (10.0, 5.0, 0.0, 2.89),
    # known failures, asserted as data: the estimate compares the grids only at every
    # fourth level (16-20 km apart here, 2-3 H), which can miss the peak's error
    (8.0, 4.1, 0.0, 0.26), (7.0, 5.0, 0.75, 0.19)])
def test_quintic_error_estimate(scale_km, step_km, phase, ratio):
    """Step doubling with order 6 (clipped to 2..64): estimate / true max error where the
    error exceeds 1e-4, measured 0.19-17 over H 5-14 km, steps 1-5 km and four grid phases;
    errors above 1e-3 are flagged above 1e-3 except (7 km, 5 km steps, phase 0.75)."""
    from retrieval.abel import discretisation_error
    o = _chapman(1e-7, 130e3, scale_km * 1e3, step_km * 1e3, lo_m=60e3 + phase * step_km * 1e3)
    err = _max_err(o, scheme="quintic")
    est = np.nanmax(np.abs(discretisation_error(o.a, o.alpha, scheme="quintic"))) / o.eps
    assert err > 1e-4
    assert est / err == pytest.approx(ratio, rel=0.1), (est, err)  # deterministic
    if (scale_km, step_km, phase) != (7.0, 5.0, 0.75):
        assert est > 1e-3 or err <= 1e-3, (est, err)
    else:
        assert err > 1e-3 > est  # the known miss: 1.6e-3 estimated 3.0e-4


def test_quintic_noise_gain():
    """White bending-angle noise: the rms gain of ln n (each scheme is linear in alpha, so
    the gain is the row norm of its matrix, computed exactly from unit vectors; no random
    draws) at 1 km steps, levels away from the ends: quintic / cubic 1.0049, quintic /
    linear 1.0306 (measured): the quintic is as noisy as the cubic."""
    a = MARS_R + np.arange(100e3, 260e3 + 1, 1e3)
    gain = {}
    for s in ("linear", "cubic", "quintic"):
        m = np.array([inverse_abel(a, e, scheme=s) for e in np.eye(a.size)]).T
        gain[s] = np.sqrt(np.mean(np.sum(m[20:-20] ** 2, axis=1)))
    # deterministic: bounds +-0.5 % around the measured ratios
    assert 1.000 < gain["quintic"] / gain["cubic"] < 1.010, gain
    assert 1.025 < gain["quintic"] / gain["linear"] < 1.035, gain


def test_quintic_falls_back_below_six_samples():
    """A quintic needs 6 samples: with 4-5 the cubic is used, with 2-3 the linear."""
    a = MARS_R + np.linspace(60e3, 160e3, 6)
    alpha = 1e-5 * np.exp(-(a - a[0]) / 30e3)
    for n, other in ((5, "cubic"), (4, "cubic"), (3, "linear"), (2, "linear")):
        np.testing.assert_array_equal(inverse_abel(a[:n], alpha[:n], scheme="quintic"),
                                      inverse_abel(a[:n], alpha[:n], scheme=other))
    assert not np.array_equal(inverse_abel(a, alpha, scheme="quintic"),
                              inverse_abel(a, alpha, scheme="cubic"))
