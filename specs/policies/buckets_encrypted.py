"""buckets-encrypted (stack rule): every S3 bucket defaults to SSE-KMS.

Since AWS provider v4 a bucket's encryption is a separate BucketServerSideEncryptionConfiguration
resource, so the rule joins the two by bucket name across the plan. Artifacts, features and captures
are all customer data: SSE-S3 (AES256) is not enough, the team's KMS key is.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from specs.policies.core import MANDATORY, ResourceLike, StackRule, of_type

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    """Buckets no SSE configuration with a KMS algorithm points at."""
    encrypted = set()
    for r in of_type(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        rules = r.inputs.get("rules") or []
        if any((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm") in KMS_ALGORITHMS for rule in rules):
            encrypted.add(r.inputs.get("bucket"))
    return [
        (b.name, "bucket has no SSE-KMS default encryption (BucketServerSideEncryptionConfiguration with aws:kms)")
        for b in of_type(resources, "aws:s3/bucket:Bucket")
        if b.inputs.get("bucket") not in encrypted
    ]


RULE = StackRule("buckets-encrypted", "S3 buckets default to SSE-KMS", MANDATORY, check)
