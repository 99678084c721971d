"""Endpoint: a SageMaker real-time endpoint with A/B or shadow variants, data capture, deployment
guardrails that roll back on this endpoint's alarms, and autoscaling.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from specs import hosting
from specs import iam
from specs.alarms import MAX_ROLLBACK_ALARMS
from components._validation import Problem, raise_input_problems, required_name
from specs.config.schema import EndpointConfig, FeatureGroupConfig, Network
from specs.naming import Namer

TOKEN = "mlops:endpoint:Endpoint"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True, kw_only=True)
class EndpointArgs:
    """Inputs of Endpoint."""

    namer: Namer
    region: str
    key: str
    """The endpoint's config key; names derive from it."""
    config: EndpointConfig
    image: str
    """Serving image URI (see foundation.image_uri)."""
    network: Network | None = None
    rollback_alarms: list[str] = field(default_factory=list)
    """Alarm names that roll a deployment back (1-10; from the Monitoring component)."""
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    """Resources the endpoint needs first: the execution role's policy, the KMS alias, the alarms."""
    feature_group: FeatureGroupConfig | None = None
    """The group `config.feature_lookup` names; required when it is set, refused otherwise."""
    tags: dict[str, str]


class Endpoint(pulumi.ComponentResource):
    """Models (one per variant), a content-named EndpointConfiguration, the Endpoint, autoscaling."""

    models: dict[str, aws.sagemaker.Model]
    """By variant name."""
    endpoint_config: aws.sagemaker.EndpointConfiguration
    endpoint: aws.sagemaker.Endpoint
    endpoint_name: pulumi.Output[str]
    """The endpoint's name, as callers of InvokeEndpoint use it."""
    endpoint_config_name: pulumi.Output[str]
    """Changes whenever a variant's model, size or weight changes."""
    feature_lookup_policy: aws.iam.RolePolicy | None
    """With `feature_lookup`: lets the execution role read that feature group's online store."""

    def __init__(self, name: str, args: EndpointArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("Endpoint", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        namer, cfg = args.namer, args.config
        self.feature_lookup_policy = self._feature_lookup_policy(name, args)
        prerequisites = [*args.depends_on, *([self.feature_lookup_policy] if self.feature_lookup_policy else [])]
        # A container that looks features up must not serve before its role may read them.
        after = pulumi.ResourceOptions(parent=self, depends_on=prerequisites)

        specs = hosting.model_specs(namer=namer, region=args.region, key=args.key, endpoint=cfg, image=args.image,
                                    network=args.network, feature_group=args.feature_group)
        self.models = {}
        for variant, spec in specs.items():
            req = hosting.snake(spec.request)
            self.models[variant] = aws.sagemaker.Model(
                f"{name}-{variant}",
                name=req["model_name"],
                primary_container=req["primary_container"],
                execution_role_arn=req["execution_role_arn"],
                enable_network_isolation=req["enable_network_isolation"],
                vpc_config=req.get("vpc_config"),
                tags=args.tags,
                # New content gets a new name, so Pulumi's default create-before-delete replacement works.
                opts=after,
            )

        config_spec = hosting.endpoint_config_spec(namer=namer, region=args.region, key=args.key, endpoint=cfg, models=specs)
        req = hosting.snake(config_spec.request)
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=req["endpoint_config_name"],
            production_variants=req["production_variants"],
            shadow_production_variants=req.get("shadow_production_variants"),
            data_capture_config=req.get("data_capture_config"),
            kms_key_arn=req["kms_key_id"],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*prerequisites, *self.models.values()]),
        )
        deployment = hosting.deployment_config(cfg, args.rollback_alarms)
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=namer.endpoint(args.key),
            endpoint_config_name=self.endpoint_config.name,
            deployment_config=hosting.snake(deployment) if deployment else None,
            tags=args.tags,
            opts=after,
        )
        self.endpoint_name = self.endpoint.name
        self.endpoint_config_name = self.endpoint_config.name

        self._create_autoscaling(name, args)
        self.register_outputs({"endpointName": self.endpoint_name, "endpointConfigName": self.endpoint_config_name})

    def _create_autoscaling(self, name: str, args: EndpointArgs) -> None:
        """Target tracking on invocations per instance for each production variant (shadow variants stay fixed)."""
        namer, cfg = args.namer, args.config
        self.scaling_targets: dict[str, aws.appautoscaling.Target] = {}
        if cfg.autoscaling is not None:
            scaling = cfg.autoscaling
            for variant in cfg.production_variants():
                target = aws.appautoscaling.Target(
                    f"{name}-{variant}-scaling",
                    service_namespace="sagemaker",
                    scalable_dimension=SCALABLE_DIMENSION,
                    resource_id=self.endpoint.name.apply(lambda n, v=variant: f"endpoint/{n}/variant/{v}"),
                    min_capacity=scaling.min_capacity,
                    max_capacity=scaling.max_capacity,
                    tags=args.tags,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint]),
                )
                aws.appautoscaling.Policy(
                    f"{name}-{variant}-invocations",
                    name=f"{namer.endpoint(args.key)}-{variant}-invocations-per-instance",
                    policy_type="TargetTrackingScaling",
                    service_namespace=target.service_namespace,
                    scalable_dimension=target.scalable_dimension,
                    resource_id=target.resource_id,
                    target_tracking_scaling_policy_configuration={
                        "target_value": scaling.target_invocations_per_instance,
                        "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
                        "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
                        "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
                    },
                    opts=pulumi.ResourceOptions(parent=self),
                )
                self.scaling_targets[variant] = target

    def _feature_lookup_policy(self, name: str, args: EndpointArgs) -> aws.iam.RolePolicy | None:
        """GetRecord/BatchGetRecord on the looked-up group only, on the execution role the Models run under."""
        lookup, namer = args.config.feature_lookup, args.namer
        if lookup is None:
            return None
        arn = namer.feature_group_arn(lookup.feature_group, region=args.region)
        return aws.iam.RolePolicy(
            f"{name}-feature-lookup",
            name=f"{namer.endpoint(args.key)}-feature-lookup",
            role=namer.role(iam.role_purpose("hosting")),
            policy=json.dumps(iam.feature_lookup_policy(feature_group_arn=arn)),
            # The role is Foundation's: it comes with the caller's prerequisites.
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )


def _problems(args: EndpointArgs) -> list[Problem]:
    problems = required_name("key", args.key) + required_name("image", args.image)
    lookup = args.config.feature_lookup
    if lookup is not None and args.feature_group is None:
        problems.append(("feature_group", f"required with config.feature_lookup (the group {lookup.feature_group!r}'s config)"))
    elif lookup is None and args.feature_group is not None:
        problems.append(("feature_group", "given, but config.feature_lookup is not set; allowed only with a feature_lookup"))
    elif args.feature_group is not None and not args.feature_group.online_store.enabled:
        problems.append(("feature_group", f"{lookup.feature_group!r} has no online store; the lookup reads the online store"))
    if len(args.rollback_alarms) > MAX_ROLLBACK_ALARMS:
        problems.append(
            ("rollback_alarms", f"{len(args.rollback_alarms)} alarms; SageMaker's auto-rollback takes 1 to {MAX_ROLLBACK_ALARMS}")
        )
    return problems
