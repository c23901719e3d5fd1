"""Plug-in retrievals: judge any pipeline, not only the built-in one.

A *retrieval* turns an observation (the data product of :mod:`validation.export`: residual
Doppler, carrier frequencies, transmitter and receiver states; I/Q where recorded; never
the truth) into a *profile*: an :class:`xarray.Dataset` with dimension ``altitude`` [m above
the reference sphere] and variable ``electron_density`` [m^-3], optionally
``bending_angle`` [rad, positive toward the planet] and ``impact_parameter`` [m] on one
common dimension (then the Doppler -> bending stage is scored too) and ``quality_flag``.

Where a retrieval comes from is a *spec*, typed by the user (command line, environment,
their thresholds file), never read from a scenario file, so a scenario shared by someone
else cannot execute anything:

``builtin``
    the project's own chain (:func:`retrieval.invert_observation`, with the scenario's
    drift correction on instrument-level scenarios).
``module:function``
    a Python callable ``observation Dataset -> profile Dataset``, importable from
    ``PYTHONPATH`` or the working directory.
``NAME``
    a callable registered by an installed package under the entry-point group
    ``roharness.retrievals`` (the harness registers ``radiocc`` there itself).
``cmd:TEMPLATE``
    any program (MATLAB, IDL, Fortran...), run through the shell with ``{observation}``
    and ``{profile}`` replaced by the paths of the observation netCDF file it reads and
    the profile netCDF file it must write.

Isolation: every plug-in runs outside the calling process, a Python one in a long-lived
host process (:mod:`validation.plugin_host`, started once per worker process and reused),
a command as a subprocess. A plug-in that raises, crashes, hangs past its timeout or
returns garbage costs one failed realisation, with the reason as one sentence
(:class:`PluginError`); the host is restarted for the next call. Seeds, checkpoints and
the number of workers are unaffected: the plug-in only sees one observation at a time.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import select
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    import xarray as xr

BUILTIN = "builtin"
ENTRY_POINT_GROUP = "roharness.retrievals"
#: Seconds one call of a plug-in may take before it is killed (``--retrieval-timeout``).
DEFAULT_TIMEOUT_S = 300.0
#: Variables of the profile contract; anything else a plug-in returns is dropped.
PROFILE_VARS = ("electron_density", "bending_angle", "impact_parameter", "quality_flag")
_MIN_LEVELS = 5


class PluginError(RoharnessError):
    """A plug-in retrieval failed on one observation (one sentence: which, and why)."""


@dataclass(frozen=True)
class Retrieval:
    """A parsed retrieval spec (picklable: it travels to the dask workers).

    Attributes
    ----------
    spec : str
        What the user typed.
    kind : str
        ``builtin``, ``python``, ``entry_point`` or ``cmd``.
    target : str
        ``module:function``, the entry-point name, or the command template.
    timeout_s : float
        Seconds one call may take.
    """

    spec: str = BUILTIN
    kind: str = BUILTIN
    target: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_builtin(self) -> bool:
        return self.kind == BUILTIN

    @property
    def label(self) -> str:
        return "built-in retrieval" if self.is_builtin else f"retrieval '{self.spec}'"

    def __call__(self, observation):
        """Run the plug-in on one observation; return the checked profile."""
        if self.is_builtin:
            raise RoharnessError("the built-in retrieval needs the scenario's chain: call "
                                 "validation.plugins.retrieve(observation, scenario)")
        if self.kind == "cmd":
            raw = _run_command(self, observation)
        else:
            raw = _host_for(self).call(observation, self.timeout_s)
        return check_profile(raw, self.label)


def entry_point_names() -> list[str]:
    """Names registered under :data:`ENTRY_POINT_GROUP` by installed packages."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def parse_retrieval(spec: str | Retrieval | None = None, timeout_s: float | None = None
                    ) -> Retrieval:
    """Parse and check a retrieval spec (module docstring) before any work starts.

    ``None`` and ``"builtin"`` give the built-in retrieval; a :class:`Retrieval` is returned
    as is. A ``module:function`` must name an importable module; an entry-point name must be
    registered; a ``cmd:`` template must contain ``{observation}`` and ``{profile}``.

    Raises
    ------
    RoharnessError
        One sentence: what is wrong with the spec and what was expected.
    """
    if isinstance(spec, Retrieval):
        return spec
    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s)
    if not (np.isfinite(timeout) and timeout > 0):
        raise RoharnessError(f"retrieval timeout must be a positive number of seconds, "
                             f"got {timeout_s!r}")
    if spec is None or str(spec).strip() in ("", BUILTIN):
        return Retrieval(timeout_s=timeout)
    spec = str(spec).strip()
    if spec.startswith("cmd:"):
        template = spec[4:].strip()
        missing = [k for k in ("{observation}", "{profile}") if k not in template]
        if not template or missing:
            raise RoharnessError(f"retrieval '{spec}': a cmd: template must contain "
                                 "{observation} and {profile} (the input and output netCDF "
                                 f"paths); missing {' and '.join(missing) or 'the command'}")
        return Retrieval(spec, "cmd", template, timeout)
    if ":" in spec:
        module, _, func = spec.partition(":")
        if not module or not func or not all(p.isidentifier() for p in module.split(".")) \
                or not all(p.isidentifier() for p in func.split(".")):
            raise RoharnessError(f"retrieval '{spec}' is not of the form module:function "
                                 "(e.g. mypipeline.ro:retrieve)")
        if _find_module(module) is None:
            raise RoharnessError(f"retrieval '{spec}': no module named '{module}' on "
                                 "PYTHONPATH or in the working directory")
        return Retrieval(spec, "python", spec, timeout)
    names = entry_point_names()
    if spec not in names:
        known = ", ".join([BUILTIN, *names])
        raise RoharnessError(f"unknown retrieval '{spec}'; expected builtin, a registered "
                             f"name ({known}), module:function or cmd:TEMPLATE")
    return Retrieval(spec, "entry_point", spec, timeout)


def _find_module(module: str):
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    finally:
        if added:
            sys.path.remove(cwd)


def validate_retrieval(retrieval: Retrieval) -> None:
    """Start a Python plug-in's host once and check that its callable loads (a missing
    function or an import error in the user's module is then one sentence up front, not a
    failure in every realisation)."""
    if retrieval.kind in ("python", "entry_point"):
        _host_for(retrieval)


# --------------------------------------------------------------------------- the profile
def check_profile(profile: object, where: str = "retrieval") -> xr.Dataset:
    """Check a profile against the contract; return it sorted, with contract variables only.

    Raises
    ------
    PluginError
        One sentence naming what is malformed and what was expected.
    """
    import xarray as xr

    if not isinstance(profile, xr.Dataset):
        raise PluginError(f"{where} returned {type(profile).__name__}, not an xarray Dataset "
                          "with dimension 'altitude' and variable 'electron_density'")
    if "electron_density" not in profile.data_vars:
        raise PluginError(f"{where} returned no variable 'electron_density' (has: "
                          f"{', '.join(map(str, profile.data_vars)) or 'nothing'})")
    ne_var = profile["electron_density"]
    if ne_var.dims != ("altitude",) or "altitude" not in profile.coords:
        raise PluginError(f"{where}: 'electron_density' must lie on the dimension 'altitude' "
                          f"with an altitude coordinate [m], found dims {ne_var.dims}")
    units = str(profile["altitude"].attrs.get("units", "m")).strip()
    if units not in ("m", "meter", "meters", "metre", "metres"):
        raise PluginError(f"{where}: altitude has units '{units}'; the contract is metres "
                          "above the reference sphere")
    alt = np.asarray(profile["altitude"].values, float)
    ne = np.asarray(ne_var.values, float)
    ok = np.isfinite(alt) & np.isfinite(ne)
    if ok.sum() < _MIN_LEVELS:
        raise PluginError(f"{where} returned {int(ok.sum())} finite levels; at least "
                          f"{_MIN_LEVELS} are needed")
    lo, hi = float(alt[ok].min()), float(alt[ok].max())
    if hi < 2000.0 and hi - lo < 1000.0:
        raise PluginError(f"{where}: altitudes span {lo:g}..{hi:g}, which looks like "
                          "kilometres; the contract is metres above the reference sphere")
    if lo < -200e3 or hi > 20000e3:
        raise PluginError(f"{where}: altitudes span {lo:.4g}..{hi:.4g} m, outside "
                          "-200 km..20000 km above the reference sphere")
    keep = [v for v in PROFILE_VARS if v in profile.data_vars]
    has_a, has_b = "impact_parameter" in keep, "bending_angle" in keep
    if has_a != has_b:
        raise PluginError(f"{where} returned {'impact_parameter' if has_a else 'bending_angle'} "
                          "without its partner; return both (or neither)")
    if has_a and profile["impact_parameter"].dims != profile["bending_angle"].dims:
        raise PluginError(f"{where}: bending_angle and impact_parameter must share one "
                          "dimension")
    out = profile[keep].load()
    out = out.isel(altitude=np.nonzero(ok)[0]) if not ok.all() else out
    out = out.sortby("altitude")
    _, first = np.unique(out["altitude"].values, return_index=True)
    if len(first) < out.sizes["altitude"]:
        out = out.isel(altitude=np.sort(first))
    out.attrs = dict(profile.attrs)
    return out


# --------------------------------------------------------------------------- dispatch
def retrieve(observation, scn, retrieval=None, *, tangent_geometry: bool = False,
             top: str | None = None, top_scale_height_m: float | None = None,
             error_estimate: bool = False):
    """The retrieval of one observation: the built-in chain or a plug-in.

    Parameters
    ----------
    observation : xarray.Dataset
        For the built-in chain, what :func:`synth.simulate` (or a perturbation of it)
        produced; a plug-in receives :func:`validation.export.observation_product` of it.
    scn : Scenario
        The built-in chain reads its ``[retrieval]`` section (drift correction on
        instrument-level scenarios).
    retrieval : Retrieval or str, optional
        Default: the built-in chain.
    top, top_scale_height_m : str, float, optional
        The built-in chain's Abel top model and exponential scale height [m], overriding
        the scenario's ``[retrieval] top`` (a budget passes what its clean retrieval
        chose, so that every realisation keeps it and stays linear in the noise).
    error_estimate : bool
        The built-in chain's Abel discretisation-error estimate (the ``under_resolved``
        flag); off by default here, as an error budget does not use it (the profile is
        the same either way; ~1.5x less Abel work).
    """
    ret = parse_retrieval(retrieval)
    if ret.is_builtin:
        from retrieval.electron_density import invert_observation

        if scn["receiver"]["enabled"]:
            from validation.iq_path import correct_level4

            observation = correct_level4(observation, scn)
        rset = scn["retrieval"]
        return invert_observation(observation, tangent_geometry=tangent_geometry,
                                  top=top or rset["top"], scheme=rset["abel_scheme"],
                                  neutral=rset["neutral"],
                                  top_scale_height_m=top_scale_height_m,
                                  error_estimate=error_estimate)
    from validation.export import observation_product

    return ret(observation_product(observation, scn))


# --------------------------------------------------------------------------- cmd: plug-ins
def _run_command(ret: Retrieval, observation):
    import xarray as xr

    with tempfile.TemporaryDirectory(prefix="roharness-plugin-") as tmp:
        obs_path, prof_path = Path(tmp) / "observation.nc", Path(tmp) / "profile.nc"
        observation.to_netcdf(obs_path)
        command = ret.target.replace("{observation}", shlex.quote(str(obs_path))) \
                            .replace("{profile}", shlex.quote(str(prof_path)))
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err, start_new_session=True)
            try:
                code = proc.wait(timeout=ret.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise PluginError(f"{ret.label} did not finish within {ret.timeout_s:g} s "
                                  "and was killed") from None
        if code != 0:
            raise PluginError(f"{ret.label} exited with status {code}: "
                              f"{_tail(err_path.read_bytes())}")
        if not prof_path.is_file() or prof_path.stat().st_size == 0:
            raise PluginError(f"{ret.label} exited 0 but wrote no profile file "
                              "(expected a netCDF file at {profile})")
        try:
            return xr.load_dataset(prof_path)
        except Exception as exc:  # anything a reader can throw at a garbage file
            raise PluginError(f"{ret.label} wrote a profile file that is not readable "
                              f"netCDF ({type(exc).__name__})") from None


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(raw: bytes, n: int = 300) -> str:
    text = raw.decode("utf-8", "replace").strip().splitlines()
    last = text[-1].strip() if text else "no message"
    return last[-n:]


# --------------------------------------------------------------------------- Python hosts
_HOSTS: dict[tuple, _Host] = {}


def _host_for(ret: Retrieval) -> _Host:
    key = (ret.kind, ret.target, os.getpid())
    host = _HOSTS.get(key)
    if host is None or not host.alive:
        host = _Host(ret)
        _HOSTS[key] = host
    return host


def _send(fh, obj) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack("<Q", len(blob)))
    fh.write(blob)
    fh.flush()


class _Host:
    """A long-lived child process that imports one Python plug-in and serves calls.

    Messages are length-prefixed pickles over the child's stdin/stdout; the child's own
    prints go to a log file (its stdout is moved to stderr), so a chatty plug-in cannot
    break the protocol.
    """

    def __init__(self, ret: Retrieval):
        self.ret = ret
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "validation.plugin_host", ret.kind, ret.target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            cwd=os.getcwd(), start_new_session=True)
        weakref.finalize(self, _Host._stop, self.proc, self._log)
        status, payload = self._receive(max(ret.timeout_s, 60.0), starting=True)
        if status != "ready":
            self.close()
            raise RoharnessError(f"{ret.label} could not be loaded: {payload}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @staticmethod
    def _stop(proc, log) -> None:
        _Host._kill(proc)
        log.close()

    @staticmethod
    def _kill(proc) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()

    def close(self) -> None:
        """Stop the child (its log stays readable until this object is collected)."""
        _Host._kill(self.proc)

    def _read_exact(self, n: int, deadline: float) -> bytes:
        import time

        fd = self.proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise TimeoutError
            part = os.read(fd, min(n - got, 1 << 20))
            if not part:
                raise EOFError
            chunks.append(part)
            got += len(part)
        return b"".join(chunks)

    def _log_tail(self) -> str:
        self._log.seek(0)
        return _tail(self._log.read())

    def _receive(self, timeout_s: float, starting: bool = False):
        import time

        deadline = time.monotonic() + timeout_s
        try:
            (n,) = struct.unpack("<Q", self._read_exact(8, deadline))
            return pickle.loads(self._read_exact(n, deadline))
        except TimeoutError:
            self.close()
            what = "did not start" if starting else "did not finish"
            raise PluginError(f"{self.ret.label} {what} within {timeout_s:g} s and was "
                              "killed") from None
        except EOFError:
            self.proc.wait()
            code = self.proc.returncode
            self.close()
            raise PluginError(f"{self.ret.label} died (exit status {code}): "
                              f"{self._log_tail()}") from None
        except Exception as exc:  # an unpicklable or truncated reply
            self.close()
            raise PluginError(f"{self.ret.label} sent a reply that cannot be read "
                              f"({type(exc).__name__}: {exc})") from None

    def call(self, observation, timeout_s: float):
        if not self.alive:
            raise PluginError(f"{self.ret.label} is not running")
        try:
            _send(self.proc.stdin, ("call", observation))
        except (BrokenPipeError, OSError):
            self.close()
            raise PluginError(f"{self.ret.label} died before the call: "
                              f"{self._log_tail()}") from None
        status, payload = self._receive(timeout_s)
        if status == "ok":
            return payload
        raise PluginError(f"{self.ret.label} failed: {payload}")
