"""Before/after equality check for speed work: save outputs, change code, compare.

    python benchmarks/equality_check.py save DIR [--events-days 365]
    python benchmarks/equality_check.py compare DIR [--rtol 1e-9]

``save`` writes the data variables of ``simulate()`` (truth and observation) for the
built-in scenarios mex-tgo-uhf, maven-x-oneway and mex-xs-twoway, the link states of
``retrieval.geometry.link_states`` on the MEX -> TGO and MAVEN -> Earth links, the
events of a MEX -> TGO search (``--events-days``, 0 to skip), and the retrieval side of
error-budget realisations (:data:`RETRIEVAL_CASES`: every variable and numeric or string
attribute of the retrieved profiles, clean and perturbed, and their scores) into
``DIR/*.npz``. ``compare`` recomputes them and prints, per array, the largest difference
relative to the array's largest magnitude; it exits 1 if any exceeds ``--rtol`` (or a
shape, a string or a NaN pattern differs). Simulation attributes are not compared.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SCENARIOS = ("mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway")


def _simulate(name):
    from synth.observe import simulate
    from synth.scenario import load_scenario

    truth, obs = simulate(load_scenario(name))
    out = {}
    for tag, ds in (("truth", truth), ("obs", obs)):
        for k, v in ds.variables.items():
            out[f"{tag}/{k}"] = np.asarray(v.values)
    return out


def _links():
    from retrieval import spice
    from retrieval.geometry import link_states
    from synth.orbits import resolve_body

    et0 = spice.utc_to_et("2023-01-01")
    et = et0 + np.linspace(0.0, 86400.0 * 30, 5001)
    out = {}
    for tx, rx in (("mex", "tgo"), ("maven", "earth"), ("earth", "maven")):
        t = resolve_body(tx, et[0], et[-1])
        r = resolve_body(rx, et[0], et[-1])
        st = link_states(t, r, et)
        for k, v in st.items():
            if k != "reference":
                out[f"{tx}-{rx}/{k}"] = np.asarray(v)
    return out


def _events(days):
    from retrieval import spice
    from validation.events import search

    stop = spice.et_to_utc(spice.utc_to_et("2023-01-01") + days * 86400.0, 0)
    ds = search("mex", "tgo", "2023-01-01", stop)
    return {f"events/{k}": np.asarray(v.values) for k, v in ds.variables.items()}


#: Budget realisations whose retrieval ``save``/``compare`` check: (scenario, sources,
#: realisations per source). Drift correction, a neutral atmosphere removed, the
#: dual-frequency two-way link and Parrott's noise.
RETRIEVAL_CASES = (("mex-tgo-uhf-drift", ("thermal", "drift", "parrott"), 3),
                   ("maven-x-oneway-neutral", ("thermal", "parrott"), 3),
                   ("mex-xs-twoway", ("thermal", "parrott"), 3))


def _profile_arrays(tag, prof, out):
    for k, v in prof.variables.items():
        out[f"{tag}/var/{k}"] = np.asarray(v.values)
    for k, v in prof.attrs.items():
        if isinstance(v, (int, float, str, np.number)):
            out[f"{tag}/attr/{k}"] = np.asarray(v)


def _retrieval():
    import validation.budget as B
    from synth.scenario import load_scenario
    from validation.plugins import parse_retrieval

    ret = parse_retrieval(None)
    out = {}
    for name, sources, n_real in RETRIEVAL_CASES:
        scn = load_scenario(name)
        grid = B.altitude_grid_m(scn)
        base = B.base_task(scn, sources, grid, ret)
        _profile_arrays(f"{name}/clean", B.retrieve(base["obs"], scn, ret), out)
        es = B._error_sources()
        for src in sources:
            for r in range(n_real):
                tag = f"{name}/{src}/r{r}"
                obs = es.perturb(base["obs"], [src], scn, base["prep"],
                                 B.realisation_rng(1, src, 0, r))
                try:
                    prof = B.retrieve(obs, scn, ret, top=base.get("top"))
                except Exception as exc:  # noqa: BLE001 - a failure is an outcome too
                    out[f"{tag}/error"] = np.asarray(str(exc))
                    continue
                _profile_arrays(tag, prof, out)
                for k, v in B._score(base["truth"], base["ne_true"], prof, grid).items():
                    out[f"{tag}/score/{k}"] = np.asarray(v)
    return out


def _all(events_days):
    parts = {f"simulate-{n}": (lambda n=n: _simulate(n)) for n in SCENARIOS}
    parts["retrieval"] = _retrieval
    parts["link_states"] = _links
    if events_days > 0:
        parts["events"] = lambda: _events(events_days)
    return parts


def _diff(a, b):
    """Largest |a - b| / max|a| (0 when equal), or a reason string when not comparable."""
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    if a.dtype.kind in "OUS":
        return 0.0 if np.array_equal(a, b) else "strings differ"
    a, b = a.astype(float), b.astype(float)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return "NaN pattern differs"
    ok = ~np.isnan(a)
    if not ok.any():
        return 0.0
    scale = np.max(np.abs(a[ok]))
    d = np.max(np.abs(a[ok] - b[ok]))
    return float(d / scale) if scale > 0 else float(d)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("save", "compare"))
    ap.add_argument("dir")
    ap.add_argument("--events-days", type=float, default=365.0)
    ap.add_argument("--rtol", type=float, default=1e-9)
    args = ap.parse_args(argv)
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    worst = 0.0
    bad = []
    for name, fn in _all(args.events_days).items():
        new = fn()
        path = root / f"{name}.npz"
        if args.action == "save":
            np.savez(path, **{k.replace("/", "__"): v for k, v in new.items()})
            print(f"saved {path} ({len(new)} arrays)")
            continue
        old = {k.replace("__", "/"): v for k, v in np.load(path, allow_pickle=False).items()}
        for k in sorted(set(old) | set(new)):
            if k not in old or k not in new:
                print(f"{name}: {k} only in {'after' if k in new else 'before'} (ignored)")
                continue
            d = _diff(old[k], new[k])
            if isinstance(d, str) or d > args.rtol:
                bad.append((name, k, d))
            else:
                worst = max(worst, d)
            if isinstance(d, str) or d > 0:
                print(f"{name}: {k}: {d if isinstance(d, str) else f'{d:.3e}'}")
    if args.action == "compare":
        print(f"largest relative difference within tolerance: {worst:.3e}")
        for name, k, d in bad:
            print(f"FAIL {name}: {k}: {d}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
