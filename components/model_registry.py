"""ModelRegistry: a Model Package Group per model, cross-account read access, approval events.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from specs import iam
from components._validation import ACCOUNT_ID, Problem, raise_input_problems
from specs.config.schema import ModelConfig
from specs.naming import Namer

TOKEN = "mlops:model_registry:ModelRegistry"
APPROVAL_DETAIL_TYPE = "SageMaker Model Package State Change"


def approval_event_pattern(group_name: str) -> dict:
    """EventBridge pattern matching approvals of packages in one group."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [APPROVAL_DETAIL_TYPE],
        "detail": {"ModelPackageGroupName": [group_name], "ModelApprovalStatus": ["Approved"]},
    }


@dataclass(frozen=True, kw_only=True)
class ModelRegistryArgs:
    """Inputs of ModelRegistry."""

    namer: Namer
    region: str
    models: dict[str, ModelConfig]
    notification_topic_arn: pulumi.Input[str]
    """SNS topic told about every approval."""
    cross_account_readers: list[str] = field(default_factory=list)
    """Account ids allowed to read and deploy packages (staging, prod)."""
    tags: dict[str, str]


class ModelRegistry(pulumi.ComponentResource):
    """Model Package Groups, their resource policies and approval notifications."""

    groups: dict[str, aws.sagemaker.ModelPackageGroup]
    """By model key."""

    def __init__(self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("ModelRegistry", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.groups = {}
        for key, model in args.models.items():
            group_name = args.namer.model_package_group(key)
            group = aws.sagemaker.ModelPackageGroup(
                f"{name}-{key}",
                model_package_group_name=group_name,
                model_package_group_description=model.description or f"{key} ({model.task})",
                tags=args.tags,
                opts=child,
            )
            self.groups[key] = group
            if args.cross_account_readers:
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{key}-policy",
                    model_package_group_name=group.model_package_group_name,
                    resource_policy=group.arn.apply(lambda arn: json.dumps(
                        iam.model_package_group_policy(group_arn=arn, reader_account_ids=sorted(args.cross_account_readers))
                    )),
                    opts=child,
                )
            rule = aws.cloudwatch.EventRule(
                f"{name}-{key}-approved",
                name=args.namer.rule(f"{key}-approved"),
                description=f"A version of {group_name} was approved",
                event_pattern=json.dumps(approval_event_pattern(group_name)),
                tags=args.tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{key}-approved-notify", rule=rule.name, arn=args.notification_topic_arn, opts=child
            )
        self.register_outputs({"groupArns": {k: g.arn for k, g in self.groups.items()}})


def _problems(args: ModelRegistryArgs) -> list[Problem]:
    problems: list[Problem] = []
    own = [a for a in args.cross_account_readers if a == args.namer.account_id]
    if own:
        problems.append(("cross_account_readers", f"lists the stack's own account {own[0]}; it needs no grant"))
    for i, account in enumerate(args.cross_account_readers):
        if not ACCOUNT_ID.fullmatch(account):
            problems.append((f"cross_account_readers[{i}]", f"{account!r} is not an AWS account id; allowed: 12 digits"))
    return problems
