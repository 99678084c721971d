"""The training container logs to a real local MLflow server: parameters, per-epoch loss, validation
metrics, the model; the run id it writes is the one the server holds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.local import mlflow_server
from mlops_training.synthetic import write_dataset

TINY = {"epochs": "3", "batch_size": "64", "learning_rate": "0.003", "num_threads": "1", "checkpoint_every_steps": "0",
        "model_name": "fraud"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    running, process = mlflow_server.start(tmp_path_factory.mktemp("mlflow"))
    yield running
    running.stop()
    process.wait(timeout=60)


def test_a_training_run_is_found_in_mlflow_by_the_run_id_in_its_metadata(tmp_path: Path, server) -> None:
    import mlflow

    write_dataset(tmp_path / "data", n_rows=600, task="binary_classification", seed=5, n_files=1)
    argv = ["train", "--train", str(tmp_path / "data"), "--schema", str(tmp_path / "data" / "feature_schema.json"),
            "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "output"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--hyperparameters", json.dumps(TINY)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")} | {"MLFLOW_TRACKING_URI": server.url}
    child = subprocess.run([sys.executable, "-m", "mlops_training.main", *argv], env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stdout + child.stderr

    run_id = json.loads((tmp_path / "model" / "metadata.json").read_text())["mlflow_run_id"]
    assert json.loads((tmp_path / "output" / "mlflow_run.json").read_text())["run_id"] == run_id
    client = mlflow.MlflowClient(tracking_uri=server.url)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["model_name"] == "fraud"
    losses = client.get_metric_history(run_id, "train_loss")
    assert [m.step for m in losses] == [1, 2, 3] and all(m.value > 0 for m in losses)
    metrics = json.loads((tmp_path / "output" / "metrics.json").read_text())
    assert run.data.metrics["validation_auc"] == pytest.approx(metrics["auc"], abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(run_id, "model")}
    assert "model/metadata.json" in artifacts
    assert {a.path for a in client.list_artifacts(run_id, "evaluation")} >= {"evaluation/metrics.json"}
    assert client.get_experiment(run.info.experiment_id).name == "fraud"


def test_without_a_tracking_uri_nothing_is_logged_and_no_run_id_is_written(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", n_rows=600, task="binary_classification", seed=5, n_files=1)
    argv = ["train", "--train", str(tmp_path / "data"), "--schema", str(tmp_path / "data" / "feature_schema.json"),
            "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "output"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--hyperparameters", json.dumps(TINY | {"epochs": "1"})]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "MLFLOW_"))}
    child = subprocess.run([sys.executable, "-m", "mlops_training.main", *argv], env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    assert "mlflow_run_id" not in json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert not (tmp_path / "output" / "mlflow_run.json").exists()


def test_the_evaluation_records_the_candidates_run_id_in_its_lineage(tmp_path: Path, server) -> None:
    from mlops_contracts.tracking import LINEAGE_KEY
    from mlops_training.evaluation.cli import _with_run_id
    from mlops_training.evaluation.models import load_model
    from mlops_training.schema import load_schema
    from specs.lineage import MLFLOW_RUN

    assert MLFLOW_RUN == LINEAGE_KEY
    write_dataset(tmp_path / "data", n_rows=600, task="binary_classification", seed=5, n_files=1)
    argv = ["train", "--train", str(tmp_path / "data"), "--schema", str(tmp_path / "data" / "feature_schema.json"),
            "--model-dir", str(tmp_path / "model"), "--output-dir", str(tmp_path / "output"), "--archive", str(tmp_path / "model.tar.gz"),
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--hyperparameters", json.dumps(TINY | {"epochs": "1"})]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")} | {"MLFLOW_TRACKING_URI": server.url}
    child = subprocess.run([sys.executable, "-m", "mlops_training.main", *argv], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    run_id = json.loads((tmp_path / "output" / "mlflow_run.json").read_text())["run_id"]
    schema = load_schema(tmp_path / "data" / "feature_schema.json")
    candidate = load_model("candidate", str(tmp_path / "model.tar.gz"), schema=schema, workdir=tmp_path / "w", what="--candidate")
    assert _with_run_id({"training_job": "j"}, candidate) == {"training_job": "j", LINEAGE_KEY: run_id}
