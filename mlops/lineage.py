"""`mlops lineage`: the chain from a live endpoint variant back to its data and configuration.

variant (the stack file's pin) -> model package (group, version, approval, created) -> pipeline
execution -> training job -> image and code version -> evaluation (decision, the champions it faced,
with figures) -> dataset manifest (sources, cutoff, rows, content hash) -> the stack config hash it was
built from, and whether the current stack config still hashes the same (specs.lineage.config_hash).

The model package is the one in the stack's own Model Package Group whose model data URL is the pinned
`model_data_url` (else the one of the pinned `model_version`). A version registered by the retraining
pipeline carries the specs.lineage keys in its CustomerMetadataProperties; a version the training
container registered itself carries other metadata (data fingerprint, code version): what it has is
shown and every missing link reads NOT_RECORDED, never an error. In the cloud SageMaker Pipelines also
records the chain in SageMaker's lineage (its step associations); the pipeline execution ARN printed
here opens it.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlops_contracts import evaluation as evaluation_contract
from specs import lineage as keys
from specs.config.schema import StackConfig
from specs.naming import Namer

NOT_RECORDED = "not recorded"
"""The value of a link the model version does not record."""


class LineageError(ValueError):
    """The stack does not have what was asked for (an endpoint, a variant, the pinned version)."""


def variant_pin(config: StackConfig, endpoint: str, variant: str | None) -> tuple[str, str, Any]:
    """(model, variant name, pinned Variant) of `endpoint`'s `variant` (default: its first production
    variant, the champion). LineageError naming what exists otherwise."""
    if endpoint not in config.endpoints:
        raise LineageError(f"endpoint {endpoint!r} is not in stack {config.stack_name}; endpoints: {', '.join(sorted(config.endpoints)) or 'none'}")
    spec = config.endpoints[endpoint]
    variants = spec.all_variants()
    name = variant or next(iter(spec.production_variants()))
    if name not in variants:
        raise LineageError(f"endpoint {endpoint!r} has no variant {name!r}; variants: {', '.join(variants)}")
    return spec.model, name, variants[name]


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def find_package(sagemaker: Any, *, group: str, model_data_url: str, version: int) -> tuple[dict[str, Any], str]:
    """(DescribeModelPackage of the pinned version, how it was matched). The group's package whose
    model data URL is the pinned one wins; else the pinned version number. LineageError when neither."""
    pages = sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
    summaries = sorted((s for page in pages for s in page["ModelPackageSummaryList"]), key=lambda s: -s["ModelPackageVersion"])
    by_version = None
    for summary in summaries:
        package = sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        urls = [c.get("ModelDataUrl") for c in (package.get("InferenceSpecification") or {}).get("Containers", [])]
        if model_data_url in urls:
            return package, "model_data_url"
        if summary["ModelPackageVersion"] == version:
            by_version = package
    if by_version is not None:
        return by_version, f"model_version (its model data URL is not the pinned {model_data_url})"
    raise LineageError(f"model package group {group!r} has no version {version} and no version whose model data URL is {model_data_url}; "
                       f"versions: {', '.join(str(s['ModelPackageVersion']) for s in reversed(summaries)) or 'none'}")


def _read_json(s3: Any, uri: str) -> tuple[Any, str | None]:
    """(decoded document, None) or (None, why it could not be read)."""
    try:
        bucket, key = _split_s3(uri)
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), None
    except Exception as exc:  # a missing or unreadable link is shown, the rest of the chain still is
        return None, f"unreadable: {type(exc).__name__}: {exc}"


def evaluation_link(s3: Any, uri: str | None) -> dict[str, Any] | str:
    """The evaluation a version was registered with: decision, primary metric, the candidate's figures
    and every champion it faced with the paired differences."""
    if not uri:
        return NOT_RECORDED
    doc, problem = _read_json(s3, uri)
    if problem:
        return {"uri": uri, "error": problem}
    try:
        ev = evaluation_contract.parse(doc, source=uri)
    except evaluation_contract.EvaluationFormatError as exc:
        return {"uri": uri, "error": str(exc)}
    return {
        "uri": uri,
        "decision": {"passed": ev.decision.passed, "failed_gates": list(ev.decision.failed_gates), "reason": ev.decision.reason},
        "primary_metric": ev.primary_metric,
        "slice": {"rows": ev.slice.rows, "from": ev.slice.start, "to": ev.slice.end, "hash": ev.slice.hash},
        "candidate": {name: e.value for name, e in sorted(ev.candidate.metrics.items())},
        "champions": [
            {"name": c.name, "uri": c.uri, "metrics": {n: e.value for n, e in sorted(c.metrics.items())},
             "difference": {n: {"value": d.value, "ci_low": d.ci_low, "ci_high": d.ci_high} for n, d in sorted(c.difference.items())}}
            for c in ev.champions
        ],
        "dataset_manifest": ev.slice.dataset_manifest,
    }


def dataset_link(s3: Any, uri: str | None) -> dict[str, Any] | str:
    """The training set's manifest: the files it was built from, cutoff, rows, content hash."""
    if not uri:
        return NOT_RECORDED
    doc, problem = _read_json(s3, uri)
    if problem:
        return {"uri": uri, "error": problem}
    if not isinstance(doc, dict):
        return {"uri": uri, "error": f"expected a JSON object, got {type(doc).__name__}"}
    counts = doc.get("counts") or {}
    return {
        "uri": uri,
        "feature_group": doc.get("feature_group", NOT_RECORDED),
        "sources": doc.get("sources", NOT_RECORDED),
        "cutoff": doc.get("cutoff", NOT_RECORDED),
        "window": doc.get("window", NOT_RECORDED),
        "rows": {split: counts[split] for split in ("train", "validation") if split in counts} or NOT_RECORDED,
        "content_hash": doc.get("content_hash", NOT_RECORDED),
    }


def _evaluation_lineage(s3: Any, uri: str | None, key: str) -> str:
    """A key of the evaluation's lineage (where `mlops-train evaluate` recorded it), else NOT_RECORDED."""
    if not uri:
        return NOT_RECORDED
    doc, problem = _read_json(s3, uri)
    recorded = doc.get("lineage") if not problem and isinstance(doc, dict) else None
    return (recorded if isinstance(recorded, dict) else {}).get(key, NOT_RECORDED)


def _package_link(package: dict[str, Any], matched_by: str) -> dict[str, Any]:
    created = package.get("CreationTime")
    return {
        "arn": package["ModelPackageArn"],
        "group": package.get("ModelPackageGroupName"),
        "version": package.get("ModelPackageVersion"),
        "approval": package.get("ModelApprovalStatus"),
        "created": created.isoformat() if hasattr(created, "isoformat") else created,
        "matched_by": matched_by,
    }


def lineage(config: StackConfig, *, endpoint: str, variant: str | None, client: Callable[[str], Any]) -> dict[str, Any]:
    """The whole chain as a JSON-able document; `client(service)` gives boto3 clients of the stack's AWS."""
    model, name, pin = variant_pin(config, endpoint, variant)
    namer = Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)
    package, matched_by = find_package(client("sagemaker"), group=namer.model_package_group(model),
                                       model_data_url=pin.model_data_url, version=pin.model_version)
    meta = package.get("CustomerMetadataProperties") or {}
    containers = (package.get("InferenceSpecification") or {}).get("Containers", [])
    s3 = client("s3")
    evaluation = evaluation_link(s3, meta.get(keys.EVALUATION))
    manifest_uri = meta.get(keys.DATASET_MANIFEST) or (evaluation.get("dataset_manifest") if isinstance(evaluation, dict) else None)
    current = keys.config_hash(config, model)
    recorded = meta.get(keys.CONFIG_HASH)
    return {
        "stack": config.stack_name,
        "endpoint": endpoint,
        "variant": {"name": name, "model": model, "model_version": pin.model_version, "model_data_url": pin.model_data_url},
        "model_package": _package_link(package, matched_by),
        "registered_by": "retraining pipeline" if keys.PIPELINE_EXECUTION in meta else "training container (not the pipeline)",
        "pipeline_execution": meta.get(keys.PIPELINE_EXECUTION, NOT_RECORDED),
        "training_job": meta.get(keys.TRAINING_JOB, NOT_RECORDED),
        "image": meta.get(keys.IMAGE) or (containers[0].get("Image") if containers else NOT_RECORDED),
        "code_version": meta.get(keys.CODE_VERSION) or meta.get("code_version", NOT_RECORDED),
        "data_fingerprint": meta.get("data_fingerprint", NOT_RECORDED),
        "mlflow_run": meta.get(keys.MLFLOW_RUN) or meta.get("mlflow_run_id") or _evaluation_lineage(s3, meta.get(keys.EVALUATION), keys.MLFLOW_RUN),
        "evaluation": evaluation,
        "dataset": dataset_link(s3, manifest_uri),
        "config": {"recorded": recorded or NOT_RECORDED, "current": current,
                   "matches": (recorded == current) if recorded else NOT_RECORDED},
    }
