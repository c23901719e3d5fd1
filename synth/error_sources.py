r"""Error sources of the Monte Carlo error budget: what turns a clean observation into data.

Each source is a named, documented model acting on a clean level-2 observation of
:func:`synth.observe.simulate` (the RO contract): it perturbs what the retrieval sees, the
residual Doppler and/or the state vectors. :func:`prepare` does the deterministic work once
per occultation; :func:`perturb` draws one realisation. The budget
(:mod:`validation.budget`) switches sources on one at a time, and all together.

Sources (:data:`SOURCES`; applied in the fixed order :data:`ORDER`)
----------------------------------------------------------------------
``gradients`` (physical, deterministic)
    Horizontal gradients: N_e varies with the solar zenith angle along each ray
    (:mod:`synth.gradients`, excess-phase path integral along the straight ray, each ray's
    closest point anchored at the truth's SZA). The perturbation = gradient-model residual
    minus the same path integral with the SZA held constant, added to the exact (bent-ray)
    base residual. The truth stays the tangent-point profile; the retrieval still assumes
    spherical symmetry, so the effect is a bias.
``sampling`` (physical)
    The level-2 time grid shifted by a random phase, uniform within one sample interval,
    and each sample the box-car average over the integration time T of the (spline of the)
    base residual, as a frequency estimator over a window measures the mean frequency.
    The vacuum Doppler's own curvature within the window is added too (a real receiver
    averages the whole carrier frequency; the retrieval predicts the vacuum Doppler at the
    window centre): :math:`\overline{f_{vac}} - f_{vac}(t_c) \approx T^2 \ddot f_{vac}/24`.
    State vectors and epochs are interpolated to the new times (positions: cubic Hermite
    with the velocities; velocities and epochs: cubic splines); samples whose window leaves
    the simulated span are dropped.
``drift`` (physical)
    Deterministic oscillator drift, one-way links: the presets' ageing rate and thermal
    transient (:data:`synth.oscillator.PRESETS`, transmitter and receiver of
    ``[oscillator]``, :func:`synth.oscillator.deterministic_frac_freq`) plus a
    random offset y0 ~ N(0, |*_offset|) and a random extra rate ~ N(0, |*_rate_per_s|) per
    end (scenario values as 1-sigma; an unset rate adds none), entering the carrier as
    :math:`f_T (y_T - y_R)` like :mod:`synth.instrument`. Time origin: the first sample.
``oscillator`` (physical)
    Power-law noise of the same presets (h_alpha, the receiver's scaled by
    ``receiver_adev_scale`` squared) simulated by :func:`synth.oscillator.oscillator`
    at ``tau0_s`` and averaged over each integration window,
    :math:`f_T[\bar y_T - \bar y_R]`, :math:`\bar y = [x(t + T/2) - x(t - T/2)]/T`.
    These two use the ``[oscillator]`` presets whatever ``enabled``/``noise``/``drift``
    say (the budget's source list is the switch); a preset ``none`` is an ideal oscillator.
    Two-way coherent links: not applicable (ideal ground reference, coherent transponder),
    :class:`retrieval.errors.ScenarioError`.
``thermal`` (physical)
    White frequency noise of the carrier estimate at ``[receiver] cn0_dbhz`` over the
    integration time T, at the Cramer-Rao bound of a tone's frequency [1]_:

    .. math:: \sigma_f^2 = \frac{6}{(2\pi)^2\,(C/N_0)\,T^3}

    (45 dB-Hz, 1 s: 2.2 mHz). The project's ML carrier extractor was measured at 1.03 x
    this bound (benchmarks/carrier_crlb.py). Independent between samples (non-overlapping
    windows). Two-way: on each downlink channel (X, and S independently) at the same C/N0.
``ephemeris`` (physical)
    The reconstructed orbits the retrieval uses are wrong by a bias, constant over the
    occultation within a realisation: position and velocity errors drawn per spacecraft
    with 1-sigma ``[budget] tx/rx_position_sigma_m`` and ``tx/rx_velocity_sigma_m_s``
    (3 components) along RTN axes of each spacecraft (R = r/|r|, N = r x v/|r x v|,
    T = N x R, Mars-centred) or J2000 x/y/z (``ephemeris_frame``). The measured frequency
    is unchanged, so the residual the retrieval forms changes by
    f_vac(true states) - f_vac(perturbed states) (the formula of
    :func:`synth.instrument.vacuum_sky_frequency`, evaluated as a Doppler shift for
    precision; two-way: :math:`f_{down}(P Q - P'Q')` with P, Q the vacuum up- and
    down-link ratios).
    Only ends within 1e9 m of Mars (spacecraft) are perturbed; Earth ends (DSN stations,
    planetary ephemeris) are taken as exact. Sigmas follow the scenario's ``[link]`` roles:
    transmitter/receiver; on a two-way link the spacecraft is the ``[link]`` receiver.
    The defaults (20 m radial, 100 m along-track, 20 m cross-track, 5 mm/s) are ASSUMPTIONS
    for a reconstructed Mars orbit (order of the published reconstruction accuracy of
    navigation solutions of Mars orbiters, tens to hundreds of metres, mostly along track);
    they are not mission figures; edit them per mission.
``parrott`` (recipe, not in the physical totals)
    Parrott et al. (2025)'s error-bar recipe: white noise of standard deviation
    ``parrott_fraction`` (5 %) x max |clean residual| of each channel.

Residual channels: one-way ``frequency_residual``; two-way ``frequency_residual_two_way``
(and ``frequency_residual_xx``, kept equal to it) and ``frequency_residual_xs``. Plasma
terms scale to a two-way channel from the one-way downlink X residual D (at f_X) by the
one-ray relation (SCIENCE.md, Krishnan et al. 2023): two-way X/X = (1 + k_X^2) D,
X-up/S-down = k_X (k_S + 1/k_S) D (k = turnaround ratios); the uplink-geometry error of
this relation (~1e-3, contract) is far below the size of a gradient perturbation's effect.

Random numbers: each source draws from its own generator, spawned from the realisation's
:class:`numpy.random.SeedSequence` with the key crc32(source name): adding or removing a
source never changes another's draws, and the same realisation seed gives the same data.

References
----------
.. [1] Rife, D. C. and Boorstyn, R. R. (1974), Single-tone parameter estimation from
   discrete-time observations, IEEE Trans. Inf. Theory 20(5), 591-598,
   doi:10.1109/TIT.1974.1055282.
.. [2] Parrott, J. et al. (2025), mutual radio occultations MEX-TGO (5 % noise, 100
   realisations; ../shared/SCIENCE.md).
.. [3] Krishnan, A. et al. (2023), Radio Sci. 58, e2023RS007784, doi:10.1029/2023RS007784.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

import numpy as np
import scipy.constants as sc
import xarray as xr
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from retrieval.constants import TURNAROUND_S, TURNAROUND_X
from retrieval.errors import RoharnessError
from synth.errors import ScenarioError
from synth.oscillator import PRESETS, deterministic_frac_freq, oscillator

if TYPE_CHECKING:  # annotations only
    from collections.abc import Sequence

    from synth.scenario import Scenario

SOURCES: dict[str, dict] = {
    "thermal": {"description": "white frequency noise at the Cramer-Rao bound of a tone at "
                               "[receiver] cn0_dbhz over the integration time",
                "stochastic": True, "kind": "physical"},
    "oscillator": {"description": "power-law noise of the [oscillator] presets (tx and rx), "
                                  "averaged over each integration window",
                   "stochastic": True, "kind": "physical"},
    "drift": {"description": "oscillator drift: preset ageing plus random offsets/rates "
                             "(scenario values as 1-sigma)",
              "stochastic": True, "kind": "physical"},
    "ephemeris": {"description": "constant RTN/XYZ bias of each spacecraft's reconstructed "
                                 "position and velocity",
                  "stochastic": True, "kind": "physical"},
    "sampling": {"description": "random sampling phase within one sample; box-car average "
                                "over the integration time",
                 "stochastic": True, "kind": "physical"},
    "gradients": {"description": "horizontal gradients: N_e varies with SZA along the ray "
                                 "(excess-phase path integral); a bias",
                  "stochastic": False, "kind": "physical"},
    "parrott": {"description": "Parrott et al. (2025) recipe: white noise of parrott_fraction "
                               "x max |residual|",
                "stochastic": True, "kind": "recipe"},
}

#: The order perturb() applies sources in: physics of the signal first (gradients), then
#: the measurement grid (sampling), then instrument terms on that grid, the orbit error the
#: retrieval sees, and the recipe.
ORDER: tuple[str, ...] = ("gradients", "sampling", "drift", "oscillator", "thermal",
                          "ephemeris", "parrott")

#: Distance from Mars' centre [m] beyond which a link end is Earth (not perturbed by
#: "ephemeris"); the value of retrieval.geometry.FAR_END_M.
FAR_END_M = 1.0e9

_SIGMA_KEYS = ("tx_position_sigma_m", "tx_velocity_sigma_m_s", "rx_position_sigma_m",
               "rx_velocity_sigma_m_s")
_GL4_T, _GL4_W = np.polynomial.legendre.leggauss(4)


# --------------------------------------------------------------------------------------
# Checks and configuration
# --------------------------------------------------------------------------------------
def check_sources(sources) -> list[str]:
    """The source names as a list; unknown names raise ValueError listing the known ones."""
    names = [sources] if isinstance(sources, str) else list(sources)
    for s in names:
        if s not in SOURCES:
            raise ValueError(f"unknown error source {s!r}; known: {', '.join(SOURCES)}")
    return names


def thermal_sigma_hz(cn0_dbhz: float, integration_time_s: float) -> float:
    r"""Cramer-Rao bound of a tone's frequency estimate [Hz] (Rife & Boorstyn 1974 [1]_).

    .. math:: \sigma_f = \sqrt{\frac{6}{(2\pi)^2\,(C/N_0)\,T^3}}, \qquad
              C/N_0 = 10^{\mathrm{cn0\_dbhz}/10}\ \mathrm{Hz}

    (the high-SNR bound for N samples, 6 / ((2 pi)^2 SNR N (N^2 - 1) dt^2), with
    SNR = C/N0 dt and N dt = T, N >> 1.)
    """
    cn0 = 10.0 ** (float(cn0_dbhz) / 10.0)
    return math.sqrt(6.0 / ((2.0 * math.pi) ** 2 * cn0 * float(integration_time_s) ** 3))


def _sigma_vector(scn, key):
    value = scn["budget"][key]
    ok = (isinstance(value, (list, tuple)) and len(value) == 3
          and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  and math.isfinite(v) and v >= 0 for v in value))
    if not ok:
        raise ScenarioError(f"scenario {scn.name} [budget]: key '{key}' must be a list of 3 "
                            f"finite non-negative numbers, got {value!r}")
    return np.asarray(value, float)


def _is_two_way(obs):
    return "frequency_residual_two_way" in obs.variables


def _channels(obs) -> dict:
    """Residual channels -> (carrier frequency [Hz], plasma scale from the one-way X D)."""
    f = float(obs.attrs["frequency_hz"])
    if not _is_two_way(obs):
        if "frequency_residual" not in obs.variables:
            raise RoharnessError("the observation has neither 'frequency_residual' nor "
                                 "'frequency_residual_two_way' (RO contract)")
        return {"frequency_residual": (f, 1.0)}
    k_x = float(obs.attrs.get("turnaround_ratio", TURNAROUND_X))
    out = {"frequency_residual_two_way": (f, 1.0 + k_x**2)}
    if "frequency_residual_xs" in obs.variables:
        f_up = f / k_x
        f_s = float(obs.attrs.get("frequency_s_hz", TURNAROUND_S * f_up))
        k_s = f_s / f_up
        out["frequency_residual_xs"] = (f_s, k_x * (k_s + 1.0 / k_s))
    return out


def _config(scn, obs) -> dict:
    b = scn["budget"]
    rate = scn["sampling"]["rate_hz"]
    t_int = b["integration_time_s"]
    if t_int is None:
        t_int = 1.0 / rate
    if not (math.isfinite(t_int) and t_int > 0):
        raise ScenarioError(f"scenario {scn.name} [budget]: key 'integration_time_s' must be "
                            f"a positive number of seconds, got {t_int!r}")
    frac = b["parrott_fraction"]
    if not (math.isfinite(frac) and frac >= 0):
        raise ScenarioError(f"scenario {scn.name} [budget]: key 'parrott_fraction' must be a "
                            f"finite number >= 0, got {frac!r}")
    sig = {k: _sigma_vector(scn, k) for k in _SIGMA_KEYS}
    osc = scn["oscillator"]
    ends = {}
    for which in ("transmitter", "receiver"):
        preset = osc[f"{which}_preset"]
        if preset == "none":
            ends[which] = None
            continue
        scale = osc["receiver_adev_scale"] if which == "receiver" else 1.0
        rate_scn = osc[f"{which}_rate_per_s"]
        ends[which] = dict(
            preset=preset, h={k: v * scale**2 for k, v in PRESETS[preset]["h"].items()},
            ageing_rate_per_s=float(PRESETS[preset]["drift"].get("rate_per_s", 0.0)),
            transient={k: PRESETS[preset]["drift"][k] for k in
                       ("accel_per_s2", "step_time_s", "step_size", "step_tau_s")
                       if k in PRESETS[preset]["drift"]},
            offset_sigma=abs(float(osc[f"{which}_offset"])),
            rate_sigma_per_s=abs(float(rate_scn)) if rate_scn is not None else 0.0)
    return dict(integration_time_s=float(t_int), step_s=1.0 / rate,
                sigma_f_hz=thermal_sigma_hz(scn["receiver"]["cn0_dbhz"], t_int),
                parrott_fraction=float(frac), ephemeris_frame=b["ephemeris_frame"],
                sigmas=sig, oscillators=ends, tau0_s=float(osc["tau0_s"]),
                two_way=_is_two_way(obs), channels=_channels(obs),
                link_kind=scn["link"]["kind"])


def _check_applicable(names, cfg):
    if cfg["two_way"]:
        for s in ("oscillator", "drift"):
            if s in names:
                raise ScenarioError(f"error source '{s}' does not apply to a two-way coherent "
                                    "link (ideal ground reference, coherent transponder)")


# --------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------
def prepare(scn, truth: xr.Dataset, obs: xr.Dataset, sources) -> dict:
    """Deterministic per-occultation precomputation (picklable; may call SPICE).

    Parameters
    ----------
    scn : synth.scenario.Scenario
    truth, obs : xarray.Dataset
        Truth and clean observation of :func:`synth.observe.simulate`.
    sources : sequence of str
        Names from :data:`SOURCES`.

    Returns
    -------
    dict
        ``config`` (checked scenario values: integration time, thermal sigma_f, sigmas,
        oscillator presets, channels) and, with ``gradients``, ``gradients``: channel ->
        perturbation [Hz] on the observation's time grid, plus ``gradient_tangent_sza_deg``.

    Raises
    ------
    ValueError
        Unknown source name.
    ScenarioError
        Bad ``[budget]`` values, or a source that does not apply to the link.
    """
    names = check_sources(sources)
    cfg = _config(scn, obs)
    _check_applicable(names, cfg)
    prep = {"config": cfg}
    if "gradients" in names:
        from synth.gradients import gradient_perturbation

        g = gradient_perturbation(obs, truth)
        d = g["frequency_residual_perturbation"].values
        prep["gradients"] = {ch: scale * d for ch, (_, scale) in cfg["channels"].items()}
        prep["gradient_tangent_sza_deg"] = g["tangent_sza_deg"].values
        prep["gradient_peak_fraction"] = float(
            np.nanmax(np.abs(d)) / np.nanmax(np.abs(g["frequency_residual_spherical"].values)))
    return prep


# --------------------------------------------------------------------------------------
# perturb
# --------------------------------------------------------------------------------------
def _seed_sequence(rng) -> np.random.SeedSequence:
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        ss = getattr(rng.bit_generator, "seed_seq", None)
        if isinstance(ss, np.random.SeedSequence):
            return ss
        return np.random.SeedSequence(int(rng.integers(0, 2**63)))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.SeedSequence(int(rng))
    raise TypeError("rng must be a numpy Generator, SeedSequence or int seed")


def child_rng(rng, source: str) -> np.random.Generator:
    """The generator of one source: the realisation's SeedSequence with the extra spawn key
    crc32(source), so each source's draws are independent of which others are on."""
    ss = _seed_sequence(rng)
    key = tuple(ss.spawn_key) + (zlib.crc32(source.encode()),)
    return np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=key))


def _ratio_minus_one(r_t, v_t, r_r, v_r):
    """f_R / f_T - 1 of the straight ray, (b - a) / (1 - b) with a = e.v_R/c, b = e.v_T/c:
    the contract's first-order Doppler ratio without the cancellation of 1 - 1."""
    d = np.asarray(r_r, float) - np.asarray(r_t, float)
    e = d / np.linalg.norm(d, axis=-1, keepdims=True)
    a = np.einsum("ij,ij->i", e, np.asarray(v_r, float)) / sc.c
    b = np.einsum("ij,ij->i", e, np.asarray(v_t, float)) / sc.c
    return (b - a) / (1.0 - b)


def _vacuum(st, two_way, channels):
    """Vacuum Doppler shift f_vac - f of each channel [Hz] from a dict of state arrays.

    The same first-order formula as :func:`synth.instrument.vacuum_sky_frequency`, written
    as a shift so that differences of ~1e5 Hz shifts keep ~1e-10 Hz precision (the
    frequencies themselves would lose ~1e-6 Hz at X band).
    """
    if not two_way:
        (ch, (f, _)), = channels.items()
        return {ch: f * _ratio_minus_one(st["tx_position"], st["tx_velocity"],
                                         st["rx_position"], st["rx_velocity"])}
    up_p = st.get("uplink_tx_position", st["rx_position"])
    up_v = st.get("uplink_tx_velocity", st["rx_velocity"])
    p1 = _ratio_minus_one(up_p, up_v, st["tx_position"], st["tx_velocity"])
    q1 = _ratio_minus_one(st["tx_position"], st["tx_velocity"], st["rx_position"],
                          st["rx_velocity"])
    pq1 = p1 + q1 + p1 * q1  # P Q - 1
    return {ch: f * pq1 for ch, (f, _) in channels.items()}


_POS_VEL = (("tx_position", "tx_velocity"), ("rx_position", "rx_velocity"),
            ("uplink_tx_position", "uplink_tx_velocity"))


def _states(obs):
    return {k: obs[k].values for pair in _POS_VEL for k in pair if k in obs.variables}


def _resample(obs, resid, cfg, phase_s):
    """The 'sampling' source: new grid t + phase, box-car averages, interpolated states."""
    t = obs["time"].values
    T = cfg["integration_time_s"]
    tn = t + phase_s
    keep = (tn - 0.5 * T >= t[0] - 1e-9) & (tn + 0.5 * T <= t[-1] + 1e-9)
    tn = tn[keep]
    if tn.size < 10:
        raise RoharnessError(f"sampling: only {tn.size} samples keep their {T:g} s "
                             "integration window inside the observation")
    nodes = (tn[:, None] + 0.5 * T * _GL4_T[None, :]).ravel()
    both = np.concatenate([tn, nodes])
    new, sub = {}, {}
    for pos, vel in _POS_VEL:
        if pos in obs.variables:
            p, v = obs[pos].values, obs[vel].values
            pp = CubicHermiteSpline(t, p, v, axis=0)(both)
            vv = CubicSpline(t, v, axis=0)(both)
            new[pos], sub[pos] = pp[:tn.size], pp[tn.size:]
            new[vel], sub[vel] = vv[:tn.size], vv[tn.size:]
    for k in ("et_tx", "et_rx", "et_uplink_tx"):
        if k in obs.variables:
            new[k] = CubicSpline(t, obs[k].values)(tn)
    # box-car average of the residual (exact for its spline) + the vacuum curvature
    vac_sub = _vacuum(sub, cfg["two_way"], cfg["channels"])
    vac_mid = _vacuum({k: new[k] for k in sub}, cfg["two_way"], cfg["channels"])
    out = {}
    for ch, y in resid.items():
        anti = CubicSpline(t, y).antiderivative()
        avg = (anti(tn + 0.5 * T) - anti(tn - 0.5 * T)) / T
        vac_avg = (vac_sub[ch].reshape(tn.size, 4) @ _GL4_W) / 2.0
        out[ch] = avg + (vac_avg - vac_mid[ch])
    return tn, new, out


def _rtn_axes(r, v):
    """Unit R, T, N axes per sample, shape (n, 3, 3) with rows R, T, N."""
    rr = r / np.linalg.norm(r, axis=1, keepdims=True)
    n = np.cross(r, v)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)
    tt = np.cross(n, rr)
    return np.stack([rr, tt, n], axis=1)


def _oscillator_means(cfg, which, t, rng):
    """Window-averaged fractional frequency noise of one end at times t, or 0."""
    end = cfg["oscillators"][which]
    if end is None or not any(v > 0 for v in end["h"].values()):
        return 0.0
    T, tau0 = cfg["integration_time_s"], cfg["tau0_s"]
    start = t[0] - 0.5 * T
    span = (t[-1] + 0.5 * T) - start
    osc = oscillator(span + tau0, tau0, rng=rng, preset=end["preset"], h=end["h"], drift=False)
    x = osc["phase_error"].values
    tx = start + osc["time"].values
    return (np.interp(t + 0.5 * T, tx, x) - np.interp(t - 0.5 * T, tx, x)) / T


def perturb(obs: xr.Dataset, sources: Sequence[str], scn: Scenario, prep: dict | None,
            rng: np.random.Generator) -> xr.Dataset:
    """One realisation of the selected error sources applied to a clean observation.

    Parameters
    ----------
    obs : xarray.Dataset
        Clean level-2 observation (RO contract), from :func:`synth.observe.simulate`.
    sources : sequence of str
        Names from :data:`SOURCES` (applied in :data:`ORDER`).
    scn : synth.scenario.Scenario
    prep : dict or None
        :func:`prepare`'s output for the same observation (None: computed here).
    rng : numpy.random.Generator, SeedSequence or int
        The realisation's randomness; each source uses :func:`child_rng`.

    Returns
    -------
    xarray.Dataset
        What the retrieval sees: same layout, residual channel(s) perturbed, state vectors
        perturbed by ``ephemeris``, another time grid with ``sampling``;
        ``attrs["error_sources"] = ",".join(sources)``.
    """
    names = check_sources(sources)
    if prep is None or "config" not in prep:
        if "gradients" in names:
            raise RoharnessError("perturb: the 'gradients' source needs prepare(scn, truth, "
                                 "obs, sources) first (it needs the truth)")
        prep = prepare(scn, None, obs, names)
    elif "gradients" in names and "gradients" not in prep:
        raise RoharnessError("perturb: 'gradients' was not among the sources given to "
                             "prepare(); prepare again with it")
    cfg = prep["config"]
    _check_applicable(names, cfg)
    channels = cfg["channels"]
    resid = {ch: np.array(obs[ch].values, float) for ch in channels}
    clean_max = {ch: float(np.nanmax(np.abs(obs[ch].values))) for ch in channels}
    t = np.asarray(obs["time"].values, float)
    states = None   # new state arrays if changed
    extra = {}      # other re-gridded variables (epochs)
    for name in ORDER:
        if name not in names:
            continue
        g = child_rng(rng, name)
        if name == "gradients":
            for ch in channels:
                resid[ch] = resid[ch] + prep["gradients"][ch]
        elif name == "sampling":
            phase = g.uniform(0.0, cfg["step_s"])
            t, new, resid = _resample(obs, resid, cfg, phase)
            states = {k: v for k, v in new.items() if not k.startswith("et_")}
            extra = {k: v for k, v in new.items() if k.startswith("et_")}
        elif name == "drift":
            f_t = channels["frequency_residual"][0]
            y = np.zeros_like(t)
            for which, sign in (("transmitter", 1.0), ("receiver", -1.0)):
                end = cfg["oscillators"][which]
                if end is None:
                    continue
                y0 = g.normal(0.0, 1.0) * end["offset_sigma"]
                rate = end["ageing_rate_per_s"] + g.normal(0.0, 1.0) * end["rate_sigma_per_s"]
                y += sign * deterministic_frac_freq(t, y0, rate, **end["transient"])
            resid["frequency_residual"] = resid["frequency_residual"] + f_t * y
        elif name == "oscillator":
            f_t = channels["frequency_residual"][0]
            g_tx, g_rx = g.spawn(2)
            y = (_oscillator_means(cfg, "transmitter", t, g_tx)
                 - _oscillator_means(cfg, "receiver", t, g_rx))
            resid["frequency_residual"] = resid["frequency_residual"] + f_t * y
        elif name == "thermal":
            for ch in channels:
                resid[ch] = resid[ch] + g.normal(0.0, cfg["sigma_f_hz"], t.size)
        elif name == "ephemeris":
            cur = states if states is not None else _states(obs)
            true_vac = _vacuum(cur, cfg["two_way"], channels)
            pert = _ephemeris_states(cur, cfg, g)
            new_vac = _vacuum(pert, cfg["two_way"], channels)
            for ch in channels:
                resid[ch] = resid[ch] + (true_vac[ch] - new_vac[ch])
            states = pert
        elif name == "parrott":
            for ch in channels:
                resid[ch] = resid[ch] + g.normal(0.0, cfg["parrott_fraction"] * clean_max[ch],
                                                 t.size)
    return _assemble(obs, t, resid, states, extra, names)


def _ephemeris_states(cur, cfg, g):
    """Biased copies of the spacecraft states (module docstring)."""
    sig = cfg["sigmas"]
    # obs tx/rx -> scenario role (two-way: obs tx is the spacecraft = [link] receiver)
    roles = {"tx": "rx", "rx": "tx"} if cfg["two_way"] else {"tx": "tx", "rx": "rx"}
    out = {k: v for k, v in cur.items()}
    draws = {}
    for end in ("tx", "rx"):  # always draw both, so the draws do not depend on the geometry
        draws[end] = (g.standard_normal(3), g.standard_normal(3))
    for end in ("tx", "rx"):
        r, v = cur[f"{end}_position"], cur[f"{end}_velocity"]
        if np.max(np.linalg.norm(r, axis=1)) > FAR_END_M:
            continue
        role = roles[end]
        dr = draws[end][0] * sig[f"{role}_position_sigma_m"]
        dv = draws[end][1] * sig[f"{role}_velocity_sigma_m_s"]
        if cfg["ephemeris_frame"] == "rtn":
            axes = _rtn_axes(r, v)  # (n, 3 [R, T, N], 3 [xyz])
            dr = np.einsum("k,nkj->nj", dr, axes)
            dv = np.einsum("k,nkj->nj", dv, axes)
        out[f"{end}_position"] = r + dr
        out[f"{end}_velocity"] = v + dv
    return out


def _assemble(obs, t, resid, states, extra, names):
    if t.size != obs.sizes["time"] or not np.array_equal(t, obs["time"].values):
        keep = [k for k, v in obs.data_vars.items() if "time" in v.dims]
        out = obs.drop_vars(keep).drop_vars("time")
        out = out.assign_coords(time=("time", t, dict(obs["time"].attrs)))
        for k in keep:
            v = obs[k]
            if k in resid:
                data = resid[k]
            elif states is not None and k in states:
                data = states[k]
            elif k in extra:
                data = extra[k]
            elif k == "frequency_residual_xx":
                continue
            else:  # any other per-sample variable: linear interpolation
                src = v.values
                data = np.stack([np.interp(t, obs["time"].values, c) for c in
                                 src.reshape(src.shape[0], -1).T], axis=1).reshape(
                    (t.size,) + src.shape[1:])
            out[k] = (v.dims, data, dict(v.attrs))
    else:
        # the same grid: swap the data of the copy's own variables (a shallow copy has new
        # Variable objects), the Dataset assigning new variables would give, without
        # xarray's merge and alignment per variable (~10 times the cost, per realisation)
        out = obs.copy()
        for k, data in (*resid.items(), *(states or {}).items()):
            var = out.variables[k]
            var.values = data  # same shape (checked by xarray), dims and attrs
            var.encoding = {}
    if "frequency_residual_xx" in obs.variables:
        out["frequency_residual_xx"] = (("time",), out["frequency_residual_two_way"].values,
                                        dict(obs["frequency_residual_xx"].attrs))
    out.attrs = dict(obs.attrs)
    out.attrs["error_sources"] = ",".join(names)
    return out
