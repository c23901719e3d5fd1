"""Building the CLI parser stays cheap: no command imports the numerical stack up front.

``roharness --version`` and ``--help`` build the whole parser, i.e. import every module of
``validation.commands.COMMAND_MODULES``. A command must import its library (numpy, scipy,
xarray, pandas, spiceypy, dask, matplotlib) inside ``run``, not at module level. The
start-up time itself is measured in ``benchmarks/`` (asv), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("numpy", "scipy", "xarray", "pandas", "spiceypy", "dask", "distributed",
         "matplotlib", "netCDF4")


def test_parser_imports_no_numerical_library():
    code = ("import json, sys\n"
            "from validation.cli import build_parser\n"
            "build_parser()\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_fit_driver_choices_match_the_library():
    from retrieval.laws import DENSITY_DRIVERS
    from validation.commands import fit

    assert fit.DENSITY_DRIVERS == DENSITY_DRIVERS
