"""The policy pack: `pulumi up --policy-pack policypack`. The rules themselves are plain functions
in specs/policies/ (one module per rule), which `mlops plan` also runs over its offline plans.

Must not import: `components`, `mlops`, `mlops_training` or `mlops_serving` (the pack only wraps the rules
of specs/policies in `pulumi_policy`: it judges resources and builds none)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

from specs import policies  # noqa: E402

LEVELS = {policies.MANDATORY: EnforcementLevel.MANDATORY, policies.ADVISORY: EnforcementLevel.ADVISORY}


def _resource_policy(rule: policies.ResourceRule) -> ResourceValidationPolicy:
    def validate(args, report_violation):
        for message in rule.check(args.resource_type, dict(args.props)):
            report_violation(message)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.level], validate=validate)


def _stack_policy(rule: policies.StackRule) -> StackValidationPolicy:
    def validate(args, report_violation):
        resources = [policies.Res(type=r.resource_type, name=r.name, inputs=dict(r.props)) for r in args.resources]
        for name, message in rule.check(resources):
            report_violation(f"{name}: {message}")

    return StackValidationPolicy(name=rule.name, description=rule.description, enforcement_level=LEVELS[rule.level], validate=validate)


PolicyPack(
    name="mlops-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[*map(_resource_policy, policies.RESOURCE_RULES), *map(_stack_policy, policies.STACK_RULES)],
)
