"""The errors promotion and rollback raise for a refused request, shared by every module of the package.

The CLI maps them to exit codes (2 and 64).

Must not import: anything from the rest of the package, nor boto3, botocore, pulumi or ruamel
(tests/promotion/test_promote_layout.py checks it), nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations


class PromotionError(ValueError):
    """The environment or its state does not allow the change (no registry group, no Approved
    version, no previous champion, an unreadable audit log, a missing tool): the CLI prints it as one
    line and exits 2, a configuration error. Nothing has been changed when it is raised."""


class PromotionUsageError(PromotionError):
    """An argument that names nothing or is not allowed (unknown team, model, version or variant, a
    backwards promotion, exclusive options): the CLI prints it as one line and exits 64, a usage error."""

