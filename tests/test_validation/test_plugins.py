"""Plug-in retrievals (validation.plugins), export/score, and the budget of an outside pipeline.

The example plug-ins (plugin_examples/roharness_test_plugins.py, scaled_cmd.py) wrap the
built-in inversion, so what they must score is known from the built-in's own result: a
plain wrapper scores exactly as the built-in does, a x1.03 wrapper scores
(1 + built-in error) x 1.03 - 1 on the M2 peak density.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from retrieval.errors import RoharnessError
from validation import budget as B
from validation.cli import main
from validation.plugins import PluginError, check_profile, parse_retrieval
from validation.roundtrip import run_roundtrip

EXAMPLES = Path(__file__).parent / "plugin_examples"
SMALL = str(Path(__file__).parent / "data" / "budget-small.toml")
CMD = f"cmd:{sys.executable} {EXAMPLES / 'scaled_cmd.py'} {{observation}} {{profile}}"


@pytest.fixture(autouse=True, scope="module")
def _examples_on_path():
    """The plug-in hosts inherit PYTHONPATH, as a user's would (module scope: the module's
    shared budget fixture needs it too)."""
    old = os.environ.get("PYTHONPATH")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(EXAMPLES) + (os.pathsep + old if old else ""))
        mp.syspath_prepend(str(EXAMPLES))
        yield


@pytest.fixture(scope="module")
def builtin_uhf():
    return run_roundtrip("mex-tgo-uhf")


# ----------------------------------------------------------------------------- specs
@pytest.mark.parametrize("spec, words", [
    ("nosuchmodule_xyz:f", "no module named 'nosuchmodule_xyz'"),
    ("a b:c", "module:function"),
    ("cmd:echo {observation}", "{profile}"),
    ("no-such-name", "unknown retrieval 'no-such-name'"),
])
def test_bad_specs_are_one_sentence(spec, words):
    with pytest.raises(RoharnessError, match=None) as err:
        parse_retrieval(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_bad_timeout_is_refused():
    with pytest.raises(RoharnessError, match="timeout"):
        parse_retrieval("builtin", 0)


def test_missing_function_fails_up_front(capsys):
    assert main(["roundtrip", "--retrieval", "roharness_test_plugins:nope"]) == 2
    err = capsys.readouterr().err
    assert "could not be loaded" in err and "nope" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- the profile
def _profile(alt_m, ne, **extra):
    return xr.Dataset({"electron_density": ("altitude", ne), **extra},
                      coords={"altitude": alt_m})


@pytest.mark.parametrize("bad, words", [
    ("text", "not an xarray Dataset"),
    (xr.Dataset({"ne": ("altitude", np.ones(10))}, coords={"altitude": np.arange(10.0)}),
     "no variable 'electron_density'"),
    (xr.Dataset({"electron_density": ("level", np.ones(10))}), "dimension 'altitude'"),
    (_profile(np.linspace(80, 300, 50), np.ones(50)), "looks like kilometres"),
    (_profile(np.linspace(80e3, 300e3, 3), np.ones(3)), "finite levels"),
    (_profile(np.linspace(80e3, 300e3, 10), np.ones(10),
              bending_angle=("altitude", np.ones(10))), "without its partner"),
])
def test_malformed_profiles_are_one_sentence(bad, words):
    with pytest.raises(PluginError) as err:
        check_profile(bad, "retrieval 'x'")
    assert words in str(err.value) and "\n" not in str(err.value)


def test_profile_is_sorted_and_stripped():
    alt = np.array([300e3, 100e3, 200e3, 150e3, 250e3, 120e3])
    prof = _profile(alt, alt / 1e3, junk=("altitude", np.zeros(6)))
    out = check_profile(prof)
    assert list(out.data_vars) == ["electron_density"]
    assert np.all(np.diff(out.altitude.values) > 0)
    np.testing.assert_array_equal(out.electron_density.values, out.altitude.values / 1e3)


# ----------------------------------------------------------------------------- acceptance
def test_plain_wrapper_scores_as_the_builtin(builtin_uhf):
    res = run_roundtrip("mex-tgo-uhf", retrieval="roharness_test_plugins:wrapper")
    for k in ("ne_max_abs_error_over_peak", "m2_peak_density_rel_error",
              "m2_peak_altitude_error_km", "tec_rel_error", "neutral_temperature_error_k"):
        assert res["metrics"][k] == builtin_uhf["metrics"][k]


@pytest.mark.parametrize("path", ["python", "cmd", "export+score"])
def test_scaled_plugin_scores_three_percent_by_every_path(path, builtin_uhf, tmp_path, capsys):
    base = builtin_uhf["metrics"]["m2_peak_density_rel_error"]
    if path == "python":
        m = run_roundtrip("mex-tgo-uhf", retrieval="roharness_test_plugins:scaled")["metrics"]
    elif path == "cmd":
        m = run_roundtrip("mex-tgo-uhf", retrieval=CMD)["metrics"]
    else:
        assert main(["export", "--scenario", "mex-tgo-uhf", "-o", str(tmp_path)]) == 0
        capsys.readouterr()
        obs = xr.load_dataset(tmp_path / "observation.nc")
        assert not any("true" in v or v in ("electron_density", "bending_angle")
                       for v in obs.variables)  # nothing of the truth
        import roharness_test_plugins as P
        P.scaled(obs).to_netcdf(tmp_path / "profile.nc")
        assert main(["score", str(tmp_path / "truth.nc"), str(tmp_path / "profile.nc"),
                     "--json"]) == 0
        m = json.loads(capsys.readouterr().out)
    # the plug-in multiplies the built-in's result by 1.03 exactly; the built-in's own error
    # (~1e-4) is what separates it from 0.03
    assert m["m2_peak_density_rel_error"] == pytest.approx((1 + base) * 1.03 - 1, abs=1e-9)
    assert abs(m["m2_peak_density_rel_error"] - 0.03) < 5e-4
    assert m["failing_stage"] == "abel_to_density"  # the bending it returns is exact


@pytest.fixture(scope="module")
def uhf_observation(builtin_uhf):
    from validation.export import observation_product

    return observation_product(builtin_uhf["observation"])


@pytest.mark.parametrize("spec, words", [
    ("roharness_test_plugins:raises", "ValueError: this retrieval"),
    ("roharness_test_plugins:garbage", "not an xarray Dataset"),
    ("roharness_test_plugins:dies", "died (exit status 7): about to die"),
    ("cmd:true {observation} {profile}", "wrote no profile file"),
    ("cmd: > {profile} # {observation}", "wrote no profile file"),
    ("cmd:echo junk > {profile} # {observation}", "not readable netCDF"),
    ("cmd:echo oops >&2; exit 3 # {observation} {profile}", "exited with status 3: oops"),
])
def test_plugin_failures_are_one_sentence(spec, words, uhf_observation):
    with pytest.raises(PluginError) as err:
        parse_retrieval(spec)(uhf_observation)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_failing_plugin_on_the_command_line_is_exit_2(capsys):
    assert main(["roundtrip", "--retrieval", "roharness_test_plugins:raises"]) == 2
    err = capsys.readouterr().err
    assert "ValueError: this retrieval always fails" in err and err.count("\n") == 1


def test_host_survives_a_failure_and_serves_the_next_call(uhf_observation):
    """A plug-in exception is data: the same host process answers the next call."""
    flaky = parse_retrieval("roharness_test_plugins:flaky")
    from validation.plugins import _host_for
    pid = _host_for(flaky).proc.pid
    bad = uhf_observation.copy()
    ok = None
    for shift in range(1, 40):  # find an observation the flaky plug-in accepts, and one it
        bad["frequency_residual"] = uhf_observation.frequency_residual + shift * 1e-9
        import roharness_test_plugins as P
        if P._draw(bad) == P.RAISE and ok is None:
            with pytest.raises(PluginError, match="flaky plug-in raised"):
                flaky(bad)
            ok = shift
        elif P._draw(bad) > P.GARBAGE and ok is not None:
            assert flaky(bad).sizes["altitude"] > 100
            break
    assert ok is not None and _host_for(flaky).proc.pid == pid


def test_hanging_plugin_is_killed_at_its_timeout(capsys):
    assert main(["roundtrip", "--retrieval", "roharness_test_plugins:sleeps",
                 "--retrieval-timeout", "2"]) == 2
    assert "did not finish within 2 s and was killed" in capsys.readouterr().err


def test_export_writes_contract_and_truth(tmp_path):
    from validation.export import export_scenario

    res = export_scenario("mex-xs-twoway", out_dir=tmp_path)
    obs = xr.load_dataset(res["observation"])
    assert obs.attrs["link"] == "earth_twoway" and obs.attrs["state_frame"] == "J2000"
    for v in obs.data_vars:
        assert obs[v].attrs.get("units") and obs[v].attrs.get("long_name"), v
    truth = xr.load_dataset(res["truth"])
    assert "electron_density" in truth and "electron_density" not in obs


def test_score_rejects_a_non_truth_file(tmp_path, capsys):
    _profile(np.linspace(80e3, 300e3, 10), np.ones(10)).to_netcdf(tmp_path / "p.nc")
    assert main(["score", str(tmp_path / "p.nc"), str(tmp_path / "p.nc")]) == 2
    assert "not a roharness truth file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- budgets
N_FLAKY = 12  # realisations of the flaky budgets


@pytest.fixture(scope="module")
def wrapper_budget():
    return B.run_budget(SMALL, ["thermal"], N_FLAKY, workers=0, progress=False,
                        return_dataset=True, retrieval="roharness_test_plugins:wrapper")


@pytest.fixture(scope="module")
def flaky_draws():
    """What the flaky plug-ins will do per realisation, computed here from the perturbed
    observations themselves (synth.perturb + the product a plug-in receives), not through
    the plug-in machinery; and the precondition that every failure kind occurs."""
    import roharness_test_plugins as P

    import synth.error_sources as es
    from synth.observe import simulate
    from synth.scenario import load_scenario
    from validation.export import observation_product

    scn = load_scenario(SMALL)
    truth, obs = simulate(scn)
    prep = es.prepare(scn, truth, obs, ["thermal"])
    draws = [P._draw(observation_product(es.perturb(
        obs, ["thermal"], scn, prep, B.realisation_rng(scn.seed, "thermal", 0, r)), scn))
        for r in range(N_FLAKY)]
    assert P._draw(observation_product(obs, scn)) not in (P.RAISE, P.HANG, P.GARBAGE)
    assert {P.RAISE, P.HANG, P.GARBAGE} <= set(draws), draws  # raise N_FLAKY if this fails
    return np.array(draws)


def test_failing_realisations_are_recorded_and_nothing_else_changes(wrapper_budget,
                                                                   flaky_draws):
    """A plug-in that raises, hangs past its timeout or returns garbage on some observations:
    the budget finishes, those realisations are failed with their reasons, and every other
    realisation is bit-identical to the plain wrapper's."""
    from validation.plugins import parse_retrieval as pr

    flaky = pr("roharness_test_plugins:flaky", timeout_s=3)
    s, ds = B.run_budget(SMALL, ["thermal"], N_FLAKY, workers=0, progress=False,
                         return_dataset=True, retrieval=flaky)
    _, ref = wrapper_budget
    st = ds.status.sel(source="thermal").values
    failed = st == B.STATUS_FAILED
    np.testing.assert_array_equal(failed.ravel(), flaky_draws <= 2)  # RAISE, HANG, GARBAGE
    ok = ~failed
    for k in ("m2_peak_density_rel_error", "ne_error"):
        a = ds[k].sel(source="thermal").values
        b = ref[k].sel(source="thermal").values
        np.testing.assert_array_equal(a[ok], b[ok])
        assert np.isnan(a[failed]).all()
    assert s["per_source"]["thermal"]["failed"] == int(failed.sum())
    text = " ".join(s["messages"])
    for words in ("flaky plug-in raised", "did not finish within 3 s", "not an xarray Dataset"):
        assert words in text


def test_failing_command_realisations_are_recorded_and_nothing_else_changes(wrapper_budget,
                                                                           flaky_draws):
    """The same with a program: one that exits non-zero, one that hangs past the timeout,
    one that writes an empty profile file."""
    from validation.plugins import parse_retrieval as pr

    flaky = pr(f"cmd:{sys.executable} {EXAMPLES / 'flaky_cmd.py'} {{observation}} {{profile}}",
               timeout_s=8)
    s, ds = B.run_budget(SMALL, ["thermal"], N_FLAKY, workers=0, progress=False,
                         return_dataset=True, retrieval=flaky)
    _, ref = wrapper_budget
    failed = ds.status.sel(source="thermal").values.ravel() == B.STATUS_FAILED
    np.testing.assert_array_equal(failed, flaky_draws <= 2)
    a = ds.ne_error.sel(source="thermal").values.reshape(N_FLAKY, -1)
    b = ref.ne_error.sel(source="thermal").values.reshape(N_FLAKY, -1)
    np.testing.assert_array_equal(a[~failed], b[~failed])
    text = " ".join(s["messages"])
    for words in ("exited with status 3: flaky command failed", "did not finish within 8 s",
                  "wrote no profile file"):
        assert words in text


def test_plugin_budget_on_a_local_cluster_matches_serial(wrapper_budget):
    """Plug-ins run inside the dask worker processes; seeds and numbers are unchanged."""
    _, ref = wrapper_budget
    _, ds = B.run_budget(SMALL, ["thermal"], N_FLAKY, workers=2, progress=False,
                         return_dataset=True, retrieval="roharness_test_plugins:wrapper")
    xr.testing.assert_identical(ds.ne_error, ref.ne_error)


def test_budget_cli_with_a_cmd_plugin(tmp_path, capsys):
    assert main(["budget", "--scenario", SMALL, "--sources", "thermal", "--realisations", "2",
                 "--workers", "0", "-o", str(tmp_path), "--retrieval", CMD, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["retrieval"] == CMD and s["per_source"]["thermal"]["failed"] == 0
    # the scaled plug-in's clean retrieval (the floor) is 3 % off in density
    assert s["floor"]["m2_peak_density_rel_rms"] == pytest.approx(0.03, abs=2e-3)


# ----------------------------------------------------------------------------- the gate
GATE = """
[rt]
kind = "roundtrip"
scenario = "mex-tgo-uhf"
seed = 0
rel = 0.02                    # fixed seed, deterministic
[rt.metrics]
ne_max_abs_error_over_peak = 1
m2_peak_density_rel_error = 1
m2_peak_altitude_error_km = 1
tec_rel_error = 1
"""


def test_gate_passes_a_wrapper_and_fails_a_scaled_plugin(tmp_path, capsys):
    f = tmp_path / "thresholds.toml"
    f.write_text(GATE)
    assert main(["gate", "--thresholds", str(f), "--update"]) == 0  # record the built-in
    capsys.readouterr()
    assert main(["gate", "--thresholds", str(f), "--retrieval",
                 "roharness_test_plugins:wrapper", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and len(res["checks"]) == 4
    assert main(["gate", "--thresholds", str(f), "--retrieval",
                 "roharness_test_plugins:scaled", "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    failed = {c["metric"] for c in res["checks"] if not c["passed"]}
    # N_e x 1.03 moves the density and TEC errors by ~3 % of the value, far outside 2 % of
    # the ~1e-4 floor; the peak altitude does not move
    assert failed == {"ne_max_abs_error_over_peak", "m2_peak_density_rel_error",
                      "tec_rel_error"}


def test_gate_refuses_mutations_with_a_plugin(capsys):
    assert main(["gate", "--mutations", "--retrieval", "roharness_test_plugins:wrapper"]) == 2
    assert "not used with --retrieval" in capsys.readouterr().err


@pytest.mark.slow
def test_builtin_gate_with_plugins():
    """The project's own thresholds: a plain wrapper of the built-in retrieval (drift
    correction included on level 4) passes every check; the x1.03 plug-in fails."""
    from validation.gate import load_thresholds, run_gate

    checks = load_thresholds()
    ok = run_gate(checks, retrieval="roharness_test_plugins:wrapper")
    assert ok["passed"], [c["message"] for c in ok["checks"] if not c["passed"]][:5]
    bad = run_gate(checks, retrieval="roharness_test_plugins:scaled")
    assert not bad["passed"]
