"""SageMaker Pipelines executions on the local AWS endpoint (mlops.local.aws_server): moto records them,
this module runs them.

moto's StartPipelineExecution only records an execution, already Succeeded, and moto has no
ListPipelineExecutionSteps. Here:
- StartPipelineExecution (validated against botocore's model) goes to moto, then the execution is set
  `Executing` in moto's backend before the answer leaves, and `mlops.local.pipeline_exec` runs it on a
  thread of the server process; when it ends moto's record gets its final status. A caller polling
  DescribePipelineExecution or ListPipelineExecutions therefore sees `Executing` from the moment the
  start returns until the run ends (a starter that coalesces triggers relies on it).
- `ClientRequestToken` makes the start idempotent, as AWS documents: the same token again, for the same
  pipeline, returns the execution it started and starts nothing.
- DescribePipelineExecution and ListPipelineExecutions report the executor's FailureReason (moto's
  is always empty); ListPipelineExecutionSteps is answered from the executor's record.
Each run's files (downloaded inputs, logs, execution.json) live under
`<state dir>/pipelines/<pipeline>/<execution id>/`.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from specs.pipelines import expressions
from mlops.local.featurestore import FeatureStoreError, ValidationError
from mlops.local.pipeline_exec import EXECUTING, Execution, PipelineExecutor


class ResourceNotFound(FeatureStoreError):
    """SageMaker's ResourceNotFound (HTTP 400 on its JSON protocol)."""

    code = "ResourceNotFound"
    status = 400


def _epoch(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class PipelineRuns:
    """Executions started through the endpoint: their records, threads and idempotency tokens."""

    def __init__(self, *, state_dir: Path, endpoint_url: str):
        self.state_dir = state_dir
        self.endpoint_url = endpoint_url
        self._lock = threading.Lock()
        self._records: dict[str, Execution] = {}
        self._tokens: dict[tuple[str, str, str, str], str] = {}
        self._threads: list[threading.Thread] = []

    def reset(self) -> None:
        """Forget every record (moto's backends were reset); runs in flight finish unobserved."""
        with self._lock:
            self._records.clear()
            self._tokens.clear()

    def known(self, *, account: str, region: str, pipeline: str, token: str | None) -> str | None:
        """The execution a ClientRequestToken already started, if any."""
        if not token:
            return None
        with self._lock:
            return self._tokens.get((account, region, pipeline, token))

    def started(self, arn: str, *, account: str, region: str, access_key: str, token: str | None,
                parameters: list[dict[str, str]]) -> None:
        """moto has recorded `arn`: mark it Executing and run it on a thread."""
        from moto.sagemaker.models import sagemaker_backends

        pipeline_name = arn.split(":pipeline/", 1)[1].split("/execution/")[0]
        fake = sagemaker_backends[account][region].pipelines[pipeline_name].pipeline_executions[arn]
        fake.pipeline_execution_status = EXECUTING
        execution = Execution(arn=arn)
        with self._lock:
            self._records[arn] = execution
            if token:
                self._tokens[(account, region, pipeline_name, token)] = arn
        thread = threading.Thread(target=self._run, name=f"pipeline-{arn.rsplit('/', 1)[1]}", daemon=True,
                                  kwargs=dict(fake=fake, execution=execution, region=region, access_key=access_key,
                                              parameters=parameters, pipeline_name=pipeline_name))
        self._threads.append(thread)
        thread.start()

    def _run(self, *, fake: Any, execution: Execution, region: str, access_key: str, parameters: list[dict[str, str]],
             pipeline_name: str) -> None:
        execution_id = execution.arn.rsplit("/", 1)[1]
        run_dir = self.state_dir / "pipelines" / pipeline_name / execution_id

        def on_change(current: Execution) -> None:
            if current.status != EXECUTING:
                fake.pipeline_execution_failure_reason = current.failure_reason
                fake.last_modified_time = datetime.now(UTC)
                fake.pipeline_execution_status = current.status

        try:
            definition = json.loads(fake.pipeline_definition_for_execution or "")
            declared = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
            context = expressions.Context(
                execution={
                    "PipelineExecutionId": execution_id, "PipelineExecutionArn": execution.arn, "PipelineName": pipeline_name,
                    "StartDateTime": fake.start_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "CurrentDateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
                parameters={**declared, **{p["Name"]: p["Value"] for p in parameters or []}},
            )
            session = boto3.Session(aws_access_key_id=access_key, aws_secret_access_key="local", region_name=region)
            aws_env = {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": "local",
                       "AWS_DEFAULT_REGION": region, "AWS_REGION": region}
            PipelineExecutor(definition, execution=execution, context=context, run_dir=run_dir,
                             s3=session.client("s3", endpoint_url=self.endpoint_url),
                             sagemaker=session.client("sagemaker", endpoint_url=self.endpoint_url),
                             aws_env=aws_env, on_change=on_change).run()
        except Exception as exc:  # the execution must end, with the reason, whatever went wrong
            traceback.print_exc()
            if execution.status == EXECUTING:
                execution.status, execution.failure_reason = "Failed", f"local executor error: {type(exc).__name__}: {exc}"
                on_change(execution)

    def failure_reason(self, arn: str) -> str | None:
        with self._lock:
            record = self._records.get(arn)
        return None if record is None else record.failure_reason

    def list_steps(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListPipelineExecutionSteps from the executor's record (newest first unless SortOrder=Ascending)."""
        arn = params.get("PipelineExecutionArn")
        if not arn:
            raise ValidationError("PipelineExecutionArn is required to list the steps of an execution locally")
        with self._lock:
            record = self._records.get(arn)
            steps = list(record.steps) if record is not None else None
        if steps is None:
            raise ResourceNotFound(f"Pipeline execution {arn} does not exist")
        if params.get("SortOrder", "Descending") == "Descending":
            steps.reverse()
        out = []
        for step in steps:
            item: dict[str, Any] = {"StepName": step.name, "StartTime": _epoch(step.start), "StepStatus": step.status,
                                    "Metadata": step.metadata}
            if step.end is not None:
                item["EndTime"] = _epoch(step.end)
            if step.failure_reason:
                item["FailureReason"] = step.failure_reason
            out.append(item)
        return {"PipelineExecutionSteps": out}
