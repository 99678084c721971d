"""Against moto's real HTTP server: training data from an S3 prefix, artifact upload and registration."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from mlops_training.artifact import load_artifact
from mlops_training.data import read_parquet_source
from mlops_training.register import Registration, register_model_package

from .helpers import FAST, Export, new_run

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-serving:1.4.0"
GROUP = "fraud-detection-models"


def _upload_export(export: Export, *, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in sorted(export.data.glob("*.parquet")):
        s3.upload_file(str(path), bucket, f"{prefix}/{path.name}")


def test_reading_an_s3_prefix_gives_the_same_rows_and_fingerprint_as_the_directory(
    aws: str, binary_export: Export
) -> None:
    _upload_export(binary_export, bucket="features", prefix="export/fraud")
    # A sibling prefix that merely starts with the same characters is not part of the export.
    boto3.client("s3").put_object(Bucket="features", Key="export/fraud-old/part.parquet", Body=b"not parquet")
    from_s3 = read_parquet_source("s3://features/export/fraud")
    local = read_parquet_source(str(binary_export.data))
    assert from_s3.fingerprint == local.fingerprint
    assert [p.name for p in from_s3.parts] == [p.name for p in local.parts]
    assert from_s3.n_rows == local.n_rows == 4000


def test_training_uploads_the_artifact_and_registers_a_package_pending_manual_approval(
    aws: str, binary_export: Export, tmp_path: Path
) -> None:
    _upload_export(binary_export, bucket="features", prefix="export/fraud")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    run = new_run(tmp_path)
    hp = FAST | {
        "model_name": "fraud", "model_version": "42", "artifact_s3_uri": "s3://models/teams/risk",
        "model_package_group_name": GROUP, "image_uri": IMAGE,
    }
    argv = run.argv(binary_export, hp)
    argv[argv.index("--train") + 1] = "s3://features/export/fraud"
    from mlops_training.main import main

    assert main(argv) == 0
    metrics = run.metrics()

    packages = sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert len(packages) == 1
    package = sagemaker.describe_model_package(ModelPackageName=packages[0]["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == "s3://models/teams/risk/fraud/42/model.tar.gz"
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json", "S3Uri": "s3://models/teams/risk/fraud/42/metrics.json"}
    props = package["CustomerMetadataProperties"]
    assert float(props["metric_auc"]) == metrics["auc"] and float(props["metric_log_loss"]) == metrics["log_loss"]
    assert float(props["metric_accuracy"]) == metrics["accuracy"]
    assert props["model_version"] == "42" and props["task"] == "binary_classification"
    assert props["data_fingerprint"] == read_parquet_source(str(binary_export.data)).fingerprint

    # What the package points at is really there: metrics.json and a loadable model.tar.gz.
    body = s3.get_object(Bucket="models", Key="teams/risk/fraud/42/metrics.json")["Body"].read()
    assert json.loads(body) == metrics
    tarball = tmp_path / "downloaded.tar.gz"
    tarball.write_bytes(s3.get_object(Bucket="models", Key="teams/risk/fraud/42/model.tar.gz")["Body"].read())
    artifact = load_artifact(tarball)
    assert artifact.metadata["model_version"] == "42" and artifact.metadata["metrics"] == metrics
    baseline = json.loads(s3.get_object(Bucket="models", Key="teams/risk/fraud/42/baseline.json")["Body"].read())
    assert baseline == artifact.baseline


def test_an_auto_approving_environment_registers_the_package_as_approved(aws: str) -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register_model_package(Registration(
        group_name=GROUP, image_uri=IMAGE, model_data_url="s3://models/m/1/model.tar.gz",
        metrics_s3_uri="s3://models/m/1/metrics.json", metrics={"rmse": 1.5, "r2": 0.9},
        properties={"model_version": "1", "code_version": "mlops-training-0.1.0+src.abc (dirty)"},
        approve=True, description="m 1",
    ))
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved"
    # Characters SageMaker does not allow in metadata values are replaced, not sent.
    assert package["CustomerMetadataProperties"] == {
        "metric_rmse": "1.5", "metric_r2": "0.9", "model_version": "1",
        "code_version": "mlops-training-0.1.0+src.abc _dirty_",
    }


def test_registering_into_a_group_that_does_not_exist_fails_loudly(aws: str) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="Model Package Group does not exist"):
        register_model_package(Registration(
            group_name="missing", image_uri=IMAGE, model_data_url="s3://m/model.tar.gz",
            metrics_s3_uri="s3://m/metrics.json", metrics={}, properties={}, approve=False, description="",
        ))
