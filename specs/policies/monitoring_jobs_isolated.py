"""monitoring-jobs-isolated: a Model Monitor job runs network-isolated, except the live-quality entry point.

A data-quality job (the DriftMonitor's) needs no network: Model Monitor copies the captures into the
endpoint input channel and the baseline into `baseline_statistics`
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-contract-inputs.html), and with
`publish_cloudwatch_metrics` `Enabled` SageMaker publishes the metric files the job writes
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html). Without isolation
a compromised or buggy monitoring image could send captured requests anywhere its role and network allow.

Checked on every MonitoringSchedule with an inline job definition
(`monitoringScheduleConfig.monitoringJobDefinition.networkConfig.enableNetworkIsolation` must be true)
and on every DataQualityJobDefinition (`networkConfig.enableNetworkIsolation`), whatever the schedule's
monitoring type.

One exception, stated here rather than left unchecked: a ModelQuality schedule whose container entry
point is exactly the serving image's live-quality job, `mlops-monitor quality` (`QUALITY_ENTRYPOINT`).
It reads the ground truth and a 24-hour capture window from S3 itself, because a MonitoringJobDefinition
has no ground-truth input (botocore's `MonitoringInput`: EndpointInput or BatchTransformInput only) and
pulumi-aws has no ModelQualityJobDefinition (components/quality_monitor.py). Any other ModelQuality
schedule without isolation is reported with this reason, naming the schedule and its entry point.
A schedule that names a separate job definition (`monitoringJobDefinitionName`) is judged on that
definition's own resource.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule

SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
DATA_QUALITY_DEFINITION = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
MODEL_QUALITY = "ModelQuality"
QUALITY_ENTRYPOINT = ["mlops-monitor", "quality"]
"""The live-quality job (components/quality_monitor.py ENTRYPOINT): the only job allowed the network."""
SETTING = "monitoringScheduleConfig.monitoringJobDefinition.networkConfig.enableNetworkIsolation"


def _isolated(definition: dict[str, Any]) -> bool:
    return (definition.get("networkConfig") or {}).get("enableNetworkIsolation") is True


def _schedule(props: dict[str, Any]) -> list[str]:
    config = props.get("monitoringScheduleConfig") or {}
    definition = config.get("monitoringJobDefinition")
    if not isinstance(definition, dict) or _isolated(definition):
        return []
    name = props.get("name") or "(unnamed)"
    kind = config.get("monitoringType") or "untyped"
    entrypoint = (definition.get("monitoringAppSpecification") or {}).get("containerEntrypoints")
    if kind == MODEL_QUALITY and entrypoint == QUALITY_ENTRYPOINT:
        return []
    if kind == MODEL_QUALITY:
        shown = " ".join(entrypoint) if isinstance(entrypoint, list) else "its image's default entry point"
        return [f"ModelQuality schedule {name} runs {shown} without network isolation; set {SETTING} to true "
                f"(only the live-quality job, {' '.join(QUALITY_ENTRYPOINT)}, may reach the network: it reads ground "
                "truth from S3, which a MonitoringJobDefinition has no input for)"]
    return [f"{kind} schedule {name} runs its job without network isolation; set {SETTING} to true "
            "(the job reads its captures and baseline from its channels, and SageMaker publishes its metric files)"]


def check(type_: str, props: dict[str, Any]) -> list[str]:
    if type_ == SCHEDULE:
        return _schedule(props)
    if type_ == DATA_QUALITY_DEFINITION and not _isolated(props):
        return [f"DataQualityJobDefinition {props.get('name') or '(unnamed)'} runs without network isolation; "
                "set networkConfig.enableNetworkIsolation to true"]
    return []


RULE = ResourceRule("monitoring-jobs-isolated", "Model Monitor jobs run network-isolated (but the live-quality job)", MANDATORY, check)
