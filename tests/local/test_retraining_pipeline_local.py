"""The generated retraining pipeline (specs.pipelines.retraining) runs on the local AWS endpoint with the
real containers' entry points: Dataset (`mlops-train dataset` over the offline store and label events),
Train (`mlops-train train` on the Dataset step's output), Evaluate (`mlops-train evaluate`), the Condition,
then Register with the evaluation attached, or, for the ShuffleLabels drill against a good champion,
Fail with the evaluation's reason. Small synthetic data, CPU only."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests

from specs.config.schema import ModelConfig, TrainingConfig
from specs.pipelines import retraining as pd
from specs.pipelines.sources import RetrainingSources

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REGION = "eu-west-1"
ACCOUNT = "123456789012"
FEATURES, ARTIFACTS = "t-dev-features-123456789012", "t-dev-artifacts-123456789012"
GROUP = "t-dev-fraud"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/t-dev-sagemaker-execution"
ROWS = 1500
CEILING_S = 900.0
FAST = {"epochs": 5, "batch_size": 64, "learning_rate": 0.003, "num_threads": 1}


def _recent_store(seed: int) -> tuple[pa.Table, pa.Table]:
    """An offline-store part with feature rows written over the last two days, and label events one
    hour after each write (all inside the default 30-day window as of now)."""
    from mlops_training.synthetic import generate

    table = generate(ROWS, task="binary_classification", seed=seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    times = [start + timedelta(seconds=60 * i) for i in range(table.num_rows)]
    written = pa.array([t + timedelta(minutes=5) for t in times], pa.timestamp("ms", tz="UTC"))
    rows = (table.drop_columns(["is_fraud", "event_time"])
            .append_column("event_time", pa.array([t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in times]))
            .append_column("write_time", written).append_column("api_invocation_time", written)
            .append_column("is_deleted", pa.array([False] * table.num_rows)))
    events = pa.table({"record_id": table["transaction_id"], "label": pc.cast(table["is_fraud"], pa.float64()),
                       "label_time": pc.add(written, pa.scalar(timedelta(hours=1)))})
    return rows, events


@pytest.fixture(scope="module")
def pipeline(endpoint: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlops_training.synthetic import schema_document

    url, state = endpoint
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
    s3, sagemaker = session.client("s3", endpoint_url=url), session.client("sagemaker", endpoint_url=url)
    for bucket in (FEATURES, ARTIFACTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    rows, events = _recent_store(seed=5)
    scratch = tmp_path_factory.mktemp("inputs")
    pq.write_table(rows, scratch / "part-0.parquet")
    pq.write_table(events, scratch / "label_events.parquet")
    s3.upload_file(str(scratch / "part-0.parquet"), FEATURES, "offline-store/transactions/part-0.parquet")
    s3.upload_file(str(scratch / "label_events.parquet"), FEATURES, "labels/fraud/label_events.parquet")
    s3.put_object(Bucket=ARTIFACTS, Key=pd.schema_key("fraud"), Body=json.dumps(schema_document("binary_classification")).encode())
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    # The team's MLflow tracking server (a real `mlflow server` behind the local endpoint): every run's
    # Train step logs to it through MLFLOW_TRACKING_URI, the server's ARN.
    tracking = sagemaker.create_mlflow_tracking_server(TrackingServerName="t-dev-mlflow", ArtifactStoreUri=f"s3://{ARTIFACTS}/mlflow",
                                                       RoleArn=ROLE)["TrackingServerArn"]
    return {"s3": s3, "sagemaker": sagemaker, "state": state, "tracking": tracking}


def _create(aws: dict[str, Any], *, champions: tuple[tuple[str, str], ...], gates: dict[str, float]) -> str:
    name = f"t-dev-fraud-train-{uuid.uuid4().hex[:6]}"
    definition = pd.pipeline_definition(
        pipeline_name=name, region=REGION, model="fraud",
        spec=ModelConfig(feature_group="transactions", label="is_fraud", task="binary_classification", approval="auto", gates=gates),
        training=TrainingConfig(hyperparameters=FAST), image="img:train", role_arn=ROLE, training_role_arn=ROLE,
        features_uri=f"s3://{FEATURES}/offline-store/transactions", artifacts_bucket=ARTIFACTS, kms_key="alias/local",
        model_package_group=GROUP, serving_image="img:serve", network=None, tracking_uri=aws["tracking"],
        sources=RetrainingSources(feature_group="transactions", label_events_uri=f"s3://{FEATURES}/labels/fraud/label_events.parquet",
                                  champions=champions, config_hash="sha256:" + "0" * 64),
    )
    aws["sagemaker"].create_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex)
    return name


def _run(aws: dict[str, Any], name: str, **parameters: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    sagemaker = aws["sagemaker"]
    arn = sagemaker.start_pipeline_execution(PipelineName=name, ClientRequestToken=uuid.uuid4().hex,
                                             PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()])["PipelineExecutionArn"]
    deadline = time.monotonic() + CEILING_S
    while (described := sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn))["PipelineExecutionStatus"] == "Executing":
        assert time.monotonic() < deadline, f"{arn} still Executing after {CEILING_S}s"
        time.sleep(1.0)
    steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")["PipelineExecutionSteps"]
    return described, {s["StepName"]: s for s in steps}


@pytest.fixture(scope="module")
def registered(pipeline: dict[str, Any]) -> dict[str, Any]:
    """A first run with no champion: it should register."""
    name = _create(pipeline, champions=(), gates={"auc": 0.6})
    described, steps = _run(pipeline, name)
    return {"name": name, "described": described, "steps": steps}


def test_the_generated_pipeline_builds_trains_evaluates_and_registers_from_one_definition(pipeline, registered):
    described, steps = registered["described"], registered["steps"]
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert list(steps) == ["Dataset", "Train", "Evaluate", "Condition", "Register"]
    execution_id = described["PipelineExecutionArn"].rsplit("/", 1)[1]
    package = pipeline["sagemaker"].describe_model_package(ModelPackageName=steps["Register"]["Metadata"]["RegisterModel"]["Arn"])
    assert package["ModelApprovalStatus"] == "Approved"
    metadata = package["CustomerMetadataProperties"]
    evaluation_uri = f"s3://{ARTIFACTS}/evaluations/fraud/{execution_id}/evaluation.json"
    assert metadata["mlops:evaluation"] == evaluation_uri
    assert metadata["mlops:dataset_manifest"] == f"s3://{ARTIFACTS}/datasets/fraud/{execution_id}/manifest.json"
    assert metadata["mlops:pipeline_execution"] == described["PipelineExecutionArn"]
    evaluation = json.loads(pipeline["s3"].get_object(Bucket=ARTIFACTS, Key=evaluation_uri.split(f"{ARTIFACTS}/", 1)[1])["Body"].read())
    assert evaluation["decision"]["passed"] is True
    assert evaluation["lineage"]["mlops:pipeline_execution"] == described["PipelineExecutionArn"]
    model_data = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_data.endswith("/output/model.tar.gz")
    manifest = json.loads(pipeline["s3"].get_object(Bucket=ARTIFACTS, Key=f"datasets/fraud/{execution_id}/manifest.json")["Body"].read())
    assert manifest["window"]["days"] == 30
    # The registered version carries its training run, and the team's tracking server has it, finished.
    from mlops.local.tracking_servers import resolve_environment

    url = resolve_environment({"MLFLOW_TRACKING_URI": pipeline["tracking"]}, pipeline["sagemaker"])["MLFLOW_TRACKING_URI"]
    run = requests.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": metadata["mlops:mlflow_run"]}, timeout=30).json()["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run["data"]["params"]}["model_name"] == "fraud"
    assert "validation_auc" in {m["key"] for m in run["data"]["metrics"]}


def test_the_shuffled_labels_drill_against_a_good_champion_is_refused_with_the_evaluations_reason(pipeline, registered):
    package = pipeline["sagemaker"].describe_model_package(ModelPackageName=registered["steps"]["Register"]["Metadata"]["RegisterModel"]["Arn"])
    champion = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    name = _create(pipeline, champions=(("scoring/champion", champion),), gates={"auc": 0.6})
    described, steps = _run(pipeline, name, ShuffleLabels="true")
    assert described["PipelineExecutionStatus"] == "Failed"
    assert list(steps) == ["Dataset", "Train", "Evaluate", "Condition", "Fail"]
    assert described["FailureReason"].startswith("Evaluation refused the candidate: ")
    assert "gate failed" in described["FailureReason"]
    assert len(pipeline["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) == 1
