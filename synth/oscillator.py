r"""Oscillator frequency error: deterministic drift plus power-law noise.

The fractional frequency error of an oscillator, :math:`y(t) = \delta f / f`, is modelled as

.. math::

    y(t) = y_0 + \dot y\, t + \tfrac12 \ddot y\, t^2 + y_{\rm step}(t) + y_{\rm noise}(t),

with an optional thermal step :math:`y_{\rm step}(t) = \Delta y\,[1 - e^{-(t-t_s)/\tau_s}]`
for :math:`t > t_s` (a pure step when :math:`\tau_s = 0`). The time (phase) error is
:math:`x(t) = \int_0^t y\,dt'` [s]; a carrier of nominal frequency :math:`f_c` gains the
phase :math:`2\pi f_c x(t)`.

Noise model
-----------
:math:`y_{\rm noise}` is a sum of the five power-law processes of IEEE Std 1139 [1, 2], each
with a one-sided spectral density :math:`S_y(f) = h_\alpha f^\alpha`:

========  =====  ===========================
name      alpha  process
========  =====  ===========================
``wpm``     2    white phase modulation
``fpm``     1    flicker phase modulation
``wfm``     0    white frequency modulation
``ffm``    -1    flicker frequency modulation
``rwfm``   -2    random-walk frequency modulation
========  =====  ===========================

Time series are generated with the fractional-difference filter of Kasdin & Walter [3]:
the phase :math:`x` has :math:`S_x = S_y / (2\pi f)^2 \propto f^{-a}`, :math:`a = 2 - \alpha`;
white noise :math:`w_k` of variance :math:`Q_d` is passed through the filter
:math:`H(z) = (1 - z^{-1})^{-a/2}`, whose impulse response is
:math:`h_0 = 1,\ h_k = h_{k-1} (a/2 + k - 1) / k`. The discrete process has the one-sided
spectrum :math:`S_x(f) = 2 Q_d \tau_0 / |2 \sin(\pi f \tau_0)|^{a}`, which matches
:math:`h_\alpha f^{\alpha-2} / (4\pi^2)` at low frequency when

.. math::

    Q_d = \tfrac12\, h_\alpha\, (2\pi)^{-\alpha}\, \tau_0^{1-\alpha}.

Integer exponents (white, random walk, random run) use cumulative sums, O(N); the flicker
exponents use a zero-padded FFT convolution with the full N-term filter (linear, not
circular, so the non-stationary processes start from rest), O(N log N) and about
6 N float64 of working memory. The fractional frequency returned is the average over each
sample interval, :math:`\bar y_k = (x_{k+1} - x_k) / \tau_0`, the quantity an Allan
deviation is defined on.

Allan deviation
---------------
Two models for :math:`\sigma_y^2(\tau) = \sum_\alpha h_\alpha K_\alpha(\tau)` are offered
(``model=``):

``"standard"``
    The textbook formulas (Barnes et al. [1], Riley [2] table 3), with the measurement
    bandwidth :math:`f_h`:
    :math:`K_2 = 3 f_h / (4\pi^2\tau^2)`,
    :math:`K_1 = [1.038 + 3\ln(2\pi f_h \tau)] / (4\pi^2\tau^2)`,
    :math:`K_0 = 1 / (2\tau)`, :math:`K_{-1} = 2 \ln 2`, :math:`K_{-2} = 2\pi^2\tau / 3`.
    For white PM :math:`f_h = 1/(2\tau_0)` (Nyquist, exact for sampled white phase). For
    flicker PM the Kasdin-Walter spectrum :math:`1/(2\sin\pi f\tau_0)` exceeds
    :math:`1/(2\pi f\tau_0)` near Nyquist; integrating the difference gives exactly the
    standard formula with :math:`f_h = 2/(\pi\tau_0)` (derivation:
    :math:`\int_0^{1/2} [1/(2\sin\pi u) - 1/(2\pi u)]\,du = \ln(4/\pi)/(2\pi)`), which is
    used here so that the formula describes the generated series.
``"discrete"``
    The exact Allan variance of the generated (sampled) processes, by numerical quadrature
    of :math:`\sigma_y^2(m\tau_0) = (8/\tau^2)\int_0^{f_N} S_x(f) \sin^4(\pi f\tau)\,df`
    over the discrete spectrum above; defined for :math:`\tau = m\tau_0` only. It differs
    from ``"standard"`` by < 1 % for :math:`m \ge 10` (random-walk FM: exactly by the
    factor :math:`1 + 1/(2m^2)`).

References
----------
.. [1] Barnes, J. A. et al. (1971), Characterization of frequency stability, IEEE Trans.
   Instrum. Meas. IM-20(2), 105-120, doi:10.1109/TIM.1971.5570702.
.. [2] Riley, W. J. (2008), Handbook of Frequency Stability Analysis, NIST Special
   Publication 1065, doi:10.6028/NIST.SP.1065 (table of sigma-tau relations; also
   IEEE Std 1139-2008, doi:10.1109/IEEESTD.2008.4797525).
.. [3] Kasdin, N. J. and Walter, T. (1992), Discrete simulation of power law noise,
   Proc. 1992 IEEE Frequency Control Symposium, 274-283, doi:10.1109/FREQ.1992.270003;
   Kasdin, N. J. (1995), Proc. IEEE 83(5), 802-827, doi:10.1109/5.381848.
.. [4] Tyler, G. L. et al. (2001), Radio science observations with Mars Global Surveyor,
   J. Geophys. Res. 106(E10), 23327-23348, doi:10.1029/2000JE001348 (USO Allan deviation,
   see ../shared/SCIENCE.md section 4).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import xarray as xr
from scipy.optimize import nnls

from retrieval.errors import RoharnessError

#: Power-law exponent alpha of S_y(f) = h_alpha f^alpha for each noise type.
NOISE_ALPHA = {"wpm": 2, "fpm": 1, "wfm": 0, "ffm": -1, "rwfm": -2}

ADEV_MODELS = ("standard", "discrete")


def _targets(kind):
    # Assumed Allan-deviation targets the presets are built from (see PRESETS).
    if kind is True or kind == "uso":
        return (1.0, 100.0, 1000.0), (1.0e-12, 4.0e-13, 4.0e-13)
    if kind == "electra":
        return (1.0, 10.0, 100.0), (1.0e-11, 1.0e-11, 2.0e-11)
    return (1.0, 10.0, 100.0), (1.0e-9, 1.0e-9, 2.0e-9)


def _check_noise_types(names):
    unknown = [n for n in names if n not in NOISE_ALPHA]
    if unknown:
        raise ValueError(f"unknown noise type(s) {unknown}; known: {sorted(NOISE_ALPHA)}")


def _check_model(model):
    if model not in ADEV_MODELS:
        raise ValueError(f"unknown ADEV model {model!r}; known: {list(ADEV_MODELS)}")


def _gauss_legendre_sin4(a: int, m: int, npts: int = 24) -> float:
    r"""I_a(m) = \int_0^{1/2} |2 sin(pi u)|^{-a} sin^4(pi m u) du by Gauss-Legendre.

    The integrand is smooth between the zeros of sin^4(pi m u) (spacing 1/m); [0, 1/2] is
    cut into 2m panels (4 per period) of npts nodes each. Near u = 0 the factor
    sin^4 ~ u^4 tames |2 sin(pi u)|^{-a} (a <= 4), so the integrand is bounded.
    """
    nodes, weights = np.polynomial.legendre.leggauss(npts)
    panels = max(2 * m, 4)
    edges = np.linspace(0.0, 0.5, panels + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    total = 0.0
    # Chunk the panels so the node array stays small for large m.
    chunk = 20000
    for s in range(0, panels, chunk):
        u = mid[s:s + chunk, None] + half[s:s + chunk, None] * nodes[None, :]
        su = np.sin(np.pi * u)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.sin(np.pi * m * u) ** 4 / np.abs(2.0 * su) ** a
        g = np.where(u > 0, g, 0.0)
        total += float(np.sum(g * weights[None, :] * half[s:s + chunk, None]))
    return total


def _kernel(alpha: int, tau_s: np.ndarray, tau0_s: float, model: str) -> np.ndarray:
    """Allan variance per unit h_alpha, K_alpha(tau) (see module docstring)."""
    tau = np.asarray(tau_s, dtype=float)
    if model == "standard":
        if alpha == 2:
            return 3.0 * (0.5 / tau0_s) / (4.0 * np.pi**2 * tau**2)
        if alpha == 1:
            f_h = 2.0 / (np.pi * tau0_s)  # effective cutoff of the Kasdin-Walter sequence
            return (1.038 + 3.0 * np.log(2.0 * np.pi * f_h * tau)) / (4.0 * np.pi**2 * tau**2)
        if alpha == 0:
            return 1.0 / (2.0 * tau)
        if alpha == -1:
            return np.full_like(tau, 2.0 * np.log(2.0))
        return 2.0 * np.pi**2 * tau / 3.0
    m = np.rint(tau / tau0_s).astype(int)
    if np.any(m < 1) or np.any(np.abs(m * tau0_s - tau) > 1e-9 * np.maximum(tau, 1.0)):
        raise RoharnessError(
            f"the discrete ADEV model needs averaging times that are multiples of the sample "
            f"interval {tau0_s} s; got {tau.tolist()}."
        )
    a = 2 - alpha
    integ = np.array([_gauss_legendre_sin4(a, int(mi)) for mi in m.ravel()]).reshape(m.shape)
    return 8.0 * (2.0 * np.pi) ** (-alpha) * tau0_s ** (1 - alpha) * integ / tau**2


def adev_from_h(h: dict, tau_s, tau0_s: float, model: str = "discrete") -> np.ndarray:
    r"""Allan deviation of a sum of power-law noises.

    .. math:: \sigma_y(\tau) = \Big[\sum_\alpha h_\alpha K_\alpha(\tau)\Big]^{1/2}

    Parameters
    ----------
    h : dict
        Noise type name (``wpm``, ``fpm``, ``wfm``, ``ffm``, ``rwfm``) -> :math:`h_\alpha`
        [Hz^(-1-alpha)].
    tau_s : array_like
        Averaging times [s].
    tau0_s : float
        Sample interval of the series [s] (sets the measurement bandwidth).
    model : {"discrete", "standard"}
        ``"standard"``: textbook formulas [1, 2]; ``"discrete"``: exact for the generated
        Kasdin-Walter sequences (tau must be a multiple of tau0_s). See the module docstring.

    Returns
    -------
    numpy.ndarray
        Allan deviation (dimensionless), shaped like ``tau_s``.
    """
    _check_noise_types(h)
    _check_model(model)
    tau = np.asarray(tau_s, dtype=float)
    var = np.zeros_like(tau)
    for name, coeff in h.items():
        if coeff:
            var = var + float(coeff) * _kernel(NOISE_ALPHA[name], tau, tau0_s, model)
    return np.sqrt(var)


def h_from_adev(tau_s, adev, noise_types, tau0_s: float, model: str = "standard") -> dict:
    r"""Power-law coefficients :math:`h_\alpha \ge 0` that reproduce given Allan deviations.

    Solves :math:`\sigma^2(\tau_i) = \sum_\alpha h_\alpha K_\alpha(\tau_i)` in the
    least-squares sense with relative weights (each row divided by :math:`\sigma^2(\tau_i)`)
    under :math:`h_\alpha \ge 0` (scipy NNLS). With as many points as noise types and a
    feasible target the fit is exact.

    Parameters
    ----------
    tau_s, adev : array_like
        Averaging times [s] and target Allan deviations.
    noise_types : sequence of str
        Noise types to use (``wpm``, ``fpm``, ``wfm``, ``ffm``, ``rwfm``).
    tau0_s : float
        Sample interval of the series to be generated [s] (matters for the PM types).
    model : {"standard", "discrete"}
        Kernel model, see :func:`adev_from_h`.

    Returns
    -------
    dict
        Noise type -> :math:`h_\alpha`.
    """
    _check_noise_types(noise_types)
    _check_model(model)
    tau = np.atleast_1d(np.asarray(tau_s, dtype=float))
    sig = np.atleast_1d(np.asarray(adev, dtype=float))
    if tau.shape != sig.shape or np.any(sig <= 0) or np.any(tau <= 0):
        raise RoharnessError(
            "h_from_adev needs positive averaging times and Allan deviations of equal length."
        )
    target = sig**2
    design = np.column_stack([_kernel(NOISE_ALPHA[n], tau, tau0_s, model) for n in noise_types])
    coeff, _ = nnls(design / target[:, None], np.ones_like(target))
    return {n: float(c) for n, c in zip(noise_types, coeff)}


def _kasdin_filter(a: float, n: int) -> np.ndarray:
    """Impulse response of (1 - z^-1)^(-a/2), first n terms (Kasdin & Walter [3])."""
    k = np.arange(1, n, dtype=float)
    coeff = np.empty(n)
    coeff[0] = 1.0
    coeff[1:] = np.cumprod((a / 2.0 + k - 1.0) / k)
    return coeff


def power_law_phase(n: int, tau0_s: float, h: dict, *, rng: np.random.Generator) -> np.ndarray:
    r"""Time error :math:`x_k` [s] of power-law frequency noise, Kasdin-Walter method.

    Parameters
    ----------
    n : int
        Number of phase samples (epochs :math:`k \tau_0`, k = 0..n-1).
    tau0_s : float
        Sample interval [s].
    h : dict
        Noise type -> :math:`h_\alpha` (see module docstring); zero entries are skipped.
    rng : numpy.random.Generator
        Source of randomness (explicit; no global state is used).

    Returns
    -------
    numpy.ndarray
        Time error [s], length n. Each noise type is an independent draw; they are summed.
        Non-stationary types (random walk and flicker FM) start from zero at k = 0.
    """
    _check_noise_types(h)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (numpy.random.default_rng(seed))")
    x = np.zeros(n)
    nfft = scipy.fft.next_fast_len(2 * n, real=True)
    for name in ("wpm", "fpm", "wfm", "ffm", "rwfm"):  # fixed order: reproducible draws
        coeff = float(h.get(name, 0.0))
        if coeff < 0:
            raise RoharnessError(f"noise coefficient h for {name} must be >= 0, got {coeff}.")
        if coeff == 0.0:
            continue
        alpha = NOISE_ALPHA[name]
        a = 2 - alpha
        q_d = 0.5 * coeff * (2.0 * np.pi) ** (-alpha) * tau0_s ** (1 - alpha)
        w = rng.standard_normal(n)
        w *= math.sqrt(q_d)
        if a == 0:
            x += w
        elif a == 2:
            x += np.cumsum(w)
        elif a == 4:
            np.cumsum(w, out=w)
            x += np.cumsum(w)
        else:  # flicker: FFT convolution with the fractional-difference filter
            spec = scipy.fft.rfft(w, nfft)
            del w
            spec *= scipy.fft.rfft(_kasdin_filter(a, n), nfft)
            x += scipy.fft.irfft(spec, nfft)[:n]
            del spec
    return x


def deterministic_frac_freq(t_s, offset: float = 0.0, rate_per_s: float = 0.0,
                            accel_per_s2: float = 0.0, step_time_s: float | None = None,
                            step_size: float = 0.0, step_tau_s: float = 0.0) -> np.ndarray:
    r"""Deterministic fractional frequency error.

    .. math::

        y(t) = y_0 + \dot y\, t + \tfrac12 \ddot y\, t^2
               + \Delta y\,[1 - e^{-(t - t_s)/\tau_s}]\,H(t - t_s)

    Parameters
    ----------
    t_s : array_like
        Time since the reference epoch [s].
    offset, rate_per_s, accel_per_s2 : float
        :math:`y_0` [1], :math:`\dot y` [1/s], :math:`\ddot y` [1/s^2].
    step_time_s, step_size, step_tau_s : float
        Thermal step: onset :math:`t_s` [s] (None: no step), size :math:`\Delta y` [1],
        settling time constant :math:`\tau_s` [s] (0: instantaneous step).
    """
    t = np.asarray(t_s, dtype=float)
    y = offset + rate_per_s * t + 0.5 * accel_per_s2 * t**2
    if step_time_s is not None and step_size:
        dt = np.maximum(t - step_time_s, 0.0)
        if step_tau_s > 0:
            y = y + step_size * -np.expm1(-dt / step_tau_s)
        else:
            y = y + np.where(t >= step_time_s, step_size, 0.0)
    return y


def deterministic_phase(t_s, offset: float = 0.0, rate_per_s: float = 0.0,
                        accel_per_s2: float = 0.0, step_time_s: float | None = None,
                        step_size: float = 0.0, step_tau_s: float = 0.0) -> np.ndarray:
    r"""Time error of the deterministic drift, :math:`x(t) = \int_0^t y\,dt'` [s].

    .. math::

        x(t) = y_0 t + \dot y\, t^2/2 + \ddot y\, t^3/6
               + \Delta y\,\{d - \tau_s [1 - e^{-d/\tau_s}]\},\quad d = \max(t - t_s, 0)

    Same parameters as :func:`deterministic_frac_freq` (assumes :math:`t_s \ge 0`).
    """
    t = np.asarray(t_s, dtype=float)
    x = offset * t + rate_per_s * t**2 / 2.0 + accel_per_s2 * t**3 / 6.0
    if step_time_s is not None and step_size:
        d = np.maximum(t - step_time_s, 0.0)
        if step_tau_s > 0:
            x = x + step_size * (d + step_tau_s * np.expm1(-d / step_tau_s))
        else:
            x = x + step_size * d
    return x


def _preset_h(kind) -> dict:
    tau, sig = _targets(kind)
    return h_from_adev(tau, sig, ("wfm", "ffm", "rwfm"), tau0_s=0.1, model="standard")


#: Oscillator presets (ASSUMPTIONS, see ../shared/SCIENCE.md section 4). Noise coefficients
#: are solved (standard formulas, white/flicker/random-walk FM) from assumed ADEV targets:
#:
#: * ``uso``: 1e-12 at 1 s, 4e-13 at 100 s and 1000 s (MGS-like USO [4]); gives ~4.9e-13 at
#:   10 s. Drift: linear ageing 1e-16 /s (about 1e-11 per day; assumed typical).
#: * ``tcxo``: 1e-9 at 1 s and 10 s, 2e-9 at 100 s (catalogue TCXO class, not a mission
#:   figure). Drift: 2e-12 /s (about 1.2e-9, i.e. 0.5 Hz at 437 MHz, over a 10-min
#:   occultation: the "drift as large as the ionospheric signal" of a receiver without USO).
#:
#: * ``electra``: an INFERENCE for the Electra UHF receiver of ExoMars TGO, not a mission
#:   figure. Electra has no USO, yet the published MEX-TGO chain (a vacuum polynomial plus
#:   an offset bounded by +-0.5 Hz, Parrott et al. 2025) returned 71 dayside profiles from
#:   it, so its frequency error must be dominated by a smooth drift with short-term noise far
#:   below a catalogue TCXO. Inferred from this harness's own sweep (benchmarks/
#:   drift_strategies.py, 20 seeds per level, withers2020 recipe, 5 % / 2 km on the M2
#:   peak): 0/20 at the tcxo noise, 15/20 at 0.02 x, 20/20 at 0.01 x; ``roharness
#:   requirement --vary receiver_adev_scale`` puts the 90 % point at ~0.017 x. Noise:
#:   0.01 x tcxo, i.e. 1e-11 at 1 s and 10 s, 2e-11 at 100 s. Drift, several Hz over a pass:
#:   ageing 2e-12 /s (0.55 Hz per 10 min at 437.1 MHz) plus a warm-up thermal transient
#:   starting with the record, 6e-8 settling with tau = 6000 s (2.6 Hz in the first 10 min;
#:   3.2 Hz in all). Its curvature is what a linear baseline cannot remove: ~0.01 Hz from the
#:   chord over the ~320 s between 230 and 90 km, about 1 % of a ~0.8 Hz layer signal,
#:   which the budget's ``drift`` row measures. The curvature is itself bounded by the
#:   inference: with 3e-8 and tau = 3000 s (twice the curvature) the same sweep gave
#:   withers2020 17/20, with 6e-8 and 6000 s 19/20 (baseline_poly 12/20, parrott2025 11/20).
#:
#: The FM-only presets make the ADEV independent of the sample interval; each value is a
#: dict with ``h`` (noise type -> h_alpha) and ``drift`` (keywords of
#: :func:`deterministic_frac_freq`).
PRESETS = {
    "uso": {"h": _preset_h(True), "drift": {"offset": 0.0, "rate_per_s": 1.0e-16},
            "adev_targets": _targets(True)},
    "tcxo": {"h": _preset_h(False), "drift": {"offset": 0.0, "rate_per_s": 2.0e-12},
             "adev_targets": _targets(False)},
    "electra": {"h": _preset_h("electra"),
                "drift": {"offset": 0.0, "rate_per_s": 2.0e-12, "step_time_s": 0.0,
                          "step_size": 6.0e-8, "step_tau_s": 6000.0},
                "adev_targets": _targets("electra")},
}


def oscillator(duration_s: float, tau0_s: float, *, rng: np.random.Generator | None = None,
               preset: str | None = None, h: dict | None = None, drift: bool = True,
               offset: float | None = None, rate_per_s: float | None = None,
               accel_per_s2: float | None = None, step_time_s: float | None = None,
               step_size: float | None = None, step_tau_s: float | None = None
               ) -> xr.Dataset:
    r"""Simulate one oscillator: time error and fractional frequency error series.

    Parameters
    ----------
    duration_s, tau0_s : float
        Length of the series and sample interval [s]; the phase is given at
        ``n + 1 = round(duration_s / tau0_s) + 1`` epochs :math:`t_k = k\tau_0`.
    rng : numpy.random.Generator
        Required when there is noise.
    preset : {"uso", "tcxo"} or None
        Start from a preset (:data:`PRESETS`); explicit arguments override its values.
    h : dict or None
        Noise type -> :math:`h_\alpha` (replaces the preset's noise; ``{}`` = no noise).
    drift : bool
        False switches the deterministic part off entirely (noise-only oscillator).
    offset, rate_per_s, accel_per_s2, step_time_s, step_size, step_tau_s
        Deterministic drift, see :func:`deterministic_frac_freq`; None keeps the preset's value.

    Returns
    -------
    xarray.Dataset
        ``phase_error`` [s] on ``time`` (n + 1 epochs, x(0) = deterministic 0 + noise),
        ``frac_freq_error`` [1] on ``time_mid`` (n interval midpoints; the average of y over
        each interval, :math:`(x_{k+1} - x_k)/\tau_0`), ``frac_freq_deterministic`` [1] on
        ``time`` (instantaneous drift model). attrs: ``tau0_s``, ``preset``, the h values.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown oscillator preset {preset!r}; known: {sorted(PRESETS)}")
    if not (tau0_s > 0 and duration_s >= tau0_s):
        raise RoharnessError(
            f"oscillator needs 0 < tau0_s <= duration_s, got tau0_s={tau0_s}, "
            f"duration_s={duration_s}."
        )
    base = PRESETS[preset] if preset else {"h": {}, "drift": {}}
    noise = dict(base["h"] if h is None else h)
    _check_noise_types(noise)
    det = dict(base["drift"])
    for key, val in (("offset", offset), ("rate_per_s", rate_per_s),
                     ("accel_per_s2", accel_per_s2), ("step_time_s", step_time_s),
                     ("step_size", step_size), ("step_tau_s", step_tau_s)):
        if val is not None:  # explicit arguments override the preset's drift law
            det[key] = val
    if not drift:
        det = {}
    n = int(round(duration_s / tau0_s))
    t = np.arange(n + 1) * tau0_s
    if any(v > 0 for v in noise.values()):
        if rng is None:
            raise RoharnessError("oscillator noise needs an explicit rng "
                                 "(numpy.random.default_rng(seed)).")
        x = power_law_phase(n + 1, tau0_s, noise, rng=rng)
    else:
        x = np.zeros(n + 1)
    x += deterministic_phase(t, **det)
    y_mean = np.diff(x) / tau0_s
    ds = xr.Dataset(
        {
            "phase_error": ("time", x, {"units": "s", "long_name": "oscillator time error x(t)"}),
            "frac_freq_error": ("time_mid", y_mean, {
                "units": "1", "long_name": "fractional frequency error averaged over tau0"}),
            "frac_freq_deterministic": ("time", deterministic_frac_freq(t, **det), {
                "units": "1", "long_name": "deterministic fractional frequency drift"}),
        },
        coords={
            "time": ("time", t, {"units": "s", "long_name": "time since start"}),
            "time_mid": ("time_mid", t[:-1] + 0.5 * tau0_s,
                         {"units": "s", "long_name": "centre of averaging interval"}),
        },
        attrs={"tau0_s": float(tau0_s), "preset": preset or "",
               "generator": "Kasdin & Walter (1992) fractional-difference filter",
               **{f"h_{k}": float(v) for k, v in noise.items()},
               **{f"drift_{k}": (float(v) if v is not None else "none")
                  for k, v in det.items()}},
    )
    return ds
