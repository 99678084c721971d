"""feature-groups-encrypted: Feature Store online and offline stores use a KMS key.

Feature groups hold the training data and the online features served at inference; without a
customer-managed key their contents are readable to anyone with S3 or DynamoDB-level access.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """Each enabled store of a feature group names a KMS key."""
    if type_ != "aws:sagemaker/featureGroup:FeatureGroup":
        return []
    problems = []
    online = props.get("onlineStoreConfig") or {}
    if online.get("enableOnlineStore") and not (online.get("securityConfig") or {}).get("kmsKeyId"):
        problems.append("online store is not encrypted with a KMS key (onlineStoreConfig.securityConfig.kmsKeyId)")
    offline = props.get("offlineStoreConfig")
    if offline and not (offline.get("s3StorageConfig") or {}).get("kmsKeyId"):
        problems.append("offline store is not encrypted with a KMS key (offlineStoreConfig.s3StorageConfig.kmsKeyId)")
    return problems


RULE = ResourceRule("feature-groups-encrypted", "Feature Store online and offline stores use KMS", MANDATORY, check)
