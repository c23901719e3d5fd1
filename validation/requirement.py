r"""The inverse question of a budget: what stability, C/N0 or sample rate does a target need?

A mission designer fixes a target ("M2 peak density within 5 % and its altitude within
2 km in 90 % of the profiles") and asks for the receiver (or link) parameter at which it is
met. :func:`find_requirement` answers with a bracketing search over Monte Carlo budgets:

1. Every evaluation at a value x of the parameter runs the scenario's physical error
   sources *together* (the budget's ``all`` set, :func:`validation.budget.chunk_task`) for
   ``realisations`` draws, retrieves each with the scenario's chain and counts the
   realisations that meet every target (a failed retrieval does not). The draws use the
   same seeds at every x (common random numbers), so the success curve is smooth in x.
2. A coarse scan over the parameter's range (log-spaced for a scale, linear for C/N0)
   finds where the success fraction crosses the requested ``fraction``; bisection (in
   the scan's spacing) then narrows that bracket.
3. A logistic curve p(x) = 1 / (1 + exp(-(a + b u))), u = log10 x or x, is fitted by
   maximum likelihood to all (x, successes, trials); the threshold is where p = fraction.
   Its 95 % confidence interval comes from a parametric bootstrap of the binomial counts
   (the fit repeated on resampled counts; percentile interval).

Seeds, workers and checkpoints behave as in the budget: every evaluation is an engine
task checkpointed under ``out_dir/checkpoint/``; rerunning resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    import os

    from synth.scenario import Scenario
    from validation.plugins import Retrieval

#: Parameters that can be varied: name -> (section, key, spacing, default range, unit,
#: "better" direction: +1 when a larger value is better). Ranges are physical: a receiver
#: ADEV scale from a USO-class 1e-3 of the preset to 10x worse; C/N0 of a deep-space UHF
#: proximity link (20-70 dB-Hz); 0.05-50 Hz sampling.
PARAMETERS = {
    "receiver_adev_scale": ("oscillator", "receiver_adev_scale", "log", (1e-3, 10.0), "", -1),
    "cn0_dbhz": ("receiver", "cn0_dbhz", "linear", (20.0, 70.0), "dB-Hz", +1),
    "rate_hz": ("sampling", "rate_hz", "log", (0.05, 50.0), "Hz", +1),
}

#: Target keys (as in the round trip) -> the budget's per-realisation error variable.
TARGET_KEYS = {
    "m2_peak_density_rel": "m2_peak_density_rel_error",
    "m2_peak_altitude_km": "m2_peak_altitude_error_km",
    "ne150_rel": "ne150_rel_error",
    "tn_k": "neutral_temperature_error_k",
    "tec_rel": "tec_rel_error",
}


def parse_targets(text: str) -> dict[str, float]:
    """``KEY=VALUE[,KEY=VALUE]`` -> {budget error variable: bound}; one sentence if bad."""
    targets = {}
    for item in [t.strip() for t in str(text).split(",") if t.strip()]:
        key, eq, value = item.partition("=")
        key = key.strip()
        full = {v: v for v in TARGET_KEYS.values()}
        name = TARGET_KEYS.get(key) or full.get(key)
        if not eq or name is None:
            raise RoharnessError(f"target '{item}' is not KEY=VALUE with KEY one of "
                                 f"{', '.join(TARGET_KEYS)}")
        try:
            bound = float(value)
        except ValueError:
            bound = float("nan")
        if not (math.isfinite(bound) and bound > 0):
            raise RoharnessError(f"target '{item}': the value must be a positive number")
        targets[name] = bound
    if not targets:
        raise RoharnessError("no target given; expected KEY=VALUE[,KEY=VALUE] with KEY one of "
                             f"{', '.join(TARGET_KEYS)}")
    return targets


def _variant(scn, param: str, value: float):
    from synth.scenario import Scenario

    section, key, *_ = PARAMETERS[param]
    sections = json.loads(json.dumps(scn.sections))
    sections[section][key] = float(value)
    return Scenario(name=scn.name, source=scn.source, text=scn.text, sections=sections)


def evaluate_task(scn, param: str, value: float, members: tuple, n_real: int, root_seed: int,
                  grid_m, retrieval=None) -> dict:
    """Errors of ``n_real`` realisations of every physical source together at one value
    (against the truth), and the clean observation's (``floor_*``)."""
    from validation.budget import ALL, base_task, chunk_task

    v = _variant(scn, param, value)
    base = base_task(v, members, grid_m, retrieval)
    if "error" in base:
        return dict(error=base["error"])
    res = chunk_task(base, v, ALL, members, 0, tuple(range(n_real)), root_seed, grid_m,
                     False, retrieval)
    out = {k: res[k] for k in ("status", "message", *TARGET_KEYS.values())}
    out.update({f"floor_{k}": base["floor"][k] for k in TARGET_KEYS.values()})
    return out


def _successes(result: dict, targets: dict) -> tuple[int, int]:
    n = len(result["status"])
    ok = np.asarray(result["status"]) == 0
    for name, bound in targets.items():
        with np.errstate(invalid="ignore"):
            ok &= np.abs(np.asarray(result[name], float)) <= bound
    return int(ok.sum()), n


def _u(x, spacing):
    return np.log10(x) if spacing == "log" else np.asarray(x, float)


def _x(u, spacing):
    return 10.0 ** u if spacing == "log" else u


def fit_logistic(u, k, n):
    """Maximum-likelihood logistic fit p = 1/(1+exp(-(a + b u))) to k successes of n.

    Returns ``(a, b)``; ``b`` is NaN when the data do not constrain a slope (all points
    at 0 % or all at 100 %).
    """
    from scipy.optimize import minimize

    u, k, n = (np.asarray(v, float) for v in (u, k, n))
    if np.all(k == 0) or np.all(k == n):
        return float("nan"), float("nan")
    u0, us = u.mean(), u.std() or 1.0
    z = (u - u0) / us

    def nll(p):
        eta = p[0] + p[1] * z
        return float(np.sum(n * np.logaddexp(0.0, eta) - k * eta)) + 1e-6 * p[1] ** 2

    best = minimize(nll, x0=[0.0, 0.0], method="Nelder-Mead",
                    options=dict(xatol=1e-8, fatol=1e-10, maxiter=4000))
    a_z, b_z = best.x
    return float(a_z - b_z * u0 / us), float(b_z / us)


def _threshold(a, b, fraction):
    if not (np.isfinite(a) and np.isfinite(b)) or b == 0:
        return float("nan")
    return (math.log(fraction / (1.0 - fraction)) - a) / b


def _checked_request(param: str, targets, fraction: float, realisations: int) -> dict:
    """Check :func:`find_requirement`'s parameter, fraction and realisations; return the
    targets as a dict (parsed from ``"KEY=VALUE,..."``)."""
    if param not in PARAMETERS:
        raise RoharnessError(f"unknown parameter '{param}' to vary; known: "
                             f"{', '.join(PARAMETERS)}")
    if isinstance(targets, str):
        targets = parse_targets(targets)
    if not 0.0 < float(fraction) < 1.0:
        raise RoharnessError(f"--fraction must lie strictly between 0 and 1, got {fraction}")
    if realisations < 5:
        raise RoharnessError(f"at least 5 realisations per value are needed, got "
                             f"{realisations}")
    return targets


def _varied_sources(scn) -> tuple:
    """The error sources the realisations draw: every physical source of the scenario."""
    from validation.budget import ALL, _label_sets, resolve_sources

    names, _ = resolve_sources(scn)
    sets = _label_sets(names)
    members = sets.get(ALL) or tuple(n for n in names if n != "parrott")
    if not members:
        raise RoharnessError(f"scenario {scn.name} has no physical error source to vary")
    return members


def _run_hash(scn, param, members, realisations, root_seed, ret) -> str:
    """The checkpoint directory's name: what the results depend on."""
    return hashlib.sha256(json.dumps(dict(
        s=scn.sections, p=param, m=list(members), n=realisations, seed=root_seed,
        r=[ret.kind, ret.target]), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _bisect(a, b, bisections, spacing, fraction, run, frac) -> None:
    """Halve the bracket ``(a, b)`` of the crossing ``bisections`` times (midpoints in the
    parameter's spacing); ``run([value])`` evaluates a value, ``frac(value)`` its success
    fraction."""
    for _ in range(bisections):
        mid = float(f"{_x(0.5 * (_u(a, spacing) + _u(b, spacing)), spacing):.12g}")
        run([mid])
        if (frac(mid) >= fraction) == (frac(a) >= fraction):
            a = mid
        else:
            b = mid


def _checked_range(scn, param: str, value_range) -> tuple[float, float]:
    """The search range of ``param`` (default its physical range in :data:`PARAMETERS`),
    checked, and that the parameter changes something in this scenario."""
    _, _, spacing, default_range, _, _ = PARAMETERS[param]
    lo, hi = value_range if value_range is not None else default_range
    if not (lo < hi) or (spacing == "log" and lo <= 0):
        raise RoharnessError(f"search range {lo}..{hi} for {param} is empty or not positive")
    if param == "receiver_adev_scale" and not scn["oscillator"]["enabled"]:
        raise RoharnessError(f"scenario {scn.name} has [oscillator] enabled = false: "
                             "receiver_adev_scale changes nothing")
    return lo, hi


def _scan_status(meets: list[bool]) -> str:
    """Whether the scan brackets a crossing (``"found"``) or the target is met nowhere or
    everywhere."""
    status = "found"
    if not any(meets):
        status = "never met in the range"
    elif all(meets):
        status = "met over the whole range"
    return status


def _bootstrap_ci(u, k_n, a, b, fraction, root_seed, bootstrap, spacing) -> tuple:
    """95 % interval of the threshold: parametric bootstrap of the logistic fit (NaN when
    fewer than half the resamples give a threshold)."""
    ci = (float("nan"), float("nan"))
    rng = np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=(0xB007,)))
    p_fit = 1.0 / (1.0 + np.exp(-(a + b * u)))
    boot = []
    for _ in range(bootstrap):
        kb = rng.binomial(k_n[:, 1], p_fit)
        ab = fit_logistic(u, kb, k_n[:, 1])
        tb = _threshold(*ab, fraction)
        if np.isfinite(tb):
            boot.append(tb)
    if len(boot) >= 0.5 * bootstrap:
        q = np.percentile(boot, [2.5, 97.5])
        ci = (float(_x(q[0], spacing)), float(_x(q[1], spacing)))
    return ci


def _curve_rows(values, k_n, results, targets) -> list[dict]:
    """Per evaluated value: successes, trials, fraction, median and 90th percentile of each
    targeted |error|."""
    curve = []
    for v, (s, n) in zip(values, k_n):
        row = dict(value=float(v), successes=int(s), trials=int(n), fraction=s / n)
        r = results[float(v)]
        for name in targets:
            e = np.abs(np.asarray(r[name], float))
            e = e[np.isfinite(e)]
            row[f"{name}_median"] = float(np.median(e)) if e.size else float("nan")
            row[f"{name}_p90"] = float(np.percentile(e, 90)) if e.size else float("nan")
        curve.append(row)
    return curve


def _fit_threshold(results, targets, spacing, fraction, status, root_seed, bootstrap):
    """The logistic fit of success against the (log) value, the threshold (in the fit's
    variable; NaN unless ``status`` is ``"found"``), its 95 % interval and the curve."""
    values = np.array(sorted(results))
    k_n = np.array([_successes(results[v], targets) for v in values])
    u = _u(values, spacing)
    a, b = fit_logistic(u, k_n[:, 0], k_n[:, 1])
    thr_u = _threshold(a, b, fraction) if status == "found" else float("nan")
    ci = (float("nan"), float("nan"))
    if np.isfinite(thr_u):
        ci = _bootstrap_ci(u, k_n, a, b, fraction, root_seed, bootstrap, spacing)
    return a, b, thr_u, ci, _curve_rows(values, k_n, results, targets)


def find_requirement(scenario: Scenario | str | os.PathLike, param: str,
                     targets: dict[str, float] | str, *, fraction: float = 0.9,
                     realisations: int = 40, value_range: tuple[float, float] | None = None,
                     scan_points: int = 6, bisections: int = 3, seed: int | None = None,
                     scheduler: str | None = None, workers: int | None = None,
                     out_dir: str | os.PathLike | None = None, progress: bool | None = None,
                     retrieval: str | Retrieval | None = None, bootstrap: int = 400) -> dict:
    """Find the value of ``param`` at which ``fraction`` of realisations meet ``targets``.

    Parameters
    ----------
    scenario : Scenario, str or path
    param : str
        One of :data:`PARAMETERS`.
    targets : dict or str
        ``{error variable: bound}`` or ``"KEY=VALUE,..."`` (:func:`parse_targets`).
    fraction : float
        Required fraction of realisations meeting every target (0 < fraction < 1).
    realisations : int
        Monte Carlo draws per evaluated value.
    value_range : (low, high), optional
        Search range (default: the parameter's physical range in :data:`PARAMETERS`).

    Returns
    -------
    dict
        ``threshold`` (NaN when the target is met nowhere or everywhere in the range, with
        ``status`` saying which), ``ci95``, ``curve`` (per evaluated value: ``value``,
        ``successes``, ``trials``, ``fraction``, and the median and 90th percentile of each
        targeted |error|), the logistic fit, and provenance.
    """
    from synth.scenario import Scenario, load_scenario
    from validation.budget import altitude_grid_m
    from validation.engine import Engine
    from validation.plugins import parse_retrieval, validate_retrieval

    t0 = time.perf_counter()
    targets = _checked_request(param, targets, fraction, realisations)
    ret = parse_retrieval(retrieval)
    validate_retrieval(ret)
    scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    section, key, spacing, default_range, unit, better = PARAMETERS[param]
    lo, hi = _checked_range(scn, param, value_range)
    members = _varied_sources(scn)
    root_seed = int(scn.seed if seed is None else seed)
    grid_m = altitude_grid_m(scn)
    run_hash = _run_hash(scn, param, members, realisations, root_seed, ret)
    ckpt = Path(out_dir) / "checkpoint" / run_hash if out_dir is not None else None
    results: dict[float, dict] = {}
    from validation.limits import check_requirement  # refuses (one sentence) runs of hours
    check_requirement(scan_points + bisections, int(realisations), workers, scheduler,
                      scan_points)

    def run(values, eng):
        values = [float(f"{v:.12g}") for v in values]  # the key and the value agree
        todo = {f"x={v:.12g}": (scn, param, v, members, int(realisations), root_seed,
                                grid_m, ret) for v in values if v not in results}
        if not todo:
            return
        out = eng.map(evaluate_task, todo, ckpt, label=f"requirement: {param}",
                      progress=progress)
        for k, r in out.items():
            if "error" in r:
                raise RoharnessError(f"the forward model failed at {param} = "
                                     f"{k[2:]}: {r['error']}")
            results[todo[k][2]] = r

    def frac(v):
        s, n = _successes(results[float(v)], targets)
        return s / n

    with Engine(scheduler, workers) as eng:
        u_lo, u_hi = _u(lo, spacing), _u(hi, spacing)
        scan = [float(_x(u, spacing)) for u in np.linspace(u_lo, u_hi, scan_points)]
        run(scan, eng)
        ordered = sorted(results)
        meets = [frac(v) >= fraction for v in ordered]
        status = _scan_status(meets)
        if status == "found":
            # the crossing nearest the "worse" end of the range (a larger value is worse
            # when better < 0): the last value that still meets, and the next that does not
            pairs = [(a, b) for a, b, ma, mb in zip(ordered, ordered[1:], meets, meets[1:])
                     if ma != mb]
            a, b = pairs[-1] if better < 0 else pairs[0]
            _bisect(a, b, bisections, spacing, fraction, lambda v: run(v, eng), frac)
        engine_description = eng.description
    a, b, thr_u, ci, curve = _fit_threshold(results, targets, spacing, fraction, status,
                                            root_seed, bootstrap)
    summary = dict(
        scenario=scn.name, parameter=param, section=section, key=key, unit=unit,
        targets=targets, fraction=float(fraction), realisations=int(realisations),
        sources=list(members), retrieval=ret.spec, seed=root_seed, status=status,
        threshold=float(_x(thr_u, spacing)) if np.isfinite(thr_u) else float("nan"),
        ci95=list(ci), logistic=dict(a=a, b=b, variable=f"log10({param})"
                                     if spacing == "log" else param),
        curve=curve, engine=engine_description, elapsed_s=time.perf_counter() - t0)
    if out_dir is not None:
        write_requirement(summary, out_dir)
    return summary


def write_requirement(summary: dict, out_dir) -> None:
    """``summary.json``, ``requirement.png`` and ``report.html`` into ``out_dir``."""
    from retrieval.fileio import write_bytes_atomic, write_text_atomic
    from validation.cli import _clean
    from validation.report import figure, html_report, table_html

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "summary.json", json.dumps(_clean(summary), indent=2) + "\n")
    fig = _curve_figure(summary, figure())
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(out / "requirement.png", buf.getvalue())
    s = summary
    unit = f" {s['unit']}" if s["unit"] else ""
    if s["status"] == "found":
        verdict = (f"The target is met by {100 * s['fraction']:.0f} % of the realisations at "
                   f"{s['parameter']} = {s['threshold']:.3g}{unit} (95 % interval "
                   f"{s['ci95'][0]:.3g}-{s['ci95'][1]:.3g}{unit}).")
    else:
        verdict = f"The target is {s['status']} ({s['parameter']} searched as shown)."
    targets = ", ".join(f"|{k}| &le; {v:g}" for k, v in s["targets"].items())
    rows = [[r["value"], r["successes"], r["trials"], r["fraction"],
             *[r[f"{k}_median"] for k in s["targets"]]] for r in s["curve"]]
    cols = [s["parameter"] + unit, "met", "of", "fraction",
            *[f"median |{k}|" for k in s["targets"]]]
    html_report(f"Requirement: {s['parameter']} for {s['scenario']}", [
        ("Answer", f"<p>{verdict}</p><p>Target: {targets} in at least "
                   f"{100 * s['fraction']:.0f} % of realisations; every physical error source "
                   f"together ({', '.join(s['sources'])}), {s['realisations']} realisations "
                   f"per value, retrieval {s['retrieval']}.</p>"),
        ("Success fraction and errors against the parameter", fig),
        ("Evaluated values", table_html(rows, cols)),
    ], out / "report.html", meta=f"scenario {s['scenario']}, seed {s['seed']}")


def _curve_figure(s: dict, fig):
    values = np.array([r["value"] for r in s["curve"]])
    frac = np.array([r["fraction"] for r in s["curve"]])
    ax = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    log = PARAMETERS[s["parameter"]][2] == "log"
    ax.plot(values, frac, "o", label="Monte Carlo")
    a, b = s["logistic"]["a"], s["logistic"]["b"]
    if np.isfinite(a) and np.isfinite(b):
        grid = np.geomspace(values.min(), values.max(), 200) if log else \
            np.linspace(values.min(), values.max(), 200)
        ug = np.log10(grid) if log else grid
        ax.plot(grid, 1 / (1 + np.exp(-(a + b * ug))), "-", label="logistic fit")
    ax.axhline(s["fraction"], color="k", lw=0.8, ls="--", label="required fraction")
    if np.isfinite(s["threshold"]):
        ax.axvline(s["threshold"], color="C3", lw=1, label="threshold")
        lo, hi = s["ci95"]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.axvspan(lo, hi, color="C3", alpha=0.15, label="95 % interval")
    ax.set_xlabel(f"{s['parameter']} {('[' + s['unit'] + ']') if s['unit'] else ''}")
    ax.set_ylabel("fraction meeting every target")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, loc="best")
    for i, (name, bound) in enumerate(s["targets"].items()):
        med = np.array([r[f"{name}_median"] for r in s["curve"]])
        p90 = np.array([r[f"{name}_p90"] for r in s["curve"]])
        ax2.plot(values, med / bound, "o-", color=f"C{i}", label=f"{name}: median")
        ax2.plot(values, p90 / bound, "s--", color=f"C{i}", alpha=0.6,
                 label=f"{name}: 90th percentile")
    ax2.axhline(1.0, color="k", lw=0.8, ls="--")
    ax2.set_yscale("log")
    ax2.set_xlabel(ax.get_xlabel())
    ax2.set_ylabel("|error| / target")
    ax2.legend(fontsize=7, loc="best")
    if log:
        ax.set_xscale("log")
        ax2.set_xscale("log")
    return fig
