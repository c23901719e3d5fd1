"""Current-sheet round trips: acceptance on mars-2024-11-07, Monte Carlo of the MVA normal
against Sonnerup-Scheible, property tests over sheets, and the ``roharness sheet`` CLI."""

from __future__ import annotations

import copy
import json
import tomllib

import numpy as np
import pytest
from hypothesis import example, given, target
from hypothesis import strategies as st

from retrieval.mva import minimum_variance
from retrieval.reconnection import analyse_sheet_crossing
from synth.current_sheet import correlated_noise, harris_field_lmn, simulate_sheet_crossing
from synth.sheet_scenario import SCENARIO_DIR, load_sheet_scenario, parse_sheet_scenario
from validation.cli import main
from validation.sheet import ACCEPTANCE, compare_sheet, run_sheet_roundtrip

REQUIRED_KEYS = {"normal_angle_error_deg", "l_angle_error_deg", "guide_field_error_nt",
                 "lag_error_s", "eigenvalue_ratio_12", "eigenvalue_ratio_23",
                 "escape_flux_rel_error"}


@pytest.fixture(scope="module")
def mars():
    return load_sheet_scenario("mars-2024-11-07")


# --- acceptance -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_acceptance_mars_2024_11_07(mars, seed):
    m = run_sheet_roundtrip(mars, seed)
    # issue 7 limits: normal 3 deg, guide field 0.3 nT, lag 2 s, escape flux 10 %
    assert m["normal_angle_error_deg"] <= ACCEPTANCE["normal_angle_error_deg"]
    assert abs(m["guide_field_error_nt"]) <= ACCEPTANCE["guide_field_error_nt"]
    assert abs(m["lag_error_s"]) <= ACCEPTANCE["lag_error_s"]
    assert abs(m["escape_flux_rel_error"]) <= ACCEPTANCE["escape_flux_rel_error"]
    assert all(m["passed"].values())
    assert m["hall_detected"] and m["hall_polarity_correct"]


def test_scenario_replicates_published_mva(mars):
    """Published ratios 15.53 and 27.02 (SCIENCE.md 3): the scenario was tuned to them; 15 %
    allows the noise scatter of lambda3 (~4 % rms over seeds) and the tuning precision."""
    m = run_sheet_roundtrip(mars, 11)
    assert m["eigenvalue_ratio_12"] == pytest.approx(15.53, rel=0.15)
    assert m["eigenvalue_ratio_23"] == pytest.approx(27.02, rel=0.15)
    assert m["imf_correlation"] == pytest.approx(0.77, abs=0.05)  # published r = 0.77
    # the retrieved triad is the published one (2-decimal values -> within 1 deg)
    truth, obs = simulate_sheet_crossing(mars, 11)
    est = analyse_sheet_crossing(obs)
    published = np.array([[-0.35, -0.93, 0.10], [0.93, -0.34, 0.12], [-0.08, 0.14, 0.99]])
    published /= np.linalg.norm(published, axis=1)[:, None]
    cosang = np.sum(est["lmn_basis"].values * published, axis=1)
    assert np.all(np.degrees(np.arccos(np.clip(cosang, -1, 1))) < 1.0)  # signs included


# --- Monte Carlo of the MVA normal vs Sonnerup-Scheible ---------------------------------------
def _crossing_field(hall_nt, n_samples=1281):
    """Noise-free field of the mars-2024-11-07 window (+-2.04 lambda) in LMN coordinates."""
    n_m = np.linspace(-2.04, 2.04, n_samples) * 30e3
    return np.stack(harris_field_lmn(150e3, n_m, b0_t=21.44, half_thickness_m=30e3,
                                      guide_t=-3.27, hall_t=hall_nt, hall_length_m=50e3,
                                      hall_width_m=15e3), -1)


def _mc_ratio(field, sigma, realisations, seed, corr_samples=0.0, n_independent=None):
    """Empirical / predicted spread of the MVA normal toward x2 and toward x1.

    The reference axes are the eigenvectors of the noise-free variance matrix (isotropic
    white noise adds sigma^2 I and leaves them unchanged); the prediction is the median over
    realisations of the Sonnerup-Scheible errors each analysis reports."""
    rng = np.random.default_rng(seed)
    ref = minimum_variance(field)
    if corr_samples:
        noise = np.stack([correlated_noise(rng, field.shape, sigma, corr_samples)
                          for _ in range(realisations)])
    else:
        noise = sigma * rng.standard_normal((realisations,) + field.shape)
    r = minimum_variance(field + noise, n_independent=n_independent)
    e32, e31 = np.std(r.n @ ref.m), np.std(r.n @ ref.l)
    return e32 / np.median(r.dphi_32), e31 / np.median(r.dphi_31), float(np.median(r.ratio_23))


def test_monte_carlo_normal_spread_matches_sonnerup_scheible():
    """1000 noise realisations (vectorised) of the published geometry, white noise."""
    q32, q31, r23 = _mc_ratio(_crossing_field(9.3), 0.8, 1000, seed=5)
    assert 20 < r23 < 35  # the published regime, lambda2/lambda3 ~ 27
    # issue 7: within 30 %; sampling error of a std from 1000 draws is ~2 %
    assert q32 == pytest.approx(1.0, abs=0.30)
    assert q31 == pytest.approx(1.0, abs=0.30)


@pytest.mark.parametrize("hall_nt, n_samples, within", [
    # measured empirical/predicted spread toward x2 (2000 draws, ~1.6 % sampling error):
    (1.5, 1281, True),   # lambda2/lambda3 ~ 1.7 with M = 1281: 0.995
    (1.0, 1281, True),   # lambda2/lambda3 ~ 1.3: 1.01 (at ~1.07, no Hall field: 1.25)
    (9.3, 17, True),     # ~ 30 with only 17 samples: 1.07
    (1.0, 17, False),    # ~ 2.0 with 17 samples: 1.44, the formula underestimates
    (1.0, 65, False),    # ~ 1.5 with 65 samples: 1.37
])
def test_monte_carlo_breakdown_as_data(hall_nt, n_samples, within):
    """Where Sonnerup-Scheible holds and where it breaks down (asserted as data): small
    lambda2/lambda3 together with few samples."""
    field = _crossing_field(hall_nt)[:: (1280 // (n_samples - 1))][:n_samples]
    q32, _, _ = _mc_ratio(field, 0.8, 2000, seed=6)
    assert (abs(q32 - 1.0) <= 0.30) == within, q32


def test_monte_carlo_correlated_noise_needs_n_independent():
    """AR(1) noise (rho = exp(-1/4)) inflates the spread by sqrt((1+rho)/(1-rho)) = 2.0;
    the effective sample size M (1-rho)/(1+rho) restores the agreement."""
    field = _crossing_field(9.3)
    rho = np.exp(-0.25)
    q32, _, _ = _mc_ratio(field, 0.8, 500, seed=7, corr_samples=4.0)
    assert q32 == pytest.approx(np.sqrt((1 + rho) / (1 - rho)), rel=0.30)
    n_eff = field.shape[0] * (1 - rho) / (1 + rho)
    q32e, q31e, _ = _mc_ratio(field, 0.8, 500, seed=7, corr_samples=4.0, n_independent=n_eff)
    assert q32e == pytest.approx(1.0, abs=0.30) and q31e == pytest.approx(1.0, abs=0.30)


@pytest.mark.slow
def test_monte_carlo_round_trip_slow(mars):
    """500 full round trips (forward model + retrieval) of mars-2024-11-07: the normal
    spread against the predicted Sonnerup-Scheible error (2D: E|err|^2 = dphi32^2 + dphi31^2)."""
    errs, pred = [], []
    for seed in range(500):
        m = run_sheet_roundtrip(mars, 1000 + seed)
        errs.append(np.radians(m["normal_angle_error_deg"]))
        pred.append(np.radians(m["normal_error_predicted_deg"]))
    assert np.sqrt(np.mean(np.square(errs))) / np.median(pred) == pytest.approx(1.0, abs=0.30)


# --- property tests -----------------------------------------------------------------------
RAW = tomllib.loads((SCENARIO_DIR / "mars-2024-11-07.toml").read_text())
EPOCH = np.datetime64("2024-11-07T02:19:10")


def _utc(seconds):
    return str(EPOCH + np.timedelta64(int(round(seconds * 1e3)), "ms"))


def _variant(theta, phi, psi, lam_km, guide_frac, noise_nt, hall_frac, angle_deg, offsets):
    d = copy.deepcopy(RAW)
    n = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    a = np.cross(n, [1.0, 0, 0]) if abs(n[0]) < 0.9 else np.cross(n, [0, 1.0, 0])
    a /= np.linalg.norm(a)
    l_vec = np.cos(psi) * a + np.sin(psi) * np.cross(n, a)
    b0 = 21.44  # nT, fixed by the scenario's Alfven speed and density
    d["sheet"].update(l_mso=l_vec.tolist(), n_mso=n.tolist(), guide_field_nt=guide_frac * b0,
                      hall_field_nt=hall_frac * b0, half_thickness_km=lam_km,
                      hall_width_km=lam_km / 2)
    tau = lam_km * 1e3 / (d["crossing"]["speed_m_s"] * np.cos(np.radians(angle_deg)))
    d["crossing"].update(angle_to_normal_deg=angle_deg, span_s=20 * tau)
    d["magnetometer"].update(noise_nt=noise_nt, offset_nt=list(offsets))
    d["analysis"].update(window_utc=[_utc(-2 * tau), _utc(2 * tau)], max_lag_s=300.0)
    d["imf"].update(span_s=1200.0, rotation_time_s=600.0)  # shorter monitor series: speed
    return parse_sheet_scenario(d, "property-test variant")


@given(theta=st.floats(0.0, np.pi), phi=st.floats(0.0, 2 * np.pi), psi=st.floats(0.0, 2 * np.pi),
       lam_km=st.floats(10.0, 100.0), guide_frac=st.floats(-2.0, 2.0),
       noise_nt=st.floats(0.1, 2.0), hall_frac=st.floats(0.1, 0.5),
       angle_deg=st.floats(0.0, 60.0),
       offsets=st.tuples(*[st.floats(-0.2, 0.2)] * 3), seed=st.integers(0, 2**31))
@example(theta=0.3, phi=1.0, psi=2.0, lam_km=45.7, guide_frac=-1.19, noise_nt=1.88,
         hall_frac=0.14, angle_deg=0.3, offsets=(0.1, -0.1, 0.2), seed=36)  # lambda2/lambda3 ~ 1.5
def test_round_trip_properties(theta, phi, psi, lam_km, guide_frac, noise_nt, hall_frac,
                               angle_deg, offsets, seed):
    scen = _variant(theta, phi, psi, lam_km, guide_frac, noise_nt, hall_frac, angle_deg, offsets)
    truth, obs = simulate_sheet_crossing(scen, seed)
    est = analyse_sheet_crossing(obs)
    m = compare_sheet(truth, est)
    # normal: the 2D error is Rayleigh-like with scale dphi32 (+ dphi31); 5 predicted sigma
    # (P ~ e^-12.5) plus 0.05 deg for the eigenvector estimate of a noisy lambda2
    pred = m["normal_error_predicted_deg"]
    target(m["normal_angle_error_deg"] / pred, label="normal error / predicted")
    assert m["normal_angle_error_deg"] <= 5 * pred + 0.05
    # guide field: the zero offsets bias it by offset . M (a known systematic, not noise);
    # an M axis off by delta (it follows the normal error) measures B_g cos(delta), so
    # |B_g| (1 - cos(5 pred)); plus 5 statistical errors and 0.02 nT for the leakage of B_L
    # and the Hall tail into the window means (measured <= 0.08 nT over 60 draws)
    bias = abs(np.dot(offsets, truth["lmn_basis"].values[1]))
    stat = float(est["guide_field_err"])
    tilt = abs(m["guide_field_true_nt"]) * (1 - np.cos(np.radians(min(5 * pred, 90.0))))
    target((abs(m["guide_field_error_nt"]) - bias) / (stat + 0.004), label="guide / stat")
    assert abs(m["guide_field_error_nt"]) <= bias + tilt + 5 * stat + 0.02
    # thickness from the crossing speed: 5 fit errors of tau; the normal-speed error
    # v . dN = v_N tan(angle) delta with delta <= 5 pred; 1 % for the fit model (Hall leakage)
    rel_tau = float(est["crossing_tau_err_s"]) / float(est["crossing_tau_s"])
    rel_vn = np.tan(np.radians(angle_deg)) * np.radians(min(5 * pred, 60.0))
    assert abs(m["half_thickness_rel_error"]) <= 5 * rel_tau + rel_vn + 0.01
    # Hall amplitude >= 0.1 B0 = 2 nT against <= 2 nT noise over >= 100 samples: always seen
    assert m["hall_detected"] and m["hall_polarity_correct"]


@given(lag=st.floats(0.0, 550.0), seed=st.integers(0, 2**31))
def test_lag_round_trip(mars, lag, seed):
    d = copy.deepcopy(RAW)
    d["imf"]["lag_s"] = lag
    scen = parse_sheet_scenario(d, "lag variant")
    truth, obs = simulate_sheet_crossing(scen, seed)
    est = analyse_sheet_crossing(obs)
    # r ~ 0.77 with 5 s fluctuations: 0.35 s rms over 30 seeds; 2 s is the limit
    assert abs(float(est["imf_lag"]) - lag) <= 2.0
    assert 0.0 <= float(est["imf_lag"]) <= 600.0


# --- CLI ----------------------------------------------------------------------------------
def test_cli_json(capsys):
    assert main(["sheet", "--seed", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert REQUIRED_KEYS <= set(out)
    assert out["seed"] == 2 and out["scenario"] == "mars-2024-11-07"
    assert all(isinstance(out[k], float) for k in REQUIRED_KEYS)


def test_cli_human_summary(capsys):
    assert main(["sheet"]) == 0
    out = capsys.readouterr().out
    assert "normal angle error" in out and "guide field" in out and "escape flux" in out


def test_cli_scenario_file(tmp_path, capsys):
    f = tmp_path / "mine.toml"
    f.write_text((SCENARIO_DIR / "mars-2024-11-07.toml").read_text())
    assert main(["sheet", "--scenario", str(f), "--json"]) == 0
    assert REQUIRED_KEYS <= set(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize("text, words", [
    ("[sheet]\nwrong_key = 1\n", "wrong_key"),
    (None, "half_thickness_km"),
])
def test_cli_bad_scenario_one_sentence(tmp_path, capsys, text, words):
    f = tmp_path / "bad.toml"
    if text is None:
        text = (SCENARIO_DIR / "mars-2024-11-07.toml").read_text().replace(
            "half_thickness_km = 30.0", "half_thickness_km = -30.0")
    f.write_text(text)
    assert main(["sheet", "--scenario", str(f)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and err.startswith("roharness: error: ")


def test_cli_unknown_scenario_and_bad_seed(capsys):
    assert main(["sheet", "--scenario", "mars-1999"]) == 2
    err = capsys.readouterr().err
    assert "mars-1999" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["sheet", "--seed", "minus"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


# --- coverage of the predicted errors over the space of sheets ------------------------------
def _coverage_draws(theta, phi, psi, guide_frac, lam_km, angle_deg, noise_frac, seed, k=400):
    """``k`` noisy crossings of one sheet (forward model functions of synth, MVA and guide
    field of retrieval): the normal's deviations from the noise-free MVA axes and the guide
    field errors, each over the error the retrieval predicts for that realisation."""
    from retrieval.reconnection import guide_field, reversal_lmn
    from synth.current_sheet import crossing_positions, lmn_basis, lmn_to_frame

    n = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    a = np.cross(n, [1.0, 0, 0]) if abs(n[0]) < 0.9 else np.cross(n, [0, 1.0, 0])
    a /= np.linalg.norm(a)
    basis = lmn_basis(np.cos(psi) * a + np.sin(psi) * np.cross(n, a), n)
    b0, lam, speed = 21.44e-9, lam_km * 1e3, 4000.0
    tau = lam / (speed * np.cos(np.radians(angle_deg)))
    rate = 600.0 / (4.0 * tau)  # 600 vectors in the +-2 tau MVA window whatever the sheet
    t = np.arange(-9.0 * tau, 9.0 * tau, 1.0 / rate)
    pos, _ = crossing_positions(t, speed_m_s=speed, angle_to_normal_deg=angle_deg,
                                azimuth_deg=30.0, offset_l_m=150e3)
    b_lmn = np.stack(harris_field_lmn(pos[:, 0], pos[:, 2], b0_t=b0, half_thickness_m=lam,
                                      guide_t=guide_frac * b0, hall_t=0.43 * b0,
                                      hall_length_m=50e3, hall_width_m=lam / 2), -1)
    clean = lmn_to_frame(b_lmn, basis) * 1e9
    sigma = noise_frac * b0 * 1e9
    noisy = clean + sigma * np.random.default_rng(seed).standard_normal((k,) + clean.shape)
    win = np.abs(t) <= 2.0 * tau
    ref = minimum_variance(clean[win], n_ref=basis[2], l_ref=basis[0])
    r = minimum_variance(noisy[:, win], n_ref=basis[2], l_ref=basis[0])
    dev32 = (r.n @ ref.m) / r.dphi_32  # rotation of the normal toward x2 / its sigma
    dev31 = (r.n @ ref.l) / r.dphi_31
    before, after = (-8.0 * tau, -3.0 * tau), (3.0 * tau, 8.0 * tau)
    m1 = (t >= before[0]) & (t <= before[1])
    m2 = (t >= after[0]) & (t <= after[1])
    # what the estimator gives without noise: the guide field plus the Hall tail that does not
    # cancel between the windows when the path crosses the X-line (a systematic, measured
    # by the budget's floor); the 1-sigma error covers the statistical part
    lmn0 = reversal_lmn(basis[2], clean[m1].mean(0), clean[m2].mean(0))
    g_ref, _ = guide_field(t, clean @ lmn0[1], before, after)
    g = np.empty(k)
    for j in range(k):  # M from the MVA normal and the reversal, as the retrieval does
        lmn = reversal_lmn(r.n[j], noisy[j, m1].mean(0), noisy[j, m2].mean(0))
        m_hat = lmn[1] * np.sign(lmn[1] @ basis[1])
        g_j, err_j = guide_field(t, noisy[j] @ m_hat, before, after)
        g[j] = (g_j - g_ref) / err_j
    return dev32, dev31, g, float(np.median(r.ratio_23)), g_ref - guide_frac * b0 * 1e9


@given(theta=st.floats(0.0, np.pi), phi=st.floats(0.0, 2 * np.pi), psi=st.floats(0.0, 2 * np.pi),
       guide_frac=st.floats(-1.0, 1.0), lam_km=st.floats(10.0, 100.0),
       angle_deg=st.floats(10.0, 80.0), noise_frac=st.floats(0.01, 0.1),
       seed=st.integers(0, 2**31))
def test_predicted_errors_have_their_coverage(theta, phi, psi, guide_frac, lam_km, angle_deg,
                                              noise_frac, seed):
    """Over the space of sheets (normal anywhere on the sphere, guide field -1..+1 B0,
    half-thickness 10-100 km, crossing angle 10-80 deg, white noise 1-10 % of B0), 68.3 % of
    400 noise draws have the MVA normal within its Sonnerup-Scheible 1 sigma (toward x2 and
    toward x1) and the guide field within its 1-sigma error. Tolerance 0.10: 4.3 binomial
    standard deviations (0.023 for 400 draws), so a false alarm is ~1e-5 per check."""
    d32, d31, g, r23, g_sys = _coverage_draws(theta, phi, psi, guide_frac, lam_km, angle_deg,
                                              noise_frac, seed)
    # the systematic: the Hall tail at 3-8 tau (2 tanh sech(6) ~ 0.01 of B_H = 9.2 nT at most)
    assert abs(g_sys) <= 0.1
    cov = {name: float(np.mean(np.abs(x) <= 1.0)) for name, x in
           (("normal toward x2", d32), ("normal toward x1", d31), ("guide field", g))}
    for name, c in cov.items():
        target(abs(c - 0.683), label=f"coverage miss, {name}")
        assert c == pytest.approx(0.683, abs=0.10), (name, c, r23)


# --- constrained MVA and two-spacecraft timing against the truth ---------------------------
@pytest.mark.parametrize("seed", range(3))
def test_constrained_and_timing_normals_round_trip(mars, seed):
    """mars-2024-11-07 with a second magnetometer 40, -60, 80 km away (MSO), same noise.
    Measured over 20 seeds: timing normal 0.14 deg RMS (max 0.26), constrained MVA 1.3 deg
    RMS (max 1.7: the 0.1 nT zero offsets give <B.N> = offset . N ~ 0.08 nT against
    |<B>| ~ 3.3 nT, a 1.4 deg tilt; 0.45 deg without offsets), plain MVA 0.34 deg."""
    two = copy.deepcopy(mars)
    two["second"].update(separation_km=[40.0, -60.0, 80.0], noise_nt=0.8)
    truth, obs = simulate_sheet_crossing(two, seed)
    est = analyse_sheet_crossing(obs)
    m = compare_sheet(truth, est)
    assert m["timing_normal_angle_error_deg"] <= 1.0  # 4x the worst of 20 seeds
    assert m["normal_angle_error_constrained_deg"] <= 3.0  # issue 7's limit on the normal
    # the delay is the separation along N over the normal speed (sheet at rest)
    sep_n = np.array([40e3, -60e3, 80e3]) @ truth["lmn_basis"].values[2]
    assert float(est["timing_delay"]) == pytest.approx(-sep_n / truth.attrs["sc_normal_speed_m_s"],
                                                       abs=0.05)
