"""endpoint-configs-encrypted: endpoint instance storage and captured requests use a KMS key.

An endpoint's ML storage volume holds the model, and data capture writes every request and response
(customer data) to S3: both must be encrypted with the team's key.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """An endpoint configuration names a KMS key for its storage and, when capturing, for the captures."""
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        return []
    problems = []
    if not props.get("kmsKeyArn"):
        problems.append("instance storage is not encrypted with a KMS key (kmsKeyArn)")
    capture = props.get("dataCaptureConfig") or {}
    if capture.get("enableCapture") and not capture.get("kmsKeyId"):
        problems.append("captured requests are not encrypted with a KMS key (dataCaptureConfig.kmsKeyId)")
    return problems


RULE = ResourceRule("endpoint-configs-encrypted", "Endpoint storage and data capture use KMS", MANDATORY, check)
