"""Pure specifications: what the stacks declare, as plain data and functions.

Everything here is computed without a Pulumi runtime: the configuration schema and its loading,
naming rules, IAM policy documents, Kubernetes objects, SageMaker pipeline definitions, alarm tables
and the policy pack's rules (one module per rule). `components/` turns these specifications into
Pulumi resources; `mlops/` (the CLI) and the tests use them directly.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the layers above build on specifications, never the reverse;
tests/test_layout.py checks it).
"""
