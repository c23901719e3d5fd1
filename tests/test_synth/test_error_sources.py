"""Error sources of the budget (synth.error_sources) on small synthetic observations.

The observations here are built in the test from circular Kepler orbits (no SPICE, no ray
tracing): two spacecraft near Mars, or a spacecraft and a far ground station, with a
smooth Gaussian residual whose box-car average is known in closed form (erf).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import scipy.constants as sc
import xarray as xr
from scipy import special, stats

from retrieval.errors import RoharnessError
from synth import error_sources as es
from synth.errors import ScenarioError
from synth.oscillator import PRESETS
from synth.scenario import load_scenario

GM = 4.282837e13  # Mars GM [m^3 s^-2] (the value only shapes the test orbits)
F_UHF = 437.1e6
N = 200


def _orbit(t, radius, phase, tilt):
    """Circular orbit: positions, velocities (n, 3), inclined by ``tilt`` about x."""
    w = math.sqrt(GM / radius**3)
    ang = phase + w * t
    p = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(t)], 1) * radius
    v = np.stack([-np.sin(ang), np.cos(ang), np.zeros_like(t)], 1) * radius * w
    rot = np.array([[1, 0, 0], [0, math.cos(tilt), -math.sin(tilt)],
                    [0, math.sin(tilt), math.cos(tilt)]])
    return p @ rot.T, v @ rot.T


def _gauss(t, amp=-0.8, t0=100.0, width=20.0):
    return amp * np.exp(-(((t - t0) / width) ** 2))


def _gauss_boxcar(t, T, amp=-0.8, t0=100.0, width=20.0):
    """Exact mean of _gauss over [t - T/2, t + T/2]."""
    lo, hi = (t - T / 2 - t0) / width, (t + T / 2 - t0) / width
    return amp * width * math.sqrt(math.pi) / 2 * (special.erf(hi) - special.erf(lo)) / T


def _states(t, two_way=False):
    r_t, v_t = _orbit(t, 3.8e6, 0.3, 0.2)
    if two_way:  # far ground station moving uniformly (Earth ~1.5e11 m away)
        r_r = np.array([1.5e11, 2e10, 1e9]) + np.outer(t, [1e4, 2e4, 0.0])
        v_r = np.tile([1e4, 2e4, 0.0], (t.size, 1))
        return r_t, v_t, r_r, v_r
    r_r, v_r = _orbit(t, 3.79e6, 2.9, 1.3)
    return r_t, v_t, r_r, v_r


def small_obs(two_way=False, n=N, rate=1.0):
    t = np.arange(n) / rate
    r_t, v_t, r_r, v_r = _states(t, two_way)
    et = 7.3e8 + t
    vec = lambda a: (("time", "xyz"), a)  # noqa: E731
    data = dict(tx_position=vec(r_t), tx_velocity=vec(v_t), rx_position=vec(r_r),
                rx_velocity=vec(v_r), et_tx=("time", et - 0.01), et_rx=("time", et))
    attrs = dict(link="mutual", frequency_hz=F_UHF, occultation="ingress",
                 reference_radius_m=3389.5e3, tx_naif_id=-41, rx_naif_id=-143, epoch_utc="x")
    if two_way:
        k = 880.0 / 749.0
        data["frequency_residual_two_way"] = ("time", (1 + k * k) * _gauss(t))
        data["frequency_residual_xx"] = data["frequency_residual_two_way"]
        data["frequency_residual_xs"] = ("time", 3.0 * _gauss(t))
        data["uplink_tx_position"] = vec(r_r - np.outer(np.full(n, 1.0), [3e4, 1e4, 0]))
        data["uplink_tx_velocity"] = vec(v_r)
        data["et_uplink_tx"] = ("time", et - 1000.0)
        attrs.update(link="earth_twoway", frequency_hz=8.4e9, turnaround_ratio=k)
    else:
        data["frequency_residual"] = ("time", _gauss(t))
    return xr.Dataset(data, coords=dict(time=t, xyz=["x", "y", "z"]), attrs=attrs)


@pytest.fixture(scope="module")
def scn():
    return load_scenario("mex-tgo-uhf")


def _scn_with(scn, **budget):
    s = copy.deepcopy(scn)
    s.sections["budget"].update(budget)
    return s


def _vac(r_t, v_t, r_r, v_r, f):
    """Independent first-order vacuum Doppler SHIFT f_R - f_T (RO contract), written as
    f (1 - a)/(1 - b) - f = f (b - a)/(1 - b) so that differences keep their precision."""
    d = r_r - r_t
    e = d / np.linalg.norm(d, axis=1)[:, None]
    a, b = np.sum(e * v_r, 1) / sc.c, np.sum(e * v_t, 1) / sc.c
    return f * (b - a) / (1 - b)


def test_vacuum_shift_is_instrument_formula():
    from synth.instrument import vacuum_sky_frequency

    obs = small_obs()
    st = {k: obs[k].values for k in ("tx_position", "tx_velocity", "rx_position",
                                     "rx_velocity")}
    got = es._vacuum(st, False, {"frequency_residual": (F_UHF, 1.0)})["frequency_residual"]
    want = vacuum_sky_frequency(st["tx_position"], st["tx_velocity"], st["rx_position"],
                                st["rx_velocity"], F_UHF) - F_UHF
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # 437 MHz x 1e-16 rounding


def _diff(out, obs, var="frequency_residual"):
    return out[var].values - obs[var].values


# ------------------------------------------------------------------------ catalogue
def test_catalogue():
    assert set(es.ORDER) == set(es.SOURCES)
    assert len(es.ORDER) == len(set(es.ORDER))
    for _name, meta in es.SOURCES.items():
        assert meta["description"] and meta["kind"] in ("physical", "recipe")
    assert es.SOURCES["parrott"]["kind"] == "recipe"
    assert es.SOURCES["gradients"]["stochastic"] is False
    assert es.ORDER.index("gradients") < es.ORDER.index("sampling")


def test_unknown_source_lists_known(scn):
    with pytest.raises(ValueError, match="thermal"):
        es.prepare(scn, None, small_obs(), ["thermal", "cosmic_rays"])
    with pytest.raises(ValueError, match="known"):
        es.perturb(small_obs(), ["bogus"], scn, None, 0)


@pytest.mark.parametrize("key", ["tx_position_sigma_m", "rx_velocity_sigma_m_s"])
@pytest.mark.parametrize("bad", [[1.0, 2.0], [1.0, -2.0, 3.0], [1.0, float("nan"), 1.0],
                                 ["a", 1, 2], [1, 2, 3, 4]])
def test_bad_sigma_list_names_key(scn, key, bad):
    with pytest.raises(ScenarioError, match=key):
        es.prepare(_scn_with(scn, **{key: bad}), None, small_obs(), ["thermal"])


def test_two_way_rejects_oscillator_sources(scn):
    for s in ("oscillator", "drift"):
        with pytest.raises(ScenarioError, match=s):
            es.prepare(scn, None, small_obs(two_way=True), [s])


def test_gradients_need_prepare(scn):
    with pytest.raises(RoharnessError, match="prepare"):
        es.perturb(small_obs(), ["gradients"], scn, None, 0)


# ------------------------------------------------------------------------ thermal
def test_thermal_sigma_is_rife_boorstyn_bound():
    # Rife & Boorstyn (1974) eq. (22), N samples at interval dt, SNR per sample = C/N0 dt:
    # var = 12 / ((2 pi)^2 SNR dt^2 N (N^2 - 1)) with SNR = A^2/(2 sigma^2) = C/N0 dt; for
    # N >> 1 this is 6/((2 pi)^2 C/N0 T^3) with their complex-noise convention (factor 2).
    cn0_dbhz, t_int = 45.0, 1.0
    cn0 = 10 ** 4.5
    n, dt = 20000, 1.0 / 20000
    snr = cn0 * dt
    var_rb = 12.0 / ((2 * math.pi) ** 2 * (2 * snr) * dt**2 * n * (n * n - 1))
    # relative difference of the finite-N formula from the asymptotic one ~ 1/N^2
    assert es.thermal_sigma_hz(cn0_dbhz, t_int) == pytest.approx(math.sqrt(var_rb), rel=1e-6)
    # scalings: T^-3/2 and (C/N0)^-1/2
    assert es.thermal_sigma_hz(45.0, 4.0) == pytest.approx(
        es.thermal_sigma_hz(45.0, 1.0) / 8.0, rel=1e-12)
    assert es.thermal_sigma_hz(55.0, 1.0) == pytest.approx(
        es.thermal_sigma_hz(45.0, 1.0) / math.sqrt(10.0), rel=1e-12)


def test_thermal_statistics_and_untouched_states(scn):
    obs = small_obs()
    prep = es.prepare(scn, None, obs, ["thermal"])
    sigma = math.sqrt(6.0 / ((2 * math.pi) ** 2 * 10 ** (45.0 / 10) * 1.0**3))
    d = []
    for r in range(20):
        out = es.perturb(obs, ["thermal"], scn, prep, np.random.default_rng(r))
        for k in ("tx_position", "rx_position", "tx_velocity", "rx_velocity", "time"):
            np.testing.assert_array_equal(out[k].values, obs[k].values)
        assert out.attrs["error_sources"] == "thermal"
        d.append(_diff(out, obs))
    d = np.concatenate(d)
    # sample variance of 4000 iid normals: 99.9 % chi-square interval
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], d.size)
    assert lo / d.size < np.sum(d**2) / (d.size * sigma**2) < hi / d.size
    assert abs(d.mean()) < 4 * sigma / math.sqrt(d.size)  # 4-sigma on the mean


def test_thermal_integration_time_from_budget(scn):
    s = _scn_with(scn, integration_time_s=0.25)
    prep = es.prepare(s, None, small_obs(), ["thermal"])
    assert prep["config"]["sigma_f_hz"] == pytest.approx(es.thermal_sigma_hz(45.0, 0.25))
    with pytest.raises(ScenarioError, match="integration_time_s"):
        es.prepare(_scn_with(scn, integration_time_s=-1.0), None, small_obs(), ["thermal"])


# ------------------------------------------------------------------------ parrott
def test_parrott_fraction_of_max(scn):
    obs = small_obs()
    d = np.concatenate([_diff(es.perturb(obs, ["parrott"], scn, None, r), obs)
                        for r in range(20)])
    sigma = 0.05 * 0.8  # 5 % of the Gaussian's amplitude (its max |residual|)
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], d.size)
    assert lo / d.size < np.sum(d**2) / (d.size * sigma**2) < hi / d.size


# ------------------------------------------------------------------------ seeds
def test_seeds_reproducible_and_independent(scn):
    obs = small_obs()
    src = ["thermal", "parrott", "ephemeris"]
    prep = es.prepare(scn, None, obs, src)
    ss = np.random.SeedSequence(11, spawn_key=(3, 0, 5))
    a = es.perturb(obs, src, scn, prep, np.random.default_rng(ss))
    b = es.perturb(obs, src, scn, prep, np.random.default_rng(ss))
    xr.testing.assert_identical(a, b)
    c = es.perturb(obs, src, scn, prep, np.random.default_rng(12))
    assert not np.allclose(_diff(a, obs), _diff(c, obs))
    # each source's draws do not depend on the others: thermal alone + parrott alone ==
    # both together (additive sources on the same grid)
    t_only = _diff(es.perturb(obs, ["thermal"], scn, prep, np.random.default_rng(ss)), obs)
    p_only = _diff(es.perturb(obs, ["parrott"], scn, prep, np.random.default_rng(ss)), obs)
    both = _diff(es.perturb(obs, ["parrott", "thermal"], scn, prep,
                            np.random.default_rng(ss)), obs)
    np.testing.assert_allclose(both, t_only + p_only, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ ephemeris
@pytest.mark.parametrize("frame", ["rtn", "xyz"])
def test_ephemeris_bias_and_residual(scn, frame):
    s = _scn_with(scn, ephemeris_frame=frame, tx_position_sigma_m=[10.0, 50.0, 5.0],
                  rx_position_sigma_m=[1.0, 2.0, 3.0], tx_velocity_sigma_m_s=[0.01, 0.02, 0.0],
                  rx_velocity_sigma_m_s=[0.0, 0.0, 0.03])
    obs = small_obs()
    out = es.perturb(obs, ["ephemeris"], s, None, np.random.default_rng(4))
    for end in ("tx", "rx"):
        r, v = obs[f"{end}_position"].values, obs[f"{end}_velocity"].values
        dr = out[f"{end}_position"].values - r
        dv = out[f"{end}_velocity"].values - v
        if frame == "rtn":  # independent axes: R = r/|r|, N = r x v / |r x v|, T = N x R
            R = r / np.linalg.norm(r, axis=1)[:, None]
            Nn = np.cross(r, v)
            Nn /= np.linalg.norm(Nn, axis=1)[:, None]
            T = np.cross(Nn, R)
            comp_r = np.stack([np.sum(dr * a, 1) for a in (R, T, Nn)], 1)
            comp_v = np.stack([np.sum(dv * a, 1) for a in (R, T, Nn)], 1)
        else:
            comp_r, comp_v = dr, dv
        # constant over the occultation (1e-9 m: rounding of 3.8e6 m positions)
        assert np.ptp(comp_r, axis=0).max() < 1e-6
        assert np.ptp(comp_v, axis=0).max() < 1e-12
        assert np.any(np.abs(comp_r[0]) > 0)
    # a zero sigma component gives exactly no error along that axis
    assert np.allclose(comp_v[:, :2], 0.0, atol=1e-12)
    # the measured frequency is unchanged: residual += f_vac(true) - f_vac(perturbed)
    want = (_vac(*(obs[k].values for k in ("tx_position", "tx_velocity", "rx_position",
                                           "rx_velocity")), F_UHF)
            - _vac(*(out[k].values for k in ("tx_position", "tx_velocity", "rx_position",
                                             "rx_velocity")), F_UHF))
    np.testing.assert_allclose(_diff(out, obs), want, rtol=0, atol=1e-7)


def test_ephemeris_sigma_statistics(scn):
    # position sigmas only along T of the transmitter: 200 realisations, chi-square 99.9 %
    s = _scn_with(scn, tx_position_sigma_m=[0.0, 100.0, 0.0], rx_position_sigma_m=[0, 0, 0],
                  tx_velocity_sigma_m_s=[0, 0, 0], rx_velocity_sigma_m_s=[0, 0, 0])
    obs = small_obs(n=20)
    x = np.array([np.linalg.norm(es.perturb(obs, ["ephemeris"], s, None, r)
                                 ["tx_position"].values[0] - obs.tx_position.values[0])
                  for r in range(200)])
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], x.size)
    assert lo / x.size < np.mean(x**2) / 100.0**2 < hi / x.size


def test_two_way_ephemeris_only_spacecraft(scn):
    obs = small_obs(two_way=True)
    out = es.perturb(obs, ["ephemeris"], scn, None, np.random.default_rng(2))
    assert not np.allclose(out.tx_position.values, obs.tx_position.values)
    for k in ("rx_position", "rx_velocity", "uplink_tx_position", "uplink_tx_velocity"):
        np.testing.assert_array_equal(out[k].values, obs[k].values)  # ground: exact
    # two-way vacuum frequency f_down * P * Q, P and Q the up/down-link vacuum ratios
    def pq(o):  # P Q - 1 from the shifts P - 1 and Q - 1
        p = _vac(o.uplink_tx_position.values, o.uplink_tx_velocity.values,
                 o.tx_position.values, o.tx_velocity.values, 1.0)
        q = _vac(o.tx_position.values, o.tx_velocity.values, o.rx_position.values,
                 o.rx_velocity.values, 1.0)
        return p + q + p * q
    dpq = pq(obs) - pq(out)
    # shifts of ~1e5 Hz: rounding ~1e-10 Hz
    np.testing.assert_allclose(_diff(out, obs, "frequency_residual_two_way"), 8.4e9 * dpq,
                               rtol=1e-9, atol=1e-9)
    f_s = 3.0 / 11.0 * 8.4e9  # default S downlink (240/749 of the uplink)
    np.testing.assert_allclose(_diff(out, obs, "frequency_residual_xs"), f_s * dpq,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(out.frequency_residual_xx.values,
                                  out.frequency_residual_two_way.values)


def test_two_way_thermal_channels(scn):
    obs = small_obs(two_way=True)
    out = es.perturb(obs, ["thermal"], scn, None, np.random.default_rng(3))
    dx = _diff(out, obs, "frequency_residual_two_way")
    ds = _diff(out, obs, "frequency_residual_xs")
    assert np.std(dx) > 0 and np.std(ds) > 0 and not np.allclose(dx, ds)
    np.testing.assert_array_equal(out.frequency_residual_xx.values,
                                  out.frequency_residual_two_way.values)


# ------------------------------------------------------------------------ drift/oscillator
def test_drift_deterministic_part_is_preset_ageing(scn):
    s = copy.deepcopy(scn)
    s.sections["oscillator"].update(transmitter_offset=0.0, receiver_offset=0.0,
                                    transmitter_rate_per_s=None, receiver_rate_per_s=None)
    obs = small_obs()
    d = _diff(es.perturb(obs, ["drift"], s, None, 1), obs)
    rate = (PRESETS[s["oscillator"]["transmitter_preset"]]["drift"]["rate_per_s"]
            - PRESETS[s["oscillator"]["receiver_preset"]]["drift"]["rate_per_s"])
    np.testing.assert_allclose(d, F_UHF * rate * obs.time.values, rtol=1e-12, atol=1e-15)


def test_drift_offset_draws(scn):
    s = copy.deepcopy(scn)
    s.sections["oscillator"].update(transmitter_offset=1e-9, receiver_offset=2e-9)
    obs = small_obs(n=20)
    off = np.array([_diff(es.perturb(obs, ["drift"], s, None, r), obs)[0]
                    for r in range(300)])  # t = 0: the offsets alone
    sigma = F_UHF * math.hypot(1e-9, 2e-9)
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], off.size)
    assert lo / off.size < np.mean(off**2) / sigma**2 < hi / off.size


def test_oscillator_scales_with_adev_and_leaves_states(scn):
    s1 = copy.deepcopy(scn)
    s1.sections["oscillator"].update(transmitter_preset="none", receiver_adev_scale=1.0)
    s2 = copy.deepcopy(s1)
    s2.sections["oscillator"]["receiver_adev_scale"] = 3.0
    obs = small_obs()
    d1 = _diff(es.perturb(obs, ["oscillator"], s1, None, 5), obs)
    d2 = _diff(es.perturb(obs, ["oscillator"], s2, None, 5), obs)
    # same draws, h scaled by 9: the noise scales exactly by 3 (linear generator)
    np.testing.assert_allclose(d2, 3.0 * d1, rtol=1e-9, atol=1e-12)
    out = es.perturb(obs, ["oscillator"], s1, None, 5)
    np.testing.assert_array_equal(out.tx_position.values, obs.tx_position.values)


def test_oscillator_adev_matches_preset(scn):
    """Allan deviation of the window-averaged noise vs the preset's (allantools, independent
    estimator), at tau = 1 s and 10 s, averaged over realisations."""
    allantools = pytest.importorskip("allantools")
    from synth.oscillator import adev_from_h

    s = copy.deepcopy(scn)
    s.sections["oscillator"].update(transmitter_preset="none")
    obs = small_obs(n=400)
    taus = np.array([1.0, 10.0])
    var = np.zeros(2)
    n_real = 24
    for r in range(n_real):
        y = -_diff(es.perturb(obs, ["oscillator"], s, None, r), obs) / F_UHF
        t2, ad, _, _ = allantools.oadev(y, rate=1.0, data_type="freq", taus=taus)
        var += ad**2
    adev = np.sqrt(var / n_real)
    want = adev_from_h(PRESETS[s["oscillator"]["receiver_preset"]]["h"], taus, 0.1,
                       model="standard")
    # 24 x 400 s: ~2 % (1 s) and ~8 % (10 s) statistical scatter of the Allan variance,
    # plus the model's 0.1 s series averaged to 1 s windows; 20 % covers 2.5 sigma
    np.testing.assert_allclose(adev, want, rtol=0.2)


# ------------------------------------------------------------------------ sampling
def test_sampling_grid_boxcar_and_states(scn):
    obs = small_obs()
    out = es.perturb(obs, ["sampling"], scn, None, np.random.default_rng(9))
    t = out.time.values
    np.testing.assert_allclose(np.diff(t), 1.0, rtol=0, atol=1e-9)  # same rate
    frac = t % 1.0  # the old grid is integer seconds: one common phase in [0, 1)
    np.testing.assert_allclose(frac, frac[0], rtol=0, atol=1e-9)
    assert frac[0] > 0.0
    # every integration window lies inside the simulated span
    assert t[0] - 0.5 >= 0.0 and t[-1] + 0.5 <= obs.time.values[-1] + 1e-9
    # states: the exact Kepler orbits at the new times (Hermite interpolation, ~1e-4 m)
    r_t, v_t, r_r, v_r = _states(t)
    np.testing.assert_allclose(out.tx_position.values, r_t, rtol=0, atol=1e-3)
    np.testing.assert_allclose(out.rx_velocity.values, v_r, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.et_rx.values, 7.3e8 + t, rtol=0, atol=1e-6)
    # residual: the exact box-car mean of the Gaussian + the vacuum Doppler's own
    # curvature over the window (computed here with 64-point Gauss-Legendre on the orbits)
    x, w = np.polynomial.legendre.leggauss(64)
    nodes = (t[:, None] + 0.5 * x[None, :]).ravel()
    vac = _vac(*_states(nodes), F_UHF).reshape(t.size, -1) @ w / 2.0
    want = _gauss_boxcar(t, 1.0) + vac - _vac(r_t, v_t, r_r, v_r, F_UHF)
    # spline of a 1-s sampled Gaussian of width 20 s: ~1e-6 of its amplitude
    np.testing.assert_allclose(out.frequency_residual.values, want, rtol=0, atol=2e-6)


def test_sampling_two_way_layout(scn):
    obs = small_obs(two_way=True)
    out = es.perturb(obs, ["sampling"], scn, None, 3)
    assert set(out.data_vars) == set(obs.data_vars)
    assert out.sizes["time"] < obs.sizes["time"] or out.time.values[0] > 0
    np.testing.assert_array_equal(out.frequency_residual_xx.values,
                                  out.frequency_residual_two_way.values)
    assert np.all(np.diff(out.et_uplink_tx.values) > 0)


# ------------------------------------------------------------------------ gradients
def test_gradients_channel_scaling(scn, monkeypatch):
    """The gradient perturbation D (one-way, X downlink) enters the two-way channels by
    df = k df_up + df_down with df proportional to 1/f (SCIENCE.md), written out here."""
    import synth.gradients as gr

    obs = small_obs(two_way=True)
    d = np.linspace(0.0, 0.01, obs.sizes["time"])

    def fake(o, truth, anchor="tangent"):
        return xr.Dataset({"frequency_residual_perturbation": ("time", d),
                           "frequency_residual_spherical": ("time", np.ones_like(d)),
                           "tangent_sza_deg": ("time", np.zeros_like(d))})

    monkeypatch.setattr(gr, "gradient_perturbation", fake)
    prep = es.prepare(scn, None, obs, ["gradients"])
    out = es.perturb(obs, ["gradients"], scn, prep, 0)
    f_x = 8.4e9
    kx = 880.0 / 749.0
    f_up = f_x / kx
    f_s = 240.0 / 749.0 * f_up
    up = d * f_x / f_up          # the uplink ray's one-way residual at f_up
    want_xx = kx * up + d        # turned around at X, plus the X downlink
    want_xs = (f_s / f_up) * up + d * f_x / f_s
    np.testing.assert_allclose(_diff(out, obs, "frequency_residual_two_way"), want_xx,
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_diff(out, obs, "frequency_residual_xs"), want_xs,
                               rtol=1e-12, atol=1e-15)
    # deterministic: another seed, the same data
    out2 = es.perturb(obs, ["gradients"], scn, prep, 99)
    xr.testing.assert_identical(out, out2)
