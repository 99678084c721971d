"""Bring a stack up locally and drive its lifecycle: train, register, serve, route, alarm.

Everything here acts through the same interfaces the cloud uses: the plan's resources are created
with AWS API calls (against the embedded moto server), training runs the training container's entry
point with SageMaker's environment contract and registers through boto3, serving runs the serving
container's entry point per variant, and callers use boto3's `sagemaker-runtime` client.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points), except `mlops_training.synthetic`, to generate a model's
offline-store export with a learnable signal (`LocalStack.offline_store`).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from botocore.exceptions import ClientError
from mlops_contracts import capture, evaluation
from mlops_contracts import tracking as tracking_contract

from specs import feature_schema, tracking
from specs.config import stack_files
from specs.config.schema import StackConfig
from components.foundation import image_uri
from specs.naming import Namer
from specs.pipelines import steps as pipeline_steps
from specs.pipelines.sources import capture_root
from mlops.local import bluegreen, router, tracking_servers, training_run
from mlops.local.environment import ACCOUNT_ID, START_CEILING_S, LocalEnvironment, extract, free_port, wait_http
from mlops.local.realize import Realized, api_calls, realize
from mlops.plan import Plan, plan_stack

ENDPOINT_TYPES = (
    "aws:sagemaker/model:Model",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "aws:sagemaker/endpoint:Endpoint",
)


@dataclass(frozen=True)
class Version:
    """A registered model version, as the local registry journal keeps it."""

    group: str
    version: int
    model_data_url: str
    approval: str
    metrics: dict[str, float]
    description: str = ""


@dataclass(frozen=True)
class PipelineRun:
    """One finished local pipeline execution (LocalStack.start_pipeline)."""

    arn: str
    status: str
    """"Succeeded" or "Failed" (as DescribePipelineExecution reports it)."""
    failure_reason: str | None
    """Why it failed: the Fail step's message (the evaluation's reason) or the failed step's error."""
    steps: list[tuple[str, str]]
    """(step name, status) in the order the steps ran."""
    version: Version | None
    """The version the Register step created (journaled), or None when nothing was registered."""


_POLL_S = 0.5


def plan_with(stack: str, overrides: dict[str, Any] | None) -> Plan:
    """Plan `stack`, with extra merge-patch overrides applied on top of its stack file (the way a
    later commit to the stack file would change it). The program runs unchanged."""
    if not overrides:
        return plan_stack(stack)
    source_dir = stack_files.stacks_dir()
    with tempfile.TemporaryDirectory(prefix="mlops-phase-") as tmp:
        target = Path(tmp) / "stacks"
        shutil.copytree(source_dir, target)
        # Patches apply in sequence: the base with the stack's overrides becomes the base, and
        # `overrides` the stack's patch (merging two patches would lose their deleting nulls).
        source = stack_files.load_source(stack)
        (target / "teams" / f"{source.merged['team']}.yaml").write_text(yaml.safe_dump(
            stack_files.merge_patch(source.base, source.overrides), sort_keys=False))
        path = target / f"Pulumi.{stack}.yaml"
        doc = yaml.safe_load(path.read_text())
        doc["config"][f"{stack_files.PROJECT}:overrides"] = overrides
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        previous = os.environ.get(stack_files.STACKS_ENV)
        os.environ[stack_files.STACKS_ENV] = str(target)
        try:
            return plan_stack(stack)
        finally:
            if previous is None:
                os.environ.pop(stack_files.STACKS_ENV, None)
            else:
                os.environ[stack_files.STACKS_ENV] = previous


LOCAL_TIME_SCALE_DEFAULT = "0.01"
"""The router's blue/green wait scale when MLOPS_LOCAL_TIME_SCALE is unset: a one-minute canary bake
lasts 0.6 s and a five-minute termination wait 3 s locally (MLOPS_LOCAL_TIME_SCALE=1: SageMaker's waits)."""


class LocalStackError(ValueError):
    """The stack cannot be brought up locally as it is declared (the CLI exits 2, a configuration error)."""


class LocalStack:
    """One stack realized on this machine."""

    def __init__(self, stack: str):
        self.name = stack
        self.env = LocalEnvironment(stack)
        self.config: StackConfig = stack_files.load(stack)
        if self.config.aws.account_id != ACCOUNT_ID:
            raise ValueError(
                f"stack {stack} targets account {self.config.aws.account_id}; local stacks must name the local "
                f"emulator's account {ACCOUNT_ID} in aws:allowedAccountIds"
            )
        if self.config.tracking.shared_stack is not None:
            raise LocalStackError(
                f"stack {stack} uses the MLflow tracking server of stack {self.config.tracking.shared_stack} "
                "(tracking.shared_stack), which does not run on this machine; locally a stack needs its own: "
                "remove tracking.shared_stack"
            )
        self.region = self.config.aws.region
        self.namer = Namer(team=self.config.team, environment=self.config.environment, account_id=ACCOUNT_ID)

    # ---- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Realized:
        """Start the emulator, realize the plan, restore the registry from the journal, start the router."""
        self.env.down()
        self.env.start_moto()
        plan = plan_stack(self.name)
        # Endpoints come later, once their models are registered and serving (as in the cloud,
        # where CreateEndpoint waits for the containers to answer /ping).
        base = [r for r in plan.resources if r.type not in ENDPOINT_TYPES]
        done = realize(base, region=self.region, client=self.client)
        self.restore_registry()
        port = free_port()
        self.env.spawn("router", [sys.executable, "-m", "mlops.local.router", "--stack", self.name, "--port", str(port),
                                  "--region", self.region, "--publish-interval", "2", "--seed", "7",
                                  "--evaluation-interval", "1"], port=port,
                       env={bluegreen.TIME_SCALE_ENV: os.environ.get(bluegreen.TIME_SCALE_ENV, LOCAL_TIME_SCALE_DEFAULT)})
        wait_http(f"http://127.0.0.1:{port}/ping", timeout_s=START_CEILING_S)
        return done

    def client(self, service: str) -> Any:
        return self.env.client(service, self.region)

    def router_url(self) -> str:
        router = self.env.find("router")
        if router is None:
            raise RuntimeError(f"no router running for {self.name}; run `mlops local up -s {self.name}`")
        return f"http://127.0.0.1:{router.port}"

    def runtime(self) -> Any:
        """boto3's sagemaker-runtime client, pointed at the local router."""
        return self.env.session(self.region).client("sagemaker-runtime", endpoint_url=self.router_url())

    # ---- registry ----------------------------------------------------------------------------

    def versions(self, model: str) -> list[Version]:
        group = self.namer.model_package_group(model)
        return [Version(e["group"], e["version"], e["model_data_url"], e["approval"], e["metrics"],
                        e["request"].get("ModelPackageDescription", ""))
                for e in self.env.journal() if e["group"] == group]

    def restore_registry(self) -> None:
        """Re-create every journaled version (artifacts and packages) in the fresh emulator."""
        s3, sagemaker = self.client("s3"), self.client("sagemaker")
        for entry in self.env.journal():
            bucket, key = _split_s3(entry["model_data_url"])
            s3.upload_file(entry["artifact"], bucket, key)
            created = sagemaker.create_model_package(**entry["request"])
            number = int(created["ModelPackageArn"].rsplit("/", 1)[1])
            if number != entry["version"]:
                raise RuntimeError(f"registry replay gave {entry['group']} version {number}, journal says {entry['version']}")
            if entry["approval"] == "Approved":
                sagemaker.update_model_package(ModelPackageArn=created["ModelPackageArn"], ModelApprovalStatus="Approved")

    def _journal_version(self, model: str, version: int, artifact: Path, *, note: str = "") -> Version:
        sagemaker = self.client("sagemaker")
        group = self.namer.model_package_group(model)
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:model-package/{group}/{version}"
        described = sagemaker.describe_model_package(ModelPackageName=arn)
        request = {k: described[k] for k in (
            "ModelPackageGroupName", "ModelPackageDescription", "InferenceSpecification", "ModelMetrics",
            "CustomerMetadataProperties", "ModelApprovalStatus",
        ) if k in described}
        if note:
            request["ModelPackageDescription"] = note
        metrics = {k: float(v) for k, v in described.get("CustomerMetadataProperties", {}).items() if _is_number(v)}
        url = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        entry = {"group": group, "version": version, "model_data_url": url, "approval": described["ModelApprovalStatus"],
                 "metrics": metrics, "artifact": str(artifact), "request": request}
        self.env.record_version(entry)
        return Version(group, version, url, entry["approval"], metrics, request.get("ModelPackageDescription", ""))

    def version_metadata(self, model: str, version: int) -> dict[str, Any]:
        """metadata.json of a journaled version's artifact (its dataset manifest under `dataset`, if any)."""
        import tarfile

        group = self.namer.model_package_group(model)
        entry = next((e for e in self.env.journal() if e["group"] == group and e["version"] == version), None)
        if entry is None:
            raise ValueError(f"{group} has no version {version} in the local registry")
        with tarfile.open(entry["artifact"]) as tar:
            member = next((m for m in tar.getmembers() if m.name.lstrip("./") == "metadata.json"), None)
            if member is None:
                raise ValueError(f"{entry['artifact']} holds no metadata.json")
            return json.loads(tar.extractfile(member).read())

    def approve(self, model: str, version: int) -> None:
        group = self.namer.model_package_group(model)
        arn = f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:model-package/{group}/{version}"
        self.client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        entries = self.env.journal()
        for entry in entries:
            if entry["group"] == group and entry["version"] == version:
                entry["approval"] = "Approved"
                self.env.record_version(entry)

    # ---- data and training -------------------------------------------------------------------

    def offline_store(self, model: str, *, rows: int = 10000, seed: int = 1) -> Path:
        """The model's feature group export (Parquet), generated once with a learnable signal."""
        from mlops_training import synthetic

        spec = self.config.model_registry.models[model]
        directory = self.env.dir / "offline-store" / spec.feature_group / f"seed-{seed}-rows-{rows}"
        if not any(directory.glob("*.parquet")):
            synthetic.write_dataset(directory, n_rows=rows, task=spec.task, seed=seed)
        return directory

    def train(self, model: str, *, seed: int, data: Path, hyperparameters: dict[str, Any] | None = None) -> Version:
        """Run the training container's entry point as SageMaker would, registering the next version."""
        spec = self.config.model_registry.models[model]
        version = len(self.versions(model)) + 1
        job = self.env.dir / "jobs" / f"{model}-{version}"
        if job.exists():
            shutil.rmtree(job)
        (job / "config").mkdir(parents=True)
        schema = job / "config" / "feature_schema.json"
        schema.write_text(json.dumps(feature_schema.feature_schema(self.config, model), indent=2))
        hp = {
            **{k: v for k, v in self.config.training.hyperparameters.items()},
            **(hyperparameters or {}),
            "seed": seed,
            "model_name": model,
            "model_version": str(version),
            "artifact_s3_uri": f"s3://{self.namer.bucket('artifacts')}/models",
            "model_package_group_name": self.namer.model_package_group(model),
            "auto_approve": spec.approval == "auto",
            "image_uri": self.serving_image(),
        }
        archive = self.env.artifact_path(model, version)
        # SageMaker writes every hyperparameter as a string.
        self._run_training(job, hyperparameters={k: _hp_string(v) for k, v in hp.items()},
                           channels={"train": data, "config": job / "config"}, archive=archive, label=f"training {model} v{version}")
        return self._journal_version(model, version, archive)

    def start_pipeline(self, pipeline_arn: str, parameters: dict[str, str], *, ceiling_s: float = 3600.0) -> PipelineRun:
        """`start_pipeline_execution`, then `follow_pipeline`."""
        return self.follow_pipeline(self.start_pipeline_execution(pipeline_arn, parameters), ceiling_s=ceiling_s)

    def start_pipeline_execution(self, pipeline_arn: str, parameters: dict[str, str]) -> str:
        """StartPipelineExecution through boto3 against the local endpoint, which runs the pipeline's
        stored definition (mlops.local.pipeline_exec) on its own; returns the execution's ARN."""
        name = pipeline_arn.rsplit("/", 1)[1]
        return self.client("sagemaker").start_pipeline_execution(
            PipelineName=name, ClientRequestToken=uuid.uuid4().hex,
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in parameters.items()],
        )["PipelineExecutionArn"]

    def follow_pipeline(self, arn: str, *, ceiling_s: float = 3600.0) -> PipelineRun:
        """DescribePipelineExecution until the run `arn` (started by anyone: `start_pipeline`, the
        retraining starter) is no longer Executing (short polls, as boto3's waiters do; RuntimeError
        after `ceiling_s`). A version its Register step created is journaled (with the Train step's
        local archive) and returned."""
        sagemaker = self.client("sagemaker")
        name = arn.split(":pipeline/", 1)[1].split("/", 1)[0]
        deadline = time.monotonic() + ceiling_s
        while (described := sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn))["PipelineExecutionStatus"] == "Executing":
            if time.monotonic() > deadline:
                raise RuntimeError(f"pipeline {name} run {arn} still Executing after {ceiling_s:.0f}s")
            time.sleep(_POLL_S)
        steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
        registered = [s["Metadata"]["RegisterModel"]["Arn"] for s in steps if s.get("Metadata", {}).get("RegisterModel")]
        version = None
        if registered:
            group, number = registered[0].rsplit("/", 2)[1:]
            model = next(m for m in self.config.model_registry.models if self.namer.model_package_group(m) == group)
            execution_id = arn.rsplit("/", 1)[1]
            archive = self.env.dir / "pipelines" / name / execution_id / "Train" / "model.tar.gz"
            parameters = {p["Name"]: p["Value"] for p in sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=arn).get("PipelineParameters", [])}
            version = self._journal_version(model, int(number), archive, note=f"retrained by {name} run {execution_id} ({parameters})")
        return PipelineRun(arn=arn, status=described["PipelineExecutionStatus"], failure_reason=described.get("FailureReason") or None,
                           steps=[(s["StepName"], s["StepStatus"]) for s in reversed(steps)], version=version)

    def run_evaluation_uri(self, model: str, execution_arn: str) -> str:
        """Where a run of the model's retraining pipeline keeps its evaluation.json (the Evaluate step's output)."""
        execution_id = execution_arn.rsplit("/", 1)[1]
        return f"{pipeline_steps.evaluations_uri(self.namer.bucket('artifacts'), model)}/{execution_id}/{evaluation.EVALUATION_FILE}"

    def run_evaluation(self, model: str, execution_arn: str) -> evaluation.Evaluation | None:
        """The evaluation a run of the model's pipeline wrote, or None when its Evaluate step did not run."""
        return self.read_evaluation(self.run_evaluation_uri(model, execution_arn))

    def read_evaluation(self, uri: str) -> evaluation.Evaluation | None:
        """evaluation.json at `uri` in the local S3 (mlops_contracts.evaluation), or None when there is none."""
        bucket, key = _split_s3(uri)
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return evaluation.loads(body.decode(), source=uri)

    def version_properties(self, model: str, version: int) -> dict[str, str]:
        """A journaled version's CustomerMetadataProperties (its lineage keys, specs.lineage, where it has them)."""
        group = self.namer.model_package_group(model)
        entry = next((e for e in self.env.journal() if e["group"] == group and e["version"] == version), None)
        if entry is None:
            raise ValueError(f"{group} has no version {version} in the local registry")
        return dict(entry["request"].get("CustomerMetadataProperties", {}))

    def _run_training(self, run: Path, *, hyperparameters: dict[str, str], channels: dict[str, Path], archive: Path, label: str) -> None:
        """The training container's entry point with SageMaker's directory and environment contract, logging
        to the stack's MLflow tracking server when it has one."""
        env = {**self.tracking_environment(), **self.env.aws_env(self.region), "TRAINING_JOB_NAME": f"{self.name}-{run.name}"}
        training_run.run_training(run, hyperparameters=hyperparameters, channels=channels, archive=archive, label=label,
                                  aws_env=env, log=self.env.logs / f"train-{run.name}.log")

    def tracking_server_name(self) -> str | None:
        """The stack's own MLflow tracking server (`tracking.enabled` without `shared_stack`), else None."""
        tracking_config = self.config.tracking
        return tracking.server_name(self.namer.prefix) if tracking_config.enabled and tracking_config.shared_stack is None else None

    def tracking_environment(self) -> dict[str, str]:
        """MLFLOW_TRACKING_URI for a training process: the local URL of the stack's tracking server (once
        it is Created), or nothing without one."""
        name = self.tracking_server_name()
        if name is None:
            return {}
        arn = tracking.server_arn(prefix=self.namer.prefix, region=self.region, account_id=ACCOUNT_ID)
        return tracking_servers.resolve_environment({tracking_servers.TRACKING_URI_ENV: arn}, self.client("sagemaker"))

    def mlflow_run(self, model: str, version: int) -> dict[str, str] | None:
        """The MLflow run that trained a registered version, looked up on the stack's tracking server by the
        run id the version carries (its lineage property, else its artifact's metadata.json): id, experiment,
        status and its page in the MLflow UI. None when the version names no run. LocalStackError when the
        server does not know the run."""
        run_id = (self.version_properties(model, version).get(tracking_contract.LINEAGE_KEY)
                  or self.version_metadata(model, version).get(tracking_contract.RUN_ID_METADATA_KEY))
        url = self.tracking_environment().get(tracking_servers.TRACKING_URI_ENV)
        if not run_id or not url:
            return None
        try:
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}", timeout=30) as answer:
                info = json.loads(answer.read())["run"]["info"]
        except urllib.error.HTTPError as exc:
            raise LocalStackError(f"v{version} of {model} names MLflow run {run_id}, which {url} does not know ({exc.code})") from None
        return {"run_id": run_id, "experiment_id": info["experiment_id"], "run_name": info.get("run_name", ""), "status": info["status"],
                "url": f"{url}/#/experiments/{info['experiment_id']}/runs/{run_id}"}

    def pinned(self) -> dict[str, dict[int, str]]:
        """What the stack's endpoints serve: model -> pinned version -> model_data_url."""
        pins: dict[str, dict[int, str]] = {}
        for endpoint in self.config.endpoints.values():
            for variant in endpoint.all_variants().values():
                pins.setdefault(endpoint.model, {})[variant.model_version] = variant.model_data_url
        return pins

    def local_artifact_url(self, model: str, version: int) -> str:
        """Where a version trained or registered locally keeps its artifact (the training container's layout)."""
        return f"s3://{self.namer.bucket('artifacts')}/models/{model}/{version}/model.tar.gz"

    def check_pins(self) -> None:
        """Refuse, before anything starts, pins that neither the registry journal holds nor local
        training can produce (training registers versions 1, 2, ... at local_artifact_url)."""
        problems = []
        for model, pins in self.pinned().items():
            held = {v.version: v.model_data_url for v in self.versions(model)}
            for version, url in sorted(pins.items()):
                expected = held.get(version, self.local_artifact_url(model, version))
                if url != expected:
                    source = "the local registry holds it at" if version in held else "local training would register it at"
                    problems.append(f"{model} version {version} is pinned at {url} but {source} {expected}")
        if problems:
            raise LocalStackError(
                f"stack {self.name} cannot be brought up locally: " + "; ".join(problems)
                + f"; pin model_data_url to where the local registry keeps each version (state: {self.env.dir})"
            )

    def train_pinned(self, model: str, *, data: Path, report: Callable[[str], Any],
                     hyperparameters_for: Callable[[int], dict[str, Any]] | None = None) -> None:
        """Train every version up to the highest one the stack pins that the registry does not hold
        yet (versions are numbered in registration order), then approve the pinned ones."""
        wanted = sorted(self.pinned().get(model, {}))
        for number in wanted:
            if number > len(self.versions(model)):
                while number > len(self.versions(model)):
                    next_number = len(self.versions(model)) + 1
                    version = self.train(model, seed=next_number, data=data,
                                         hyperparameters=hyperparameters_for(next_number) if hyperparameters_for else None)
                    report(f"   trained and registered {version.group} v{version.version}: "
                           + ", ".join(f"{k.removeprefix('metric_')} {v:.3f}" for k, v in version.metrics.items() if k.startswith("metric_")))
            else:
                report(f"   {self.namer.model_package_group(model)} v{number} already registered (kept from an earlier run)")
        for version in self.versions(model):
            if version.version in wanted and version.approval != "Approved":
                self.approve(model, version.version)
                report(f"   approved v{version.version}")

    def ingest(self, group: str, source: Path, *, report: Path) -> Any:
        """`mlops features ingest -s <stack> --group <group> --source <source>`, in this process with the
        embedded AWS's clients: the same validation, online writes (PutRecord) and offline Parquet.
        Returns its `Summary`; raises when a batch was refused (the report lists the rejects)."""
        from mlops.features import ingest as ingestion
        from mlops.features import online

        target = ingestion.resolve_target(self.config, group)
        request = ingestion.IngestRequest(source=str(source), report=report)
        featurestore = self.env.session(self.region).client(
            "sagemaker-featurestore-runtime", endpoint_url=self.env.moto_url(), config=online.client_config(workers=request.workers))
        clients = ingestion.Clients(s3=self.client("s3"), sagemaker=self.client("sagemaker"), featurestore=featurestore)
        summary = ingestion.ingest(request, target, clients=clients)
        if summary.refused_batches:
            raise RuntimeError(f"ingesting {source} into {target.name}: {summary.rejected_rows} rejected rows kept "
                               f"{summary.refused_batches} batch(es) out; see {report}")
        return summary

    def upload_captures(self, endpoint: str) -> int:
        """Do what SageMaker's data capture does for a real endpoint: put the endpoint's completed
        capture files (the containers write them under the local capture directory, in SageMaker's
        `<endpoint>/<variant>/yyyy/mm/dd/hh/` layout) under the endpoint's capture root in S3
        (specs.pipelines.sources.capture_root), where the retraining pipeline's Dataset step reads them.
        Files already uploaded are skipped; files still being written are left for the next call.
        `endpoint` is the AWS endpoint name. Returns how many files were uploaded."""
        key = next((k for k in self.config.endpoints if self.namer.endpoint(k) == endpoint), None)
        if key is None:
            raise ValueError(f"stack {self.name} has no endpoint named {endpoint}; it has "
                             + ", ".join(self.namer.endpoint(k) for k in self.config.endpoints))
        bucket, prefix = _split_s3(capture_root(self.namer, key))
        s3 = self.client("s3")
        held = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
                for o in page.get("Contents", [])}
        root = self.env.dir / "captures" / endpoint
        uploaded = 0
        for path in sorted(root.rglob(f"*{capture.FILE_SUFFIX}")) if root.exists() else []:
            target = f"{prefix}/{path.relative_to(root).as_posix()}"
            if target not in held:
                s3.upload_file(str(path), bucket, target)
                uploaded += 1
        return uploaded

    def put_ground_truth(self, model: str, labels: dict[str, list[Any]], *, at: datetime) -> str:
        """Write ground truth for `labels` (inference id -> one label per row of that request) where the
        model's retraining pipeline reads it (`ModelConfig.ground_truth_uri`, default
        `Namer.ground_truth_uri`), as Model Monitor expects it: JSON lines
        (mlops_contracts.capture.ground_truth_line) in one object under the hour of `at`
        (`yyyy/mm/dd/hh/`). Returns the object's URI."""
        spec = self.config.model_registry.models[model]
        bucket, prefix = _split_s3(spec.ground_truth_uri or self.namer.ground_truth_uri(model))
        key = f"{prefix.rstrip('/')}/{at.astimezone(UTC).strftime(capture.HOUR_FORMAT)}/{uuid.uuid4().hex}{capture.FILE_SUFFIX}"
        body = "".join(capture.ground_truth_line(event_id, values) + "\n" for event_id, values in labels.items())
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
        return f"s3://{bucket}/{key}"

    def offline_store_uri(self, group: str) -> str:
        """Where the feature group's offline store keeps its Parquet (DescribeFeatureGroup's resolved URI)."""
        from mlops.features import ingest as ingestion

        uri, _ = ingestion.describe_offline(self.client("sagemaker"), ingestion.resolve_target(self.config, group))
        return uri

    def build_dataset(self, model: str, *, label_events: Path, out: Path) -> dict[str, Any]:
        """`mlops-train dataset` (the training container's point-in-time builder, DuckDB engine) over the
        model's feature group's offline store in the local S3, joined with `label_events`; writes
        train/, validation/ and manifest.json into `out` and returns the manifest."""
        spec = self.config.model_registry.models[model]
        schema = out.parent / f"{out.name}-feature_schema.json"
        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(json.dumps(feature_schema.feature_schema(self.config, model), indent=2))
        log = self.env.logs / f"dataset-{out.name}.log"
        with log.open("wb") as err:
            result = subprocess.run(
                [_script("mlops-train"), "dataset", "--schema", str(schema), "--out", str(out),
                 "--feature-group", self.namer.feature_group(spec.feature_group),
                 "--offline-store", self.offline_store_uri(spec.feature_group), "--label-events", str(label_events)],
                env={**os.environ, **self.env.aws_env(self.region)}, stdout=subprocess.PIPE, stderr=err,
            )
        if result.returncode != 0:
            raise RuntimeError(f"building the dataset of {model} failed (exit {result.returncode}); see {log}:\n{_tail(log)}")
        return json.loads(result.stdout)

    def register_artifact(self, model: str, archive: Path, *, based_on: Version, description: str) -> Version:
        """Register a hand-built artifact as the next version (the demo's faulty challenger)."""
        version = len(self.versions(model)) + 1
        target = self.env.artifact_path(model, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(archive, target)
        url = f"s3://{self.namer.bucket('artifacts')}/models/{model}/{version}/model.tar.gz"
        bucket, key = _split_s3(url)
        self.client("s3").upload_file(str(target), bucket, key)
        sagemaker = self.client("sagemaker")
        group = self.namer.model_package_group(model)
        base = sagemaker.describe_model_package(
            ModelPackageName=f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:model-package/{group}/{based_on.version}"
        )
        spec = base["InferenceSpecification"]
        spec["Containers"][0]["ModelDataUrl"] = url
        sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelPackageDescription=description,
            InferenceSpecification=spec, ModelApprovalStatus="Approved",
        )
        return self._journal_version(model, version, target, note=description)

    def serving_image(self) -> str:
        return image_uri(account_id=ACCOUNT_ID, region=self.region, repository=self.namer.ecr_repository("serving"),
                         tag=self.config.images.serving_tag, digest=self.config.images.serving_digest)

    # ---- endpoints ---------------------------------------------------------------------------

    def deploy(self, overrides: dict[str, Any] | None = None, *, allow_rollback: bool = False) -> Plan:
        """Deploy the stack's endpoints as planned (with `overrides` on top): Models and
        EndpointConfigs by their content names, serving processes per variant, then the Endpoint.
        An endpoint that exists on another configuration is updated the way SageMaker does it: an
        UpdateEndpoint with the planned DeploymentConfig, run by the router as a blue/green update
        (mlops.local.bluegreen); its outcome is kept in `last_updates` (DescribeEndpoint's status,
        FailureReason and LastDeploymentConfig, plus the update's events). An update that rolled back
        raises LocalStackError with its FailureReason unless `allow_rollback` (the endpoint then stays
        on its old configuration, as in SageMaker)."""
        plan = plan_with(self.name, overrides)
        sagemaker = self.client("sagemaker")
        self.last_updates: dict[str, dict[str, Any]] = {}
        self._rolled_back_models: set[str] = set()
        """Models of configurations that rolled-back updates left in service (their processes stay)."""
        for resource in (r for r in plan.resources if r.type in ENDPOINT_TYPES):
            for call in api_calls(resource, self.region):
                if call.operation == "create_model" and _exists(sagemaker.describe_model, ModelName=call.params["ModelName"]):
                    continue
                if call.operation == "create_endpoint_config":
                    self.env.record_endpoint_config(call.params)
                    if _exists(sagemaker.describe_endpoint_config, EndpointConfigName=call.params["EndpointConfigName"]):
                        continue
                if call.operation == "create_endpoint":
                    self._start_variants(plan)
                    current = _describe(sagemaker.describe_endpoint, EndpointName=call.params["EndpointName"])
                    if current and current["EndpointConfigName"] == call.params["EndpointConfigName"]:
                        continue
                    if current:
                        self._update_endpoint(call.params, old_config=current["EndpointConfigName"])
                        continue
                getattr(sagemaker, call.operation)(**call.params)
        self._stop_unused_variants(plan, keep=self._rolled_back_models)
        failed = {name: u["FailureReason"] for name, u in self.last_updates.items() if u.get("FailureReason")}
        if failed and not allow_rollback:
            raise LocalStackError("; ".join(f"UpdateEndpoint {name}: {reason}" for name, reason in failed.items()))
        return plan

    def update_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        """UpdateEndpoint through the local AWS endpoint, as in the cloud: validated there against
        botocore's model and run by the router as a blue/green update (mlops.local.endpoint_updates).
        Waits, reading DescribeEndpoint, until the endpoint is no longer Updating; returns what
        DescribeEndpoint then reports (EndpointStatus, EndpointConfigName, FailureReason,
        LastDeploymentConfig) with the update's steps (`Events`, which only the router records)."""
        name = params["EndpointName"]
        sagemaker = self.client("sagemaker")
        try:
            sagemaker.update_endpoint(**params)
        except ClientError as error:
            raise LocalStackError(f"UpdateEndpoint {name} refused: {error.response['Error'].get('Message', error)}") from None
        policy = (params.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy") or {}
        # The router's scale (see `up`) bounds the update; the ceiling is for bugs only.
        ceiling = policy.get("MaximumExecutionTimeoutInSeconds", bluegreen.DEFAULT_TIMEOUT_S) + router.WAIT_CEILING_S
        deadline = time.monotonic() + ceiling
        while True:
            described = sagemaker.describe_endpoint(EndpointName=name)
            if described["EndpointStatus"] != bluegreen.UPDATING:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"UpdateEndpoint {name} still Updating after {ceiling:.0f} s")
            time.sleep(0.05)  # polls the status DescribeEndpoint reports (an event), never a fixed wait
        with urllib.request.urlopen(f"{self.router_url()}/endpoints/{name}/update", timeout=router.WAIT_CEILING_S) as response:
            events = json.loads(response.read())["Events"]
        keys = ("EndpointStatus", "EndpointConfigName", "FailureReason", "LastDeploymentConfig")
        return {**{k: described[k] for k in keys if k in described}, "Events": events}

    def _update_endpoint(self, params: dict[str, Any], *, old_config: str) -> None:
        """A blue/green update of an existing endpoint; on a rollback, the new fleet's processes that
        nothing else uses are stopped."""
        update = {k: params[k] for k in ("EndpointName", "EndpointConfigName", "DeploymentConfig") if k in params}
        outcome = self.update_endpoint(update)
        self.last_updates[params["EndpointName"]] = outcome
        if outcome["EndpointStatus"] == "InService" and not outcome.get("FailureReason"):
            return
        # Rolled back (or the rollback failed): the endpoint stays on its old configuration; the new
        # fleet's processes that nothing else uses are stopped.
        keep = self._config_models(old_config)
        self._rolled_back_models |= keep
        new_only = self._config_models(params["EndpointConfigName"]) - keep
        for record in [p for p in self.env.processes() if p.role == "variant" and p.model_name in new_only]:
            self.env.stop(record)

    def _config_models(self, config_name: str) -> set[str]:
        config = self.env.endpoint_configs().get(config_name) or self.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        return {v["ModelName"] for v in [*config["ProductionVariants"], *config.get("ShadowProductionVariants", [])]}

    def _start_variants(self, plan: Plan) -> None:
        running = {p.model_name for p in self.env.processes() if p.role == "variant"}
        s3 = self.client("s3")
        for config in (r for r in plan.resources if r.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            endpoint = next(r.inputs["name"] for r in plan.resources
                            if r.type == "aws:sagemaker/endpoint:Endpoint" and r.inputs["endpointConfigName"] == config.inputs["name"])
            for variant in [*config.inputs["productionVariants"], *(config.inputs.get("shadowProductionVariants") or [])]:
                model_name = variant["modelName"]
                if model_name in running:
                    continue
                model = next(r for r in plan.resources if r.type == "aws:sagemaker/model:Model" and r.inputs["name"] == model_name)
                url = model.inputs["primaryContainer"]["modelDataUrl"]
                local = self.env.dir / "models" / model_name
                if not (local / "model.pt").exists():
                    archive = local.with_suffix(".tar.gz")
                    archive.parent.mkdir(parents=True, exist_ok=True)
                    bucket, key = _split_s3(url)
                    s3.download_file(bucket, key, str(archive))
                    extract(archive, local)
                port = free_port()
                environment = dict(model.inputs["primaryContainer"].get("environment") or {})
                self.env.spawn(
                    "variant",
                    [_script("mlops-serve"), "serve", "--host", "127.0.0.1", "--port", str(port), "--model-path", str(local),
                     "--capture-dir", str(self.env.dir / "captures"), "--endpoint-name", endpoint, "--variant", variant["variantName"]],
                    # Captures complete (rotate from .partial to .jsonl) every 2 s locally, so the
                    # monitoring job sees traffic seconds after it was served.
                    # The embedded AWS stands in for the instance role's access (feature lookups read its
                    # online store with BatchGetRecord).
                    port=port, env={**environment, **self.env.aws_env(self.region), "MLOPS_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1",
                                    "MLOPS_CAPTURE_ROTATE_S": "2"},
                    endpoint=endpoint, variant=variant["variantName"], model_name=model_name,
                )
                running.add(model_name)
        for record in (p for p in self.env.processes() if p.role == "variant"):
            wait_http(f"http://127.0.0.1:{record.port}/ping", timeout_s=START_CEILING_S)

    def _stop_unused_variants(self, plan: Plan, *, keep: set[str] | frozenset[str] = frozenset()) -> None:
        wanted = set(keep)
        for config in (r for r in plan.resources if r.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            for variant in [*config.inputs["productionVariants"], *(config.inputs.get("shadowProductionVariants") or [])]:
                wanted.add(variant["modelName"])
        for record in [p for p in self.env.processes() if p.role == "variant" and p.model_name not in wanted]:
            self.env.stop(record)

    def wait_routed(self, endpoint: str, production: set[str], shadow: set[str] | frozenset[str] = frozenset(), *,
                    timeout_s: float = router.WAIT_CEILING_S) -> None:
        """Wait until the router sends `endpoint`'s traffic to exactly the variant processes running
        now under these names (a name alone is not enough: consecutive deployments reuse names for
        other models, and the router follows the control plane with a delay)."""
        urls = {p.variant: f"http://127.0.0.1:{p.port}" for p in self.env.processes() if p.role == "variant" and p.endpoint == endpoint}
        missing = sorted((set(production) | set(shadow)) - set(urls))
        if missing:
            raise RuntimeError(f"no serving process runs variant(s) {', '.join(missing)} of {endpoint}; running: {', '.join(sorted(urls)) or 'none'}")
        router.wait_route(self.router_url(), endpoint, production={n: urls[n] for n in production},
                          shadow={n: urls[n] for n in shadow}, timeout_s=timeout_s)


def _split_s3(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def _exists(describe: Any, **kwargs: Any) -> bool:
    return _describe(describe, **kwargs) is not None


def _describe(describe: Any, **kwargs: Any) -> dict[str, Any] | None:
    try:
        return describe(**kwargs)
    except Exception as exc:  # botocore ClientError: ValidationException / ResourceNotFound
        if "not found" in str(exc).lower() or "could not find" in str(exc).lower() or "does not exist" in str(exc).lower():
            return None
        raise


def _is_number(value: str) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _hp_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


_script = training_run.script
_tail = training_run.tail
