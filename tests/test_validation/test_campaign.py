"""Campaign design: campaign files, search chunking, top altitude, cadence, accuracy rule, CLI.

Fast tests use spans of a few days, few events, few realisations and ``workers=0``; the
acceptance runs (180 days, prediction vs direct Monte Carlo) are marked slow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import validation.campaign as C
from retrieval import spice
from retrieval.occultation import find_events, tangent_altitude
from synth.errors import ScenarioError
from synth.orbits import resolve_body
from validation.cli import main

MINIMAL = """
name = "t"
kind = "campaign"
[span]
start_utc = "2023-01-01"
stop_utc = "2023-01-03"
"""


# --------------------------------------------------------------------------- campaign files
def test_builtin_loads_with_designs():
    c = C.load_campaign("mex-tgo-180d")
    assert [d["name"] for d in c.designs][0] == "baseline"
    assert c.link["transmitter"] == "mex" and c.link["receiver"] == "tgo"
    assert c["span"]["stop_utc"] == "2023-06-30"
    # every design makes a valid scenario carrying its settings
    x = next(d for d in c.designs if d["name"] == "uso-x")
    assert C.design_scenario(c, x)["link"]["frequency_hz"] == 8.4e9
    u = next(d for d in c.designs if d["name"] == "uso-rx")
    assert C.design_scenario(c, u)["oscillator"]["receiver_preset"] == "uso"


def test_minimal_file_defaults_to_template():
    c = C.parse_campaign(MINIMAL, "t.toml")
    assert [d["name"] for d in c.designs] == ["baseline"]
    assert c.link["frequency_hz"] == c.template["link"]["frequency_hz"]


@pytest.mark.parametrize("text, words", [
    (MINIMAL + "[span2]\nx = 1\n", ["t.toml", "unknown section [span2]"]),
    (MINIMAL + "bogus = 1\n", ["t.toml", "unknown key 'bogus'"]),
    (MINIMAL.replace('stop_utc = "2023-01-03"', "stop_utc = 3"),
     ["[span]", "stop_utc = 3 is not an ISO UTC time"]),
    (MINIMAL + "[cadence]\nrule = \"random\"\n", ["[cadence]", 'rule = "random"', "lowest_sza"]),
    (MINIMAL + "[cadence]\nper_week = 0\n",
     ["[cadence]", "per_week = 0", "allowed range 0.01-1000"]),
    (MINIMAL + "[[design]]\nname = \"a\"\nfoo = 1\n", ["[[design]] 1", "unknown key 'foo'"]),
    (MINIMAL + "[[design]]\nname = \"a\"\n[[design]]\nname = \"a\"\n", ["used twice"]),
    (MINIMAL + "[[design]]\nname = \"a\"\noscillator = \"rb\"\n",
     ["[[design]] 1", 'oscillator = "rb"', "tcxo"]),
    (MINIMAL + "[accuracy]\nscenario = \"mex-xs-twoway\"\n", ["[accuracy]", "mutual"]),
    (MINIMAL + "[accuracy]\nscenario = \"nope\"\n", ["[accuracy]", "unknown scenario"]),
    (MINIMAL + "[target]\nmax_bottom_altitude_km = 300.0\n",
     ["[target]", "max_bottom_altitude_km = 300 km", "bottom < top"]),
    ("name = [", ["not valid TOML"]),
])
def test_bad_campaign_files_name_file_and_key(text, words):
    with pytest.raises(ScenarioError) as exc:
        C.parse_campaign(text, "t.toml")
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_design_sampling_rate_resets_window(tmp_path):
    c = C.parse_campaign(MINIMAL + "[[design]]\nname = \"fast\"\nsampling_rate_hz = 10.0\n",
                         "t.toml")
    s = C.design_scenario(c, c.designs[0])
    assert s["sampling"]["rate_hz"] == 10.0 and s["receiver"]["window_s"] is None


# --------------------------------------------------------------------------- search
@pytest.fixture(scope="module")
def two_days():
    """Events of MEX -> TGO over two days, searched in four chunks."""
    return C.search_link("mex", "tgo", "2023-01-01", "2023-01-03", chunk_days=0.5)


def test_chunked_search_equals_one_search(two_days):
    et0, et1 = spice.utc_to_et("2023-01-01"), spice.utc_to_et("2023-01-03")
    tx, rx = resolve_body("mex", et0, et1), resolve_body("tgo", et0, et1)
    # one search at another initial step: the Lipschitz scan bisects every ambiguous
    # interval, so the step changes the cost only, never the events
    one = find_events(tx, rx, et0, et1, 200e3, 60.0)
    assert two_days.sizes["event"] == one.sizes["event"] > 20
    # both refine every crossing to 1 ms (retrieval.occultation._refine); the brackets
    # differ with the chunk grid, so the roots agree to a few ms
    np.testing.assert_allclose(two_days.et_link.values, one.et_link.values, atol=0.01)
    np.testing.assert_array_equal(two_days.kind.values, one.kind.values)
    np.testing.assert_allclose(two_days.bottom_altitude_km.values,
                               one.bottom_altitude_km.values, atol=0.5)


def test_top_altitude_matches_dense_march(two_days):
    """Independent check: march away from the event in 1 s steps until the tangent point
    leaves the segment; the highest tangent altitude seen is the top."""
    et0, et1 = spice.utc_to_et("2023-01-01"), spice.utc_to_et("2023-01-03")
    tx, rx = resolve_body("mex", et0, et1), resolve_body("tgo", et0, et1)
    for i in range(0, two_days.sizes["event"], 7):
        ev = two_days.isel(event=i)
        sign = -1.0 if str(ev.kind.values) == "ingress" else 1.0
        t = float(ev.et_link) + sign * np.arange(0.0, 2400.0, 1.0)
        g = tangent_altitude(tx, rx, t)
        inside = (g["s"] > 1e-9) & (g["s"] < 1 - 1e-9)
        k = np.argmin(inside) if not inside.all() else len(t)
        top_dense = g["altitude_m"][: k + 1].max() / 1e3
        # the bisection brackets the edge to (offset bracket)/64 <= 19 s; at the edge the
        # tangent altitude is the end spacecraft's, which changes < 0.2 km/s for these orbits
        # near the limb; 1 s dense steps add < 1 km
        assert float(ev.top_altitude_km) == pytest.approx(top_dense, abs=4.0), i


def test_events_have_geometry_columns(two_days):
    for k in ("sza_deg", "ltst_hours", "lat_deg", "lon_deg", "ls_deg", "kind", "duration_s",
              "vertical_speed_km_s", "top_altitude_km", "bottom_altitude_km"):
        assert k in two_days
    # the top is above the reference altitude (the ray came from above it) and not above
    # TGO's circular 400 km orbit (the tangent altitude never exceeds the lower end's)
    assert (two_days.top_altitude_km.values > 200.0 - 1e-6).all()
    assert (two_days.top_altitude_km.values < 400.0 + 1.0).all()


def test_event_scenario_pins_the_event(two_days):
    """The pinned variant's event (timed at the template's top altitude) is the same
    occultation: the same surface crossing."""
    from synth.observe import choose_event

    c = C.load_campaign("mex-tgo-180d")
    scn = C.design_scenario(c, c.designs[0])
    full = np.nonzero(np.isfinite(two_days.et_0km.values))[0]
    for i in (full[0], full[len(full) // 2], full[-1]):
        row = C._rows(two_days, [i])[0]
        assert C.pin_ok(scn, two_days, int(i))
        ends = choose_event(C.event_scenario(scn, row))
        assert str(ends["event"].kind.values) == row["kind"]
        # both searches refine the 0 km crossing to 1 ms
        assert float(ends["event"].et_0km) == pytest.approx(float(two_days.et_0km[i]),
                                                            abs=0.05)


# --------------------------------------------------------------------------- cadence, rule
def _fake_events(days, sza):
    et = np.asarray(days, float) * 86400.0
    return xr.Dataset({"et_link": ("event", et), "sza_deg": ("event", np.asarray(sza, float))})


def test_cadence_lowest_sza_prefers_target_then_sza():
    # two per week: slots of 3.5 days -> [0, 3.5), [3.5, 7), [7, 10.5)
    ev = _fake_events([0.5, 1.0, 2.0, 4.0, 5.0, 8.0], [50, 20, 30, 70, 60, 10])
    cand = np.array([True, True, True, True, True, False])
    good = np.array([True, False, True, False, False, True])
    sel = C.apply_cadence(ev, cand, good, 2.0, "lowest_sza", 0.0)
    # slot 0: good events 0 (50) and 2 (30) -> 2; slot 1: none good -> lowest SZA 4 (60);
    # slot 2: event 5 is not a candidate -> nothing
    np.testing.assert_array_equal(np.nonzero(sel)[0], [2, 4])
    first = C.apply_cadence(ev, cand, good, 2.0, "first", 0.0)
    np.testing.assert_array_equal(np.nonzero(first)[0], [0, 3])
    np.testing.assert_array_equal(C.apply_cadence(ev, cand, good, 2.0, "all", 0.0), cand)
    weekly = C.apply_cadence(ev, cand, good, 1.0, "lowest_sza", 0.0)
    np.testing.assert_array_equal(np.nonzero(weekly)[0], [2])
    with pytest.raises(ValueError, match="lowest_sza"):
        C.apply_cadence(ev, cand, good, 2.0, "random", 0.0)


def test_fit_scaling_recovers_power_law():
    v = np.array([0.2, 0.4, 0.8, 1.0, 0.3])
    nref = np.array([1.0, 0.9, 0.7, 0.95, 0.5])
    sigma = 0.03 * v ** -1.7 / nref
    f = C.fit_scaling(sigma, -v, nref)
    assert f["p"] == pytest.approx(1.7, abs=1e-9)
    assert f["c"] == pytest.approx(0.03, rel=1e-9)
    np.testing.assert_allclose(C.predict(f, v, nref), sigma, rtol=1e-9)
    # too few points, or speeds too alike: the thermal-noise exponent p = 1 (Withers 2010)
    assert C.fit_scaling(sigma[:2], v[:2], nref[:2])["p"] == 1.0
    assert C.fit_scaling([0.1, 0.2, 0.3], [1.0, 1.01, 1.02], [1, 1, 1])["p"] == 1.0


def test_reference_density_follows_parrott_law():
    """The template (parrott2025, F10.7 = 120, H = 10 km) M2 peak over its subsolar value
    against the laws (SCIENCE.md): N_M2 = 1.6e11 cos^0.25 + 4.3e8 F10.7 plus the M1 layer's
    alpha-Chapman tail at h_M2 (N_M1 = 7.3e10 cos^0.34 + 2.5e8 F10.7,
    h_M2 - h_M1 = 19.7 km + 0.6 km ln sec chi)."""
    c = C.load_campaign("mex-tgo-180d")
    sza = np.array([0.0, 30.0, 60.0, 80.0])
    ref = C.reference_density(c.template, sza, 12.0, 0.0)
    cos = np.cos(np.radians(sza))
    n2 = 1.6e11 * cos ** 0.25 + 4.3e8 * 120.0
    n1 = 7.3e10 * cos ** 0.34 + 2.5e8 * 120.0
    z = (19.7 + 0.6 * np.log(1 / cos)) / 10.0
    law = n2 + n1 * np.exp(0.5 * (1 - z - np.exp(-z)))
    # the maximum of the sum sits slightly below h_M2 (the M1 tail's slope) and the Chapman
    # grazing function differs from sec(chi) by < 1e-3 at 80 deg: 0.5 % covers both
    np.testing.assert_allclose(ref["m2"], law / law[0], rtol=0.005)
    assert np.isnan(C.reference_density(c.template, np.array([95.0]), 12.0, 0.0)["m2"][0])


def test_select_subset_is_stratified(two_days):
    elig = np.ones(two_days.sizes["event"], bool)
    sub = C.select_subset(two_days, elig, 6)
    assert len(sub) == len(set(sub)) == 6
    sza = two_days.sza_deg.values
    # one pair per SZA tercile: the subset reaches into the lowest and the highest third
    lo, hi = np.percentile(sza, [33.4, 66.6])
    assert (sza[sub] <= lo).sum() == 2 and (sza[sub] >= hi).sum() == 2
    more = C.select_subset(two_days, elig, 3, exclude=sub)
    assert not set(more) & set(sub)


# --------------------------------------------------------------------------- CLI
def test_cli_geometry_only_json(tmp_path, capsys):
    rc = main(["campaign", "--no-accuracy", "--start", "2023-01-01", "--stop", "2023-01-03",
               "--workers", "0", "-o", str(tmp_path), "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    for k in ("n_events", "min_sza_deg", "n_below_sza_45", "n_meeting_target", "designs",
              "comparison"):
        assert k in s
    ev = xr.open_dataset(tmp_path / "events.nc")
    assert ev.sizes["event"] == s["n_events"]
    import pandas as pd
    tab = pd.read_csv(tmp_path / "events.csv")
    assert len(tab) == s["n_events"]
    assert {"sza_deg", "ltst_hours", "top_altitude_km", "observed__baseline"} <= set(tab)
    assert (tmp_path / "report.html").read_text().count("data:image/png") >= 2


def test_cli_bad_campaign_is_one_line(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text(MINIMAL + "[cadence]\nper_wek = 2\n")
    assert main(["campaign", "--scenario", str(bad), "--no-accuracy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "per_wek" in err and "c.toml" in err


def test_cli_list_and_show(capsys):
    assert main(["campaign", "--list"]) == 0
    assert "mex-tgo-180d" in capsys.readouterr().out
    assert main(["campaign", "--show", "mex-tgo-180d"]) == 0
    C.parse_campaign(capsys.readouterr().out, "shown.toml")  # the printed file parses


# --------------------------------------------------------------------------- accuracy path
#: a cheap occultation (4 s sampling, 300 -> 90 km; the forward model costs ~1 s)
SMALL_TEMPLATE = (Path(__file__).parent / "data" / "small-template.toml").read_text()

SMALL_CAMPAIGN = """
name = "ctest"
kind = "campaign"
seed = 3
[span]
start_utc = "2023-01-01"
stop_utc = "2023-01-02"
[accuracy]
scenario = "small.toml"
sources = ["thermal"]
realisations = 2
subset = 2
check = 1
[target]
m2_peak_density_rel = 0.5
m2_peak_altitude_km = 5.0
[comparison]
enabled = false
[[design]]
name = "base"
[[design]]
name = "weekly"
per_week = 1.0
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("campaign")
    (d / "small.toml").write_text(SMALL_TEMPLATE)
    (d / "c.toml").write_text(SMALL_CAMPAIGN)
    s = C.run_campaign(str(d / "c.toml"), workers=0, out_dir=d / "out", progress=False)
    return d, s


def test_accuracy_predictions_land_on_the_right_rows(small_run):
    d, s = small_run
    ev = s["events"]
    pred = ev.predicted_m2_peak_density_rel.values
    dayside = ev.sza_deg.values <= 85.0
    obs = ev.observable.values
    assert np.isfinite(pred[dayside & obs]).all()
    assert np.isnan(pred[~(dayside & obs)]).all()
    assert ev.in_budget_subset.values.sum() == 2
    # a cadence-only design shares the budget of its physics twin (no extra budget run)
    np.testing.assert_array_equal(pred[:, 0], pred[:, 1])
    assert sorted(p.name for p in (d / "out" / "budgets").iterdir()) == ["base-check",
                                                                         "base-subset"]
    # the check event is outside the subset and carries its direct Monte Carlo value
    chk = s["check"]
    assert len(chk["events"]) == 1 and not ev.in_budget_subset.values[chk["events"][0]]
    for name in ("base", "weekly"):
        r = chk["designs"][name]["m2_peak_density_rel"]
        assert r["direct"][0] == ev.budget_m2_peak_density_rel.values[chk["events"][0], 0]
        assert r["predicted"][0] == pytest.approx(r["ratio"][0] * r["direct"][0])
    for name, dd in s["designs"].items():
        assert dd["n_meeting_target"] <= dd["n_observed"]
        assert s["n_meeting_target"][name] == dd["n_meeting_target"]
    # the weekly design observes at most one event per 7-day slot (the span is one day)
    assert s["designs"]["weekly"]["n_observed"] <= 1
    # meeting the target is the observable events under the thresholds
    m = ev.meets_target.values[:, 0]
    with np.errstate(invalid="ignore"):
        expect = obs & (pred[:, 0] <= 0.5) & (ev.predicted_m2_peak_altitude_km.values[:, 0]
                                              <= 5.0)
    np.testing.assert_array_equal(m, expect)


def test_accuracy_outputs_written(small_run):
    d, s = small_run
    out = d / "out"
    js = json.loads((out / "summary.json").read_text())
    assert js["n_events"] == s["n_events"] and "fits" in js
    assert set(js["fits"]["base"]) == set(C.METRICS)
    html = (out / "report.html").read_text()
    assert "Trade study" in html and "Predicted accuracy vs SZA" in html


# --------------------------------------------------------------------------- acceptance (slow)
@pytest.mark.slow
def test_acceptance_180_days_coverage_and_earth_floor(tmp_path):
    """MEX-like -> TGO-like over 180 days: SZA from below 10 deg to the nightside; the
    conventional MEX -> Earth link over the same span has no event below 40 deg."""
    s = C.run_campaign("mex-tgo-180d", out_dir=tmp_path, accuracy=False, progress=False)
    assert s["min_sza_deg"] < 10.0
    assert s["n_nightside"] > 0 and s["max_sza_deg"] > 150.0
    assert s["comparison"]["n_events"] > 0
    assert s["comparison"]["n_below_sza_40"] == 0
    assert s["comparison"]["min_sza_deg"] >= 40.0


CHECK_CAMPAIGN = """
name = "check"
kind = "campaign"
seed = 11
[span]
start_utc = "2023-01-01"
stop_utc = "2023-01-31"
[accuracy]
scenario = "mex-tgo-uhf-drift"
sources = ["thermal", "oscillator", "drift", "ephemeris"]
realisations = 20
subset = 6
check = 3
check_realisations = 40
[comparison]
enabled = false
[[design]]
name = "baseline"
[[design]]
name = "uso-rx"
oscillator = "uso"
"""


@pytest.mark.slow
def test_acceptance_prediction_vs_direct_monte_carlo(tmp_path):
    """For events outside the budget subset, the predicted accuracy (scaling rule fitted to
    the subset) against a direct Monte Carlo of that event, REPORTED AS DATA.

    Why not an assertion of the 30 % target: the ratio compares two RMS estimates from 40
    (direct) and 20 (subset) realisations, whose own sampling errors are ~1/sqrt(2N) = 11 %
    and 16 % for Gaussian errors, ~20 % combined, and more for the heavy-tailed TCXO
    altitude errors (a few realisations lose the peak by tens of km). A 30 % limit is then
    1.5 sigma of noise: it cannot tell a 30 % prediction error from none, and the earlier
    limits ("altitude within 30 % for 5 of 6 pairs") were set after measuring. Asserting 30 %
    meaningfully needs the ratio's noise <= 10 %, i.e. >= 100 realisations on both sides
    (more for heavy tails), which is many times this test's already long run.

    Measured (predicted / direct for the three check events; 7 min on 2 shared cores):
    2026-11-25, TCXO receiver M2 density 1.13, 0.99, 1.00; M2 altitude 1.08, 0.89, 0.99;
    N_e(150 km) 1.09, 1.06, 0.94. USO receiver: M2 density 1.30, 0.95, 0.98; M2 altitude
    1.30, 1.11, 1.25; N_e(150 km) 1.27, 0.95, 0.96. (2026-11-21, before the campaign
    package split, the TCXO altitude ratios were 0.83, 4.06, 0.77: the heavy tail.)

    Asserted: the comparison exists for every (design, metric, check event) and is finite and
    positive; and a gross-error guard of a factor 10 (a unit or bookkeeping error, e.g. an
    RMS against a variance, is outside it; sampling noise at 3 sigma is a factor ~1.8). The
    ratios are written to ``check_ratios.json`` and printed with their sampling error.
    """
    f = tmp_path / "check.toml"
    f.write_text(CHECK_CAMPAIGN)
    s = C.run_campaign(str(f), out_dir=tmp_path / "out", progress=False)
    rows = s["check"]["designs"]
    n_direct, n_subset = 40, 20
    sigma = float(np.sqrt(1 / (2 * n_direct) + 1 / (2 * n_subset)))
    report = {"sampling_sigma_of_ratio_gaussian": sigma, "ratios": {}}
    for design in ("uso-rx", "baseline"):
        for m in ("m2_peak_density_rel", "ne150_rel", "m2_peak_altitude_km"):
            ratio = np.asarray(rows[design][m]["ratio"], float)
            report["ratios"][f"{design}/{m}"] = ratio.tolist()
            assert len(ratio) == 3, (design, m)
            assert np.isfinite(ratio).all() and np.all(ratio > 0), (design, m, ratio)
            assert np.all((ratio > 0.1) & (ratio < 10.0)), (design, m, ratio)
    (tmp_path / "check_ratios.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


# --------------------------------------------------------------------------- flags, progress
def test_prediction_flags_extrapolation_and_poor_fit():
    v = np.array([0.6, 0.8, 1.0, 0.7])
    nref = np.array([0.7, 0.8, 0.95, 0.9])
    sigma = 0.01 * v ** -1.0 / nref
    f = C.fit_with_floor(sigma, np.zeros(4), v, nref)
    assert f["scatter_log_total"] == pytest.approx(0.0, abs=1e-9) and not f["poor"]
    assert f["n_total"] == 4
    # inside the subset's |V| / N_ref range times 1.25: trusted; beyond: the right bit
    vs = np.array([0.5, 0.45, 1.3, 0.8, 0.8])
    nr = np.array([0.8, 0.8, 0.8, 0.5, 1.25])
    flags = C.prediction_flags(f, vs, nr)
    np.testing.assert_array_equal(flags, [0, 1, 1, 2, 2])
    # a rule that misses its own Monte Carlo by more than a factor 2 is poor everywhere
    bad = sigma * np.array([1.0, 4.0, 0.25, 1.0])
    g = C.fit_with_floor(bad, np.zeros(4), v, nref)
    assert g["poor"] and g["scatter_log_total"] > C.POOR_FIT_SCATTER_LOG
    assert (C.prediction_flags(g, vs, nr) & 4).all()
    # fewer than three subset events: poor, whatever the scatter
    assert C.fit_with_floor(sigma[:2], np.zeros(2), v[:2], nref[:2])["poor"]


def test_flags_land_on_the_right_rows(small_run):
    _, s = small_run
    ev = s["events"]
    for m in C.METRICS:
        fl = ev[f"flag_{m}"]
        assert fl.attrs["flag_meanings"].split() == list(C.FLAG_MEANINGS)
        pred = ev[f"predicted_{m}"].values
        assert (fl.values[~np.isfinite(pred)] == 0).all()  # no prediction, no flag
        for j, name in enumerate(ev.design.values):
            expect = C.prediction_flags(s["fits"][str(name)][m], ev.vertical_speed_km_s.values,
                                        ev.m2_reference_density.values if m != "ne150_rel"
                                        else np.nan)
            ok = np.isfinite(pred[:, j])
            if m != "ne150_rel":
                np.testing.assert_array_equal(fl.values[ok, j], expect[ok])


def test_cli_progress_on_stderr_json_clean_and_none(tmp_path, capsys):
    rc = main(["campaign", "--no-accuracy", "--start", "2023-01-01", "--stop", "2023-01-02",
               "--workers", "0", "-o", str(tmp_path), "--json"])
    assert rc == 0
    out, err = capsys.readouterr()
    json.loads(out)  # stdout is exactly one JSON object
    lines = [x for x in err.splitlines() if x.startswith("campaign: ")]
    assert lines[0].startswith("campaign: starting") and lines[-1].startswith("campaign: done")
    assert any("searching mex -> tgo events" in x for x in lines)
    assert all(re.search(r"\(\d+ s\)$", x) for x in lines)
    assert main(["campaign", "--no-accuracy", "--start", "2023-01-01", "--stop",
                 "2023-01-02", "--workers", "0", "-o", str(tmp_path)]) == 0
    assert "nan" not in capsys.readouterr().out
    # a design with no qualifying event has no minimum SZA: "none", never "nan"
    from validation.commands.campaign import _median, _sza
    assert _sza(float("nan")) == _sza(None) == "none" and _sza(3.14) == "3.1 deg"
    assert _median(float("nan"), 100.0, False) == "none"
    assert _median(0.0123, 100.0, True) == "poor fit"
