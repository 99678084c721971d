"""SageMaker pipeline definitions, generated offline as the JSON documents the stacks deploy, one module
per pipeline (`retraining`: the model's training pipeline).

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: generated offline; tests/test_layout.py checks it).
"""
