"""Profile science on the real MAVEN ROSE profile of 2016-08-23 (../shared/data/real).

The table is read here with numpy (RADIUS [km], NELEC and SNELEC [m^-3]; altitude above
the 3389.5 km sphere), independently of the project's ROSE reader. Expected (data README,
measured by others): M2 peak at radius 3524.713 km (135.2 km) with N_e = 1.0837e11 m^-3;
M1 a shoulder at ~93-104 km (Segale class ``medium``).
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.profile import profile_science

SPHERE_KM = 3389.5


@pytest.fixture(scope="module")
def rose(shared_data):
    files = sorted((shared_data / "real" / "maven_rose").glob("*.tab"))
    if not files:
        pytest.skip("no ROSE .tab file in ../shared/data/real/maven_rose")
    rows = files[0].read_text().splitlines()[1:]  # row 1 is the header table
    table = np.array([[float(v) for v in row.split()[:4]] for row in rows if row.strip()])
    radius_km, _, nelec, snelec = table.T
    return (radius_km - SPHERE_KM) * 1e3, nelec, snelec


@pytest.fixture(scope="module")
def science(rose):
    h, n, s = rose
    return profile_science(h, n, s)


def test_m2_peak(science, rose):
    h = rose[0]
    spacing = np.median(np.diff(np.sort(h)[(h > 100e3) & (h < 200e3)]))
    # the archived maximum sits on a ~5.2 km grid: the interpolated peak lies within half a
    # level spacing of it, and its density within 1 % (SNELEC = 0.9 % of the peak)
    assert abs(science["m2_peak_altitude_m"] - (3524.713 - SPHERE_KM) * 1e3) <= spacing / 2
    assert science["m2_peak_density_m3"] == pytest.approx(1.0837e11, rel=0.01)


def test_m1_is_a_medium_shoulder(science):
    assert science["m1_class"] == "medium"
    assert science["m1_kind"] == "shoulder"
    # the shoulder at ~93-104 km: our centre inside it and our span overlapping it
    assert 93e3 <= science["m1_peak_altitude_m"] <= 104e3
    assert science["m1_range_bottom_m"] < 104e3 and science["m1_range_top_m"] > 93e3


def test_neutral_temperature_is_reported(science, capsys):
    t, dt = science["neutral_temperature_k"], science["neutral_temperature_error_k"]
    with capsys.disabled():
        print(f"\nROSE 2016-08-23: M2 {science['m2_peak_altitude_m'] / 1e3:.2f} +/- "
              f"{science['m2_peak_altitude_error_m'] / 1e3:.2f} km, "
              f"{science['m2_peak_density_m3']:.4e} m^-3; M1 {science['m1_class']} at "
              f"{science['m1_peak_altitude_m'] / 1e3:.1f} km (width "
              f"{science['m1_peak_altitude_error_m'] / 1e3:.1f} km); "
              f"T_n = {t:.0f} +/- {dt:.0f} K ({science['temperature_model']}), "
              f"TEC = {science['tec_m2'] / 1e16:.2f} TECU")
    # plausibility only (no published T_n for this profile): Mars dayside lower
    # thermosphere 120-350 K, uncertainty positive and below 20 %
    assert 120.0 < t < 350.0
    assert 0.0 < dt < 0.2 * t
