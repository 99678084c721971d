"""The live-quality job locally: what the QualityMonitor's MonitoringSchedule does in the cloud, run once.

moto has no CreateMonitoringSchedule, so `mlops local` cannot schedule the job. `run_quality_job` runs
the serving image's entry point (`mlops-monitor quality`) as a process over an endpoint's captures (the
directory the local containers write, in SageMaker's layout) and its model's ground truth in the local
S3 (`LocalStack.put_ground_truth` writes it), publishing LiveAUC/LiveAccuracy/... to the local
CloudWatch, then evaluates the endpoint's live-quality alarms (mlops.local.alarm_eval) as CloudWatch
would. The transitions it returns are what EventBridge would see: an ALARM matches the retraining rule
(the same rule as drift; mlops.local.events.deliveries).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_contracts import metrics as contract

from mlops.local.alarm_eval import Transition, evaluate

if TYPE_CHECKING:
    from mlops.local.stack import LocalStack

EXIT_OK, EXIT_DEGRADED = 0, 3
"""`mlops-monitor quality`'s exit statuses that mean the job ran (3: a metric crossed a threshold)."""


@dataclass(frozen=True, kw_only=True)
class QualityJob:
    """One run of the job: where it reads and writes, and for what."""

    endpoint: str
    """The AWS endpoint name (capture directory and metric dimension)."""
    captures: Path
    """Capture root holding `<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`."""
    labels: str
    """Ground truth: an s3:// prefix (or a local directory)."""
    task: str
    out: Path
    since: datetime
    until: datetime
    min_labeled: int = 100
    environment: dict[str, str]
    """The process's environment (points boto3 at the local AWS)."""

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "mlops-monitor"), "quality",
            "--captures", str(self.captures), "--labels", self.labels, "--out", str(self.out),
            "--endpoint", self.endpoint, "--task", self.task, "--start", _iso(self.since), "--end", _iso(self.until),
            "--min-labeled", str(self.min_labeled), "--publish", "cloudwatch",
        ]


def run_job(job: QualityJob) -> dict[str, Any]:
    """Run the job as a process; its report (quality_report.json). A job that did not run raises,
    with the job's own message."""
    if job.since >= job.until:
        raise ValueError(f"since={_iso(job.since)} must be before until={_iso(job.until)}")
    done = subprocess.run(job.command(), env=job.environment, capture_output=True, text=True)
    if done.returncode not in (EXIT_OK, EXIT_DEGRADED):
        raise RuntimeError(f"the quality job for {job.endpoint} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads((job.out / "quality_report.json").read_text(encoding="utf-8"))


def live_quality_alarms(cloudwatch: Any, endpoint: str) -> list[dict[str, Any]]:
    """The realized alarms on the live metrics of `endpoint` (the job's dimension value)."""
    found = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{endpoint}-", AlarmTypes=["MetricAlarm"]):
        for alarm in page["MetricAlarms"]:
            dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
            if (alarm.get("Namespace") == contract.NAMESPACE and alarm.get("MetricName", "").startswith(contract.LIVE_METRIC_PREFIX)
                    and dims.get(contract.ENDPOINT_DIMENSION) == endpoint):
                found.append(alarm)
    return found


def evaluate_live_alarms(cloudwatch: Any, endpoint: str, *, now: datetime) -> list[Transition]:
    """Evaluate only the live-quality alarms of `endpoint` (the job's doing), set and return the changes."""
    return evaluate(cloudwatch, live_quality_alarms(cloudwatch, endpoint), now=now)


def run_quality_job(stack: LocalStack, endpoint: str, since: datetime, *, until: datetime | None = None,
                    min_labeled: int = 100) -> dict[str, Any]:
    """The QualityMonitor's job for `endpoint` (its AWS name) over predictions since `since`, then its
    alarms. Returns {"endpoint", "report" (quality_report.json), "report_path", "transitions" (a list of
    alarm_eval.Transition: hand the ALARMs to the retraining rule), "alarms" (name -> state)}."""
    key = next((k for k in stack.config.endpoints if stack.namer.endpoint(k) == endpoint), None)
    if key is None:
        raise ValueError(f"stack {stack.name} has no endpoint named {endpoint}; it has "
                         + ", ".join(stack.namer.endpoint(k) for k in stack.config.endpoints))
    model = stack.config.endpoints[key].model
    spec = stack.config.model_registry.models.get(model)
    if spec is None:
        raise ValueError(f"endpoint {endpoint} serves {model!r}, which is not a model of the registry: no ground truth to join")
    until = until or datetime.now(UTC)
    job = QualityJob(
        endpoint=endpoint, captures=stack.env.dir / "captures", labels=spec.ground_truth_uri or stack.namer.ground_truth_uri(model),
        task=spec.task, out=stack.env.dir / "monitoring-quality" / until.strftime("%Y%m%dT%H%M%S"), since=since, until=until,
        min_labeled=min_labeled, environment={**os.environ, **stack.env.aws_env(stack.region)},
    )
    report = run_job(job)
    cloudwatch = stack.client("cloudwatch")
    transitions = evaluate_live_alarms(cloudwatch, endpoint, now=datetime.now(UTC))
    states = {a["AlarmName"]: a["StateValue"] for a in live_quality_alarms(cloudwatch, endpoint)}
    return {"endpoint": endpoint, "report": report, "report_path": job.out / "quality_report.json",
            "transitions": transitions, "alarms": states}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()
