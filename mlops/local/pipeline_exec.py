"""Running a stored SageMaker pipeline definition on this machine, the way SageMaker Pipelines runs it.

The executor takes the definition as CreatePipeline stored it and one execution's variables and
parameters, then runs the steps in dependency order (a step runs once every step its expressions read
and every step in its DependsOn has succeeded), resolving expressions (specs.pipelines.expressions)
just before each step:

- Processing: the job's `AppSpecification.ContainerEntrypoint + ContainerArguments` as a process (the
  entry point a console script of this environment, `python` this interpreter). There is no container
  filesystem, so `/opt/ml/processing` is rewritten to the step's directory in the run directory, in the
  arguments and in every input and output path: inputs are downloaded from the local S3 first, outputs
  uploaded after the process exits 0; the step's property files are then read from its outputs.
- Training: the training container through `mlops.local.training_run.run_training` (SageMaker's
  channel, hyperparameter and model-directory contract); the channels are downloaded from S3 and the
  archive is uploaded where SageMaker puts it, `<S3OutputPath>/<job name>/output/model.tar.gz`.
- Tuning: the tuning job with Optuna over the same ranges and objective (mlops.local.tuning), each trial
  the training container; the best trial's archive is uploaded where SageMaker puts it.
- Condition: the conditions evaluated; the IfSteps or ElseSteps run next.
- RegisterModel: CreateModelPackage with the resolved request, validated against botocore's model first.
- Fail: the execution fails with the resolved ErrorMessage as its FailureReason.

A failing step fails the execution ("Step <name> failed: ..."), and nothing after it runs. Each step's
status, start and end times, failure reason and metadata (what ListPipelineExecutionSteps reports) are
recorded in `Execution.steps`, and the whole record is written to `<run dir>/execution.json` on every change.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from specs.pipelines import expressions
from mlops.local import training_run, tuning

PROCESSING_ROOT = "/opt/ml/processing"
EXECUTING, SUCCEEDED, FAILED = "Executing", "Succeeded", "Failed"


class StepFailure(RuntimeError):
    """A step that did not succeed; its message becomes the step's and the execution's failure reason."""


@dataclass
class StepRecord:
    """One step of the execution, as ListPipelineExecutionSteps reports it."""

    name: str
    type: str
    status: str = EXECUTING
    start: float = 0.0
    end: float | None = None
    failure_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Execution:
    """An execution's record: its status, failure reason and steps (started order)."""

    arn: str
    status: str = EXECUTING
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _split_s3(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise StepFailure(f"{uri!r} is not an s3:// URI")
    return parts.netloc, parts.path.lstrip("/")


def _executable(name: str) -> str:
    """`python` is this interpreter; anything else a console script of this environment, else on PATH."""
    if name in ("python", "python3"):
        return sys.executable
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StepFailure(f"entry point {name!r} is neither a console script of {Path(sys.executable).parent} nor on PATH")
    return found


class PipelineExecutor:
    """Runs one execution of a definition against the local AWS endpoint's S3 and SageMaker."""

    def __init__(self, definition: dict[str, Any], *, execution: Execution, context: expressions.Context, run_dir: Path,
                 s3: Any, sagemaker: Any, aws_env: dict[str, str], on_change: Callable[[Execution], None] | None = None):
        self.definition = definition
        self.execution = execution
        self.context = context
        self.run_dir = run_dir
        self.s3 = s3
        self.sagemaker = sagemaker
        self.aws_env = aws_env
        self.on_change = on_change
        self._lock = threading.Lock()

    # ---- the run ---------------------------------------------------------------------------

    def run(self) -> Execution:
        """Run every step; the execution ends Succeeded, or Failed with its FailureReason."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._changed()
        try:
            self._run_steps(self.definition["Steps"])
            self._finish(SUCCEEDED, None)
        except StepFailure as exc:
            self._finish(FAILED, str(exc))
        except Exception as exc:  # a bug in the executor still ends the execution, with the reason
            self._finish(FAILED, f"local executor error: {type(exc).__name__}: {exc}")
            raise
        return self.execution

    def _finish(self, status: str, reason: str | None) -> None:
        with self._lock:
            self.execution.status, self.execution.failure_reason = status, reason
        self._changed()

    def _changed(self) -> None:
        with self._lock:
            record = json.dumps(self.execution.to_json(), indent=2)
        tmp = self.run_dir / "execution.json.tmp"
        tmp.write_text(record)
        tmp.replace(self.run_dir / "execution.json")
        if self.on_change is not None:
            self.on_change(self.execution)

    def _run_steps(self, steps: list[dict[str, Any]]) -> None:
        for step in dependency_order(steps, done=set(self.context.steps)):
            self._run_step(step)

    def _run_step(self, step: dict[str, Any]) -> None:
        record = StepRecord(name=step["Name"], type=step["Type"], start=_now())
        with self._lock:
            self.execution.steps.append(record)
        self._changed()
        try:
            then = self._dispatch(step, record)
        except StepFailure as exc:
            self._end(record, FAILED, str(exc))
            raise StepFailure(f"Step {step['Name']} failed: {exc}") if step["Type"] != "Fail" else exc from None
        except expressions.ExpressionError as exc:
            self._end(record, FAILED, str(exc))
            raise StepFailure(f"Step {step['Name']} failed: {exc}") from None
        self._end(record, SUCCEEDED, None)
        if then:
            self._run_steps(then)

    def _end(self, record: StepRecord, status: str, reason: str | None) -> None:
        with self._lock:
            record.status, record.failure_reason, record.end = status, reason, _now()
        self._changed()

    def _dispatch(self, step: dict[str, Any], record: StepRecord) -> list[dict[str, Any]]:
        """Run one step; the steps to run next (a Condition's branch), else []."""
        kind, name = step["Type"], step["Name"]
        if kind == "Condition":
            outcome = all(evaluate_condition(c, self.context) for c in step["Arguments"]["Conditions"])
            record.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
            self.context.steps[name] = {"Outcome": outcome}
            return step["Arguments"].get("IfSteps" if outcome else "ElseSteps", [])
        if kind == "Fail":
            message = expressions.resolve(step["Arguments"].get("ErrorMessage", ""), self.context)
            record.metadata = {"Fail": {"ErrorMessage": message}}
            raise StepFailure(str(message))
        request = expressions.resolve(step["Arguments"], self.context)
        if kind == "Processing":
            self.context.steps[name] = self._processing(name, request, step.get("PropertyFiles", []))
            record.metadata = {"ProcessingJob": {"Arn": self.context.steps[name]["ProcessingJobArn"]}}
        elif kind == "Training":
            self.context.steps[name] = self._training(name, request)
            record.metadata = {"TrainingJob": {"Arn": self.context.steps[name]["TrainingJobArn"]}}
        elif kind == "Tuning":
            self.context.steps[name] = self._tuning(name, request)
            record.metadata = {"TuningJob": {"Arn": self.context.steps[name]["HyperParameterTuningJobArn"]}}
        elif kind == "RegisterModel":
            self.context.steps[name] = self._register(request)
            record.metadata = {"RegisterModel": {"Arn": self.context.steps[name]["ModelPackageArn"]}}
        else:
            raise StepFailure(f"step type {kind!r} is not run locally; supported: Processing, Training, Tuning, Condition, RegisterModel, Fail")
        return []

    # ---- step kinds --------------------------------------------------------------------------

    def _job_name(self, step: str) -> str:
        return f"pipelines-{self.context.execution['PipelineExecutionId']}-{step}"[:63]

    def _job_arn(self, kind: str, name: str) -> str:
        arn = self.execution.arn.split(":")
        return f"arn:aws:sagemaker:{arn[3]}:{arn[4]}:{kind}/{name.lower()}"

    def _local(self, step: str, path: str) -> Path:
        """Where a /opt/ml/processing path of `step` lives in the run directory."""
        if not (path == PROCESSING_ROOT or path.startswith(PROCESSING_ROOT + "/")):
            raise StepFailure(f"local path {path!r} is outside {PROCESSING_ROOT}")
        return self.run_dir / step / "processing" / path[len(PROCESSING_ROOT):].lstrip("/")

    def _processing(self, step: str, request: dict[str, Any], property_files: list[dict[str, Any]]) -> dict[str, Any]:
        root = str(self._local(step, PROCESSING_ROOT))
        for item in request.get("ProcessingInputs", []):
            source = item["S3Input"]
            self._download(source["S3Uri"], self._local(step, source["LocalPath"]))
        outputs = request.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            self._local(step, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = request["AppSpecification"]
        argv = [str(a).replace(PROCESSING_ROOT, root) for a in [*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", [])]]
        if not argv:
            raise StepFailure("the job has no ContainerEntrypoint to run")
        argv[0] = _executable(argv[0])
        log = self.run_dir / step / "process.log"
        with log.open("wb") as out:
            result = subprocess.run(argv, env={**os.environ, **self.aws_env, **request.get("Environment", {})},
                                    stdout=out, stderr=subprocess.STDOUT, cwd=self.run_dir / step)
        if result.returncode != 0:
            raise StepFailure(f"{app.get('ContainerEntrypoint')} exited {result.returncode}; see {log}:\n{training_run.tail(log, 8)}")
        for item in outputs:
            self._upload(self._local(step, item["S3Output"]["LocalPath"]), item["S3Output"]["S3Uri"])
        by_output = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in outputs}
        for spec in property_files:
            path = self._local(step, by_output[spec["OutputName"]]) / spec["FilePath"]
            try:
                self.context.property_files[(step, spec["PropertyFileName"])] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise StepFailure(f"property file {spec['PropertyFileName']} ({spec['FilePath']} of output "
                                  f"{spec['OutputName']}): {exc}") from None
        name = self._job_name(step)
        return {**request, "ProcessingJobName": name, "ProcessingJobArn": self._job_arn("processing-job", name), "ProcessingJobStatus": "Completed"}

    def _training(self, step: str, request: dict[str, Any]) -> dict[str, Any]:
        name = self._job_name(step)
        run = self.run_dir / step
        channels: dict[str, Path] = {}
        for channel in request.get("InputDataConfig", []):
            target = run / "input" / "data" / channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            channels[channel["ChannelName"]] = target
        archive = run / "model.tar.gz"
        try:
            training_run.run_training(run, hyperparameters=request.get("HyperParameters", {}), channels=channels, archive=archive,
                                      label=f"training job {name}", aws_env={**self._job_env(request.get("Environment")), "TRAINING_JOB_NAME": name},
                                      log=run / "train.log")
        except RuntimeError as exc:
            raise StepFailure(str(exc)) from None
        model_uri = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
        bucket, key = _split_s3(model_uri)
        self.s3.upload_file(str(archive), bucket, key)
        return {**request, "TrainingJobName": name, "TrainingJobArn": self._job_arn("training-job", name),
                "TrainingJobStatus": "Completed", "ModelArtifacts": {"S3ModelArtifacts": model_uri}}

    def _tuning(self, step: str, request: dict[str, Any]) -> dict[str, Any]:
        """The tuning job with Optuna (mlops.local.tuning); the best trial's archive is uploaded where
        SageMaker puts a trial's model, `<S3OutputPath>/<trial job name>/output/model.tar.gz`."""
        name = self._job_name(step)
        run = self.run_dir / step
        definition = request["TrainingJobDefinition"]
        channels: dict[str, Path] = {}
        for channel in definition.get("InputDataConfig", []):
            target = run / "input" / "data" / channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            channels[channel["ChannelName"]] = target
        try:
            result = tuning.run_tuning(run, request, job_name=name[:32], channels=channels,
                                       aws_env=self._job_env(definition.get("Environment")))
        except RuntimeError as exc:
            raise StepFailure(str(exc)) from None
        best = result.best
        bucket, key = _split_s3(f"{definition['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{best.name}/output/model.tar.gz")
        self.s3.upload_file(str(best.archive), bucket, key)
        summaries = [{"TrainingJobName": t.name, "TrainingJobArn": self._job_arn("training-job", t.name),
                      "TrainingJobStatus": "Failed" if t.failure else "Completed", "TunedHyperParameters": t.hyperparameters,
                      **({"FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": request["HyperParameterTuningJobConfig"][
                          "HyperParameterTuningJobObjective"]["MetricName"], "Value": t.objective}} if t.objective is not None else {})}
                     for t in result.trials]
        return {**request, "HyperParameterTuningJobName": name, "HyperParameterTuningJobArn": self._job_arn("hyper-parameter-tuning-job", name),
                "HyperParameterTuningJobStatus": "Completed", "TrainingJobSummaries": summaries,
                "BestTrainingJob": next(s for s in summaries if s["TrainingJobName"] == best.name)}

    def _job_env(self, environment: dict[str, str] | None) -> dict[str, str]:
        """A training job's process environment: the job's Environment (as SageMaker sets it in the
        container), its MLflow tracking server ARN resolved to the local server's URL
        (mlops.local.tracking_servers), then the local endpoint's credentials and URL."""
        from mlops.local.tracking_servers import resolve_environment

        try:
            return {**resolve_environment(environment or {}, self.sagemaker), **self.aws_env}
        except RuntimeError as exc:
            raise StepFailure(str(exc)) from None

    def _register(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError, ParamValidationError
        from botocore.validate import validate_parameters

        shape = self.sagemaker.meta.service_model.operation_model("CreateModelPackage").input_shape
        try:
            validate_parameters(request, shape)
            created = self.sagemaker.create_model_package(**request)
        except (ParamValidationError, ClientError) as exc:
            raise StepFailure(f"CreateModelPackage: {exc}") from None
        return {**request, "ModelPackageArn": created["ModelPackageArn"]}

    # ---- S3 ----------------------------------------------------------------------------------

    def _download(self, uri: str, target: Path) -> None:
        """Every object under the prefix into `target`, keys relative to the prefix (a single object by its name)."""
        bucket, prefix = _split_s3(uri)
        target.mkdir(parents=True, exist_ok=True)
        found = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(prefix):].lstrip("/") or Path(obj["Key"]).name
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, obj["Key"], str(path))
                found += 1
        if not found:
            raise StepFailure(f"no S3 objects found under {uri}")

    def _upload(self, source: Path, uri: str) -> None:
        bucket, prefix = _split_s3(uri)
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            self.s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}")


def dependency_order(steps: list[dict[str, Any]], *, done: set[str]) -> list[dict[str, Any]]:
    """`steps` ordered so that each comes after the steps it reads or DependsOn (document order
    otherwise); ValueError naming the steps whose dependencies never run."""
    pending, ordered, ready = list(steps), [], set(done)
    while pending:
        for step in pending:
            needs = expressions.step_references(step.get("Arguments", {})) | set(step.get("DependsOn", []))
            needs -= {step["Name"]}
            if needs <= ready:
                break
        else:
            raise ValueError(f"steps {[s['Name'] for s in pending]} depend on steps that do not run before them")
        pending.remove(step)
        ordered.append(step)
        ready.add(step["Name"])
        ready |= {s["Name"] for s in _nested(step)}
    return ordered


def _nested(step: dict[str, Any]) -> list[dict[str, Any]]:
    if step["Type"] != "Condition":
        return []
    out = []
    for branch in ("IfSteps", "ElseSteps"):
        for inner in step["Arguments"].get(branch, []):
            out += [inner, *_nested(inner)]
    return out


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_condition(condition: dict[str, Any], context: expressions.Context) -> bool:
    """One condition of a Condition step (Equals, GreaterThan[OrEqualTo], LessThan[OrEqualTo], In, Not, Or)."""
    kind = condition["Type"]
    if kind in _COMPARISONS:
        left = expressions.resolve(condition["LeftValue"], context)
        right = expressions.resolve(condition["RightValue"], context)
        return _COMPARISONS[kind](left, right)
    if kind == "In":
        value = expressions.resolve(condition["QueryValue"], context)
        return value in [expressions.resolve(v, context) for v in condition["Values"]]
    if kind == "Not":
        return not evaluate_condition(condition["Expression"], context)
    if kind == "Or":
        return any(evaluate_condition(c, context) for c in condition["Conditions"])
    raise expressions.ExpressionError(f"condition type {kind!r} is not supported locally; supported: "
                                      f"{', '.join([*_COMPARISONS, 'In', 'Not', 'Or'])}")
