"""Horizontal-gradient bias study (validation.gradient_study)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from retrieval import spice
from retrieval.errors import RoharnessError
from synth.scenario import load_scenario
from validation import gradient_study as gs


def test_pin_event_selects_one_window():
    """A pinned scenario selects exactly the event it was pinned to, whatever the event's
    SZA at 130 km (where the [event] SZA range applies) and kind."""
    from synth.observe import choose_event

    scn = load_scenario("mex-tgo-uhf")
    scn.sections["event"].update(min_sza_deg=0.0, max_sza_deg=180.0)
    for kind in ("ingress", "egress"):
        scn.sections["event"].update(kind=kind, index=1)
        event = choose_event(scn)["event"]
        pinned = gs.pin_event(scn, event)
        ev = pinned["event"]
        t0, t1 = spice.utc_to_et(ev["start_utc"]), spice.utc_to_et(ev["stop_utc"])
        et = float(event.et)
        # the window holds the whole event (top crossing +- its duration), and not hours more
        assert t0 < et - float(event.duration_s) and t1 > et + float(event.duration_s)
        assert t1 - t0 < 2 * 3600
        assert ev["kind"] == kind and ev["index"] == 0
        # the same event (its time is refined to 1 ms in each window)
        assert float(choose_event(pinned)["event"].et) == pytest.approx(et, abs=1e-2)
    assert scn["event"]["start_utc"] == "2023-01-01"  # the original is untouched


def test_bad_targets_and_no_events(monkeypatch):
    with pytest.raises(RoharnessError, match="sza_targets_deg"):
        gs.gradient_bias("mex-tgo-uhf", sza_targets_deg=[])
    monkeypatch.setattr(gs, "_events", lambda scn, days: xr.Dataset(
        dict(sza_deg=("event", np.array([])))))
    with pytest.raises(RoharnessError, match="no usable occultation"):
        gs.gradient_bias("mex-tgo-uhf", sza_targets_deg=[30.0])


def test_summary_rows():
    alt = np.arange(80e3, 301e3, 1e3)
    err = np.zeros((2, alt.size))
    err[1, (alt >= 100e3) & (alt <= 200e3)] = -0.02
    n = 2
    ds = xr.Dataset(
        dict(ne_error_over_peak=(("sza", "altitude"), err),
             event_time_utc=("sza", np.array(["a", "b"], dtype=object)),
             **{k: ("sza", np.arange(n, dtype=float)) for k in (
                 "sza_deg", "m2_peak_altitude_error_km", "m2_peak_density_rel_error",
                 "perturbation_over_peak_residual")}),
        coords=dict(sza=[30.0, 85.0], altitude=alt))
    rows = gs.summary_rows(ds)
    assert rows[0]["ne_rms_over_peak_100_200km"] == 0.0
    assert rows[1]["ne_rms_over_peak_100_200km"] == pytest.approx(0.02)
    assert rows[1]["event_time_utc"] == "b"


@pytest.mark.slow
def test_gradient_bias_grows_toward_terminator():
    """Real MEX -> TGO events near SZA 30 and 85 deg (~30 s). The bias is second order in
    the along-ray SZA change (first order cancels between the two halves of the ray), and
    N_e is concave in SZA: the retrieval underestimates the peak, more so near the
    terminator."""
    ds = gs.gradient_bias("mex-tgo-uhf", sza_targets_deg=(30.0, 85.0))
    rows = gs.summary_rows(ds)
    assert rows[0]["sza_deg"] < 40.0 and rows[1]["sza_deg"] > 75.0
    assert rows[1]["ne_rms_over_peak_100_200km"] > rows[0]["ne_rms_over_peak_100_200km"]
    assert ds.m2_peak_density_rel_error.values[1] < 0.0
    assert abs(ds.m2_peak_density_rel_error.values[1]) > abs(
        ds.m2_peak_density_rel_error.values[0])
    # the gradient bias is well above the retrieval's own floor
    floor = np.nanmax(np.abs(ds.ne_error_over_peak_clean.values[1]))
    assert rows[1]["ne_max_abs_over_peak_100_200km"] > 3 * floor
