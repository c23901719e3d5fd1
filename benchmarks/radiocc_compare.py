"""radiocc (via :mod:`validation.adapters.radiocc`) vs the built-in retrieval, stage by stage.

Run: ``python benchmarks/radiocc_compare.py [--repeat 3] [scenario ...]`` (default: the
three built-in scenarios ``mex-tgo-uhf``, ``maven-x-oneway``, ``mex-xs-twoway``). Needs
radiocc (``pip install --ignore-requires-python --no-deps radiocc==0.6.24`` plus numpy,
scipy, spiceypy, pudb, matplotlib). Prints a markdown table; numbers are reported, never
asserted (the machine is shared; timings are best of ``--repeat``).

Columns, per scenario and retrieval (noiseless observations):

* ``N_e err/peak``: max |N_e - N_e,true| / true peak over the retrieved levels where the
  true density exceeds 1 % of its peak (:func:`validation.roundtrip.compare`; computed with
  the same formula when ``compare`` refuses a profile with no positive density).
* ``M2 dh [km]``, ``M2 dN/N``: retrieved minus true M2 peak (``compare``); "none" when the
  profile has no positive density (no layer to find).
* ``bend err [rad]``, ``bend err/max``: max |alpha - alpha_true| over the rays, absolute
  and relative to the largest true |alpha| (the Doppler->bending stage alone).
* ``Abel-only N_e err/peak``: the same N_e metric when the retrieval's own Abel and
  density steps are fed the *true* bending angles and impact parameters (the Abel stage
  alone): radiocc's R11 + R12, the built-in :func:`retrieval.electron_density.profile_dataset`.
* ``bend err, R6 signs off``: radiocc only; its R9 bending error when R6's fixed velocity
  signs are replaced by the plain projections
  (:func:`validation.adapters.radiocc.signed_plane_velocities`): a diagnostic that
  attributes a bending failure to R6 (if it vanishes) or to R9 (if it stays).
* ``time [s]``: wall time of one retrieval call.

Two-way (``mex-xs-twoway``): radiocc inverts the X downlink (its band X, the one-ray
relation :math:`\\Delta f_{2w}/(1 + k^2)`); the built-in its default (dual-frequency, X
band, joint up/down rays). The truth's bending angles are those of the X downlink.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrieval.electron_density import invert_observation, profile_dataset  # noqa: E402
from retrieval.errors import RoharnessError  # noqa: E402
from synth.observe import simulate  # noqa: E402
from synth.scenario import load_scenario  # noqa: E402
from validation.adapters import radiocc as adapter  # noqa: E402
from validation.roundtrip import compare  # noqa: E402

SCENARIOS = ("mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway")


def ne_metrics(truth, profile):
    """``compare``'s N_e and M2 metrics; the N_e one by the same formula when it refuses."""
    try:
        c = compare(truth, profile)
        return dict(ne=c["ne_max_abs_error_over_peak"], dh=c["m2_peak_altitude_error_km"],
                    dn=c["m2_peak_density_rel_error"], note="")
    except RoharnessError as exc:
        alt = profile.altitude.values
        ne = profile.electron_density.values
        ne_true = np.interp(alt, truth.altitude.values, truth.electron_density.values)
        peak = float(truth.electron_density.max())
        sig = ne_true > 0.01 * peak
        err = float(np.max(np.abs(ne - ne_true)[sig]) / peak) if sig.any() else np.nan
        return dict(ne=err, dh=np.nan, dn=np.nan, note=str(exc))


def bending_error(truth, t, alpha):
    """Max |alpha - alpha_true| at sample times ``t`` and its ratio to max |alpha_true|."""
    ref = np.interp(t, truth.time.values, truth.bending_angle.values)
    err = float(np.nanmax(np.abs(alpha - ref)))
    return err, err / float(np.max(np.abs(truth.bending_angle.values)))


def _true_bending_in_processing_order(truth, inp):
    order = inp["order"]
    return (truth.impact_parameter.values[order], truth.bending_angle.values[order])


def radiocc_abel_only(truth, obs):
    """radiocc's R11 + R12 on the true bending (radiocc's sign: positive away)."""
    inp = adapter.radiocc_inputs(obs)
    rc = adapter.load_radiocc()
    m, const = rc.modules, rc.modules["constants"]
    a, alpha = _true_bending_in_processing_order(truth, inp)
    n = a.size
    with adapter._quiet([]):
        _, refr, radius, _ = m["old.R11_Refractivity_and_Bending_Radius_v2"].Abel_Analytical(
            n, inp["i_integral"], inp["i_surface"], a, -alpha, const.R_Planet)
        ne = m["old.R12_Electron_Density"].Elec(n, refr, const.e, const.eps0, const.me,
                                                inp["bande"], inp["fsup"], const.c)
    ne, radius = np.asarray(ne, float), np.asarray(radius, float)
    good = np.flatnonzero(np.isfinite(ne) & np.isfinite(radius))
    good = good[np.argsort(radius[good])]
    prof = xr.Dataset({"electron_density": ("altitude", ne[good])},
                      coords={"altitude": radius[good] - inp["reference_radius_m"]})
    return ne_metrics(truth, prof)["ne"]


def builtin_abel_only(truth, obs, profile):
    a, alpha = truth.impact_parameter.values, truth.bending_angle.values
    prof = profile_dataset(a, alpha, profile.attrs["frequency_hz"],
                           reference_radius_m=float(obs.attrs["reference_radius_m"]))
    return ne_metrics(truth, prof)["ne"]


def radiocc_bending_signs_off(truth, obs):
    """R9's bending error with R6's velocity signs replaced by the plain projections."""
    inp = adapter.radiocc_inputs(obs)
    out = adapter.run_radiocc(inp)
    sv = adapter.signed_plane_velocities(inp)
    plane = list(out["plane"])
    plane[3:7] = [sv["vr_MEX"], sv["vz_MEX"], sv["vr_GS"], sv["vz_GS"]]
    rc = adapter.load_radiocc()
    with adapter._quiet([]):
        _, bend, _, _ = rc.modules["old.R9_BendAng_ImpParam_dn"].Bend_dn(
            inp["doppler_dn"].size, *plane, inp["doppler_dn"], inp["bande"], inp["fsup"],
            rc.modules["constants"].c, inp["data_type"])
    t = obs.time.values[inp["order"]]
    return bending_error(truth, t, -np.asarray(bend, float))[1]


def best_time(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def measure(scenario, repeat=3):
    """All columns for one scenario: ``{"radiocc": {...}, "built-in": {...}}``."""
    truth, obs = simulate(load_scenario(scenario))
    rows = {}
    prof, dt = best_time(lambda: adapter.retrieve(obs), repeat)
    row = ne_metrics(truth, prof)
    row["bend"], row["bend_rel"] = bending_error(truth, prof.level_time.values,
                                                 prof.bending_angle.values)
    row["abel"] = radiocc_abel_only(truth, obs)
    row["signs_off"] = radiocc_bending_signs_off(truth, obs)
    row["time"] = dt
    row["name"] = prof.attrs["retrieval"]
    rows["radiocc"] = row
    prof, dt = best_time(lambda: invert_observation(obs), repeat)
    row = ne_metrics(truth, prof)
    row["bend"], row["bend_rel"] = bending_error(truth, prof.time.values,
                                                 prof.bending_angle.values)
    row["abel"] = builtin_abel_only(truth, obs, prof)
    row["signs_off"] = np.nan
    row["time"] = dt
    row["name"] = "built-in"
    rows["built-in"] = row
    rows["link"] = obs.attrs.get("link", "?")
    return rows


def _fmt(x, spec):
    return "n/a" if not np.isfinite(x) else format(x, spec)


def table(results):
    head = ("| scenario (link) | retrieval | N_e err/peak | M2 dh [km] | M2 dN/N | "
            "bend err [rad] | bend err/max | Abel-only N_e err/peak | "
            "bend err/max, R6 signs off | time [s] |")
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for scn, rows in results.items():
        for key in ("radiocc", "built-in"):
            r = rows[key]
            none = "none" if r["note"] else None
            lines.append(
                f"| {scn} ({rows['link']}) | {r['name']} | {_fmt(r['ne'], '.3g')} | "
                f"{none or _fmt(r['dh'], '.3g')} | {none or _fmt(r['dn'], '.3g')} | "
                f"{_fmt(r['bend'], '.3g')} | {_fmt(r['bend_rel'], '.3g')} | "
                f"{_fmt(r['abel'], '.3g')} | {_fmt(r['signs_off'], '.3g')} | "
                f"{r['time']:.3f} |")
    notes = [f"* {scn}, radiocc: {rows['radiocc']['note']}" for scn, rows in results.items()
             if rows["radiocc"]["note"]]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    p.add_argument("--repeat", type=int, default=3, help="timing repeats (best of)")
    args = p.parse_args(argv)
    results = {s: measure(s, args.repeat) for s in args.scenarios}
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
