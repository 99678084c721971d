"""Retraining: a SageMaker Pipeline per model, started by the model's drift and quality alarms
(EventBridge) and by the configured schedule (EventBridge Scheduler), both through the retraining
starter function (functions/retrain_starter.py), which starts one run per event and none while a run
is in flight.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from specs.pipelines import retraining as retraining_pipeline
from specs.pipelines.sources import RetrainingSources
from specs import iam
from components._validation import Problem, raise_input_problems, required_name
from specs.config.schema import ModelConfig, Network, TrainingConfig
from specs.naming import Namer

TOKEN = "mlops:retraining:Retraining"

STARTER_MODULE = "retrain_starter"
STARTER_SOURCE = Path(__file__).resolve().parent.parent / "functions" / f"{STARTER_MODULE}.py"
"""The starter function's code: one stdlib + boto3 module, shipped alone."""
STARTER_LOG_RETENTION_DAYS = 90
STARTER_MAX_EVENT_AGE_S = 3600
"""How long a trigger may wait (throttled behind a run's check, or retried) before it goes to the
dead-letter queue: an hour, well past the starter's few seconds per event."""
SCHEDULE_INPUT = {
    "source": "mlops.schedule",
    "trigger": "schedule",
    "schedule_arn": "<aws.scheduler.schedule-arn>",
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "execution_id": "<aws.scheduler.execution-id>",
}
"""What the schedule sends the starter (functions.retrain_starter.SCHEDULE_SOURCE)."""


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
    pipeline_role_arn: pulumi.Input[str]
    """Foundation's pipeline role: the pipeline runs as it, and so do its Dataset and Evaluate jobs."""
    training_role_arn: pulumi.Input[str]
    """Foundation's training role: the Train step's job runs as it."""
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
    tracking_server_arn: pulumi.Input[str] | None = None
    """The MLflow tracking server the Train step's job (or each tuning trial) logs to (issue #20): its
    environment gets MLFLOW_TRACKING_URI. @default none: no tracking."""
    tags: dict[str, str]


class Retraining(pulumi.ComponentResource):
    """The retraining pipeline of one model and what starts it."""

    pipeline: aws.sagemaker.Pipeline
    pipeline_arn: pulumi.Output[str]
    starter: aws.lambda_.Function
    """The retraining starter function every trigger invokes."""

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
            role=args.pipeline_role_arn, training_role=args.training_role_arn, bucket=args.artifacts_bucket, key=args.kms_key_arn,
            features=args.features_uri, tracking=args.tracking_server_arn,
        ).apply(lambda o: retraining_pipeline.pipeline_definition(
            pipeline_name=namer.pipeline(args.model), region=args.region,
            model=args.model, spec=args.spec, training=args.training, image=args.training_image,
            role_arn=o["role"], training_role_arn=o["training_role"], features_uri=o["features"], artifacts_bucket=o["bucket"], kms_key=o["key"],
            model_package_group=namer.model_package_group(args.model), serving_image=args.serving_image,
            network=args.network, sources=args.sources, tracking_uri=o["tracking"],
        ))
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=namer.pipeline(args.model),
            pipeline_display_name=namer.pipeline(args.model),
            pipeline_description=(f"Retrain {args.model} on a recent point-in-time dataset, evaluate it against the "
                                  "champions and register it only if the evaluation passes"),
            pipeline_definition=definition,
            role_arn=args.pipeline_role_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[schema]),
        )
        self.pipeline_arn = self.pipeline.arn

    def _create_starter_role(self, name: str, args: RetrainingArgs, child: pulumi.ResourceOptions) -> aws.lambda_.Function:
        """The retraining starter: a Lambda function (functions/retrain_starter.py) that starts the
        pipeline unless a run is in flight, with its role, log group and dead-letter queue.

        Reserved concurrency 1 serialises it: "For Lambda functions that are invoked asynchronously
        [...] reserved concurrency limits how many requests are processed simultaneously. In this case,
        events are stored durably in internal queues until the Lambda function is available" (AWS
        Lambda Operator Guide, reserved concurrency), and throttled asynchronous events are returned
        to the queue and retried for up to the maximum event age (Lambda developer guide, "How Lambda
        handles errors and retries with asynchronous invocation"). Events still failing after the
        retries go to the on-failure destination, the queue, so no trigger is lost silently."""
        namer = args.namer
        function_name = namer.function(f"{args.model}-retrain-starter")
        role = aws.iam.Role(
            f"{name}-starter-role",
            name=namer.role(f"{args.model}-retrain"),
            description=f"The {args.model} retraining starter function: lists and starts the retraining pipeline",
            assume_role_policy=json.dumps(iam.plain_service_trust("lambda.amazonaws.com")),
            tags=args.tags,
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-starter-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=STARTER_LOG_RETENTION_DAYS,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child,
        )
        failed = aws.sqs.Queue(
            f"{name}-starter-failed",
            name=namer.queue(f"{args.model}-retrain-failed"),
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-starter-policy",
            role=role.id,
            policy=pulumi.Output.all(self.pipeline.arn, logs.arn, failed.arn, args.kms_key_arn).apply(
                lambda a: json.dumps(iam.retrain_starter_policy(pipeline_arn=a[0], log_group_arn=a[1], queue_arn=a[2], key_arn=a[3]))
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-starter",
            name=function_name,
            description=f"Starts the {args.model} retraining pipeline once per trigger; joins a run in flight",
            role=role.arn,
            runtime="python3.12",
            handler=f"{STARTER_MODULE}.handler",
            code=pulumi.AssetArchive({f"{STARTER_MODULE}.py": pulumi.FileAsset(str(STARTER_SOURCE))}),
            timeout=30,
            memory_size=128,
            reserved_concurrent_executions=1,
            environment={"variables": {"PIPELINE_NAME": namer.pipeline(args.model)}},
            kms_key_arn=args.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, policy]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-starter-async",
            function_name=function.name,
            maximum_event_age_in_seconds=STARTER_MAX_EVENT_AGE_S,
            maximum_retry_attempts=2,
            destination_config={"on_failure": {"destination": failed.arn}},
            opts=child,
        )
        self.starter = function
        return function

    def _start_on_alarms(self, name: str, args: RetrainingArgs, starter: aws.lambda_.Function, child: pulumi.ResourceOptions) -> None:
        """An EventBridge rule on the trigger alarms entering ALARM, targeting the starter function
        (invoked asynchronously; the permission lets this rule, and only it, invoke it)."""
        rule = aws.cloudwatch.EventRule(
            f"{name}-on-alarm",
            name=args.namer.rule(f"{args.model}-retrain"),
            description=f"Retrain {args.model} when one of its drift or quality alarms fires",
            event_pattern=json.dumps(retraining_pipeline.retrain_event_pattern(args.trigger_alarms)),
            tags=args.tags,
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-on-alarm-invoke",
            action="lambda:InvokeFunction",
            function=starter.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-on-alarm-start",
            rule=rule.name,
            arn=starter.arn,
            retry_policy={"maximum_event_age_in_seconds": STARTER_MAX_EVENT_AGE_S, "maximum_retry_attempts": 185},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

    def _start_on_schedule(self, name: str, args: RetrainingArgs, starter: aws.lambda_.Function, child: pulumi.ResourceOptions) -> None:
        """An EventBridge Scheduler schedule that invokes the starter function on `training.schedule`,
        with the role that may invoke it and nothing else. Scheduler fills the <aws.scheduler.*>
        context attributes of the input (Scheduler user guide, "Adding context attributes"); the
        starter derives the run's idempotency token from the schedule ARN and scheduled time, which
        stay the same on Scheduler's retries (its execution id does not)."""
        role = aws.iam.Role(
            f"{name}-schedule-role",
            name=args.namer.role(f"{args.model}-retrain-schedule"),
            description=f"EventBridge Scheduler invokes the {args.model} retraining starter",
            assume_role_policy=json.dumps(iam.service_trust("scheduler.amazonaws.com", args.namer.account_id)),
            tags=args.tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-schedule-policy",
            role=role.id,
            policy=starter.arn.apply(lambda arn: json.dumps(iam.scheduler_invoke_policy(function_arn=arn))),
            opts=child,
        )
        aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.namer.rule(f"{args.model}-scheduled-retrain"),
            description=f"Scheduled retraining of {args.model}",
            schedule_expression=args.training.schedule,
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=args.kms_key_arn,
            target={
                "arn": starter.arn,
                "role_arn": role.arn,
                "input": json.dumps(SCHEDULE_INPUT, sort_keys=True),
                "retry_policy": {"maximum_event_age_in_seconds": STARTER_MAX_EVENT_AGE_S, "maximum_retry_attempts": 185},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )


def _problems(args: RetrainingArgs) -> list[Problem]:
    problems = required_name("model", args.model)
    if not (args.trigger_alarms or args.training.schedule):
        problems.append(
            ("trigger_alarms", f"model {args.model!r}: retraining needs a trigger: drift/quality alarms or training.schedule")
        )
    return problems
