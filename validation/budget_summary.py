"""The error budget's Dataset and summary: assembly, metrics, targets and what dominates.

:func:`validation.budget.run_budget` runs the tasks; this module turns their results into
the ``budget.nc`` Dataset (:func:`_assemble`), its JSON summary (:func:`summarise`), the
pass/fail against a scenario's targets (:func:`assess`) and the thermal-noise check against
analytic estimates (:func:`_analytic_check`). :mod:`validation.budget` re-exports every name
here (``from validation.budget import summarise`` keeps working); its module docstring
defines the metrics.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from retrieval import cf

ALL = "all"  # label of the Monte Carlo with every physical source on
METRICS = ("ne_rms_over_peak_100_200km", "m2_peak_altitude_rms_km",
           "m2_peak_density_rel_rms", "ne150_rel_rms", "tn_rms_k", "tec_rel_rms")
_SCALARS = ("m2_peak_altitude_error_km", "m2_peak_density_rel_error",
            "neutral_temperature_error_k", "tec_rel_error", "ne150_rel_error")
STATUS_OK, STATUS_FAILED, STATUS_NOT_RUN = 0, 1, 2


# --------------------------------------------------------------------------- assembly
def _error_sources():
    import synth.error_sources as es
    return es


def _rms(x, axis=None):
    x = np.asarray(x, float)
    with np.errstate(invalid="ignore"):
        if not np.isfinite(x).any():
            return np.nan
        return float(np.sqrt(np.nanmean(x ** 2, axis=axis)))


def _metrics(d: xr.Dataset, band, prefix: str = "") -> dict:
    return dict(
        ne_rms_over_peak_100_200km=_rms(d[prefix + "ne_error_over_peak"].where(band, drop=True)
                                        .values),
        m2_peak_altitude_rms_km=_rms(d[prefix + "m2_peak_altitude_error_km"].values),
        m2_peak_density_rel_rms=_rms(d[prefix + "m2_peak_density_rel_error"].values),
        ne150_rel_rms=_rms(d[prefix + "ne150_rel_error"].values),
        tn_rms_k=_rms(d[prefix + "neutral_temperature_error_k"].values),
        tec_rel_rms=_rms(d[prefix + "tec_rel_error"].values))


def summarise(ds: xr.Dataset) -> dict:
    """The summary (JSON) of a budget Dataset (module docstring for the metrics).

    A source's errors are measured from the retrieval of the clean observation (the
    ``floor``: what the retrieval chain itself gets wrong with no error source), so that
    the sources and the floor can be added in quadrature; ``mc_total_*`` (every physical
    source on) is measured from the truth, floor included.
    """
    labels = [str(s) for s in ds.source.values]
    band = (ds.altitude >= 100e3) & (ds.altitude <= 200e3)
    rel = _relative_to_floor(ds)
    per = {}
    for lab in labels:
        d = (rel if lab != ALL else ds).sel(source=lab)
        per[lab] = _metrics(d, band)
        per[lab].update(realisations_ok=int((ds.status.sel(source=lab) == STATUS_OK).sum()),
                        failed=int((ds.status.sel(source=lab) == STATUS_FAILED).sum()))
    floor = _metrics(ds, band, prefix="floor_")
    floor["failed"] = int((ds.floor_status == STATUS_FAILED).sum())
    physical = [str(s) for s in ds.physical_source.values]
    sources = [s for s in labels if s != ALL]
    out = dict(scenario=ds.attrs["scenario"], sources=sources,
               skipped_sources=[str(s) for s in ds.skipped_source.values],
               physical_sources=physical, per_source={s: per[s] for s in sources},
               floor=floor, realisations=int(ds.sizes["realisation"]),
               occultations=int(ds.sizes["occultation"]), seed=int(ds.attrs["seed"]))
    for k in METRICS:
        vals = [per[s][k] for s in physical] + [floor[k]]
        out[f"total_{k}"] = (float(np.sqrt(np.nansum(np.square(vals))))
                             if np.isfinite(vals).any() else np.nan)
        out[f"mc_total_{k}"] = per[ALL][k] if ALL in per else out[f"total_{k}"]
    if ALL in per:
        out["mc_total_failed"] = per[ALL]["failed"]
    return out


#: Target keys of a scenario's ``[target]`` -> the summary metric they bound.
TARGET_METRICS = {
    "m2_peak_density_rel": "m2_peak_density_rel_rms",
    "m2_peak_altitude_km": "m2_peak_altitude_rms_km",
    "ne150_rel": "ne150_rel_rms",
    "tn_k": "tn_rms_k",
    "tec_rel": "tec_rel_rms",
}

#: Why a contribution is what it is, for the "what dominates" sentence.
WHY = {
    "floor": "the retrieval chain's own error on clean data (what the drift correction "
             "and smoothing do to a drift-free, noise-free observation, and discretisation)",
    "thermal": "white frequency noise at the receiver's C/N0",
    "oscillator": "the oscillators' power-law noise, which no baseline separates from the "
                  "layer where it wanders as slowly as the layer",
    "drift": "the curvature of the oscillator drift, which the linear vacuum baseline "
             "cannot remove",
    "ephemeris": "reconstructed-orbit errors, seen as a Doppler bias",
    "sampling": "the sampling phase and the box-car integration of each Doppler sample",
    "gradients": "horizontal gradients along the ray, which the spherically symmetric Abel "
                 "inversion ignores",
}


def assess(summary: dict, targets: dict) -> dict:
    """Targets, pass/fail and what dominates, for the summary of a budget.

    Each target bounds the 1-sigma (RMS) error of all physical sources together: the Monte
    Carlo with every source on (``mc_total_*``, from the truth) where it ran, otherwise the
    root-sum-square. The dominant contribution per metric is the largest of the physical
    sources and the floor (in quadrature, so its share is its variance fraction).

    Returns
    -------
    dict
        ``targets``: metric -> {target, value, passed} for every set target;
        ``dominant``: metric -> {source, share}; ``verdict``: one or two sentences.
    """
    out_t = {}
    for key, metric in TARGET_METRICS.items():
        bound = targets.get(key)
        if bound is None:
            continue
        value = summary.get(f"mc_total_{metric}", summary.get(f"total_{metric}"))
        out_t[metric] = dict(target=float(bound), value=value,
                             passed=bool(value is not None and np.isfinite(value)
                                         and value <= bound))
    dominant = {}
    names = list(summary["physical_sources"]) + ["floor"]
    for metric in METRICS:
        vals = {n: (summary["floor"] if n == "floor" else summary["per_source"][n])[metric]
                for n in names}
        vals = {n: v for n, v in vals.items() if v is not None and np.isfinite(v)}
        total = sum(v ** 2 for v in vals.values())
        if not vals or total <= 0:
            continue
        top = max(vals, key=vals.get)
        dominant[metric] = dict(source=top, share=vals[top] ** 2 / total)
    sentences = []
    if out_t:
        failed = [m for m, t in out_t.items() if not t["passed"]]
        sentences.append("Every target is met." if not failed else
                         f"{len(failed)} of {len(out_t)} targets missed: "
                         + ", ".join(_LABEL[m] for m in failed) + ".")
    d = dominant.get("ne_rms_over_peak_100_200km")
    if d:
        name = "the retrieval floor" if d["source"] == "floor" else f"the {d['source']} source"
        sentences.append(f"The N_e error at 100-200 km is dominated by {name} "
                         f"({100 * d['share']:.0f} % of the variance): "
                         f"{WHY.get(d['source'], d['source'])}.")
    missing = [n for n in summary["physical_sources"]
               if not np.isfinite(summary["per_source"][n]["ne_rms_over_peak_100_200km"])]
    if missing:
        sentences.append("The root-sum-square total LEAVES OUT " + ", ".join(missing)
                         + ": every realisation of it failed.")
    failing = [s for s in summary["sources"] if summary["per_source"][s].get("failed")]
    if failing:
        sentences.append("Realisations failed in " + ", ".join(
            f"{s} ({summary['per_source'][s]['failed']})" for s in failing)
            + "; their reasons are under 'messages'.")
    return dict(targets=out_t, dominant=dominant, verdict=" ".join(sentences),
                total_missing_sources=missing)


#: Plain names of the metrics (reports and terminal).
_LABEL = {
    "ne_rms_over_peak_100_200km": "N_e 100-200 km",
    "m2_peak_altitude_rms_km": "M2 peak altitude",
    "m2_peak_density_rel_rms": "M2 peak density",
    "ne150_rel_rms": "N_e at 150 km",
    "tn_rms_k": "neutral temperature",
    "tec_rel_rms": "TEC",
}


def _gradient_vars(study: xr.Dataset) -> xr.Dataset:
    """The study's variables renamed for budget.nc (dimension ``gradient_sza``)."""
    out = study.rename({"sza": "gradient_sza"})
    out = out.rename({v: f"gradient_{v}" for v in out.data_vars})
    out["gradient_event_time_utc"] = out["gradient_event_time_utc"].astype(str)
    out.attrs = {}
    return out


def _gradient_rows(study: xr.Dataset) -> list[dict]:
    """Per target SZA, the bias the gradients add to the clean retrieval (100-200 km)."""
    band = (study.altitude >= 100e3) & (study.altitude <= 200e3)
    rows = []
    for i in range(study.sizes["sza"]):
        g = study.isel(sza=i)
        d = (g.ne_error_over_peak - g.ne_error_over_peak_clean).where(band, drop=True).values
        rows.append(dict(
            target_sza_deg=float(g.sza), sza_deg=float(g.sza_deg),
            event_time_utc=str(g.event_time_utc.values),
            ne_rms_over_peak_100_200km=_rms(d),
            ne_max_abs_over_peak_100_200km=float(np.nanmax(np.abs(d))),
            m2_peak_altitude_error_km=float(g.m2_peak_altitude_error_km
                                            - g.m2_peak_altitude_error_km_clean),
            m2_peak_density_rel_error=float(g.m2_peak_density_rel_error
                                            - g.m2_peak_density_rel_error_clean)))
    return rows


def _relative_to_floor(ds: xr.Dataset) -> xr.Dataset:
    """Source errors minus the clean retrieval's (where the clean retrieval succeeded)."""
    out = xr.Dataset(coords=ds.coords)
    for k in _SCALARS + ("ne_error_over_peak",):
        fl = ds[f"floor_{k}"].fillna(0.0)
        out[k] = ds[k] - fl
    return out


def _realisation_arrays(chunks, labels, n_occ, n_real, m):
    """The chunk results scattered into (source, occultation, realisation[, altitude]) arrays.

    Realisations no chunk covered stay NaN with status ``STATUS_NOT_RUN``.
    """
    shape = (len(labels), n_occ, n_real)
    data = {k: np.full(shape, np.nan) for k in _SCALARS}
    ne_err = np.full(shape + (m,), np.nan)
    status = np.full(shape, STATUS_NOT_RUN, np.int8)
    for (li, o, reals), res in chunks:
        idx = list(reals)
        for k in _SCALARS:
            data[k][li, o, idx] = res[k]
        ne_err[li, o, idx] = res["ne_error_m3"]
        status[li, o, idx] = res["status"]
    return data, ne_err, status


def _scalar_errors_dataset(data, labels, n_occ, n_real, grid_m) -> xr.Dataset:
    """The Dataset's coordinates and its per-realisation scalar errors (:data:`_SCALARS`)."""
    dims3 = ("source", "occultation", "realisation")
    attrs = {
        "m2_peak_altitude_error_km": ("km", "retrieved minus true M2 peak altitude"),
        "m2_peak_density_rel_error": ("1", "retrieved / true M2 peak density - 1"),
        "neutral_temperature_error_k": ("K", "retrieved minus true neutral temperature"),
        "tec_rel_error": ("1", "retrieved / true vertical TEC - 1"),
        "ne150_rel_error": ("1", "retrieved / true electron density at 150 km - 1"),
    }
    return xr.Dataset(
        {k: (dims3, data[k], {"units": attrs[k][0], "long_name": attrs[k][1]}) for k in _SCALARS},
        coords=dict(source=("source", np.array(labels, dtype=str), {
                        "long_name": "error source of the run ('all': every physical source "
                                     "on)"}),
                    occultation=("occultation", np.arange(n_occ), {
                        "units": "1", "long_name": "occultation index"}),
                    realisation=("realisation", np.arange(n_real), {
                        "units": "1", "long_name": "Monte Carlo realisation index"}),
                    altitude=("altitude", grid_m, dict(cf.ALTITUDE, long_name="altitude "
                                                       "above the 3389.5 km sphere"))))


def _add_floor_vars(ds: xr.Dataset, floors: list, peak: np.ndarray) -> None:
    """The clean observation's retrieval (the floor): scalar errors, N_e error, status."""
    for k in _SCALARS:
        ds[f"floor_{k}"] = ("occultation", np.array([f[k] for f in floors], float),
                            dict(ds[k].attrs, long_name=ds[k].attrs["long_name"]
                                 + " (clean observation: the retrieval's floor)"))
    floor_ne = np.array([f["ne_error_m3"] for f in floors])
    ds["floor_ne_error"] = (("occultation", "altitude"), floor_ne, {
        "units": "m-3", "long_name": "retrieved (clean observation) minus true N_e"})
    ds["floor_ne_error_over_peak"] = (("occultation", "altitude"), floor_ne / peak[:, None],
                                      {"units": "1", "long_name": "floor N_e error over the "
                                       "true M2 peak density"})
    ds["floor_status"] = ("occultation", np.array([f["status"] for f in floors], np.int8), {
        "long_name": "status of the clean observation's retrieval",
        "flag_values": np.array([STATUS_OK, STATUS_FAILED], np.int8),
        "flag_meanings": "retrieved retrieval_failed"})


def _add_truth_and_geometry(ds: xr.Dataset, bases: list, peak: np.ndarray) -> None:
    """The true N_e profile and M2 peak, and each occultation's SZA, LTST, place and time."""
    ds["ne_true"] = (("occultation", "altitude"), np.array([b["ne_true"] for b in bases]),
                     {"units": "m-3", "long_name": "true electron density"})
    ds["peak_density_true"] = ("occultation", peak, {"units": "m-3",
                                                     "long_name": "true M2 peak density"})
    for k, unit, name in (("sza_deg", "degree", "solar zenith angle of the occultation"),
                          ("ltst_hours", "hour", "local true solar time of the occultation"),
                          ("lat_deg", "degree_north", "areocentric latitude of the occultation"),
                          ("lon_deg", "degree_east", "areocentric east longitude of the "
                                                     "occultation")):
        ds[k] = ("occultation", np.array([b[k] for b in bases], float),
                 {"units": unit, "long_name": name})
    ds["lat_deg"].attrs["standard_name"] = "latitude"
    ds["lon_deg"].attrs["standard_name"] = "longitude"
    ds["event_time_utc"] = ("occultation", np.array([b["event_time_utc"] for b in bases],
                                                    dtype=str),
                            {"long_name": "UTC of the occultation event (ISO 8601)"})


def _add_rms_profiles(ds: xr.Dataset, labels, sets, example) -> list:
    """RMS N_e error profiles by source, of the floor and their root-sum-square; returns the
    physical sources (those the root-sum-square adds)."""
    with np.errstate(invalid="ignore"):
        ok = ds.status == STATUS_OK
        rel = ds.ne_error_over_peak - ds.floor_ne_error_over_peak.fillna(0.0)
        rel = xr.where(ds.source == ALL, ds.ne_error_over_peak, rel)
        rms = np.sqrt((rel.where(ok) ** 2).mean(("occultation", "realisation")))
        floor_rms = np.sqrt((ds.floor_ne_error_over_peak ** 2).mean("occultation"))
    ds["ne_rms_over_peak"] = rms.assign_attrs(
        units="1", long_name="RMS electron density error over the true peak, by source and "
        "altitude (from the clean retrieval; 'all': from the truth)")
    ds["floor_ne_rms_over_peak"] = floor_rms.assign_attrs(
        units="1", long_name="RMS N_e error of the clean retrieval over the true peak")
    physical = [s for s in sets.get(ALL, ())] or [
        s for s in labels if s != ALL and _error_sources().SOURCES[s].get("kind", "physical")
        == "physical"]
    rss = np.nan_to_num(ds.floor_ne_rms_over_peak.values) ** 2
    if physical:
        rss = rss + (ds.ne_rms_over_peak.sel(source=physical) ** 2).sum("source").values
    ds["rss_ne_rms_over_peak"] = ("altitude", np.sqrt(rss), {
        "units": "1", "long_name": "root-sum-square of the physical sources' RMS and the floor"})
    if example is not None:
        ds["example_ne"] = ("altitude", example[1], {
            "units": "m-3", "long_name": f"one retrieved profile ({example[0]}, occultation 0, "
            "realisation 0)"})
    return physical


def _add_source_lists(ds: xr.Dataset, labels, sets, physical, skipped) -> xr.Dataset:
    """Source lists as coordinates and which sources each run switched on."""
    # source lists as coordinates (CF: no JSON in attributes)
    members = list(dict.fromkeys(m for v in sets.values() for m in v))
    ds = ds.assign_coords(
        physical_source=("physical_source", np.array(physical, dtype=str), {
            "long_name": "physical error sources, added in quadrature with the floor"}),
        skipped_source=("skipped_source", np.array(skipped, dtype=str), {
            "long_name": "error sources skipped as not applicable to the scenario"}),
        member=("member", np.array(members, dtype=str), {
            "long_name": "error source that a run can switch on"}))
    ds["source_members"] = (("source", "member"), np.array(
        [[m in sets.get(lab, ()) for m in members] for lab in labels], np.int8), {
        "long_name": "error sources switched on in the run of each source label",
        "flag_values": np.array([0, 1], np.int8), "flag_meanings": "off on"})
    return ds


def _assemble(scns, labels, sets, bases, chunks, n_real, grid_m, root_seed, skipped,
              example) -> xr.Dataset:
    """The budget Dataset (``budget.nc``) from the base tasks and the chunk results."""
    n_occ, m = len(scns), len(grid_m)
    data, ne_err, status = _realisation_arrays(chunks, labels, n_occ, n_real, m)
    peak = np.array([b["peak"] for b in bases])
    dims3 = ("source", "occultation", "realisation")
    floors = [b["floor"] for b in bases]
    ds = _scalar_errors_dataset(data, labels, n_occ, n_real, grid_m)
    ds["ne_error"] = (dims3 + ("altitude",), ne_err,
                      {"units": "m-3", "long_name": "retrieved minus true electron density"})
    ds["ne_error_over_peak"] = (dims3 + ("altitude",), ne_err / peak[None, :, None, None],
                                {"units": "1", "long_name": "electron density error over the "
                                 "true M2 peak density"})
    ds["status"] = (dims3, status, {
        "long_name": "run status (not_run: a deterministic source has one realisation)",
        "flag_values": np.array([STATUS_OK, STATUS_FAILED, STATUS_NOT_RUN], np.int8),
        "flag_meanings": "retrieved retrieval_failed not_run"})
    _add_floor_vars(ds, floors, peak)
    _add_truth_and_geometry(ds, bases, peak)
    physical = _add_rms_profiles(ds, labels, sets, example)
    ds = _add_source_lists(ds, labels, sets, physical, skipped)
    ds.attrs.update(scenario=scns[0].name, scenario_sha256=scns[0].digest, seed=int(root_seed),
                    Conventions=cf.CONVENTIONS, title="roharness Monte Carlo error budget")
    return cf.mark_coordinates(ds)


def _analytic_check(ds, bases, scn) -> dict:
    r"""Thermal-noise Monte Carlo against analytic estimates, 100-200 km (occultation 0).

    The Monte Carlo spread is the standard deviation over realisations of the thermal-only
    N_e error (the retrieval's deterministic floor removed). It is compared with

    * Withers (2010), :func:`validation.analytic.withers_sigma_ne`, with the plasma scale
      height 2 H of the alpha-Chapman topside: the classical estimate, which treats the
      noise as coherent over a scale height (expected ratio ~ sqrt(da (ln N + 0.58) /
      (pi H)) < 1 for finely sampled white noise, see :mod:`validation.analytic`);
    * the white noise propagated through the exact Abel weights at the observation's
      sampling, :func:`validation.analytic.abel_white_noise_sigma_ne` (expected ~1).
    """
    if "thermal" not in ds.source.values:
        return {}
    from synth.error_sources import thermal_sigma_hz
    from validation.analytic import abel_white_noise_sigma_ne, thermal_sigma_ne_profile

    th = ds.ne_error.sel(source="thermal").isel(occultation=0)
    ok = (ds.status.sel(source="thermal").isel(occultation=0) == STATUS_OK).values
    if ok.sum() < 3:
        return {}
    with warnings.catch_warnings():  # levels no realisation reached: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mc = np.nanstd(th.values[ok], axis=0, ddof=1)
    b = scn["budget"]
    t_int = b["integration_time_s"] or 1.0 / scn["sampling"]["rate_hz"]
    sigma_f = thermal_sigma_hz(scn["receiver"]["cn0_dbhz"], t_int)
    obs = bases[0]["obs"]
    plasma_h = 2.0 * scn["ionosphere"]["scale_height_km"] * 1e3
    alt = ds.altitude.values
    band = (alt >= 100e3) & (alt <= 200e3)
    out = dict(sigma_f_hz=sigma_f, plasma_scale_height_km=plasma_h / 1e3)
    for name, est in (("withers2010", thermal_sigma_ne_profile(obs, sigma_f, plasma_h)),
                      ("abel_propagation", abel_white_noise_sigma_ne(obs, sigma_f))):
        h = est.tangent_altitude.values
        order = np.argsort(h)
        pred = np.interp(alt, h[order], est.sigma_ne.values[order], left=np.nan,
                         right=np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = mc[band] / pred[band]
        ratio = ratio[np.isfinite(ratio)]
        key = "median_ratio" if name == "withers2010" else "median_ratio_abel"
        out[key] = float(np.median(ratio)) if ratio.size else np.nan
    return out
