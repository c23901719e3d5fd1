"""CF-1.10 conformance of what the harness writes, checked by the IOOS compliance checker.

Files: the round-trip file (root: retrieved profile; groups truth and observation, each
also written on its own with a plain ``to_netcdf``, as a user would) and ``budget.nc``.
The checker (PyPI ``compliance-checker``, suite ``cf:1.10``) reports high-priority
messages (errors) and medium ones (warnings). No error is allowed except the checker's
heuristics listed in :data:`NOT_CF_RULES`, which are asserted as data below; warnings are
counted and printed (only ``history`` remains: it would make every file differ).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("compliance_checker")
from compliance_checker.runner import CheckSuite, ComplianceChecker  # noqa: E402

from synth.scenario import load_scenario  # noqa: E402
from validation import budget as B  # noqa: E402
from validation.roundtrip import run_roundtrip, write_roundtrip  # noqa: E402

SMALL = "tests/test_validation/data/budget-small.toml"

#: Checker messages that are heuristics of the checker, not rules of CF, and why each
#: does not apply (substring of the message -> reason).
NOT_CF_RULES = {
    # the checker wants any dimension named 'altitude' to be CF's 'altitude' (above the
    # geoid); ours is above the 3389.5 km sphere: height_above_reference_ellipsoid
    "Coordinate variable 'altitude' should have standard_name='altitude'": "sphere",
    # 'time' is elapsed TDB seconds since the global attribute epoch_utc (units "s"), not
    # an absolute time coordinate ("s since ..." would decode to dates in every reader)
    "Coordinate variable 'time' should have standard_name='time'": "elapsed time",
    # the checker compares the 'time' dimensions of sibling groups; CF 2.7 constrains only
    # variables that refer to dimensions outside their group, which these files never do
    "Dimensions with the same name must be the same object (ID)": "no cross-group use",
}


def cf_messages(path, tmp_path):
    """(errors, warnings): the checker's high and medium priority messages for ``path``."""
    CheckSuite.load_all_available_checkers()
    out = tmp_path / f"{path.stem}.cf.json"
    ComplianceChecker.run_checker(str(path), ["cf:1.10"], verbose=0, criteria="normal",
                                  output_filename=str(out), output_format="json")
    res = json.loads(out.read_text())["cf:1.10"]

    def msgs(level):
        return [f"{r['name']}: {m}" for r in res[level] for m in r["msgs"]]

    return msgs("high_priorities"), msgs("medium_priorities")


def assert_cf(path, tmp_path, capsys, max_warnings):
    errors, warnings = cf_messages(path, tmp_path)
    real = [e for e in errors if not any(k in e for k in NOT_CF_RULES)]
    with capsys.disabled():
        print(f"\n{path.name}: {len(errors)} checker errors ({len(errors) - len(real)} "
              f"heuristics in NOT_CF_RULES), {len(warnings)} warnings")
    assert real == []
    assert len(warnings) <= max_warnings, warnings


def assert_attributes(ds: xr.Dataset, where: str):
    """long_name and units everywhere (none on strings and flags), flags described, no
    JSON in attributes, Conventions."""
    assert ds.attrs.get("Conventions") == "CF-1.10", where
    for name, v in ds.variables.items():
        assert v.attrs.get("long_name"), f"{where}: {name} has no long_name"
        flag = "flag_values" in v.attrs or "flag_masks" in v.attrs
        if flag:
            assert v.attrs.get("flag_meanings"), f"{where}: {name}"
            n = len(np.atleast_1d(v.attrs.get("flag_values", v.attrs.get("flag_masks"))))
            assert len(v.attrs["flag_meanings"].split()) == n, f"{where}: {name}"
        if v.dtype.kind in "USO" or flag:
            assert "units" not in v.attrs, f"{where}: {name} is a string/flag with units"
        elif v.dtype.kind != "M":
            assert v.attrs.get("units"), f"{where}: {name} has no units"
    for _owner, attrs in [("global", ds.attrs)] + [(n, v.attrs) for n, v in ds.variables.items()]:
        for _k, a in attrs.items():
            if isinstance(a, str) and a.strip()[:1] in "[{":
                with pytest.raises(ValueError):  # a JSON list or object in an attribute
                    json.loads(a)
                    raise AssertionError  # noqa: TRY301 (parsed: it was JSON)


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    res = run_roundtrip(load_scenario(SMALL))
    path = tmp_path_factory.mktemp("cf") / "roundtrip.nc"
    write_roundtrip(res, path)
    return res, path


def test_roundtrip_file(roundtrip, tmp_path, capsys):
    res, path = roundtrip
    # root (the profile): the history warning; tangent_point_position is (altitude, xyz),
    # CF 2.4 recommends the non-spatial dimension first (a recommendation, kept as is)
    assert_cf(path, tmp_path, capsys, max_warnings=2)
    with xr.open_dataset(path) as root:
        assert_attributes(root, "root")
        assert root["quality_flag"].attrs["flag_meanings"] == "merged_by_isotonic_repair"
    with xr.open_dataset(path, group="truth") as truth:
        assert_attributes(truth, "truth")
        # the layer table is data on a 'layer' dimension, read back as written
        np.testing.assert_array_equal(truth["layer_scale_height"].values,
                                      res["truth"]["layer_scale_height"].values)
        assert "M2" in [str(x) for x in truth["layer"].values]


@pytest.mark.parametrize("part", ["truth", "observation", "profile"])
def test_datasets_written_plainly(roundtrip, tmp_path, capsys, part):
    """Stage outputs write to CF netCDF with no extra conversion (STYLE: data structures)."""
    res, _ = roundtrip
    path = tmp_path / f"{part}.nc"
    res[part].to_netcdf(path)
    assert_cf(path, tmp_path, capsys, max_warnings=2 if part == "profile" else 1)
    with xr.open_dataset(path) as ds:
        assert_attributes(ds, part)


def test_truth_ray_status_flags(roundtrip):
    st = roundtrip[0]["truth"]["ray_status"]
    assert st.attrs["flag_meanings"].split()[0] == "ok"
    assert list(st.attrs["flag_values"]) == list(range(6))


def test_budget_file(tmp_path, capsys):
    B.run_budget(SMALL, ["thermal", "ephemeris"], 2, workers=0, out_dir=tmp_path,
                 progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert_cf(tmp_path / "budget.nc", tmp_path, capsys, max_warnings=1)
    with xr.open_dataset(tmp_path / "budget.nc") as on_disk:
        assert_attributes(on_disk, "budget.nc")
        # the source lists are coordinates, and the summary reads them back
        assert [str(s) for s in on_disk.physical_source.values] == ["thermal", "ephemeris"]
        assert on_disk.skipped_source.size == 0
        assert B.summarise(on_disk)["physical_sources"] == summary["physical_sources"]
        members = on_disk.source_members.sel(source="all")
        assert [str(m) for m in members.member.values[members.values == 1]] == \
            ["thermal", "ephemeris"]
        assert on_disk.status.attrs["flag_meanings"] == "retrieved retrieval_failed not_run"
