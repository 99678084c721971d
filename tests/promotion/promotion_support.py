"""A three-account model registry on moto's server for the promotion tests.

Each environment of team fraud lives in the account its stack file names (dev 111111111111, staging
222222222222, prod 333333333333): `MLOPS_AWS_ROLE_ARN_<ENV>` makes `mlops promote` assume a role in
that account, and moto's server keeps each account's registry and buckets apart, so a promotion
that used the wrong account's client would not find what it looks for.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from mlops_contracts import evaluation as contract

from specs import lineage
from specs.config import stack_files
from specs.feature_schema import feature_schema

TEAM = "fraud"
MODEL = "fraud-detector"
REGION = "eu-west-1"
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/fraud/dev/serving:0.1.0"
CATEGORIES = {"channel": ["atm", "pos", "web"]}
CHAMPION_METRICS = {"auc": 0.88, "log_loss": 0.35, "accuracy": 0.9}
"""The self-reported metrics of the champions `build_world` registers."""
SLICE = contract.Slice(split="validation", rows=800, start="2026-11-01T00:00:00Z", end="2026-11-30T23:00:00Z",
                       hash="sha256:" + "ab" * 32, dataset_manifest="s3://fraud-dev-features-111111111111/datasets/7/manifest.json",
                       dataset_hash="sha256:" + "cd" * 32)


@dataclass(frozen=True)
class Faced:
    """A champion a candidate's evaluation scored it against: its artifact URL and its figures on the slice."""

    url: str
    metrics: dict[str, float]
    name: str = "scoring/champion"


def _estimate(value: float) -> contract.Estimate:
    return contract.Estimate(value=value, ci_low=value - 0.01, ci_high=value + 0.01, standard_deviation=0.005)


def evaluation_document(*, candidate_url: str, candidate: dict[str, float], faced: list[Faced]) -> str:
    """evaluation.json (docs/contracts.md section 8) with the given figures on one slice: what the
    retraining pipeline's Evaluate step writes beside a candidate (the maths is mlops-train evaluate's)."""
    champions = tuple(
        contract.Champion(
            name=f.name if len(faced) == 1 else f"{f.name}-{i}", uri=f.url, metrics={k: _estimate(v) for k, v in f.metrics.items()},
            difference={k: contract.Difference(value=candidate[k] - v, ci_low=candidate[k] - v - 0.01, ci_high=candidate[k] - v + 0.01)
                        for k, v in f.metrics.items() if k in candidate},
        )
        for i, f in enumerate(faced, start=1)
    )
    gates = (contract.Gate(gate="thresholds", passed=True, detail="as crafted by the test"),)
    return contract.dumps(contract.Evaluation(
        model=MODEL, task="binary_classification", primary_metric="auc", slice=SLICE,
        candidate=contract.Scored(uri=candidate_url, metrics={k: _estimate(v) for k, v in candidate.items()}),
        champions=champions, gates=gates, decision=contract.decide(gates), lineage={}, generated="2026-12-01T00:00:00Z",
    ))


def role_arn(env: str) -> str:
    return f"arn:aws:iam::{ACCOUNTS[env]}:role/mlops-promote-{env}"


def session(env: str) -> boto3.Session:
    """A session in `env`'s account (moto keys accounts by the assumed role's credentials)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role_arn(env), RoleSessionName=f"test-{env}")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=REGION,
    )


def model_schema(env: str = "dev") -> dict[str, Any]:
    """schema.json as training writes it for the fraud model: the stack's schema plus String categories."""
    doc = feature_schema(stack_files.load(f"{TEAM}-{env}"), MODEL)
    for entry in doc["features"]:
        if entry["type"] == "String":
            entry["categories"] = CATEGORIES[entry["name"]]
    return doc


def artifact(schema: dict[str, Any], *, version: int) -> bytes:
    """A model.tar.gz with the members promotion reads (schema.json, metadata.json) and a stand-in model."""
    members = {
        "schema.json": json.dumps(schema).encode(),
        "metadata.json": json.dumps({"format_version": 1, "model_name": MODEL, "model_version": str(version)}).encode(),
        "model.pt": b"not a real TorchScript module: promotion copies bytes, it never loads them",
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@dataclass
class Environment:
    """One environment's registry group and artifacts bucket, in its own account."""

    name: str
    session: boto3.Session
    group: str = ""
    bucket: str = ""
    packages: dict[int, str] = field(default_factory=dict)

    @cached_property
    def sagemaker(self) -> Any:
        return self.session.client("sagemaker")

    @cached_property
    def s3(self) -> Any:
        return self.session.client("s3")

    def register(
        self, *, metrics: dict[str, float], approved: bool = True, schema: dict[str, Any] | None = None,
        faced: list[Faced] | None = None, shared: dict[str, float] | None = None,
    ) -> int:
        """Upload an artifact and metrics.json at the next version's path and register it there. With `faced`,
        also an evaluation.json that scored it (figures `shared`, default `metrics`) against those champions,
        named by the package's mlops:evaluation."""
        version = len(self.sagemaker.list_model_packages(ModelPackageGroupName=self.group)["ModelPackageSummaryList"]) + 1
        prefix = f"models/{MODEL}/{version}"
        extra = {}
        if faced:
            document = evaluation_document(candidate_url=f"s3://{self.bucket}/{prefix}/model.tar.gz", candidate=shared or metrics, faced=faced)
            self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/evaluation/evaluation.json", Body=document.encode())
            extra[lineage.EVALUATION] = f"s3://{self.bucket}/{prefix}/evaluation/evaluation.json"
        self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/model.tar.gz", Body=artifact(schema or model_schema(), version=version))
        self.s3.put_object(Bucket=self.bucket, Key=f"{prefix}/metrics.json", Body=json.dumps({"task": "binary_classification", **metrics}).encode())
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=self.group,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{self.bucket}/{prefix}/model.tar.gz"}],
                "SupportedContentTypes": ["application/json", "text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{self.bucket}/{prefix}/metrics.json"}}},
            ModelApprovalStatus="Approved" if approved else "PendingManualApproval",
            CustomerMetadataProperties={**{f"metric_{k}": repr(float(v)) for k, v in metrics.items()}, "model_name": MODEL, "model_version": str(version), **extra},
        )["ModelPackageArn"]
        assert arn.endswith(f"/{version}"), arn
        self.packages[version] = arn
        return version

    def url(self, version: int) -> str:
        return f"s3://{self.bucket}/models/{MODEL}/{version}/model.tar.gz"

    def faced(self, version: int, metrics: dict[str, float] = CHAMPION_METRICS) -> Faced:
        """Version `version` of this environment as a champion an evaluation faced, with `metrics` on the slice."""
        return Faced(self.url(version), dict(metrics))

    def describe(self, version: int) -> dict[str, Any]:
        arn = next(s["ModelPackageArn"] for s in self.sagemaker.list_model_packages(ModelPackageGroupName=self.group)["ModelPackageSummaryList"] if s["ModelPackageVersion"] == version)
        return self.sagemaker.describe_model_package(ModelPackageName=arn)

    def versions(self) -> list[int]:
        return sorted(s["ModelPackageVersion"] for s in self.sagemaker.list_model_packages(ModelPackageGroupName=self.group)["ModelPackageSummaryList"])

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []))


def build_world() -> dict[str, Environment]:
    """Groups and buckets in every environment, staging and prod holding the versions their stack files pin."""
    world = {}
    for env, account in ACCOUNTS.items():
        e = Environment(env, session(env), group=f"{TEAM}-{env}-{MODEL}", bucket=f"{TEAM}-{env}-artifacts-{account}")
        e.sagemaker.create_model_package_group(ModelPackageGroupName=e.group)
        e.s3.create_bucket(Bucket=e.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        world[env] = e
    # The champions the shipped stack files pin: staging v1 (candidate v2 in shadow), prod v1 and v2.
    for env in ("staging", "prod"):
        world[env].register(metrics=CHAMPION_METRICS, schema=model_schema(env))
        world[env].register(metrics={"auc": 0.885, "log_loss": 0.34, "accuracy": 0.9}, schema=model_schema(env))
    return world
