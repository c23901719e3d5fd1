"""Occultation finder: completeness against a dense scan, precision, physics of links."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, target
from hypothesis import strategies as st

from retrieval import spice
from retrieval.errors import RoharnessError
from retrieval.occultation import find_events, tangent_altitude
from synth.orbits import resolve_body


def _link(tx, rx, start, stop):
    et0, et1 = spice.utc_to_et(start), spice.utc_to_et(stop)
    return resolve_body(tx, et0, et1), resolve_body(rx, et0, et1), et0, et1


def test_no_event_missed_and_times_within_10ms_of_a_dense_scan():
    """A brute-force 1 s scan (linear interpolation of the crossings) finds the same events."""
    tx, rx, et0, et1 = _link("mex", "tgo", "2023-01-03", "2023-01-03T12:00:00")
    ds = find_events(tx, rx, et0, et1)
    t = np.arange(et0, et1, 1.0)
    g = tangent_altitude(tx, rx, t)
    h, s = g["altitude_m"], g["s"]
    d = h - 200e3
    i = np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]
    i = i[(s[i] > 0) & (s[i] < 1)]  # true tangent points only
    t_dense = t[i] - d[i] * (t[i + 1] - t[i]) / (d[i + 1] - d[i])
    assert len(t_dense) >= 6
    assert ds.sizes["event"] == len(t_dense)
    # 1 s linear interpolation of a smooth h(t): error << 10 ms
    assert np.max(np.abs(np.sort(ds.et_link.values) - np.sort(t_dense))) < 0.01


def test_crossing_times_are_refined_below_10ms():
    tx, rx, et0, et1 = _link("mex", "tgo", "2023-01-05", "2023-01-06")
    ds = find_events(tx, rx, et0, et1)
    h = tangent_altitude(tx, rx, ds.et_link.values)["altitude_m"]
    rate = np.abs(ds.vertical_speed_km_s.values) * 1e3
    assert np.all(np.abs(h - 200e3) < rate * 0.01)
    ok = np.isfinite(ds.et_0km.values)
    h0 = tangent_altitude(tx, rx, ds.et_link.values[ok] + ds.duration_s.values[ok]
                          * np.where(ds.kind.values[ok] == "ingress", 1, -1))["altitude_m"]
    assert np.all(np.abs(h0) < 2.0 * rate[ok] * 0.01)  # rate at 0 km is similar (factor 2)
    assert set(ds.kind.values) == {"ingress", "egress"}


def test_mutual_link_reaches_low_sza():
    """MEX -> TGO mutual RO reaches the subsolar region: events below SZA 30 deg in 60 days."""
    tx, rx, et0, et1 = _link("mex", "tgo", "2023-01-01", "2023-03-02")
    ds = find_events(tx, rx, et0, et1, step_s=120.0)
    assert (ds.sza_deg.values < 30.0).sum() > 0
    assert ds.sza_deg.values.min() < 10.0


@pytest.mark.slow
def test_earth_link_never_below_sza_40_full_year_fine_step():
    tx, rx, et0, et1 = _link("maven", "earth", "2023-01-01", "2024-01-01")
    ds = find_events(tx, rx, et0, et1, step_s=60.0)
    assert ds.sizes["event"] > 1000 and ds.sza_deg.values.min() >= 40.0


def test_earth_link_never_below_sza_40_over_an_earth_year():
    """Conventional RO geometry: the Sun-Mars-Earth angle (< ~47 deg) bounds the SZA.

    A coarse 300 s initial step is safe: the Lipschitz refinement clears every interval.
    """
    tx, rx, et0, et1 = _link("maven", "earth", "2023-01-01", "2024-01-01")
    ds = find_events(tx, rx, et0, et1, step_s=300.0)
    assert ds.sizes["event"] > 1000
    assert ds.sza_deg.values.min() >= 40.0


def test_earth_link_light_time():
    tx, rx, et0, _ = _link("maven", "earth", "2023-01-01", "2023-01-02")
    g = tangent_altitude(tx, rx, np.array([et0]))
    dist = np.linalg.norm(g["rx_position"] - g["tx_position"])
    assert np.isclose(g["et_rx"][0] - g["et_tx"][0], dist / 299792458.0, rtol=1e-9)
    assert g["et_rx"][0] - g["et_tx"][0] > 100.0  # Mars-Earth: minutes


def test_empty_window_is_one_sentence():
    with pytest.raises(RoharnessError, match="empty"):
        find_events(-1041, -1143, 100.0, 100.0)


@pytest.mark.parametrize("link", [("mex", "tgo"), ("maven", "earth")])
def test_coarse_to_fine_scan_finds_the_events_of_the_full_grid(monkeypatch, link):
    """Skipping the grid points the rate bounds clear changes nothing: every crossing is
    bracketed by the same grid step, so the events are identical to the last bit."""
    import retrieval.occultation as occ

    tx, rx, et0, et1 = _link(*link, "2023-01-02", "2023-01-05")
    ds = find_events(tx, rx, et0, et1)
    full_scan = occ._scan
    monkeypatch.setattr(occ, "_scan", lambda *a, **k: full_scan(*a, **dict(k, coarse=1)))
    full = find_events(tx, rx, et0, et1)
    assert ds.sizes["event"] == full.sizes["event"] > 0
    for name in full.data_vars:
        np.testing.assert_array_equal(ds[name].values, full[name].values, err_msg=name)


# ------------------------------------------------------------------ the search's own bounds
def _brute_force_events(tx, rx, et0, et1, step_s, level_m=200e3):
    """Independent brute force: every crossing of 0 km and of ``level_m`` on a fine regular
    grid (``tangent_altitude`` at every epoch, linear interpolation of the crossing), the
    reference-level ones kept only at true tangent points, as find_events reports them."""
    t = np.arange(et0, et1, step_s)
    g = tangent_altitude(tx, rx, t)
    h, s = g["altitude_m"], g["s"]
    out = {}
    for lev in (0.0, level_m):
        d = h - lev
        i = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
        if lev > 0:
            i = i[(s[i] > 0) & (s[i] < 1) & (s[i + 1] > 0) & (s[i + 1] < 1)]
        out[lev] = (t[i] - d[i] * step_s / (d[i + 1] - d[i]), np.sign(d[i + 1]))
    return out


def _assert_same_crossings(ds, brute, tol_s):
    t_ref, rising = brute[200e3]
    assert ds.sizes["event"] == len(t_ref) > 0
    np.testing.assert_array_equal(ds.kind.values, np.where(rising > 0, "egress", "ingress"))
    assert np.max(np.abs(ds.et_link.values - t_ref)) < tol_s
    # the surface crossing paired with each event by the rule of find_events: the next
    # (ingress) / previous (egress) 0 km crossing before the ray is back at the level
    t0, _ = brute[0.0]
    for t_ev, kind, dur in zip(t_ref, ds.kind.values, ds.duration_s.values):
        later = kind == "ingress"
        others = t_ref[t_ref > t_ev] if later else t_ref[t_ref < t_ev]
        bound = (others.min() if len(others) else np.inf) if later else \
            (others.max() if len(others) else -np.inf)
        cand = t0[(t0 > t_ev) & (t0 < bound)] if later else t0[(t0 < t_ev) & (t0 > bound)]
        if not len(cand):
            assert not np.isfinite(dur)
            continue
        expected = cand.min() - t_ev if later else t_ev - cand.max()
        assert abs(dur - expected) < 2 * tol_s


def test_fast_search_finds_every_crossing_of_a_5s_brute_force_scan():
    """No event lost: the bounded coarse-to-fine search and a brute-force 5 s scan of both
    levels agree on count, kind, order and times (3 days MEX -> TGO, 66 events)."""
    tx, rx, et0, et1 = _link("mex", "tgo", "2023-01-01", "2023-01-04")
    ds = find_events(tx, rx, et0, et1)
    # linear interpolation over 5 s of a smooth h: error ~ h'' dt^2 / 8 / h' < 0.05 s for
    # h'' <= 4 m/s^2 (orbital) and |h'| >= 0.25 km/s at the crossings
    _assert_same_crossings(ds, _brute_force_events(tx, rx, et0, et1, 5.0), 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("link", [("mex", "tgo"), ("maven", "earth")])
def test_fast_search_finds_every_crossing_of_a_5s_brute_force_scan_over_60_days(link):
    tx, rx, et0, et1 = _link(*link, "2023-01-01", "2023-03-02")
    ds = find_events(tx, rx, et0, et1)
    _assert_same_crossings(ds, _brute_force_events(tx, rx, et0, et1, 5.0), 0.05)


def test_search_geometry_matches_link_states_within_2_cm():
    """The search's two-call Mars-side geometry (transmitter at t - tau from its velocity)
    agrees with the iterated light time of link_states."""
    import retrieval.occultation as occ

    tx, rx, et0, _ = _link("mex", "tgo", "2023-01-01", "2023-01-02")
    t = et0 + np.linspace(0.0, 86400.0, 2001)
    fast = occ._link_geometry(tx, rx, t, near=True)
    exact = tangent_altitude(tx, rx, t)
    # a tau^2 / 2 with a <= 4 m/s^2, tau <= 0.07 s: 0.01 m
    assert np.max(np.abs(fast["tx_position"] - exact["tx_position"])) < 0.02
    assert np.max(np.abs(fast["altitude_m"] - exact["altitude_m"])) < 0.02
    # v(t - tau) from Mars' two-body pull: J2's part of the acceleration times tau
    assert np.max(np.abs(fast["tx_velocity"] - exact["tx_velocity"])) < 0.01
    # the analytic rate against a central difference of the exact altitude over 1 s, at
    # tangent points inside the segment (where the closest point reaches an end, h(t) has
    # a kink that a difference straddles); 1e-3 relative: the light-time rate terms are
    # ~v/c = 1e-5; the difference's own error (h''' dt^2 / 24) reached 1e-4 of the rate,
    # and 0.015 m/s at turning points (0.05 m/s absolute)
    d = (tangent_altitude(tx, rx, t + 0.5)["altitude_m"]
         - tangent_altitude(tx, rx, t - 0.5)["altitude_m"])
    inside = (fast["s"] > 0.01) & (fast["s"] < 0.99)
    assert inside.sum() > 500
    err = np.abs(fast["rate_m_s"] - d)[inside]
    assert np.all(err < 1e-3 * np.abs(d[inside]) + 0.05)


@given(day=st.floats(0.0, 364.0), dt_s=st.floats(1.0, 3840.0), frac=st.floats(0.0, 1.0),
       link=st.sampled_from([("mex", "tgo"), ("maven", "tgo"), ("maven", "earth"),
                             ("tgo", "dss-43")]))
@example(day=0.0, dt_s=3840.0, frac=1.0, link=("mex", "tgo"))  # the TGO end, longest step
@example(day=0.0, dt_s=3840.0, frac=0.0, link=("maven", "earth"))  # MAVEN end, periapsis
@example(day=1.0, dt_s=1.0, frac=0.0, link=("mex", "tgo"))  # found: round-off at 1 ms steps
def test_rate_bound_holds_along_the_interval(day, dt_s, frac, link):
    """The bounds of the scan are never exceeded: the distance from Mars' centre of the
    segment point at fraction s, sampled densely over the interval, changes no faster than
    S(s) and curves no more than the curvature bound. (The exclusion tests of the scan are
    exact consequences of these two bounds.)"""
    import retrieval.occultation as occ

    tx, rx, y0, y1 = _link(*link, "2023-01-01", "2024-01-01")
    t0 = y0 + day * 86400.0
    # steps of >= 0.5 s: second differences of shorter steps are SPK round-off (~1e-6 m)
    t = np.linspace(t0, t0 + dt_s, int(min(801, max(3, 2 * dt_s + 1))))
    z = occ._sample_columns(tx, rx, t, near="earth" not in link and "dss-43" not in link)
    bounds = occ._Bounds(z[:1], z[-1:], np.array([dt_s]))
    s = np.full(1, frac)
    rate, _ = bounds.rate(s)
    p = (1 - frac) * z[:, 2:5] + frac * z[:, 5:8]
    f = np.linalg.norm(p, axis=1)
    worst = np.max(np.abs(np.diff(f)) / np.diff(t))
    target(float(worst / rate[0]), label="rate / bound")
    assert worst <= rate[0]
    # and its second derivative stays within the curvature bound (second differences of
    # a smooth f: exact up to the fourth-derivative term of the <= 4.8 s step, far below the
    # bound)
    step = t[1] - t[0]
    curv = np.max(np.abs(np.diff(f, 2))) / step ** 2
    bound = bounds.curvature(s, np.full(1, max(f.min(), 1.0)))[0]
    target(float(curv / bound), label="curvature / bound")
    assert curv <= bound
