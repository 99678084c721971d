"""DriftMonitor: a SageMaker MonitoringSchedule running the serving image's monitoring job over an
endpoint's captured requests (Model Monitor's bring-your-own-container contract).

The job runs network-isolated. It needs no network: Model Monitor copies the hour's captures into the
endpoint input channel (`dataset_source`) and the baseline named by the definition's baseline
(`baseline_statistics`) (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-contract-inputs.html);
with `publish_cloudwatch_metrics` `Enabled` the job writes its metric records under
`/opt/ml/output/metrics/cloudwatch` and SageMaker publishes them, after the job, into
`/aws/sagemaker/Endpoint/data-metrics` (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html),
where the drift alarms watch (`mlops_contracts.metrics.MODEL_MONITOR_NAMESPACE`, dimensions
`DRIFT_DIMENSIONS`: the endpoint and this schedule).

Those pages also say: "Amazon SageMaker Model Monitor is no longer open to new customers" (existing
customers continue to use it). So an AWS account new to Model Monitor cannot create this schedule (nor
the QualityMonitor's): the job itself is plain `mlops-monitor drift` and runs wherever the captures
are, but this project ships no other scheduler for it.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from mlops_contracts import artifact, metrics

from components._monitoring_job import job_definition
from components._validation import Problem, raise_input_problems, required_name
from specs.config.schema import Network
from specs.naming import Namer

TOKEN = "mlops:drift_monitor:DriftMonitor"
ENTRYPOINT = ["mlops-monitor"]
"""With no command the job runs `drift` from Model Monitor's environment (the image's own entry point serves)."""


def baseline_uri(model_data_url: str) -> str:
    """The training job uploads baseline.json beside model.tar.gz (docs/contracts.md section 4)."""
    return artifact.beside_archive(model_data_url, artifact.BASELINE_FILE)


PUBLISH_SWITCH = "publish_cloudwatch_metrics"
"""Model Monitor's switch for the metric files; `Enabled` selects the job's `file` target (and only it)."""


def job_environment(*, psi_threshold: float) -> dict[str, str]:
    """What the monitoring job needs beyond Model Monitor's own variables (sagemaker_endpoint_name,
    sagemaker_monitoring_schedule_name, baseline_statistics, dataset_source, output_path): its
    threshold, `publish_cloudwatch_metrics` `Enabled` (metric files, which SageMaker publishes: the
    job calls no AWS API), and the metric and dimension names the drift alarms watch
    (`mlops_contracts.metrics`, which the job's own defaults also come from: the environment makes the
    schedule's names explicit in the plan). No namespace and no `MLOPS_MONITOR_PUBLISH`: SageMaker
    chooses the namespace, and `MLOPS_MONITOR_PUBLISH` would override the switch."""
    return {
        "MLOPS_MONITOR_PSI_THRESHOLD": f"{psi_threshold:g}",
        PUBLISH_SWITCH: "Enabled",
        **metrics.monitor_environment(namespace=False),
    }


@dataclass(frozen=True, kw_only=True)
class DriftMonitorArgs:
    """Inputs of DriftMonitor (one endpoint)."""

    namer: Namer
    key: str
    """The endpoint's config key."""
    endpoint_name: pulumi.Input[str]
    baseline_model_data_url: str
    """model.tar.gz of the version whose training baseline the traffic is compared with (the champion)."""
    image: str
    """The serving image (the monitoring job is its second entry point)."""
    schedule: str
    instance_type: str
    psi_threshold: float
    role_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    capture_bucket: pulumi.Input[str]
    network: Network | None = None
    tags: dict[str, str]


class DriftMonitor(pulumi.ComponentResource):
    """The endpoint's hourly (by default) drift job, network-isolated (module docstring)."""

    schedule: aws.sagemaker.MonitoringSchedule

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("DriftMonitor", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        endpoint_name = pulumi.Output.from_input(args.endpoint_name)
        self.schedule = aws.sagemaker.MonitoringSchedule(
            f"{name}-schedule",
            name=args.namer.monitoring_schedule(args.key),
            monitoring_schedule_config={
                "monitoring_type": "DataQuality",
                "schedule_config": {"schedule_expression": args.schedule},
                "monitoring_job_definition": job_definition(
                    image=args.image, entrypoint=ENTRYPOINT, endpoint_name=endpoint_name,
                    output_uri=pulumi.Output.concat("s3://", args.capture_bucket, "/monitoring/", endpoint_name),
                    kms_key_arn=args.kms_key_arn, instance_type=args.instance_type,
                    environment=job_environment(psi_threshold=args.psi_threshold), role_arn=args.role_arn, network=args.network,
                    isolated=True,
                    baseline={"statistics_resource": {"s3_uri": baseline_uri(args.baseline_model_data_url)}},
                ),
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"scheduleName": self.schedule.name})


def _problems(args: DriftMonitorArgs) -> list[Problem]:
    problems = required_name("key", args.key)
    if not args.psi_threshold > 0:
        problems.append(("psi_threshold", f"must be greater than 0, got {args.psi_threshold}"))
    return problems
