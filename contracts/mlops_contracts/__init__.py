"""The contracts between the mlops-platform infrastructure and its containers, written once.

The Pulumi components and the operator CLI on one side, the training and serving containers on the
other, import these constants instead of spelling the names themselves; `docs/contracts.md`
describes each contract and names the module that holds it. Standard library only: the container
images install this package without Pulumi (a test checks the imports).
"""
from __future__ import annotations

__version__ = "0.1.0"
