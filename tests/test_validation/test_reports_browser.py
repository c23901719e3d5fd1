"""The HTML reports as a reader sees them: rendered in headless Chromium.

A small campaign report (one day, two subset events, two realisations) and a small budget
report (``data/budget-small.toml``) are opened in Debian's ``/usr/bin/chromium``; a
script appended to a copy of each report measures the laid-out page and writes the result
into the DOM, which ``--dump-dom`` prints. Checked: no table is wider than the window (the
page needs no horizontal scrolling), no cell reads "nan"/"None", every figure has loaded,
and the screenshot is produced and not blank. Skipped when Chromium is not installed
(``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1200, 1600  # a laptop browser window [px]

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"{CHROMIUM} is not installed")

#: Appended to a copy of the report: layout measurements into <body data-check=...>.
PROBE = """<script>
(function () {
  var vw = document.documentElement.clientWidth;
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  var wide = tables.filter(function (t) { return t.getBoundingClientRect().right > vw + 1; });
  var cells = Array.prototype.slice.call(document.querySelectorAll('td,th'));
  var bad = cells.filter(function (c) { return /^\\s*(nan|none|inf)\\s*$/i.test(c.textContent)
                                          && c.textContent.trim() !== 'none'; });
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img'));
  document.body.setAttribute('data-check', JSON.stringify({
    viewport: vw, scroll_width: document.documentElement.scrollWidth,
    n_tables: tables.length, wide_tables: wide.map(function (t) {
      return Math.round(t.getBoundingClientRect().width); }),
    bad_cells: bad.map(function (c) { return c.textContent; }),
    n_images: imgs.length,
    unloaded_images: imgs.filter(function (i) { return !i.naturalWidth; }).length}));
})();
</script></body>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}"]


def _chromium(args, profile):
    # Chromium logs D-Bus complaints on stderr in a container; only the exit status counts
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=60, check=True)


def _render(report: Path, tmp_path: Path) -> tuple[dict, np.ndarray]:
    """(layout measurements, screenshot RGB) of ``report`` in headless Chromium."""
    probe = tmp_path / f"probe-{report.name}"
    html = report.read_text()
    assert html.rstrip().endswith("</body></html>")
    probe.write_text(html.replace("</body>", PROBE, 1))
    profile = tempfile.mkdtemp(dir=tmp_path)
    dom = _chromium(["--run-all-compositor-stages-before-draw", "--dump-dom",
                     probe.as_uri()], profile).stdout
    m = re.search(r"data-check=\"([^\"]*)\"", dom)
    assert m, "the probe script did not run"
    check = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    png = tmp_path / f"{report.stem}.png"
    _chromium([f"--screenshot={png}", report.as_uri()], profile)
    import matplotlib.image as mpimg
    return check, mpimg.imread(png)[..., :3]


def _assert_readable(check: dict, shot: np.ndarray, n_images: int):
    assert check["viewport"] > 1000
    assert check["wide_tables"] == [], f"tables wider than the {check['viewport']} px window"
    # 1 px: the scrollbar-free viewport rounds the body's margin
    assert check["scroll_width"] <= check["viewport"] + 1, "the page scrolls sideways"
    assert check["bad_cells"] == []
    assert check["n_images"] >= n_images and check["unloaded_images"] == 0
    assert shot.shape[:2] == (HEIGHT, WIDTH)
    # not blank: text, lines and plots cover a good part of the first screen
    dark = (shot.mean(axis=2) < 0.8).mean()
    assert dark > 0.01, f"only {dark:.1%} of the screenshot is not background"


#: a cheap occultation (4 s sampling, 300 -> 90 km; the forward model costs ~1 s)
SMALL_TEMPLATE = (Path(__file__).parent / "data" / "small-template.toml").read_text()

# one day, two subset events, a design without any qualifying event (min SZA "none")
SMALL_CAMPAIGN = """
name = "browser"
kind = "campaign"
seed = 3
[span]
start_utc = "2023-01-01"
stop_utc = "2023-01-02"
[accuracy]
scenario = "small.toml"
sources = ["thermal"]
realisations = 2
subset = 2
[target]
m2_peak_density_rel = 0.5
m2_peak_altitude_km = 5.0
[comparison]
enabled = false
[[design]]
name = "base"
[[design]]
name = "weekly-cadence-with-a-long-name"
per_week = 1.0
"""


def test_campaign_report_in_a_browser(tmp_path):
    import validation.campaign as C

    (tmp_path / "small.toml").write_text(SMALL_TEMPLATE)
    (tmp_path / "c.toml").write_text(SMALL_CAMPAIGN)
    out = tmp_path / "out"
    C.run_campaign(str(tmp_path / "c.toml"), workers=0, out_dir=out, progress=False)
    check, shot = _render(out / "report.html", tmp_path)
    _assert_readable(check, shot, n_images=3)
    assert check["n_tables"] >= 3  # overview, fits, trade study


def test_budget_report_in_a_browser(tmp_path):
    from validation.budget import run_budget

    small = Path(__file__).parent / "data" / "budget-small.toml"
    run_budget(str(small), workers=0, out_dir=tmp_path / "out", progress=False)
    check, shot = _render(tmp_path / "out" / "report.html", tmp_path)
    _assert_readable(check, shot, n_images=1)
