"""Horizontal-gradient forward model (synth.gradients) on a synthetic occultation geometry.

Geometry: a transmitter descending at x = -7000 km and a receiver at x = +25,000 km in the
x-z plane, so that the straight ray's closest point sweeps from ~450 km to ~60 km altitude.
Independent checks: the spherical weak-refraction model of synth.raytrace (its own
quadrature and analytic gradients), finite differences in time, exact symmetry cases.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
import xarray as xr

from retrieval.errors import RoharnessError
from synth import gradients as gr
from synth import raytrace, refractivity
from synth.ionosphere import ChapmanLayer, log_chapman_grazing

R = 3389.5e3
F = 437.1e6
LAYERS = (ChapmanLayer("M2", 1.6e11, 125e3, 10e3), ChapmanLayer("M1", 8e10, 108e3, 10e3))


def geometry(n=150, dt=2.0, out_of_plane=False):
    t = np.arange(n) * dt
    z = 5.0e6 - 2000.0 * t
    r_t = np.stack([np.full(n, -7.0e6), np.zeros(n), z], 1)
    v_t = np.tile([0.0, 300.0 if out_of_plane else 0.0, -2000.0], (n, 1))
    r_r = np.stack([np.full(n, 2.5e7) + 100.0 * t, np.zeros(n), 400.0 * t], 1)
    v_r = np.tile([100.0, 0.0, 400.0], (n, 1))
    return t, r_t, v_t, r_r, v_r


def sun_in_plane(angle_deg):
    """Unit Sun vector in the ray plane (x-z), angle measured from +z toward -x."""
    a = np.deg2rad(angle_deg)
    return np.array([-np.sin(a), 0.0, np.cos(a)])


def test_geometry_sweeps_the_ionosphere():
    t, r_t, v_t, r_r, v_r = geometry()
    ds = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, [0, 1, 0], sza_deg=50.0)
    h = ds.tangent_altitude.values
    assert h.max() > 400e3 and h.min() < 70e3 and np.all(ds.status.values == 0)


@pytest.mark.parametrize("grazing", ["chapman", "sec"])
@pytest.mark.parametrize("sza", [20.0, 60.0, 85.0])
def test_constant_sza_reproduces_weak_refraction(grazing, sza):
    t, r_t, v_t, r_r, v_r = geometry(out_of_plane=True)
    ours = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, [1.0, 0, 0],
                                   grazing=grazing, sza_deg=sza)
    prof = refractivity.refractivity_profile(LAYERS, sza, F, None, grazing)
    ref = raytrace.weak_refraction_residual(r_t, v_t, r_r, v_r, F, prof)
    peak = np.max(np.abs(ref.frequency_residual.values))
    # the brief's criterion is 1e-3 of the peak; the two quadratures agree to ~1e-7
    np.testing.assert_allclose(ours.frequency_residual.values, ref.frequency_residual.values,
                               rtol=0, atol=1e-3 * peak)
    np.testing.assert_allclose(ours.excess_path.values, ref.excess_path.values, rtol=0,
                               atol=1e-4 * np.max(np.abs(ref.excess_path.values)))


@pytest.mark.parametrize("sun", [sun_in_plane(80.0), np.array([0.3, 0.5, 0.8])])
def test_analytic_rate_matches_finite_difference(sun):
    """dL/dt with a varying SZA (the dN/dmu terms) vs central differences of L in time."""
    t, r_t, v_t, r_r, v_r = geometry(out_of_plane=True)
    ds = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun)
    h = 0.05  # s: truncation ~ (h / 7 s)^2 / 6 ~ 1e-5 of the rate (7 s = H / V)
    lp = gr.excess_path_residual(r_t + h * v_t, v_t, r_r + h * v_r, v_r, F, LAYERS,
                                 sun).excess_path.values
    lm = gr.excess_path_residual(r_t - h * v_t, v_t, r_r - h * v_r, v_r, F, LAYERS,
                                 sun).excess_path.values
    fd = (lp - lm) / (2 * h)
    rate = ds.excess_path_rate.values
    np.testing.assert_allclose(rate, fd, rtol=0, atol=1e-4 * np.max(np.abs(rate)))
    # and the residual is -(f/c) dL/dt up to the O(v/c) relative terms (~1e-5)
    np.testing.assert_allclose(ds.frequency_residual.values, -F / sc.c * rate, rtol=0,
                               atol=1e-4 * np.max(np.abs(ds.frequency_residual.values)))


def test_sun_normal_to_ray_plane_is_spherical():
    """Sun along the normal of the ray plane: every point of every ray is at SZA 90 deg."""
    t, r_t, v_t, r_r, v_r = geometry()
    grad = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, [0.0, 1.0, 0.0])
    sph = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, [0.0, 1.0, 0.0],
                                  sza_deg=90.0)
    np.testing.assert_allclose(grad.tangent_sza_deg.values, 90.0, atol=1e-9)
    peak = np.max(np.abs(sph.frequency_residual.values))
    # table interpolation (ln q to ~1e-8) is the only difference
    np.testing.assert_allclose(grad.frequency_residual.values, sph.frequency_residual.values,
                               rtol=0, atol=1e-6 * peak)


def test_anchor_puts_tangent_point_at_sza():
    t, r_t, v_t, r_r, v_r = geometry()
    sun = np.array([0.2, 0.6, 0.77])
    free = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun)
    anchored = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun, anchor_sza_deg=40.0)
    np.testing.assert_allclose(anchored.tangent_sza_deg.values, 40.0, atol=1e-9)
    # anchoring each sample at its own actual SZA changes nothing
    same = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun,
                                   anchor_sza_deg=free.tangent_sza_deg.values)
    np.testing.assert_allclose(same.frequency_residual.values, free.frequency_residual.values,
                               rtol=1e-10, atol=1e-12)


def test_gradient_grows_toward_terminator_and_lowers_the_path():
    """Sun in the ray plane (SZA varies linearly along the ray): the first-order change
    cancels between the two halves, the second order (N_e concave in SZA) remains, so the
    ray sees fewer electrons than the spherical model, more so near the terminator."""
    t, r_t, v_t, r_r, v_r = geometry()
    sun = sun_in_plane(90.0)
    size = []
    for sza in (30.0, 60.0, 85.0):
        grad = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun, anchor_sza_deg=sza)
        sph = gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, sun, sza_deg=sza)
        d = grad.frequency_residual.values - sph.frequency_residual.values
        size.append(np.max(np.abs(d)) / np.max(np.abs(sph.frequency_residual.values)))
        # at the ray grazing the M2 peak of that SZA: |L| smaller (L < 0 for plasma)
        hm = 125e3 + 10e3 * np.log(1.0 / np.cos(np.deg2rad(min(sza, 80.0))))
        i = int(np.argmin(np.abs(sph.tangent_altitude.values - hm)))
        assert sph.excess_path.values[i] < grad.excess_path.values[i] < 0.0
    assert size[0] < size[1] < size[2]
    assert size[2] > 0.01  # near the terminator the bias is not negligible


def test_log_obliquity_table_accuracy():
    tab = gr._LogObliquity(10e3, "chapman", (50e3, 700e3), (-0.6, 1.0), R)
    rng = np.random.default_rng(0)
    h = rng.uniform(50e3, 700e3, 4000)
    mu = rng.uniform(-0.15, 0.999, 4000)  # lit: SZA < ~99 deg (deeper N_e is ~0)
    lq, dh, dmu = tab(h, mu)
    chi = np.degrees(np.arccos(mu))
    ex, dx = log_chapman_grazing((R + h) / 10e3, chi)
    # 1e-6 in ln q is 1e-6 relative in N_e where the layer matters (q e^-z ~ 1); measured
    # 7e-7 (at SZA 85-99 deg, mu step 0.005)
    np.testing.assert_allclose(lq, ex, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dh * 10e3, dx, rtol=0, atol=1e-5)
    e = 1e-5
    fd = (log_chapman_grazing((R + h) / 10e3, np.degrees(np.arccos(mu + e)))[0]
          - log_chapman_grazing((R + h) / 10e3, np.degrees(np.arccos(mu - e)))[0]) / (2 * e)
    np.testing.assert_allclose(dmu, fd, rtol=1e-4, atol=1e-4)


def test_bad_input():
    t, r_t, v_t, r_r, v_r = geometry(n=12)
    with pytest.raises(ValueError, match="chapman"):
        gr.excess_path_residual(r_t, v_t, r_r, v_r, F, LAYERS, [0, 0, 1], grazing="flat")
    with pytest.raises(RoharnessError, match="shape"):
        gr.excess_path_residual(r_t[:, :2], v_t, r_r, v_r, F, LAYERS, [0, 0, 1])
    with pytest.raises(RoharnessError, match="frequency"):
        gr.excess_path_residual(r_t, v_t, r_r, v_r, -1.0, LAYERS, [0, 0, 1])


def _obs_truth(sza):
    t, r_t, v_t, r_r, v_r = geometry()
    vec = lambda a: (("time", "xyz"), a)  # noqa: E731
    obs = xr.Dataset(dict(tx_position=vec(r_t), tx_velocity=vec(v_t), rx_position=vec(r_r),
                          rx_velocity=vec(v_r), et_tx=("time", t), et_rx=("time", t + 0.1),
                          frequency_residual=("time", np.zeros_like(t))),
                     coords=dict(time=t, xyz=["x", "y", "z"]), attrs=dict(frequency_hz=F))
    truth = xr.Dataset(  # the layer table as synth.observe.truth_dataset writes it
        dict(layer_peak_density=("layer", [L.n0_m3 for L in LAYERS]),
             layer_peak_altitude=("layer", [L.h0_m for L in LAYERS]),
             layer_scale_height=("layer", [L.scale_height_m for L in LAYERS])),
        coords=dict(layer=[L.name for L in LAYERS]),
        attrs=dict(sza_deg=sza, grazing="chapman"))
    return obs, truth


def test_gradient_perturbation_of_an_observation():
    obs, truth = _obs_truth(60.0)
    sun = np.tile(sun_in_plane(90.0), (obs.sizes["time"], 1))
    p = gr.gradient_perturbation(obs, truth, sun_direction=sun)
    d = p.frequency_residual_perturbation.values
    np.testing.assert_allclose(d, p.frequency_residual_gradient.values
                               - p.frequency_residual_spherical.values, atol=1e-15)
    assert np.all(np.isfinite(d)) and np.max(np.abs(d)) > 0
    # the Sun normal to the ray plane: no perturbation (anchoring to 60 deg rotates the Sun
    # into the plane of the tangent point, hence use anchor "none" and a 90 deg truth)
    obs90, truth90 = _obs_truth(90.0)
    p0 = gr.gradient_perturbation(obs90, truth90, anchor="none",
                                  sun_direction=np.tile([0, 1.0, 0], (obs.sizes["time"], 1)))
    peak = np.max(np.abs(p0.frequency_residual_spherical.values))
    assert np.max(np.abs(p0.frequency_residual_perturbation.values)) < 1e-6 * peak
    with pytest.raises(ValueError, match="tangent"):
        gr.gradient_perturbation(obs, truth, anchor="middle", sun_direction=sun)


def test_sun_direction_matches_solar_geometry():
    """The J2000 Sun direction gives the SZA of retrieval.geometry.solar_geometry (which
    works in IAU_MARS and includes the Sun's parallax, <= 1e-3 deg at Mars)."""
    from retrieval import spice
    from retrieval.geometry import j2000_to_latlon, solar_geometry

    et = spice.utc_to_et("2023-01-02T03:04:05")
    s = gr.sun_direction_j2000([et])[0]
    pts = np.array([[3.5e6, 0.0, 0.0], [0.0, -3.5e6, 1e6], [1e6, 2e6, -2.8e6]])
    for p in pts:
        lat, lon, _ = j2000_to_latlon(et, p)
        want = float(solar_geometry(et, lat[0], lon[0], np.linalg.norm(p) - R)["sza_deg"])
        got = np.degrees(np.arccos(p @ s / np.linalg.norm(p)))
        assert abs(got - want) < 2e-3
