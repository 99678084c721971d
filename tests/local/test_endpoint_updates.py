"""UpdateEndpoint through the local AWS endpoint (mlops.local.endpoint_updates): boto3 against the real
aws_server process, the update run by a router (stub fleets) that the process finds in the state
directory's process file; DescribeEndpoint moves through `Updating` to `InService` on the new
configuration, or back to the old one with the rollback's FailureReason, as SageMaker reports it; the
requests SageMaker refuses are refused with its error."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from router_stubs import Stub

from mlops.local import bluegreen
from mlops.local.router import Route, Router, VariantTarget, make_server

ENDPOINT = "t-dev-updates"
CEILING_S = 60.0
ROLE = "arn:aws:iam::123456789012:role/hosting"


class Gate:
    """The rollback-alarm check of the update: blocks on each check until the test opens it, then
    reports the alarms the test set as firing."""

    def __init__(self) -> None:
        self.checking, self.open, self.firing = threading.Event(), threading.Event(), []

    def __call__(self, names: list[str]) -> list[str]:
        self.checking.set()
        assert self.open.wait(CEILING_S), "the test never opened the gate"
        return [n for n in names if n in self.firing]


@pytest.fixture(scope="module")
def world(endpoint) -> Iterator[dict]:
    url, state = endpoint
    fleets = {"blue": Stub("blue"), "green": Stub("green"), "red": Stub("red", status=500)}
    sagemaker = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local",
                             aws_secret_access_key="local", config=Config(retries={"total_max_attempts": 1}))
    for name in fleets:
        sagemaker.create_model(ModelName=f"m-{name}", ExecutionRoleArn=ROLE,
                               PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1"})
        sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"m-{name}", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="blue-config")
    router = Router({ENDPOINT: Route(endpoint=ENDPOINT, production=(VariantTarget("AllTraffic", fleets["blue"].url, 1.0),))}, seed=3)
    gate = Gate()
    router.update_starter = lambda params: bluegreen.start_update(
        router, params, config=sagemaker.describe_endpoint_config(EndpointConfigName=params["EndpointConfigName"]),
        variant_urls={f"m-{n}": s.url for n, s in fleets.items()}, alarms_in_alarm=gate, evaluation_interval_s=0.05)
    server = make_server(router)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (state / "processes.json").write_text(json.dumps([{"role": "router", "pid": 0, "port": server.server_address[1], "log": ""}]))
    try:
        yield {"sagemaker": sagemaker, "router": router, "gate": gate, "state": state}
    finally:
        server.shutdown()
        router.close()
        for stub in fleets.values():
            stub.close()


def _canary(alarm: str = "t-5xx") -> dict:
    config = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 60,
                                                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
                                        "TerminationWaitInSeconds": 0},
              "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]}}
    bluegreen.validate_update_endpoint({"EndpointName": ENDPOINT, "EndpointConfigName": "x", "DeploymentConfig": config})
    return config


def _error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_describe_endpoint_reports_updating_then_in_service_on_the_new_configuration(world, monkeypatch):
    monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, "0.001")
    sagemaker, gate = world["sagemaker"], world["gate"]
    gate.checking.clear(), gate.open.clear()
    gate.firing = []
    answer = sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green-config", DeploymentConfig=_canary())
    assert answer["EndpointArn"].endswith(f":endpoint/{ENDPOINT}")
    assert gate.checking.wait(CEILING_S)  # the canary bakes: the update is under way
    during = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (during["EndpointStatus"], during["EndpointConfigName"]) == ("Updating", "blue-config")
    listed = {e["EndpointName"]: e["EndpointStatus"] for e in sagemaker.list_endpoints()["Endpoints"]}
    assert listed[ENDPOINT] == "Updating"
    code, message = _error(lambda: sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="blue-config"))
    assert code == "ValidationException" and "Cannot update in-progress endpoint" in message
    gate.open.set()
    assert world["router"].updates[ENDPOINT].wait_done(CEILING_S)
    after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", "green-config")
    assert "FailureReason" not in after
    assert after["LastDeploymentConfig"] == _canary()


def test_an_alarm_during_the_bake_leaves_the_endpoint_in_service_on_its_old_configuration_with_the_reason(world, monkeypatch):
    monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, "0.001")
    sagemaker, gate = world["sagemaker"], world["gate"]
    before = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    gate.checking.clear(), gate.open.set()
    gate.firing = ["t-red-5xx"]
    sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="red-config", DeploymentConfig=_canary("t-red-5xx"))
    assert world["router"].updates[ENDPOINT].wait_done(CEILING_S)
    after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", before)
    assert "t-red-5xx" in after["FailureReason"]


def test_update_endpoint_refuses_what_sagemaker_refuses(world):
    sagemaker = world["sagemaker"]
    code, message = _error(lambda: sagemaker.update_endpoint(EndpointName="nope", EndpointConfigName="green-config"))
    assert code == "ValidationException" and 'Could not find endpoint "arn:aws:sagemaker:us-east-1:' in message
    code, message = _error(lambda: sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="nope"))
    assert code == "ValidationException" and "Could not find endpoint configuration" in message
    slow = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "SLOW", "WaitIntervalInSeconds": 1}}}
    code, message = _error(lambda: sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green-config", DeploymentConfig=slow))
    assert code == "ValidationException" and "SLOW" in message  # botocore's enum, checked before the router sees it


def test_without_a_router_the_update_is_refused_and_the_endpoint_unchanged(world):
    sagemaker, processes = world["sagemaker"], world["state"] / "processes.json"
    saved = processes.read_text()
    processes.write_text("[]")
    try:
        before = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        code, message = _error(lambda: sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green-config"))
        assert code == "ServiceUnavailable" and "no router runs" in message
        after = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", before["EndpointConfigName"])
    finally:
        processes.write_text(saved)


def test_a_failed_rollback_reports_update_rollback_failed_and_another_update_recovers(world, monkeypatch):
    monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, "0.001")
    sagemaker, gate, router = world["sagemaker"], world["gate"], world["router"]
    finish = router.finish_shift

    def old_fleet_gone(endpoint: str, *, keep_green: bool) -> None:
        if not keep_green:
            raise RuntimeError("the old fleet is gone")
        finish(endpoint, keep_green=keep_green)

    monkeypatch.setattr(router, "finish_shift", old_fleet_gone)
    gate.open.set()
    gate.firing = ["t-red-5xx"]
    sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="red-config", DeploymentConfig=_canary("t-red-5xx"))
    assert router.updates[ENDPOINT].wait_done(CEILING_S)
    failed = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert failed["EndpointStatus"] == "UpdateRollbackFailed" and "the old fleet is gone" in failed["FailureReason"]
    monkeypatch.setattr(router, "finish_shift", finish)
    gate.firing = []
    sagemaker.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="green-config", DeploymentConfig=_canary())
    assert router.updates[ENDPOINT].wait_done(CEILING_S)
    recovered = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert (recovered["EndpointStatus"], recovered["EndpointConfigName"]) == ("InService", "green-config")
    assert "FailureReason" not in recovered
