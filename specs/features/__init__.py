"""Pure feature-store specifications: what a row must satisfy before a feature group accepts it, and
where SageMaker's offline store keeps a record.

No I/O here: no files, no network; the readers and writers that use these rules live in `mlops/features/`.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure), nor `boto3`, `botocore` or `pyarrow` (no I/O;
tests/features/test_feature_validation.py and tests/test_layout.py check it).
"""
