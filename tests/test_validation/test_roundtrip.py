"""Noiseless RO round trips: forward (synth) and retrieval written independently agree.

Tolerances (issue 3): max |N_e error| <= 1e-3 of the true peak (the numerical limit of the
piecewise-linear Abel scheme on a ~1 km grid is ~1e-4), M2 peak altitude within 0.2 km and
peak density within 0.2 %.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, note, settings, strategies as st, target

from synth.scenario import load_scenario, parse_scenario
from validation.cli import main
from validation.roundtrip import run_roundtrip

ONE_WAY = ["mex-tgo-uhf", "maven-x-oneway"]


@pytest.mark.parametrize("name", ONE_WAY)
def test_noiseless_builtin_round_trip(name):
    m = run_roundtrip(name)["metrics"]
    assert m["ne_max_abs_error_over_peak"] <= 1e-3
    assert abs(m["m2_peak_altitude_error_km"]) <= 0.2
    assert abs(m["m2_peak_density_rel_error"]) <= 2e-3
    # profile science on a noiseless profile (issue 5): TEC 0.5 %, T_n 2 %
    assert abs(m["tec_rel_error"]) <= 5e-3
    assert abs(m["neutral_temperature_error_k"]) <= 0.02 * 180.0


def test_roundtrip_json_and_netcdf(tmp_path, capsys):
    import xarray as xr
    out = tmp_path / "rt.nc"
    assert main(["roundtrip", "--scenario", "mex-tgo-uhf", "--json", "-o", str(out)]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("ne_max_abs_error_over_peak", "m2_peak_altitude_error_km",
                "m2_peak_density_rel_error", "n_samples", "elapsed_s", "m1_class",
                "m1_peak_altitude_error_km", "m1_peak_density_rel_error",
                "neutral_temperature_error_k", "tec_rel_error"):
        assert key in m
    est = xr.open_dataset(out)
    truth = xr.open_dataset(out, group="truth")
    obs = xr.open_dataset(out, group="observation")
    assert "electron_density_true" in est and "electron_density" in est
    assert obs.sizes["time"] == m["n_samples"] and truth.electron_density.max() > 0


_LAYERED = """
name = "property"
[link]
kind = "{kind}"
transmitter = "{tx}"
receiver = "{rx}"
frequency_hz = {freq}
[event]
start_utc = "2023-01-01"
stop_utc = "2023-01-03"
kind = "{evkind}"
index = {index}
min_sza_deg = 0.0
max_sza_deg = 180.0
top_altitude_km = {top}
bottom_altitude_km = 60.0
[sampling]
rate_hz = {rate}
[ionosphere]
model = "layers"
sza_deg = {sza}
grazing = "sec"
layers = [{layers}]
"""


def _layers_strategy(h0_max_km, h_max_km):
    layer = st.tuples(st.floats(1e9, 5e11), st.floats(90.0, h0_max_km), st.floats(5.0, h_max_km))
    return st.lists(layer, min_size=1, max_size=3)


def _scenario(link, layers, evkind, index, sza):
    """A scenario for the property tests. The sample rate gives a vertical step of at most
    H_min / 12 (the tangent point moves at up to ~v_km_s): the piecewise-linear Abel scheme's
    error scales as (step / H)^2 and was measured at 1.8e-3 of the peak for step ~ H / 8 on a
    5 km layer, ~1e-4 for a 10 km layer on a 1 km grid (the issue's reference case)."""
    kind, tx, rx, freq, top, v_km_s = link
    rate = max(0.5, 12.0 * v_km_s / min(H for _, _, H in layers))
    text = ", ".join(f'{{name = "L{i}", n0_m3 = {n0!r}, h0_km = {h0!r}, scale_height_km = '
                     f'{H!r}}}' for i, (n0, h0, H) in enumerate(layers))
    return parse_scenario(_LAYERED.format(kind=kind, tx=tx, rx=rx, freq=freq, evkind=evkind,
                                          index=index, top=top, rate=rate, sza=sza,
                                          layers=text))


def _check(m):
    note(json.dumps({k: v for k, v in m.items() if isinstance(v, (int, float, str))}))
    target(m["ne_max_abs_error_over_peak"], label="Ne error / peak")
    assert m["ne_max_abs_error_over_peak"] <= 1e-3
    assert abs(m["m2_peak_altitude_error_km"]) <= 0.2
    assert abs(m["m2_peak_density_rel_error"]) <= 2e-3


@settings(max_examples=4)
@given(layers=_layers_strategy(200.0, 30.0), evkind=st.just("ingress"),
       index=st.integers(0, 8), sza=st.floats(0.0, 80.0))
@example(layers=[(1e9, 90.0, 5.0)], evkind="ingress", index=0, sza=0.0)  # thin low layer
def test_property_earth_link_random_chapman(layers, evkind, index, sza):
    """Full issue ranges (N_0 1e9-5e11 m^-3, h_0 90-200 km, H 5-30 km) on a MAVEN -> Earth X
    link sampled from 800 km (above which even an H = 30 km layer at 200 km is below 1e-4 of
    its peak). In this window the preset MAVEN -> Earth geometry has ingresses only (egress
    is exercised by the mutual test)."""
    scn = _scenario(("earth_downlink", "maven", "earth", 8.4e9, 800.0, 2.5), layers, evkind,
                    index, sza)
    _check(run_roundtrip(scn)["metrics"])


@settings(max_examples=4)
@given(layers=_layers_strategy(160.0, 15.0), evkind=st.sampled_from(["ingress", "egress"]),
       index=st.integers(0, 5), sza=st.floats(0.0, 80.0))
@example(layers=[(1e9, 90.0, 5.0)], evkind="ingress", index=0, sza=0.0)  # failed at H/8
def test_property_mutual_uhf_random_chapman(layers, evkind, index, sza):
    """Mutual MEX -> TGO UHF link. TGO orbits at 400 km, so the ionosphere must have faded
    below ~1e-4 of its peak by the 350 km sampling top: h_0 <= 160 km and H <= 15 km here
    (a receiver inside a dense topside is outside the spherical-Abel retrieval's model)."""
    scn = _scenario(("mutual", "mex", "tgo", 437.1e6, 350.0, 1.0), layers, evkind, index, sza)
    _check(run_roundtrip(scn)["metrics"])


@pytest.mark.parametrize("text, word", [
    ('[link]\nfrequncy_hz = 1.0\n', "frequncy_hz"),
    ('[link]\nfrequency_hz = "high"\n', "frequency_hz"),
    ('[lnk]\n', "[lnk]"),
    ('[event]\nkind = "sideways"\n', "kind"),
    ('[ionosphere]\nmodel = "layers"\n', "layers"),
    ('[event]\nbottom_altitude_km = 500.0\n', "bottom_altitude_km"),
    ('not toml = = 1', "TOML"),
])
def test_bad_scenarios_are_one_sentence(text, word):
    from synth.errors import ScenarioError
    with pytest.raises(ScenarioError, match=word) as e:
        parse_scenario(text, "x.toml")
    assert "\n" not in str(e.value).strip() or word == "TOML"


def test_scenario_without_occultation_is_one_sentence(tmp_path, capsys):
    text = load_scenario("mex-tgo-uhf").text.replace('stop_utc = "2023-01-04"',
                                                     'stop_utc = "2023-01-01T00:20:00"')
    f = tmp_path / "none.toml"
    f.write_text(text)
    assert main(["roundtrip", "--scenario", str(f), "-o", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err
    assert "no ingress occultation" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.nc").exists()


def test_scenarios_command_lists_and_shows(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for name in ("mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway"):
        assert name in out
    assert main(["scenarios", "--show", "mex-tgo-uhf"]) == 0
    text = capsys.readouterr().out
    assert parse_scenario(text).name == "mex-tgo-uhf"
