"""A command-line retrieval: ``python scaled_cmd.py OBSERVATION.nc PROFILE.nc [FACTOR]``.

Reads the observation file written by the harness, inverts it with the built-in inversion
and writes the profile with N_e multiplied by FACTOR (default 1.03): an outside program as a
MATLAB or Fortran pipeline would be run (``--retrieval 'cmd:python scaled_cmd.py
{observation} {profile}'``).
"""

import sys

import xarray as xr

from retrieval import invert_observation

obs = xr.load_dataset(sys.argv[1])
factor = float(sys.argv[3]) if len(sys.argv) > 3 else 1.03
prof = invert_observation(obs, tangent_geometry=False)
prof["electron_density"] = prof["electron_density"] * factor
prof[["electron_density", "bending_angle", "impact_parameter"]].to_netcdf(sys.argv[2])
