"""Every Kubernetes object of EKS training, rendered as plain dicts (apiVersion, kind, metadata, spec).

Must not import `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy` or `components`
(tests/test_layout.py checks it).
"""
