"""Helpers shared by the asv benchmarks: the script benchmarks next to this folder."""

from __future__ import annotations

import sys
from pathlib import Path

_SCRIPTS = str(Path(__file__).resolve().parents[1])
if _SCRIPTS not in sys.path:  # forward_bench.py & co. define the synthetic geometries
    sys.path.insert(0, _SCRIPTS)
