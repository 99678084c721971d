"""Lineage: the keys a registered model version carries to trace it back to its data and config, and
the stack config hash they record.

A version registered by the retraining pipeline's Register step records, as the model package's
`CustomerMetadataProperties`, where its evaluation lies (which names the dataset manifest, the
champions it faced and the decision), the pipeline execution and training job that made it, the
training image and code version, and the hash of the stack configuration it was built from.
`mlops lineage` follows these keys from a live variant back to the data; the pipeline definition
(specs.pipelines.retraining) writes them.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer:
the pipeline generator and the operator CLI both read it).
"""
from __future__ import annotations

import hashlib
import json

from specs.config.schema import StackConfig

EVALUATION = "mlops:evaluation"
"""s3:// URI of the evaluation.json the version was registered with (mlops_contracts.evaluation)."""
PIPELINE_EXECUTION = "mlops:pipeline_execution"
"""ARN of the pipeline execution that registered the version."""
TRAINING_JOB = "mlops:training_job"
"""ARN (or, where only that is known, the name) of the training job that produced the artifact."""
DATASET_MANIFEST = "mlops:dataset_manifest"
"""s3:// URI of the training set's manifest.json (sources, cutoff, rows, content hash)."""
CONFIG_HASH = "mlops:config_hash"
"""`config_hash(config, model)` of the stack the pipeline was generated from."""
IMAGE = "mlops:image"
"""The training image the version was trained with (a digest where the stack pins one)."""
CODE_VERSION = "mlops:code_version"
"""The training code's version, as the container reports it."""

MLFLOW_RUN = "mlops:mlflow_run"
"""The MLflow run id of the training run (mlops_contracts.tracking.LINEAGE_KEY): recorded in the
evaluation's lineage by `mlops-train evaluate` from the candidate's metadata.json, when tracked."""

KEYS = (EVALUATION, PIPELINE_EXECUTION, TRAINING_JOB, DATASET_MANIFEST, CONFIG_HASH, IMAGE, CODE_VERSION)


def config_hash(config: StackConfig, model: str) -> str:
    """sha256 of what a model's training depends on in the stack configuration: the model's own
    settings, the training settings, the feature group it reads and the images, as canonical JSON
    (keys sorted, no whitespace). Same config, same hash, on every machine; tags, alarms and endpoints
    do not enter it. Raises KeyError for a model the stack does not declare."""
    spec = config.model_registry.models[model]
    document = {
        "stack": f"{config.team}-{config.environment}",
        "model": model,
        "model_config": spec.model_dump(mode="json"),
        "training": config.training.model_dump(mode="json"),
        "feature_group": config.feature_store.feature_groups[spec.feature_group].model_dump(mode="json"),
        "images": config.images.model_dump(mode="json"),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
