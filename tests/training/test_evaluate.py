"""`mlops-train evaluate`: candidate and champions on one shared slice, each gate's outcome, the CLI's errors.

Real CPU trainings on small synthetic point-in-time datasets: a good model, a model trained on
shuffled labels, and the CLI run in-process over them.
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from mlops_contracts import evaluation as contract

from mlops_training import main as train_main
from mlops_training.dataset import build
from mlops_training.dataset.duckdb_engine import DuckDBEngine
from mlops_training.evaluation.models import load_model, score
from mlops_training.evaluation.shared_slice import load_slice, slice_hash
from mlops_training.schema import load_schema
from mlops_training.synthetic import generate, schema_document

from .helpers import FAST, new_run

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SCHEMA = schema_document("binary_classification")
FEATURES = tuple(f["name"] for f in SCHEMA["features"])
ROWS = 2000


def _build_dataset(root: Path, table: pa.Table, labels: pa.Array) -> Path:
    """Offline store of `table`'s features, label events one hour after each write, built with DuckDB."""
    times = [pa.scalar(t).as_py() for t in pc.strptime(table["event_time"], format="%Y-%m-%dT%H:%M:%SZ", unit="ms")]
    written = pa.array([t + timedelta(minutes=5) for t in times], pa.timestamp("ms", tz="UTC"))
    store = root / "store"
    store.mkdir(parents=True)
    rows = table.drop_columns(["is_fraud"]).append_column("write_time", written).append_column(
        "api_invocation_time", written).append_column("is_deleted", pa.array([False] * table.num_rows))
    pq.write_table(rows, store / "part-0.parquet")
    events = pa.table({"record_id": table["transaction_id"], "label": pc.cast(labels, pa.float64()),
                       "label_time": pc.add(written, pa.scalar(timedelta(hours=1)))})
    build.build(
        build.BuildRequest(feature_group="transactions", record_identifier="transaction_id", event_time="event_time",
                           features=FEATURES, label="is_fraud", label_source="synthetic"),
        engine=DuckDBEngine(str(store), feature_table="transactions"), events=events, out=root / "dataset",
    )
    return root / "dataset"


def _train(dataset: Path, schema: Path, root: Path, *, version: str) -> Path:
    run = new_run(root)
    assert train_main.main([
        "train", "--train", str(dataset), "--schema", str(schema), "--model-dir", str(run.model_dir),
        "--output-dir", str(run.output_dir), "--checkpoint-dir", str(run.checkpoint_dir), "--archive",
        str(run.archive), "--hyperparameters", json.dumps(FAST | {"model_name": "fraud", "model_version": version}),
    ]) == 0
    return run.archive


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dataset, a good model trained on it and a model trained on the same rows with shuffled labels."""
    root = tmp_path_factory.mktemp("evaluate")
    table = generate(ROWS, task="binary_classification", seed=5)
    schema = root / "feature_schema.json"
    schema.write_text(json.dumps(SCHEMA))
    dataset = _build_dataset(root / "good", table, table["is_fraud"])
    shuffled = pa.array(np.random.default_rng(1).permutation(table["is_fraud"].to_numpy()))
    noise = _build_dataset(root / "shuffled", table, shuffled)
    return {
        "schema": schema, "dataset": dataset, "root": root,
        "good": _train(dataset, schema, root / "train-good", version="2"),
        "bad": _train(noise, schema, root / "train-bad", version="3"),
    }


def _evaluate(world: dict[str, Path], out: Path, *extra: str, candidate: str = "good",
              dataset: Path | None = None) -> int:
    return train_main.main([
        "evaluate", "--schema", str(world["schema"]), "--dataset", str(dataset or world["dataset"]),
        "--candidate", str(world[candidate]), "--bootstrap", "200", "--out", str(out), *extra,
    ])


def test_candidate_and_champion_are_scored_on_the_same_rows_of_the_validation_split(world: dict[str, Path]) -> None:
    schema = load_schema(world["schema"])
    shared = load_slice(str(world["dataset"]), schema=schema, min_label_fraction=0.001)
    validation = pq.read_table(world["dataset"] / "validation" / build.PART_NAME)
    assert shared.record_ids == tuple(validation["transaction_id"].to_pylist())
    assert len(shared.record_ids) == json.loads((world["dataset"] / "manifest.json").read_text())["counts"]["validation"]
    assert shared.hash == slice_hash(shared.record_ids, shared.label_times)
    assert shared.start == min(shared.label_times) < shared.end == max(shared.label_times)
    # Loading the slice again (as a second evaluation would) gives the very same rows and hash.
    again = load_slice(str(world["dataset"]), schema=schema, min_label_fraction=0.001)
    assert (again.hash, again.record_ids) == (shared.hash, shared.record_ids)
    # A different row set hashes differently.
    assert slice_hash(shared.record_ids[1:], shared.label_times[1:]) != shared.hash

    good = load_model("candidate", str(world["good"]), schema=schema, workdir=world["root"], what="--candidate")
    bad = load_model("prod", str(world["bad"]), schema=schema, workdir=world["root"], what="--champion prod")
    assert score(good, shared.table).shape == score(bad, shared.table).shape == (len(shared.record_ids),)


def test_a_good_candidate_against_a_shuffled_label_champion_passes_every_gate(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(world, tmp_path, "--champion", f"scoring/champion={world['bad']}", "--gates", '{"auc": 0.7}',
                     "--lineage", "training_job=fraud-2", "--lineage", "config_hash=sha256:abc") == 0
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert json.loads(capsys.readouterr().out) == doc
    evaluation = contract.read(tmp_path / "evaluation.json")
    assert evaluation.decision.passed is True and doc["decision"]["passed"] is True
    assert evaluation.decision.failed_gates == ()
    assert evaluation.decision.reason.startswith("all gates passed: ")
    assert [g.gate for g in evaluation.gates] == ["thresholds", "regression", "validation"]
    assert evaluation.model == "fraud" and evaluation.task == "binary_classification"
    assert evaluation.primary_metric == "auc"
    assert evaluation.lineage == {"training_job": "fraud-2", "config_hash": "sha256:abc"}
    manifest = json.loads((world["dataset"] / "manifest.json").read_text())
    assert evaluation.slice.rows == manifest["counts"]["validation"]
    assert evaluation.slice.dataset_hash == manifest["content_hash"]
    assert evaluation.slice.dataset_manifest == str(world["dataset"].resolve() / "manifest.json")
    (champion,) = evaluation.champions
    assert champion.name == "scoring/champion" and champion.uri == str(world["bad"])
    auc = evaluation.candidate.metrics["auc"]
    assert auc.value > 0.75 and champion.metrics["auc"].value < 0.65
    assert champion.difference["auc"].value == pytest.approx(auc.value - champion.metrics["auc"].value)
    assert champion.difference["auc"].ci_low > 0  # the paired interval excludes 0: clearly better
    # The evaluation round-trips through the contract unchanged.
    assert contract.to_dict(contract.parse(doc)) == doc


def test_a_shuffled_label_candidate_fails_the_regression_gate_with_its_figures(
    world: dict[str, Path], tmp_path: Path
) -> None:
    assert _evaluate(world, tmp_path, "--champion", f"prod={world['good']}", candidate="bad") == 0
    evaluation = contract.read(tmp_path / "evaluation.json")
    assert evaluation.decision.passed is False
    assert evaluation.decision.failed_gates == ("regression",)
    cand, champ = evaluation.candidate.metrics["auc"].value, evaluation.champions[0].metrics["auc"].value
    reason = evaluation.decision.reason
    assert reason.startswith("regression gate failed: auc candidate ")
    assert f"candidate {cand:.4f} vs prod {champ:.4f}" in reason
    assert "exceeds max_regression 0.01" in reason


def test_a_candidate_below_its_gate_fails_the_thresholds_gate(world: dict[str, Path], tmp_path: Path) -> None:
    assert _evaluate(world, tmp_path, "--gates", '{"auc": 0.99, "log_loss": 0.9}') == 0
    evaluation = contract.read(tmp_path / "evaluation.json")
    assert evaluation.decision.failed_gates == ("thresholds",)
    auc = evaluation.candidate.metrics["auc"].value
    assert f"candidate auc {auc:.4f}" in evaluation.decision.reason and "misses >= 0.99" in evaluation.decision.reason
    assert "meets <= 0.9" in evaluation.decision.reason
    regression = next(g for g in evaluation.gates if g.gate == "regression")
    assert regression.passed and regression.detail == "no champion to compare with"


def test_a_dataset_failing_a_data_check_fails_the_validation_gate_naming_the_check(
    world: dict[str, Path], tmp_path: Path
) -> None:
    strict = json.loads(world["schema"].read_text())
    strict["features"][0]["max"] = 50.0  # amounts above 50 now break the schema's range check
    schema = tmp_path / "strict_schema.json"
    schema.write_text(json.dumps(strict))
    assert _evaluate(world | {"schema": schema}, tmp_path / "out") == 0
    evaluation = contract.read(tmp_path / "out" / "evaluation.json")
    assert evaluation.decision.passed is False and evaluation.decision.failed_gates == ("validation",)
    assert "validation gate failed: 1 data check(s) failed" in evaluation.decision.reason
    assert "amount: out_of_range" in evaluation.decision.reason and "allowed [0.0, 50.0]" in evaluation.decision.reason
    assert evaluation.candidate.metrics == {}


def test_model_quality_documents_use_sagemakers_keys(world: dict[str, Path], tmp_path: Path) -> None:
    assert _evaluate(world, tmp_path, "--champion", f"a={world['bad']}", "--champion", f"b={world['good']}") == 0
    names = sorted(p.name for p in (tmp_path / "model_quality").iterdir())
    assert names == ["candidate.json", "champion-1.json", "champion-2.json"]
    candidate = json.loads((tmp_path / "model_quality" / "candidate.json").read_text())
    assert list(candidate) == ["binary_classification_metrics"]
    assert set(candidate["binary_classification_metrics"]) == {"auc", "accuracy"}
    assert set(candidate["binary_classification_metrics"]["auc"]) == {"value", "standard_deviation"}
    evaluation = contract.read(tmp_path / "evaluation.json")
    assert candidate["binary_classification_metrics"]["auc"]["value"] == evaluation.candidate.metrics["auc"].value
    second = json.loads((tmp_path / "model_quality" / "champion-2.json").read_text())
    # Champion b is the candidate's own artifact: same figures, and a paired difference of exactly 0.
    assert second == candidate
    diff = evaluation.champion("b").difference["auc"]
    assert (diff.value, diff.ci_low, diff.ci_high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("args", "message"), [
    (["--dataset", "/nonexistent/dataset"], "--dataset /nonexistent/dataset: no such directory"),
    (["--champion", "no-equals-sign"], "--champion 'no-equals-sign': expected NAME=VALUE"),
    (["--champion", "=s3://b/model.tar.gz"], "--champion '=s3://b/model.tar.gz': expected NAME=VALUE"),
    (["--gates", '{"f1": 0.5}'], "--gates: unknown metric 'f1' for binary_classification; allowed: auc, accuracy, log_loss"),
    (["--gates", "auc>0.5"], "--gates 'auc>0.5' is not JSON"),
    (["--max-regression", "-0.1"], "--max-regression -0.1; allowed: a number >= 0"),
    (["--champion", "prod=/nonexistent/model.tar.gz"], "--champion prod /nonexistent/model.tar.gz: no such file"),
])
def test_bad_input_exits_2_naming_the_argument(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = ["--schema", str(world["schema"]), "--dataset", str(world["dataset"]), "--candidate", str(world["good"]),
            "--bootstrap", "10", "--out", str(tmp_path)]
    for flag, value in zip(args[::2], args[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert train_main.main(["evaluate", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "evaluation.json").exists()


def test_a_dataset_without_manifest_is_refused(world: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "plain"
    (copy / "validation").mkdir(parents=True)
    (copy / "validation" / build.PART_NAME).write_bytes((world["dataset"] / "validation" / build.PART_NAME).read_bytes())
    assert _evaluate(world, tmp_path / "out", dataset=copy) == 2
    assert "has no manifest.json; evaluate needs a dataset built by `mlops-train dataset`" in capsys.readouterr().err


def test_dataset_models_and_output_on_s3_with_every_request_valid_for_botocore(
    aws: str, world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.validate import validate_parameters

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # restored afterwards: the hook stays in this test
    boto3.setup_default_session()
    sent: list[str] = []

    def check(params: dict, model: object, **_: object) -> None:
        sent.append(model.name)  # type: ignore[attr-defined]
        validate_parameters(params, model.input_shape)  # type: ignore[attr-defined]

    boto3.DEFAULT_SESSION.events.register("provide-client-params.s3.*", check)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pipeline", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in world["dataset"].rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "pipeline", f"datasets/run-1/{path.relative_to(world['dataset']).as_posix()}")
    s3.upload_file(str(world["good"]), "pipeline", "models/fraud/2/model.tar.gz")
    s3.upload_file(str(world["bad"]), "pipeline", "models/fraud/1/model.tar.gz")
    sent.clear()

    assert train_main.main([
        "evaluate", "--schema", str(world["schema"]), "--dataset", "s3://pipeline/datasets/run-1",
        "--candidate", "s3://pipeline/models/fraud/2/model.tar.gz",
        "--champion", "scoring/champion=s3://pipeline/models/fraud/1",  # a prefix holding model.tar.gz
        "--bootstrap", "50", "--out", "s3://pipeline/evaluations/run-1",
    ]) == 0
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="pipeline", Prefix="evaluations/")["Contents"])
    assert keys == ["evaluations/run-1/evaluation.json", "evaluations/run-1/model_quality/candidate.json",
                    "evaluations/run-1/model_quality/champion-1.json"]
    body = s3.get_object(Bucket="pipeline", Key="evaluations/run-1/evaluation.json")["Body"].read().decode()
    evaluation = contract.loads(body)
    assert evaluation.slice.dataset_manifest == "s3://pipeline/datasets/run-1/manifest.json"
    assert evaluation.decision.passed is True
    local = load_slice(str(world["dataset"]), schema=load_schema(world["schema"]), min_label_fraction=0.001)
    assert evaluation.slice.hash == local.hash  # the same rows, wherever the dataset is read from
    assert {"ListObjectsV2", "GetObject", "PutObject"} <= set(sent)


def test_the_shuffle_labels_drill_trains_a_candidate_the_regression_gate_refuses(world: dict[str, Path], tmp_path: Path) -> None:
    run = new_run(tmp_path / "drill")
    assert train_main.main([
        "train", "--train", str(world["dataset"]), "--schema", str(world["schema"]), "--model-dir", str(run.model_dir),
        "--output-dir", str(run.output_dir), "--checkpoint-dir", str(run.checkpoint_dir), "--archive", str(run.archive),
        "--hyperparameters", json.dumps(FAST | {"model_name": "fraud", "model_version": "4", "shuffle_labels": "true"}),
    ]) == 0
    drill = {**world, "drill": run.archive}
    out = tmp_path / "eval"
    assert _evaluate(drill, out, "--champion", f"scoring/champion={world['good']}", candidate="drill") == 0
    evaluation = contract.read(out / contract.EVALUATION_FILE)
    assert not evaluation.decision.passed and evaluation.decision.failed_gates == ("regression",)
    assert evaluation.candidate.metrics["auc"].value < evaluation.champions[0].metrics["auc"].value - 0.1
