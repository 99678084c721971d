"""Label events from captured requests joined with SageMaker ground truth, and on into a dataset."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_training.dataset import build
from mlops_training.dataset.duckdb_engine import DuckDBEngine
from mlops_training.dataset.labels import label_events

from .dataset_helpers import feature_row, request, rows_of, write_offline_store


def capture(inference_id: str, when: str, body: Any, *, variant: str = "champion", encoding: str = "JSON") -> str:
    data = body if isinstance(body, str) else json.dumps(body)
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": data,
                              "encoding": encoding},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                               "data": "{\"predictions\": [0.5]}", "encoding": "JSON"}},
        "eventMetadata": {"eventId": f"e-{inference_id}-{variant}", "inferenceId": inference_id,
                          "inferenceTime": when, "variant": variant},
        "eventVersion": "0",
    })


def truth(event_id: str, data: str, encoding: str = "CSV") -> str:
    return json.dumps({"groundTruthData": {"data": data, "encoding": encoding},
                       "eventMetadata": {"eventId": event_id}, "eventVersion": "0"})


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_captures_joined_with_ground_truth_become_label_events_at_inference_time(tmp_path: Path) -> None:
    captures, gt = tmp_path / "capture", tmp_path / "ground-truth"
    write_lines(captures / "ep/champion/2026/03/01/02/a.jsonl", [
        capture("i1", "2026-03-01T02:00:00.250Z", {"instances": [{"transaction_id": "t1", "amount": 3.0}]}),
        capture("i2", "2026-03-01T02:30:00Z", {"instances": [{"transaction_id": "t2", "amount": 1.0},
                                                             {"transaction_id": "t3", "amount": 2.0}]}),
        capture("i3", "2026-03-01T02:40:00Z", {"instances": [[1.0]]}),       # positional: no record id
        capture("i4", "2026-03-01T02:50:00Z", {"transaction_id": "t4", "amount": 1.0}),  # never labelled
        "not json",
    ])
    write_lines(captures / "ep/shadow/2026/03/01/02/b.jsonl", [
        capture("i1", "2026-03-01T02:00:00.300Z", {"instances": [{"transaction_id": "t1", "amount": 3.0}]},
                variant="shadow"),
    ])
    write_lines(gt / "2026/03/01/05/gt.jsonl", [
        truth("i1", "0"), truth("i2", "1,0"), truth("i3", "1"), truth("i1", "1"),  # i1 relabelled: later wins
    ])
    write_lines(gt / "2026/03/01/06/gt.jsonl", [truth("i9", "[1, 0]", "JSON"), "{}"])

    table, counts = label_events(captures=str(captures), ground_truth=str(gt), record_identifier="transaction_id")
    assert table.to_pylist() == [
        {"record_id": "t1", "label": 1.0, "label_time": datetime(2026, 3, 1, 2, 0, 0, 250000, tzinfo=UTC)},
        {"record_id": "t2", "label": 1.0, "label_time": datetime(2026, 3, 1, 2, 30, tzinfo=UTC)},
        {"record_id": "t3", "label": 0.0, "label_time": datetime(2026, 3, 1, 2, 30, tzinfo=UTC)},
    ]
    assert (counts.captures, counts.ground_truth, counts.duplicate_ground_truth) == (5, 5, 1)
    assert (counts.labelled_requests, counts.unlabelled_requests, counts.rows_without_record_id) == (3, 1, 1)
    assert counts.malformed == 2 and counts.label_events == 3


def test_label_count_mismatch_is_counted_not_guessed(tmp_path: Path) -> None:
    write_lines(tmp_path / "c/x.jsonl", [capture("i1", "2026-03-01T02:00:00Z",
                                                 [{"transaction_id": "t1"}, {"transaction_id": "t2"}])])
    write_lines(tmp_path / "g/x.jsonl", [truth("i1", "1")])
    table, counts = label_events(captures=str(tmp_path / "c"), ground_truth=str(tmp_path / "g"),
                                 record_identifier="transaction_id")
    assert table.num_rows == 0 and counts.label_count_mismatch == 1


def test_captured_traffic_with_labels_becomes_the_next_training_set(tmp_path: Path) -> None:
    store = write_offline_store(tmp_path / "store", [feature_row("t1", event=0, value=1.0),
                                                     feature_row("t1", event=3, value=9.0)])
    write_lines(tmp_path / "c/x.jsonl", [
        capture("i1", "2026-03-01T01:00:00Z", {"instances": [{"transaction_id": "t1", "amount": 1.0}]}),
        capture("i2", "2026-03-01T04:00:00Z", {"instances": [{"transaction_id": "t1", "amount": 9.0}]}),
    ])
    write_lines(tmp_path / "g/x.jsonl", [truth("i1", "0"), truth("i2", "1")])
    events, _ = label_events(captures=str(tmp_path / "c"), ground_truth=str(tmp_path / "g"),
                             record_identifier="transaction_id")
    built = build.build(request(validation_fraction=0.5), engine=DuckDBEngine(str(store), feature_table="fg"),
                        events=events, out=tmp_path / "out")
    split = rows_of(built.directory)
    assert [(r["amount"], r["is_fraud"]) for r in split["train"]] == [(1.0, 0.0)]
    assert [(r["amount"], r["is_fraud"]) for r in split["validation"]] == [(9.0, 1.0)]


def test_the_dataset_subcommand_builds_from_captures_and_ground_truth(tmp_path: Path, capsys) -> None:
    from mlops_training import main as train_main

    store = write_offline_store(tmp_path / "store", [feature_row("t1", event=0, value=1.0),
                                                     feature_row("t1", event=3, value=9.0)])
    write_lines(tmp_path / "c/x.jsonl", [
        capture("i1", "2026-03-01T01:00:00Z", {"instances": [{"transaction_id": "t1", "amount": 1.0}]}),
        capture("i2", "2026-03-01T04:00:00Z", {"instances": [{"transaction_id": "t1", "amount": 9.0}]}),
    ])
    write_lines(tmp_path / "g/x.jsonl", [truth("i1", "0"), truth("i2", "1")])
    schema = tmp_path / "feature_schema.json"
    schema.write_text(json.dumps({"format_version": 1, "record_identifier": "transaction_id",
                                  "event_time": "event_time", "label": "is_fraud", "task": "binary_classification",
                                  "features": [{"name": "amount", "type": "Fractional"}]}))
    common = ["dataset", "--schema", str(schema), "--out", str(tmp_path / "out"), "--feature-group", "transactions",
              "--offline-store", str(store)]
    code = train_main.main([*common, "--captures", str(tmp_path / "c"), "--ground-truth", str(tmp_path / "g"),
                            "--cutoff", "2026-03-01T03:00:00Z"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (printed["counts"]["train"], printed["counts"]["validation"]) == (1, 1)
    assert train_main.main([*common, "--label-events", "x.parquet", "--captures", "c"]) == 2
    assert "give either --label-events, or --captures with --ground-truth" in capsys.readouterr().err
    assert train_main.main([*common, "--label-events", "x", "--cutoff", "yesterday"]) == 2
