"""Error budget (validation.budget): the issue's ``budget --realisations 10`` figure, its
per-realisation and per-occultation costs, and a reduced Parrott-scale run.

The full Parrott scale (70 occultations x 100 realisations, 2 workers, ~1-3 min) is too long
for a benchmark run: ``python benchmarks/budget_bench.py --workers 2`` measures it; here the
same shape of work at 10 x 20 (``ParrottScale``) tracks it commit by commit.
"""

from __future__ import annotations

import tempfile

from . import _common  # noqa: F401  (puts the script benchmarks on sys.path)


def timeraw_budget_cli():
    """``roharness budget --realisations 10`` (default scenario mex-tgo-uhf-drift, every
    source, the gradient study at 30/60/85 deg, 2 local workers, report written) in a new
    interpreter, as a user runs it."""
    return ("import tempfile\n"
            "from validation.cli import main\n"
            "with tempfile.TemporaryDirectory() as tmp:\n"
            "    main(['budget', '--realisations', '10', '--workers', '2', '-o', tmp])\n")


timeraw_budget_cli.repeat = (1, 3, 300.0)
timeraw_budget_cli.timeout = 600


class BudgetTasks:
    """The budget's two kinds of task, in-process: the base task of one occultation (forward
    model, clean retrieval) and a block of 5 realisations of every source at once (the
    drift correction's trial inversions dominate)."""

    number = 1
    repeat = (3, 10, 60.0)
    timeout = 300

    def setup(self):
        import validation.budget as B
        from synth.scenario import load_scenario
        from validation.plugins import parse_retrieval

        self.B = B
        self.scn = load_scenario("mex-tgo-uhf-drift")
        self.grid = B.altitude_grid_m(self.scn)
        names, _ = B.resolve_sources(self.scn, None)
        self.members = tuple(n for n in names if n != "gradients")
        self.ret = parse_retrieval(None)
        self.base = B.base_task(self.scn, tuple(names), self.grid, self.ret)  # warm caches

    def time_base_task(self):
        self.B.base_task(self.scn, self.members, self.grid, self.ret)

    def time_chunk_all_sources_5(self):
        self.B.chunk_task(self.base, self.scn, self.B.ALL, self.members, 0, tuple(range(5)), 1,
                          self.grid, False, self.ret)


class ParrottScale:
    """Parrott-scale shape (dayside MEX -> TGO events of two months, ``parrott`` source) at
    10 occultations x 20 realisations on 2 local workers: the run's wall time [s]."""

    number = 1
    repeat = (1, 3, 600.0)
    timeout = 900

    def track_wall_s_10x20_2_workers(self):
        import budget_bench

        from validation.budget import run_budget

        with tempfile.TemporaryDirectory() as tmp:
            s = run_budget(budget_bench.scenario("mex-tgo-uhf"), ["parrott"], 20,
                           occultations=10, workers=2, out_dir=tmp, report=False,
                           gradient_sza_deg=())
        return s["elapsed_s"]

    track_wall_s_10x20_2_workers.unit = "s"
