"""QualityMonitor: a SageMaker MonitoringSchedule running the serving image's live-quality job
(`mlops-monitor quality`) over an endpoint's captures and its model's ground truth, publishing the
LiveAUC/LiveAccuracy/... metrics the live-quality alarms watch (Model Monitor's bring-your-own-container
contract, like the DriftMonitor).

Why an inline MonitoringJobDefinition: pulumi-aws has no ModelQualityJobDefinition resource, and
SageMaker's built-in model-quality container would publish its own metric names, not the ones our
alarms watch. The schedule runs our image with `MonitoringType` ModelQuality.

Why the job reads S3 itself: labels arrive hours after the predictions, so the window Model Monitor
copies into the container (the last hour) has almost no labels yet. The job reads the capture root and
the ground-truth prefix directly (the execution role reads both buckets) over `window_hours` before the
end time Model Monitor passes.

Why it is therefore not network-isolated (the drift job is): an isolated container reads only its
channels, and a MonitoringJobDefinition's only channels are EndpointInput or BatchTransformInput
(botocore's SageMaker model, shape `MonitoringInput`). EndpointInput's `StartTimeOffset` could widen
the capture window, but the labels have no channel: `GroundTruthS3Input` belongs to
ModelQualityJobDefinition, which pulumi-aws does not have (pulumi-aws-native's
`sagemaker.ModelQualityJobDefinition` does; a schedule could name such a definition through
`monitoring_job_definition_name`, at the cost of a second provider). It also calls PutMetricData
itself into `MLOps/ModelMonitor`, which the monitoring role allows. The policy pack's
`monitoring-jobs-isolated` allows this exception for this entry point only.

Model Monitor "is no longer open to new customers" (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html):
see drift_monitor.py.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from mlops_contracts import metrics
from mlops_contracts.feature_schema import TASKS

from components._monitoring_job import job_definition
from components._validation import Problem, raise_input_problems, required_name
from specs.config.schema import Network
from specs.naming import Namer

TOKEN = "mlops:quality_monitor:QualityMonitor"
ENTRYPOINT = ["mlops-monitor", "quality"]
MONITORING_TYPE = "ModelQuality"


def job_environment(*, captures_root: str, ground_truth_uri: str, task: str, window_hours: float) -> dict[str, str]:
    """What the quality job reads beyond Model Monitor's own variables (sagemaker_endpoint_name,
    end_time, output_path): where captures and labels are, the model's task, how far back to join,
    and the metric names the live-quality alarms watch (`mlops_contracts.metrics`).

    No degradation thresholds: the job exits 3 when one is crossed, which SageMaker would show as a
    failed execution; the alarms hold the model's gates and decide."""
    return {
        "MLOPS_MONITOR_CAPTURES": captures_root,
        "MLOPS_MONITOR_LABELS": ground_truth_uri,
        "MLOPS_MONITOR_TASK": task,
        "MLOPS_MONITOR_WINDOW_HOURS": f"{window_hours:g}",
        # PutMetricData from the job, into the namespace the alarms watch (Model Monitor's metric
        # files would land in its own namespace).
        "MLOPS_MONITOR_PUBLISH": "cloudwatch",
        **metrics.monitor_environment(),
    }


@dataclass(frozen=True, kw_only=True)
class QualityMonitorArgs:
    """Inputs of QualityMonitor (one endpoint)."""

    namer: Namer
    key: str
    """The endpoint's config key."""
    endpoint_name: pulumi.Input[str]
    captures_root: pulumi.Input[str]
    """S3 prefix above the endpoint's captures (`<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/`)."""
    ground_truth_uri: str
    """The model's ground truth (`ModelConfig.ground_truth_uri`, default `Namer.ground_truth_uri`)."""
    task: str
    """The model's task: which live metrics are computed."""
    image: str
    """The serving image (`mlops-monitor quality` is its second entry point's second command)."""
    schedule: str
    instance_type: str
    window_hours: float = 24.0
    """Predictions of this many hours before the run are joined with their labels. @default 24."""
    role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    report_bucket: pulumi.Input[str]
    network: Network | None = None
    tags: dict[str, str]


class QualityMonitor(pulumi.ComponentResource):
    """The endpoint's hourly (by default) live-quality job."""

    schedule: aws.sagemaker.MonitoringSchedule

    def __init__(self, name: str, args: QualityMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("QualityMonitor", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        endpoint_name = pulumi.Output.from_input(args.endpoint_name)
        environment = pulumi.Output.from_input(args.captures_root).apply(lambda root: job_environment(
            captures_root=root, ground_truth_uri=args.ground_truth_uri, task=args.task, window_hours=args.window_hours))
        self.schedule = aws.sagemaker.MonitoringSchedule(
            f"{name}-schedule",
            name=args.namer.quality_schedule(args.key),
            monitoring_schedule_config={
                "monitoring_type": MONITORING_TYPE,
                "schedule_config": {"schedule_expression": args.schedule},
                # The endpoint input is required by the API; the job reads the wider window from S3
                # itself (module docstring).
                "monitoring_job_definition": job_definition(
                    image=args.image, entrypoint=ENTRYPOINT, endpoint_name=endpoint_name,
                    output_uri=pulumi.Output.concat("s3://", args.report_bucket, "/monitoring-quality/", endpoint_name),
                    kms_key_arn=args.kms_key_arn, instance_type=args.instance_type, environment=environment,
                    role_arn=args.role_arn, network=args.network,
                    isolated=False,  # it reads labels and captures from S3 (module docstring)
                ),
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"scheduleName": self.schedule.name})


def _problems(args: QualityMonitorArgs) -> list[Problem]:
    problems = required_name("key", args.key)
    if args.task not in TASKS:
        problems.append(("task", f"allowed {', '.join(TASKS)}, got {args.task!r}"))
    if not args.ground_truth_uri.startswith("s3://"):
        problems.append(("ground_truth_uri", f"must be an s3:// URI, got {args.ground_truth_uri!r}"))
    if not 0 < args.window_hours <= 24 * 30:
        problems.append(("window_hours", f"allowed 0 < hours <= 720, got {args.window_hours}"))
    return problems
