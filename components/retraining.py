"""Retraining: a SageMaker Pipeline per model, started by the model's drift and quality alarms
(EventBridge) and by the configured schedule (EventBridge Scheduler).

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from specs.pipelines import retraining as retraining_pipeline
from specs.pipelines.sources import RetrainingSources
from specs import iam
from components._validation import Problem, raise_input_problems, required_name
from specs.config.schema import ModelConfig, Network, TrainingConfig
from specs.naming import Namer

TOKEN = "mlops:retraining:Retraining"


@dataclass(frozen=True, kw_only=True)
class RetrainingArgs:
    """Inputs of Retraining (one model)."""

    namer: Namer
    region: str
    model: str
    spec: ModelConfig
    training: TrainingConfig
    feature_schema: dict
    """The model's feature_schema.json (specs.feature_schema)."""
    training_image: str
    serving_image: str
    execution_role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    artifacts_bucket: pulumi.Input[str]
    features_uri: pulumi.Input[str]
    """The feature group's offline store prefix (its resolved S3 URI)."""
    sources: RetrainingSources
    """What the pipeline reads besides the offline store (label sources) and compares with (champions),
    and the stack config's hash (specs.pipelines.sources.retraining_sources)."""
    trigger_alarms: list[str] = field(default_factory=list)
    """Alarm names whose ALARM state starts a run (drift and live-quality alarms of endpoints serving the model)."""
    network: Network | None = None
    tags: dict[str, str]


class Retraining(pulumi.ComponentResource):
    """The retraining pipeline of one model and what starts it."""

    pipeline: aws.sagemaker.Pipeline
    pipeline_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RetrainingArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("Retraining", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._create_pipeline(name, args, child)
        starter = self._create_starter_role(name, args, child)
        if args.trigger_alarms:
            self._start_on_alarms(name, args, starter, child)
        if args.training.schedule:
            self._start_on_schedule(name, args, starter, child)
        self.register_outputs({"pipelineArn": self.pipeline.arn})

    def _create_pipeline(self, name: str, args: RetrainingArgs, child: pulumi.ResourceOptions) -> None:
        """The model's feature schema object and the SageMaker Pipeline that reads it."""
        namer = args.namer
        schema = aws.s3.BucketObjectv2(
            f"{name}-feature-schema",
            bucket=args.artifacts_bucket,
            key=retraining_pipeline.schema_key(args.model),
            content=json.dumps(args.feature_schema, indent=2, sort_keys=True),
            content_type="application/json",
            server_side_encryption="aws:kms",
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        # Generated with the SageMaker SDK, offline and deterministically, once the ARNs are known.
        definition = pulumi.Output.all(
            role=args.execution_role_arn, bucket=args.artifacts_bucket, key=args.kms_key_arn, features=args.features_uri
        ).apply(lambda o: retraining_pipeline.pipeline_definition(
            pipeline_name=namer.pipeline(args.model), region=args.region,
            model=args.model, spec=args.spec, training=args.training, image=args.training_image,
            role_arn=o["role"], features_uri=o["features"], artifacts_bucket=o["bucket"], kms_key=o["key"],
            model_package_group=namer.model_package_group(args.model), serving_image=args.serving_image,
            network=args.network, sources=args.sources,
        ))
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=namer.pipeline(args.model),
            pipeline_display_name=namer.pipeline(args.model),
            pipeline_description=(f"Retrain {args.model} on a recent point-in-time dataset, evaluate it against the "
                                  "champions and register it only if the evaluation passes"),
            pipeline_definition=definition,
            role_arn=args.execution_role_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[schema]),
        )
        self.pipeline_arn = self.pipeline.arn

    def _create_starter_role(self, name: str, args: RetrainingArgs, child: pulumi.ResourceOptions) -> aws.iam.Role:
        """The role EventBridge and Scheduler assume to start this pipeline, and nothing else."""
        namer = args.namer
        starter = aws.iam.Role(
            f"{name}-starter-role",
            name=namer.role(f"{args.model}-retrain"),
            description=f"EventBridge and Scheduler start the {args.model} retraining pipeline",
            assume_role_policy=json.dumps(iam.document({
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "scheduler.amazonaws.com"]},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": namer.account_id}},
            })),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-starter-policy",
            role=starter.id,
            policy=self.pipeline.arn.apply(lambda arn: json.dumps(iam.document(
                iam.allow("StartRetraining", ["sagemaker:StartPipelineExecution"], [arn])
            ))),
            opts=child,
        )
        return starter

    def _start_on_alarms(self, name: str, args: RetrainingArgs, starter: aws.iam.Role, child: pulumi.ResourceOptions) -> None:
        """An EventBridge rule on the trigger alarms entering ALARM, targeting the pipeline."""
        rule = aws.cloudwatch.EventRule(
            f"{name}-on-alarm",
            name=args.namer.rule(f"{args.model}-retrain"),
            description=f"Retrain {args.model} when one of its drift or quality alarms fires",
            event_pattern=json.dumps(retraining_pipeline.retrain_event_pattern(args.trigger_alarms)),
            tags=args.tags,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-on-alarm-start",
            rule=rule.name,
            arn=self.pipeline.arn,
            role_arn=starter.arn,
            sagemaker_pipeline_target={"pipeline_parameter_lists": [{"name": retraining_pipeline.TRIGGER_PARAMETER, "value": "alarm"}]},
            opts=child,
        )

    def _start_on_schedule(self, name: str, args: RetrainingArgs, starter: aws.iam.Role, child: pulumi.ResourceOptions) -> None:
        """An EventBridge Scheduler schedule that starts the pipeline on `training.schedule`."""
        aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.namer.rule(f"{args.model}-scheduled-retrain"),
            description=f"Scheduled retraining of {args.model}",
            schedule_expression=args.training.schedule,
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=args.kms_key_arn,
            target={
                "arn": self.pipeline.arn,
                "role_arn": starter.arn,
                "sagemaker_pipeline_parameters": {"pipeline_parameters": [{"name": retraining_pipeline.TRIGGER_PARAMETER, "value": "schedule"}]},
            },
            opts=child,
        )


def _problems(args: RetrainingArgs) -> list[Problem]:
    problems = required_name("model", args.model)
    if not (args.trigger_alarms or args.training.schedule):
        problems.append(
            ("trigger_alarms", f"model {args.model!r}: retraining needs a trigger: drift/quality alarms or training.schedule")
        )
    return problems
