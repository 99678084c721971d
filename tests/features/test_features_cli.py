"""`mlops features ingest`: exit codes, summary and report, over moto and the runtime stand-in."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app

HEADER = ["transaction_id", "event_time", "amount", "n_items", "country", "hour", "account_age_days", "is_fraud"]
ROWS = [
    ["c1", "2024-05-01T10:30:00Z", "12.5", "3", "DE", "10", "", "0"],
    ["c2", "2024-05-01T11:45:00Z", "99", "", "", "11", "30.25", "1"],
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *ROWS])
    return path


@pytest.fixture(autouse=True)
def _ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLOPS_AWS_ROLE_ARN_LOCAL", "MLOPS_AWS_PROFILE_LOCAL"):
        monkeypatch.delenv(var, raising=False)


def _ingest(*args: str):
    return CliRunner().invoke(app, ["features", "ingest", "-s", "demo-local", *args])


def test_ingest_writes_and_prints_a_summary(world, source: Path, tmp_path: Path) -> None:
    result = _ingest("--group", "transactions", "--source", str(source), "--report", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 0, result.output
    assert f"ingested into {world.target.name}: 2 rows, 2 written, 0 rejected (0 problems; 0 of 1 batches refused)" in result.stdout
    assert "rows/s; rejects: " + str(tmp_path / "r.jsonl") in result.stdout
    assert sorted(k for (_, k) in world.standin.records) == ["c1", "c2"]


def test_rejects_exit_2_with_the_report_and_nothing_written(world, source: Path, tmp_path: Path) -> None:
    with source.open("a", newline="") as handle:
        csv.writer(handle).writerow(["c3", "2024-05-01T10:00:00Z", "1", "", "", "24", "", "0"])
    report = tmp_path / "r.jsonl"
    result = _ingest("--group", "transactions", "--source", str(source), "--report", str(report))
    assert result.exit_code == 2, result.output
    assert "3 rows, 0 written, 1 rejected (1 problems; 1 of 1 batches refused)" in result.stdout
    assert [json.loads(line) for line in report.read_text().splitlines()] == [
        {"batch": 1, "row": 3, "column": "hour", "value": "24", "reason": "24 is above the feature's max 23"},
    ]
    assert world.standin.requests == [] and ("s3", "PutObject") not in world.sent


def test_dry_run_exits_0_and_sends_nothing(world, source: Path, tmp_path: Path) -> None:
    result = _ingest("--group", "transactions", "--source", str(source), "--dry-run", "--report", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 0, result.output
    assert "validated (dry run, nothing written): 2 rows, 0 written, 0 rejected" in result.stdout
    assert world.standin.requests == [] and world.standin.records == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "x.csv"], "Missing option '--group'"),
        (["--group", "nope", "--source", "x.csv", "--dry-run"], "unknown feature group 'nope' in stack demo-local; defined: transactions"),
        (["--group", "transactions", "--source", "x.csv", "--batch-size", "0"], "--batch-size 0: give a positive number of rows"),
        (["--group", "transactions", "--source", "x.csv", "--workers", "0"], "--workers 0: give at least 1"),
    ],
)
def test_usage_errors_exit_64(args: list[str], message: str) -> None:
    result = _ingest(*args)
    assert result.exit_code == 64, result.output
    assert message in " ".join(result.output.split()).replace("│", "").replace("  ", " ") or message in result.output


def test_an_unreadable_source_exits_2(tmp_path: Path) -> None:
    result = _ingest("--group", "transactions", "--source", str(tmp_path / "missing.csv"), "--dry-run")
    assert result.exit_code == 2
    assert "source refused, nothing written: source" in result.output and "is not a file" in result.output
