"""training-traffic-encrypted: a distributed training job encrypts the traffic between its instances.

Checked on the Train steps of SageMaker Pipelines definitions (CreateTrainingJob arguments): with
more than one instance, `EnableInterContainerTrafficEncryption` must be true (gradients and
parameters cross the network between hosts). A single-instance job has no such traffic.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

import json
from typing import Any

from specs.policies.core import MANDATORY, ResourceRule

PIPELINE = "aws:sagemaker/pipeline:Pipeline"


def training_steps(definition: Any) -> list[dict[str, Any]]:
    """The Training steps of a pipeline definition (nested in Condition branches too); none when the
    definition is unknown (preview) or not JSON."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError:
            return []
    if not isinstance(definition, dict):
        return []
    found, pending = [], list(definition.get("Steps") or [])
    while pending:
        step = pending.pop(0)
        if not isinstance(step, dict):
            continue
        if step.get("Type") == "Training":
            found.append(step)
        arguments = step.get("Arguments") or {}
        pending += [*(arguments.get("IfSteps") or []), *(arguments.get("ElseSteps") or [])]
    return found


def check(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ != PIPELINE:
        return []
    problems = []
    for step in training_steps(props.get("pipelineDefinition")):
        arguments = step.get("Arguments") or {}
        count = (arguments.get("ResourceConfig") or {}).get("InstanceCount", 1)
        if isinstance(count, int) and count > 1 and arguments.get("EnableInterContainerTrafficEncryption") is not True:
            problems.append(f"training step {step.get('Name')} runs on {count} instances without EnableInterContainerTrafficEncryption")
    return problems


RULE = ResourceRule("training-traffic-encrypted", "Distributed training encrypts traffic between its instances", MANDATORY, check)
