"""The configuration schema (synth.config): documented keys, physical ranges, one-sentence
errors before any work starts, defensive decoding, documented ``--show`` output."""

from __future__ import annotations

import re
import tomllib

import pytest

from synth import config
from synth.errors import ScenarioError
from synth.scenario import SCHEMA as RO_SCHEMA
from synth.scenario import builtin_names, builtin_text, parse_scenario
from synth.sheet_scenario import SCHEMA as SHEET_SCHEMA
from validation.campaign import SCHEMA as CAMPAIGN_SCHEMA
from validation.campaign import builtin_names as campaign_names
from validation.campaign import builtin_text as campaign_text
from validation.cli import main

SCHEMAS = {"scenario": RO_SCHEMA, "sheet": SHEET_SCHEMA, "campaign": CAMPAIGN_SCHEMA}


def _keys(schema):
    for sec, keys in list(schema.sections.items()) + list(schema.arrays.items()):
        for name, key in keys.items():
            yield sec, name, key
            for sub, k in (key.table or {}).items():
                yield f"{sec}.{name}", sub, k


@pytest.mark.parametrize("label", SCHEMAS)
def test_every_key_is_documented_with_a_range(label):
    for sec, name, key in _keys(SCHEMAS[label]):
        assert key.doc, (sec, name)
        if key.kind in ("float", "int", "floats", "intervals"):
            assert key.range is not None and key.why, (sec, name)
            assert key.unit, (sec, name)  # "1" for dimensionless
        d = key.default
        if key.range is not None and isinstance(d, (int, float)) and not isinstance(d, bool):
            assert d in key.range, (sec, name, d)
        if key.range is not None and isinstance(d, list):
            assert all(x in key.range for x in d), (sec, name, d)


def test_describe_lists_every_key():
    text = config.describe(RO_SCHEMA)
    assert "[ionosphere] f107_sfu: number, 50-400 sfu" in text
    assert text.count("\n") + 1 == sum(1 for _ in RO_SCHEMA.sections.values()
                                       for _ in _)


@pytest.mark.parametrize("rng, unit, text", [
    (config.Range(50.0, 400.0), "sfu", "50-400 sfu"),
    (config.Range(100e6, 40e9), "Hz", "1e+08 to 4e+10 Hz"),
    (config.Range(-1e-5, 1e-5), "1", "-1e-05 to 1e-05"),
    (config.Range(0.0, 90.0, hi_open=True), "deg", "0-90 deg (90 excluded)"),
    (config.Range(0.0, None, lo_open=True), "s", "above 0 s"),
])
def test_range_text(rng, unit, text):
    assert rng.text(unit) == text


# --------------------------------------------------------------------- known bad inputs
MEX = builtin_text("mex-tgo-uhf")
BAD = [  # (replace, by, section, key, value, range): each reached an internal error before
    ("f107_sfu = 120.0", "f107_sfu = 1e30", "[ionosphere]", "f107_sfu", "1e+30",
     "50-400 sfu"),                                                   # was IndexError
    ("rate_hz = 1.0 ", "rate_hz = 1e7 ", "[sampling]", "rate_hz", "1e+07",
     "0.01-100 Hz"),                                                  # was 70.5 GiB MemoryError
    ("frequency_hz = 437.1e6", "frequency_hz = 1e30", "[link]", "frequency_hz", "1e+30",
     "1e+08 to 4e+10 Hz"),                                            # was silently accepted
    ("[neutral]", "[budget]\nrealisations = 1000000000000\n[neutral]", "[budget]",
     "realisations", "1000000000000", "1-100000"),                   # was a hang
    ("[neutral]", "[budget]\nrealisations = 1e12\n[neutral]", "[budget]", "realisations",
     "1e+12", "1-100000"),
    ("seed = 1 ", "seed = -1 ", "", "seed", "-1", "0 to 9.223e+18"),  # SeedSequence ValueError
]


@pytest.mark.parametrize("old, new, section, key, value, allowed", BAD)
def test_bad_values_are_one_sentence_with_file_section_key_value_range(old, new, section,
                                                                       key, value, allowed):
    assert old in MEX
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(MEX.replace(old, new, 1), "x.toml")
    msg = str(exc.value)
    assert len(msg.splitlines()) == 1 and msg.endswith(".")
    assert msg.startswith(f"scenario file x.toml {section}".rstrip()), msg
    assert f"{key} = {value}" in msg and allowed in msg, msg


@pytest.mark.parametrize("command", ["roundtrip", "budget"])
@pytest.mark.parametrize("old, new", [b[:2] for b in BAD[:4]])
def test_cli_exits_2_on_bad_values(command, old, new, tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text(MEX.replace(old, new, 1), encoding="utf-8")
    out = tmp_path / ("out.nc" if command == "roundtrip" else "out")
    argv = [command, "--scenario", str(f), "-o", str(out)]
    assert main(argv + (["--workers", "0"] if command == "budget" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.toml" in err and "allowed range" in err, err


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_cli_non_utf8_file_is_one_sentence(encoding, tmp_path, capsys):
    f = tmp_path / "enc.toml"
    f.write_bytes(MEX.replace("MEX -> TGO", "MEX -> TGO à", 1).encode(encoding))
    assert main(["roundtrip", "--scenario", str(f), "-o", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not UTF-8 text" in err and "enc.toml" in err


def test_bad_layer_value_names_the_layer():
    text = MEX.replace('model = "parrott2025"', 'model = "layers"\nlayers = [{name = "M2", '
                       'n0_m3 = 1e11, h0_km = 130.0, scale_height_km = -10.0}]', 1)
    with pytest.raises(ScenarioError, match=r"\[ionosphere\] layers\[0\] scale_height_km = "
                       r"-10 is outside the allowed range 1-100 km"):
        parse_scenario(text, "x.toml")


# --------------------------------------------------------------------- documented files
_KEY = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=")


def _shown(kind, name, capsys):
    argv = ["campaign", "--show", name] if kind == "campaign" else ["scenarios", "--show", name]
    assert main(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind, name", [("scenario", n) for n in builtin_names()]
                         + [("campaign", n) for n in campaign_names()])
def test_show_documents_every_key(kind, name, capsys):
    """``--show`` prints the file with a comment on every key line and the same data."""
    out = _shown(kind, name, capsys)
    original = campaign_text(name) if kind == "campaign" else builtin_text(name)
    assert tomllib.loads(out) == tomllib.loads(original)
    lines = out.splitlines()
    for _i, line in enumerate(lines):
        if _KEY.match(line) and not line.lstrip().startswith("#"):
            assert config._comment_at(line) >= 0, line
    # every ranged key on the page names its allowed range
    schema = CAMPAIGN_SCHEMA if kind == "campaign" else (
        SHEET_SCHEMA if "sheet" in tomllib.loads(original) else RO_SCHEMA)
    sec = ""
    for i, line in enumerate(lines):
        m = re.match(r"^\[\[?([a-z_]+)\]\]?", line)
        if m:
            sec = m.group(1)
            continue
        k = _KEY.match(line)
        keys = schema.arrays.get(sec) or schema.sections.get(sec, {})
        if k and k.group(1) in keys and keys[k.group(1)].range is not None:
            block = "\n".join(lines[i:i + 4])
            assert keys[k.group(1)].range.text(keys[k.group(1)].unit) in block, line


def test_memory_estimate_covers_the_ranges():
    """The largest rates the ranges allow still fit the memory budget, so the sample-rate
    ranges are what the memory estimate allows (and the rule is a second line)."""
    from synth.scenario import MEMORY_BUDGET_BYTES, memory_estimate_bytes

    worst = {"sampling": {"rate_hz": RO_SCHEMA.sections["sampling"]["rate_hz"].range.hi},
             "receiver": {"enabled": True, "sample_rate_hz":
                          RO_SCHEMA.sections["receiver"]["sample_rate_hz"].range.hi},
             "oscillator": {"enabled": True, "tau0_s":
                            RO_SCHEMA.sections["oscillator"]["tau0_s"].range.lo}}
    assert memory_estimate_bytes(worst) <= MEMORY_BUDGET_BYTES
    # the 1e7 Hz level-2 rate of the issue: ~8 TiB by this estimate (its first array alone
    # asked for 70.5 GiB before the range check)
    assert memory_estimate_bytes(dict(worst, sampling={"rate_hz": 1e7})) > MEMORY_BUDGET_BYTES
