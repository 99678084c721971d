"""The retraining starter (functions/retrain_starter.py) on moto's server, delivered to the way
`mlops local` delivers EventBridge and Scheduler events (mlops.local.events): one run per event, none
while a run is in flight, none twice for a redelivered event; every request it sends is valid by
botocore's service model."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from botocore import xform_name

from components.retraining import SCHEDULE_INPUT
from functions import retrain_starter
from mlops.local.events import alarm_state_change, deliveries, invoke, scheduled_input
from mlops.local.realize import ApiCall, deployment_package
from specs.pipelines.retraining import retrain_event_pattern

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
PIPELINE = "t-dev-fraud-train"
FUNCTION = "t-dev-fraud-retrain-starter"
ALARMS = ["t-dev-scoring-champion-drift-max-feature-psi", "t-dev-scoring-champion-drift-prediction-psi"]
CODE = {"archive": {"retrain_starter.py": {"file": "functions/retrain_starter.py", "sha256": __import__("hashlib").sha256(
    open(retrain_starter.__file__, "rb").read()).hexdigest()}}}


def _set_status(arn: str, status: str) -> None:
    """What SageMaker does as a run goes on; moto's executions are born Succeeded."""
    from moto.backends import get_backend

    pipeline = get_backend("sagemaker")[ACCOUNT][REGION].pipelines[PIPELINE]
    pipeline.pipeline_executions[arn].pipeline_execution_status = status


class Local:
    """Clients of the moto server shared by every delivery, recording each request the starter sends."""

    def __init__(self, *, executing_on_start: bool) -> None:
        self.clients = {s: boto3.client(s, region_name=REGION) for s in ("sagemaker", "lambda", "events", "scheduler", "iam")}
        self.sent: list[ApiCall] = []
        self._guard = threading.Lock()
        events = self.clients["sagemaker"].meta.events
        events.register("before-parameter-build.sagemaker", self._record)
        if executing_on_start:  # in SageMaker a started run is Executing at once
            events.register("after-call.sagemaker.StartPipelineExecution",
                            lambda parsed, **_: _set_status(parsed["PipelineExecutionArn"], "Executing"))

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._guard:
            self.sent.append(ApiCall("sagemaker", xform_name(model.name), dict(params)))

    def client(self, service: str) -> Any:
        return self.clients[service]

    def starts(self) -> list[ApiCall]:
        return [c for c in self.sent if c.operation == "start_pipeline_execution"]

    def executions(self) -> list[dict[str, Any]]:
        return self.clients["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def _deploy(local: Local) -> None:
    """What `mlops local up` realizes for the trigger part of one model."""
    c = local.client
    role = c("iam").create_role(RoleName="t-dev-fraud-retrain", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    c("sagemaker").create_pipeline(PipelineName=PIPELINE, RoleArn=role, ClientRequestToken="t" * 32, PipelineDefinition=json.dumps(
        {"Version": "2020-12-01", "Parameters": [{"Name": "Trigger", "Type": "String", "DefaultValue": "manual"}], "Steps": []}))
    function = c("lambda").create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="retrain_starter.handler",
        Code={"ZipFile": deployment_package(CODE)}, Environment={"Variables": {"PIPELINE_NAME": PIPELINE}})["FunctionArn"]
    c("lambda").put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=1)
    c("events").put_rule(Name="t-dev-fraud-retrain", EventPattern=json.dumps(retrain_event_pattern(ALARMS)))
    c("events").put_targets(Rule="t-dev-fraud-retrain", Targets=[{"Id": "starter", "Arn": function}])
    c("scheduler").create_schedule(Name="t-dev-fraud-scheduled-retrain", ScheduleExpression="cron(0 3 ? * MON *)",
                                   FlexibleTimeWindow={"Mode": "OFF"},
                                   Target={"Arn": function, "RoleArn": role, "Input": json.dumps(SCHEDULE_INPUT)})


def _alarm(name: str) -> dict[str, Any]:
    return alarm_state_change(alarm_name=name, old="OK", new="ALARM", reason="psi 0.41 > 0.2", region=REGION, account=ACCOUNT)


def _deliver(local: Local, event: dict[str, Any]) -> list[dict[str, Any]]:
    """EventBridge: every matching rule's Lambda target, invoked with the event."""
    return [invoke(d.function, event, client=local.client) for d in deliveries(local.client("events"), event) if d.function]


def _tick(local: Local, at: datetime) -> dict[str, Any]:
    arn, event = scheduled_input(local.client("scheduler"), "t-dev-fraud-scheduled-retrain", scheduled_time=at)
    return invoke(arn.rsplit(":", 1)[1], event, client=local.client)


@pytest.fixture
def local(aws) -> Local:
    made = Local(executing_on_start=True)
    _deploy(made)
    return made


def test_two_alarms_of_one_drift_and_a_schedule_tick_while_a_run_is_in_flight_start_one_run(local):
    first, second = (_alarm(name) for name in ALARMS)
    (started,) = _deliver(local, first)
    assert started["decision"] == "started" and started["trigger"] == "alarm"
    (joined,) = _deliver(local, second)
    ticked = _tick(local, datetime(2026, 12, 7, 3, tzinfo=timezone.utc))
    assert [(joined["decision"], joined["coalesced_into"]), (ticked["decision"], ticked["coalesced_into"])] == [
        ("coalesced", started["execution"]), ("coalesced", started["execution"])]
    assert (joined["trigger"], ticked["trigger"]) == ("alarm", "schedule")
    (start,) = local.starts()
    assert start.params["PipelineParameters"] == [{"Name": "Trigger", "Value": "alarm"}]
    assert ALARMS[0] in start.params["PipelineExecutionDescription"]
    assert [e["PipelineExecutionArn"] for e in local.executions()] == [started["execution"]]


def test_concurrent_deliveries_are_serialised_so_exactly_one_starts(local):
    events = [_alarm(ALARMS[0]), _alarm(ALARMS[1]), _alarm(ALARMS[0]), _alarm(ALARMS[1])]
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        results = [r for rs in pool.map(lambda e: _deliver(local, e), events) for r in rs]
    assert sorted(r["decision"] for r in results) == ["coalesced", "coalesced", "coalesced", "started"]
    assert len(local.starts()) == 1 and len(local.executions()) == 1


def test_after_the_run_ends_a_new_event_starts_a_new_run_for_the_schedule(local):
    (first,) = _deliver(local, _alarm(ALARMS[0]))
    _set_status(first["execution"], "Succeeded")
    ticked = _tick(local, datetime(2026, 12, 7, 3, tzinfo=timezone.utc))
    assert ticked["decision"] == "started" and ticked["execution"] != first["execution"]
    assert [c.params["PipelineParameters"] for c in local.starts()] == [
        [{"Name": "Trigger", "Value": "alarm"}], [{"Name": "Trigger", "Value": "schedule"}]]
    assert "t-dev-fraud-scheduled-retrain" in local.starts()[1].params["PipelineExecutionDescription"]


def test_a_redelivered_event_starts_nothing_twice(local):
    event = _alarm(ALARMS[0])
    (first,) = _deliver(local, event)
    _set_status(first["execution"], "Failed")  # the run is over: only the delivery id tells a retry apart
    (again,) = _deliver(local, event)
    assert (again["decision"], again["execution"]) == ("duplicate", first["execution"])
    (start,) = local.starts()
    # The token SageMaker deduplicates on is the event id's digest: the same on every retry.
    assert start.params["ClientRequestToken"] == retrain_starter.request_token({"kind": "alarm", "source": ALARMS[0], "delivery": event["id"]})


def test_a_schedule_retry_is_the_same_delivery_though_schedulers_execution_id_changes(local):
    at = datetime(2026, 12, 7, 3, tzinfo=timezone.utc)
    first = _tick(local, at)
    _set_status(first["execution"], "Succeeded")
    assert _tick(local, at)["decision"] == "duplicate"
    assert _tick(local, datetime(2026, 12, 14, 3, tzinfo=timezone.utc))["decision"] == "started"


def test_every_request_the_starter_sends_is_valid_by_botocores_model(local, request_problems):
    local.sent.clear()  # the deployment's own requests
    (first,) = _deliver(local, _alarm(ALARMS[0]))
    _deliver(local, _alarm(ALARMS[1]))
    _set_status(first["execution"], "Succeeded")
    _tick(local, datetime(2026, 12, 7, 3, tzinfo=timezone.utc))
    assert {c.operation for c in local.sent} == {"list_pipeline_executions", "start_pipeline_execution"}
    assert {(c.operation, i): request_problems(c) for i, c in enumerate(local.sent)} == {(c.operation, i): [] for i, c in enumerate(local.sent)}


def test_events_the_starter_cannot_read_fail_loudly_naming_what_is_allowed(local):
    ok = _alarm(ALARMS[0])
    with pytest.raises(retrain_starter.EventError, match="only ALARM starts a run"):
        invoke(FUNCTION, {**ok, "detail": {**ok["detail"], "state": {"value": "OK"}}}, client=local.client)
    with pytest.raises(retrain_starter.EventError, match="allowed: a CloudWatch Alarm State Change"):
        invoke(FUNCTION, {"source": "aws.s3"}, client=local.client)
    with pytest.raises(retrain_starter.EventError, match="PIPELINE_NAME"):
        retrain_starter.run(ok, environ={}, sagemaker=local.client("sagemaker"))
    assert local.starts() == []


def test_only_known_handlers_run_locally(local):
    c = local.client
    role = c("iam").get_role(RoleName="t-dev-fraud-retrain")["Role"]["Arn"]
    c("lambda").create_function(FunctionName="other", Runtime="python3.12", Role=role, Handler="other.handler",
                                Code={"ZipFile": deployment_package(CODE)})
    with pytest.raises(ValueError, match=r"locally runnable handlers: \['retrain_starter.handler'\]"):
        invoke("other", _alarm(ALARMS[0]), client=local.client)


def test_lambdas_entry_point_reads_its_environment_and_the_ambient_aws(local, monkeypatch, capsys):
    """handler(event, context) as Lambda calls it: PIPELINE_NAME from the environment, boto3's default
    client (here pointed at moto through AWS_ENDPOINT_URL), one JSON log line."""
    monkeypatch.setenv("PIPELINE_NAME", PIPELINE)
    result = retrain_starter.handler(_alarm(ALARMS[0]), None)
    assert result["decision"] == "started"
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"level": "INFO", "message": "retraining trigger", **result}
    assert [e["PipelineExecutionArn"] for e in local.executions()] == [result["execution"]]
