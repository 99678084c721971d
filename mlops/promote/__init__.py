"""`mlops promote` and `mlops rollback`: move a registered model version into the next environment.

One module per job, lowest first; a module imports only those above it in this list:

- `errors`: PromotionError and PromotionUsageError, which every other module may raise;
- `gates`: the gate maths (thresholds, regression, schema compatibility), pure: no boto3, no pulumi;
- `aws`: a boto3 session per environment, the Model Package Group, S3 URLs;
- `evidence`: the shared evaluation the regression gate decides on: the candidate's own, or a fresh one
  run with `mlops-train dataset` / `mlops-train evaluate` as processes;
- `pins`: which variants a promotion pins and the comment-preserving YAML edit that pins them;
- `files`: the per-stack lock and atomic writes;
- `audit`: the team's audit log and the champion history replayed from it;
- `policy`: the policy gate on the pinned stack, and `pulumi up` through the Automation API;
- `flow`: the orchestration of promote and rollback (its docstring tells the steps).

This package re-exports what the CLI, the dry runs and the tests use, so callers write
`from mlops import promote; promote.promote(request)`; anything else is imported from its module.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

from specs.config.schema import LOWER_IS_BETTER
from mlops.promote.audit import audit_path, champion_history, read_audit
from mlops.promote.aws import APPROVED, SOURCE_ARN_KEY, access_for, session_for
from mlops.promote.errors import PromotionError, PromotionUsageError
from mlops.promote.files import atomic_write, display_path, stack_lock
from mlops.promote.flow import (
    PromoteRequest, Refused, RollbackRequest, check_environments, previous_champion, promote, promote_preflight,
    rollback, rollback_preflight,
)
from mlops.promote.gates import GateResult, package_metrics, regression_gate, schema_mismatches, threshold_gate
from mlops.promote.pins import Pin, PinTarget, current_pin, pin_targets, pin_text, unified_diff
from mlops.promote.policy import policy_gate

__all__ = [
    "APPROVED", "LOWER_IS_BETTER", "SOURCE_ARN_KEY",
    "GateResult", "Pin", "PinTarget", "PromoteRequest", "PromotionError", "PromotionUsageError", "Refused",
    "RollbackRequest",
    "access_for", "atomic_write", "audit_path", "champion_history", "check_environments", "current_pin",
    "display_path", "package_metrics", "pin_targets", "pin_text", "policy_gate", "previous_champion", "promote",
    "promote_preflight", "read_audit", "regression_gate", "rollback", "rollback_preflight", "schema_mismatches",
    "session_for", "stack_lock", "threshold_gate", "unified_diff",
]
