"""The retraining starter: the Lambda function between a model's triggers (its drift and quality
alarms through EventBridge, its schedule through EventBridge Scheduler) and its SageMaker pipeline,
so that one event starts at most one run and events arriving while a run is in flight start none.

`handler(event, context)`: lists the pipeline's executions newest first; if one is `Executing` or
`Stopping`, the event is coalesced into it (nothing is started); otherwise StartPipelineExecution with
the pipeline parameter `Trigger` (alarm | schedule), a description naming the alarm or the schedule,
and a ClientRequestToken and display name derived from the event, so a redelivered event (EventBridge
and Lambda retry asynchronous deliveries) starts nothing twice. The function runs with reserved
concurrency 1: Lambda queues the asynchronous invocations beyond it, so the check-then-start never
races with itself. Every decision is one JSON log line and the return value.

Environment: PIPELINE_NAME (required).

Must not import: anything of the project (shipped alone to Lambda; stdlib and boto3 only).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from typing import Any

TRIGGER_PARAMETER = "Trigger"
"""The pipeline parameter naming what started a run (specs.pipelines.retraining.TRIGGER_PARAMETER)."""
IN_FLIGHT = ("Executing", "Stopping")
"""Execution states that mean a run is in flight: a new event joins it instead of starting another."""
SCHEDULE_SOURCE = "mlops.schedule"
"""`source` of the input the schedule sends (EventBridge Scheduler fills the <aws.scheduler.*> fields)."""
RECENT = 50
"""How many of the newest executions are checked for a run in flight or an earlier delivery."""


class EventError(ValueError):
    """An event the starter does not know how to turn into a run."""


def trigger_of(event: dict[str, Any]) -> dict[str, str]:
    """What `event` asks for: kind (alarm | schedule), what fired (alarm name or schedule ARN), and the
    delivery id that is the same on every redelivery of the event."""
    if event.get("source") == "aws.cloudwatch" and event.get("detail-type") == "CloudWatch Alarm State Change":
        detail = event.get("detail") or {}
        state = (detail.get("state") or {}).get("value")
        if state != "ALARM":
            raise EventError(f"alarm {detail.get('alarmName')!r} entered {state!r}; only ALARM starts a run")
        if not event.get("id") or not detail.get("alarmName"):
            raise EventError("alarm state change without 'id' or 'detail.alarmName'")
        return {"kind": "alarm", "source": detail["alarmName"], "delivery": event["id"]}
    if event.get("source") == SCHEDULE_SOURCE:
        schedule, time = event.get("schedule_arn"), event.get("scheduled_time")
        if not schedule or not time:
            raise EventError("schedule input without 'schedule_arn' or 'scheduled_time'")
        # Scheduler's execution-id changes on each attempt; the scheduled time does not.
        return {"kind": "schedule", "source": schedule, "delivery": f"{schedule}@{time}"}
    raise EventError(
        f"unknown event (source {event.get('source')!r}, detail-type {event.get('detail-type')!r}); allowed: "
        f"a CloudWatch Alarm State Change from EventBridge, or the schedule's input with source {SCHEDULE_SOURCE!r}"
    )


def display_name(trigger: dict[str, str]) -> str:
    """The execution's display name: the kind and a digest of the delivery id (the API allows 82
    characters of [a-zA-Z0-9-]), so a redelivery is recognisable in the execution list."""
    digest = hashlib.sha256(trigger["delivery"].encode()).hexdigest()[:24]
    return f"{trigger['kind']}-{digest}"


def request_token(trigger: dict[str, str]) -> str:
    """StartPipelineExecution's ClientRequestToken (32 to 128 characters): the delivery id's sha256."""
    return hashlib.sha256(trigger["delivery"].encode()).hexdigest()


def _recent_executions(sagemaker: Any, pipeline: str) -> list[dict[str, Any]]:
    page = sagemaker.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=RECENT,
    )
    summaries = page.get("PipelineExecutionSummaries", [])
    return sorted(summaries, key=lambda s: s["StartTime"], reverse=True)


def start_or_coalesce(event: dict[str, Any], *, pipeline: str, sagemaker: Any) -> dict[str, Any]:
    """The starter's decision for `event`, taken with the `sagemaker` client: coalesced into the run in
    flight, a duplicate of an earlier delivery, or a started run. Raises EventError for an event it
    cannot read (Lambda then retries and finally hands it to the on-failure destination)."""
    trigger = trigger_of(event)
    name = display_name(trigger)
    base = {"pipeline": pipeline, "trigger": trigger["kind"], "source": trigger["source"], "delivery": trigger["delivery"]}
    executions = _recent_executions(sagemaker, pipeline)
    for summary in executions:
        if summary.get("PipelineExecutionDisplayName") == name:
            return {**base, "decision": "duplicate", "execution": summary["PipelineExecutionArn"]}
    for summary in executions:
        if summary.get("PipelineExecutionStatus") in IN_FLIGHT:
            return {**base, "decision": "coalesced", "coalesced_into": summary["PipelineExecutionArn"]}
    what = f"alarm {trigger['source']}" if trigger["kind"] == "alarm" else f"schedule {trigger['source']}"
    response = sagemaker.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=name,
        PipelineExecutionDescription=f"Started by {what} (delivery {trigger['delivery']})"[:3072],
        PipelineParameters=[{"Name": TRIGGER_PARAMETER, "Value": trigger["kind"]}],
        ClientRequestToken=request_token(trigger),
    )
    return {**base, "decision": "started", "execution": response["PipelineExecutionArn"]}


def _pipeline_name(environ: Any) -> str:
    name = environ.get("PIPELINE_NAME", "")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", name):
        raise EventError(f"PIPELINE_NAME must name a SageMaker pipeline ([a-zA-Z0-9-], 1-256 characters), got {name!r}")
    return name


def run(event: dict[str, Any], *, environ: Any, sagemaker: Any, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """The handler's work with its environment and SageMaker client given: decide, log the decision as
    one JSON line (`log`: stdout, which Lambda sends to CloudWatch Logs), return it. `mlops local` calls
    this with the function's configured environment, a client of the local AWS endpoint and the
    function's local log file."""
    try:
        result = start_or_coalesce(event, pipeline=_pipeline_name(environ), sagemaker=sagemaker)
    except EventError as exc:
        log(json.dumps({"level": "ERROR", "message": "unusable retraining trigger", "error": str(exc)}, sort_keys=True))
        raise
    log(json.dumps({"level": "INFO", "message": "retraining trigger", **result}, sort_keys=True))
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point."""
    import boto3  # Lambda's runtime provides it; imported here so the module loads without it

    return run(event, environ=os.environ, sagemaker=boto3.client("sagemaker"))
