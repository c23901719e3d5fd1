"""The README stays true: its commands are what CI runs, and its quick start works."""

from __future__ import annotations

import re
from pathlib import Path

from validation.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith(("#", "set ", "cd "))]
    assert ci == ["python3 -m pip install tox && tox"]
    assert "    python3 -m pip install tox && tox\n" in README


def test_readme_main_command_runs(capsys):
    m = re.search(r"^    python3 -m pip install \. && roharness (.+)$", README, re.M)
    assert m, "the README must give the install-and-run command"
    args = m.group(1).split()
    assert main(args) == 0
    assert "occultation events" in capsys.readouterr().out


def test_readme_quick_start_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    err = float(out.split("=")[-1])
    assert err <= 1e-3
