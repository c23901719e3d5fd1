"""Chapman ionosphere, Chapman grazing-incidence function, peak laws, refractivity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, optimize, special

from retrieval.errors import RoharnessError
from synth.ionosphere import (
    SEGALE_TABLE_KM,
    ChapmanLayer,
    ElectronDensityProfile,
    NeutralAtmosphere,
    chapman_grazing,
    chapman_layer_density,
    electron_density,
    layers_from_peak_law,
    log_chapman_grazing,
    peak_parameters,
)
from synth.refractivity import (
    PLASMA_K_M3_S2,
    neutral_refractivity,
    plasma_refractivity,
    refractivity_profile,
)

R_M = 3389.5e3


# --------------------------------------------------------------------------------------
# Oracle: the Chapman function from its definition, by scipy's adaptive quadrature
# --------------------------------------------------------------------------------------
def chapman_by_quad(x, chi_deg):
    """Ch(x, chi) = int_0^inf exp(x - sqrt(x^2 + t^2 + 2 x t cos chi)) dt (Chapman 1931),
    integrated by QUADPACK directly in t (a different variable and method than the code);
    beyond 90 deg split at the tangent point and scaled by exp(x (1 - sin chi))."""
    c, s = np.cos(np.deg2rad(chi_deg)), np.sin(np.deg2rad(chi_deg))
    if c >= 0:
        f = lambda t: np.exp(x - np.sqrt(x * x + t * t + 2 * x * t * c))  # noqa: E731
        return integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-13, limit=500)[0], 0.0
    e = x * (1 - s)
    t_tan = -x * c
    f = lambda t: np.exp(x - np.sqrt(x * x + t * t + 2 * x * t * c) - e)  # noqa: E731
    val = (integrate.quad(f, 0, t_tan, epsabs=0, epsrel=1e-13, limit=500)[0]
           + integrate.quad(f, t_tan, np.inf, epsabs=0, epsrel=1e-13, limit=500)[0])
    return val, e  # Ch = val * exp(e)


def test_oracle_matches_exact_value_at_90_deg():
    """The oracle itself: Ch(x, 90 deg) = x e^x K1(x) (Huestis 2001), a closed form."""
    for x in (1.0, 30.0, 700.0):
        val, e = chapman_by_quad(x, 90.0)
        assert val * np.exp(e) == pytest.approx(x * special.k1e(x), rel=1e-11)


@pytest.mark.parametrize("x", [1.0, 10.0, 50.0, 339.0, 700.0, 1500.0])
def test_chapman_function_against_quadrature(x):
    chis = [0, 10, 45, 70, 85, 89, 89.9, 89.999999, 90, 90.0001, 91, 95, 100, 110, 130, 150,
            179]
    for chi in chis:
        val, e = chapman_by_quad(x, chi)
        log_ch = float(log_chapman_grazing(x, chi)[0])
        # measured worst 1.3e-12; the oracle's own epsrel is 1e-13
        assert log_ch == pytest.approx(np.log(val) + e, abs=1e-10), (x, chi)


def test_chapman_function_at_90_deg_closed_form():
    # chi = 90 deg goes through the quadrature branch: the closed form is independent
    x = np.array([0.5, 5.0, 80.0, 400.0, 2000.0])
    np.testing.assert_allclose(chapman_grazing(x, 90.0), x * special.k1e(x), rtol=1e-11)


@pytest.mark.parametrize("chi", [10.0, 30.0, 60.0])
def test_chapman_tends_to_sec_with_first_order_correction(chi):
    """Expanding sqrt(x^2 + t^2 + 2xt cos chi) gives Ch = sec chi (1 - tan^2 chi / x + ...)."""
    x = 1e4
    tan2 = np.tan(np.deg2rad(chi)) ** 2
    sec = 1 / np.cos(np.deg2rad(chi))
    ch = chapman_grazing(x, chi)
    coeff = (1 - ch / sec) * x / tan2
    # next term is O(tan^2 chi / x) relative to the first: < 1e-3 here, allow 1 %
    assert coeff == pytest.approx(1.0, rel=1e-2)
    assert chapman_grazing(1e6, 1.0) == pytest.approx(1 / np.cos(np.deg2rad(1.0)), rel=1e-9)


def test_chapman_log_derivative_against_finite_difference():
    x = np.array([50.0, 339.0, 700.0])
    for chi in (30.0, 89.99, 90.0, 100.0, 120.0):
        _, d = log_chapman_grazing(x, chi)
        h = 1e-3
        fd = (log_chapman_grazing(x + h, chi)[0] - log_chapman_grazing(x - h, chi)[0]) / (2 * h)
        # central difference truncation ~ h^2 f''' ~ 1e-6 * 1e-3; roundoff 1e-13 / h
        np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


def test_chapman_function_rejects_bad_input():
    with pytest.raises(RoharnessError):
        chapman_grazing(-1.0, 30.0)
    with pytest.raises(RoharnessError):
        chapman_grazing(100.0, 190.0)


# --------------------------------------------------------------------------------------
# Chapman layers
# --------------------------------------------------------------------------------------
@given(n0=st.floats(1e9, 5e11), h0=st.floats(90e3, 200e3), H=st.floats(5e3, 30e3),
       chi=st.floats(0.0, 85.0))
def test_sec_layer_peak_position_and_density(n0, h0, H, chi):
    """Analytic: with sec chi the peak is at h0 + H ln sec chi with density N0 cos^1/2 chi."""
    layer = ChapmanLayer("L", n0, h0, H)
    sec = 1 / np.cos(np.deg2rad(chi))
    h_expected = h0 + H * np.log(sec)
    res = optimize.minimize_scalar(
        lambda h: -chapman_layer_density(h, chi, layer, grazing="sec") / n0,
        bracket=(h_expected - 2 * H, h_expected + 0.3 * H, h_expected + 2 * H),
        tol=1e-12)
    # the peak is quadratic: N(h) ~ Nm (1 - (h - hm)^2 / (8 H^2)); 1e-12 relative in N
    # -> ~1e-5 H in h, so allow 1e-3 H (<= 30 m)
    assert res.x == pytest.approx(h_expected, abs=1e-3 * H)
    assert -res.fun * n0 == pytest.approx(n0 * np.sqrt(np.cos(np.deg2rad(chi))), rel=1e-12)


def test_chapman_form_tends_to_sec_form_at_small_sza():
    layer = ChapmanLayer("M2", 1.5e11, 125e3, 10e3)
    h = np.linspace(80e3, 400e3, 200)
    for chi in (0.0, 20.0, 40.0):
        a = chapman_layer_density(h, chi, layer, grazing="chapman")
        b = chapman_layer_density(h, chi, layer, grazing="sec")
        # Ch/sec - 1 ~ tan^2 chi / x < 2e-3 at x ~ 350; N changes by 0.5 (Ch - sec) e^-z
        assert np.max(np.abs(a - b)) / 1.5e11 < 2e-3


def test_chapman_layer_beyond_terminator_is_finite_and_decreasing():
    layer = ChapmanLayer("M2", 1.5e11, 125e3, 10e3)
    h = np.linspace(80e3, 400e3, 100)
    peaks = [np.max(chapman_layer_density(h, chi, layer)) for chi in (80, 90, 95, 100, 110)]
    assert np.all(np.isfinite(peaks)) and np.all(np.diff(peaks) < 0)
    # sec form: no sun below the horizon
    assert np.all(chapman_layer_density(h, 95.0, layer, grazing="sec") == 0)


@pytest.mark.parametrize("grazing", ["chapman", "sec"])
def test_density_derivative_against_finite_difference(grazing):
    layers = [ChapmanLayer("M2", 1.5e11, 125e3, 10e3), ChapmanLayer("M1", 7e10, 105e3, 6e3)]
    h = np.linspace(70e3, 500e3, 300)
    for chi in (30.0, 88.0) if grazing == "sec" else (30.0, 88.0, 97.0):
        n, dn = electron_density(h, chi, layers, grazing=grazing, derivative=True)
        step = 1.0
        fd = (electron_density(h + step, chi, layers, grazing)
              - electron_density(h - step, chi, layers, grazing)) / (2 * step)
        # truncation ~ step^2 N''' ~ N / H^3 * 1 m^2: 1e-8 of the N/H scale
        np.testing.assert_allclose(dn, fd, rtol=0, atol=1e-7 * 1.5e11 / 6e3)


@pytest.mark.parametrize("chi", [30.0, 85.0, 95.0, 105.0])
def test_fast_profile_equals_direct_evaluation(chi):
    """The tabulated-Chapman-function profile (cubic Hermite of ln Ch) against the direct
    quadrature at off-grid altitudes."""
    layers = [ChapmanLayer("M2", 1.5e11, 125e3, 5e3), ChapmanLayer("M1", 7e10, 105e3, 12e3)]
    h = np.random.default_rng(3).uniform(40e3, 900e3, 400)
    fast = ElectronDensityProfile(layers, chi)
    n_fast, dn_fast = fast(h, derivative=True)
    n, dn = electron_density(h, chi, layers, derivative=True)
    # interpolation error of ln Ch is O(step^4 / scale^4) ~ 1e-10: relative in N and dN
    scale = np.max(n)
    np.testing.assert_allclose(n_fast, n, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(dn_fast, dn, rtol=1e-8, atol=1e-12 * scale / 5e3)


def test_layer_validation():
    with pytest.raises(RoharnessError, match="scale_height_m"):
        ChapmanLayer("M2", 1e11, 125e3, -1.0)
    with pytest.raises(RoharnessError):
        ChapmanLayer("M2", np.nan, 125e3, 1e4)
    with pytest.raises(RoharnessError):
        electron_density(100e3, 30.0, [])
    with pytest.raises(ValueError, match="chapman, sec"):
        electron_density(100e3, 30.0, [ChapmanLayer("M2", 1e11, 125e3, 1e4)], grazing="flat")
    with pytest.raises(RoharnessError):
        NeutralAtmosphere(2e23, 0.0)


# --------------------------------------------------------------------------------------
# Peak laws
# --------------------------------------------------------------------------------------
def test_parrott2025_subsolar_values_and_positive_exponent():
    p = peak_parameters(0.0, "parrott2025", f107_sfu=100.0)
    assert p["M2"][0] == pytest.approx(1.6e11 + 4.3e10)
    assert p["M2"][1] == pytest.approx(125.9e3)
    assert p["M1"][0] == pytest.approx(7.3e10 + 2.5e10)
    assert p["M1"][1] == pytest.approx(106.2e3)
    e = peak_parameters(0.0, "parrott2025", f_euv_mw_m2=2.0)
    assert e["M2"][0] == pytest.approx(1.6e11 + 1.06e11)
    # the positive-exponent reading: density falls and altitude rises with SZA
    q = peak_parameters(60.0, "parrott2025", f107_sfu=100.0)
    assert q["M2"][0] == pytest.approx(1.6e11 * 0.5**0.25 + 4.3e10)
    assert q["M2"][1] == pytest.approx(125.9e3 + 5.9e3 * np.log(2.0))
    with pytest.raises(RoharnessError):
        peak_parameters(30.0, "parrott2025")
    with pytest.raises(RoharnessError):
        peak_parameters(95.0, "parrott2025", f107_sfu=70.0)


@pytest.mark.parametrize("model, group", [("segale2024", "dawn_aphelion"),
                                          ("segale2024", "dusk_perihelion"),
                                          ("fox_weber2012", None), ("fallows2015", None)])
def test_segale_family_small_sza_limit(model, group):
    row = SEGALE_TABLE_KM[group or model]
    p = peak_parameters(0.0, model, group=group)
    # Ch(x, 0) = 1 exactly in the limit; at x ~ 350, ln Ch(x, 0) ~ -1/x^2 ~ 1e-5: < 1 m
    assert p["M2"][1] == pytest.approx(row[0] * 1e3, abs=1.0)
    assert p["M1"][1] == pytest.approx(row[1] * 1e3, abs=1.0)
    assert p["M2"][0] == pytest.approx(1.59e11)
    q = peak_parameters(40.0, model, group=group)
    sec = 1 / np.cos(np.deg2rad(40.0))
    # ln Ch vs ln sec differs by ~tan^2/x ~ 2e-3 -> < 0.03 km for L <= 12.2 km
    assert q["M2"][1] == pytest.approx(row[0] * 1e3 + row[2] * 1e3 * np.log(sec), abs=50.0)
    assert q["M2"][0] == pytest.approx(1.59e11 * np.cos(np.deg2rad(40.0)) ** 0.546)


def test_peak_law_errors_list_known_names():
    with pytest.raises(ValueError, match="parrott2025, segale2024, fox_weber2012, fallows2015"):
        peak_parameters(30.0, "chapman1931")
    with pytest.raises(ValueError, match="dawn_aphelion"):
        peak_parameters(30.0, "segale2024", group="noon")


@pytest.mark.parametrize("grazing", ["sec", "chapman"])
def test_layers_from_peak_law_put_the_peak_where_the_law_says(grazing):
    chi = 55.0
    peaks = peak_parameters(chi, "parrott2025", f107_sfu=90.0)
    layers = layers_from_peak_law(chi, "parrott2025", f107_sfu=90.0, scale_height_m=9e3,
                                  grazing=grazing)
    for layer in layers:
        nm, hm = peaks[layer.name]
        res = optimize.minimize_scalar(
            lambda h: -chapman_layer_density(h, chi, layer, grazing=grazing) / nm,
            bracket=(hm - 10e3, hm, hm + 10e3), tol=1e-12)
        # sec: exact (1e-3 H as in the analytic test); chapman: Ch varies with x over the
        # peak (d ln Ch/dx ~ 1e-3), shifting it by ~H^2 d ln Ch/dh ~ 10 m
        assert res.x == pytest.approx(hm, abs=9.0 if grazing == "sec" else 50.0)
        assert -res.fun * nm == pytest.approx(nm, rel=1e-12 if grazing == "sec" else 1e-4)


# --------------------------------------------------------------------------------------
# Refractivity
# --------------------------------------------------------------------------------------
def test_plasma_constant_from_classical_electron_radius():
    """Independent route: K = r_e c^2 / (2 pi) with CODATA's classical electron radius."""
    r_e = sc.physical_constants["classical electron radius"][0]
    assert PLASMA_K_M3_S2 == pytest.approx(r_e * sc.c**2 / (2 * np.pi), rel=1e-9)
    assert PLASMA_K_M3_S2 == pytest.approx(40.3, rel=1e-3)
    assert plasma_refractivity(1e11, 437.1e6) == pytest.approx(-PLASMA_K_M3_S2 * 1e11 / 437.1e6**2)
    with pytest.raises(RoharnessError):
        plasma_refractivity(1e11, 0.0)


def test_neutral_refractivity_near_the_surface():
    # 2.1e23 m^-3 CO2: n - 1 = 3.8e-6 (the "3-4 N-units" of Mars surface refractivity)
    assert neutral_refractivity(2.1e23) == pytest.approx(3.79e-6, rel=1e-2)


def test_refractivity_profile_combines_terms_and_derivatives():
    layers = [ChapmanLayer("M2", 1.5e11, 125e3, 10e3)]
    neutral = NeutralAtmosphere(2.1e23, 11e3)
    f = 8.4e9
    prof = refractivity_profile(layers, 45.0, f, neutral=neutral)
    r = R_M + np.linspace(10e3, 600e3, 100)
    nu, dnu = prof.evaluate(r)
    ne = electron_density(r - R_M, 45.0, layers)
    expect = -PLASMA_K_M3_S2 * ne / f**2 + 1.804e-29 * neutral.number_density(r - R_M)
    np.testing.assert_allclose(nu, expect, rtol=1e-9, atol=1e-25)
    fd = (prof.evaluate(r + 0.5)[0] - prof.evaluate(r - 0.5)[0]) / 1.0
    np.testing.assert_allclose(dnu, fd, rtol=1e-6, atol=1e-20)
    # the top is where every term is < 1e-12 of its peak
    assert prof.top_radius_m == pytest.approx(R_M + 125e3 + (1 + 2 * np.log(1e12)) * 10e3)
    with pytest.raises(RoharnessError):
        refractivity_profile(layers, 45.0, -1.0)
