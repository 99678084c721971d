"""SecureBucket under Pulumi's mock runtime: what it registers and with which security settings."""
from __future__ import annotations

import json

import pytest

from components.bucket import TOKEN, SecureBucket, SecureBucketArgs

KEY = "arn:aws:kms:eu-west-1:111111111111:key/k-1"
BUCKET = "t-dev-artifacts-111111111111"
CHILD_TYPES = {
    "aws:s3/bucket:Bucket": "art",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "art-public-access",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "art-ownership",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "art-encryption",
    "aws:s3/bucketVersioning:BucketVersioning": "art-versioning",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "art-lifecycle",
    "aws:s3/bucketPolicy:BucketPolicy": "art-policy",
}


@pytest.fixture
def built(mock_pulumi):
    return mock_pulumi.run(lambda: SecureBucket("art", SecureBucketArgs(bucket=BUCKET, kms_key_arn=KEY, tags=mock_pulumi.tags)))


def test_secure_bucket_registers_exactly_its_seven_children_under_itself(built, mock_pulumi):
    component_urn = mock_pulumi.top_urn(TOKEN, "art")
    assert [(r.type, r.name) for r in built.resources if r.type == TOKEN] == [(TOKEN, "art")]
    children = built.children(component_urn)
    assert {r.type: r.name for r in children} == CHILD_TYPES
    assert len(children) == len(CHILD_TYPES)
    for child in children:
        assert child.urn == mock_pulumi.urn(TOKEN, child.type, child.name)
    assert len(built.resources) == 1 + len(CHILD_TYPES)


def test_bucket_has_the_requested_name_tags_and_keeps_data_on_destroy(built, mock_pulumi):
    bucket = built.one("aws:s3/bucket:Bucket", "art")
    assert bucket.inputs == {"bucket": BUCKET, "forceDestroy": False, "tags": mock_pulumi.tags}


def test_public_access_block_sets_all_four_flags_on_the_bucket(built):
    block = built.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "art-public-access")
    assert block.inputs == {
        "bucket": BUCKET,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }


def test_default_encryption_is_sse_kms_with_the_given_key_and_bucket_keys(built):
    sse = built.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "art-encryption")
    assert sse.inputs == {
        "bucket": BUCKET,
        "rules": [{
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY},
            "bucketKeyEnabled": True,
        }],
    }


def test_versioning_is_enabled(built):
    versioning = built.one("aws:s3/bucketVersioning:BucketVersioning", "art-versioning")
    assert versioning.inputs == {"bucket": BUCKET, "versioningConfiguration": {"status": "Enabled"}}


def test_acls_are_disabled_by_bucket_owner_enforced(built):
    ownership = built.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "art-ownership")
    assert ownership.inputs == {"bucket": BUCKET, "rule": {"objectOwnership": "BucketOwnerEnforced"}}


def test_bucket_policy_denies_every_request_without_tls(built):
    policy = built.one("aws:s3/bucketPolicy:BucketPolicy", "art-policy")
    assert policy.inputs["bucket"] == BUCKET
    assert json.loads(policy.inputs["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def test_bucket_policy_waits_for_the_public_access_block(built):
    policy = built.one("aws:s3/bucketPolicy:BucketPolicy", "art-policy")
    block = built.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "art-public-access")
    assert block.urn in built.depends_on(policy)


def test_lifecycle_expires_old_versions_and_incomplete_uploads_after_versioning_is_set(built):
    lifecycle = built.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "art-lifecycle")
    assert lifecycle.inputs == {
        "bucket": BUCKET,
        "rules": [{
            "id": "expire-noncurrent-and-incomplete",
            "status": "Enabled",
            "filter": {},
            "noncurrentVersionExpiration": {"noncurrentDays": 90},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
        }],
    }
    versioning = built.one("aws:s3/bucketVersioning:BucketVersioning", "art-versioning")
    assert versioning.urn in built.depends_on(lifecycle)


def test_noncurrent_version_days_and_force_destroy_reach_the_children(mock_pulumi):
    run = mock_pulumi.run(lambda: SecureBucket(
        "scratch",
        SecureBucketArgs(bucket="t-dev-scratch-111111111111", kms_key_arn=KEY, noncurrent_version_days=3, force_destroy=True),
    ))
    assert run.one("aws:s3/bucket:Bucket", "scratch").inputs["forceDestroy"] is True
    rule = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "scratch-lifecycle").inputs["rules"][0]
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 3}


def test_noncurrent_version_days_below_one_is_an_input_error_before_anything_registers(mock_pulumi):
    problems = mock_pulumi.refused(
        lambda: SecureBucket("bad", SecureBucketArgs(bucket="t-dev-bad-111111111111", kms_key_arn=KEY, noncurrent_version_days=0))
    )
    assert problems == [("noncurrent_version_days", "must be at least 1, got 0")]


def test_empty_bucket_name_and_bad_version_days_are_reported_together(mock_pulumi):
    problems = mock_pulumi.refused(lambda: SecureBucket("bad", SecureBucketArgs(bucket=" ", kms_key_arn=KEY, noncurrent_version_days=-5)))
    assert problems == [
        ("bucket", "must not be empty, got ' '"),
        ("noncurrent_version_days", "must be at least 1, got -5"),
    ]
