"""Analytic cross-checks (validation.analytic): Withers (2010) estimate, tangent vertical
speed, white-noise Abel propagation."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import xarray as xr
from scipy import integrate

from retrieval.errors import RoharnessError
from validation import analytic as an

R = 3389.5e3


def test_withers_hand_computation():
    # the formula written out with CODATA 2018 values typed in (scipy may carry CODATA
    # 2022: m_e and eps0 differ by < 2e-9 relative)
    c, m_e, eps0, e = 299792458.0, 9.1093837015e-31, 8.8541878128e-12, 1.602176634e-19
    sigma_f, f, v, h, r = 2.2e-3, 437.1e6, 441.0, 20e3, 3520e3
    hand = 4 * math.pi * sigma_f * f * c * m_e * eps0 / (v * e**2) * math.sqrt(
        2 * math.pi * h / r)
    assert an.withers_sigma_ne(sigma_f, f, v, h, r) == pytest.approx(hand, rel=1e-8)
    # the same through the plasma constant K = e^2/(8 pi^2 eps0 m_e) ~ 40.3082 m^3 s^-2:
    # sigma = sigma_f f c / (2 pi K V) sqrt(2 pi H / R); K to 6 digits -> 1e-5
    k = 40.3082
    alt = sigma_f * f * c / (2 * math.pi * k * v) * math.sqrt(2 * math.pi * h / r)
    assert an.withers_sigma_ne(sigma_f, f, v, h, r) == pytest.approx(alt, rel=1e-5)
    # order of magnitude: a few 1e8 m^-3 for UHF at 45 dB-Hz (Withers' MEX-TGO-like case)
    assert 1e8 < hand < 1e9


def test_withers_units_are_per_cubic_metre():
    """Dimensional analysis of the formula (SI base units kg, m, s, A)."""
    units = {
        "sigma_f": {"s": -1}, "f": {"s": -1}, "c": {"m": 1, "s": -1}, "m_e": {"kg": 1},
        "eps0": {"A": 2, "s": 4, "kg": -1, "m": -3}, "V": {"m": 1, "s": -1},
        "e": {"A": 1, "s": 1}, "H": {"m": 1}, "R": {"m": 1},
    }
    total = Counter()
    for name, power in (("sigma_f", 1), ("f", 1), ("c", 1), ("m_e", 1), ("eps0", 1),
                        ("V", -1), ("e", -2), ("H", 0.5), ("R", -0.5)):
        for base, p in units[name].items():
            total[base] += power * p
    assert {k: v for k, v in total.items() if v} == {"m": -3}


def test_withers_scalings():
    base = an.withers_sigma_ne(1e-3, 4e8, 1e3, 1e4, 3.4e6)
    assert an.withers_sigma_ne(2e-3, 4e8, 1e3, 1e4, 3.4e6) == pytest.approx(2 * base)
    assert an.withers_sigma_ne(1e-3, 8e8, 1e3, 1e4, 3.4e6) == pytest.approx(2 * base)
    assert an.withers_sigma_ne(1e-3, 4e8, 2e3, 1e4, 3.4e6) == pytest.approx(base / 2)
    assert an.withers_sigma_ne(1e-3, 4e8, -1e3, 1e4, 3.4e6) == pytest.approx(base)
    assert an.withers_sigma_ne(1e-3, 4e8, 1e3, 4e4, 3.4e6) == pytest.approx(2 * base)
    assert an.withers_sigma_ne(1e-3, 4e8, 1e3, 1e4, 13.6e6) == pytest.approx(base / 2)
    with pytest.raises(RoharnessError):
        an.withers_sigma_ne(1e-3, 4e8, 1e3, -1.0, 3.4e6)


def _obs(n=150, dt=2.0, two_way=False):
    t = np.arange(n) * dt
    r_t = np.stack([np.full(n, -7.0e6), np.zeros(n), 5.0e6 - 2000.0 * t], 1)
    v_t = np.tile([0.0, 300.0, -2000.0], (n, 1))
    r_r = np.stack([2.5e7 + 100.0 * t, np.zeros(n), 400.0 * t], 1)
    v_r = np.tile([100.0, 0.0, 400.0], (n, 1))
    vec = lambda a: (("time", "xyz"), a)  # noqa: E731
    res = "frequency_residual_two_way" if two_way else "frequency_residual"
    return xr.Dataset(dict(tx_position=vec(r_t), tx_velocity=vec(v_t), rx_position=vec(r_r),
                           rx_velocity=vec(v_r), **{res: ("time", np.zeros(n))}),
                      coords=dict(time=t, xyz=["x", "y", "z"]),
                      attrs=dict(frequency_hz=437.1e6, reference_radius_m=R,
                                 turnaround_ratio=880.0 / 749.0))


def _line_distance(r_t, r_r):
    """Distance of the line through r_t, r_r from the origin: |r_t x r_r| / |r_r - r_t|."""
    return np.linalg.norm(np.cross(r_t, r_r), axis=1) / np.linalg.norm(r_r - r_t, axis=1)


def test_tangent_vertical_speed_vs_finite_difference():
    obs = _obs()
    geo = an.tangent_vertical_speed(obs)
    r_t, v_t = obs.tx_position.values, obs.tx_velocity.values
    r_r, v_r = obs.rx_position.values, obs.rx_velocity.values
    np.testing.assert_allclose(geo.tangent_radius.values, _line_distance(r_t, r_r), rtol=1e-12)
    h = 0.01
    fd = (_line_distance(r_t + h * v_t, r_r + h * v_r)
          - _line_distance(r_t - h * v_t, r_r - h * v_r)) / (2 * h)
    # truncation ~ h^2 * third derivative: < 1e-6 m/s here; rounding of 3.5e6 m / 0.02 s
    np.testing.assert_allclose(geo.vertical_speed.values, fd, rtol=0, atol=1e-4)
    assert np.all(geo.vertical_speed.values < 0)  # the ray descends (ingress)
    np.testing.assert_allclose(geo.tangent_altitude.values, geo.tangent_radius.values - R)


def test_thermal_profile_and_two_way_mapping():
    one = an.thermal_sigma_ne_profile(_obs(), 1e-3, 20e3)
    two = an.thermal_sigma_ne_profile(_obs(two_way=True), 1e-3, 20e3)
    k = 880.0 / 749.0
    np.testing.assert_allclose(two.sigma_ne.values, one.sigma_ne.values / (1 + k * k))
    want = an.withers_sigma_ne(1e-3, 437.1e6, one.vertical_speed.values, 20e3,
                               one.tangent_radius.values)
    np.testing.assert_allclose(one.sigma_ne.values, want)
    with pytest.raises(ValueError, match="tangent"):
        an.thermal_sigma_ne_profile(_obs(), 1e-3, 20e3, radius="mean")


def test_abel_weights_integrate_piecewise_linear_alpha():
    a = R + 60e3 + np.sort(np.random.default_rng(0).uniform(0, 300e3, 80))
    alpha = np.exp(-(a - a[0]) / 20e3) * (1 + 0.3 * np.sin(a / 7e3))
    w = an.abel_weights(a)
    for i in (0, 17, 50, 78):
        r = a[i]
        # independent quadrature: a = r cosh(s) removes the singularity (da = r sinh s ds)
        f = lambda s: np.interp(r * np.cosh(s), a, alpha)  # noqa: E731
        s_knots = np.arccosh(a[i:] / r)
        want = sum(integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-12)[0]
                   for lo, hi in zip(s_knots[:-1], s_knots[1:]))
        assert w[i] @ alpha == pytest.approx(want, rel=1e-9)
    with pytest.raises(RoharnessError):
        an.abel_weights(a[::-1])


def test_abel_noise_smaller_than_withers_for_fine_sampling():
    """The documented gap: white noise sampled every ~Delta a << H is averaged by the Abel
    integral; the ratio follows sqrt(Delta a (ln N + gamma + O(1)) / (pi H))."""
    obs = _obs(n=300, dt=0.25)
    ab = an.abel_white_noise_sigma_ne(obs, 2e-3)
    wi = an.thermal_sigma_ne_profile(obs, 2e-3, 20e3)
    i = 100  # a level with 200 samples above it
    ratio = ab.sigma_ne.values[i] / wi.sigma_ne.values[i]
    da = abs(wi.vertical_speed.values[i]) * 0.25
    approx = math.sqrt(da * (math.log(200) + 0.5772) / (math.pi * 20e3))
    assert 0.7 * approx < ratio < 1.6 * approx  # the O(1) term is not in `approx`
    assert ratio < 0.5
