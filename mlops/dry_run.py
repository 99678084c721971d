"""Dry runs: what a command would send, computed without the network and without credentials.

A dry run reads only local files (stack files, the audit log). Every request the command would send
is listed with its parameters; a value only the cloud knows (a registry's next version number, an
artifact's URL, a feature group's resolved offline store) is printed as an explicit placeholder, and
the dry run lists those placeholders with where the real command reads each one.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from specs import lineage
from specs.config import stack_files
from components.stack import namer_for
from mlops import promote as promotion
from mlops.promote.evidence import DEFAULT_WINDOW_DAYS


def unresolved(source: str) -> str:
    """The placeholder for a value only the cloud knows: where the real run reads it."""
    return f"<resolved at run time: {source}>"


@dataclass(frozen=True)
class Call:
    """One request the real command would send."""

    to: str
    """Who receives it: an environment's AWS account and the credentials used, or an API server."""
    operation: str
    """`service:Operation`, e.g. `sagemaker:CreateModelPackage`."""
    params: dict[str, Any]
    why: str = ""


@dataclass
class DryRun:
    """What a command would do, with nothing sent and nothing changed."""

    title: str
    calls: list[Call] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    """Gates the real command evaluates, with what is known of them offline."""
    changes: list[str] = field(default_factory=list)
    """Files the real command would write, beyond the diff."""
    diff: str = ""
    unresolved: dict[str, str] = field(default_factory=dict)
    """Placeholder -> where the real command resolves it."""

    def render(self) -> str:
        lines = [f"dry run: {self.title}; nothing was sent and nothing was changed", "would send, in order:"]
        for number, call in enumerate(self.calls, start=1):
            lines.append(f"  {number}. {call.operation} -> {call.to}" + (f"  ({call.why})" if call.why else ""))
            lines.append(f"     {json.dumps(call.params, sort_keys=False)}")
        if self.checks:
            lines.append("gates, evaluated at run time:")
            lines.extend(f"  - {check}" for check in self.checks)
        if self.diff or self.changes:
            lines.append("would change:")
            lines.extend(f"  - {change}" for change in self.changes)
        text = "\n".join(lines) + "\n" + self.diff
        if self.unresolved:
            text += f"unresolved ({len(self.unresolved)}): values only the cloud knows, shown as placeholders\n"
            text += "".join(f"  - {name}: {source}\n" for name, source in self.unresolved.items())
        else:
            text += "unresolved: none\n"
        return text


def _account(environment: str, account_id: str) -> tuple[str, list[Call]]:
    """Who a request to `environment` goes to, and the STS call that assuming its role costs."""
    profile, role = promotion.access_for(environment)
    where = f"{environment} account {account_id}"
    if profile:
        return f"{where} (profile {profile})", []
    if role:
        assume = Call(f"{environment} STS (ambient credentials)", "sts:AssumeRole",
                      {"RoleArn": role, "RoleSessionName": f"mlops-promote-{environment}"}, "credentials for the calls below")
        return f"{where} (role {role})", [assume]
    return f"{where} (ambient credentials)", []


def _package_arn(config: Any, group: str, version: int | str) -> str:
    return f"arn:aws:sagemaker:{config.aws.region}:{config.aws.account_id}:model-package/{group}/{version}"


def promote_dry_run(request: promotion.PromoteRequest) -> DryRun:
    """`mlops promote --dry-run`: the promotion's requests, gates and stack file diff, offline."""
    source_config, target_config = promotion.promote_preflight(request)
    target_source = stack_files.load_source(target_config.stack_name)
    model, spec = request.model, target_config.model_registry.models[request.model]
    source_group = namer_for(source_config).model_package_group(model)
    target_group = namer_for(target_config).model_package_group(model)
    targets = promotion.pin_targets(target_config, model, request.variant)
    champion = promotion.current_pin(target_config, targets[0])
    plan = DryRun(f"promote {request.team}/{model} {request.source} -> {request.target} ({target_config.stack_name})")

    if request.version is None:
        plan.unresolved["<source version>"] = unresolved(f"the newest Approved ModelPackageVersion in ListModelPackages(ModelPackageGroupName={source_group})")
        source_arn = _package_arn(source_config, source_group, "<source version>")
    else:
        source_arn = _package_arn(source_config, source_group, request.version)
    artifact = unresolved(f"DescribeModelPackage(ModelPackageName={source_arn}).InferenceSpecification.Containers[0].ModelDataUrl")
    plan.unresolved["<target version>"] = unresolved(
        f"1 + the newest ModelPackageVersion in ListModelPackages(ModelPackageGroupName={target_group}) "
        f"(or the version an earlier promotion of {source_arn} registered there)"
    )
    plan.unresolved["the source package's approval, metrics and InferenceSpecification"] = unresolved(f"DescribeModelPackage(ModelPackageName={source_arn})")
    plan.unresolved["the source artifact's URL"] = artifact
    plan.unresolved["<the candidate's evaluation>"] = unresolved(
        f"DescribeModelPackage(ModelPackageName={source_arn}).CustomerMetadataProperties[{lineage.EVALUATION}]")
    target_url = f"s3://{namer_for(target_config).bucket('artifacts')}/models/{model}/<target version>/model.tar.gz"

    source_to, source_auth = _account(request.source, source_config.aws.account_id)
    target_to, target_auth = _account(request.target, target_config.aws.account_id)
    plan.calls += source_auth + [
        Call(source_to, "sagemaker:DescribeModelPackageGroup", {"ModelPackageGroupName": source_group}),
        Call(source_to, "sagemaker:ListModelPackages", {"ModelPackageGroupName": source_group}),
        Call(source_to, "sagemaker:DescribeModelPackage", {"ModelPackageName": source_arn}),
    ] + target_auth + [
        Call(target_to, "sagemaker:DescribeModelPackageGroup", {"ModelPackageGroupName": target_group}),
        Call(target_to, "sagemaker:ListModelPackages", {"ModelPackageGroupName": target_group}, "and DescribeModelPackage per version: was it promoted before?"),
        Call(target_to, "sagemaker:DescribeModelPackage", {"ModelPackageName": _package_arn(target_config, target_group, champion.version)}, "the champion's metrics"),
        Call(source_to, "s3:GetObject", {"Url": artifact}, "download model.tar.gz for the schema gate"),
        *_evidence_calls(request, target_config, source_to=source_to, target_to=target_to, source_arn=source_arn, champion=champion),
        Call(target_to, "s3:PutObject", {"Url": target_url}, "the artifact, once every gate passed"),
        Call(target_to, "s3:PutObject", {"Url": target_url.removesuffix("model.tar.gz") + "metrics.json"}, "if the source package has ModelMetrics"),
        Call(target_to, "sagemaker:CreateModelPackage", {
            "ModelPackageGroupName": target_group,
            "ModelApprovalStatus": promotion.APPROVED,
            "InferenceSpecification": f"the source package's, with ModelDataUrl {target_url}",
            "CustomerMetadataProperties": f"the source package's, plus {promotion.SOURCE_ARN_KEY}: {source_arn}",
            "ClientToken": hashlib.sha256(f"{target_group}\0{source_arn}".encode()).hexdigest()[:36] if request.version else "<from the source package ARN>",
        }),
    ]
    gates = ", ".join(f"{m} {'<=' if m in promotion.LOWER_IS_BETTER else '>='} {t:g}" for m, t in spec.gates.items()) or "none configured"
    plan.checks = [
        f"approved: the source package is {promotion.APPROVED} in {source_group}",
        f"metrics: {target_config.stack_name} gates {gates}",
        f"regression: no metric worse than champion {target_group} version {champion.version} by more than {spec.max_regression:g}, "
        f"on one shared evaluation: {_evidence_order(request)}",
        f"schema: the artifact's schema.json fits {target_config.stack_name}'s feature group {spec.feature_group!r}",
        f"policy: {target_config.stack_name} with the new pin plans with no mandatory policy violation",
    ]
    before = target_source.stack_file.read_text(encoding="utf-8")
    after = promotion.pin_text(before, targets, pin=promotion.Pin(version="<target version>", model_data_url=target_url))  # type: ignore[arg-type]
    plan.diff = promotion.unified_diff(before, after, path=promotion.display_path(target_source.stack_file))
    plan.changes = [f"{promotion.display_path(target_source.stack_file)}: pin {', '.join(t.ref for t in targets)} (diff below)",
                    f"{promotion.display_path(promotion.audit_path(request.team))}: append one audit record"]
    return plan


def _evidence_order(request: promotion.PromoteRequest) -> str:
    if request.evaluation_data:
        return f"`mlops-train evaluate` of the candidate and the champion on --evaluation-data {request.evaluation_data}"
    return (f"the candidate's own evaluation if it faced this champion, else `mlops-train dataset` of the target's last "
            f"{DEFAULT_WINDOW_DAYS:g} days and `mlops-train evaluate` of both; refused when neither is possible")


def _evidence_calls(request: promotion.PromoteRequest, config: Any, *, source_to: str, target_to: str, source_arn: str, champion: Any) -> list[Call]:
    """The reads the regression gate's evidence may cost (which ones run depends on what is found)."""
    namer = namer_for(config)
    spec = config.model_registry.models[request.model]
    calls = []
    if not request.evaluation_data:
        calls.append(Call(source_to, "s3:GetObject", {"Url": "<the candidate's evaluation>"}, "the candidate's own evaluation.json"))
    calls.append(Call(target_to, "s3:GetObject", {"Url": champion.model_data_url}, "the champion's artifact, if a shared evaluation runs"))
    if not request.evaluation_data:
        calls.append(Call(target_to, "sagemaker:DescribeFeatureGroup", {"FeatureGroupName": namer.feature_group(spec.feature_group)},
                          "its offline store, for the evaluation dataset"))
    return calls


def rollback_dry_run(request: promotion.RollbackRequest) -> DryRun:
    """`mlops rollback --dry-run`: the previous champion from the audit log, its requests and diff, offline."""
    config, model, targets = promotion.rollback_preflight(request)
    source = stack_files.load_source(config.stack_name)
    current, previous = promotion.previous_champion(request, config, model=model, targets=targets)
    group = namer_for(config).model_package_group(model)
    arn = previous.get("package_arn") or _package_arn(config, group, previous["version"])
    plan = DryRun(f"rollback {config.stack_name} {model}: version {current.version} -> {previous['version']}")
    to, auth = _account(request.environment, config.aws.account_id)
    plan.calls = auth + [
        Call(to, "sagemaker:DescribeModelPackageGroup", {"ModelPackageGroupName": group}),
        Call(to, "sagemaker:ListModelPackages", {"ModelPackageGroupName": group}),
        Call(to, "sagemaker:DescribeModelPackage", {"ModelPackageName": arn}, "approval and metrics"),
        Call(to, "s3:GetObject", {"Url": previous["model_data_url"]}, "download model.tar.gz for the schema gate"),
    ]
    plan.unresolved[f"{arn}'s approval and metrics"] = unresolved(f"DescribeModelPackage(ModelPackageName={arn})")
    plan.unresolved[f"{previous['model_data_url']}'s schema.json"] = unresolved(f"s3:GetObject {previous['model_data_url']}")
    spec = config.model_registry.models[model]
    gates = ", ".join(f"{m} {'<=' if m in promotion.LOWER_IS_BETTER else '>='} {t:g}" for m, t in spec.gates.items()) or "none configured"
    plan.checks = [
        f"approved: version {previous['version']} is {promotion.APPROVED} in {group}",
        f"metrics: {config.stack_name} gates {gates}",
        f"schema: the artifact's schema.json fits {config.stack_name}'s feature group {spec.feature_group!r}",
        f"policy: {config.stack_name} with the previous pin plans with no mandatory policy violation",
    ]
    before = source.stack_file.read_text(encoding="utf-8")
    after = promotion.pin_text(before, targets, pin=promotion.Pin(previous["version"], previous["model_data_url"]))
    plan.diff = promotion.unified_diff(before, after, path=promotion.display_path(source.stack_file))
    plan.changes = [f"{promotion.display_path(source.stack_file)}: pin {', '.join(t.ref for t in targets)} (diff below)",
                    f"{promotion.display_path(promotion.audit_path(request.team))}: append one audit record"]
    return plan
