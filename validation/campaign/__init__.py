r"""Campaign design: the occultations of a link over months, their coverage and accuracy.

"With these two orbits, this oscillator, this frequency and this cadence, how many profiles
do we get, where and when, and how accurate will each be?" A *campaign file* (TOML, strictly
checked like a scenario; built-ins in ``validation/campaigns``) names the link, the span, the
scenario used as the accuracy template, the accuracy target, the cadence, the trade designs
and a conventional (spacecraft -> Earth) comparison link. :func:`run_campaign` then

1. **searches** every ingress/egress of the link over the span
   (:func:`retrieval.occultation.find_events`, the Lipschitz scan), in chunks of
   ``[span] chunk_days`` run as :class:`validation.engine.Engine` tasks (each chunk is padded
   by :data:`CHUNK_PAD_S` on both sides and keeps the events whose reference crossing lies in
   it, so the result equals one long search), and adds the **top altitude** reached
   (:func:`top_altitude_km`);
2. **predicts the accuracy** of every dayside event for every design: the error budget
   (:func:`validation.budget.run_budget`) runs on a *representative subset* of events
   (:func:`select_subset`: stratified in SZA and in tangent-point vertical speed), each
   pinned by a scenario variant (:func:`event_scenario`), and the result is carried to the
   other events by the scaling rule of :func:`fit_with_floor`; a prediction outside what
   the subset supports (extrapolated in |V| or SZA, or from a poor fit) is flagged
   (:func:`prediction_flags`) and shown as such, not as a number;
3. applies the **cadence** (:func:`apply_cadence`) and counts, per design, the profiles
   meeting the target and their SZA coverage;
4. searches the **comparison** link over the same span (the conventional-RO SZA floor);
5. optionally (``[accuracy] check = N``) runs a **direct Monte Carlo** of N events that are
   not in the subset and compares it with the prediction.

Design choices
--------------
* Events are timed and located where the straight ray's tangent point crosses the
  reference altitude (``[span] reference_altitude_km``, 200 km: the top of the
  photochemical ionosphere), as ``roharness events`` does. "Top altitude" is the highest
  tangent altitude before ingress / after egress (the lower spacecraft's altitude where the
  tangent point reaches the end of the segment); "bottom" is 0 km when the ray is cut.
* *Observable*: the ray spans ``[target] min_top_altitude_km`` (a vacuum baseline above the
  ionosphere for the drift correction) down to ``max_bottom_altitude_km`` (below the M2
  peak). Accuracy is predicted only for observable events with SZA <= ``[accuracy]
  max_sza_deg`` (the peak laws are fitted below 90 deg); the others count as not meeting
  the target.
* A design changes the template scenario: ``oscillator`` -> ``[oscillator]
  receiver_preset`` (the receiver is the end without a USO in MEX -> TGO),
  ``frequency_hz`` -> ``[link]``, ``sampling_rate_hz`` -> ``[sampling] rate_hz`` (with the
  integration time and I/Q window back to one sample interval), ``cn0_dbhz`` ->
  ``[receiver]``, ``per_week`` -> the cadence only. Designs that differ only in cadence share
  one budget run. The metric of an event is the Monte Carlo RMS with every selected
  physical source on at once (the budget's ``mc_total``), what a direct Monte Carlo of that
  event measures.
* Cadence: see :func:`apply_cadence` (one observation per slot of 7 / per_week days; by
  default the slot's lowest-SZA event among those meeting the target, else the slot's
  lowest-SZA observable event).

Layout
------
:mod:`~validation.campaign.config` (the file schema, :class:`Campaign`, scenario variants),
:mod:`~validation.campaign.search` (chunked event search, top altitude),
:mod:`~validation.campaign.accuracy` (subset, budgets, scaling rule),
:mod:`~validation.campaign.cadence` (cadence, coverage), :mod:`~validation.campaign.run`
(the driver) and :mod:`~validation.campaign.report` (tables, files, HTML). The public names
are re-exported here, so ``from validation.campaign import X`` works for all of them.
"""

from __future__ import annotations

from validation.campaign.accuracy import (
    EXTRAPOLATION_FACTOR,
    FLAG_MEANINGS,
    METRICS,
    POOR_FIT_SCATTER_LOG,
    budget_eligible,
    budget_sources,
    fit_quality,
    fit_scaling,
    fit_with_floor,
    meets_target,
    observable,
    per_event_rms,
    pin_ok,
    predict,
    predict_with_floor,
    prediction_flags,
    reference_density,
    select_subset,
)

# private helpers kept importable from the package (tests use C._rows): explicit re-exports
from validation.campaign.accuracy import _accuracy as _accuracy
from validation.campaign.accuracy import _rows as _rows
from validation.campaign.accuracy import _run_event_budgets as _run_event_budgets
from validation.campaign.cadence import CADENCE_RULES, SZA_BINS_DEG, apply_cadence, coverage
from validation.campaign.config import (
    DESIGN_KEYS,
    SCHEMA,
    Campaign,
    builtin_dir,
    builtin_names,
    builtin_text,
    design_scenario,
    event_scenario,
    load_campaign,
    parse_campaign,
    scenario_text,
)
from validation.campaign.report import campaign_report, events_table, write_campaign
from validation.campaign.run import run_campaign
from validation.campaign.search import (
    CHUNK_PAD_S,
    TOP_BISECTIONS,
    TOP_OFFSETS_S,
    search_chunk,
    search_link,
    top_altitude_km,
)

__all__ = [
    "CADENCE_RULES", "CHUNK_PAD_S", "DESIGN_KEYS", "EXTRAPOLATION_FACTOR", "FLAG_MEANINGS",
    "METRICS", "POOR_FIT_SCATTER_LOG", "SCHEMA", "SZA_BINS_DEG",
    "TOP_BISECTIONS", "TOP_OFFSETS_S", "Campaign", "apply_cadence", "budget_eligible",
    "budget_sources", "builtin_dir", "builtin_names", "builtin_text", "campaign_report",
    "coverage", "design_scenario", "event_scenario", "events_table", "fit_quality",
    "fit_scaling",
    "fit_with_floor", "load_campaign", "meets_target", "observable", "parse_campaign",
    "per_event_rms", "pin_ok", "predict", "predict_with_floor", "prediction_flags",
    "reference_density",
    "run_campaign", "scenario_text", "search_chunk", "search_link", "select_subset",
    "top_altitude_km", "write_campaign",
]
