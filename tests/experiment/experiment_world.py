"""Fixtures of the experiment readout tests: a stack whose endpoint runs a shadow or an A/B test, its
captures written by the serving container's own capture writer and uploaded to moto's S3 under the
endpoint's capture root (what `LocalStack.upload_captures` does), ground truth written with
`mlops_contracts.capture.ground_truth_line` (what `LocalStack.put_ground_truth` writes), and the
AWS/SageMaker metrics the router publishes."""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from mlops_contracts import capture as wire
from mlops_serving.capture import CaptureWriter
from specs.config import stack_files
from specs.naming import Namer
from specs.pipelines.sources import capture_root

STACK = "fraud-dev"
REGION = "eu-west-1"
URL = "s3://fraud-dev-artifacts-111111111111/models/fraud-detector/{}/model.tar.gz"


def _variant(version: int, weight: float | None = None) -> dict[str, Any]:
    found = {"model_version": version, "model_data_url": URL.format(version)}
    return found | ({"weight": weight} if weight is not None else {})


SHADOW_TRAFFIC = {"mode": "shadow", "variants": None, "production": {"champion": _variant(1)}, "shadow": {"candidate": _variant(2)}}
AB_TRAFFIC = {"mode": "ab", "variants": {"champion": _variant(1, 80), "challenger": _variant(2, 20)}}


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Any]:
    """Write fraud-dev with `scoring` overridden (RFC 7386) into a copy of stacks/; returns its config."""
    root = tmp_path / "stacks"
    shutil.copytree(stack_files.stacks_dir(), root)
    monkeypatch.setenv(stack_files.STACKS_ENV, str(root))

    def write(scoring: dict[str, Any]) -> Any:
        path = root / f"Pulumi.{STACK}.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["config"]["mlops:overrides"]["endpoints"]["scoring"].update(scoring)
        path.write_text(yaml.safe_dump(doc))
        return stack_files.load(STACK)

    return write


@pytest.fixture
def world(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator["World"]:
    for name in ("MLOPS_AWS_PROFILE_DEV", "MLOPS_AWS_ROLE_ARN_DEV"):
        monkeypatch.delenv(name, raising=False)
    yield World(tmp_path / "captures")


class World:
    """The stack's AWS on moto: buckets, captures, ground truth, CloudWatch metrics."""

    def __init__(self, local: Path) -> None:
        self.local = local
        self.namer = Namer(team="fraud", environment="dev", account_id="111111111111")
        self.s3 = boto3.client("s3", region_name=REGION)
        self.cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        for kind in ("capture", "features"):
            self.s3.create_bucket(Bucket=self.namer.bucket(kind), CreateBucketConfiguration={"LocationConstraint": REGION})

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def capture(self, variant: str, answers: Mapping[str, Sequence[float]], *, when: float) -> None:
        """Capture `answers` (inference id -> predictions) of `variant` with the serving container's
        writer, then upload the files under the endpoint's capture root."""
        endpoint = self.namer.endpoint("scoring")
        writer = CaptureWriter(root=self.local, endpoint=endpoint, variant=variant, flush_interval_s=0.01)
        writer.start()
        for key, values in answers.items():
            writer.offer(when=when, inference_id=key, custom_attributes=None, input_type="application/json",
                         input_encoding=wire.ENCODING_JSON, input_body=b'{"instances": [[1.0]]}', output_type="application/json",
                         output_encoding=wire.ENCODING_JSON, output_body=('{"predictions": [%s]}' % ", ".join(map(repr, values))).encode())
        writer.stop()
        bucket, prefix = capture_root(self.namer, "scoring")[5:].split("/", 1)
        for path in sorted((self.local / endpoint).rglob(f"*{wire.FILE_SUFFIX}")):
            self.s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(self.local / endpoint).as_posix()}")

    def ground_truth(self, labels: Mapping[str, Sequence[Any]], *, at: datetime, name: str = "labels") -> None:
        bucket, prefix = self.namer.ground_truth_uri("fraud-detector")[5:].split("/", 1)
        body = "".join(wire.ground_truth_line(k, list(v)) + "\n" for k, v in labels.items())
        key = f"{prefix}{at.astimezone(UTC).strftime(wire.HOUR_FORMAT)}/{name}{wire.FILE_SUFFIX}"
        self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())

    def serving(self, variant: str, *, requests: int, errors: int, latencies_ms: Sequence[float]) -> None:
        """What the router publishes for a variant: counts and the ModelLatency distribution (µs)."""
        dims = [{"Name": "EndpointName", "Value": self.namer.endpoint("scoring")}, {"Name": "VariantName", "Value": variant}]
        data = [{"MetricName": "Invocations", "Dimensions": dims, "Value": requests, "Unit": "Count"},
                {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Value": 0, "Unit": "Count"},
                {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": errors, "Unit": "Count"}]
        values = [v * 1000 for v in latencies_ms]
        data += [{"MetricName": "ModelLatency", "Dimensions": dims, "Values": values[i:i + 150], "Unit": "Microseconds"}
                 for i in range(0, len(values), 150)]
        self.cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)
