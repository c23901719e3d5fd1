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


def _accuracy_figure(events, summary):
    from validation.report import figure

    fig = figure()
    fig.set_size_inches(7.5, 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    sza = events.sza_deg.values
    # designs with the same predictions (cadence-only variants) are drawn once
    shown, seen = [], []
    for j, d in enumerate(events.design.values):
        y = events.predicted_m2_peak_density_rel.values[:, j]
        k = next((i for i, z in enumerate(seen) if np.array_equal(z, y, equal_nan=True)), None)
        if k is None:
            seen.append(y)
            shown.append([j, [str(d)]])
        else:
            shown[k][1].append(str(d))
    for (m, ylabel, tkey), ax in zip((("m2_peak_density_rel", "M2 peak density\n1-sigma [%]",
                                        "m2_peak_density_rel"),
                                       ("m2_peak_altitude_km", "M2 peak altitude\n1-sigma [km]",
                                        "m2_peak_altitude_km")), axes):
        scale = 100.0 if m.endswith("rel") else 1.0
        for j, names in shown:
            y = events[f"predicted_{m}"].values[:, j] * scale
            line = ax.scatter(sza, y, s=4, label=" = ".join(names))
            mc = events[f"budget_{m}"].values[:, j] * scale
            ax.scatter(sza, mc, s=30, marker="D", facecolors="none",
                       edgecolors=line.get_facecolor()[0])
        t = summary["target"][tkey]
        if t is not None:
            ax.axhline(t * scale, color="k", ls="--", lw=0.8, label="target")
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("solar zenith angle [deg] (dots: prediction; diamonds: Monte Carlo "
                       "of the events run through the budget)")
    return fig


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
        ("min SZA [deg]", summary["min_sza_deg"]),
        ("events below SZA 45 deg", summary["n_below_sza_45"]),
        ("events below SZA 10 deg", summary["n_below_sza_10"]),
        ("nightside events (SZA >= 90 deg)", summary["n_nightside"]),
    ]
    if "comparison" in summary:
        cm = summary["comparison"]
        overview += [(f"conventional {cm['transmitter']} -> {cm['receiver']}: events",
                      cm["n_events"]),
                     ("conventional: min SZA [deg]", cm["min_sza_deg"]),
                     ("conventional: events below SZA 45 deg", cm["n_below_sza_45"])]
    cols = ["design", "oscillator", "frequency_hz", "sampling_rate_hz", "cn0_dbhz",
            "per_week", "n_observed", "n_meeting_target", "min_sza_deg", "n_below_sza_45",
            "median_m2_peak_density_rel", "median_m2_peak_altitude_km"]
    trade = [dict(v, design=k) for k, v in summary["designs"].items()]
    for r in trade:
        for k in cols:
            if r.get(k) is None:
                r[k] = "template"
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
        fit_rows = [dict(design=d, metric=m, C=f["c"], p=f["p"], floor=f.get("floor"),
                         n=f["n"], scatter_log=f["scatter_log"])
                    for d, fm in summary["fits"].items() for m, f in fm.items()]
        sections += [
            ("Predicted accuracy vs SZA", [_accuracy_figure(events, summary),
                                           "<p>sigma = sqrt(floor^2 + (C |V|^-p / "
                                           "N_ref(SZA))^2), fitted to the budget on the "
                                           "subset (module validation.campaign).</p>",
                                           table_html(fit_rows, ["design", "metric", "C", "p",
                                                                 "floor", "n",
                                                                 "scatter_log"])])]
        chk = summary.get("check") or {}
        if chk.get("designs"):
            rows = []
            for d, mm in chk["designs"].items():
                for m, r in mm.items():
                    for e, p, x in zip(chk["events"], r["predicted"], r["direct"]):
                        rows.append(dict(design=d, metric=m, event=e, predicted=p, direct=x,
                                         ratio=p / x if x else float("nan")))
            sections.append(("Prediction vs direct Monte Carlo (events outside the subset)",
                             table_html(rows, ["design", "metric", "event", "predicted",
                                               "direct", "ratio"])))
    sections.append(("Trade study", [f"<p>{target}</p>", table_html(trade, cols)]))
    return html_report(f"Campaign {summary['campaign']}", sections, path,
                       meta=f"template {summary['template']}, "
                       f"{summary['start_utc']} to {summary['stop_utc']}")
