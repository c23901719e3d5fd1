"""Round trip of the two-way coherent scenario ``mex-xs-twoway`` (Earth -> MEX -> Earth, X
uplink, X and S downlinks): synth.observe (exact bent rays for every leg, the uplink from
the ground station at t - tau, the downlinks to it at t + tau) -> the retrieval's joint
two-way solution -> N_e, for the X-only two-way residual and the X/S dual-frequency one.

The reference for the two-way handling is the TRUTH's own downlink ray: the Abel inversion
of the true X-band downlink (a, alpha) per sample (``truth.impact_parameter``,
``truth.bending_angle``) carries the inversion's discretisation error on this sampling
grid and nothing of the two-way physics, so the two-way retrieval may add only a little to
it. The one-ray relations (two_way="one_ray") are run too, and their known, measured
shortfall is asserted as data.
"""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.electron_density import invert_observation, profile_dataset
from synth.observe import simulate
from synth.scenario import load_scenario

#: Acceptance (issue 3): max |N_e error| / true peak over levels above 1 % of the peak.
NE_TARGET = 1e-3
#: What the two-way handling may add to the inversion floor, as a fraction of the peak:
#: the joint solution reproduces the true downlink residual to 4e-8 (X) / 6e-7 (X/S) of
#: its peak (measured), i.e. < 1e-6 in N_e; 2e-5 leaves margin and is still 50x below the
#: one-ray errors (1.2e-3 X, 3.0e-3 X/S).
ADDED_ERROR = 2e-5


@pytest.fixture(scope="module")
def twoway():
    truth, obs = simulate(load_scenario("mex-xs-twoway"))
    return truth, obs


def _peak(alt_m, ne):
    """Peak altitude [m] and density of a sampled profile: parabola through the maximum
    sample and its two neighbours (no grid quantisation of the peak)."""
    i = int(np.argmax(ne))
    h, y = alt_m[i - 1:i + 2], ne[i - 1:i + 2]
    c2, c1, c0 = np.polyfit(h - h[1], y, 2)
    dh = -c1 / (2 * c2)
    return h[1] + dh, c0 + c1 * dh + c2 * dh * dh


def _errors(truth, prof):
    alt_t, ne_t = truth.altitude.values, truth.electron_density.values
    ne_true = np.interp(prof.altitude.values, alt_t, ne_t)
    peak = float(ne_t.max())
    sig = ne_true > 0.01 * peak
    ne = prof.electron_density.values
    h_r, n_r = _peak(prof.altitude.values, ne)
    h_t, n_t = _peak(alt_t, ne_t)
    return dict(ne=float(np.max(np.abs(ne - ne_true)[sig]) / peak),
                alt_km=abs(h_r - h_t) / 1e3, dens=abs(n_r / n_t - 1))


def _floor(truth, obs):
    """N_e error of the Abel inversion of the true X downlink ray parameters."""
    prof = profile_dataset(truth.impact_parameter.values, truth.bending_angle.values,
                           obs.attrs["frequency_hz"])
    return _errors(truth, prof)["ne"]


def test_observation_carries_the_uplink_geometry(twoway):
    truth, obs = twoway
    for v, units in [("uplink_tx_position", "m"), ("uplink_tx_velocity", "m s-1"),
                     ("et_uplink_tx", "s")]:
        assert obs[v].attrs["units"] == units
    # emission precedes the turnaround by the one-way light time (Earth-Mars 3-22 min),
    # as the downlink reception follows it
    tau_up = obs.et_tx.values - obs.et_uplink_tx.values
    tau_down = obs.et_rx.values - obs.et_tx.values
    assert np.all((tau_up > 180) & (tau_up < 1340))
    np.testing.assert_allclose(tau_up, tau_down, rtol=1e-3)  # ground moves ~30 km/s << c
    # the ground moved between emission and reception: ~2 tau x 30 km/s relative to Mars
    shift = np.linalg.norm(obs.rx_position.values - obs.uplink_tx_position.values, axis=-1)
    assert np.all(shift > 1e6)


@pytest.mark.parametrize("residual", ["two_way", "dual_frequency"])
def test_twoway_round_trip_meets_the_target(twoway, residual):
    truth, obs = twoway
    prof = invert_observation(obs, residual=residual, tangent_geometry=False)
    assert prof.attrs["residual_kind"] == residual
    assert prof.attrs["two_way_model"] == "joint"
    assert prof.attrs["uplink_geometry"] == "observed"
    err = _errors(truth, prof)
    assert err["ne"] <= NE_TARGET
    assert err["ne"] <= _floor(truth, obs) + ADDED_ERROR
    assert err["alt_km"] <= 0.2    # acceptance: M2 peak altitude within 0.2 km
    assert err["dens"] <= 2e-3     # acceptance: peak density within 0.2 %


def test_one_ray_relations_fall_short(twoway):
    """Expected shortfall as data: treating the uplink and both downlinks as one ray costs
    1.2e-3 (X: the uplink passes the limb ~45 m beside the downlink) and 3.0e-3 (X/S: the
    S ray is bent 13x more and passes ~60 m nearer the planet) of the peak (measured)."""
    truth, obs = twoway
    for residual in ("two_way", "dual_frequency"):
        prof = invert_observation(obs, residual=residual, two_way="one_ray",
                                  tangent_geometry=False)
        assert _errors(truth, prof)["ne"] > 3 * (_floor(truth, obs) + ADDED_ERROR)
