"""A promotion that runs the real `mlops-train evaluate` on labelled data given with `--evaluation-data`,
against moto's server: real CPU-trained models of the fraud team's schema, a good one and one trained on
shuffled labels (the `shuffle_labels` drill) that reports itself as excellent. The shared slice decides."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlops.cli import app
from promotion_support import MODEL, TEAM

from specs.config import stack_files
from specs.feature_schema import feature_schema

ROWS = 2000
FAST = {"epochs": "5", "batch_size": "64", "learning_rate": "0.003", "num_threads": "1"}
INFLATED = {"auc": 0.99, "log_loss": 0.05, "accuracy": 0.99}
"""What the shuffled-label model claims about itself: on its own split, not comparable to anything."""

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _transactions(rng: np.random.Generator) -> tuple[pa.Table, np.ndarray]:
    """Rows of the fraud team's feature group with a learnable label."""
    amount = rng.gamma(2.0, 60.0, ROWS)
    risk = rng.uniform(0, 1, ROWS)
    hour = rng.integers(0, 24, ROWS)
    age = rng.integers(0, 3000, ROWS)
    distance = rng.exponential(20.0, ROWS)
    channel = rng.choice(["atm", "pos", "web"], ROWS)
    score = 3.0 * risk + 0.01 * amount - 0.001 * age + 0.03 * distance + (channel == "web") * 1.0 + ((hour < 6) * 1.0) - 4.0
    label = (rng.uniform(0, 1, ROWS) < 1 / (1 + np.exp(-score))).astype(np.int64)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=20 * i) for i in range(ROWS)]
    table = pa.table({
        "transaction_id": [f"t{i}" for i in range(ROWS)],
        "event_time": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times],
        "amount": amount, "merchant_risk": risk, "hour_of_day": hour, "card_age_days": age,
        "distance_from_home_km": distance, "channel": channel,
    })
    return table, label


def _dataset(root: Path, table: pa.Table, label: np.ndarray, schema: Path) -> Path:
    """An offline store of `table` and label events an hour after each write, built by `mlops-train dataset`."""
    written = pa.array([datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(minutes=5)
                        for t in table["event_time"].to_pylist()], pa.timestamp("ms", tz="UTC"))
    store = root / "store"
    store.mkdir(parents=True)
    pq.write_table(table.append_column("write_time", written).append_column("api_invocation_time", written)
                   .append_column("is_deleted", pa.array([False] * table.num_rows)), store / "part-0.parquet")
    events = root / "labels.parquet"
    pq.write_table(pa.table({"record_id": table["transaction_id"], "label": pa.array(label.astype(float)),
                             "label_time": pa.array([w + timedelta(hours=1) for w in written.to_pylist()], pa.timestamp("ms", tz="UTC"))}), events)
    out = root / "dataset"
    subprocess.run([_script("mlops-train"), "dataset", "--schema", str(schema), "--out", str(out), "--feature-group", "transactions",
                    "--offline-store", str(store), "--label-events", str(events)], check=True, capture_output=True, text=True)
    return out


def _train(dataset: Path, schema: Path, root: Path, **extra: str) -> bytes:
    archive = root / "model.tar.gz"
    subprocess.run([
        _script("mlops-train"), "train", "--train", str(dataset), "--schema", str(schema), "--model-dir", str(root / "model"),
        "--output-dir", str(root / "output"), "--checkpoint-dir", str(root / "checkpoints"), "--archive", str(archive),
        "--hyperparameters", json.dumps(FAST | {"model_name": MODEL, "model_version": "1"} | extra),
    ], check=True, capture_output=True, text=True)
    return archive.read_bytes()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Labelled data of the fraud schema, a model trained on it and one trained on its shuffled labels."""
    root = tmp_path_factory.mktemp("shared-evaluation")
    schema = root / "feature_schema.json"
    schema.write_text(json.dumps(feature_schema(stack_files.load(f"{TEAM}-staging"), MODEL)))
    table, label = _transactions(np.random.default_rng(7))
    dataset = _dataset(root / "data", table, label, schema)
    return {
        "dataset": dataset,
        "good": _train(dataset, schema, root / "good"),
        "shuffled": _train(dataset, schema, root / "shuffled", shuffle_labels="true"),
    }


def _put_artifact(env, version: int, body: bytes) -> None:
    env.s3.put_object(Bucket=env.bucket, Key=f"models/{MODEL}/{version}/model.tar.gz", Body=body)


def promote_cli(version: int, *extra: str):
    return CliRunner().invoke(app, ["promote", "--team", TEAM, "--model", MODEL, "--from", "dev", "--to", "staging",
                                    "--version", str(version), *extra])


def test_a_shuffled_label_candidate_that_reports_itself_excellent_is_refused_on_the_shared_slice(world, stacks, trained, tmp_path):
    _put_artifact(world["staging"], 1, trained["good"])  # staging's champion is the good model
    version = world["dev"].register(metrics=INFLATED)
    _put_artifact(world["dev"], version, trained["shuffled"])

    outcome = tmp_path / "outcome.json"

    result = promote_cli(version, "--evaluation-data", str(trained["dataset"]), "--json", str(outcome))

    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "FAIL regression: against champion fraud-staging-fraud-detector version 1, evidence shared evaluation" in out
    assert "(champion entry 'fraud-staging/champion'; slice validation:" in out
    assert "exceeds max_regression 0.01" in out
    assert world["staging"].versions() == [1, 2]
    assert not (stacks / "audit" / f"{TEAM}.jsonl").exists()
    document = json.loads(outcome.read_text())["evaluation_document"]
    assert document["decision"]["passed"] is False and document["champions"][0]["name"] == "fraud-staging/champion"


def test_a_better_candidate_is_promoted_on_a_fresh_shared_evaluation_kept_beside_the_artifact(world, stacks, trained, tmp_path):
    _put_artifact(world["staging"], 1, trained["shuffled"])  # a weak champion
    version = world["dev"].register(metrics={"auc": 0.5, "log_loss": 0.9, "accuracy": 0.5})
    _put_artifact(world["dev"], version, trained["good"])
    outcome = tmp_path / "outcome.json"

    result = promote_cli(version, "--evaluation-data", str(trained["dataset"]), "--json", str(outcome))

    out = " ".join(result.output.split())
    # The self-reported 0.5 would miss staging's auc gate; the slice's figure is what the thresholds gate reads.
    assert "pass metrics: fraud-staging gates, on the shared evaluation's slice: auc" in out, result.output
    assert result.exit_code == 0, result.output
    record = json.loads((stacks / "audit" / f"{TEAM}.jsonl").read_text().splitlines()[-1])
    kept = "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/3/promotion-evaluation.json"
    assert record["evidence"]["kind"] == "shared evaluation"
    assert record["evidence"]["evaluation"] == kept
    assert record["evidence"]["data"] == str(trained["dataset"])
    assert record["evidence"]["decision"]["passed"] is True
    body = world["staging"].s3.get_object(Bucket=world["staging"].bucket, Key=f"models/{MODEL}/3/promotion-evaluation.json")["Body"].read()
    document = json.loads(body)
    assert [c["name"] for c in document["champions"]] == ["fraud-staging/champion"]
    assert document["candidate"]["metrics"]["auc"]["value"] > document["champions"][0]["metrics"]["auc"]["value"]
    assert json.loads(outcome.read_text())["evidence"] == record["evidence"]


def test_check_runs_the_shared_evaluation_read_only(world, stacks, trained):
    _put_artifact(world["staging"], 1, trained["shuffled"])
    version = world["dev"].register(metrics={"auc": 0.5, "log_loss": 0.9, "accuracy": 0.5})
    _put_artifact(world["dev"], version, trained["good"])
    before = ({p.name: p.read_bytes() for p in stacks.glob("Pulumi.*.yaml")}, world["staging"].keys(), world["staging"].versions())

    result = promote_cli(version, "--evaluation-data", str(trained["dataset"]), "--check")

    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "pass regression: against champion fraud-staging-fraud-detector version 1, evidence shared evaluation" in out
    assert "check: the gates pass; nothing was changed" in out
    assert ({p.name: p.read_bytes() for p in stacks.glob("Pulumi.*.yaml")}, world["staging"].keys(), world["staging"].versions()) == before
    assert not (stacks / "audit" / f"{TEAM}.jsonl").exists()
