"""job-roles-not-shared: hosting, monitoring, pipelines and training each run as their own role.

A role shared across job kinds holds the union of their permissions: an endpoint that can write
models, a monitoring job that can register them. The rule collects the role ARN of each kind from
the plan (Model.executionRoleArn, MonitoringSchedule's job definition roleArn, Pipeline.roleArn and
the RoleArn of each pipeline's Train steps) and reports a role used by more than one kind. ARNs not
yet known (preview) are skipped.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from collections import defaultdict

from specs.policies.core import MANDATORY, ResourceLike, StackRule
from specs.policies.training_traffic_encrypted import PIPELINE, training_steps

MODEL = "aws:sagemaker/model:Model"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"


def _uses(resource: ResourceLike) -> list[tuple[str, object]]:
    """(job kind, role ARN) pairs one resource declares."""
    inputs = resource.inputs
    if resource.type == MODEL:
        return [("hosting", inputs.get("executionRoleArn"))]
    if resource.type == SCHEDULE:
        job = ((inputs.get("monitoringScheduleConfig") or {}).get("monitoringJobDefinition") or {})
        return [("monitoring", job.get("roleArn"))]
    if resource.type == PIPELINE:
        steps = training_steps(inputs.get("pipelineDefinition"))
        return [("pipeline", inputs.get("roleArn")), *(("training", (s.get("Arguments") or {}).get("RoleArn")) for s in steps)]
    return []


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    kinds: dict[str, set[str]] = defaultdict(set)
    first_user: dict[str, str] = {}
    for resource in resources:
        for kind, arn in _uses(resource):
            if isinstance(arn, str) and arn:
                kinds[arn].add(kind)
                first_user.setdefault(arn, resource.name)
    return [
        (first_user[arn], f"role {arn} is shared by {', '.join(sorted(used))} jobs; give each job kind its own role")
        for arn, used in kinds.items() if len(used) > 1
    ]


RULE = StackRule("job-roles-not-shared", "Training, hosting, monitoring and pipelines each run as their own role", MANDATORY, check)
