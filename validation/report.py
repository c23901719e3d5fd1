"""Self-contained HTML reports with embedded PNG plots (budgets, campaigns).

A report is one HTML file: no external scripts, styles or images (PNG figures are
embedded as base64 data URIs), so it can be mailed, archived or attached to a CI run.
Figures are drawn with matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import UTC, datetime

from retrieval.fileio import write_text_atomic

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}
th{background:#eee;vertical-align:bottom;font-weight:600}
td:first-child,th:first-child{text-align:left}
img{max-width:100%}.meta{color:#666;font-size:.85em}.note{color:#555;font-size:.85em}
.dim{color:#888}.flag{color:#a33;font-style:italic}
"""


def figure():
    """A new matplotlib Figure on the Agg canvas (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


class Markup(str):
    """A table cell that is already HTML (inserted as is, not escaped)."""


def figure_html(fig, alt: str = "") -> str:
    """A matplotlib Figure as an ``<img>`` with an embedded PNG.

    Saved with a tight bounding box, so a label longer than the constrained layout
    allows is never clipped (the image grows instead).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.05)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _fmt(v, na: str = "&ndash;") -> str:
    if isinstance(v, Markup):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return na
        return f"{v:.3g}"
    if v is None:
        return na
    return html.escape(str(v))


def table_html(rows, columns, headers=None, na: str = "&ndash;") -> str:
    """An HTML table: ``rows`` are sequences (or dicts keyed by column) of cells.

    ``headers`` (optional) are the displayed column titles (a newline becomes a line
    break); ``na`` is shown for NaN and None. Cells of type :class:`Markup` are HTML.
    """
    titles = columns if headers is None else headers
    head = "".join(f"<th>{html.escape(str(c)).replace(chr(10), '<br>')}</th>"
                   for c in titles)
    body = []
    for r in rows:
        cells = [r.get(c, "") for c in columns] if isinstance(r, dict) else list(r)
        body.append("<tr>" + "".join(f"<td>{_fmt(c, na)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_report(title: str, sections, path, meta: str = "") -> str:
    """Write a self-contained HTML report atomically; return its text.

    Parameters
    ----------
    title : str
    sections : sequence of (heading, content)
        ``content`` is an HTML string, a matplotlib Figure, or a list of either.
    path : path
        Output file (written atomically).
    meta : str
        One line of provenance (scenario, seed, version) under the title.
    """
    from validation import __version__

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p class='meta'>{html.escape(meta)} &middot; roharness {__version__} "
                 f"&middot; {stamp}</p>")
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for item in content if isinstance(content, list) else [content]:
            parts.append(item if isinstance(item, str) else figure_html(item, heading))
    parts.append("</body></html>")
    text = "\n".join(parts)
    if path is not None:
        write_text_atomic(path, text)
    return text
