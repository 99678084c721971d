"""SecureBucket: an S3 bucket that is private, encrypted, versioned and TLS-only by construction.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from specs import iam
from components._validation import Problem, raise_input_problems, required_name

TOKEN = "mlops:bucket:SecureBucket"


@dataclass(frozen=True, kw_only=True)
class SecureBucketArgs:
    """Inputs of a SecureBucket."""

    bucket: str
    """Globally unique bucket name (see specs.naming.Namer.bucket)."""
    kms_key_arn: pulumi.Input[str]
    """Customer-managed KMS key for SSE-KMS; S3 Bucket Keys are on to cut KMS request costs."""
    tags: dict[str, str] = field(default_factory=dict)
    noncurrent_version_days: int = 90
    """Old object versions are deleted this many days after being replaced. @default 90."""
    force_destroy: bool = False
    """Allow `pulumi destroy` to delete a non-empty bucket. @default false (data is kept)."""


class SecureBucket(pulumi.ComponentResource):
    """An S3 bucket with public access blocked, SSE-KMS, versioning, owner-enforced ACLs, a
    TLS-only bucket policy and a lifecycle rule for old versions and incomplete uploads."""

    bucket: aws.s3.Bucket
    arn: pulumi.Output[str]
    """The bucket's ARN."""
    name: pulumi.Output[str]
    """The bucket's name."""

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("SecureBucket", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket = aws.s3.Bucket(name, bucket=args.bucket, force_destroy=args.force_destroy, tags=args.tags, opts=child)
        bucket_id = self.bucket.id
        public = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket_id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[{
                "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn},
                "bucket_key_enabled": True,
            }],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket_id, versioning_configuration={"status": "Enabled"}, opts=child
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[{
                "id": "expire-noncurrent-and-incomplete",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }],
            # S3 rejects a lifecycle configuration on a bucket whose versioning is still being set.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(iam.tls_only_bucket_policy(arn))),
            # A bucket policy put while the public access block is being created can be refused.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public]),
        )
        self.arn = self.bucket.arn
        self.name = self.bucket.bucket
        self.register_outputs({"arn": self.arn, "name": self.name})


def _problems(args: SecureBucketArgs) -> list[Problem]:
    problems = required_name("bucket", args.bucket)
    if args.noncurrent_version_days < 1:
        problems.append(("noncurrent_version_days", f"must be at least 1, got {args.noncurrent_version_days}"))
    return problems
