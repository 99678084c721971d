"""What EventBridge, EventBridge Scheduler and Lambda do in the cloud, done locally.

moto stores EventBridge rules, schedules and Lambda functions but delivers no events and invokes no
function (Invoke would need Docker). Locally, an alarm state change becomes the event CloudWatch would
emit, it is matched against the realized rules' event patterns, and a matching rule's Lambda target is
invoked by running the function's own code in this process (`invoke`), with the function's configured
environment and a client of the local AWS endpoint, one invocation at a time per function: the reserved
concurrency of 1 the retraining starter has in the cloud. `scheduled_input` is what a schedule sends
its target when it fires.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import importlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def matches(pattern: Any, event: Any) -> bool:
    """EventBridge pattern matching for exact-value patterns: every key of the pattern must be in the
    event; a list matches when the event's value (or one of its values) is in it; objects recurse."""
    if isinstance(pattern, dict):
        return isinstance(event, dict) and all(key in event and matches(value, event[key]) for key, value in pattern.items())
    if isinstance(pattern, list):
        values = event if isinstance(event, list) else [event]
        return any(v in pattern for v in values)
    return pattern == event


def alarm_state_change(*, alarm_name: str, old: str, new: str, reason: str, region: str, account: str) -> dict[str, Any]:
    """The event CloudWatch sends to EventBridge when an alarm changes state."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm_name}"],
        "detail": {"alarmName": alarm_name, "state": {"value": new, "reason": reason}, "previousState": {"value": old}},
    }


@dataclass(frozen=True)
class Delivery:
    """A rule that matched an event, and the target it would invoke."""

    rule: str
    target_arn: str
    pipeline_parameters: dict[str, str]

    @property
    def function(self) -> str | None:
        """The Lambda function's name when the target is one."""
        found = FUNCTION_ARN.match(self.target_arn)
        return found.group(1) if found else None


def deliveries(events: Any, event: dict[str, Any]) -> list[Delivery]:
    """The targets EventBridge would invoke for `event`, from the rules stored in `events` (boto3 client)."""
    found = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            pattern = rule.get("EventPattern")
            if not pattern or rule.get("State", "ENABLED") != "ENABLED" or not matches(json.loads(pattern), event):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                params = {p["Name"]: p["Value"] for p in (target.get("SageMakerPipelineParameters") or {}).get("PipelineParameterList", [])}
                found.append(Delivery(rule["Name"], target["Arn"], params))
    return found


FUNCTION_ARN = re.compile(r"^arn:aws:lambda:[^:]+:\d{12}:function:([^:]+)$")
RUNNABLE = {"retrain_starter.handler": "functions.retrain_starter"}
"""Lambda handlers `invoke` can run in process -> their module (each has `run(event, environ=, sagemaker=)`)."""

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _function_lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


def invoke(function: str, event: dict[str, Any], *, client: Callable[[str], Any], log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Invoke the Lambda function `function` (name) on `event` as Lambda would, returning what its
    handler returned: its configuration (handler, environment) is read from the local endpoint and its
    code runs in this process with `client(service)`'s boto3 clients, writing its log lines to `log`. Invocations of one function run
    one at a time (the starter's reserved concurrency of 1; Lambda queues the others). ValueError
    for a handler that cannot run locally, naming those that can."""
    config = client("lambda").get_function_configuration(FunctionName=function)
    handler = config["Handler"]
    if handler not in RUNNABLE:
        raise ValueError(f"function {function!r} has handler {handler!r}; locally runnable handlers: {sorted(RUNNABLE)}")
    module = importlib.import_module(RUNNABLE[handler])
    environ = (config.get("Environment") or {}).get("Variables", {})
    with _function_lock(function):
        return module.run(event, environ=environ, sagemaker=client("sagemaker"), log=log)


def scheduled_input(scheduler: Any, name: str, *, scheduled_time: datetime, attempt: int = 1) -> tuple[str, dict[str, Any]]:
    """(target ARN, input) that the schedule `name` sends when it fires at `scheduled_time`: its
    target's Input with Scheduler's <aws.scheduler.*> context attributes filled in."""
    schedule = scheduler.get_schedule(Name=name)
    target = schedule["Target"]
    values = {
        "<aws.scheduler.schedule-arn>": schedule["Arn"],
        "<aws.scheduler.scheduled-time>": scheduled_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    text = target.get("Input") or "{}"
    for keyword, value in values.items():
        text = text.replace(keyword, value)
    return target["Arn"], json.loads(text)
