"""scripts/compare_plans.py: two plans are equal regardless of registration order, and every kind of
difference (resource added, removed or changed, findings changed) is reported with a non-zero exit."""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("compare_plans", ROOT / "scripts" / "compare_plans.py")
compare_plans = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_plans)

URN_A = "urn:pulumi:s::mlops::aws:s3/bucket:Bucket::a"
URN_B = "urn:pulumi:s::mlops::aws:s3/bucket:Bucket::b"


def _plan() -> dict[str, Any]:
    resources = [
        {"urn": URN_A, "type": "aws:s3/bucket:Bucket", "name": "a", "parent": None, "custom": True, "inputs": {"acl": "private"}},
        {"urn": URN_B, "type": "aws:s3/bucket:Bucket", "name": "b", "parent": None, "custom": True, "inputs": {}},
    ]
    return {"plans": [{"stack": "s", "resourceCount": 2, "countByType": {"aws:s3/bucket:Bucket": 2},
                       "resources": resources, "policyFindings": []}], "failed": []}


def _run(tmp_path: Path, before: dict[str, Any], after: dict[str, Any]) -> int:
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    return compare_plans.main([str(tmp_path / "before.json"), str(tmp_path / "after.json")])


def test_plans_in_another_registration_order_are_identical(tmp_path: Path, capsys) -> None:
    after = _plan()
    after["plans"][0]["resources"].reverse()
    assert _run(tmp_path, _plan(), after) == 0
    assert "plans identical: 1 stack(s), 2 resource(s)" in capsys.readouterr().out


def test_a_changed_input_is_reported_with_its_urn_and_the_values(tmp_path: Path, capsys) -> None:
    after = _plan()
    after["plans"][0]["resources"][0]["inputs"]["acl"] = "public-read"
    assert _run(tmp_path, _plan(), after) == 1
    out = capsys.readouterr().out
    assert f"s: {URN_A} changed:" in out
    assert '-    "acl": "private"' in out and '+    "acl": "public-read"' in out


def test_a_removed_resource_and_a_new_finding_are_each_reported(tmp_path: Path, capsys) -> None:
    after = copy.deepcopy(_plan())
    del after["plans"][0]["resources"][1]
    after["plans"][0]["policyFindings"] = [{"policy": "p", "level": "mandatory", "resource": "a", "message": "m"}]
    assert _run(tmp_path, _plan(), after) == 1
    out = capsys.readouterr().out
    assert f"s: resource only before: {URN_B}" in out
    assert "s: policy findings changed:" in out


def test_a_file_that_is_not_a_plan_exits_2_naming_it(tmp_path: Path, capsys) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"stacks": []}))
    assert compare_plans.main([str(tmp_path / "x.json"), str(tmp_path / "x.json")]) == 2
    assert "x.json: not an `mlops plan --json` file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["one.json"]])
def test_wrong_argument_count_prints_usage(argv: list[str], capsys) -> None:
    assert compare_plans.main(argv) == 2
    assert "usage: compare_plans.py BEFORE.json AFTER.json" in capsys.readouterr().err
