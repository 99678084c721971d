"""Every AWS request the readouts send is valid for botocore's service model (types, required members,
patterns, ranges, enums); and a local stack is read from its running local environment, with captures
uploaded by `LocalStack.upload_captures` and labels by `LocalStack.put_ground_truth`."""
from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.validate import ParamValidator
from typer.testing import CliRunner

from experiment_world import AB_TRAFFIC, REGION, SHADOW_TRAFFIC
from mlops.cli import app
from mlops.experiment.readouts import ab_readout, shadow_readout
from mlops.local.environment import STATE_ROOT_ENV
from mlops_contracts import capture as wire
from mlops_contracts import experiment as contract
from mlops_serving.capture import CaptureWriter


class Recorder:
    """boto3 clients that record each request's operation and parameters as they are sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            client = boto3.client(service, region_name=REGION)
            client.meta.events.register("provide-client-params.*.*", self._record)
            self._clients[service] = client
        return self._clients[service]

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model, dict(params)))


def test_every_request_of_both_readouts_is_valid_for_the_service_model(stacks, world, aws_request_checks):
    checks = aws_request_checks
    recorder = Recorder()
    world.capture("champion", {"r1": [0.2]}, when=time.time())
    world.ground_truth({"r1": [0]}, at=datetime.now(UTC))
    shadow_readout(stacks({"traffic": SHADOW_TRAFFIC}), endpoint="scoring", variant=None, since=None, client=recorder)
    ab_readout(stacks({"traffic": AB_TRAFFIC}), endpoint="scoring", since=datetime(2026, 1, 1, tzinfo=UTC), client=recorder)
    operations = {model.name for model, _ in recorder.calls}
    assert operations == {"ListObjectsV2", "GetObject", "GetMetricStatistics"}
    for model, params in recorder.calls:
        report = ParamValidator().validate(params, model.input_shape)
        assert not report.has_errors(), report.generate_report()
        assert checks.constraint_problems(params, model.input_shape, model.name) == []


@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """demo-local's embedded AWS alone (no router, no variants), its state in a temporary folder."""
    from mlops.local.stack import LocalStack

    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path / "state"))
    stack = LocalStack("demo-local")
    stack.env.start_moto()
    try:
        s3 = stack.client("s3")
        for kind in ("capture", "features"):
            where = {} if stack.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": stack.region}}
            s3.create_bucket(Bucket=stack.namer.bucket(kind), **where)
        yield stack
    finally:
        stack.env.down()


def test_a_local_stack_is_read_from_its_running_local_environment(local_stack):
    endpoint = local_stack.namer.endpoint("scoring")
    rng = random.Random(11)
    labels: dict[str, list[int]] = {}
    for variant in ("champion", "challenger"):
        writer = CaptureWriter(root=local_stack.env.dir / "captures", endpoint=endpoint, variant=variant, flush_interval_s=0.01)
        writer.start()
        for i in range(60):
            key, y = f"{variant}-{i}", int(rng.random() < 0.5)
            labels[key] = [y]
            writer.offer(when=time.time(), inference_id=key, custom_attributes=None, input_type="application/json",
                         input_encoding=wire.ENCODING_JSON, input_body=b"{}", output_type="application/json",
                         output_encoding=wire.ENCODING_JSON, output_body=b'{"predictions": [%.3f]}' % (0.3 + 0.4 * y + rng.gauss(0, 0.2)))
        writer.stop()
    assert local_stack.upload_captures(endpoint) == 2
    local_stack.put_ground_truth("fraud-detector", labels, at=datetime.now(UTC))
    result = CliRunner().invoke(app, ["experiment", "ab", "-s", "demo-local", "--endpoint", "scoring", "--json", "-",
                                      "--out", str(local_stack.env.dir / "report")])
    assert result.exit_code == 0, result.output
    doc = contract.parse(json.loads(result.stdout))
    assert [(v.name, v.captured, v.labelled) for v in doc.variants] == [("champion", 60, 60), ("challenger", 60, 60)]
    assert doc.recommendation == "keep"  # 60 labelled rows each, 200 needed first (min_labelled_per_variant)
    result = CliRunner().invoke(app, ["experiment", "shadow", "-s", "demo-local", "--endpoint", "scoring"])
    assert result.exit_code == 2 and "no shadow variant" in result.output


def test_a_local_stack_that_is_not_running_is_a_configuration_error(tmp_path, monkeypatch):
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path / "state"))
    result = CliRunner().invoke(app, ["experiment", "ab", "-s", "demo-local", "--endpoint", "scoring"])
    assert result.exit_code == 2 and "mlops local up -s demo-local" in result.output
