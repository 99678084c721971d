"""The policy gate (the target stack, pinned, still plans with zero mandatory findings) and `pulumi up`.

The gate plans from a temporary copy of the stacks directory with Pulumi's mock runtime (mlops.plan);
`--apply` deploys through the Automation API. pulumi is imported inside those functions only.

Must not import: boto3 or botocore (planning and the policy gate never call AWS), nor the package's aws,
pins, audit or flow modules (tests/promotion/test_promote_layout.py checks it), nor `mlops_training`,
`mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specs.config import stack_files
from mlops.promote.errors import PromotionError
from mlops.promote.gates import GateResult

# The Pulumi runtime (mocks, config, settings) is process-global and the plan reads the stacks
# directory from the environment, so one plan at a time per process.
_PLAN_LOCK = threading.Lock()


def policy_gate(*, stack: str, candidate_text: str, team: str) -> GateResult:
    """Plan the target stack with the candidate pin from a temporary copy of the stacks directory."""
    from specs import policies
    from mlops import plan as planner

    real = stack_files.stacks_dir()
    with tempfile.TemporaryDirectory(prefix="mlops-promote-") as tmp, _PLAN_LOCK:
        copy_dir = Path(tmp) / "stacks"
        (copy_dir / "teams").mkdir(parents=True)
        shutil.copy2(real / "teams" / f"{team}.yaml", copy_dir / "teams" / f"{team}.yaml")
        (copy_dir / f"Pulumi.{stack}.yaml").write_text(candidate_text, encoding="utf-8")
        previous = os.environ.get(stack_files.STACKS_ENV)
        os.environ[stack_files.STACKS_ENV] = str(copy_dir)
        try:
            result = planner.plan_stack(stack)
        except stack_files.ConfigError as exc:
            return GateResult("policy", False, "the pinned stack does not validate: " + "; ".join(p.replace(str(copy_dir), str(real)) for p in exc.problems))
        finally:
            if previous is None:
                os.environ.pop(stack_files.STACKS_ENV, None)
            else:
                os.environ[stack_files.STACKS_ENV] = previous
    findings = policies.evaluate(result.resources, environment=result.config.environment)
    mandatory = [f for f in findings if f.mandatory]
    if mandatory:
        return GateResult("policy", False, f"{len(mandatory)} mandatory policy violation(s): " + "; ".join(f"{f.policy}: {f.resource}: {f.message}" for f in mandatory))
    advisory = len(findings) - len(mandatory)
    return GateResult("policy", True, f"{stack} plans {len(result.resources)} resources with 0 mandatory violations ({advisory} advisory)")


def check_apply_possible() -> str:
    """The Pulumi CLI's path, or PromotionError; called before anything changes."""
    cli = shutil.which("pulumi")
    if cli is None:
        raise PromotionError(
            "--apply needs the Pulumi CLI, which is not on PATH (https://www.pulumi.com/docs/install/); "
            "nothing was changed: install it, or run without --apply and deploy with `pulumi up` later"
        )
    if stack_files.stacks_dir().resolve() != (stack_files.ROOT / "stacks").resolve():
        raise PromotionError(
            f"--apply deploys with Pulumi, which reads stack files from the project's stacks/ (stackConfigDir), "
            f"not {stack_files.stacks_dir()}; unset {stack_files.STACKS_ENV} or drop --apply; nothing was changed"
        )
    return cli


def pulumi_up(stack: str, *, on_output: Callable[[str], Any] = print) -> Any:
    """`pulumi up` for `stack` through the Automation API, with the project's policy pack enforced."""
    from pulumi import automation as auto

    workspace_stack = auto.select_stack(stack_name=stack, work_dir=str(stack_files.ROOT))
    return workspace_stack.up(on_output=on_output, policy_packs=[str(stack_files.ROOT / "policypack")])

