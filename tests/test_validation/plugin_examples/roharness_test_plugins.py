"""Example plug-in retrievals for the plug-in tests (importable with this folder on PYTHONPATH).

They wrap the built-in inversion (:func:`retrieval.invert_observation`) so that their
expected scores are known exactly: a plain wrapper scores as the built-in retrieval does, a
x1.03 wrapper scores an M2 peak density error of +3 % (relative to the built-in's own).
"""

from __future__ import annotations

import sys
import time
import zlib

import numpy as np
import xarray as xr


def _builtin(obs):
    """What the built-in chain does, written as a user would: level 4 (oscillator drift
    still in) is drift-corrected first, with the settings of the built-in drift scenario."""
    from retrieval import correct_drift, invert_observation

    if str(obs.attrs.get("data_level", "")).startswith("4"):
        obs = correct_drift(obs, "withers2020", threshold_altitude_m=230e3, max_order=1,
                            smoothing_s="auto")
    return invert_observation(obs, tangent_geometry=False)


def wrapper(obs):
    """The built-in inversion, returned through the plug-in path."""
    return _builtin(obs)


def scaled(obs):
    """The built-in inversion with N_e multiplied by 1.03."""
    prof = _builtin(obs)
    prof["electron_density"] = prof["electron_density"] * 1.03
    return prof


def density_only(obs):
    """Only the contract's required part: altitude and electron density."""
    prof = _builtin(obs)
    return xr.Dataset({"electron_density": ("altitude", prof.electron_density.values)},
                      coords={"altitude": prof.altitude.values})


def raises(obs):
    raise ValueError("this retrieval always fails")


def sleeps(obs):
    time.sleep(3600)


def garbage(obs):
    return "not a dataset"


def in_km(obs):
    prof = _builtin(obs)
    return prof.assign_coords(altitude=prof.altitude.values / 1e3)


def dies(obs):
    sys.stdout.write("about to die\n")
    sys.stdout.flush()
    import os
    os._exit(7)


def _draw(obs) -> int:
    """A deterministic function of the observation (which realisation this is): a hash of
    the residual rounded to 1e-8 Hz, so that last-bit changes of the forward model (speed
    work may change its arithmetic at ~1e-13 relative) do not decide which realisations fail;
    realisations differ by their noise (>= mHz)."""
    res = np.round(np.asarray(obs["frequency_residual"].values, float), 8)
    return zlib.crc32(np.ascontiguousarray(res).tobytes()) % 7


#: What the flaky plug-ins do by draw (otherwise: the plain wrapper).
RAISE, HANG, GARBAGE = 0, 1, 2


def flaky(obs):
    """Fails on some observations, each in its own way: raises (draw 0), hangs past any
    short timeout (draw 1) or returns garbage (draw 2); otherwise the plain wrapper."""
    k = _draw(obs)
    if k == RAISE:
        raise RuntimeError("flaky plug-in raised")
    if k == HANG:
        time.sleep(3600)
    if k == GARBAGE:
        return "garbage"
    return _builtin(obs)
