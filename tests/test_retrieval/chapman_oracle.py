"""Analytic multi-layer Chapman oracle for the profile-science tests (truth, written here).

Each layer is ``N_i exp{1/2 [1 - z - exp(-z)]}``, ``z = (h - h_i)/H_i`` with ``N_i``, ``h_i``
its own peak density and altitude. Everything the tests compare with is analytic:

* ``density`` and ``slope`` (dN/dh) in closed form;
* ``tec()``: ``int N dh = sum N_i H_i e^{1/2} sqrt(2 pi)`` (substitute ``u = e^{-z}``:
  ``int_0^inf u^{-1/2} e^{-u/2} du = sqrt(2 pi)``);
* ``temperature(i)``: ``T = H_i g(h_i) m_CO2 / k_B``, ``g = G M / (R + h)^2``;
* ``m1_class()``: the truth-based M1 class (module docstring of retrieval.profile gives
  the definition; its thresholds are definitions, shared) from the analytic slope on a
  10 m grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.constants as sc

from retrieval.constants import CO2_MASS_KG, MARS_GM_M3_S2, MARS_MEAN_RADIUS_M
from retrieval.profile import M1_BASE_FRACTION, M1_MIN_DIP, M1_MIN_SHOULDER_DEPTH


@dataclass
class ChapmanOracle:
    """Layers as (peak density [m^-3], peak altitude [m], scale height [m]); M2 first."""

    layers: list = field(default_factory=list)

    def density(self, h):
        h = np.asarray(h, dtype=float)
        out = np.zeros_like(h)
        for n, hm, hh in self.layers:
            z = (h - hm) / hh
            out += n * np.exp(0.5 * (1.0 - z - np.exp(-z)))
        return out

    def slope(self, h):
        h = np.asarray(h, dtype=float)
        out = np.zeros_like(h)
        for n, hm, hh in self.layers:
            z = (h - hm) / hh
            out += n * np.exp(0.5 * (1.0 - z - np.exp(-z))) * 0.5 * (np.exp(-z) - 1.0) / hh
        return out

    def tec(self):
        return sum(n * hh * math.exp(0.5) * math.sqrt(2.0 * math.pi) for n, _, hh in self.layers)

    def temperature(self, i=0):
        n, hm, hh = self.layers[i]
        g = MARS_GM_M3_S2 / (MARS_MEAN_RADIUS_M + hm) ** 2
        return hh * g * CO2_MASS_KG / sc.k

    def fine(self):
        h = np.arange(40e3, 260e3, 10.0)
        return h, self.density(h), self.slope(h)

    def m1_truth(self):
        """(class, altitude of the M1 local maximum or NaN) from the analytic profile."""
        h, n, s = self.fine()
        j2 = int(np.argmax(n))
        below = np.flatnonzero(n[: j2 + 1] < M1_BASE_FRACTION * n[j2])
        jb = int(below[-1]) + 1 if below.size else 0
        h, n, s = h[jb: j2 + 1], n[jb: j2 + 1], s[jb: j2 + 1]
        maxima = [k for k in np.flatnonzero((s[:-1] > 0) & (s[1:] <= 0))
                  if k < len(n) - 2 and n[k] - n[k:].min() >= M1_MIN_DIP * n[k]]
        if len(maxima) == 1:
            return "strong", float(h[maxima[0]])
        if len(maxima) > 1:
            return "medium", float("nan")
        ds = np.diff(s)
        for k in np.flatnonzero((ds[:-1] < 0) & (ds[1:] >= 0)) + 1:
            ref = min(s[:k].max(), s[k:].max())
            if ref > 0 and ref - s[k] >= M1_MIN_SHOULDER_DEPTH * ref:
                return "medium", float("nan")
        return "none", float("nan")
