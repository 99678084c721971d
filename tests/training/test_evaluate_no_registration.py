"""In the pipeline the Register step registers, after the Evaluate step: without `model_package_group_name`
the training container uploads its artifact and metrics and registers nothing (issue #16 item 4)."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from .helpers import FAST, Export, new_run

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@pytest.mark.parametrize("group", [None, ""])
def test_training_without_a_package_group_uploads_and_registers_nothing(
    aws: str, binary_export: Export, tmp_path: Path, group: str | None
) -> None:
    from mlops_training.main import main

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName="fraud-detection-models")
    hp = FAST | {"epochs": "1", "model_name": "fraud", "model_version": "7", "artifact_s3_uri": "s3://models/risk",
                 "auto_approve": "true"}
    if group is not None:
        hp["model_package_group_name"] = group
    run = new_run(tmp_path)
    assert main(run.argv(binary_export, hp)) == 0
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"])
    assert keys == ["risk/fraud/7/baseline.json", "risk/fraud/7/metrics.json", "risk/fraud/7/model.tar.gz"]
    assert json.loads(s3.get_object(Bucket="models", Key="risk/fraud/7/metrics.json")["Body"].read()) == run.metrics()
    assert sagemaker.list_model_packages(ModelPackageGroupName="fraud-detection-models")["ModelPackageSummaryList"] == []
