"""Neutral temperature error of noiseless round trips over drawn occultations (issue 14).

Draws scenario variants like the round-trip properties of
``tests/test_validation/test_roundtrip.py`` (its ``scenario_text``, ``LINKS`` and the ranges
of its ``ionospheres`` strategy, drawn here with a seeded numpy generator so the sweep is
reproducible), runs ``validation.roundtrip.run_roundtrip`` on each and reports
``neutral_temperature_error_k`` per ionosphere model: the worst |dT_n|, the mean and the
retrieved M1 class.

The retrieved profiles and their true temperatures are cached (``--cache``, an ``.npz``) so
that a changed temperature fit can be re-scored on the same profiles in seconds
(``--rescore``) without re-running the forward model and the inversion.

    PYTHONPATH=. python benchmarks/temperature_sweep.py --per-model 10 --cache /tmp/ts.npz
    PYTHONPATH=. python benchmarks/temperature_sweep.py --rescore --cache /tmp/ts.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "test_validation"))
from test_roundtrip import LINKS, scenario_text  # noqa: E402

from retrieval.errors import RoharnessError  # noqa: E402
from retrieval.profile import profile_science  # noqa: E402
from synth.scenario import parse_scenario  # noqa: E402
from validation.roundtrip import run_roundtrip  # noqa: E402

MODELS = ("parrott2025", "segale2024", "fox_weber2012", "fallows2015", "layers")
GROUPS = ("auto", "dawn_aphelion", "dawn_perihelion", "dusk_aphelion", "dusk_perihelion")


def draw_ionosphere(rng, model, with_m1=None):
    """The ranges of test_roundtrip.ionospheres(), for one given model."""
    keys = {"model": model, "grazing": str(rng.choice(["chapman", "sec"]))}
    if model != "layers":
        keys["scale_height_km"] = float(rng.uniform(8.0, 14.0))
    if model == "parrott2025":
        keys["f107_sfu"] = float(rng.uniform(65.0, 250.0))
    if model == "segale2024":
        keys["group"] = str(rng.choice(GROUPS))
    if model == "layers":
        n2, h2, hh2 = rng.uniform(1e10, 5e11), rng.uniform(110.0, 160.0), rng.uniform(6.0, 15.0)
        layers = [dict(name="M2", n0_m3=float(n2), h0_km=float(h2), scale_height_km=float(hh2))]
        if with_m1 if with_m1 is not None else rng.random() < 0.5:
            layers.append(dict(name="M1", n0_m3=float(n2 * rng.uniform(0.05, 0.5)),
                               h0_km=float(rng.uniform(90.0, h2 - 10.0)),
                               scale_height_km=float(rng.uniform(5.0, 12.0))))
        keys["layers"] = layers
    return keys


def draw_text(rng, model, rate=(1.0, 4.0), neutral=False):
    day0 = int(rng.integers(0, 901))
    return scenario_text(link=str(rng.choice(sorted(LINKS))),
                         start=np.datetime64("2022-01-01") + np.timedelta64(day0, "D"),
                         evkind=str(rng.choice(["ingress", "egress"])),
                         index=int(rng.integers(0, 4)), rate_hz=float(rng.uniform(*rate)),
                         ionosphere=draw_ionosphere(rng, model), neutral=neutral)


def _inside(res, limit=1e-3):
    """The test's INSIDE_LIMIT rejection: a spacecraft inside the ionosphere."""
    obs, truth = res["observation"], res["truth"]
    r = np.concatenate([np.linalg.norm(obs[k].values, axis=1)
                        for k in ("tx_position", "rx_position")])
    alt_m = r[r < 1e9].min() - obs.attrs.get("reference_radius_m", 3389.5e3)
    ne = truth.electron_density.values
    return float(np.interp(alt_m, truth.altitude.values, ne, right=0.0) / ne.max()) > limit


def run(per_model, seed, cache, neutral, rate):
    rng = np.random.default_rng(seed)
    rows = []
    for model in MODELS:
        done = tries = 0
        while done < per_model and tries < 6 * per_model:
            tries += 1
            text = draw_text(rng, model, rate, neutral)
            try:
                res = run_roundtrip(parse_scenario(text))
            except RoharnessError as exc:
                if "occultation" in str(exc):
                    continue
                raise
            if _inside(res):
                continue
            p, m, tq = res["profile"], res["metrics"], res["true_quantities"]
            rows.append(dict(model=model, text=text, alt=p.altitude.values,
                             ne=p.electron_density.values,
                             t_true=tq["neutral_temperature_k"],
                             sza=float(res["truth"].attrs.get("sza_deg", np.nan)),
                             dt=float(m["neutral_temperature_error_k"]),
                             m1_class=m["m1_class"]))
            done += 1
            print(f"{model:14s} dT = {rows[-1]['dt']:+7.2f} K  M1 {m['m1_class']:6s} "
                  f"T = {tq['neutral_temperature_k']:.1f} K", flush=True)
    if cache:
        np.savez_compressed(cache, rows=np.array(rows, dtype=object))
    return rows


def rescore(rows, **kw):
    for r in rows:
        sci = profile_science(r["alt"], r["ne"], **kw)
        r["dt"] = float(sci["neutral_temperature_k"] - r["t_true"])
        r["m1_class"] = sci["m1_class"]
        r["temperature_model"] = sci.get("temperature_model", "")
    return rows


def summary(rows):
    out = {}
    for model in MODELS + ("all",):
        sel = [r for r in rows if model in (r["model"], "all")]
        if not sel:
            continue
        dt = np.array([r["dt"] for r in sel])
        ok = np.isfinite(dt)
        out[model] = dict(n=len(sel), worst_abs_k=float(np.max(np.abs(dt[ok]))),
                          mean_k=float(np.mean(dt[ok])), nan=int((~ok).sum()),
                          over_4k=int(np.sum(np.abs(dt[ok]) > 4.0)))
        print(f"{model:14s} n = {len(sel):3d}  worst |dT| = {out[model]['worst_abs_k']:6.2f} K"
              f"  mean {out[model]['mean_k']:+6.2f} K  > 4 K: {out[model]['over_4k']:3d}"
              f"  NaN: {out[model]['nan']}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-model", type=int, default=10)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--cache", default="")
    ap.add_argument("--rescore", action="store_true",
                    help="re-run the profile science on the cached profiles")
    ap.add_argument("--neutral", action="store_true", help="neutral atmosphere on")
    ap.add_argument("--rate", type=float, nargs=2, default=(1.0, 4.0), help="Hz range")
    ap.add_argument("--worst", type=int, default=5, help="print the N worst scenarios")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.rescore:
        rows = list(np.load(a.cache, allow_pickle=True)["rows"])
        rows = rescore(rows)
    else:
        rows = run(a.per_model, a.seed, a.cache, a.neutral, tuple(a.rate))
    s = summary(rows)
    for r in sorted(rows, key=lambda r: -abs(r["dt"]) if np.isfinite(r["dt"]) else -1e9)[
            :a.worst]:
        print(f"--- dT = {r['dt']:+.2f} K, M1 {r['m1_class']}\n{r['text']}")
    if a.json:
        print(json.dumps(s))


if __name__ == "__main__":
    main()
