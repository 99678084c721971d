"""`mlops lineage` round trips on moto's server: a pipeline-registered version traced from the stack's
pin to its evaluation, dataset manifest and config hash; a container-registered version showing what
it has and "not recorded" for the rest; unknown endpoints and variants exit 2 naming what exists."""
from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from mlops.cli import app
from mlops_contracts import evaluation
from specs import lineage as keys
from specs.config import stack_files

STACK = "fraud-dev"  # pins scoring/champion to fraud-detector version 1
BUCKET = "fraud-dev-artifacts-111111111111"
PINNED = f"s3://{BUCKET}/models/fraud-detector/1/model.tar.gz"
GROUP = "fraud-dev-fraud-detector"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/fraud/dev/training@sha256:" + "ab" * 32
EXECUTION = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/fraud-dev-fraud-detector-train/execution/k1x2y3z4w5v6"
MANIFEST_URI = f"s3://{BUCKET}/datasets/fraud-detector/k1x2y3z4w5v6/manifest.json"
EVALUATION_URI = f"s3://{BUCKET}/evaluations/fraud-detector/k1x2y3z4w5v6/evaluation.json"
MANIFEST = {
    "format_version": 1, "split": "time", "feature_group": "fraud-dev-transactions", "engine": "duckdb",
    "sources": [f"s3://fraud-dev-features-111111111111/offline-store/part-{i}.parquet" for i in range(2)],
    "cutoff": "2026-11-20T00:00:00.000Z", "label_source": "label_events",
    "counts": {"labels_in": 2100, "matched": 2000, "excluded_no_feature": 90, "excluded_deleted": 10, "train": 1600, "validation": 400},
    "content_hash": "sha256:" + "9a" * 32,
}


def _estimate(value: float) -> dict[str, float]:
    return {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05, "standard_deviation": 0.025}


EVALUATION = {
    "format_version": 1, "model": "fraud-detector", "task": "binary_classification", "primary_metric": "auc",
    "slice": {"split": "validation", "rows": 400, "from": "2026-11-20T00:00:00.000Z", "to": "2026-11-30T00:00:00.000Z",
              "hash": "sha256:" + "29" * 32, "dataset_manifest": MANIFEST_URI, "dataset_hash": MANIFEST["content_hash"]},
    "candidate": {"uri": PINNED, "metrics": {"auc": _estimate(0.85)}},
    "champions": [{"name": "scoring/champion", "uri": f"s3://{BUCKET}/models/fraud-detector/0/model.tar.gz",
                   "metrics": {"auc": _estimate(0.80)}, "difference": {"auc": {"value": 0.05, "ci_low": 0.01, "ci_high": 0.09}}}],
    "gates": [{"gate": "thresholds", "passed": True, "detail": "candidate auc 0.8500 meets >= 0.8"},
              {"gate": "regression", "passed": True, "detail": "auc +0.0500 vs scoring/champion"},
              {"gate": "validation", "passed": True, "detail": "data checks passed on 2000 rows"}],
    "decision": {"passed": True, "failed_gates": [], "reason": "all gates passed"},
    "lineage": {"training_job": "fraud-dev-fraud-detector-k1x2y3", "pipeline_execution": EXECUTION},
    "generated": "2026-12-01T03:10:00Z",
}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def registry(aws, monkeypatch) -> Any:
    """The dev stack's bucket and Model Package Group on moto, with the ambient credentials pointing there."""
    for name in ("MLOPS_AWS_PROFILE_DEV", "MLOPS_AWS_ROLE_ARN_DEV"):
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    return s3, sagemaker


def _register(sagemaker: Any, *, url: str, metadata: dict[str, str]) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", CustomerMetadataProperties=metadata,
        InferenceSpecification={"Containers": [{"Image": "serving:0.1.0", "ModelDataUrl": url}],
                                "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
    )["ModelPackageArn"]


def _pipeline_metadata(config_hash: str) -> dict[str, str]:
    return {
        keys.EVALUATION: EVALUATION_URI, keys.PIPELINE_EXECUTION: EXECUTION, keys.TRAINING_JOB: "fraud-dev-fraud-detector-k1x2y3",
        keys.DATASET_MANIFEST: MANIFEST_URI, keys.CONFIG_HASH: config_hash, keys.IMAGE: IMAGE, keys.CODE_VERSION: "0.3.1",
    }


def _publish(s3: Any) -> None:
    evaluation.parse(EVALUATION)  # the document follows the contract the command reads with
    s3.put_object(Bucket=BUCKET, Key=EVALUATION_URI.split("/", 3)[3], Body=json.dumps(EVALUATION).encode())
    s3.put_object(Bucket=BUCKET, Key=MANIFEST_URI.split("/", 3)[3], Body=json.dumps(MANIFEST).encode())


def test_a_pipeline_registered_champion_traces_back_to_its_evaluation_dataset_and_config(registry):
    s3, sagemaker = registry
    current = keys.config_hash(stack_files.load(STACK), "fraud-detector")
    arn = _register(sagemaker, url=PINNED, metadata=_pipeline_metadata(current))
    _publish(s3)
    result = run("lineage", "-s", STACK, "--endpoint", "scoring", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert result.stdout == json.dumps(doc, indent=2, sort_keys=True) + "\n"  # stable: sorted keys
    assert doc["variant"] == {"name": "champion", "model": "fraud-detector", "model_version": 1, "model_data_url": PINNED}
    package = doc["model_package"]
    assert (package["arn"], package["group"], package["version"], package["approval"], package["matched_by"]) == (
        arn, GROUP, 1, "Approved", "model_data_url")
    assert package["created"].startswith("20")
    assert (doc["registered_by"], doc["pipeline_execution"], doc["training_job"], doc["image"], doc["code_version"]) == (
        "retraining pipeline", EXECUTION, "fraud-dev-fraud-detector-k1x2y3", IMAGE, "0.3.1")
    assert doc["evaluation"] == {
        "uri": EVALUATION_URI, "primary_metric": "auc", "dataset_manifest": MANIFEST_URI,
        "decision": {"passed": True, "failed_gates": [], "reason": "all gates passed"},
        "slice": {"rows": 400, "from": "2026-11-20T00:00:00.000Z", "to": "2026-11-30T00:00:00.000Z", "hash": "sha256:" + "29" * 32},
        "candidate": {"auc": 0.85},
        "champions": [{"name": "scoring/champion", "uri": f"s3://{BUCKET}/models/fraud-detector/0/model.tar.gz", "metrics": {"auc": 0.80},
                       "difference": {"auc": {"value": 0.05, "ci_low": 0.01, "ci_high": 0.09}}}],
    }
    assert doc["dataset"] == {"uri": MANIFEST_URI, "feature_group": "fraud-dev-transactions", "sources": MANIFEST["sources"],
                              "cutoff": "2026-11-20T00:00:00.000Z", "window": "not recorded",
                              "rows": {"train": 1600, "validation": 400}, "content_hash": MANIFEST["content_hash"]}
    assert doc["config"] == {"recorded": current, "current": current, "matches": True}
    table = run("lineage", "-s", STACK, "--endpoint", "scoring")
    assert table.exit_code == 0, table.output
    assert EXECUTION in table.stdout and "the current config hashes the same" in table.stdout
    assert "scoring/champion" in table.stdout and "+0.0500" in table.stdout


def test_a_changed_stack_config_no_longer_hashes_the_same(registry):
    s3, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata=_pipeline_metadata("sha256:" + "00" * 32))
    _publish(s3)
    doc = json.loads(run("lineage", "-s", STACK, "--endpoint", "scoring", "--json").stdout)
    assert doc["config"]["matches"] is False and doc["config"]["recorded"] == "sha256:" + "00" * 32


def test_a_container_registered_version_shows_what_it_has_and_not_recorded_for_the_rest(registry):
    _, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata={
        "metric_auc": "0.81", "model_name": "fraud-detector", "model_version": "1", "task": "binary_classification",
        "data_fingerprint": "sha256:" + "7f" * 32, "code_version": "0.3.0"})
    result = run("lineage", "-s", STACK, "--endpoint", "scoring", "--variant", "champion", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["registered_by"] == "training container (not the pipeline)"
    assert (doc["code_version"], doc["data_fingerprint"], doc["image"]) == ("0.3.0", "sha256:" + "7f" * 32, "serving:0.1.0")
    assert {k: doc[k] for k in ("pipeline_execution", "training_job", "evaluation", "dataset")} == dict.fromkeys(
        ("pipeline_execution", "training_job", "evaluation", "dataset"), "not recorded")
    assert doc["config"]["recorded"] == "not recorded" and doc["config"]["matches"] == "not recorded"
    table = run("lineage", "-s", STACK, "--endpoint", "scoring")
    assert table.exit_code == 0 and "not recorded" in table.stdout


def test_a_missing_evaluation_object_is_shown_as_unreadable_not_a_crash(registry):
    _, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata=_pipeline_metadata("sha256:" + "00" * 32))
    doc = json.loads(run("lineage", "-s", STACK, "--endpoint", "scoring", "--json").stdout)
    assert doc["evaluation"]["uri"] == EVALUATION_URI and "NoSuchKey" in doc["evaluation"]["error"]
    assert doc["dataset"]["uri"] == MANIFEST_URI and "NoSuchKey" in doc["dataset"]["error"]


def test_unknown_variant_or_endpoint_exits_2_naming_what_exists(registry):
    result = run("lineage", "-s", STACK, "--endpoint", "scoring", "--variant", "shadow")
    assert result.exit_code == 2
    assert "endpoint 'scoring' has no variant 'shadow'; variants: champion" in result.stderr
    result = run("lineage", "-s", STACK, "--endpoint", "checkout")
    assert result.exit_code == 2 and "endpoints: scoring" in result.stderr


def test_a_pin_the_registry_lacks_exits_2_naming_the_versions(registry):
    _, sagemaker = registry
    _register(sagemaker, url=f"s3://{BUCKET}/models/fraud-detector/other/model.tar.gz", metadata={})
    _register(sagemaker, url=f"s3://{BUCKET}/models/fraud-detector/third/model.tar.gz", metadata={})
    # version 1 exists but holds another artifact: matched by version, and the mismatch is said
    doc = json.loads(run("lineage", "-s", STACK, "--endpoint", "scoring", "--json").stdout)
    assert doc["model_package"]["version"] == 1 and doc["model_package"]["matched_by"].startswith("model_version (its model data URL is not")


def test_an_empty_group_exits_2_naming_the_group(registry):
    result = run("lineage", "-s", STACK, "--endpoint", "scoring")
    assert result.exit_code == 2
    assert f"model package group {GROUP!r} has no version 1" in result.stderr and "versions: none" in result.stderr


def test_every_request_lineage_sends_is_valid_by_botocores_model(registry):
    from botocore.validate import validate_parameters

    from mlops.lineage import lineage

    s3, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata=_pipeline_metadata("sha256:" + "00" * 32))
    _publish(s3)
    sent: list[tuple[str, Any]] = []
    clients = {name: boto3.client(name, region_name="eu-west-1") for name in ("s3", "sagemaker")}
    for client in clients.values():
        client.meta.events.register("before-parameter-build", lambda params, model, **_: sent.append((model, dict(params))))
    lineage(stack_files.load(STACK), endpoint="scoring", variant=None, client=clients.__getitem__)
    assert sorted({model.name for model, _ in sent}) == ["DescribeModelPackage", "GetObject", "ListModelPackages"]
    for model, params in sent:
        validate_parameters(params, model.input_shape)  # raises ParamValidationError naming the member
