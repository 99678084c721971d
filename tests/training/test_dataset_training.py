"""Training on a point-in-time dataset: the time split is used and the manifest lands in metadata.json."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlops_training import main as train_main
from mlops_training.dataset import build
from mlops_training.dataset.duckdb_engine import DuckDBEngine
from mlops_training.synthetic import generate, schema_document

from .helpers import FAST, new_run

SCHEMA = schema_document("binary_classification")
FEATURES = tuple(f["name"] for f in SCHEMA["features"])


@pytest.fixture(scope="module")
def pit_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, build.Built]:
    root = tmp_path_factory.mktemp("pit")
    table = generate(1500, task="binary_classification", seed=3)
    times = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=None) for t in table["event_time"].to_pylist()]
    written = pa.array([t + timedelta(minutes=5) for t in times], pa.timestamp("ms", tz="UTC"))
    store_rows = table.drop_columns(["is_fraud"]).append_column("write_time", written).append_column(
        "api_invocation_time", written).append_column("is_deleted", pa.array([False] * table.num_rows))
    write_offline_store_table(root / "store", store_rows)
    label_times = pc.add(pc.cast(written, pa.timestamp("ms", tz="UTC")), pa.scalar(timedelta(hours=1)))
    events = pa.table({"record_id": table["transaction_id"], "label": pc.cast(table["is_fraud"], pa.float64()),
                       "label_time": label_times})
    built = build.build(
        build.BuildRequest(feature_group="transactions", record_identifier="transaction_id", event_time="event_time",
                           features=FEATURES, label="is_fraud", label_source="synthetic"),
        engine=DuckDBEngine(str(root / "store"), feature_table="transactions"), events=events, out=root / "dataset",
    )
    schema = root / "feature_schema.json"
    schema.write_text(json.dumps(SCHEMA))
    return root / "dataset", schema, built


def write_offline_store_table(directory: Path, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    directory.mkdir(parents=True)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), directory / "part-0.parquet")
    pq.write_table(table.slice(half), directory / "part-1.parquet")


def _train(dataset: Path, schema: Path, root: Path) -> int:
    run = new_run(root)
    return train_main.main([
        "train", "--train", str(dataset), "--schema", str(schema), "--model-dir", str(run.model_dir),
        "--output-dir", str(run.output_dir), "--checkpoint-dir", str(run.checkpoint_dir),
        "--hyperparameters", json.dumps(FAST | {"epochs": "1", "validation_fraction": "0.5"}),
    ])


def test_training_uses_the_time_split_and_records_the_manifest(
    pit_dataset: tuple[Path, Path, build.Built], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, schema, built = pit_dataset
    counts = built.manifest.counts
    assert counts["train"] + counts["validation"] == counts["matched"] == 1500
    assert _train(dataset, schema, tmp_path) == 0
    # validation_fraction=0.5 would hold out 750 rows; the manifest's cutoff holds out the latest fifth.
    assert f"{counts['train']} train, {counts['validation']} validation rows" in capsys.readouterr().err
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["dataset"] == built.manifest.doc
    assert metadata["data_fingerprint"] == built.manifest.content_hash


def test_training_refuses_a_dataset_changed_after_its_manifest_was_written(
    pit_dataset: tuple[Path, Path, build.Built], tmp_path: Path
) -> None:
    dataset, schema, _ = pit_dataset
    copy = tmp_path / "dataset"
    for path in dataset.rglob("*"):
        if path.is_file():
            (copy / path.relative_to(dataset)).parent.mkdir(parents=True, exist_ok=True)
            (copy / path.relative_to(dataset)).write_bytes(path.read_bytes())
    (copy / "validation" / build.PART_NAME).unlink()
    with pytest.raises(ValueError, match="the dataset was changed after it was built"):
        _train(copy, schema, tmp_path / "run")
