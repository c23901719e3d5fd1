"""A command-line retrieval that fails on some observations, each way a program can fail:
``python flaky_cmd.py OBSERVATION.nc PROFILE.nc``.

The draw is :func:`roharness_test_plugins._draw` of the observation: RAISE exits 3, HANG
hangs, GARBAGE writes an empty profile file; every other observation gets the plain
wrapper's profile.
"""

import sys
import time
from pathlib import Path

import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
import roharness_test_plugins as P  # noqa: E402

obs = xr.load_dataset(sys.argv[1])
k = P._draw(obs)
if k == P.RAISE:
    sys.stderr.write("flaky command failed\n")
    sys.exit(3)
if k == P.HANG:
    time.sleep(3600)
if k == P.GARBAGE:
    Path(sys.argv[2]).write_bytes(b"")
    sys.exit(0)
prof = P.wrapper(obs)
prof[["electron_density", "bending_angle", "impact_parameter"]].to_netcdf(sys.argv[2])
