"""A short CPU run on the sample data: quality, outputs, and the model artifact round trip."""
from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mlops_training.artifact import MEMBERS, load_artifact
from mlops_training.encode import encode_records, encode_table
from mlops_training.model import Predictor, TabularNet
from mlops_training.validate import validate
from mlops_training.data import read_parquet_source

from .helpers import FAST, Export, Run, clean_environment, new_run, run_in_process

# model.pt is TorchScript by contract; torch marks torch.jit deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@pytest.fixture(scope="module")
def binary_run(binary_export: Export, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One CLI run shared by the tests of this module (training is the slow part)."""
    run = new_run(tmp_path_factory.mktemp("binary-run"))
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(mp)
        mp.setenv("MLOPS_CODE_VERSION", "abc1234")
        assert run_in_process(run, export=binary_export, hp=FAST | {"model_version": "3", "model_name": "fraud"}) == 0
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)
    yield run


def test_short_run_on_sample_data_reaches_auc_of_at_least_0_85(binary_run: Run) -> None:
    metrics = binary_run.metrics()
    assert metrics["task"] == "binary_classification" and metrics["split"] == "validation"
    assert metrics["n_rows"] == 800  # validation_fraction 0.2 of 4000
    assert metrics["auc"] >= 0.85
    # About 14% positives: the base rate alone scores log-loss 0.40 and accuracy 0.86.
    assert metrics["log_loss"] < 0.35 and metrics["accuracy"] > 0.87


def test_run_writes_model_members_metrics_baseline_and_a_flat_archive(binary_run: Run) -> None:
    assert sorted(p.name for p in binary_run.model_dir.iterdir()) == sorted(MEMBERS)
    for name in ("metrics.json", "baseline.json", "validation_report.json"):
        assert (binary_run.output_dir / name).is_file()
    with tarfile.open(binary_run.archive) as tar:
        assert sorted(tar.getnames()) == sorted(MEMBERS)  # all at the archive root
    baseline = json.loads((binary_run.output_dir / "baseline.json").read_text())
    assert baseline["n_rows"] == 3200 and set(baseline["features"]) == {
        "amount", "n_items", "country", "hour", "account_age_days"}
    assert json.loads((binary_run.model_dir / "baseline.json").read_text()) == baseline


def test_metadata_names_version_data_code_hyperparameters_and_metrics(binary_run: Run, binary_export: Export) -> None:
    metadata = json.loads((binary_run.model_dir / "metadata.json").read_text())
    raw = read_parquet_source(str(binary_export.data))
    assert metadata["model_name"] == "fraud" and metadata["model_version"] == "3"
    assert metadata["task"] == "binary_classification"
    assert metadata["data_fingerprint"] == raw.fingerprint
    assert metadata["code_version"] == "abc1234"
    assert metadata["hyperparameters"]["epochs"] == 5 and metadata["hyperparameters"]["hidden_units"] == [64, 32]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", metadata["created_at"])
    assert metadata["metrics"] == binary_run.metrics()


def test_archive_round_trips_extract_load_encode_and_predict_like_the_trained_weights(
    binary_run: Run, binary_export: Export, tmp_path: Path
) -> None:
    extracted = tmp_path / "opt_ml_model"
    with tarfile.open(binary_run.archive) as tar:
        tar.extractall(extracted, filter="data")
    module = torch.jit.load(str(extracted / "model.pt"))
    schema_doc = json.loads((extracted / "schema.json").read_text())
    categories = {f["name"]: f["categories"] for f in schema_doc["features"] if f["type"] == "String"}
    # Rows as a client sends them, including an unseen category and nulls.
    records = pq.read_table(binary_export.data / "part-00000.parquet").slice(0, 200).to_pylist()
    records[0] |= {"country": "atlantis", "n_items": None, "account_age_days": None}
    features = torch.from_numpy(encode_records(records, load_artifact(extracted).schema, categories=categories))
    with torch.no_grad():
        served = module(features)
    assert served.dtype == torch.float32 and served.shape == (200,)
    assert torch.all((served > 0) & (served < 1))

    # The in-memory model: rebuilt from state_dict.pt, the way fine-tuning starts.
    artifact = load_artifact(binary_run.archive)
    net = TabularNet(schema=artifact.schema, categories=artifact.categories, hidden_units=(64, 32))
    net.load_state_dict(artifact.state_dict)
    in_memory = Predictor(net, binary=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(served, in_memory(features), rtol=0, atol=0)
    # The vectorised training-time encoding and the per-record one feed the model the same tensor.
    table = validate(read_parquet_source(str(binary_export.data)), artifact.schema, min_label_fraction=0).table
    batch = encode_table(table.slice(1, 199), artifact.schema, categories=categories)
    np.testing.assert_array_equal(batch, features[1:].numpy())


def test_regression_run_reaches_r2_of_at_least_0_8(regression_export: Export, tmp_path: Path) -> None:
    run = new_run(tmp_path)
    assert run_in_process(run, export=regression_export, hp=FAST) == 0
    metrics = run.metrics()
    assert metrics["task"] == "regression" and metrics["r2"] >= 0.8
    assert metrics["rmse"] > 0 and metrics["mae"] > 0
    artifact = load_artifact(run.archive)
    table = validate(read_parquet_source(str(regression_export.data)), artifact.schema, min_label_fraction=0).table
    x = torch.from_numpy(encode_table(table.slice(0, 50), artifact.schema, categories=artifact.categories))
    with torch.no_grad():
        predicted = artifact.module(x).numpy()
    truth = table.column("loss_amount").to_numpy()[:50]
    # Outputs are in the label's units (the standardisation is undone inside the model).
    assert abs(predicted.mean() - truth.mean()) < 0.5 * truth.std()


def test_invalid_hyperparameters_exit_2_with_a_failure_reason(
    binary_export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    run = new_run(tmp_path)
    assert run_in_process(run, export=binary_export, hp={"epochs": "0"}) == 2
    assert "epochs=0: allowed: an integer >= 1" in (tmp_path / "output" / "failure").read_text()
    assert not run.model_dir.exists()


def test_sagemaker_invocation_with_only_the_train_argument_reads_the_container_contract(
    binary_export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker run IMAGE train`: channels, model and output dirs and hyperparameters.json from SageMaker."""
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(FAST | {"model_version": "sm-1"}))
    monkeypatch.setenv("SM_INPUT_CONFIG_DIR", str(config))
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(binary_export.data))
    monkeypatch.setenv("SM_CHANNEL_CONFIG", str(binary_export.schema.parent))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output" / "data"))
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("SM_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    from mlops_training.main import main

    assert main(["train"]) == 0
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(MEMBERS)
    assert json.loads((tmp_path / "model" / "metadata.json").read_text())["model_version"] == "sm-1"
    assert (tmp_path / "output" / "data" / "metrics.json").is_file()
    assert list((tmp_path / "checkpoints").glob("checkpoint-*.pt"))
    assert not (tmp_path / "output" / "failure").exists()


def test_the_schema_given_both_as_hyperparameter_and_channel_file_is_refused(
    binary_export: Export, tmp_path: Path
) -> None:
    run = new_run(tmp_path)
    hp = FAST | {"feature_schema": binary_export.schema.read_text()}
    assert run_in_process(run, export=binary_export, hp=hp) == 2
    assert not run.model_dir.exists()
    # The hyperparameter alone is enough (no config channel).
    without_file = Export(data=binary_export.data, schema=tmp_path / "no-config-channel" / "feature_schema.json")
    assert run_in_process(run, export=without_file, hp=hp | {"epochs": "1"}) == 0
    assert load_artifact(run.model_dir).schema.feature_names == (
        "amount", "n_items", "country", "hour", "account_age_days")
