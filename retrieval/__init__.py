"""Inverse methods: what a scientist runs on real data (observables -> estimates).

``retrieval`` never imports ``synth`` or ``validation``: it must stand alone on real data
and must never see the truth.

The public surface (imported lazily, so ``import retrieval`` stays cheap):

* RO chain: :func:`invert_observation` (level-2/5 residual Doppler + states -> electron
  density profile), :func:`bending_from_observation`, :func:`invert_bending_angle`,
  :func:`inverse_abel`; real I/Q data: :func:`level4_observation` (I/Q -> level 4),
  :func:`extract_carrier`, :func:`correct_drift` (level 4 -> 5).
* Neutral atmosphere: :func:`remove_neutral` (what :func:`invert_observation` applies),
  :func:`separate_neutral`, :func:`fit_neutral` (a neutral model fitted below the
  ionosphere of a single-frequency profile).
* Profile science: :func:`profile_science` (peaks, M1 class, T_n, TEC),
  :func:`neutral_temperature`, :func:`vertical_tec`; campaign laws :func:`fit_campaign`.
* Geometry: :func:`ensure_kernels`, :func:`link_states`, :func:`solar_geometry`,
  :func:`find_events`.
* Current sheets: :func:`minimum_variance`, :func:`analyse_sheet_crossing`.
* Real data: :func:`read_rose_edp` (MAVEN ROSE level 3).
* :class:`RoharnessError`: every user-caused error, one sentence.
"""

from __future__ import annotations

from retrieval.errors import RoharnessError
from retrieval.lazy import attach

_API = {
    "invert_observation": "retrieval.electron_density",
    "profile_dataset": "retrieval.electron_density",
    "remove_neutral": "retrieval.neutral",
    "separate_neutral": "retrieval.neutral",
    "fit_neutral": "retrieval.neutral",
    "bending_from_observation": "retrieval.bending",
    "invert_bending_angle": "retrieval.abel",
    "inverse_abel": "retrieval.abel",
    "level4_observation": "retrieval.iq",
    "extract_carrier": "retrieval.carrier",
    "correct_drift": "retrieval.drift",
    "profile_science": "retrieval.profile",
    "neutral_temperature": "retrieval.profile",
    "vertical_tec": "retrieval.profile",
    "fit_campaign": "retrieval.laws",
    "ensure_kernels": "retrieval.spice",
    "link_states": "retrieval.geometry",
    "solar_geometry": "retrieval.geometry",
    "find_events": "retrieval.occultation",
    "minimum_variance": "retrieval.mva",
    "analyse_sheet_crossing": "retrieval.reconnection",
    "read_rose_edp": "retrieval.rose",
}

__all__ = ["RoharnessError", *_API]


__getattr__, __dir__ = attach(__name__, _API, __all__)
