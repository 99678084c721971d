"""What EventBridge and SageMaker Pipelines do in the cloud, done locally.

moto stores EventBridge rules and SageMaker pipelines but delivers no events and runs no pipeline.
Locally, an alarm state change becomes the event CloudWatch would emit, it is matched against the
realized rules' event patterns, and a matching rule's SageMaker pipeline target is started by
running the pipeline's Training step (a CreateTrainingJob request) with the training container's
entry point: the same arguments SageMaker would use, channels fetched from the local S3.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import uuid
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
