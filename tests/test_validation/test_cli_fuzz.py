"""Hostile-user fuzzing of the command line: random argument lists for every command.

Valid flags with absurd values (NaN, inf, negative, 1e308, 20-digit integers, dates outside
the ephemeris), unknown flags, wrong types, random strings, and paths that are files,
directories, missing, unwritable (``/proc``) or not what the flag expects, are run
in-process through :func:`validation.cli.main`. The contract (README, STYLE.md): never an
internal error; a failure is exit status 2 with exactly one line on stderr.

Heavy work is prevented *after* the argument checks: the calls where a command's real work
begins (starting the task engine, the forward model, the event scan, the gate's
computations) raise :class:`Reached`, a ``BaseException`` that ``main`` does not catch, so a
case that gets there counts as "arguments accepted". Everything before those calls (parsing,
scenario/campaign/threshold files, kernels, times, output paths, estimates and limits) runs
for real. Each hypothesis example runs :data:`CASES_PER_EXAMPLE` argument lists; with 13
commands x 2 kinds that is 520 cases in the ``ci`` profile and 10,400 in ``slow``.
"""

from __future__ import annotations

import argparse
import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from validation.cli import build_parser, main

#: Argument lists run per hypothesis example (see the module docstring for the totals).
CASES_PER_EXAMPLE = 2


class Reached(BaseException):
    """The command got past its argument checks to its heavy work."""


def _reached(*args, **kwargs):
    raise Reached


#: (module, attribute) where heavy work begins; patched to raise Reached.
HEAVY = (
    ("validation.engine.Engine", "__enter__"),     # budget, requirement, campaign
    ("validation.roundtrip", "simulate"),          # roundtrip
    ("synth.observe", "simulate"),                 # export
    ("validation.sheet", "simulate_sheet_crossing"),
    ("validation.events", "find_events"),          # events
    ("validation.gate", "run_gate"),
    ("validation.gate", "update_thresholds"),
    ("validation.mutations", "run_mutations"),
)


def _subcommands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for name, p in sub.choices.items():
        opts, positional = [], []
        for a in p._actions:
            if isinstance(a, argparse._HelpAction):
                continue
            if a.option_strings:
                opts.append((a.option_strings[-1], a.nargs))
            else:
                positional.append(a.dest)
        out[name] = (opts, positional)
    return out


COMMANDS = _subcommands()


@pytest.fixture(scope="module")
def area(tmp_path_factory):
    """Files and directories the random paths point at."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "dir").mkdir()
    (root / "junk.txt").write_text("not a table, a kernel or a scenario\n")
    (root / "latin1.toml").write_bytes(b"name = \"caf\xe9\"\n")
    (root / "peaks.csv").write_text("sza_deg,m2_peak_density_m3,m2_peak_altitude_km\n"
                                    "30,1.1e11,130\n40,1.0e11,131\n50,0.9e11,133\n")
    (root / "empty.nc").write_bytes(b"")
    return root


def _paths(root: Path):
    return st.sampled_from([
        str(root / "dir"), str(root / "junk.txt"), str(root / "latin1.toml"),
        str(root / "peaks.csv"), str(root / "empty.nc"), str(root / "missing" / "x"),
        str(root / "out.nc"), str(root / "out.csv"), str(root / "newdir"),
        "/proc/x", "/proc/x.nc", "/etc/passwd", "/etc/hostname", "", ".", "-",
    ])


ABSURD = st.sampled_from([
    "nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e308", "-1e308", "1e-320",
    "99999999999999999999", "-99999999999999999999", "1000000", "2.5", "0x10", "1_000",
    "2000-01-01", "1000-01-01", "3000-01-01", "2023-02-30", "2023-01-01T25:00:00",
    "2023-01-01T00:00:00Z", "mex", "tgo", "earth", "dss-14", "-399", "thermal,bogus", ",",
    "a=b", "m2_peak_density_rel=-1", "m2_peak_density_rel=nan", "cn0_dbhz", "1,0", "0,1e9",
    "builtin", "cmd:", "os:system", "no_such_module:f", "tcp://127.0.0.1:1", "foo",
    "host:99999", "mex-tgo-uhf", "mars-2024-11-07", "mex-tgo-180d", "none", "f107",
])


def _values(root):
    return st.one_of(ABSURD, _paths(root), st.text(max_size=12),
                     st.integers(-10**20, 10**20).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


def _flag_args(draw, command, root, junk: bool):
    opts, positional = COMMANDS[command]
    values = _values(root)
    argv = [command]
    for _dest in positional:
        argv.append(draw(st.one_of(_paths(root), values)))
    for flag, nargs in draw(st.lists(st.sampled_from(opts), max_size=5)) if opts else []:
        argv.append(flag)
        if nargs == 0:
            continue
        if nargs in ("+", "*"):
            argv += draw(st.lists(values, min_size=1, max_size=3))
        else:
            argv.append(draw(values))
    if junk:
        extra = draw(st.lists(st.one_of(
            st.sampled_from(["--bogus", "-x", "--workers", "--seed", "--", "-o", "--json",
                             "--help-me", "-"]), st.text(max_size=10), values), max_size=4))
        pos = draw(st.integers(1, len(argv)))
        argv[pos:pos] = extra
    return argv


@st.composite
def argument_lists(draw, command, root, junk):
    return [_flag_args(draw, command, root, junk) for _ in range(CASES_PER_EXAMPLE)]


def run_cli(argv):
    """(exit status or 'reached', stdout, stderr) of one in-process run."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = 0 if exc.code is None else exc.code
        except Reached:
            code = "reached"
    return code, out.getvalue(), err.getvalue()


def check_contract(argv, code, err):
    assert "internal error" not in err and "Traceback" not in err, (argv, err)
    assert code in (0, 2, "reached"), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("roharness: error: "), (argv, err)


@pytest.fixture(scope="module")
def heavy_prevented(area):
    with pytest.MonkeyPatch.context() as mp:
        for target, attr in HEAVY:
            mp.setattr(f"{target}.{attr}", _reached)
        cwd = os.getcwd()
        os.chdir(area)  # default output directories land in the fuzz area
        try:
            yield area
        finally:
            os.chdir(cwd)


@pytest.mark.parametrize("junk", [False, True], ids=["absurd-values", "junk"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_random_arguments_give_one_sentence(command, junk, heavy_prevented):
    root = heavy_prevented

    @given(argument_lists(command, root, junk))
    @example([[command, "--workers", "1000"]] * CASES_PER_EXAMPLE)
    @example([[command, "-o", "/etc/passwd"], [command, "-o", "/proc/x"]])
    @example([[command, "--scheduler", "foo"], [command, "--kernels", "/etc/hostname"]])
    @example([[command, "--start", "2000-01-01", "--stop", "2050-01-01"],
              [command, "--realisations", "10000000"]])
    def check(lists):
        for argv in lists:
            code, _, err = run_cli(argv)
            check_contract(argv, code, err)

    check()


# Pinned past failures (before -> after: internal error / runaway -> one sentence).
@pytest.mark.parametrize("argv, sentence", [
    (["budget", "--scheduler", "foo"], "is not a dask scheduler address"),
    (["budget", "-o", "/etc/passwd"], "is an existing file"),
    (["budget", "-o", "/proc/x"], "is not writable"),
    (["roundtrip", "-o", "/proc/x.nc"], "is not writable"),
    (["budget", "--realisations", "100000", "--occultations", "1000"],
     "pass --force to run it anyway"),
    (["budget", "--realisations", "10000000"], "1-100,000"),
    (["events", "--start", "2000-01-01", "--stop", "2050-01-01"], "pass --force"),
    (["events", "--kernels", "/etc/hostname"], "is not a SPICE kernel"),
    # found 2026-12 by a fresh draw: a million occultations' scenarios were built before the
    # budget's limit was checked (the CI run was killed for memory at 24 GB)
    # (and with --force the same built them anyway: a hard bound now)
    (["budget", "--occultations", "1000000"], "at most 10,000"),
    (["budget", "--occultations", "1000000", "--force"], "at most 10,000"),
    (["budget", "--occultations", "10000"], "pass --force"),
    (["budget", "--realisations", "99999999999999999999", "--force"], "1-100,000"),
    # found 2026-12 by a fresh draw: a NUL byte in a kernel path ("embedded null byte")
    (["events", "--kernels", "a\x00b"], "is not a valid path"),
    (["geometry", "--utc", "1000-01-01", "--lat", "0", "--lon", "0"],
     "outside the coverage of the DE440"),
    (["geometry", "--utc", "2022-01-01", "--lat", "0", "--lon", "0", "--alt-km", "-5000"],
     "above the centre"),
    (["geometry", "--utc", "2022-01-01", "--lat", "0", "--lon", "0", "--alt-km", "nan"],
     "finite altitude"),
])
def test_past_failures_are_one_sentence(argv, sentence, heavy_prevented):
    code, _, err = run_cli(argv)
    check_contract(argv, code, err)
    assert code == 2 and sentence in err, err
