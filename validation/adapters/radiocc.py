"""Adapter: the radiocc retrieval (Royal Observatory of Belgium) under the plug-in contract.

radiocc [1]_ (PyPI ``radiocc``, pinned 0.6.24) is the RO software of Krishnan et al.
(2023) [2]_. Its retrieval chain, as run by ``radiocc.reconstruct.run`` and
``radiocc.old.R17_Run_Routines1.run`` for the ionosphere (``Layers.Iono``), is

1. ``R6_Framework_Conversion.Occ_Plane_Conversion``: state vectors -> occultation-plane
   coordinates (positions, velocity components, angles);
2. ``R9_BendAng_ImpParam_dn.Bend_dn``: downlink residual Doppler -> bending angle and
   impact parameter per sample (its linearised iteration);
3. ``R10_Avg_BendAng_ImpParam.Avg`` (in 0.6.24 it returns the downlink leg unchanged);
4. ``R11_Refractivity_and_Bending_Radius_v2.Abel_Analytical``: inverse Abel transform
   (bending angle linear in impact parameter between samples) -> refractivity and the
   radius of closest approach ("bending radius");
5. ``R12_Electron_Density.Elec``: refractivity -> electron density.

:func:`retrieve` calls exactly these routines, with radiocc's own constants
(``radiocc.constants``), in radiocc's order; it does not fix anything inside them (the
harness exists to find their faults). What it does is convert a harness observation into
their inputs; every conversion is listed here.

Conversions (harness observation -> radiocc inputs)
---------------------------------------------------
* **States.** radiocc's ``pos_MEX``/``vel_MEX`` are the spacecraft that transmits the
  downlink, ``pos_GS``/``vel_GS`` the station that receives it, Mars-centred J2000 in
  metres and m/s (``R4_State_Vectors_twoway_v2`` multiplies SPICE's km by 1e3). The
  observation's ``tx_*`` (transmitter at emission) go to the MEX slot, ``rx_*`` (receiver at
  reception) to the GS slot, unchanged: same frame, same units, and for a mutual link (MEX
  -> TGO) the transmitter is the "spacecraft" and the receiver the "station". radiocc's own
  ephemeris step (R4) evaluates both ends at one Mars-crossing epoch from SPICE kernels; the
  harness's synthetic spacecraft have no kernels, and the observation's states (each end at
  its own light-time-solved epoch) are the ones its residual Doppler was referenced to, so
  R4 is not run.
* **Residual Doppler.** radiocc's ``Doppler_debias`` is observed minus predicted sky
  frequency [Hz], the harness's ``frequency_residual`` convention (received minus predicted
  vacuum frequency): passed with its sign unchanged. radiocc's drift/baseline step
  (``R7_Offset_Correction``, a linear fit above 3950 km from Mars' centre) is not run: a
  level-2 observation is already referenced to vacuum, the built-in retrieval does not
  correct drift either, and drift removal is scored separately by the harness (R7 would
  also fail outright here: the built-in passes start below 3950 km, leaving it no samples).
* **Links.** radiocc knows only coherent two-way data: with ``fsup`` the uplink frequency
  it forms the downlink residual as ``Doppler_debias / (1 + k^2)`` (X: k = 880/749, S:
  k = 240/749), the dual-frequency one as ``Diff_doppler / (1 - 9/121)`` (S band), and
  transmits at ``fs = fsup k`` (``R17_Run_Routines1.run``, ``R9 Bend_dn``, ``R12 Elec``).

  - two-way (``earth_twoway``): those same relations, with radiocc's constants; the
    downlink frequency ``frequency_hz`` (X) gives ``fsup = frequency_hz / (880/749)``.
    ``band="x"`` (default) inverts ``frequency_residual_xx`` (or
    ``frequency_residual_two_way``), ``band="s"`` ``frequency_residual_xs``,
    ``band="diff"`` the differential Doppler ``xs - (3/11) xx`` (the MEX level-2
    ``DIFF_DOPPLER`` column). A test checks that this reproduces radiocc's own
    ``R17_Run_Routines1.run`` bit for bit.
  - one-way (``mutual``, ``earth_oneway``/``earth_downlink``): the residual is already the
    downlink residual, so the two-way division is not applied; it goes to ``Bend_dn`` as
    band X with ``fsup = frequency_hz / (880/749)``, so that radiocc's ``fs`` and
    ``R12``'s carrier equal ``frequency_hz`` (437.1 MHz for MEX-TGO UHF).
* **Distance and integration limits.** radiocc's ``distance`` is the straight-line ray's
  closest distance to the ellipsoid plus ``Threshold_Surface`` (3386 km)
  (``R18_Occ_Info_MVN``); here: the straight line's impact parameter above the harness's
  reference sphere (``reference_radius_m``, 3389.5 km), floored at 0, plus
  ``Threshold_Surface``. From it, as ``reconstruct.run`` does (and before the egress flip,
  as it does): ``i_integral`` = first sample with ``distance <= Threshold_int`` (1000 km
  above ``Threshold_Surface``), else 0; ``i_Surface`` = first sample with ``distance <=
  Threshold_Surface``, else the last sample. The Abel step fills samples
  ``i_integral .. i_Surface - 1`` (the last sample of a pass that never grazes the surface
  gets no density: radiocc's range excludes it).
* **Ingress/egress.** radiocc's MAVEN path decides egress when ``distance`` grows from the
  first to the second sample; then it reverses the samples (top first) and solves with its
  egress branch (``DATA_TYPE = EGRESS``). The adapter applies that rule and that reversal;
  outputs are returned in the observation's time order.
* **Outputs.** radiocc's bending angle is positive *away* from the planet (its Abel step
  R11 forms :math:`\\ln n(a_j) = -\\frac{1}{\\pi}\\int_{a_j} \\alpha\\,da/\\sqrt{a^2 -
  a_j^2}`); the harness's is positive toward it, so ``bending_angle`` = minus radiocc's.
  Refractivity: radiocc's N-units (1e6 (n - 1)) -> ``refractivity`` n - 1. Altitude:
  radiocc's bending radius minus ``reference_radius_m`` (radiocc subtracts an ellipsoid
  footprint radius found with SPICE; the contract's altitude is above the sphere).

Returned Dataset: dim ``altitude`` (ascending, levels radiocc filled) with
``electron_density``, ``refractivity``, ``radius``, ``time``; dim ``level`` (every sample,
observation time order) with ``bending_angle``, ``impact_parameter``, ``level_time``, so the
Doppler->bending stage can be scored apart from the Abel stage.

Importing radiocc. radiocc 0.6.24 declares Python < 3.10 and a GTK stack; its package
``__init__`` imports the GUI, the downloader (arrow, bs4, gi) and ``radiocc.model``
(nptyping, which needs numpy < 2), and opens ``radiocc.log`` in the working directory.
None of that is on the retrieval path. Unless radiocc is already imported, the adapter
loads the five science modules above (and ``radiocc.constants``) under a stand-in
``radiocc`` package object whose only content is ``model.RadioDataType`` (the
EGRESS/INGRESS/BOTH enum the R9 routine compares against), then removes the stand-in from
``sys.modules`` so a later ``import radiocc`` is unaffected. scipy >= 1.12 has no
``scipy.pi``, which R6 and R11 use: it is set to ``numpy.pi`` when missing.

References
----------
.. [1] radiocc, https://pypi.org/project/radiocc/ (version 0.6.24).
.. [2] Krishnan, A. et al. (2023), Radio Science 58, e2023RS007784,
   doi:10.1029/2023RS007784.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import importlib.util
import io
import sys
import types
import warnings
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import xarray as xr

from retrieval.bending import straight_line_geometry
from retrieval.errors import RoharnessError

#: Pinned radiocc version the adapter was written and measured against.
RADIOCC_VERSION = "0.6.24"
#: How to install radiocc without its GUI stack (printed when it is missing).
INSTALL_HINT = ("pip install --ignore-requires-python --no-deps radiocc==0.6.24 && "
                "pip install numpy scipy spiceypy pudb matplotlib")
#: Bands the adapter can invert for a two-way observation.
BANDS = ("x", "s", "diff")
#: radiocc's hard-coded transponder turnaround ratios (``R17_Run_Routines1.run``).
RADIOCC_KX = 880.0 / 749.0
RADIOCC_KS = 240.0 / 749.0
#: radiocc's dual-frequency divisor (``R17_Run_Routines1.run``: 1 - 9/121).
RADIOCC_DIFF_DIVISOR = 1.0 - (9.0 / 121.0)

#: Links whose residual is already a one-way downlink residual.
ONE_WAY_LINKS = ("mutual", "earth_oneway", "earth_downlink")
TWO_WAY_LINKS = ("earth_twoway",)

_SCIENCE_MODULES = (
    "constants",
    "old.R6_Framework_Conversion",
    "old.R9_BendAng_ImpParam_dn",
    "old.R10_Avg_BendAng_ImpParam",
    "old.R11_Refractivity_and_Bending_Radius_v2",
    "old.R12_Electron_Density",
)


def _missing(detail: str) -> RoharnessError:
    return RoharnessError(f"the radiocc adapter needs radiocc {RADIOCC_VERSION} ({detail}); "
                          f"install it with: {INSTALL_HINT}")


#: What :func:`load_radiocc` has loaded: version, RadioDataType, the stand-in package (or
#: None for a real import) and every ``radiocc.*`` module object, kept so that later loads
#: of more modules bind to the same objects (one RadioDataType enum for all).
_STATE: dict = {}


def reset_radiocc() -> None:
    """Forget what :func:`load_radiocc` loaded (the next call starts afresh)."""
    _STATE.clear()


def _init_state() -> None:
    try:
        ver = version("radiocc")
    except PackageNotFoundError:
        raise _missing("it is not installed") from None
    spec = importlib.util.find_spec("radiocc")  # locates the package, does not run it
    if spec is None or not spec.submodule_search_locations:
        raise _missing("the installed distribution has no importable 'radiocc' package")
    import scipy
    if not hasattr(scipy, "pi"):  # R6 and R11 use scipy.pi (removed in scipy 1.12)
        scipy.pi = np.pi
    if "radiocc" in sys.modules:  # a full radiocc install, already imported: use it
        try:
            data_type = importlib.import_module("radiocc.model").RadioDataType
        except ImportError as exc:
            raise _missing(f"importing radiocc.model failed: {exc}") from None
        _STATE.update(version=ver, RadioDataType=data_type, shim=None, loaded={})
        return
    shim = types.ModuleType("radiocc", "Stand-in package for radiocc's retrieval modules.")
    shim.__path__ = list(spec.submodule_search_locations)
    shim.__version__ = ver
    model = types.ModuleType("radiocc.model", "Stand-in: radiocc.model.RadioDataType only.")
    model.RadioDataType = enum.Enum("RadioDataType", "EGRESS INGRESS BOTH")
    shim.model = model
    _STATE.update(version=ver, RadioDataType=model.RadioDataType, shim=shim,
                  loaded={"radiocc": shim, "radiocc.model": model})


def load_radiocc(extra_modules: tuple = ()) -> types.SimpleNamespace:
    """Import radiocc's retrieval modules (see the module notes on how).

    Parameters
    ----------
    extra_modules : tuple of str
        More ``radiocc`` submodules to load, dotted below the package
        (e.g. ``("old.R17_Run_Routines1",)`` for the equivalence test).

    Returns
    -------
    types.SimpleNamespace
        ``version`` (str), ``RadioDataType`` (enum) and ``modules`` (dict: dotted name ->
        module) for :data:`_SCIENCE_MODULES` plus ``extra_modules``.

    Raises
    ------
    RoharnessError
        radiocc, or one of the packages its retrieval modules import, is missing.
    """
    if not _STATE:
        _init_state()
    names = _SCIENCE_MODULES + tuple(extra_modules)
    loaded = _STATE["loaded"]
    if any(f"radiocc.{n}" not in loaded for n in names):
        if _STATE["shim"] is None:
            try:
                for n in names:
                    loaded[f"radiocc.{n}"] = importlib.import_module(f"radiocc.{n}")
            except ImportError as exc:
                raise _missing(f"importing its retrieval modules failed: {exc}") from None
        else:
            before = set(sys.modules)
            sys.modules.update(loaded)  # the same objects as before, stand-in included
            try:
                for n in names:
                    importlib.import_module(f"radiocc.{n}")
            except ImportError as exc:
                raise _missing(f"importing its retrieval modules failed: {exc}") from None
            finally:  # keep the objects, leave no stand-in for a later `import radiocc`
                for key in [k for k in sys.modules
                            if k == "radiocc" or k.startswith("radiocc.")]:
                    loaded[key] = sys.modules[key]
                    if key not in before:
                        del sys.modules[key]
    return types.SimpleNamespace(
        version=_STATE["version"], RadioDataType=_STATE["RadioDataType"],
        modules={n: loaded[f"radiocc.{n}"] for n in names})


@contextlib.contextmanager
def _quiet(log: list):
    """Silence radiocc's progress prints; record its warnings (text, deduplicated)."""
    with warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in log:
            log.append(text)


def _rows(obs: xr.Dataset, name: str) -> np.ndarray:
    if name not in obs:
        raise RoharnessError(f"the observation lacks '{name}', required by the RO contract")
    arr = np.asarray(obs[name].transpose("time", "xyz").values, float)
    if not np.all(np.isfinite(arr)):
        raise RoharnessError(f"the observation's {name} has NaN or infinite values; "
                             "expected finite values at every sample")
    return arr


def _downlink_residual(obs: xr.Dataset, band: str):
    """radiocc's downlink residual, its band name and ``fsup`` (module notes, Links)."""
    if "frequency_hz" not in obs.attrs:
        raise RoharnessError("the observation has no 'frequency_hz' attribute; expected the "
                             "transmitted (downlink) frequency in Hz")
    f_hz = float(obs.attrs["frequency_hz"])
    fsup = f_hz / RADIOCC_KX
    two_way = any(v in obs for v in ("frequency_residual_xx", "frequency_residual_two_way"))
    link = obs.attrs.get("link", "earth_twoway" if two_way else "mutual")
    if two_way:
        k = float(obs.attrs.get("turnaround_ratio", RADIOCC_KX))
        if abs(k / RADIOCC_KX - 1.0) > 1e-12:
            raise RoharnessError(
                f"the observation's turnaround ratio {k!r} is not radiocc's fixed 880/749; "
                "radiocc cannot invert this two-way link")
        xx = obs["frequency_residual_xx" if "frequency_residual_xx" in obs
                 else "frequency_residual_two_way"].values
        if band == "x":
            return np.asarray(xx, float) / (1.0 + RADIOCC_KX * RADIOCC_KX), "X", fsup, link
        if "frequency_residual_xs" not in obs:
            raise RoharnessError(f"band {band!r} needs the observation's "
                                 "'frequency_residual_xs' (X uplink / S downlink)")
        xs = np.asarray(obs["frequency_residual_xs"].values, float)
        if band == "s":
            return xs / (1.0 + RADIOCC_KS ** 2), "S", fsup, link
        diff = xs - (RADIOCC_KS / RADIOCC_KX) * np.asarray(xx, float)
        return diff / RADIOCC_DIFF_DIVISOR, "Diff", fsup, link
    if "frequency_residual" not in obs:
        raise RoharnessError("the observation has no residual Doppler ('frequency_residual' "
                             "for a one-way link, 'frequency_residual_xx' for two-way)")
    if band != "x":
        raise RoharnessError(f"band {band!r} needs a two-way observation; a one-way link has "
                             "only its own band (use band='x')")
    return np.asarray(obs["frequency_residual"].values, float), "X", fsup, link


def carrier_frequency_hz(fsup: float, radiocc_band: str) -> float:
    """The carrier radiocc's R9 and R12 use for a band: ``fsup`` times 880/749 (X) or
    240/749 (S, Diff) [Hz]."""
    return fsup * (RADIOCC_KX if radiocc_band == "X" else RADIOCC_KS)


def radiocc_inputs(observation: xr.Dataset, band: str = "x") -> dict:
    """The observation converted into radiocc's inputs (module notes), in radiocc's order.

    Returns
    -------
    dict
        ``doppler_dn`` [Hz], ``bande`` ("X", "S", "Diff"), ``fsup`` [Hz], ``pos_mex``,
        ``vel_mex``, ``pos_gs``, ``vel_gs`` (n, 3) [m, m/s], ``distance`` [m],
        ``i_integral``, ``i_surface`` (int), ``data_type`` (radiocc's EGRESS member or
        None), ``order`` (sample index of each processed sample), ``link``.
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; known: {', '.join(BANDS)}")
    rc = load_radiocc()
    const = rc.modules["constants"]
    df, bande, fsup, link = _downlink_residual(observation, band)
    if link not in ONE_WAY_LINKS + TWO_WAY_LINKS:
        raise RoharnessError(f"unknown link {link!r}; the radiocc adapter knows "
                             f"{', '.join(ONE_WAY_LINKS + TWO_WAY_LINKS)}")
    if not np.all(np.isfinite(df)):
        raise RoharnessError("the observation's residual Doppler has NaN or infinite samples; "
                             "remove or fill gaps before inverting")
    pos_t, vel_t = _rows(observation, "tx_position"), _rows(observation, "tx_velocity")
    pos_r, vel_r = _rows(observation, "rx_position"), _rows(observation, "rx_velocity")
    n = df.size
    if n < 3:
        raise RoharnessError(f"the observation has {n} samples; radiocc needs at least 3")
    ref = float(observation.attrs.get("reference_radius_m", 3389.5e3))
    a0 = straight_line_geometry(pos_t, pos_r)["a0"]
    distance = np.maximum(a0 - ref, 0.0) + const.Threshold_Surface
    # reconstruct.run: limits from the samples in time order, before any egress reversal
    below = np.flatnonzero(distance <= const.Threshold_Surface)
    i_surface = int(below[0]) if below.size else n - 1
    inside = np.flatnonzero(distance <= const.Threshold_int)
    i_integral = int(inside[0]) if inside.size else 0
    egress = distance[1] - distance[0] > 0  # R18_Occ_Info_MVN's rule
    order = np.arange(n)[::-1] if egress else np.arange(n)
    return dict(doppler_dn=df[order], bande=bande, fsup=fsup, pos_mex=pos_t[order],
                vel_mex=vel_t[order], pos_gs=pos_r[order], vel_gs=vel_r[order],
                distance=distance[order], i_integral=i_integral, i_surface=i_surface,
                data_type=rc.RadioDataType.EGRESS if egress else None, order=order,
                link=link, reference_radius_m=ref)


def run_radiocc(inputs: dict, log: list | None = None) -> dict:
    """radiocc's R6 -> R9 (downlink) -> R10 -> R11 -> R12 on converted inputs.

    Returns radiocc's own arrays, in its processing order and conventions:
    ``imp_param``, ``bend_ang`` (positive away from the planet), ``refractivity`` (N-units),
    ``bend_radius`` [m], ``ne`` [m^-3], and the R6 geometry under ``plane``.
    """
    rc = load_radiocc()
    m, const = rc.modules, rc.modules["constants"]
    log = [] if log is None else log
    n = inputs["doppler_dn"].size
    with _quiet(log):
        plane = m["old.R6_Framework_Conversion"].Occ_Plane_Conversion(
            n, inputs["pos_mex"], inputs["vel_mex"], inputs["pos_gs"], inputs["vel_gs"])
        imp_dn, bend_dn, _, _ = m["old.R9_BendAng_ImpParam_dn"].Bend_dn(
            n, *plane, inputs["doppler_dn"], inputs["bande"], inputs["fsup"], const.c,
            inputs["data_type"])
        # R10 takes (up, down) legs; in 0.6.24 it returns the downlink leg. The uplink leg
        # it ignores is given the downlink values (a one-way link has no uplink).
        imp, bend = m["old.R10_Avg_BendAng_ImpParam"].Avg(imp_dn, bend_dn, imp_dn, bend_dn,
                                                          inputs["bande"])
        _, refr, radius, _ = m["old.R11_Refractivity_and_Bending_Radius_v2"].Abel_Analytical(
            n, inputs["i_integral"], inputs["i_surface"], imp, bend, const.R_Planet)
        ne = m["old.R12_Electron_Density"].Elec(n, refr, const.e, const.eps0, const.me,
                                                inputs["bande"], inputs["fsup"], const.c)
    return dict(imp_param=np.asarray(imp, float), bend_ang=np.asarray(bend, float),
                refractivity=np.asarray(refr, float), bend_radius=np.asarray(radius, float),
                ne=np.asarray(ne, float), plane=plane)


def signed_plane_velocities(inputs: dict) -> dict:
    """Diagnostic: the occultation-plane velocity components R6 computes, without its signs.

    ``R6_Framework_Conversion.Occ_Plane_Conversion`` projects each velocity on its in-plane
    axes (:math:`\\hat z = -r_{GS}/|r_{GS}|`, :math:`\\hat r` the part of
    :math:`r_{MEX}` normal to it) and then keeps only magnitudes with fixed signs:
    ``vr_MEX <= 0``, ``vz_MEX >= 0``, ``vr_GS >= 0``, ``vz_GS >= 0``. This returns the
    plain projections :math:`v\\cdot\\hat r`, :math:`v\\cdot\\hat z`, so the harness can
    tell whether a geometry violates those signs (and, by substituting them, which stage a
    failure comes from). For radiocc's egress branch (``data_type`` EGRESS), which is its
    ingress branch with both ``vr`` negated, the ``vr`` projections are returned negated,
    so the result is always what the branch in use expects. Never used by
    :func:`retrieve`.

    Parameters
    ----------
    inputs : dict
        From :func:`radiocc_inputs`.

    Returns
    -------
    dict of ndarray
        ``vr_MEX``, ``vz_MEX``, ``vr_GS``, ``vz_GS`` [m/s], processing order.
    """
    g, s = inputs["pos_gs"], inputs["pos_mex"]
    z_hat = -g / np.linalg.norm(g, axis=1)[:, None]
    r_vec = s + np.einsum("ij,ij->i", s, z_hat)[:, None] * (-z_hat)
    r_hat = r_vec / np.linalg.norm(r_vec, axis=1)[:, None]
    # R9's egress branch is its ingress branch with vr_MEX -> -vr_MEX, vr_GS -> -vr_GS
    r_sign = -1.0 if inputs["data_type"] is not None else 1.0
    out = {}
    for slot, vel in (("MEX", inputs["vel_mex"]), ("GS", inputs["vel_gs"])):
        out[f"vr_{slot}"] = r_sign * np.einsum("ij,ij->i", vel, r_hat)
        out[f"vz_{slot}"] = np.einsum("ij,ij->i", vel, z_hat)
    return out


def _attrs(units, long_name):
    return {"units": units, "long_name": long_name}


def retrieve(observation: xr.Dataset, *, band: str = "x") -> xr.Dataset:
    """Electron density profile of an observation, retrieved by radiocc's own routines.

    Parameters
    ----------
    observation : xarray.Dataset
        Observation per the RO contract: ``time`` [s], a residual Doppler [Hz]
        (``frequency_residual`` one-way; ``frequency_residual_xx``/``_two_way`` and
        ``_xs`` two-way), ``tx_position``, ``rx_position`` [m], ``tx_velocity``,
        ``rx_velocity`` [m/s] on (time, xyz), Mars-centred J2000; attrs ``frequency_hz``
        (downlink transmitted) [Hz], ``link``, ``turnaround_ratio``, ``reference_radius_m``.
    band : {"x", "s", "diff"}
        Two-way links only: which downlink radiocc inverts (module notes, Links).

    Returns
    -------
    xarray.Dataset
        Dim ``altitude`` [m above ``reference_radius_m``], ascending, the levels radiocc
        filled: ``electron_density`` [m^-3], ``refractivity`` [1], ``radius`` [m],
        ``time`` [s]. Dim ``level`` (every sample, observation time order):
        ``bending_angle`` [rad, positive toward the planet], ``impact_parameter`` [m],
        ``level_time`` [s]. Attrs: the observation's, plus ``retrieval``
        ("radiocc <version>"), ``frequency_hz`` (carrier of the inverted band),
        ``radiocc_band``, ``radiocc_data_type``, ``radiocc_i_integral``,
        ``radiocc_i_surface`` (in radiocc's processing order), ``radiocc_warnings``.

    Raises
    ------
    RoharnessError
        radiocc is not installed, or the observation is not one radiocc can take.
    """
    rc = load_radiocc()
    inp = radiocc_inputs(observation, band)
    log: list = []
    out = run_radiocc(inp, log)
    order = inp["order"]
    n = order.size
    t = np.asarray(observation["time"].values, float)
    back = np.empty(n, int)
    back[order] = np.arange(n)  # processing index of each observation sample
    ref = inp["reference_radius_m"]
    radius, ne = out["bend_radius"], out["ne"]
    good = np.flatnonzero(np.isfinite(radius) & np.isfinite(ne))
    good = good[np.argsort(radius[good], kind="stable")]
    f_carrier = carrier_frequency_hz(inp["fsup"], inp["bande"])
    attrs = dict(observation.attrs)
    attrs.update({
        "retrieval": f"radiocc {rc.version}",
        "frequency_hz": f_carrier,
        "reference_radius_m": ref,
        "radiocc_band": inp["bande"],
        "radiocc_fsup_hz": inp["fsup"],
        "radiocc_data_type": "EGRESS" if inp["data_type"] is not None else "None",
        "radiocc_i_integral": inp["i_integral"],
        "radiocc_i_surface": inp["i_surface"],
        "radiocc_warnings": "; ".join(log),
    })
    return xr.Dataset(
        {
            "electron_density": ("altitude", ne[good], _attrs("m-3", "electron density")),
            "refractivity": ("altitude", 1e-6 * out["refractivity"][good],
                             _attrs("1", "refractivity n - 1 at frequency_hz")),
            "radius": ("altitude", radius[good],
                       _attrs("m", "radius of the ray's closest approach")),
            "time": ("altitude", t[order][good], _attrs("s", "time of the sample")),
            "bending_angle": ("level", -out["bend_ang"][back], _attrs(
                "rad", "bending angle, positive toward the planet")),
            "impact_parameter": ("level", out["imp_param"][back],
                                 _attrs("m", "impact parameter")),
            "level_time": ("level", t, _attrs("s", "time of the sample")),
        },
        coords={"altitude": ("altitude", radius[good] - ref,
                             _attrs("m", "altitude above the reference sphere"))},
        attrs=attrs,
    )
