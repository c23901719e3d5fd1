"""Noiseless round trips of the Abel step at the rate it is given, and the data-chosen top.

Measured (2026-11, noiseless, scenario variants written by ``scenario_text``): max |N_e
error| / peak with the cubic scheme and ``top="auto"`` (now the default) against the former
linear scheme with a vacuum top, on mutual UHF, MAVEN X-band and MEX S-band Earth links at 0.5-5 Hz,
Chapman layers (H = 7, 10 + an H = 5 km M1, 14 km) and the Parrott law:

* steps up to 2.6 km (0.5 Hz mutual/X band): 4.9e-6 to 1.9e-4 (linear: 3.2e-5 to 6.2e-3);
* 0.5 Hz on the MEX S-band Earth link (4.9 km steps): 1.1e-4 (H = 14 km) to 4.0e-3
  (H = 7 km), the latter flagged ``under_resolved`` (estimate 1.1e-3): one step is 0.7 H
  and no interpolation of the samples recovers the layer (M2 altitude error 0.46 km);
* a top still ionised (H = 15 km at 168 km, 1.3 % of the peak at the 320 km top):
  1.28e-2 with a vacuum top, 3.2e-4 with the top ``auto`` picks (exponential).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, note, reject, target
from hypothesis import strategies as st
from test_roundtrip import ionospheres, scenario_text  # the same folder (prepend mode)

from retrieval.errors import RoharnessError
from synth.scenario import parse_scenario
from validation.cli import main
from validation.roundtrip import run_roundtrip

#: The case of issue 14: the built-in mex-tgo-uhf event (SZA 49 deg) with one explicit
#: M2 layer (H = 15 km at 168 km) that still has 1.3 % of its peak at the 320 km top.
IONISED_TOP = """name = "mex-tgo-ionised-top"
seed = 1
[link]
kind = "mutual"
transmitter = "mex"
receiver = "tgo"
frequency_hz = 437.1e6
[event]
start_utc = "2023-01-01"
stop_utc = "2023-01-04"
kind = "ingress"
index = 0
min_sza_deg = 20.0
max_sza_deg = 55.0
top_altitude_km = 320.0
bottom_altitude_km = 60.0
[sampling]
rate_hz = 1.0
[ionosphere]
model = "layers"
layers = [{name = "M2", n0_m3 = 1.5e11, h0_km = 168.0, scale_height_km = 15.0}]
grazing = "chapman"
[neutral]
enabled = false
"""


def _true_top_fraction(res):
    truth = res["truth"]
    ne = truth.electron_density.values
    return float(np.interp(res["profile"].altitude.max(), truth.altitude.values, ne)
                 / ne.max())


def test_ionised_top_auto_picks_the_exponential():
    scn = parse_scenario(IONISED_TOP)
    zero = run_roundtrip(scn, top="zero")
    auto = run_roundtrip(scn, top="auto")
    # the case is what it says: 1.3 % of the peak at the top (measured 1.30e-2)
    assert 1.1e-2 <= _true_top_fraction(zero) <= 1.5e-2
    m0, m1 = zero["metrics"], auto["metrics"]
    assert m0["top_model"] == "zero" and m1["top_model"] == "exponential"
    assert "ionised top" in m1["top_model_reason"]
    # measured 1.28e-2 (vacuum top) and 9.1e-6 with the fitted topside (3.2e-4 before the
    # receiver's missing half-path above its 400 km orbit, inside this ionised topside, was
    # added: retrieval.one_sided); the upper bound is the 1e-3 acceptance, the lower
    # one 10x below the measured value
    assert 8e-3 <= m0["ne_max_abs_error_over_peak"] <= 2e-2
    assert 1e-6 <= m1["ne_max_abs_error_over_peak"] <= 1e-3
    assert abs(m1["m2_peak_density_rel_error"]) <= 2e-3  # measured 3.1e-4
    assert abs(m1["tec_rel_error"]) <= 3e-3                # measured 8.5e-4 (1.3e-2 vacuum)


def test_roundtrip_cli_top_option(tmp_path, capsys):
    path = tmp_path / "ionised.toml"
    path.write_text(IONISED_TOP)
    assert main(["roundtrip", "--scenario", str(path), "--top", "zero", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["top_model"] == "zero" and m["under_resolved"] == 0
    assert main(["roundtrip", "--scenario", str(path), "--top", "auto"]) == 0
    out = capsys.readouterr().out
    assert "top of the profile              exponential: ionised top" in out
    with pytest.raises(SystemExit):
        main(["roundtrip", "--scenario", str(path), "--top", "linear"])


def test_scenario_top_key():
    scn = parse_scenario(IONISED_TOP)
    assert scn["retrieval"]["top"] == "auto"  # the default
    assert run_roundtrip(scn)["metrics"]["top_model"] == "exponential"
    text = IONISED_TOP.replace("[neutral]", '[retrieval]\ntop = "zero"\n[neutral]')
    scn = parse_scenario(text)
    assert scn["retrieval"]["top"] == "zero"
    assert run_roundtrip(scn)["metrics"]["top_model"] == "zero"
    from synth.errors import ScenarioError
    with pytest.raises(ScenarioError, match="top"):
        parse_scenario(IONISED_TOP.replace("[neutral]", '[retrieval]\ntop = "up"\n[neutral]'))


#: The 0.5 Hz MEX S-band Earth link (4.9 km steps, H = 7 km): under-resolved, and said so.
COARSE_EARTH = scenario_text(
    "mex-dss63-s", "2022-03-01", "ingress", 0, 0.5,
    {"model": "layers", "grazing": "chapman",
     "layers": [dict(name="M2", n0_m3=1e11, h0_km=130.0, scale_height_km=7.0)]}, False)


def _write(text):
    import tempfile
    path = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    path.write(text)
    path.close()
    return path.name


def test_under_resolved_layer_is_flagged(capsys):
    res = run_roundtrip(parse_scenario(COARSE_EARTH))
    m = res["metrics"]
    # measured: error 4.0e-3, estimate 1.1e-3 (the 4.9 km steps are 0.7 H)
    assert 2e-3 <= m["ne_max_abs_error_over_peak"] <= 8e-3
    assert m["under_resolved"] == 1
    assert 1e-3 < m["abel_discretisation_error_over_peak"] <= 1e-2
    main(["roundtrip", "--scenario", str(_write(COARSE_EARTH))])
    assert "WARNING: under-resolved" in capsys.readouterr().out


@given(link=st.sampled_from(["mex-tgo", "tgo-mex", "maven-earth-x", "maven-dss14-x",
                             "mex-dss43-x", "mex-dss63-s"]),
       day0=st.integers(0, 900), evkind=st.sampled_from(["ingress", "egress"]),
       index=st.integers(0, 3), rate_hz=st.floats(0.5, 5.0), ionosphere=ionospheres())
@example(link="mex-dss63-s", day0=59, evkind="ingress", index=0, rate_hz=0.5,
         ionosphere={"model": "layers", "grazing": "chapman", "layers": [
             dict(name="M2", n0_m3=1e11, h0_km=130.0, scale_height_km=7.0)]})
def test_noiseless_error_or_flag(link, day0, evkind, index, rate_hz, ionosphere):
    """At any rate 0.5-5 Hz the noiseless profile (cubic, top="auto") is within 1e-3 of the
    peak, or the retrieval says it is under-resolved (its own estimate above 1e-3).
    ionospheres() allows up to ~8e-3 of the peak at the 320 km top (H = 15 km at 160 km);
    the auto top takes care of it. Spacecraft inside
    the ionosphere (MAVEN's periapsis) are outside the Abel model and rejected, as in
    test_roundtrip."""
    start = np.datetime64("2022-01-01") + np.timedelta64(day0, "D")
    text = scenario_text(link, start, evkind, index, rate_hz, ionosphere, False)
    note(text)
    try:
        res = run_roundtrip(parse_scenario(text), top="auto")
    except RoharnessError as exc:
        if "occultation" in str(exc) and "widen the [event] window" in str(exc):
            reject()
        raise
    m = res["metrics"]
    if m.get("spacecraft_in_ionosphere"):
        reject()
    note(json.dumps({k: v for k, v in m.items() if isinstance(v, (int, float, str))}))
    err = m["ne_max_abs_error_over_peak"]
    target(err, label="N_e error / peak")
    assert err <= 1e-3 or m["under_resolved"] == 1, (err, m["abel_discretisation_error_over_peak"])
