"""no-public-buckets (stack rule): every S3 bucket blocks all public access.

A bucket is private only when a BucketPublicAccessBlock sets all four flags and it has no public
canned ACL; the access block is a separate resource, joined to its bucket by name across the plan.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from specs.policies.core import MANDATORY, ResourceLike, StackRule, of_type

FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    """Buckets without a full public access block, and buckets with a public ACL."""
    blocked = {
        r.inputs.get("bucket")
        for r in of_type(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if all(r.inputs.get(f) is True for f in FLAGS)
    }
    findings = [
        (b.name, "bucket has no public access block with all four settings true")
        for b in of_type(resources, "aws:s3/bucket:Bucket")
        if b.inputs.get("bucket") not in blocked
    ]
    for b in of_type(resources, "aws:s3/bucket:Bucket"):
        if b.inputs.get("acl") in ("public-read", "public-read-write"):
            findings.append((b.name, f"bucket ACL is {b.inputs['acl']}"))
    return findings


RULE = StackRule("no-public-buckets", "S3 buckets block all public access", MANDATORY, check)
