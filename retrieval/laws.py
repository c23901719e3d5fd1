"""Campaign statistics: peak density and altitude versus solar zenith angle (SZA).

Fits, with parameter covariances, of the empirical laws of ../shared/SCIENCE.md:

* density ``N = N_0 cos(chi)^k`` (optionally ``+ c D`` with ``D`` = F10.7 or F_EUV);
* altitude ``h = h_0 + H ln sec(chi)`` (``model="secant"``) or the grazing-incidence form
  ``h = h_0 + L ln Ch(x, chi)`` (``model="chapman"``), ``x = (R + h_0) / L``: the
  self-consistent Chapman reading in which ``L`` plays the part of the scale height;
* Spearman rank correlation of the residuals against further drivers;
* the dawn/dusk x aphelion/perihelion grouping of Segale et al.

Order of the method (our reading of Parrott et al. 2025 and Segale et al. 2024, whose
text we only know through ../shared/SCIENCE.md): SZA is the primary control, so the SZA
law is fitted first; the residuals are then rank-correlated (Spearman) with the further
drivers in the order solar distance, F10.7, Ls, LST; the solar-activity term (F10.7, or
F_EUV) is then added to the density law and the residuals of that extended law are
correlated again with the remaining drivers. Segale's groups separate season (Ls,
aphelion/perihelion, i.e. solar distance) and local time (dawn/dusk) before fitting the
altitude law per group, fitted only to SZA <= 90 deg (cos(chi)^k and ln sec(chi) are
undefined beyond; rows past 90 deg are reported as excluded).

Uncertainties are the fit covariances scaled by the reduced chi^2 of the residuals (so
natural variability that the stated measurement errors do not cover widens them).

References
----------
.. [1] Parrott, J. et al. (2025), Ionospheric analysis with Martian mutual radio occultation,
   J. Geophys. Res. Planets 130, doi:10.1029/2024JE008854.
.. [2] Segale, C. et al. (2024), MAVEN ROSE M1/M2 peak statistics (table in
   ../shared/SCIENCE.md: group definitions dawn LST 00-12 h, dusk 12-24 h; aphelion
   Ls 341-360 and 0-161 deg, perihelion Ls 161-341 deg).
.. [3] Chapman, S. (1931), The absorption and ionising effect of monochromatic radiation
   in an atmosphere on a rotating earth, part II. Grazing incidence, Proc. Phys. Soc. 43,
   483-501, doi:10.1088/0959-5309/43/5/302.
.. [4] Huestis, D. L. (2001), Accurate evaluation of the Chapman function for atmospheric
   attenuation, J. Quant. Spectrosc. Radiat. Transfer 69, 709-721,
   doi:10.1016/S0022-4073(00)00107-2.
.. [5] Smith, F. L. and Smith, C. (1972), Numerical evaluation of Chapman's grazing
   incidence integral ch(X, chi), J. Geophys. Res. 77, 3592-3597,
   doi:10.1029/JA077i019p03592.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erfcx
from scipy.stats import spearmanr

from retrieval.constants import MARS_MEAN_RADIUS_M
from retrieval.errors import RoharnessError

if TYPE_CHECKING:  # annotations only
    import os

    import pandas as pd
    import xarray as xr

# ------------------------------------------------------------------ Chapman function
CHAPMAN_MODELS = ("integral", "asymptotic")

# composite Gauss-Legendre nodes on v in [0, 6.5] (the integrand carries exp(-v^2))
_BREAKS = np.array([0.0, 0.02, 0.08, 0.25, 0.6, 1.2, 2.0, 3.0, 4.5, 6.5])
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_V = np.concatenate([0.5 * (b - a) * _GL_X + 0.5 * (b + a)
                     for a, b in zip(_BREAKS[:-1], _BREAKS[1:])])
_VW = np.concatenate([0.5 * (b - a) * _GL_W for a, b in zip(_BREAKS[:-1], _BREAKS[1:])])


def _ch_le90(x, chi):
    """Ch for chi <= 90 deg, v-form of Chapman's integral (see chapman_function)."""
    x = np.asarray(x, dtype=float)[..., None]
    s = np.sin(np.asarray(chi, dtype=float))[..., None]
    v2 = _V * _V
    ratio = s / (1.0 + v2 / x)
    integrand = 2.0 * _V * np.exp(-v2) / np.sqrt(np.maximum(1.0 - ratio * ratio, 1e-300))
    return np.sum(integrand * _VW, axis=-1)


def chapman_function(x, sza_deg, model="integral"):
    """Chapman grazing-incidence function Ch(x, chi) (slant / vertical column ratio).

    ``model="integral"`` evaluates Chapman's integral (Huestis 2001, eq. 8)

    .. math:: Ch(x,\\chi) = x\\sin\\chi \\int_0^\\chi
              \\frac{\\exp[x(1 - \\sin\\chi/\\sin\\lambda)]}{\\sin^2\\lambda}\\,d\\lambda

    after the substitution ``x (sin chi / sin lambda - 1) = v^2``, which turns it into
    ``int_0^inf 2 v exp(-v^2) [1 - sin^2 chi / (1 + v^2/x)^2]^(-1/2) dv`` (a smooth
    integrand, evaluated by composite Gauss-Legendre quadrature, relative error < 1e-9 for
    x >= 10). Beyond 90 deg the exact reflection

    .. math:: Ch(x,\\chi) = 2 e^{x(1-\\sin\\chi)} Ch(x\\sin\\chi, 90^\\circ)
              - Ch(x, 180^\\circ-\\chi)

    is used. ``model="asymptotic"`` is the first-order large-x form (Smith & Smith 1972),
    ``sqrt(pi x / 2) erfcx(sqrt(x/2) cos chi)`` (relative error ~1/x), with the same
    reflection beyond 90 deg.

    Parameters
    ----------
    x : float or array_like
        ``(R + h) / H`` (dimensionless, > 0).
    sza_deg : float or array_like
        Solar zenith angle [deg], 0 <= chi < 180 (near 180 the ray hits the planet).
    model : {"integral", "asymptotic"}

    Returns
    -------
    ndarray or float
        Ch(x, chi), shaped like the broadcast inputs.
    """
    if model not in CHAPMAN_MODELS:
        raise ValueError(f"unknown Chapman function model {model!r}; known: {CHAPMAN_MODELS}")
    x, chi_deg = np.broadcast_arrays(np.asarray(x, dtype=float),
                                     np.asarray(sza_deg, dtype=float))
    chi = np.radians(chi_deg)

    def le90(xx, cc):
        if model == "integral":
            return _ch_le90(xx, cc)
        return np.sqrt(0.5 * np.pi * xx) * erfcx(np.sqrt(0.5 * xx) * np.cos(cc))

    out = np.empty(x.shape)
    lo = chi <= 0.5 * np.pi
    out[lo] = le90(x[lo], chi[lo])
    hi = ~lo
    if np.any(hi):
        s = np.sin(chi[hi])
        out[hi] = (2.0 * np.exp(x[hi] * (1.0 - s)) * le90(x[hi] * s, np.full(s.shape, 0.5 * np.pi))
                   - le90(x[hi], np.pi - chi[hi]))
    return out if out.ndim else float(out)


# ------------------------------------------------------------------------ fits
def _lstsq(design, y, weights):
    """Weighted linear least squares; covariance scaled by the reduced chi^2."""
    a = design * weights[:, None]
    b = y * weights
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    resid = b - a @ coef
    dof = max(y.size - design.shape[1], 1)
    chi2 = float(resid @ resid) / dof
    cov = np.linalg.pinv(a.T @ a) * chi2
    return coef, cov, chi2


def _undetermined(sza_used, n_used: int, n_needed: int, regressor=None) -> str | None:
    """Why the data cannot determine a law's parameters (None if they can): too few usable
    peaks, or every peak at one SZA (the regressor ``f(chi)`` is then constant and the
    intercept and slope cannot be separated: a least-squares solver would still return a
    minimum-norm solution with a meaningless, tiny error bar)."""
    if n_used < n_needed:
        return (f"only {n_used} usable peak(s) (SZA below 90 deg, finite values), "
                f"at least {n_needed} needed")
    x = np.asarray(sza_used if regressor is None else regressor, dtype=float)
    if np.ptp(x) <= 1e-9 * max(1.0, float(np.max(np.abs(x)))):
        return (f"all {n_used} usable peaks are at one SZA ({float(np.min(sza_used)):.4g} deg); "
                "the SZA dependence needs peaks at two or more SZAs")
    return None


def _usable(sza_deg, *arrays):
    sza = np.asarray(sza_deg, dtype=float)
    ok = np.isfinite(sza) & (sza < 90.0)
    for arr in arrays:
        if arr is not None:
            ok &= np.isfinite(np.asarray(arr, dtype=float))
    return ok


DENSITY_DRIVERS = ("f107", "f_euv")


def fit_density_law(sza_deg, density_m3, density_error_m3=None, driver=None,
                    driver_name=None):
    """Fit ``N = N_0 cos(chi)^k`` (optionally ``+ c D``) to peak densities.

    Without a driver the fit is linear in ``ln N = ln N_0 + k ln cos chi`` (weights
    ``N / sigma_N``); with a driver ``D`` (F10.7 [sfu] or F_EUV [mW m^-2]) it is a
    non-linear least-squares fit of ``N`` itself, started from the driver-free fit.

    Parameters
    ----------
    sza_deg : array_like
        Solar zenith angle [deg]; rows with chi >= 90 deg or NaN are excluded.
    density_m3 : array_like
        Peak density [m^-3] (> 0).
    density_error_m3 : array_like, optional
        1-sigma error [m^-3]; equal weights if omitted.
    driver : array_like, optional
        The additive driver ``D``.
    driver_name : str, optional
        Its name, copied to the result.

    Returns
    -------
    dict
        ``n0_m3``, ``n0_error_m3``, ``k``, ``k_error``, ``c_m3`` / ``c_error_m3`` (per unit
        of the driver; NaN without driver), ``covariance`` (of ``[N_0, k(, c)]``),
        ``n_used``, ``residual_rms_m3``, ``residuals_m3`` (NaN on excluded rows),
        ``driver``.
    """
    sza = np.asarray(sza_deg, dtype=float)
    n = np.asarray(density_m3, dtype=float)
    err = None if density_error_m3 is None else np.broadcast_to(
        np.asarray(density_error_m3, dtype=float), n.shape)
    d = None if driver is None else np.asarray(driver, dtype=float)
    ok = _usable(sza, n, err, d) & (n > 0)
    if err is not None:
        ok &= err > 0
    nan = float("nan")
    npar = 2 if d is None else 3
    res = {"n0_m3": nan, "n0_error_m3": nan, "k": nan, "k_error": nan, "c_m3": nan,
           "c_error_m3": nan, "covariance": None, "n_used": int(ok.sum()),
           "residual_rms_m3": nan, "residuals_m3": np.full(sza.shape, nan),
           "driver": driver_name if d is not None else None, "undetermined": None}
    lc = np.log(np.cos(np.radians(sza[ok])))
    res["undetermined"] = _undetermined(sza[ok], int(ok.sum()), npar + 1, lc)
    if res["undetermined"] is None and d is not None and np.ptp(d[ok]) == 0:
        res["undetermined"] = (f"the driver {driver_name or 'column'} is constant over the "
                               "usable peaks: its coefficient cannot be separated from N0")
    if res["undetermined"]:
        return res
    w = np.ones(ok.sum()) if err is None else n[ok] / err[ok]
    coef, cov, _ = _lstsq(np.column_stack([np.ones_like(lc), lc]), np.log(n[ok]), w)
    n0, k = math.exp(coef[0]), coef[1]
    covariance = np.array([[n0 * n0 * cov[0, 0], n0 * cov[0, 1]],
                           [n0 * cov[0, 1], cov[1, 1]]])
    c = nan
    if d is not None:
        cosc = np.cos(np.radians(sza[ok]))
        scale = float(np.median(n[ok]))
        dsc = float(np.median(np.abs(d[ok]))) or 1.0

        def model(_, a, kk, cc):
            return a * cosc**kk + cc * d[ok] / dsc

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                popt, pcov = curve_fit(
                    model, np.zeros(ok.sum()), n[ok] / scale, p0=(n0 / scale, k, 0.0),
                    sigma=None if err is None else err[ok] / scale, absolute_sigma=False,
                    maxfev=5000)
            except (RuntimeError, ValueError):
                return res
        sc_vec = np.array([scale, 1.0, scale / dsc])
        n0, k, c = popt[0] * scale, popt[1], popt[2] * scale / dsc
        covariance = pcov * np.outer(sc_vec, sc_vec)
    pred = n0 * np.cos(np.radians(sza[ok])) ** k + (0.0 if d is None else c * d[ok])
    resid = np.full(sza.shape, nan)
    resid[ok] = n[ok] - pred
    perr = np.sqrt(np.clip(np.diag(covariance), 0, np.inf))
    if not np.all(np.isfinite(perr)):  # curve_fit could not estimate the covariance
        res["undetermined"] = "the data cannot constrain every parameter (singular covariance)"
        return res
    res.update({"n0_m3": float(n0), "n0_error_m3": float(perr[0]), "k": float(k),
                "k_error": float(perr[1]), "covariance": covariance,
                "residual_rms_m3": float(np.sqrt(np.mean(resid[ok] ** 2))),
                "residuals_m3": resid})
    if d is not None:
        res.update({"c_m3": float(c), "c_error_m3": float(perr[2])})
    return res


ALTITUDE_MODELS = ("secant", "chapman")


def fit_altitude_law(sza_deg, altitude_m, altitude_error_m=None, model="secant",
                     planet_radius_m=MARS_MEAN_RADIUS_M):
    """Fit the peak altitude law ``h = h_0 + L f(chi)``.

    ``model="secant"``: ``f = ln sec chi`` (Parrott et al. 2025), linear least squares.
    ``model="chapman"``: ``f = ln Ch(x, chi)`` with ``x = (R + h_0) / L`` (Segale et al.
    2024), solved by fixed-point iteration: ``x`` from the current ``(h_0, L)``, then the
    linear fit, until ``h_0`` and ``L`` change by < 1 mm (``Ch`` depends only weakly on
    ``x`` below 90 deg, so 3-5 iterations suffice). The covariance is that of the final
    linear fit (the weak ``x`` dependence is neglected).

    Parameters
    ----------
    sza_deg : array_like
        SZA [deg]; rows at or beyond 90 deg are excluded.
    altitude_m : array_like
        Peak altitude [m].
    altitude_error_m : array_like, optional
        1-sigma error [m]; equal weights if omitted.
    model : {"secant", "chapman"}
    planet_radius_m : float
        R in ``x = (R + h_0)/L`` [m].

    Returns
    -------
    dict
        ``h0_m``, ``h0_error_m``, ``scale_m`` (H or L), ``scale_error_m``, ``covariance``,
        ``n_used``, ``residual_rms_m``, ``residuals_m``, ``model``.
    """
    if model not in ALTITUDE_MODELS:
        raise ValueError(f"unknown altitude law model {model!r}; known: {ALTITUDE_MODELS}")
    sza = np.asarray(sza_deg, dtype=float)
    h = np.asarray(altitude_m, dtype=float)
    err = None if altitude_error_m is None else np.broadcast_to(
        np.asarray(altitude_error_m, dtype=float), h.shape)
    ok = _usable(sza, h, err)
    if err is not None:
        ok &= err > 0
    nan = float("nan")
    res = {"h0_m": nan, "h0_error_m": nan, "scale_m": nan, "scale_error_m": nan,
           "covariance": None, "n_used": int(ok.sum()), "residual_rms_m": nan,
           "residuals_m": np.full(sza.shape, nan), "model": model, "undetermined": None}
    f = np.log(1.0 / np.cos(np.radians(sza[ok])))
    res["undetermined"] = _undetermined(sza[ok], int(ok.sum()), 3, f)
    if res["undetermined"]:
        return res
    w = np.ones(ok.sum()) if err is None else 1.0 / err[ok]
    coef, cov, _ = _lstsq(np.column_stack([np.ones_like(f), f]), h[ok], w)
    if model == "chapman":
        for _ in range(20):
            scale = coef[1] if coef[1] > 100.0 else 100.0  # L > 0.1 km keeps x finite
            f = np.log(chapman_function((planet_radius_m + coef[0]) / scale, sza[ok]))
            new, cov, _ = _lstsq(np.column_stack([np.ones_like(f), f]), h[ok], w)
            done = np.all(np.abs(new - coef) < 1e-3)
            coef = new
            if done:
                break
    resid = np.full(sza.shape, nan)
    resid[ok] = h[ok] - (coef[0] + coef[1] * f)
    res.update({"h0_m": float(coef[0]), "h0_error_m": float(math.sqrt(cov[0, 0])),
                "scale_m": float(coef[1]), "scale_error_m": float(math.sqrt(cov[1, 1])),
                "covariance": cov, "residual_rms_m": float(np.sqrt(np.mean(resid[ok] ** 2))),
                "residuals_m": resid})
    return res


def residual_correlations(residuals, drivers):
    """Spearman rank correlation of residuals with each driver, in the given order.

    Parameters
    ----------
    residuals : array_like
        Fit residuals (NaN rows are skipped pairwise).
    drivers : dict
        ``name -> array``, iterated in insertion order (the order of the method).

    Returns
    -------
    list of dict
        ``driver``, ``rho``, ``p_value``, ``n`` per driver (NaN when < 4 pairs or a
        constant column).
    """
    r = np.asarray(residuals, dtype=float)
    out = []
    for name, values in drivers.items():
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(r) & np.isfinite(v)
        rho = p = float("nan")
        if ok.sum() >= 4 and np.ptp(v[ok]) > 0 and np.ptp(r[ok]) > 0:
            res = spearmanr(r[ok], v[ok])
            rho, p = float(res.statistic), float(res.pvalue)
        out.append({"driver": name, "rho": rho, "p_value": p, "n": int(ok.sum())})
    return out


# --------------------------------------------------------------------- groups
GROUPS = ("dawn_aphelion", "dawn_perihelion", "dusk_aphelion", "dusk_perihelion")


def segale_group(ltst_hours, ls_deg):
    """Segale et al. group of each occultation (NaN inputs -> empty string).

    Dawn: local true solar time 00-12 h; dusk 12-24 h. Aphelion: Ls in [341, 360) or
    [0, 161) deg; perihelion: Ls in [161, 341) deg.
    """
    lt = np.asarray(ltst_hours, dtype=float) % 24.0
    ls = np.asarray(ls_deg, dtype=float) % 360.0
    tod = np.where(lt < 12.0, "dawn", "dusk")
    season = np.where((ls >= 161.0) & (ls < 341.0), "perihelion", "aphelion")
    out = np.char.add(np.char.add(tod, "_"), season).astype(object)
    out[~(np.isfinite(lt) & np.isfinite(ls))] = ""
    return out


# ------------------------------------------------------------------- the table
#: Columns of a peak table: name -> (required, unit, meaning, valid range).
PEAK_TABLE_COLUMNS = {
    "sza_deg": (True, "deg", "solar zenith angle", (0.0, 180.0)),
    "m2_peak_density_m3": (True, "m^-3", "M2 peak electron density", (0.0, 1e14)),
    "m2_peak_altitude_km": (True, "km", "M2 peak altitude above 3389.5 km", (0.0, 1000.0)),
    "m2_peak_density_error_m3": (False, "m^-3", "1-sigma M2 density error", (0.0, 1e14)),
    "m2_peak_altitude_error_km": (False, "km", "1-sigma M2 altitude error", (0.0, 1000.0)),
    "m1_peak_density_m3": (False, "m^-3", "M1 peak density (blank if none)", (0.0, 1e14)),
    "m1_peak_altitude_km": (False, "km", "M1 peak altitude (blank if none)", (0.0, 1000.0)),
    "m1_peak_density_error_m3": (False, "m^-3", "1-sigma M1 density error", (0.0, 1e14)),
    "m1_peak_altitude_error_km": (False, "km", "1-sigma M1 altitude error", (0.0, 1000.0)),
    "ltst_hours": (False, "h", "local true solar time", (0.0, 24.0)),
    "ls_deg": (False, "deg", "solar longitude", (0.0, 360.0)),
    "f107": (False, "sfu", "F10.7 solar radio flux", (0.0, 1000.0)),
    "f_euv": (False, "mW m^-2", "solar EUV irradiance", (0.0, 1000.0)),
    "solar_distance_au": (False, "au", "Mars-Sun distance", (1.0, 2.0)),
}


def _column_error(path, name, row, value, why):
    return RoharnessError(
        f"{path}: column '{name}' row {row} has {value!r}, {why}; expected "
        f"{PEAK_TABLE_COLUMNS[name][2]} [{PEAK_TABLE_COLUMNS[name][1]}] in "
        f"{PEAK_TABLE_COLUMNS[name][3][0]:g}..{PEAK_TABLE_COLUMNS[name][3][1]:g}."
    )


def read_peak_table(path):
    """Read a table of peaks (CSV with a header row, or netCDF) into numpy columns.

    Columns are those of :data:`PEAK_TABLE_COLUMNS` (unknown columns are kept as they are
    if numeric, and ignored otherwise). Required: ``sza_deg``, ``m2_peak_density_m3``,
    ``m2_peak_altitude_km``; optional columns may hold blanks/NaN (e.g. no M1). CSV lines
    starting with ``#`` are comments. A netCDF file holds the columns as 1-D variables
    along one dimension.

    Returns
    -------
    dict
        ``name -> float ndarray``.

    Raises
    ------
    RoharnessError
        File missing or unreadable, a required column missing, a non-numeric cell, or a
        value outside its valid range (one sentence naming column and row).
    """
    path = Path(path)
    if not path.is_file():
        raise RoharnessError(f"peak table {path} does not exist; expected a CSV or netCDF file.")
    cols: dict[str, np.ndarray] = {}
    if path.suffix.lower() in (".nc", ".nc4", ".netcdf", ".cdf"):
        import xarray as xr

        try:
            with xr.open_dataset(path) as ds:
                for name, var in ds.variables.items():
                    if var.ndim == 1 and np.issubdtype(var.dtype, np.number):
                        cols[str(name)] = np.asarray(var.values, dtype=float)
        except (OSError, ValueError) as exc:
            raise RoharnessError(
                f"peak table {path} is not a readable netCDF file ({exc})."
            ) from None
        rows_offset = 0
    else:
        try:
            lines = [ln for ln in path.read_text().splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            raise RoharnessError(
                f"peak table {path} could not be read as text ({exc})."
            ) from None
        if not lines:
            raise RoharnessError(
                f"peak table {path} is empty; expected a header row and data rows."
            )
        reader = csv.reader(lines)
        header = [h.strip() for h in next(reader)]
        data = list(reader)
        for i, row in enumerate(data):
            if len(row) != len(header):
                raise RoharnessError(
                    f"{path}: data row {i + 1} has {len(row)} fields but the header has "
                    f"{len(header)}."
                )
        for j, name in enumerate(header):
            values = np.full(len(data), np.nan)
            for i, row in enumerate(data):
                cell = row[j].strip()
                if cell in ("", "nan", "NaN", "NA"):
                    continue
                try:
                    values[i] = float(cell)
                except ValueError:
                    if name in PEAK_TABLE_COLUMNS:
                        raise _column_error(
                            path, name, i + 1, cell, "which is not a number"
                        ) from None
                    values = None
                    break
            if values is not None:
                cols[name] = values
        rows_offset = 0
    missing = [n for n, spec in PEAK_TABLE_COLUMNS.items() if spec[0] and n not in cols]
    if missing:
        raise RoharnessError(
            f"peak table {path} lacks the required column(s) {', '.join(missing)}; "
            f"it has {', '.join(cols) or 'none'}."
        )
    nrow = cols["sza_deg"].size
    if nrow < 3:
        raise RoharnessError(f"peak table {path} has {nrow} rows; at least 3 are needed for a fit.")
    for name, (required, _, _, (lo, hi)) in PEAK_TABLE_COLUMNS.items():
        if name not in cols:
            continue
        v = cols[name]
        for i in range(v.size):
            if np.isnan(v[i]):
                if required:
                    raise _column_error(path, name, i + 1 + rows_offset, "", "which is blank")
                continue
            if not lo <= v[i] <= hi or (name.endswith("density_m3") and v[i] <= 0):
                raise _column_error(path, name, i + 1 + rows_offset, float(v[i]), "out of range")
    return cols


# ---------------------------------------------------------------- the campaign
def _driver_columns(table, exclude=()):
    names = ("solar_distance_au", "f107", "ls_deg", "ltst_hours")
    return {n: table[n] for n in names if n in table and n not in exclude}


def _layer_fits(table, layer, density_driver):
    dens = table.get(f"{layer}_peak_density_m3")
    alt = table.get(f"{layer}_peak_altitude_km")
    if dens is None or alt is None:
        return None
    sza = table["sza_deg"]
    derr = table.get(f"{layer}_peak_density_error_m3")
    aerr = table.get(f"{layer}_peak_altitude_error_km")
    out = {"density": fit_density_law(sza, dens, derr)}
    out["density_residual_correlations"] = residual_correlations(
        out["density"]["residuals_m3"], _driver_columns(table))
    if density_driver is not None and density_driver in table:
        out["density_with_driver"] = fit_density_law(
            sza, dens, derr, driver=table[density_driver], driver_name=density_driver)
        out["density_with_driver_residual_correlations"] = residual_correlations(
            out["density_with_driver"]["residuals_m3"],
            _driver_columns(table, exclude=(density_driver,)))
    alt_m = alt * 1e3
    aerr_m = None if aerr is None else aerr * 1e3
    out["altitude_secant"] = fit_altitude_law(sza, alt_m, aerr_m, model="secant")
    out["altitude_chapman"] = fit_altitude_law(sza, alt_m, aerr_m, model="chapman")
    out["altitude_residual_correlations"] = residual_correlations(
        out["altitude_secant"]["residuals_m"], _driver_columns(table))
    return out


def fit_campaign(table: xr.Dataset | pd.DataFrame | str | os.PathLike,
                 density_driver: str = "f107", groups: bool = True) -> dict:
    """All laws for a table of peaks (see :func:`read_peak_table` for the columns).

    Parameters
    ----------
    table : dict
        ``name -> array`` columns (``read_peak_table`` output, or an ``xarray.Dataset``).
    density_driver : {"f107", "f_euv", None}
        Additive driver of the extended density law (used when the column exists).
    groups : bool
        Also fit every Segale group (needs ``ltst_hours`` and ``ls_deg``).

    Returns
    -------
    dict
        ``n_rows``, ``n_excluded_sza_ge_90``, ``m2`` and ``m1`` (each with ``density``,
        ``density_with_driver``, ``altitude_secant``, ``altitude_chapman`` and the residual
        correlations), and ``groups`` (``name -> {"n": .., "m2": .., "m1": ..}``).
    """
    if density_driver is not None and density_driver not in DENSITY_DRIVERS:
        raise ValueError(f"unknown density driver {density_driver!r}; known: {DENSITY_DRIVERS}")
    table = {k: np.asarray(table[k], dtype=float) for k in
             (table.keys() if hasattr(table, "keys") else table)
             if np.asarray(table[k]).dtype.kind in "fiu" and np.ndim(table[k]) == 1}
    sza = table["sza_deg"]
    out = {"n_rows": int(sza.size), "n_excluded_sza_ge_90": int(np.sum(~(sza < 90.0))),
           "m2": _layer_fits(table, "m2", density_driver),
           "m1": _layer_fits(table, "m1", density_driver), "groups": {}}
    if groups and "ltst_hours" in table and "ls_deg" in table:
        g = segale_group(table["ltst_hours"], table["ls_deg"])
        for name in GROUPS:
            sel = g == name
            sub = {k: v[sel] for k, v in table.items()}
            out["groups"][name] = {"n": int(sel.sum()),
                                   "m2": _layer_fits(sub, "m2", None) if sel.sum() >= 3 else None,
                                   "m1": _layer_fits(sub, "m1", None) if sel.sum() >= 3 else None}
    return out


def summarize_fits(result):
    """A JSON-ready digest of :func:`fit_campaign` (no arrays, km / m^-3 units)."""

    def dens(d):
        if d is None:
            return None
        return {k: d[k] for k in ("n0_m3", "n0_error_m3", "k", "k_error", "c_m3", "c_error_m3",
                                  "n_used", "residual_rms_m3", "driver", "undetermined")}

    def alt(a):
        if a is None:
            return None
        return {"h0_km": a["h0_m"] / 1e3, "h0_error_km": a["h0_error_m"] / 1e3,
                "scale_km": a["scale_m"] / 1e3, "scale_error_km": a["scale_error_m"] / 1e3,
                "n_used": a["n_used"], "residual_rms_km": a["residual_rms_m"] / 1e3,
                "undetermined": a["undetermined"]}

    def layer(lay):
        if lay is None:
            return None
        return {"density": dens(lay["density"]),
                "density_with_driver": dens(lay.get("density_with_driver")),
                "altitude_secant": alt(lay["altitude_secant"]),
                "altitude_chapman": alt(lay["altitude_chapman"]),
                "density_residual_correlations": lay["density_residual_correlations"],
                "density_with_driver_residual_correlations":
                    lay.get("density_with_driver_residual_correlations"),
                "altitude_residual_correlations": lay["altitude_residual_correlations"]}

    return {"n_rows": result["n_rows"], "n_excluded_sza_ge_90": result["n_excluded_sza_ge_90"],
            "m2": layer(result["m2"]), "m1": layer(result["m1"]),
            "groups": {k: {"n": v["n"], "m2": layer(v["m2"]), "m1": layer(v["m1"])}
                       for k, v in result["groups"].items()}}
