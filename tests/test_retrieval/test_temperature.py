"""Neutral temperature from the M2 Chapman fit without the M1-flank bias (issue 14).

The truths are analytic sums of Chapman layers written here,
``N_i exp{1/2 [1 - z - exp(-z)]}``, ``z = (h - h_i) / H_i``; the true temperature is
``T = H_M2 g(h_M2) m_CO2 / k_B`` with ``g = G M / (R + h)^2`` (the erratum-corrected form
of SCIENCE.md), from the M2 layer's own scale height, never from the code under test.

The case the issue names: an M1 with the M2's scale height 20 km below it, too merged to be
detected (``m1_class == "none"``): the published one-layer fit over -20..+50 km absorbs
its flank (measured +11.6 K at H = 12 km); the ``auto`` model must not.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc
from hypothesis import example, given, target
from hypothesis import strategies as st

from retrieval.constants import CO2_MASS_KG, MARS_GM_M3_S2, MARS_MEAN_RADIUS_M
from retrieval.profile import find_layers, profile_science
from retrieval.temperature import FREE_M1_FALSE_ALARM, neutral_temperature

GRID_M = np.arange(60e3, 320e3, 1e3)  # 1 km levels, as a 1-4 Hz mutual-RO profile


def chapman_sum(h, layers):
    """Sum of Chapman layers (peak density [m^-3], peak altitude [m], scale height [m])."""
    out = np.zeros_like(h, dtype=float)
    for n, hm, hh in layers:
        z = (h - hm) / hh
        out += n * np.exp(0.5 * (1.0 - z - np.exp(-z)))
    return out


def true_temperature(layer):
    _, hm, hh = layer
    g = MARS_GM_M3_S2 / (MARS_MEAN_RADIUS_M + hm) ** 2
    return hh * g * CO2_MASS_KG / sc.k


M2 = (1e11, 130e3, 12e3)
HIDDEN_M1 = (3e10, 110e3, 12e3)  # same H, 20 km below, 30 %: a flank, no shoulder


def test_hidden_m1_is_the_case_it_claims():
    """The truth has no detectable M1 (so the old ``auto`` fell back to one layer)."""
    assert find_layers(GRID_M, chapman_sum(GRID_M, [M2, HIDDEN_M1]))["m1_class"] == "none"


def test_published_fit_absorbs_the_m1_flank():
    """The bias the issue reports, reproduced on an analytic profile (so the fix below is
    measured against a real effect): +11.6 K measured; 8-15 K brackets it (it depends only
    on the layer geometry, deterministic)."""
    n = chapman_sum(GRID_M, [M2, HIDDEN_M1])
    r = neutral_temperature(GRID_M, n, model="parrott2025")
    assert 8.0 < r["neutral_temperature_k"] - true_temperature(M2) < 15.0
    assert np.isnan(r["m1_false_alarm"])  # no free-M1 test in the published model


def test_auto_fits_the_hidden_m1():
    n = chapman_sum(GRID_M, [M2, HIDDEN_M1])
    r = profile_science(GRID_M, n)
    assert r["temperature_model"] == "two_layer"
    assert r["m1_false_alarm"] < FREE_M1_FALSE_ALARM
    # the two-layer model is exact for this truth: only the optimiser's tolerance remains
    # (measured 0.00 K); 0.1 K is 0.05 %, far below the 4 K target
    assert r["neutral_temperature_k"] == pytest.approx(true_temperature(M2), abs=0.1)
    assert r["chapman_peak_altitude_m"] == pytest.approx(M2[1], abs=100.0)


def test_two_layer_without_m1_position_searches_it():
    """``model="two_layer"`` with no M1 altitude: the free search (used to raise)."""
    n = chapman_sum(GRID_M, [M2, HIDDEN_M1])
    r = neutral_temperature(GRID_M, n, model="two_layer")
    assert r["temperature_model"] == "two_layer"
    assert r["neutral_temperature_k"] == pytest.approx(true_temperature(M2), abs=0.1)
    # the window reaches below the M1 peak (5 % of the M2 peak lies ~30 km below it)
    assert r["chapman_fit_points"] > 70


def test_single_layer_keeps_the_published_fit():
    """A lone Chapman layer with white noise: the free M1 is not supported, so ``auto``
    gives exactly the published fit. False alarms at the 1e-3 level: 0 of 20 expected."""
    rng = np.random.default_rng(3)
    n0 = chapman_sum(GRID_M, [M2])
    models = []
    for _ in range(20):
        n = n0 + rng.normal(0.0, 1e9, GRID_M.size)  # 1 % of the peak, ROSE-like
        r = neutral_temperature(GRID_M, n, model="auto")
        models.append(r["temperature_model"])
        if r["temperature_model"] == "parrott2025":
            p = neutral_temperature(GRID_M, n, model="parrott2025")
            assert r["neutral_temperature_k"] == p["neutral_temperature_k"]
    assert models.count("parrott2025") >= 19  # one false alarm tolerated (p = 2e-4)


def test_noisy_hidden_m1_is_less_biased_and_covered():
    """1 % noise, 20 realisations: the published fit stays ~11 K high, many sigma off; the
    auto fit's error is centred (|mean| below its scatter / sqrt(20) x 3) and within 3 of
    its reported sigma in >= 18/20."""
    rng = np.random.default_rng(5)
    n0 = chapman_sum(GRID_M, [M2, HIDDEN_M1])
    t0 = true_temperature(M2)
    d_auto, z_auto = [], []
    for _ in range(20):
        n = n0 + rng.normal(0.0, 1e9, GRID_M.size)
        r = profile_science(GRID_M, n)
        d_auto.append(r["neutral_temperature_k"] - t0)
        z_auto.append(d_auto[-1] / r["neutral_temperature_error_k"])
    d_auto = np.array(d_auto)
    # measured over 40 draws: mean -1.5 K, scatter 3.4 K (published: +11.3 K, 2.3 K)
    assert abs(d_auto.mean()) < 3.0 * d_auto.std() / np.sqrt(20) + 0.5
    assert np.sqrt(np.mean(d_auto**2)) < 6.0  # rms; the published fit's is ~11.6 K
    assert np.mean(np.abs(z_auto) < 3.0) >= 0.9


# M2 within the scale heights of the issue (7-14 km) and an M1 10-50 % of it, 12-35 km below,
# with its own scale height 5-14 km; or no M1 at all
m2_layers = st.tuples(st.floats(3e10, 3e11), st.floats(115e3, 150e3), st.floats(7e3, 14e3))
m1_layers = st.one_of(st.none(), st.tuples(st.floats(0.1, 0.5), st.floats(12e3, 35e3),
                                           st.floats(5e3, 14e3)))


@given(m2_layers, m1_layers)
@example((1e11, 130e3, 12e3), (0.3, 20e3, 12e3))  # the hidden M1 above
@example((1e11, 130e3, 14e3), (0.5, 12e3, 14e3))  # the closest, broadest M1 drawn
def test_m2_temperature_with_or_without_m1(m2, m1):
    """Noiseless sums: |dT| <= 1 K for every M1 class (the two-layer model is exact for
    these truths; measured worst 0.0x K, the margin covers the optimiser's tolerance on
    the nearly degenerate closest layers)."""
    layers = [m2] if m1 is None else [m2, (m1[0] * m2[0], m2[1] - m1[1], m1[2])]
    r = profile_science(GRID_M, chapman_sum(GRID_M, layers))
    err = abs(r["neutral_temperature_k"] - true_temperature(m2))
    target(err, label="|dT_n| [K]")
    assert err <= 1.0


def test_rose_free_m1_agrees_with_the_detected_m1(shared_data):
    """Real data (MAVEN ROSE 2016-08-23, read as in test_rose_science.py): its M1 is a
    detected shoulder; the free-M1 fit, which does not know it, finds the same solution
    (measured 255.9 K both, +- 7.8 K; the published one-layer fit 262.3 K), and the F-test
    supports the M1 (false alarm 5e-7)."""
    files = sorted((shared_data / "real" / "maven_rose").glob("*.tab"))
    if not files:
        pytest.skip("no ROSE .tab file in ../shared/data/real/maven_rose")
    rows = files[0].read_text().splitlines()[1:]
    table = np.array([[float(v) for v in row.split()[:4]] for row in rows if row.strip()])
    h, n, s = (table[:, 0] - 3389.5) * 1e3, table[:, 2], table[:, 3]
    sci = profile_science(h, n, s)
    assert sci["m1_class"] == "medium" and sci["temperature_model"] == "two_layer"
    free = neutral_temperature(h, n, s, peak_altitude_m=sci["m2_peak_altitude_m"],
                               model="auto")
    assert free["temperature_model"] == "two_layer"
    assert free["m1_false_alarm"] < FREE_M1_FALSE_ALARM
    # same data, same model family: 1 K is ~1/8 of the reported 1-sigma (7.8 K)
    assert free["neutral_temperature_k"] == pytest.approx(sci["neutral_temperature_k"], abs=1.0)


def test_merged_m1_down_to_the_bound_and_the_model_spread_below_it():
    """M1 separated from M2 by 5.5-12 km (peaks, as an M1 broader than M2 ends up at high
    SZA) is fitted (|dT_n| <= 1 K); 0.5-4 km apart the layers are one peak, the one-layer
    fallback is off by up to tens of K, and ``neutral_temperature_model_spread_k`` flags
    it: opposite in sign to the error (towards the truth) and at least 0.2 of it. Measured
    over 348 such draws (sep 0-5 km, 2026-12): sign right in 99.7 %, |spread| / |error|
    0.20-1.0 (1-100 % quantiles), one unflagged case (1.8 km apart: a free M1 kept at a
    wrong place, +5.6 K). Asserted: >= 90 % flagged."""
    rng = np.random.default_rng(2026)
    flagged, resolved = [], []
    for _ in range(60):
        h2, hh2 = rng.uniform(130e3, 160e3), rng.uniform(6e3, 8e3)
        sep = rng.uniform(0.5e3, 12e3)
        m2 = (1e11, h2, hh2)
        m1 = (1e11 * rng.uniform(0.1, 0.5), h2 - sep, rng.uniform(9e3, 12e3))
        r = profile_science(GRID_M, chapman_sum(GRID_M, [m2, m1]))
        dt = r["neutral_temperature_k"] - true_temperature(m2)
        spread = r["neutral_temperature_model_spread_k"]
        if sep >= 5.5e3:
            resolved.append(abs(dt))
            assert spread == 0.0
        elif sep <= 4e3 and abs(dt) > 4.0:
            flagged.append(spread * dt < 0 and abs(spread) >= 0.2 * abs(dt))
    assert len(resolved) >= 15 and len(flagged) >= 10  # the draw covers both sides
    assert max(resolved) <= 1.0
    assert np.mean(flagged) >= 0.9
