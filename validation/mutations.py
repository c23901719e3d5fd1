"""Mutation suite of the CI gate: does ``roharness gate`` catch known faults?

Each mutation patches the code in a known, wrong way (monkeypatching module attributes of
``synth`` or ``retrieval``: nothing on disk changes) and runs the gate against it in a
fresh Python process, so no mutation leaks into another or into the caller. A mutation is
*caught* when the gate fails (at least one check leaves its band). A gate that lets a
mutation through has a blind spot: add the check that would catch it.

``noop`` is the control: the unmutated code in the same subprocess machinery; it must pass.
It always runs with the suite (:func:`run_mutations`): a gate that already fails unmutated
catches nothing.

Command line: ``roharness gate --mutations [--mutation NAME ...] [--json]``; one process:
``python -m validation.mutations NAME [--thresholds FILE]`` prints the gate's JSON result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from retrieval.errors import RoharnessError

#: At most this many mutation processes run at once (the gate is single-process).
MAX_PARALLEL = 2


@dataclass(frozen=True)
class Mutation:
    """A known fault: ``apply()`` patches the current process."""

    name: str
    description: str
    apply: Callable[[], None]
    control: bool = False  #: the unmutated control (must NOT be caught)


def _patch(module, name, new):
    """Replace ``module.name`` (which must exist: a renamed hook is an error, not a no-op)."""
    if not hasattr(module, name):
        raise RoharnessError(f"mutation hook {module.__name__}.{name} does not exist; "
                             "update validation/mutations.py")
    setattr(module, name, new)


def _patch_if_present(module, name, new):
    if hasattr(module, name):
        setattr(module, name, new)


# --------------------------------------------------------------------------- mutations
def _noop():
    pass


def _thermal_sigma_x2():
    import synth.error_sources as es
    real = es.thermal_sigma_hz
    _patch(es, "thermal_sigma_hz", lambda *a, **k: 2.0 * real(*a, **k))


def _ephemeris_off():
    import synth.error_sources as es
    _patch(es, "_ephemeris_states", lambda cur, cfg, g: dict(cur))


def _oscillator_noise_half():
    import synth.error_sources as es
    real = es._oscillator_means
    _patch(es, "_oscillator_means", lambda *a, **k: 0.5 * real(*a, **k))


def _wrap_retrieval_output(transform):
    """Apply ``transform(profile) -> profile`` to what the built-in retrieval returns, at
    every place the judge calls it (not inside the retrieval: the drift correction's own
    internal inversions are left alone)."""
    import retrieval.electron_density as ed
    import validation.roundtrip as rt
    real = ed.invert_observation

    def mutated(*a, **k):
        return transform(real(*a, **k))

    _patch(ed, "invert_observation", mutated)
    _patch_if_present(rt, "invert_observation", mutated)  # imported by name there


def _ne_plus_1pct():
    _wrap_retrieval_output(lambda p: p.assign(electron_density=p.electron_density * 1.01))


def _altitude_plus_300m():
    _wrap_retrieval_output(lambda p: p.assign_coords(altitude=p.altitude + 300.0))


def _twoway_one_ray():
    import retrieval.bending as bending
    real = bending._one_way_residual
    _patch(bending, "_one_way_residual",
           lambda obs, residual, band, two_way: real(obs, residual, band, "one_ray"))


def _abel_top_exponential():
    """Whatever top the retrieval chose (the data-chosen ``auto`` keeps the faint tops of
    the gate's scenarios in vacuum), the inversion adds an exponential tail, with the
    chosen scale height when there is one and its own fit otherwise; every other argument
    (scheme, top samples) passes through. Both entry points are patched, in the module and
    where electron_density imported them by name."""
    import retrieval.abel as abel
    import retrieval.electron_density as ed

    def force(real):
        def mutated(a, alpha, *, top="zero", **kw):
            return real(a, alpha, top="exponential", **kw)
        return mutated

    for name in ("inverse_abel", "inverse_abel_with_error"):
        mutated = force(getattr(abel, name))
        _patch(abel, name, mutated)
        _patch(ed, name, mutated)


def _mva_order_swapped():
    import dataclasses

    import retrieval.reconnection as rec
    real = rec.minimum_variance

    def mutated(*a, **k):  # eigh's ascending order taken as descending: L <-> N
        res = real(*a, **k)
        return dataclasses.replace(res, eigenvectors=res.eigenvectors[..., ::-1, :],
                                   eigenvalues=res.eigenvalues[..., ::-1])

    _patch(rec, "minimum_variance", mutated)


def _no_light_time():
    import numpy as np

    import retrieval.occultation as occ
    from retrieval import spice
    from retrieval.geometry import _far_ends

    def link_states(tx, rx, et):  # both ends at the same instant: light time dropped
        ets = np.atleast_1d(np.asarray(et, dtype=float))
        tx_far, rx_far = _far_ends(tx, rx, ets[0])
        st_tx, _ = spice.states(tx, ets, "MARS")
        st_rx, _ = spice.states(rx, ets, "MARS")
        return dict(tx_position=st_tx[:, :3], tx_velocity=st_tx[:, 3:],
                    rx_position=st_rx[:, :3], rx_velocity=st_rx[:, 3:], et_tx=ets, et_rx=ets,
                    reference="tx" if rx_far else "rx")

    _patch(occ, "link_states", link_states)  # the event finder's copy only

    def link_geometry(tx, rx, et, near):  # the Mars-side search's two-call geometry too
        if not near:
            return real_geometry(tx, rx, et, near)
        ets = np.atleast_1d(np.asarray(et, dtype=float))
        st_rx, _ = spice.states(rx, ets, "MARS")
        st_tx, _ = spice.states(tx, ets, "MARS")
        point, radius, s = occ.tangent_point(st_tx[:, :3], st_rx[:, :3])
        return dict(altitude_m=radius - occ.K.MARS_MEAN_RADIUS_M, s=s, point=point,
                    rate_m_s=occ._radial_rate(point, s, st_tx[:, 3:], st_rx[:, 3:]),
                    tx_position=st_tx[:, :3], tx_velocity=st_tx[:, 3:],
                    rx_position=st_rx[:, :3], rx_velocity=st_rx[:, 3:])

    real_geometry = occ._link_geometry
    _patch(occ, "_link_geometry", link_geometry)


#: Every mutation, by name (the default suite is :data:`DEFAULT`).
MUTATIONS: dict[str, Mutation] = {m.name: m for m in (
    Mutation("noop", "control: nothing patched (must pass)", _noop, control=True),
    Mutation("thermal-sigma-x2", "thermal noise sigma doubled "
             "(synth.error_sources.thermal_sigma_hz)", _thermal_sigma_x2),
    Mutation("ephemeris-off", "ephemeris error source switched off "
             "(synth.error_sources._ephemeris_states returns the states unchanged)",
             _ephemeris_off),
    Mutation("oscillator-noise-x0.5", "oscillator noise halved "
             "(synth.error_sources._oscillator_means)", _oscillator_noise_half),
    Mutation("ne-plus-1pct", "retrieved N_e 1 % high (output of "
             "retrieval.electron_density.invert_observation)", _ne_plus_1pct),
    Mutation("altitude-plus-0.3km", "retrieved altitudes 0.3 km high (output of "
             "retrieval.electron_density.invert_observation)", _altitude_plus_300m),
    Mutation("twoway-one-ray", "two-way conversion replaced by the one-ray relations "
             "(retrieval.bending: two_way='one_ray' forced)", _twoway_one_ray),
    Mutation("abel-top-exponential", "Abel top treatment changed: exponential tail above "
             "the top sample whatever top was chosen (retrieval.abel.inverse_abel, "
             "inverse_abel_with_error)",
             _abel_top_exponential),
    Mutation("mva-order-swapped", "MVA eigenvector order swapped: ascending taken as "
             "descending, L <-> N (retrieval.mva via retrieval.reconnection)",
             _mva_order_swapped),
    Mutation("events-no-light-time", "event finder's light time dropped "
             "(retrieval.occultation.link_states at one instant)", _no_light_time),
)}

#: The default suite: every mutation but the control.
DEFAULT = tuple(n for n, m in MUTATIONS.items() if not m.control)


def check_names(names) -> list[str]:
    """Checked mutation names (default: :data:`DEFAULT`)."""
    if not names:
        return list(DEFAULT)
    unknown = [n for n in names if n not in MUTATIONS]
    if unknown:
        raise RoharnessError(f"unknown mutation '{unknown[0]}'; known mutations: "
                             f"{', '.join(MUTATIONS)}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- running
def run_mutation(name: str, thresholds=None, timeout_s: float = 900.0) -> dict:
    """Run the gate against one mutation in a fresh process; return its row.

    Returns
    -------
    dict
        ``name``, ``description``, ``control``, ``caught`` (the gate failed), ``ok``
        (caught, or for the control: not caught), ``failed_checks`` (names of the checks
        that left their band), ``n_checks``, ``messages`` (first few failure messages),
        ``error`` (the process itself failed: no verdict), ``elapsed_s``.
    """
    mut = MUTATIONS[name]
    cmd = [sys.executable, "-m", "validation.mutations", name]
    if thresholds is not None:
        cmd += ["--thresholds", os.fspath(thresholds)]
    t0 = time.perf_counter()
    row = dict(name=name, description=mut.description, control=mut.control, caught=False,
               ok=False, failed_checks=[], n_checks=0, messages=[], error=None)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        row.update(error=f"the gate did not finish within {timeout_s:.0f} s",
                   elapsed_s=time.perf_counter() - t0)
        return row
    row["elapsed_s"] = time.perf_counter() - t0
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        row["error"] = f"the mutation process exited with status {proc.returncode}: {tail}"
        return row
    failed = [c for c in result["checks"] if not c["passed"]]
    row.update(caught=not result["passed"], failed_checks=[c["name"] for c in failed],
               n_checks=len(result["checks"]),
               messages=list(dict.fromkeys(c["message"] for c in failed))[:3])
    row["ok"] = row["caught"] != mut.control
    return row


def run_mutations(names=None, thresholds=None, jobs: int = MAX_PARALLEL, log=None) -> dict:
    """Run the gate against each mutation (at most ``jobs`` <= 2 processes at once).

    The control ``noop`` always runs too: if the unmutated gate already fails (recorded
    values out of date: run ``gate --update``), the suite fails, and a mutation counts as
    caught only by checks the control passes.

    Returns
    -------
    dict
        ``mutations`` (rows of :func:`run_mutation`, in the order given, the control last
        unless named), ``passed`` (every mutation caught and the control not),
        ``elapsed_s``.
    """
    names = check_names(names)
    if "noop" not in names:  # the control: a check the unmutated gate already fails
        names.append("noop")  # catches nothing
    t0 = time.perf_counter()
    jobs = max(1, min(int(jobs), MAX_PARALLEL))

    def one(name):
        if log:
            log(f"mutation {name}: running the gate")
        row = run_mutation(name, thresholds)
        if log:
            verdict = ("ERROR" if row["error"] else "caught" if row["caught"] else "NOT caught")
            log(f"mutation {name}: {verdict} ({len(row['failed_checks'])} checks failed, "
                f"{row['elapsed_s']:.0f} s)")
        return row

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(one, names))
    control = next(r for r in rows if r["name"] == "noop")
    already = set(control["failed_checks"])
    if already:
        for r in rows:
            if r["control"] or r["error"]:
                continue
            r["failed_checks"] = [c for c in r["failed_checks"] if c not in already]
            r["caught"] = bool(r["failed_checks"])
            r["ok"] = r["caught"]
    return dict(mutations=rows, passed=all(r["ok"] for r in rows),
                elapsed_s=time.perf_counter() - t0)


def format_mutations(result: dict, max_names: int = 4) -> str:
    """Human table: mutation, caught, how many and which checks caught it."""
    head = ("mutation", "caught", "failed checks", "time")
    lines = [head]
    for r in result["mutations"]:
        if r["error"]:
            verdict = "ERROR"
        elif r["control"]:  # the control must NOT be caught
            verdict = "YES (control: the gate fails unmutated)" if r["caught"] else \
                "no (control)"
        else:
            verdict = "yes" if r["caught"] else "NO"
        names = r["failed_checks"][:max_names]
        more = len(r["failed_checks"]) - len(names)
        which = ", ".join(names) + (f" (+{more} more)" if more > 0 else "")
        which = f"{len(r['failed_checks'])}/{r['n_checks']}: {which}" if names else (
            r["error"] or f"0/{r['n_checks']}")
        lines.append((r["name"], verdict, which, f"{r['elapsed_s']:.0f} s"))
    widths = [max(len(row[j]) for row in lines) for j in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    bad = [r["name"] for r in result["mutations"] if not r["ok"]]
    n = len(result["mutations"])
    out.append(f"gate --mutations: {n - len(bad)}/{n} as expected in "
               f"{result['elapsed_s']:.0f} s: "
               + ("PASSED" if not bad else f"FAILED ({', '.join(bad)})"))
    return "\n".join(out)


def main(argv=None) -> int:
    """One mutation process: apply the mutation, run the gate, print its JSON result."""
    import argparse

    from validation.cli import print_json
    from validation.gate import load_thresholds, run_gate

    p = argparse.ArgumentParser(prog="python -m validation.mutations")
    p.add_argument("name", choices=list(MUTATIONS))
    p.add_argument("--thresholds")
    args = p.parse_args(argv)
    checks = load_thresholds(args.thresholds)
    MUTATIONS[args.name].apply()
    result = run_gate(checks)
    result["mutation"] = args.name
    print_json(result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
