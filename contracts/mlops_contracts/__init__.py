"""The contracts between the mlops-platform infrastructure and its containers, written once.

The Pulumi components and the operator CLI on one side, the training and serving containers on the
other, import these constants instead of spelling the names themselves; `docs/contracts.md`
describes each contract and names the module that holds it.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving`: both container images install this package without
Pulumi and without the rest of the project (tests/contracts/test_contracts.py and tests/test_layout.py check
it).
"""
from __future__ import annotations

__version__ = "0.1.0"
