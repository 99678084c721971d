"""`mlops-train dataset --window-days/--as-of` (the model config's training window) and united label sources."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops_training import main as train_main

from .dataset_helpers import events, feature_row, iso, at, rows_of, write_offline_store
from .test_dataset_labels import capture, truth, write_lines


@pytest.fixture
def setup(tmp_path: Path) -> tuple[list[str], Path]:
    """An offline store of four records and label events 1, 10, 20 and 30 hours after T0."""
    store = write_offline_store(tmp_path / "store", [feature_row(f"t{i}", event=0, value=float(i)) for i in range(4)])
    pq.write_table(events(("t0", 0.0, 1), ("t1", 1.0, 10), ("t2", 0.0, 20), ("t3", 1.0, 30)), tmp_path / "labels.parquet")
    schema = tmp_path / "feature_schema.json"
    schema.write_text(json.dumps({"format_version": 1, "record_identifier": "transaction_id",
                                  "event_time": "event_time", "label": "is_fraud", "task": "binary_classification",
                                  "features": [{"name": "amount", "type": "Fractional"}]}))
    common = ["dataset", "--schema", str(schema), "--out", str(tmp_path / "out"), "--feature-group", "transactions",
              "--offline-store", str(store), "--label-events", str(tmp_path / "labels.parquet")]
    return common, tmp_path


def test_only_label_events_inside_the_window_are_used_and_the_manifest_records_it(
    setup: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    common, root = setup
    # (as_of - 0.5 days, as_of] with as_of = T0 + 30 h: label times 20 h and 30 h; 10 h is outside, 30 h inclusive.
    assert train_main.main([*common, "--window-days", "0.5", "--as-of", iso(at(30))]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["counts"]["labels_in"] == 2
    rows = rows_of(root / "out")
    assert sorted(r["transaction_id"] for r in rows["train"] + rows["validation"]) == ["t2", "t3"]
    assert manifest["window"] == {"as_of": "2026-03-02T06:00:00.000Z", "days": 0.5,
                                  "from_exclusive": "2026-03-01T18:00:00.000Z"}


def test_a_window_without_label_events_is_refused_naming_the_window(
    setup: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    common, _ = setup
    assert train_main.main([*common, "--window-days", "1", "--as-of", "2026-02-01T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert ("the training window (2026-01-31T00:00:00.000Z, 2026-02-01T00:00:00.000Z] holds none of the 4 label "
            "event(s)") in err
    assert train_main.main([*common, "--window-days", "0"]) == 2
    assert "--window-days 0.0; allowed: a number of days > 0" in capsys.readouterr().err
    assert train_main.main([*common, "--window-days", "2", "--as-of", "soon"]) == 2
    assert "--as-of 'soon' is not ISO-8601" in capsys.readouterr().err


def test_label_events_and_captured_ground_truth_are_united(
    setup: tuple[list[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    common, root = setup
    write_lines(root / "c/x.jsonl", [
        capture("i9", "2026-03-02T12:00:00Z", {"instances": [{"transaction_id": "t1", "amount": 1.0}]})])
    write_lines(root / "g/x.jsonl", [truth("i9", "0")])
    assert train_main.main([*common, "--captures", str(root / "c"), "--ground-truth", str(root / "g")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["counts"]["labels_in"] == 5
    assert manifest["label_source"] == f"{root / 'labels.parquet'} + captures {root / 'c'} + ground truth {root / 'g'}"
    assert "window" not in manifest
