"""Harris current-sheet forward model and the sheet-scenario reader."""

from __future__ import annotations

import copy
import tomllib

import numpy as np
import pytest
import scipy.constants as sc

from retrieval.errors import RoharnessError
from synth.current_sheet import (
    correlated_noise,
    crossing_positions,
    harris_density,
    harris_field_lmn,
    harris_peak_density,
    imf_series,
    lmn_basis,
    moving_sheet_frame,
    outflow_velocity_lmn,
    rotate_from_local,
    simulate_sheet_crossing,
)
from synth.errors import ScenarioError
from synth.sheet_scenario import SCENARIO_DIR, load_sheet_scenario, parse_sheet_scenario

B0, LAM = 20e-9, 30e3


@pytest.fixture(scope="module")
def scenario():
    return load_sheet_scenario("mars-2024-11-07")


@pytest.fixture(scope="module")
def simulated(scenario):
    return simulate_sheet_crossing(scenario, seed=7)


def raw_builtin():
    return tomllib.loads((SCENARIO_DIR / "mars-2024-11-07.toml").read_text())


# --- geometry -----------------------------------------------------------------------------
def test_lmn_basis_reproduces_published_m():
    basis = lmn_basis([-0.35, -0.93, 0.10], [-0.08, 0.14, 0.99])
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.cross(basis[0], basis[1]), basis[2], atol=1e-12)
    # SCIENCE.md section 3: M = [0.93, -0.34, 0.12], published to 2 decimals -> 0.01
    np.testing.assert_allclose(basis[1], [0.93, -0.34, 0.12], atol=0.01)
    with pytest.raises(RoharnessError):
        lmn_basis([0, 0, 1], [0, 0, 2])


def test_crossing_positions():
    t = np.array([-10.0, 0.0, 10.0])
    pos, vel = crossing_positions(t, speed_m_s=4000.0, angle_to_normal_deg=40.0,
                                  azimuth_deg=90.0, offset_l_m=5e3, offset_m_m=-2e3)
    np.testing.assert_allclose(pos[1], [5e3, -2e3, 0.0])  # N = 0 at t = 0, at the offsets
    assert np.linalg.norm(vel) == pytest.approx(4000.0)
    assert vel[2] == pytest.approx(4000.0 * np.cos(np.radians(40.0)))
    assert vel[0] == pytest.approx(0.0, abs=1e-9)  # azimuth 90 deg: in-plane part along +M
    np.testing.assert_allclose(pos[2] - pos[0], 20.0 * vel, atol=1e-6)


# --- field and plasma ---------------------------------------------------------------------
def test_harris_limits_and_guide_field():
    n = np.array([-1e6, 0.0, 1e6])
    bl, bm, bn = harris_field_lmn(0.0, n, b0_t=B0, half_thickness_m=LAM, guide_t=-3e-9,
                                  normal_t=1e-9)
    np.testing.assert_allclose(bl, [-B0, 0.0, B0], atol=1e-20)
    np.testing.assert_allclose(bm, -3e-9)  # no Hall term: uniform guide field
    np.testing.assert_allclose(bn, 1e-9)


def test_ampere_current_of_harris_sheet():
    """J_M = (dB_L/dN)/mu0 = B0 sech^2(N/lambda)/(mu0 lambda) (analytic), by finite differences."""
    n = np.linspace(-3 * LAM, 3 * LAM, 2001)
    bl, _, _ = harris_field_lmn(0.0, n, b0_t=B0, half_thickness_m=LAM)
    j = np.gradient(bl, n) / sc.mu_0
    expect = B0 / (sc.mu_0 * LAM) / np.cosh(n / LAM) ** 2
    np.testing.assert_allclose(j, expect, rtol=1e-3, atol=1e-3 * expect.max())  # O(h^2) FD


def test_pressure_balance():
    """B^2/2mu0 + n k T is uniform with n0 k T = B0^2/2mu0 (Harris 1962)."""
    temp = 6000.0
    n0 = harris_peak_density(B0, temp)
    n = np.linspace(-5 * LAM, 5 * LAM, 101)
    bl, bm, bn = harris_field_lmn(0.0, n, b0_t=B0, half_thickness_m=LAM, guide_t=-3e-9)
    dens = harris_density(n, peak_m3=n0, background_m3=4e8, half_thickness_m=LAM)
    p = (bl**2 + bm**2 + bn**2) / (2 * sc.mu_0) + dens * sc.k * temp
    np.testing.assert_allclose(p, p[0], rtol=1e-12)
    assert dens.max() == pytest.approx(n0 + 4e8)


def test_hall_field_is_quadrupolar_and_bipolar():
    lh, ell, bh = 15e3, 50e3, 5e-9
    kw = dict(b0_t=B0, half_thickness_m=LAM, guide_t=-3e-9, hall_t=bh, hall_length_m=ell,
              hall_width_m=lh)
    _, bm = harris_field_lmn(1e9, np.asinh(1.0) * lh, **kw)[:2]
    assert bm - (-3e-9) == pytest.approx(bh, rel=1e-9)  # peak 2 tanh sech = 1 at asinh(1)
    for l_m, n_m in [(40e3, 10e3), (-25e3, 7e3)]:
        d = lambda a, b: harris_field_lmn(a, b, **kw)[1] + 3e-9  # noqa: E731
        assert d(l_m, n_m) == pytest.approx(-d(-l_m, n_m))  # odd in L
        assert d(l_m, n_m) == pytest.approx(-d(l_m, -n_m))  # odd in N: bipolar along a crossing
        assert d(l_m, n_m) == pytest.approx(d(-l_m, -n_m))  # quadrupole
    assert harris_field_lmn(60e3, 5e3, **kw)[1] + 3e-9 > 0  # B_H > 0 quadrant +L +N (Oieroset 2001)


def test_jets_reverse_across_x_line():
    l_m = np.array([-200e3, -10e3, 0.0, 10e3, 200e3])
    v = outflow_velocity_lmn(l_m, 0.0, outflow_m_s=3490.0, half_thickness_m=LAM, hall_length_m=50e3)
    assert np.all(np.sign(v) == np.sign(l_m))  # away from the X-line on both sides
    assert v[-1] == pytest.approx(3490.0 * np.tanh(4.0), rel=1e-12)  # tanh(L/ell), L = 4 ell
    assert outflow_velocity_lmn(200e3, 10 * LAM, outflow_m_s=3490.0, half_thickness_m=LAM,
                                hall_length_m=50e3) < 1e-4 * 3490  # confined to the sheet


def test_correlated_noise_statistics():
    rng = np.random.default_rng(3)
    x = correlated_noise(rng, (50000, 2), 0.8, 4.0)
    # std within 3 % (effective sample size ~ 1e5 (1-rho)/(1+rho) ~ 1.2e4 -> ~0.6 % sigma)
    assert x.std() == pytest.approx(0.8, rel=0.03)
    rho = np.corrcoef(x[:-1, 0], x[1:, 0])[0, 1]
    assert rho == pytest.approx(np.exp(-0.25), abs=0.012)  # AR(1) lag-1; sigma ~ 0.003
    w = correlated_noise(rng, (100000,), 1.0, 0.0)
    assert abs(np.corrcoef(w[:-1], w[1:])[0, 1]) < 0.02  # white: 0 +- 0.003 (1/sqrt(N))


def test_imf_downstream_is_lagged_copy():
    t = np.arange(0.0, 1200.0)
    out = imf_series(np.random.default_rng(0), t, magnitude_t=3e-9, cone_angle_deg=60.0,
                     clock_start_deg=300.0, clock_rotation_deg=110.0, rotation_time_s=600.0,
                     rotation_duration_s=5.0, fluctuation_deg=10.0, fluctuation_time_s=5.0,
                     lag_s=105.0, draping_gain=4.0, draping_bx_t=3e-9, upstream_noise_t=0.0,
                     downstream_noise_t=0.0)
    up, down = out["clock_up_deg"], out["clock_down_deg"]
    assert np.all((up >= 0) & (up < 360)) and np.all((down >= 0) & (down < 360))
    np.testing.assert_allclose(down[105:], up[:-105], atol=1e-9)  # integer lag: exact copy
    b = out["b_down_t"]
    clock = np.mod(np.degrees(np.arctan2(b[:, 1], b[:, 2])), 360.0)  # from +Z toward +Y
    np.testing.assert_allclose(clock, down, atol=1e-9)
    bu = out["b_up_true_t"]
    np.testing.assert_allclose(np.linalg.norm(bu, axis=1), 3e-9, rtol=1e-12)
    # the rotation: early vs late clock angle differ by ~110 deg (fluctuations 10 deg rms)
    dif = np.angle(np.exp(1j * np.radians(np.median(up[800:]) - np.median(up[:400]))), deg=True)
    assert dif == pytest.approx(110.0, abs=25.0)


# --- full simulation ----------------------------------------------------------------------
def test_simulation_structure(simulated, scenario):
    truth, obs = simulated
    for ds in (truth, obs):
        for name, var in ds.data_vars.items():
            assert "units" in var.attrs and "long_name" in var.attrs, name
    assert obs.attrs["seed"] == 7 and obs.attrs["scenario"] == "mars-2024-11-07"
    dt = np.diff(obs.time_mag.values) / np.timedelta64(1, "s")
    np.testing.assert_allclose(dt, 1 / 32.0, atol=1e-9)  # 32 vectors/s
    dti = np.diff(obs.time_ion.values) / np.timedelta64(1, "s")
    np.testing.assert_allclose(dti, 4.0, atol=1e-9)
    # the observation carries nothing of the truth
    assert not {"lmn_basis", "b_lmn", "position_lmn", "density"} & set(obs.data_vars)
    assert "guide_field_nt" not in obs.attrs and "lag_s" not in obs.attrs


def test_truth_consistency(simulated, scenario):
    truth, obs = simulated
    basis = truth.lmn_basis.values
    np.testing.assert_allclose(truth.b_lmn.values @ basis, truth.b_mso.values, atol=1e-9)
    sh = scenario["sheet"]
    v_a = truth.attrs["b0_nt"] * 1e-9 / np.sqrt(sc.mu_0 * sh["background_density_m3"]
                                                 * 16 * sc.atomic_mass)
    assert v_a == pytest.approx(5860.0)  # B0 derived from the published Alfven speed
    resid = (obs.b_mso.values - truth.b_mso.values
             - np.asarray(scenario["magnetometer"]["offset_nt"]))
    assert resid.std() == pytest.approx(scenario["magnetometer"]["noise_nt"], rel=0.03)
    # spacecraft crosses N = 0 at the centre time, moving toward +N
    pos = truth.position_lmn.values
    k = np.argmin(np.abs(pos[:, 2]))
    assert obs.time_mag.values[k] == np.datetime64("2024-11-07T02:19:10")
    assert truth.attrs["sc_normal_speed_m_s"] > 0
    # escape flux of the published numbers far from the sheet
    far = np.abs(pos[:, 2]) > 8 * truth.attrs["half_thickness_m"]
    flux = (truth.density.values[far, None] * truth.velocity_mso.values[far]).mean(0)
    assert np.linalg.norm(flux) == pytest.approx(5.44e11, rel=0.01)  # SCIENCE.md: ~5.44e11


def test_seeds(scenario):
    a = simulate_sheet_crossing(scenario, 1)[1]
    b = simulate_sheet_crossing(scenario, 1)[1]
    c = simulate_sheet_crossing(scenario, 2)[1]
    np.testing.assert_array_equal(a.b_mso.values, b.b_mso.values)
    assert not np.array_equal(a.b_mso.values, c.b_mso.values)


# --- scenario reader ----------------------------------------------------------------------
def test_builtin_scenario_published_numbers(scenario):
    sh = scenario["sheet"]
    assert sh["l_mso"] == [-0.35, -0.93, 0.10] and sh["n_mso"] == [-0.08, 0.14, 0.99]
    assert sh["guide_field_nt"] == -3.27 and scenario["imf"]["lag_s"] == 105.0
    assert sh["alfven_speed_m_s"] == 5860.0 and sh["outflow_speed_m_s"] == 3490.0
    assert scenario["magnetometer"]["rate_hz"] == 32.0
    assert len(scenario["sha256"]) == 64


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["sheet"].__setitem__("colour", 1), "[sheet] has an unknown key 'colour'"),
    (lambda d: d.__setitem__("extra", 1), "unknown key 'extra'"),
    (lambda d: d["sheet"].__setitem__("half_thickness_km", -3.0),
     "[sheet] half_thickness_km = -3 is outside"),
    (lambda d: d["sheet"].__setitem__("l_mso", [1, 2]), "[sheet] l_mso = [1, 2]"),
    (lambda d: d["sheet"].__setitem__("l_mso", [-0.08, 0.14, 0.99]), "[sheet] l_mso"),
    (lambda d: d["crossing"].__setitem__("center_utc", "yesterday"),
     "[crossing] center_utc = \"yesterday\""),
    (lambda d: d["crossing"].__setitem__("angle_to_normal_deg", 95.0),
     "[crossing] angle_to_normal_deg = 95 is outside"),
    (lambda d: d["imf"].pop("lag_s"), "[imf] lacks the required key 'lag_s'"),
    (lambda d: d["sheet"].__setitem__("b0_nt", 20.0), "[sheet] must give exactly one of b0_nt"),
    (lambda d: d["magnetometer"].__setitem__("noise_nt", "low"),
     "[magnetometer] noise_nt = \"low\""),
    (lambda d: d["analysis"].__setitem__("window_utc", ["2024-11-07T02:19:30",
                                                        "2024-11-07T02:18:50"]),
     "[analysis] window_utc"),
])
def test_bad_scenario_one_sentence(mutate, words):
    data = copy.deepcopy(raw_builtin())
    mutate(data)
    with pytest.raises(ScenarioError) as exc:
        parse_sheet_scenario(data, source="test.toml")
    msg = str(exc.value)
    assert words in msg and "\n" not in msg and msg.endswith(".")


def test_scenario_file_errors(tmp_path):
    with pytest.raises(ScenarioError, match="neither a built-in name"):
        load_sheet_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_sheet_scenario(bad)
    good = tmp_path / "good.toml"
    good.write_text((SCENARIO_DIR / "mars-2024-11-07.toml").read_text())
    assert load_sheet_scenario(good)["name"] == "mars-2024-11-07"


# --- sheet motion and a second magnetometer ------------------------------------------------
def test_moving_sheet_frame_limits():
    """No motion: the nominal frame. An oscillation: the sheet is at N = 0 at t = 0 and its
    normal speed is 2 pi A / P cos(2 pi t / P + phi) (finite difference, 1e-6 relative)."""
    rng = np.random.default_rng(3)
    pos = rng.normal(0.0, 50e3, (20, 3))
    t = rng.uniform(-30.0, 30.0, 20)
    l_m, n_m, alpha = moving_sheet_frame(pos, t)
    np.testing.assert_array_equal(l_m, pos[:, 0])
    np.testing.assert_array_equal(n_m, pos[:, 2])
    assert np.all(alpha == 0.0)
    kw = dict(amplitude_m=5e3, period_s=20.0, phase_deg=40.0)
    origin = np.zeros((3, 3))
    tt = np.array([-1e-3, 0.0, 1e-3])
    _, n_s, _ = moving_sheet_frame(origin, tt, **kw)  # N of the origin relative to the sheet
    assert n_s[1] == 0.0
    speed = -(n_s[2] - n_s[0]) / 2e-3
    assert speed == pytest.approx(2 * np.pi * 5e3 / 20.0 * np.cos(np.radians(40.0)), rel=1e-6)


def test_curved_sheet_local_normal():
    """A parabolic sheet N_s = kappa (L - L_c)^2 / 2: its local normal is tilted by
    atan(kappa (L - L_c)), and a point on the surface is at n' = 0."""
    kappa, lc = 1e-5, 150e3  # radius of curvature 100 km
    pos = np.array([[lc + 20e3, 0.0, 0.5 * kappa * 20e3**2]])
    _, n_m, alpha = moving_sheet_frame(pos, np.zeros(1), center_l_m=lc, curvature_per_m=kappa)
    assert n_m[0] == pytest.approx(0.0, abs=1e-9)
    assert alpha[0] == pytest.approx(np.arctan(kappa * 20e3), rel=1e-12)


def test_rotate_from_local_is_a_rotation():
    rng = np.random.default_rng(4)
    b = rng.normal(size=(50, 3))
    alpha = rng.uniform(-1.0, 1.0, 50)
    out = rotate_from_local(b, alpha)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(b, axis=1), rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], b[:, 1])
    # the local normal (0, 0, 1) at alpha is (-sin a, 0, cos a) in LMN
    n_loc = rotate_from_local(np.tile([0.0, 0.0, 1.0], (50, 1)), alpha)
    np.testing.assert_allclose(n_loc, np.stack([-np.sin(alpha), 0 * alpha, np.cos(alpha)], -1),
                               atol=1e-15)


def test_motion_keys_default_off_and_change_the_field(scenario):
    assert scenario["motion"]["oscillation_amplitude_km"] == 0.0  # the built-in is at rest
    t0, _ = simulate_sheet_crossing(scenario, 2)
    moving = copy.deepcopy(scenario)
    moving["motion"].update(oscillation_amplitude_km=5.0, oscillation_period_s=20.0)
    t1, _ = simulate_sheet_crossing(moving, 2)
    # the sheet moves, so the field differs, but B_N stays 0 (oscillation along N only)
    assert np.abs(t1["b_lmn"].values[:, 0] - t0["b_lmn"].values[:, 0]).max() > 1.0
    np.testing.assert_allclose(t1["b_lmn"].values[:, 2], 0.0, atol=1e-9)


def test_second_magnetometer(scenario):
    two = copy.deepcopy(scenario)
    two["second"].update(separation_km=[0.0, 0.0, 30.0], noise_nt=0.0)
    truth, obs = simulate_sheet_crossing(two, 2)
    one_truth, one_obs = simulate_sheet_crossing(scenario, 2)
    # the first spacecraft's streams are unchanged (the second draws its noise last)
    np.testing.assert_array_equal(obs["b_mso"].values, one_obs["b_mso"].values)
    np.testing.assert_allclose(obs["sc2_position_mso"].values - obs["sc_position_mso"].values,
                               np.tile([0.0, 0.0, 30e3], (obs.sizes["time_mag"], 1)))
    np.testing.assert_allclose(obs["b2_mso"].values, truth["b2_mso"].values)
    # a stationary sheet: spacecraft 2 sees spacecraft 1's field shifted by (sep . N) / v_N
    n_hat = truth["lmn_basis"].values[2]
    delay = 30e3 * n_hat[2] / truth.attrs["sc_normal_speed_m_s"]
    b_l1, b_l2 = (truth[v].values @ truth["lmn_basis"].values[0] for v in ("b_mso", "b2_mso"))
    t = (obs["time_mag"].values - obs["time_mag"].values[0]) / np.timedelta64(1, "s")
    t_c1, t_c2 = (np.interp(0.0, b, t) for b in (b_l1, b_l2))  # B_L increases through 0
    assert t_c1 - t_c2 == pytest.approx(delay, abs=2e-3)  # sep along N is ahead: earlier
