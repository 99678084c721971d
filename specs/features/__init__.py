"""Pure feature-store specifications: what a row must satisfy before a feature group accepts it, and
where SageMaker's offline store keeps a record.

No I/O here: no files, no network. Must not import `pulumi`, `pulumi_aws`, `components`, `boto3`,
`botocore` or `pyarrow` (tests/features/test_validate.py checks it); the readers and writers that use
these rules live in `mlops/features/`.
"""
