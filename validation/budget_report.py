"""The HTML report of an error budget (:func:`validation.budget.run_budget`)."""

from __future__ import annotations

import numpy as np

from validation.report import figure, html_report, table_html

_LABELS = {"ne_rms_over_peak_100_200km": "N_e RMS / peak, 100-200 km",
           "m2_peak_altitude_rms_km": "M2 altitude RMS [km]",
           "m2_peak_density_rel_rms": "M2 density RMS [rel]",
           "ne150_rel_rms": "N_e(150 km) RMS [rel]",
           "tn_rms_k": "T_n RMS [K]",
           "tec_rel_rms": "TEC RMS [rel]"}


def _stacked(ds, summary):
    fig = figure()
    ax = fig.add_subplot()
    alt = ds.altitude.values / 1e3
    phys = summary["physical_sources"]
    var = [np.nan_to_num(ds.floor_ne_rms_over_peak.values ** 2)]
    var += [np.nan_to_num(ds.ne_rms_over_peak.sel(source=s).values ** 2) for s in phys]
    ax.stackplot(alt, *var, labels=["retrieval floor"] + list(phys), alpha=0.6)
    for s in summary["sources"]:
        if s not in phys:
            ax.plot(alt, ds.ne_rms_over_peak.sel(source=s).values ** 2, "k--", lw=1,
                    label=f"{s} (recipe)")
    if "all" in ds.source.values:
        ax.plot(alt, ds.ne_rms_over_peak.sel(source="all").values ** 2, "k-", lw=1.5,
                label="Monte Carlo, all sources on")
    ax.set_yscale("log")
    ax.set_xlabel("altitude [km]")
    ax.set_ylabel("(N_e error / true peak)$^2$")
    ax.set_title("Error variance by altitude, stacked by source")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _histograms(ds):
    fig = figure()
    axes = fig.subplots(1, 2)
    for ax, var, unit in ((axes[0], "m2_peak_altitude_error_km", "km"),
                          (axes[1], "m2_peak_density_rel_error", "relative")):
        for s in ds.source.values:
            v = ds[var].sel(source=s).values.ravel()
            v = v[np.isfinite(v)]
            if v.size > 1:
                ax.hist(v, bins=20, histtype="step", label=str(s))
            elif v.size == 1:
                ax.axvline(v[0], ls=":", label=f"{s} (bias)")
        ax.set_xlabel(f"{var.replace('_', ' ')} [{unit}]")
        ax.set_ylabel("realisations")
    axes[0].legend(fontsize=7)
    fig.suptitle("M2 peak errors")
    return fig


def _profile(ds):
    fig = figure()
    ax = fig.add_subplot()
    alt = ds.altitude.values / 1e3
    truth = ds.ne_true.isel(occultation=0).values
    ax.plot(truth, alt, "k-", lw=2, label="truth")
    clean = truth + ds.floor_ne_error.isel(occultation=0).values
    ax.plot(clean, alt, "C0-", lw=1, label="retrieved, clean observation (the floor)")
    if "example_ne" in ds:
        ax.plot(ds.example_ne.values, alt, "C3-", lw=1, label=ds.example_ne.attrs["long_name"])
    ax.set_xscale("log")
    ax.set_xlim(left=max(1e8, float(ds.peak_density_true.min()) * 1e-3))
    ax.set_xlabel("electron density [m$^{-3}$]")
    ax.set_ylabel("altitude [km]")
    ax.legend(fontsize=8)
    ax.set_title("One realisation over the truth")
    return fig


def _gradients(ds, summary):
    fig = figure()
    ax = fig.add_subplot()
    alt = ds.altitude.values / 1e3
    for i, z in enumerate(ds.gradient_sza_deg.values):
        ax.plot(ds.gradient_ne_error_over_peak.values[i]
                - ds.gradient_ne_error_over_peak_clean.values[i], alt, label=f"SZA {z:.1f} deg")
    ax.set_xlabel("N_e bias from gradients / true peak (retrieved with - without gradients)")
    ax.set_ylabel("altitude [km]")
    ax.set_ylim(alt[0], min(alt[-1], 250))
    ax.legend(fontsize=8)
    ax.set_title("Horizontal-gradient bias (spherical retrieval) by SZA")
    rows = [[r["target_sza_deg"], r["sza_deg"], r["event_time_utc"],
             r["ne_rms_over_peak_100_200km"], r["m2_peak_altitude_error_km"],
             r["m2_peak_density_rel_error"]] for r in summary["gradient_bias_by_sza"]]
    table = table_html(rows, ["target SZA", "event SZA", "event", "N_e bias RMS / peak "
                              "100-200 km", "M2 altitude bias [km]", "M2 density bias [rel]"])
    note = ("<p>Real events of the link nearest each target SZA; N_e varies with the SZA "
            "along each ray (excess-phase path integral), the truth is the tangent-point "
            "profile, the retrieval assumes spherical symmetry. Shown: the retrieval with "
            "gradients minus the same retrieval without them (the floor removed).</p>")
    return [note, table, fig]


def _assessment(summary) -> list:
    """The answer first: targets, pass/fail, what dominates and why."""
    from validation.budget import _LABEL

    parts = [f"<p><b>{summary.get('verdict', '')}</b></p>"] if summary.get("verdict") else []
    targets = summary.get("targets", {})
    if targets:
        rows = [[_LABEL[m], t["target"], t["value"], "PASS" if t["passed"] else "FAIL"]
                for m, t in targets.items()]
        parts.append(table_html(rows, ["metric (1-sigma)", "target", "all sources together",
                                       "result"]))
        parts.append("<p>Targets from the scenario's <code>[target]</code> section; the value "
                     "is the RMS error of the Monte Carlo with every physical source on, "
                     "measured from the truth.</p>")
    dom = summary.get("dominant", {})
    if dom:
        rows = [[_LABEL[m], d["source"] if d["source"] != "floor" else "retrieval floor",
                 f"{100 * d['share']:.0f} %"] for m, d in dom.items()]
        parts.append(table_html(rows, ["metric", "largest contribution", "share of the "
                                       "variance"]))
    return parts


def budget_report(ds, summary, path) -> str:
    """Write ``report.html`` for a budget Dataset and its summary."""
    rows = []
    for s in summary["sources"]:
        p = summary["per_source"][s]
        rows.append([s] + [p[k] for k in _LABELS] + [p["realisations_ok"], p["failed"]])
    fl = summary["floor"]
    rows.append(["retrieval floor (clean data)"] + [fl[k] for k in _LABELS] + ["", fl["failed"]])
    rows.append(["root-sum-square (physical + floor)"] + [summary[f"total_{k}"] for k in _LABELS]
                + ["", ""])
    if "all" in ds.source.values:
        rows.append(["Monte Carlo, all physical on"] + [summary[f"mc_total_{k}"] for k in _LABELS]
                    + ["", summary.get("mc_total_failed", "")])
    table = table_html(rows, ["source"] + list(_LABELS.values()) + ["ok", "failed"])
    table += ("<p>Each source's errors are measured from the retrieval of the clean "
              "observation (the floor); the Monte Carlo with every physical source on is "
              "measured from the truth. Recipe sources enter neither total.</p>")
    notes = []
    if summary.get("skipped_sources"):
        notes.append(f"<p>Skipped (do not apply to this scenario): "
                     f"{', '.join(summary['skipped_sources'])}.</p>")
    chk = summary.get("thermal_vs_withers2010")
    if chk:
        notes.append(
            "<p>Thermal noise alone (sigma_f "
            f"{chk['sigma_f_hz']:.3g} Hz): Monte Carlo N_e spread over the Withers (2010) "
            f"estimate, median over 100-200 km: {chk['median_ratio']:.3g}; over white noise "
            f"propagated through the exact Abel weights: {chk['median_ratio_abel']:.3g}. "
            "Withers treats the noise as coherent over a scale height; finely sampled white "
            "noise is averaged by the Abel integral, so a ratio below 1 (about sqrt(da ln N "
            "/ (pi H))) is expected there, and ~1 against the Abel propagation.</p>")
    for m in summary.get("messages", []):
        notes.append(f"<p>Retrieval failure: {m}</p>")
    occ = ds.sizes["occultation"]
    meta = (f"scenario {summary['scenario']}, seed {summary['seed']}, {occ} occultation(s), "
            f"{summary['realisations']} realisations per source, {summary['engine']}, "
            f"{summary['elapsed_s']:.1f} s")
    sections = [("Answer", _assessment(summary)),
                ("Summary by source", [table] + notes),
                ("Error by altitude", _stacked(ds, summary)),
                ("Peak errors", _histograms(ds)),
                ("A retrieved profile", _profile(ds))]
    if "gradient_bias_by_sza" in summary:
        sections.append(("Horizontal gradients by SZA", _gradients(ds, summary)))
    return html_report(f"Error budget: {summary['scenario']}", sections, path, meta=meta)
