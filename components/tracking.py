"""MlflowTracking: a stack's SageMaker managed MLflow tracking server (issue #20), its own role, and
access to it for the roles named as input.

The server stores artifacts under `s3://<artifacts bucket>/mlflow` (KMS-encrypted by the bucket's key,
which the server's role may use); its role is trusted by SageMaker for this account only and may register
models into the team's Model Package Groups (automatic model registration). Each role in
`client_role_names` gets an inline policy allowing what a training run does on this server only.

SharedMlflowTracking: a stack with `tracking.shared_stack` uses the server another stack created: it reads
that stack's `mlflowTrackingServerArn` output through a StackReference and gives its own client roles the
same access, to that server only.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components._validation import Problem, raise_input_problems
from specs import tracking
from specs.config.schema import TrackingConfig
from specs.naming import Namer

TOKEN = "mlops:tracking:MlflowTracking"
SHARED_TOKEN = "mlops:tracking:SharedMlflowTracking"
ARN_OUTPUT = "mlflowTrackingServerArn"
"""The stack output naming a stack's tracking server (the program exports it; a sharing stack reads it)."""


@dataclass(frozen=True, kw_only=True)
class MlflowTrackingArgs:
    """Inputs of MlflowTracking."""

    namer: Namer
    config: TrackingConfig
    """Must be enabled and not shared (a shared server belongs to the stack that creates it)."""
    artifacts_bucket_name: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    model_package_group_arns: list[pulumi.Input[str]] = field(default_factory=list)
    """Groups the server may register into (automatic model registration); empty: registration off."""
    client_role_names: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Roles that log to the server, by a short key used in child names (e.g. {"training": ...})."""
    tags: dict[str, str]


class MlflowTracking(pulumi.ComponentResource):
    """The tracking server, its role and the client roles' access."""

    server: aws.sagemaker.MlflowTrackingServer
    role: aws.iam.Role
    tracking_server_arn: pulumi.Output[str]
    """What the training container gets as MLFLOW_TRACKING_URI (with the `sagemaker-mlflow` plugin)."""
    tracking_server_url: pulumi.Output[str]
    """The MLflow UI (reached through a presigned URL: `aws sagemaker create-presigned-mlflow-tracking-server-url`)."""

    def __init__(self, name: str, args: MlflowTrackingArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("MlflowTracking", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.namer.role("mlflow"),
            assume_role_policy=json.dumps(tracking.server_trust(args.namer.account_id)),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=self.role.id,
            policy=pulumi.Output.all(args.artifacts_bucket_arn, args.kms_key_arn, *args.model_package_group_arns).apply(
                lambda v: json.dumps(tracking.server_policy(bucket_arn=v[0], key_arn=v[1], model_package_group_arns=list(v[2:])))
            ),
            opts=child,
        )
        self.server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-server",
            tracking_server_name=tracking.server_name(args.namer.prefix),
            artifact_store_uri=pulumi.Output.from_input(args.artifacts_bucket_name).apply(tracking.artifact_store_uri),
            role_arn=self.role.arn,
            tracking_server_size=args.config.server_size,
            mlflow_version=args.config.mlflow_version,
            weekly_maintenance_window_start=args.config.weekly_maintenance_window,
            automatic_model_registration=bool(args.model_package_group_arns),
            tags=args.tags,
            opts=child,
        )
        _grant(name, args.client_role_names, self.server.arn, child, artifacts_bucket_arn=args.artifacts_bucket_arn)
        self.tracking_server_arn = self.server.arn
        self.tracking_server_url = self.server.tracking_server_url
        self.register_outputs({"trackingServerArn": self.server.arn, "trackingServerUrl": self.server.tracking_server_url})


def _grant(name: str, roles: dict[str, pulumi.Input[str]], server_arn: pulumi.Output[str], opts: pulumi.ResourceOptions,
           *, artifacts_bucket_arn: pulumi.Input[str] | None = None) -> None:
    """Each role's inline policy: what a training run does on this one server (specs.tracking.client_policy)."""
    for key, role_name in sorted(roles.items()):
        aws.iam.RolePolicy(
            f"{name}-{key}-access",
            role=role_name,
            policy=pulumi.Output.all(server_arn, artifacts_bucket_arn).apply(
                lambda v: json.dumps(tracking.client_policy(v[0], artifacts_bucket_arn=v[1]))),
            opts=opts,
        )


@dataclass(frozen=True, kw_only=True)
class SharedMlflowTrackingArgs:
    """Inputs of SharedMlflowTracking."""

    stack: str
    """The stack that owns the server (`tracking.shared_stack`, org/project/stack)."""
    client_role_names: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """This stack's roles that log to the server, by a short key used in child names."""


class SharedMlflowTracking(pulumi.ComponentResource):
    """Another stack's tracking server, read by StackReference, and this stack's client roles' access to it."""

    tracking_server_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SharedMlflowTrackingArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("SharedMlflowTracking", _role_key_problems(args.client_role_names))
        super().__init__(SHARED_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ref = pulumi.StackReference(f"{name}-owner", stack_name=args.stack, opts=child)
        self.tracking_server_arn = pulumi.Output.from_input(ref.require_output(ARN_OUTPUT)).apply(str)
        _grant(name, args.client_role_names, self.tracking_server_arn, child)
        self.register_outputs({"trackingServerArn": self.tracking_server_arn})


def _role_key_problems(roles: dict[str, pulumi.Input[str]]) -> list[Problem]:
    return [(f"client_role_names[{key!r}]", "keys name child resources; allowed: letters, digits, hyphens")
            for key in roles if not key or not key.replace("-", "").isalnum()]


def _problems(args: MlflowTrackingArgs) -> list[Problem]:
    problems: list[Problem] = []
    if not args.config.enabled:
        problems.append(("config.enabled", "is false; build MlflowTracking only for a stack with tracking.enabled: true"))
    if args.config.shared_stack is not None:
        problems.append(("config.shared_stack", f"is {args.config.shared_stack!r}: that stack's server is used; "
                                                "build SharedMlflowTracking instead (it reads the owner's "
                                                f"{ARN_OUTPUT} output)"))
    return problems + _role_key_problems(args.client_role_names)
