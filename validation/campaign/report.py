"""Campaign outputs: the events table, netCDF/CSV/JSON files and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from retrieval.fileio import atomic_path, write_text_atomic
from validation.campaign.cadence import SZA_BINS_DEG


def events_table(events: xr.Dataset):
    """One row per event (pandas DataFrame); (event, design) variables become columns
    ``<name>__<design>``."""
    import pandas as pd

    first = ("time_utc", "kind", "lat_deg", "lon_deg", "sza_deg", "ltst_hours", "ls_deg",
             "duration_s", "vertical_speed_km_s", "top_altitude_km", "bottom_altitude_km")
    cols = {"event": events.event.values}
    names = [k for k in first if k in events] + [k for k in events.data_vars
                                                 if k not in first]
    for k in names:
        if events[k].dims == ("event",):
            cols[k] = events[k].values
    for k, v in events.data_vars.items():
        if v.dims == ("event", "design"):
            for j, d in enumerate(events.design.values):
                cols[f"{k}__{d}"] = v.values[:, j]
    return pd.DataFrame(cols)


def write_campaign(events, comp, summary, c, out_dir) -> None:
    """``events.csv``, ``events.nc``, ``comparison.csv``, ``summary.json``, ``report.html``."""
    from validation.cli import _clean

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "events.nc", suffix=".nc") as tmp:
        ev = events.copy()
        for k in ("observable", "in_budget_subset", "meets_target", "observed"):
            ev[k] = ev[k].astype("i1")
        ev.to_netcdf(tmp)
    with atomic_path(out / "events.csv", suffix=".csv") as tmp:
        events_table(events).to_csv(tmp, index=False, float_format="%.6g")
    if comp is not None:
        with atomic_path(out / "comparison.csv", suffix=".csv") as tmp:
            events_table(comp).to_csv(tmp, index=False, float_format="%.6g")
    js = {k: v for k, v in summary.items() if k not in ("events", "comparison_events")}
    write_text_atomic(out / "summary.json", json.dumps(_clean(js), indent=2) + "\n")
    campaign_report(events, comp, js, out / "report.html")


def _map_figure(events, designs):
    from validation.report import figure

    fig = figure()
    fig.set_size_inches(7.5, 5.5)
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(gs[1, 0])
    top = fig.add_subplot(gs[0, 0], sharex=ax)
    right = fig.add_subplot(gs[1, 1], sharey=ax)
    lt, lat, sza = (events[k].values for k in ("ltst_hours", "lat_deg", "sza_deg"))
    sc = ax.scatter(lt, lat, c=sza, s=6, cmap="viridis_r", vmin=0, vmax=180,
                    label="all events")
    if "observed" in events and events.sizes.get("design", 0):
        o = events.observed.values[:, 0]
        ax.scatter(lt[o], lat[o], s=22, facecolors="none", edgecolors="r", linewidths=0.8,
                   label=f"observed ({designs[0]})")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel("local true solar time at the tangent point [h]")
    ax.set_ylabel("latitude [deg]")
    ax.set_xlim(0, 24)
    ax.set_ylim(-90, 90)
    top.hist(lt, bins=np.arange(0, 25, 1), color="0.5")
    top.set_ylabel("events")
    top.tick_params(labelbottom=False)
    right.hist(lat, bins=np.arange(-90, 91, 10), orientation="horizontal", color="0.5")
    right.set_xlabel("events")
    right.tick_params(labelleft=False)
    fig.colorbar(sc, ax=right, label="SZA [deg]")
    return fig


def _sza_figure(events, comp, summary):
    from validation.report import figure

    fig = figure()
    ax = fig.add_subplot()
    ax.hist(events.sza_deg.values, bins=SZA_BINS_DEG, alpha=0.6,
            label=f"{summary['link']['transmitter']} -> {summary['link']['receiver']} "
            f"(mutual, {summary['n_events']})")
    if comp is not None and comp.sizes["event"]:
        ax.hist(comp.sza_deg.values, bins=SZA_BINS_DEG, alpha=0.6,
                label=f"{summary['comparison']['transmitter']} -> "
                f"{summary['comparison']['receiver']} (conventional, "
                f"{summary['comparison']['n_events']})")
    ax.axvline(45.0, color="k", ls="--", lw=0.8)
    ax.axvline(90.0, color="k", ls=":", lw=0.8)
    ax.set_xlabel("solar zenith angle at the tangent point [deg]")
    ax.set_ylabel("events")
    ax.legend(fontsize=8)
    return fig


#: Short labels of the predicted metrics in the report.
_METRIC_LABELS = {"m2_peak_density_rel": "M2 peak density", "m2_peak_altitude_km":
                  "M2 peak altitude", "ne150_rel": "N_e(150 km)"}


def _sza_text(x) -> str:
    """A minimum SZA for people: one decimal, or "none" when no event qualifies."""
    return "none" if x is None or not np.isfinite(x) else f"{x:.1f}"


def _physics_groups(events):
    """Designs with identical predictions (cadence-only variants): [[j, [names]], ...]."""
    shown, seen = [], []
    for j, d in enumerate(events.design.values):
        y = np.stack([events[f"predicted_{m}"].values[:, j] for m in _METRIC_LABELS
                      if f"predicted_{m}" in events])
        k = next((i for i, z in enumerate(seen) if np.array_equal(z, y, equal_nan=True)), None)
        if k is None:
            seen.append(y)
            shown.append([j, [str(d)]])
        else:
            shown[k][1].append(str(d))
    return shown


def _accuracy_figure(events, summary):
    from validation.report import figure

    fig = figure()
    fig.set_size_inches(7.5, 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    sza = events.sza_deg.values
    shown = _physics_groups(events)  # designs with the same predictions are drawn once
    for (m, ylabel), ax in zip((("m2_peak_density_rel", "M2 peak density\n1-sigma [%]"),
                                ("m2_peak_altitude_km", "M2 peak altitude\n1-sigma [km]")),
                               axes):
        scale = 100.0 if m.endswith("rel") else 1.0
        trusted_y = []
        for i, (j, names) in enumerate(shown):
            colour = f"C{i % 10}"
            y = events[f"predicted_{m}"].values[:, j] * scale
            ok = events[f"flag_{m}"].values[:, j] == 0
            ax.scatter(sza[ok], y[ok], s=4, color=colour, label=" = ".join(names))
            ax.scatter(sza[~ok], y[~ok], s=3, marker="x", alpha=0.25, color=colour,
                       linewidths=0.5)
            mc = events[f"budget_{m}"].values[:, j] * scale
            ax.scatter(sza, mc, s=30, marker="D", facecolors="none", edgecolors=colour)
            trusted_y += [y[ok], mc]
        t = summary["target"][m]
        if t is not None:
            ax.axhline(t * scale, color="k", ls="--", lw=0.8, label="target")
            trusted_y.append(np.array([t * scale]))
        ax.set_yscale("log")
        yy = np.concatenate(trusted_y) if trusted_y else np.zeros(0)
        yy = yy[np.isfinite(yy) & (yy > 0)]
        if len(yy):  # flagged predictions far outside (e.g. 1e4 km) do not set the scale
            ax.set_ylim(yy.min() / 2.0, yy.max() * 2.0)
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("solar zenith angle at the tangent point [deg]")
    return fig


def _fit_rows(events, summary):
    """One row per physics design and metric: the fit and its quality."""
    from validation.report import Markup

    rows = []
    fits = summary["fits"]
    for _, names in _physics_groups(events):
        for m, f in fits[names[0]].items():
            sc = f.get("scatter_log_total", np.nan)
            sc = float("nan") if sc is None else sc
            verdict = (Markup("<span class='flag'>poor: predictions flagged</span>")
                       if f.get("poor") else "ok")
            rows.append(dict(design=", ".join(names), metric=_METRIC_LABELS[m],
                             quality=f"x{np.exp(sc):.2f}" if np.isfinite(sc) else None,
                             n=f.get("n_total", f["n"]),
                             p=None if f["c"] is None else f["p"], floor=f.get("floor"),
                             verdict=verdict))
    return rows


def _trade_rows(summary):
    """The trade table's rows: template values dimmed, flagged numbers as words."""
    from validation.report import Markup

    tmpl = summary.get("template_design", {})
    rows = []
    for name, d in summary["designs"].items():
        r = {"design": name}  # long names wrap at hyphens: the table must fit the page
        for k, conv in (("oscillator", str), ("frequency_hz", lambda x: f"{x / 1e6:g}"),
                        ("sampling_rate_hz", lambda x: f"{x:g}"),
                        ("cn0_dbhz", lambda x: f"{x:g}"), ("per_week", lambda x: f"{x:g}")):
            v = d.get(k)
            if k == "per_week" and v == tmpl.get("per_week"):
                v = None
            if v is not None:
                r[k] = conv(v)
            elif tmpl.get(k) is not None:
                r[k] = Markup(f"<span class='dim'>{conv(tmpl[k])}</span>")
            else:
                r[k] = Markup("<span class='dim'>template</span>")
        r["n_observed"] = d["n_observed"]
        r["n_meeting_target"] = d["n_meeting_target"]
        nf = d.get("n_meeting_target_flagged", 0)
        r["flagged"] = Markup(f"<span class='flag'>{nf}</span>") if nf else 0
        r["min_sza_deg"] = _sza_text(d["min_sza_deg"])
        r["n_below_sza_45"] = d["n_below_sza_45"]
        for m, scale, digits in (("m2_peak_density_rel", 100.0, 2),
                                 ("m2_peak_altitude_km", 1.0, 2)):
            v = d[f"median_{m}"]
            if m in d.get("poor_fit", []):
                r[m] = Markup("<span class='flag'>poor fit</span>")
            elif v is None or not np.isfinite(v):
                r[m] = "none"
            else:
                r[m] = f"{v * scale:.{digits}g}"
        rows.append(r)
    return rows


def campaign_report(events, comp, summary, path) -> str:
    """The campaign's self-contained HTML report (:mod:`validation.report`)."""
    from validation.report import html_report, table_html

    d0 = list(summary["designs"])
    overview = [
        ("link", f"{summary['link']['transmitter']} -> {summary['link']['receiver']} at "
                 f"{summary['link']['frequency_hz'] / 1e6:g} MHz"),
        ("span", f"{summary['start_utc']} to {summary['stop_utc']}"),
        ("events (ingress + egress)", summary["n_events"]),
        ("observable (ray spans the target's altitudes)", summary["n_observable"]),
        ("min SZA [deg]", _sza_text(summary["min_sza_deg"])),
        ("events below SZA 45 deg", summary["n_below_sza_45"]),
        ("events below SZA 10 deg", summary["n_below_sza_10"]),
        ("nightside events (SZA >= 90 deg)", summary["n_nightside"]),
    ]
    if "comparison" in summary:
        cm = summary["comparison"]
        overview += [(f"conventional {cm['transmitter']} -> {cm['receiver']}: events",
                      cm["n_events"]),
                     ("conventional: min SZA [deg]", _sza_text(cm["min_sza_deg"])),
                     ("conventional: events below SZA 45 deg", cm["n_below_sza_45"])]
    cols = ["design", "oscillator", "frequency_hz", "sampling_rate_hz", "cn0_dbhz",
            "per_week", "n_observed", "n_meeting_target", "flagged", "min_sza_deg",
            "n_below_sza_45", "m2_peak_density_rel", "m2_peak_altitude_km"]
    heads = ["design", "receiver\noscillator", "frequency\n[MHz]", "sampling\n[Hz]",
             "C/N0\n[dB-Hz]", "per\nweek", "observed", "meeting\ntarget", "of which\nflagged",
             "min SZA\n[deg]", "below\nSZA 45", "median M2\ndensity\n1-sigma [%]",
             "median M2\naltitude\n1-sigma [km]"]
    t = summary["target"]
    target = (f"Target (1-sigma): M2 peak density within {100 * t['m2_peak_density_rel']:g} %, "
              f"M2 peak altitude within {t['m2_peak_altitude_km']:g} km"
              + (f", N_e(150 km) within {100 * t['ne150_rel']:g} %" if t["ne150_rel"] else "")
              + f"; the ray must reach {t['max_bottom_altitude_km']:g} km and start above "
              f"{t['min_top_altitude_km']:g} km. Cadence: {summary['cadence']['per_week']:g} per "
              f"week, rule '{summary['cadence']['rule']}'.")
    sections = [("Overview", table_html(overview, ["quantity", "value"])),
                ("Coverage: latitude vs local time", _map_figure(events, d0)),
                ("SZA histogram: mutual vs conventional RO", _sza_figure(events, comp, summary))]
    if summary["accuracy_run"]:
        sub = events.in_budget_subset.values.astype(bool)
        if sub.any():
            v = np.abs(events.vertical_speed_km_s.values[sub])
            x = events.sza_deg.values[sub]
            subset_text = (f"{int(sub.sum())} subset events, SZA {x.min():.0f}-{x.max():.0f} "
                           f"deg, |V| {v.min():.2f}-{v.max():.2f} km/s")
        else:
            subset_text = "no subset event could be simulated"
        from validation.campaign.accuracy import EXTRAPOLATION_FACTOR
        explain = (
            "<p class='note'>Dots: predicted 1-sigma error of each observable dayside event; "
            "faint crosses: flagged predictions (not trustworthy, see below); diamonds: the "
            "Monte Carlo of the events run through the error budget. The prediction is "
            "sigma = sqrt(floor^2 + (C |V|^-p / N_ref(SZA))^2), fitted to the budget on the "
            f"subset ({subset_text}). A prediction is <b>flagged</b> when the event's "
            f"vertical speed |V| or reference density N_ref(SZA) lies outside the subset's "
            f"range by more than a factor {EXTRAPOLATION_FACTOR:g} (extrapolation), or when "
            "the fit is poor: it reproduces the subset's own Monte Carlo only within more "
            "than a factor 2 (the 'fit within' column: exp of the RMS log residual; n: "
            "subset events). Flagged predictions are left out of the medians below and "
            "stay in events.nc with their reason (flag_* variables).</p>")
        fit_table = table_html(_fit_rows(events, summary),
                               ["design", "metric", "quality", "n", "p", "floor", "verdict"],
                               headers=["design(s)", "metric", "fit within\n(factor)",
                                        "n", "exponent\np", "floor", "verdict"])
        sections += [("Predicted accuracy vs SZA", [_accuracy_figure(events, summary), explain,
                                                    fit_table])]
        chk = summary.get("check") or {}
        if chk.get("designs"):
            rows = []
            for d, mm in chk["designs"].items():
                for m, r in mm.items():
                    for e, p, x in zip(chk["events"], r["predicted"], r["direct"]):
                        rows.append(dict(design=d, metric=_METRIC_LABELS.get(m, m), event=e,
                                         predicted=p, direct=x,
                                         ratio=p / x if x else float("nan")))
            sections.append(("Prediction vs direct Monte Carlo (events outside the subset)",
                             table_html(rows, ["design", "metric", "event", "predicted",
                                               "direct", "ratio"])))
    note = ("<p class='note'>Grey: the template's value (scenario "
            f"{summary['template']}). 'of which flagged': profiles counted as meeting the "
            "target whose prediction is flagged. Medians over the observed events with "
            "trustworthy predictions; 'poor fit': the design's rule does not reproduce its "
            "own Monte Carlo (above), so no number is given.</p>")
    sections.append(("Trade study", [f"<p>{target}</p>",
                                     table_html(_trade_rows(summary), cols, headers=heads,
                                                na="none"), note]))
    return html_report(f"Campaign {summary['campaign']}", sections, path,
                       meta=f"template {summary['template']}, "
                       f"{summary['start_utc']} to {summary['stop_utc']}")
