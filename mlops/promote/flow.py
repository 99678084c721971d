"""The orchestration of `mlops promote` and `mlops rollback`: requests, preflights, the gated pin, outcomes.

Each environment has its own Model Package Group (`<team>-<env>-<model>`) and artifacts bucket,
usually in its own AWS account. Promoting source version N into a target environment:

1. gates, every one evaluated and reported: the package is Approved in the source registry; its
   metrics meet the target's thresholds and do not regress against the target's champion by more
   than `max_regression`, both scored on one shared evaluation (the evidence module: the candidate's
   own evaluation when it faced that champion, else `mlops-train evaluate` on the target's labelled
   data; with a champion and no evidence the gate fails); its schema.json is compatible with the
   target's feature store; the target stack, with the candidate pin written into a temporary copy of `stacks/`, still plans with zero
   mandatory policy findings;
2. the artifact (and metrics.json) is copied to `s3://<team>-<to>-artifacts-<account>/models/<model>/<V>/`;
3. a model package V is created Approved in the target group (the promotion is the approval and the
   audit record says who gave it), with `source_package_arn` in its CustomerMetadataProperties;
4. the endpoint variants serving the model (the first production variant, "the champion", or
   `--variant`) get `model_version: V` and `model_data_url` in the stack file's `mlops:overrides`,
   a round-trip YAML edit that keeps comments and key order, so the change is a reviewable diff;
5. one JSON line is appended to `stacks/audit/<team>.jsonl`.

Steps 1-5 run under an exclusive `flock` per target stack, and every file write is atomic (temp file
in the same directory, fsync, `os.replace`), so concurrent promotions serialize and never leave a
torn file.

Idempotency: promoting the version the target already pins (its pinned package's
`source_package_arn` is the source package) changes nothing: no package, no file change and no audit
line, so a retried CI job leaves the repository byte-identical. A package left by an interrupted
earlier run (same `source_package_arn`) is reused rather than registered twice.

`rollback` pins the previous champion: the pin before the current one in the audit log's history
for that team, environment and model (promotions push, rollbacks pop). Same gates except regression.

This module sits on top of the package: it composes gates, aws, pins, files, audit and policy, and none
of them imports it.

Must not import: pulumi or ruamel itself (the policy and pins modules own those), nor boto3 (sessions come
from the aws module; only botocore's exception types are caught here), nor `mlops_training`, `mlops_serving`
or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_contracts import evaluation as evaluation_contract
from specs.config import stack_files
from specs import naming
from specs.config.schema import StackConfig
from specs.feature_schema import feature_schema
from mlops.promote.audit import append_audit, actor, audit_path, champion_history, read_audit
from mlops.promote.aws import APPROVED, SOURCE_ARN_KEY, Registry, session_for, split_s3
from mlops.promote.errors import PromotionError, PromotionUsageError
from mlops.promote.evidence import (
    EVALUATION_DATA_FLAG, PROMOTION_EVALUATION, SHARED_EVALUATION, DatasetSources, Evidence, SharedRun,
    candidate_evaluation, champion_urls, model_data_url, offline_store_uri, shared_evaluation,
)
from mlops.promote.files import atomic_write, display_path, stack_lock
from mlops.promote.gates import (
    SCHEMA_MEMBER, GateResult, compared_metrics, evaluation_metrics, evaluation_regression_gate, missing_evidence_gate,
    package_metrics, read_schema, regression_gate, schema_mismatches, threshold_gate,
)
from mlops.promote.pins import Pin, PinTarget, current_pin, pin_targets, pin_text, unified_diff
from mlops.promote.policy import check_apply_possible, policy_gate, pulumi_up

PROMOTION_ORDER: tuple[str, ...] = ("dev", "staging", "prod")
"""Environments a model moves through, in order; promotion only moves forward."""


class Refused(Exception):
    """At least one gate failed; nothing was changed. `str()` lists every failed gate."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        failed = [g for g in outcome.gates if not g.passed]
        super().__init__("\n".join([f"{outcome.action} refused: {len(failed)} gate(s) failed", *(f"  - {g.name}: {g.detail}" for g in failed)]))


@dataclass
class Outcome:
    """What a promotion or rollback did (or, refused or checked, would have done)."""

    action: str
    """`promote` or `rollback`."""
    status: str = "pending"
    """`promoted`, `rolled-back`, `no-op`, `checked` (read-only `--check`) or `refused`."""
    stack: str = ""
    gates: list[GateResult] = field(default_factory=list)
    diff: str = ""
    """Unified diff of the target stack file (empty for a no-op)."""
    pin: Pin | None = None
    previous: Pin | None = None
    targets: list[PinTarget] = field(default_factory=list)
    record: dict[str, Any] | None = None
    """The audit record appended (None for checks, no-ops and refusals)."""
    notes: list[str] = field(default_factory=list)
    applied: bool = False
    evidence: Evidence | None = None
    """The evaluation the regression gate decided on (None: no champion, or none could be had)."""

    def to_json(self) -> dict[str, Any]:
        """`mlops promote --json`: what was decided, on which gates and which evidence."""
        def pin(p: Pin | None) -> dict[str, Any] | None:
            return None if p is None else {"version": p.version, "model_data_url": p.model_data_url, "package_arn": p.package_arn}

        # Once recorded, the evidence names where it was kept (a shared evaluation's copy in the target bucket).
        evidence = self.record.get("evidence") if self.record else None
        return {
            "action": self.action, "status": self.status, "stack": self.stack,
            "failed_gates": [g.name for g in self.gates if not g.passed],
            "gates": [g.to_json() for g in self.gates], "pin": pin(self.pin), "previous": pin(self.previous),
            "variants": [t.ref for t in self.targets],
            "evidence": evidence or (self.evidence.to_json() if self.evidence else None),
            "notes": list(self.notes), "applied": self.applied,
            # The whole document: a refused or checked promotion's shared evaluation is not kept anywhere else.
            "evaluation_document": evaluation_contract.to_dict(self.evidence.evaluation) if self.evidence else None,
        }


# --------------------------------------------------------------------------------------------
# Promotion


@dataclass(frozen=True, kw_only=True)
class PromoteRequest:
    """`mlops promote`'s arguments."""

    team: str
    model: str
    source: str
    target: str
    version: int | None = None
    """Source version; default: the newest Approved one."""
    variant: str | None = None
    """Variant to pin; default: each serving endpoint's first production variant (the champion)."""
    check: bool = False
    """Run every gate against AWS, read-only, and show the diff; change nothing."""
    apply: bool = False
    evaluation_data: str | None = None
    """A labelled dataset (directory or s3:// prefix written by `mlops-train dataset`, in the target's account)
    for a fresh shared evaluation, instead of the one built from the target's recent data."""


def promote_preflight(request: PromoteRequest) -> tuple[StackConfig, StackConfig]:
    """The checks that need no AWS call: environments, exclusive options, both stacks, the model and
    the variant. Returns the source and target stacks' configs."""
    check_environments(request.source, request.target)
    if request.check and request.apply:
        raise PromotionUsageError("--check and --apply exclude each other: a check changes nothing, --apply deploys")
    _, source_config = _load(request.team, request.source)
    _, target_config = _load(request.team, request.target)
    for config in (source_config, target_config):
        if request.model not in config.model_registry.models:
            raise PromotionUsageError(f"model {request.model!r} is not defined in {config.stack_name}; models: {', '.join(config.model_registry.models) or 'none'}")
    pin_targets(target_config, request.model, request.variant)  # a wrong --variant fails before any AWS call
    data = request.evaluation_data
    if data is not None and not data.startswith("s3://") and not Path(data).is_dir():
        raise PromotionUsageError(f"{EVALUATION_DATA_FLAG} {data}: no such directory; allowed: a directory or s3:// prefix written by `mlops-train dataset`")
    return source_config, target_config


def check_environments(source: str, target: str) -> None:
    """PromotionUsageError unless `source` and `target` are known environments and `target` comes after `source`."""
    for flag, env in (("--from", source), ("--to", target)):
        if env not in PROMOTION_ORDER:
            raise PromotionUsageError(f"{flag} {env!r} is not allowed; allowed: {', '.join(PROMOTION_ORDER)}")
    if PROMOTION_ORDER.index(target) <= PROMOTION_ORDER.index(source):
        raise PromotionUsageError(f"cannot promote from {source} to {target}: promotion moves forward ({' -> '.join(PROMOTION_ORDER)})")


def _load(team: str, environment: str) -> tuple[stack_files.StackSource, StackConfig]:
    name = f"{team}-{environment}"
    if not stack_files.stack_file(name).exists():
        teams = sorted({s.rsplit("-", 1)[0] for s in stack_files.list_stacks()})
        raise PromotionUsageError(f"no stack {name} ({stack_files.stack_file(name)} not found); teams: {', '.join(teams) or 'none'}")
    source = stack_files.load_source(name)
    return source, stack_files.validate(source)


def _namer(config: StackConfig) -> naming.Namer:
    return naming.Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)


def _artifact_gate(package: Mapping[str, Any], *, session: Any, target_config: StackConfig, model: str, workdir: Path) -> tuple[GateResult, Path | None]:
    """Download the package's model.tar.gz and check its schema.json against the target's feature store."""
    from botocore.exceptions import BotoCoreError, ClientError

    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    urls = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
    if len(urls) != 1:
        return GateResult("schema", False, f"the package has {len(urls)} containers with model data; promotion handles exactly one"), None
    url = urls[0]
    archive = workdir / "model.tar.gz"
    try:
        bucket, key = split_s3(url)
        session.client("s3").download_file(bucket, key, str(archive))
        model_schema = read_schema(archive)
    except (ClientError, BotoCoreError, ValueError, OSError, tarfile.TarError) as exc:
        return GateResult("schema", False, f"cannot read {SCHEMA_MEMBER} from {url}: {exc}"), None
    spec = target_config.model_registry.models[model]
    target_schema = feature_schema(target_config, model)
    problems = schema_mismatches(model_schema, target_schema, group=spec.feature_group)
    if problems:
        return GateResult("schema", False, f"incompatible with {target_config.stack_name}'s feature group {spec.feature_group!r}: " + "; ".join(problems)), archive
    n = len(model_schema.get("features") or [])
    return GateResult("schema", True, f"{n} model input(s) match {target_config.stack_name}'s feature group {spec.feature_group!r}"), archive


def _gated_pin(
    outcome: Outcome, gates: list[GateResult], *, stack: str, stack_file: Path, targets: list[PinTarget], pin: Pin,
    request: PromoteRequest | RollbackRequest,
) -> str | None:
    """The tail both promotion and rollback share: pin the candidate in the stack file's text, add the
    policy gate on the pinned stack, record gates and diff on `outcome`, refuse if any gate failed.
    Returns the new stack file text to write, or None on a dry run (nothing is to be written)."""
    before = stack_file.read_text(encoding="utf-8")
    after = pin_text(before, targets, pin=pin)
    gates.append(policy_gate(stack=stack, candidate_text=after, team=request.team))
    outcome.gates = gates
    outcome.diff = unified_diff(before, after, path=display_path(stack_file))
    if not all(g.passed for g in gates):
        outcome.status = "refused"
        raise Refused(outcome)
    if request.check:
        outcome.status = "checked"
        return None
    return after


def promote(request: PromoteRequest, *, on_output: Callable[[str], Any] = print) -> Outcome:
    """Run the gates, then (unless a check) copy, register, pin and audit. Raises Refused or PromotionError."""
    source_config, target_config = promote_preflight(request)
    if request.apply:
        check_apply_possible()
    stack = target_config.stack_name

    source_registry = Registry(
        session=session_for(request.source, source_config.aws.region),
        group=_namer(source_config).model_package_group(request.model), environment=request.source,
    )
    source_registry.require_group()
    version = request.version
    if version is None:
        version = source_registry.latest_approved()
        if version is None:
            raise PromotionError(f"no Approved version in {source_registry.group}; approve one or give --version N")
    package = source_registry.describe(version)
    if package is None:
        known = [str(s["ModelPackageVersion"]) for s in source_registry.summaries()]
        raise PromotionUsageError(f"version {version} is not in {source_registry.group}; versions: {', '.join(known) or 'none'}")
    target_registry = Registry(session=session_for(request.target, target_config.aws.region), group=_namer(target_config).model_package_group(request.model), environment=request.target)
    target_registry.require_group()

    lock = contextlib.nullcontext() if request.check else stack_lock(stack)
    with lock, tempfile.TemporaryDirectory(prefix="mlops-promote-") as tmp:
        outcome = _promote_locked(
            request, package=package, version=version, source_registry=source_registry,
            target_registry=target_registry, workdir=Path(tmp),
        )
    if request.apply and outcome.status in ("promoted", "no-op"):
        # A no-op still deploys: the pin may be in the file from an earlier run without --apply.
        pulumi_up(stack, on_output=on_output)
        outcome.applied = True
    return outcome


def _promote_locked(
    request: PromoteRequest, *, package: Mapping[str, Any], version: int, source_registry: Registry,
    target_registry: Registry, workdir: Path,
) -> Outcome:
    """Gates, then copy, register, pin and audit; the caller holds the target stack's lock."""
    # Read the target under the lock: another promotion may have pinned since the caller looked.
    target_source, target_config = _load(request.team, request.target)
    targets = pin_targets(target_config, request.model, request.variant)
    stack = target_config.stack_name
    source_arn = package["ModelPackageArn"]
    outcome = Outcome(action="promote", stack=stack, targets=targets, previous=current_pin(target_config, targets[0]))
    assert outcome.previous is not None
    existing = target_registry.promoted_from(source_arn)
    if existing is not None:
        pin = Pin(existing["ModelPackageVersion"], existing["InferenceSpecification"]["Containers"][0]["ModelDataUrl"], existing["ModelPackageArn"])
        if all(current_pin(target_config, t) == Pin(pin.version, pin.model_data_url) for t in targets):
            outcome.status, outcome.pin = "no-op", pin
            outcome.notes.append(f"{stack} already pins {request.model} version {pin.version} (promoted from {source_arn}); nothing changed")
            return outcome
        outcome.notes.append(f"reusing {pin.package_arn}, registered by an earlier promotion of {source_arn}")
    else:
        next_version = max((s["ModelPackageVersion"] for s in target_registry.summaries()), default=0) + 1
        bucket = _namer(target_config).bucket("artifacts")
        pin = Pin(next_version, f"s3://{bucket}/models/{request.model}/{next_version}/model.tar.gz", None)
    outcome.pin = pin

    spec = target_config.model_registry.models[request.model]
    metrics = package_metrics(package)
    status = package.get("ModelApprovalStatus")
    gates = [GateResult(
        "approved", status == APPROVED,
        f"{source_arn} is {status}" + ("" if status == APPROVED else f"; approve it in {source_registry.group} first"),
    )]
    schema_result, archive = _artifact_gate(package, session=source_registry.session, target_config=target_config, model=request.model, workdir=workdir)
    champion = target_registry.describe(outcome.previous.version)
    if champion is not None:
        outcome.previous = dataclasses.replace(outcome.previous, package_arn=champion["ModelPackageArn"])
    champion_label = (f"champion {target_registry.group} version {outcome.previous.version}" if champion
                      else f"version {outcome.previous.version} pinned in {stack} is not in {target_registry.group}")
    regression = _regression(
        request, package=package, champion=champion, champion_label=champion_label, archive=archive, targets=targets,
        source_registry=source_registry, target_registry=target_registry, target_config=target_config, workdir=workdir, outcome=outcome,
    )
    if outcome.evidence is not None:
        # Thresholds are absolute, so the package's self-reported figures would do; the shared slice's are better.
        gates.append(threshold_gate(evaluation_metrics(outcome.evidence.evaluation), spec.gates, where=f"{stack} gates, on the {outcome.evidence.kind}'s slice"))
    else:
        gates.append(threshold_gate(metrics, spec.gates, where=f"{stack} gates, on the package's self-reported metrics"))
    gates += [regression, schema_result]
    after = _gated_pin(outcome, gates, stack=stack, stack_file=target_source.stack_file, targets=targets, pin=pin, request=request)
    if after is None:
        return outcome

    assert archive is not None, "the schema gate passed, so the artifact was downloaded"
    if existing is None:
        created = _register(
            package=package, archive=archive, pin=pin, source_session=source_registry.session,
            target_registry=target_registry, source_env=request.source,
        )
        if created.version != pin.version:
            # Someone registered into the target group outside this checkout's lock. The artifact is
            # where the package says; only its folder name differs from the version.
            outcome.notes.append(f"registered as version {created.version}, not {pin.version} as expected; the artifact stays at {created.model_data_url}")
            before = target_source.stack_file.read_text(encoding="utf-8")
            after = pin_text(before, targets, pin=created)
            outcome.diff = unified_diff(before, after, path=display_path(target_source.stack_file))
        outcome.pin = pin = created
    atomic_write(target_source.stack_file, after)
    outcome.record = _record(
        action="promote", team=request.team, model=request.model, source=request.source, target=request.target,
        stack=stack, source_arn=source_arn, source_version=version, pin=pin, previous=outcome.previous,
        targets=targets, metrics=metrics, gates=gates, stack_file=target_source.stack_file, text=after,
    )
    outcome.record["evidence"] = _kept_evidence(outcome.evidence, pin=pin, target_registry=target_registry)
    append_audit(request.team, outcome.record)
    outcome.status = "promoted"
    return outcome


def _regression(
    request: PromoteRequest, *, package: Mapping[str, Any], champion: Mapping[str, Any] | None, champion_label: str,
    archive: Path | None, targets: list[PinTarget], source_registry: Registry, target_registry: Registry,
    target_config: StackConfig, workdir: Path, outcome: Outcome,
) -> GateResult:
    """The regression gate on shared evidence (evidence module): the candidate's own evaluation when it faced
    this champion, else a fresh one on the target's labelled data; fails when the target has a champion and
    neither can be had. Records the evidence on `outcome`."""
    spec = target_config.model_registry.models[request.model]
    compared = compared_metrics(spec.gates, spec.task)
    if champion is None:
        return regression_gate({}, None, compared=compared, margin=spec.max_regression, champion_label=champion_label)
    urls, notes = champion_urls(dict(champion), source_sagemaker=source_registry.sagemaker)
    outcome.notes.extend(notes)
    tried: list[str] = []
    evidence = None
    if request.evaluation_data is None:
        evidence, why = candidate_evaluation(dict(package), session=source_registry.session, urls=urls, workdir=workdir)
        if evidence is None:
            tried.append(why)
    if evidence is None:
        evidence, why = _fresh_evaluation(
            request, champion=champion, archive=archive, target=targets[0], target_registry=target_registry,
            target_config=target_config, workdir=workdir,
        )
        if evidence is None:
            tried.append(why)
    if evidence is None:
        return missing_evidence_gate(champion_label=champion_label, tried=tried, flag=EVALUATION_DATA_FLAG)
    outcome.evidence = evidence
    return evaluation_regression_gate(
        evidence.evaluation, evidence.champion, compared=compared, margin=spec.max_regression, evidence=evidence.label,
        champion_label=champion_label,
    )


def _fresh_evaluation(
    request: PromoteRequest, *, champion: Mapping[str, Any], archive: Path | None, target: PinTarget,
    target_registry: Registry, target_config: StackConfig, workdir: Path,
) -> tuple[Evidence | None, str]:
    """`mlops-train evaluate` of the candidate and the target's champion on labelled data of the target
    (`--evaluation-data`, else built from its recent data); None and why when that is not possible."""
    from botocore.exceptions import BotoCoreError, ClientError

    spec = target_config.model_registry.models[request.model]
    what = request.evaluation_data or "the target's recent labelled data"
    if archive is None:
        return None, f"a shared evaluation on {what} needs the candidate's artifact, which was not readable (see the schema gate)"
    champion_url = model_data_url(dict(champion))
    try:
        if champion_url is None:
            raise ValueError(f"the champion package {champion['ModelPackageArn']} has no single model data URL")
        local = workdir / "champion.tar.gz"
        bucket, key = split_s3(champion_url)
        target_registry.session.client("s3").download_file(bucket, key, str(local))
        sources = None if request.evaluation_data else _dataset_sources(target_config, request.model, target=target, target_registry=target_registry)
        shared = workdir / "shared"
        shared.mkdir(exist_ok=True)
        run = SharedRun(
            schema=feature_schema(target_config, request.model), candidate=archive,
            champion_name=f"{target_config.stack_name}/{target.variant}", champion=local,
            gates=dict(spec.gates), max_regression=spec.max_regression,
        )
        return shared_evaluation(run, data=request.evaluation_data, sources=sources, session=target_registry.session, workdir=shared), ""
    except (ClientError, BotoCoreError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
        return None, f"a shared evaluation on {what} was not possible: {exc}"


def _dataset_sources(config: StackConfig, model: str, *, target: PinTarget, target_registry: Registry) -> DatasetSources:
    """The target's offline store, the pinned endpoint's captures and the model's ground truth."""
    namer = _namer(config)
    spec = config.model_registry.models[model]
    group = namer.feature_group(spec.feature_group)
    return DatasetSources(
        feature_group=group, offline_store=offline_store_uri(target_registry.sagemaker, group),
        captures=f"s3://{namer.bucket('capture')}/datacapture/{namer.endpoint(target.endpoint)}",
        ground_truth=str(spec.ground_truth_uri or namer.ground_truth_uri(model)),
    )


def _kept_evidence(evidence: Evidence | None, *, pin: Pin, target_registry: Registry) -> dict[str, Any] | None:
    """The evidence for the audit record. A shared evaluation lies in the promotion's temporary workdir, so
    it is kept beside the promoted artifact in the target's bucket and recorded there."""
    if evidence is None:
        return None
    if evidence.kind == SHARED_EVALUATION:
        bucket, key = split_s3(pin.model_data_url)
        kept = key.rsplit("/", 1)[0] + "/" + PROMOTION_EVALUATION
        target_registry.session.client("s3").upload_file(evidence.location, bucket, kept)
        evidence = dataclasses.replace(evidence, location=f"s3://{bucket}/{kept}")
    return evidence.to_json()


def _register(
    *, package: Mapping[str, Any], archive: Path, pin: Pin, source_session: Any, target_registry: Registry, source_env: str,
) -> Pin:
    """Copy the artifact and metrics into the target bucket and register an Approved package there."""
    s3_target = target_registry.session.client("s3")
    bucket, key = split_s3(pin.model_data_url)
    s3_target.upload_file(str(archive), bucket, key)
    metrics_doc = None
    statistics = (package.get("ModelMetrics") or {}).get("ModelQuality", {}).get("Statistics")
    if statistics and statistics.get("S3Uri"):
        src_bucket, src_key = split_s3(statistics["S3Uri"])
        body = source_session.client("s3").get_object(Bucket=src_bucket, Key=src_key)["Body"].read()
        metrics_key = key.rsplit("/", 1)[0] + "/metrics.json"
        s3_target.put_object(Bucket=bucket, Key=metrics_key, Body=body, ContentType=statistics.get("ContentType", "application/json"))
        metrics_doc = {"ModelQuality": {"Statistics": {"ContentType": statistics.get("ContentType", "application/json"), "S3Uri": f"s3://{bucket}/{metrics_key}"}}}
    spec = copy.deepcopy(package["InferenceSpecification"])
    for container in spec["Containers"]:
        if container.get("ModelDataUrl"):
            container["ModelDataUrl"] = pin.model_data_url
    props = dict(package.get("CustomerMetadataProperties") or {})
    props[SOURCE_ARN_KEY] = package["ModelPackageArn"]
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": target_registry.group,
        # Approved on creation: the promotion is the approval; the team's audit log says who gave it.
        "ModelPackageDescription": f"promoted from {source_env} (mlops promote, approved by promotion): {package['ModelPackageArn']}"[:1024],
        "InferenceSpecification": spec,
        "ModelApprovalStatus": APPROVED,
        "CustomerMetadataProperties": props,
        # SageMaker returns the first package for a retried token instead of registering a second.
        "ClientToken": hashlib.sha256(f"{target_registry.group}\0{package['ModelPackageArn']}".encode()).hexdigest()[:36],
    }
    if metrics_doc:
        kwargs["ModelMetrics"] = metrics_doc
    arn = target_registry.sagemaker.create_model_package(**kwargs)["ModelPackageArn"]
    created = target_registry.sagemaker.describe_model_package(ModelPackageName=arn)
    return Pin(created["ModelPackageVersion"], created["InferenceSpecification"]["Containers"][0]["ModelDataUrl"], arn)


def _record(
    *, action: str, team: str, model: str, source: str, target: str, stack: str, source_arn: str | None,
    source_version: int, pin: Pin, previous: Pin, targets: list[PinTarget], metrics: Mapping[str, float],
    gates: list[GateResult], stack_file: Path, text: str,
) -> dict[str, Any]:
    return {
        "action": action,
        "team": team,
        "model": model,
        "who": actor(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "from": source,
        "to": target,
        "stack": stack,
        "source_package_arn": source_arn,
        "source_version": source_version,
        "target_package_arn": pin.package_arn,
        "target_version": pin.version,
        "model_data_url": pin.model_data_url,
        "previous": {"version": previous.version, "model_data_url": previous.model_data_url, "package_arn": previous.package_arn},
        "variants": [t.ref for t in targets],
        "metrics": dict(metrics),
        "gates": [g.to_json() for g in gates],
        "file": display_path(stack_file),
        "file_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


# --------------------------------------------------------------------------------------------
# Rollback


@dataclass(frozen=True, kw_only=True)
class RollbackRequest:
    """`mlops rollback`'s arguments."""

    team: str
    environment: str
    model: str | None = None
    """Default: the one model the environment's endpoints serve."""
    variant: str | None = None
    check: bool = False
    """Run every gate against AWS, read-only, and show the diff; change nothing."""
    apply: bool = False


def rollback_preflight(request: RollbackRequest) -> tuple[StackConfig, str, list[PinTarget]]:
    """The checks that need no AWS call: environment, exclusive options, model and variant.
    Returns the stack's config, the model and the variants to pin."""
    if request.environment not in PROMOTION_ORDER:
        raise PromotionUsageError(f"--env {request.environment!r} is not allowed; allowed: {', '.join(PROMOTION_ORDER)}")
    if request.check and request.apply:
        raise PromotionUsageError("--check and --apply exclude each other: a check changes nothing, --apply deploys")
    _, config = _load(request.team, request.environment)
    served = list(dict.fromkeys(e.model for e in config.endpoints.values()))
    model = request.model
    if model is None:
        if len(served) != 1:
            raise PromotionUsageError(f"{config.stack_name} serves {len(served)} models ({', '.join(served) or 'none'}); give --model NAME")
        model = served[0]
    elif model not in config.model_registry.models:
        raise PromotionUsageError(f"model {model!r} is not defined in {config.stack_name}; models: {', '.join(config.model_registry.models) or 'none'}")
    return config, model, pin_targets(config, model, request.variant)


def previous_champion(request: RollbackRequest, config: StackConfig, *, model: str, targets: list[PinTarget]) -> tuple[Pin, dict[str, Any]]:
    """The current pin and the champion before it, replayed from the audit log (no AWS call).
    Raises PromotionError when the log has no previous champion or disagrees with the stack file."""
    stack = config.stack_name
    current = current_pin(config, targets[0])
    history = champion_history(read_audit(request.team), team=request.team, environment=request.environment, model=model, refs={t.ref for t in targets})
    if not history:
        raise PromotionError(f"the audit log {display_path(audit_path(request.team))} records no promotion of {model} into {stack}; nothing to roll back to")
    top = history[-1]
    if (top["version"], top["model_data_url"]) != (current.version, current.model_data_url):
        raise PromotionError(
            f"{stack} pins {model} version {current.version} ({current.model_data_url}) but the audit log's last champion is "
            f"version {top['version']} ({top['model_data_url']}); the file was changed outside promote/rollback, so the previous champion is unknown"
        )
    if len(history) < 2:
        raise PromotionError(f"{model} version {current.version} is the first champion of {stack} in the audit log; there is no previous one")
    return current, history[-2]


def rollback(request: RollbackRequest, *, on_output: Callable[[str], Any] = print) -> Outcome:
    """Pin the previous champion from the audit log. Gates: approved, metrics, schema, policy."""
    preflight_config, model, targets = rollback_preflight(request)
    if request.apply:
        check_apply_possible()

    lock = contextlib.nullcontext() if request.check else stack_lock(preflight_config.stack_name)
    with lock, tempfile.TemporaryDirectory(prefix="mlops-rollback-") as tmp:
        # Read the stack file under the lock: a promotion may have pinned since the preflight.
        target_source, config = _load(request.team, request.environment)
        stack = config.stack_name
        current, previous = previous_champion(request, config, model=model, targets=targets)
        session = session_for(request.environment, config.aws.region)
        registry = Registry(session=session, group=_namer(config).model_package_group(model), environment=request.environment)
        registry.require_group()
        package = registry.describe(previous["version"])
        pin = Pin(previous["version"], previous["model_data_url"], package["ModelPackageArn"] if package else None)
        outcome = Outcome(action="rollback", stack=stack, targets=targets, pin=pin, previous=current)
        spec = config.model_registry.models[model]
        if package is None:
            gates = [GateResult("approved", False, f"version {pin.version} is not in {registry.group}")]
            metrics: dict[str, float] = {}
        else:
            metrics = package_metrics(package)
            status = package.get("ModelApprovalStatus")
            gates = [GateResult("approved", status == APPROVED, f"{package['ModelPackageArn']} is {status}")]
            gates.append(threshold_gate(metrics, spec.gates, where=f"{stack} gates"))
            package_url = package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
            if package_url != pin.model_data_url:
                gates.append(GateResult("schema", False, f"the audit log pins {pin.model_data_url} but {package['ModelPackageArn']} holds {package_url}"))
            else:
                gates.append(_artifact_gate(package, session=session, target_config=config, model=model, workdir=Path(tmp))[0])
        after = _gated_pin(outcome, gates, stack=stack, stack_file=target_source.stack_file, targets=targets, pin=pin, request=request)
        if after is None:
            return outcome
        atomic_write(target_source.stack_file, after)
        outcome.record = _record(
            action="rollback", team=request.team, model=model, source=request.environment, target=request.environment,
            stack=stack, source_arn=pin.package_arn, source_version=pin.version, pin=pin, previous=current, targets=targets,
            metrics=metrics, gates=gates, stack_file=target_source.stack_file, text=after,
        )
        append_audit(request.team, outcome.record)
        outcome.status = "rolled-back"
    if request.apply:
        pulumi_up(stack, on_output=on_output)
        outcome.applied = True
    return outcome
