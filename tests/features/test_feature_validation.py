"""The pure validation rules (specs/features/validate.py): one case per reason, and the layout helpers."""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from specs.features import offline_layout as layout
from specs.features.validate import FeatureSpec, GroupSpec, check_columns, validate_batch

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
GROUP = GroupSpec(
    record_identifier="id",
    event_time="ts",
    features=(
        FeatureSpec(name="id", type="String"),
        FeatureSpec(name="ts", type="String"),
        FeatureSpec(name="amount", type="Fractional", min=0, max=100),
        FeatureSpec(name="n", type="Integral", min=0, nullable=True),
        FeatureSpec(name="country", type="String", nullable=True),
    ),
)
GOOD = {"id": "a", "ts": "2024-05-01T10:00:00Z", "amount": "1.5", "n": "3", "country": "DE"}


def _one(**cells):
    row = {**GOOD, **cells}
    return validate_batch(GROUP, {k: [v] for k, v in row.items()}, row_numbers=[7], now=NOW)


def test_a_valid_row_is_normalised_and_has_no_reject() -> None:
    check = _one()
    assert check.ok and check.rows == 1
    assert check.values == {"id": ["a"], "ts": ["2024-05-01T10:00:00Z"], "amount": [1.5], "n": [3], "country": ["DE"]}
    assert check.event_seconds == [NOW.timestamp() - 7200]


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ({"id": None}, "id", "record identifier is missing"),
        ({"ts": None}, "ts", "event time is missing"),
        ({"ts": "yesterday"}, "ts", "event time is not ISO-8601"),
        ({"ts": "2024-05-01T10:00:00"}, "ts", "event time has no timezone"),
        ({"ts": "2024-05-01T12:10:00Z"}, "ts", "event time is 600 s in the future; at most 300 s"),
        ({"amount": None}, "amount", "missing value; the feature is not nullable"),
        ({"amount": "abc"}, "amount", "Fractional needs a number, got 'abc'"),
        ({"amount": "1_0"}, "amount", "Fractional needs a number, got '1_0'"),
        ({"amount": float("nan")}, "amount", "Fractional needs a finite number"),
        ({"amount": "inf"}, "amount", "Fractional needs a finite number"),
        ({"amount": True}, "amount", "Fractional needs a number, got boolean True"),
        ({"amount": "-1"}, "amount", "-1.0 is below the feature's min 0"),
        ({"amount": 100.5}, "amount", "100.5 is above the feature's max 100"),
        ({"n": "1.5"}, "n", "Integral needs an integer, got '1.5'"),
        ({"n": 2.5}, "n", "Integral needs an integer, got 2.5"),
        ({"n": str(2**63)}, "n", "does not fit a 64-bit integer"),
        ({"n": "-2"}, "n", "-2 is below the feature's min 0"),
        ({"country": 5}, "country", "String needs text, got int 5"),
        ({"country": "x" * 358_401}, "country", "text of 358401 characters; PutRecord allows 358400"),
    ],
)
def test_each_bad_cell_is_rejected_with_its_row_and_reason(cells, column, reason) -> None:
    check = _one(**cells)
    assert not check.ok
    assert [(r.row, r.column) for r in check.rejects] == [(7, column)]
    assert reason in check.rejects[0].reason


def test_nulls_pass_where_the_feature_is_nullable() -> None:
    assert _one(n=None, country=None).ok


def test_integral_accepts_integral_floats_and_int64_bounds() -> None:
    check = _one(n=4.0)
    assert check.ok and check.values["n"] == [4]
    assert _one(n=str(2**63 - 1)).ok


def test_epoch_event_time_and_tz_aware_datetimes() -> None:
    group = GroupSpec(record_identifier="id", event_time="t", features=(FeatureSpec(name="id", type="Integral"), FeatureSpec(name="t", type="Fractional")))
    check = validate_batch(group, {"id": [1, 2, 3], "t": [1714557600.5, "x", NOW.timestamp() + 3600]}, row_numbers=range(1, 4), now=NOW)
    assert [r.row for r in check.rejects] == [2, 3]
    assert check.event_seconds[0] == 1714557600.5
    string_group = GROUP
    aware = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    check = validate_batch(string_group, {**{k: [v] for k, v in GOOD.items()}, "ts": [aware]}, row_numbers=[1], now=NOW)
    assert check.ok and check.values["ts"] == ["2024-05-01T08:00:00.000Z"]
    naive = validate_batch(string_group, {**{k: [v] for k, v in GOOD.items()}, "ts": [aware.replace(tzinfo=None)]}, row_numbers=[1], now=NOW)
    assert "no timezone" in naive.rejects[0].reason


def test_every_reject_of_a_batch_is_collected_in_row_order() -> None:
    columns = {"id": ["a", None, "c"], "ts": ["2024-05-01T10:00:00Z", "bad", "2024-05-01T10:00:00+00:00"], "amount": [1, 2, -3]}
    check = validate_batch(GROUP, {**columns, "n": None, "country": None}, row_numbers=range(1, 4), now=NOW)
    assert [(r.row, r.column) for r in check.rejects] == [(2, "id"), (2, "ts"), (3, "amount")]
    assert check.rejected_rows == 2


def test_missing_required_and_unknown_columns_are_source_problems() -> None:
    problems = check_columns(GROUP, ["id", "ts", "extra"], ignore_extra=False)
    assert problems[0].startswith("the source has no column for required feature(s) amount")
    assert "column(s) extra are not features of the group" in problems[1] and "--ignore-extra-columns" in problems[1]
    assert check_columns(GROUP, ["id", "ts", "amount", "extra"], ignore_extra=True) == []


def test_hourly_partition_and_file_name_follow_sagemakers_layout() -> None:
    seconds = dt.datetime(2024, 3, 9, 7, 59, 59, tzinfo=dt.timezone.utc).timestamp()
    assert layout.partition(seconds) == "year=2024/month=03/day=09/hour=07"
    assert layout.file_name(latest_event_seconds=seconds, digest="0123456789abcdef0123") == "20240309T075959Z_0123456789abcdef.parquet"
    assert layout.split_s3_uri("s3://b/p/q/data/") == ("b", "p/q/data")
    with pytest.raises(ValueError, match="not an s3:// URI"):
        layout.split_s3_uri("/tmp/x")


def test_the_pure_package_imports_no_io_library() -> None:
    forbidden = {"pulumi", "pulumi_aws", "components", "boto3", "botocore", "pyarrow"}
    for path in (Path(__file__).resolve().parents[2] / "specs" / "features").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
        assert not imported & forbidden, f"{path.name} imports {sorted(imported & forbidden)}"


def test_rejects_carry_the_source_row_numbers_given() -> None:
    check = validate_batch(GROUP, {**{k: [v, v] for k, v in GOOD.items()}, "id": ["a", None]}, row_numbers=[4, 9], now=NOW)
    assert [(r.row, r.reason) for r in check.rejects] == [(9, "record identifier is missing")]
