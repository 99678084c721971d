"""Registration: one model package version in the team's Model Package Group (boto3).

The package carries the serving image and model data, the validation metrics (as the
`ModelQuality` statistics document in S3 and as `CustomerMetadataProperties`), and is created
`PendingManualApproval` unless the environment's config auto-approves it.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

PENDING = "PendingManualApproval"
APPROVED = "Approved"
CONTENT_TYPES = ["application/json", "text/csv"]
RESPONSE_TYPES = ["application/json"]
# CustomerMetadataProperties keys and values allow letters, digits, spaces and _.:/=+-@ only.
_DISALLOWED = re.compile(r"[^\w\s.:/=+\-@]")


@dataclass(frozen=True, kw_only=True)
class Registration:
    """What to register."""

    group_name: str
    """The Model Package Group (created by the platform's infrastructure, not here)."""
    image_uri: str
    """Serving image for the inference specification."""
    model_data_url: str
    """s3:// URL of model.tar.gz."""
    metrics_s3_uri: str
    """s3:// URL of metrics.json (SageMaker shows it as the model quality statistics)."""
    metrics: dict[str, float]
    """Numeric validation metrics, also written into CustomerMetadataProperties."""
    properties: dict[str, str]
    """Further metadata: model name and version, task, data fingerprint, code version."""
    approve: bool
    """True registers as Approved, False as PendingManualApproval."""
    description: str


def _clean(value: str, *, limit: int) -> str:
    return _DISALLOWED.sub("_", value)[:limit]


def customer_metadata(registration: Registration) -> dict[str, str]:
    """CustomerMetadataProperties: metrics as `metric_<name>` plus the given properties (sanitised)."""
    props = {f"metric_{k}": repr(float(v)) for k, v in registration.metrics.items()}
    props |= {_clean(k, limit=128): _clean(v, limit=256) for k, v in registration.properties.items()}
    if len(props) > 50:
        raise ValueError(f"{len(props)} customer metadata properties; SageMaker allows at most 50")
    return props


def client_token(registration: Registration) -> str:
    """An idempotency token: a retried registration of the same training result creates no second version.

    The metrics are part of it: a later run that overwrites the same model data URL registers anew.
    """
    key = "\0".join([
        registration.group_name, registration.model_data_url, repr(sorted(registration.properties.items())),
        repr(sorted(registration.metrics.items())),
    ])
    return hashlib.sha256(key.encode()).hexdigest()[:36]


def register_model_package(registration: Registration, *, sagemaker: Any | None = None) -> str:
    """Create the model package version; returns its ARN."""
    if sagemaker is None:
        import boto3  # only registering runs pay for importing it

        sagemaker = boto3.client("sagemaker")
    client = sagemaker
    response = client.create_model_package(
        ModelPackageGroupName=registration.group_name,
        ModelPackageDescription=registration.description[:1024],
        InferenceSpecification={
            "Containers": [{"Image": registration.image_uri, "ModelDataUrl": registration.model_data_url}],
            "SupportedContentTypes": CONTENT_TYPES,
            "SupportedResponseMIMETypes": RESPONSE_TYPES,
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": registration.metrics_s3_uri}
            }
        },
        ModelApprovalStatus=APPROVED if registration.approve else PENDING,
        CustomerMetadataProperties=customer_metadata(registration),
        ClientToken=client_token(registration),
    )
    return response["ModelPackageArn"]
