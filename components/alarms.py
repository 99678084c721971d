"""The CloudWatch alarms a stack gets, as plain data: per-variant health alarms and drift alarms.

Pure: the Monitoring component turns each `AlarmSpec` into a MetricAlarm, the Endpoint component
names the rollback subset in its deployment guardrails, and `mlops local` evaluates the same specs
against its local CloudWatch. One definition, three users.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components import metrics
from components.config import LOWER_IS_BETTER, EndpointConfig, Thresholds
from specs.naming import Namer

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
MAX_ROLLBACK_ALARMS = 10
"""AWS allows 1 to 10 alarms in an endpoint's AutoRollbackConfiguration."""
ROLLBACK_METRICS = ("p99-latency", "5xx-errors")
"""Per production variant, these alarms roll a deployment back."""


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch metric alarm, in PutMetricAlarm's terms."""

    name: str
    description: str
    endpoint: str
    """Config key of the endpoint it watches."""
    variant: str | None
    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    namespace: str | None = None
    metric: str | None = None
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int = 60
    dimensions: dict[str, str] = field(default_factory=dict)
    metric_queries: list[dict[str, Any]] = field(default_factory=list)
    """Metric math (MetricDataQueries in the API's shape) instead of a single metric."""
    rollback: bool = False
    """Part of the endpoint's auto-rollback configuration."""


def endpoint_alarms(
    *, namer: Namer, key: str, endpoint: EndpointConfig, thresholds: Thresholds, gates: dict[str, float] | None = None
) -> list[AlarmSpec]:
    """Health alarms for every variant of one endpoint, production and shadow; drift alarms; and,
    per production variant, live-quality alarms at the model's evaluation `gates`."""
    endpoint_name = namer.endpoint(key)
    specs = []
    production = endpoint.production_variants()
    for variant in endpoint.all_variants():
        dims = {"EndpointName": endpoint_name, "VariantName": variant}
        is_production = variant in production
        role = "production" if is_production else "shadow"
        specs.append(AlarmSpec(
            name=namer.alarm(key, variant, "p99-latency"),
            description=f"p99 ModelLatency of {role} variant {variant} above {thresholds.latency_p99_ms:g} ms",
            endpoint=key, variant=variant,
            namespace=SAGEMAKER_NAMESPACE, metric="ModelLatency", extended_statistic="p99", dimensions=dims,
            period=60, evaluation_periods=5, datapoints_to_alarm=3,
            comparison="GreaterThanThreshold",
            threshold=thresholds.latency_p99_ms * 1000,  # ModelLatency is reported in microseconds
            treat_missing_data="notBreaching", rollback=is_production,
        ))
        specs.append(AlarmSpec(
            name=namer.alarm(key, variant, "5xx-errors"),
            description=f"{thresholds.errors_5xx} or more 5XX errors in 5 minutes on {role} variant {variant}",
            endpoint=key, variant=variant,
            namespace=SAGEMAKER_NAMESPACE, metric="Invocation5XXErrors", statistic="Sum", dimensions=dims,
            period=300, evaluation_periods=1, datapoints_to_alarm=1,
            comparison="GreaterThanOrEqualToThreshold", threshold=thresholds.errors_5xx,
            treat_missing_data="notBreaching", rollback=is_production,
        ))
        specs.append(AlarmSpec(
            name=namer.alarm(key, variant, "4xx-rate"),
            description=f"over {thresholds.rate_4xx_percent:g} % of requests to {role} variant {variant} rejected (4XX) in 5 minutes",
            endpoint=key, variant=variant,
            metric_queries=[
                _query("errors", "Invocation4XXErrors", dims),
                _query("invocations", "Invocations", dims),
                {"Id": "rate", "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)", "Label": "4XX %", "ReturnData": True},
            ],
            period=300, evaluation_periods=1, datapoints_to_alarm=1,
            comparison="GreaterThanThreshold", threshold=thresholds.rate_4xx_percent,
            treat_missing_data="notBreaching",
        ))
        if is_production and thresholds.min_invocations_per_hour > 0:
            specs.append(AlarmSpec(
                name=namer.alarm(key, variant, "no-traffic"),
                description=f"fewer than {thresholds.min_invocations_per_hour} invocations in an hour on variant {variant}",
                endpoint=key, variant=variant,
                namespace=SAGEMAKER_NAMESPACE, metric="Invocations", statistic="Sum", dimensions=dims,
                period=3600, evaluation_periods=1, datapoints_to_alarm=1,
                comparison="LessThanThreshold", threshold=thresholds.min_invocations_per_hour,
                treat_missing_data="breaching",  # no datapoints is exactly what this alarm is for
            ))
    for variant in production:
        for metric, threshold in (gates or {}).items():
            suffix = metrics.LIVE_METRIC_SUFFIXES.get(metric)
            if suffix is None:
                continue
            lower_is_better = metric in LOWER_IS_BETTER
            specs.append(AlarmSpec(
                name=namer.alarm(key, variant, f"live-{metric.replace('_', '-')}"),
                description=f"live {metric} of variant {variant} on labelled traffic {'above' if lower_is_better else 'below'} its gate {threshold:g}",
                endpoint=key, variant=variant,
                namespace=metrics.NAMESPACE, metric=f"{metrics.LIVE_METRIC_PREFIX}{suffix}",
                statistic="Maximum" if lower_is_better else "Minimum",
                dimensions={metrics.ENDPOINT_DIMENSION: endpoint_name, metrics.VARIANT_DIMENSION: variant},
                period=3600, evaluation_periods=1, datapoints_to_alarm=1,
                comparison="GreaterThanThreshold" if lower_is_better else "LessThanThreshold", threshold=threshold,
                treat_missing_data="notBreaching",  # no labels yet is not a degradation
            ))
    for drift in metrics.DRIFT_ALARMS:
        specs.append(AlarmSpec(
            name=namer.alarm(key, "drift", drift.suffix),
            description=f"{drift.description} (PSI above {thresholds.drift_psi:g})",
            endpoint=key, variant=None,
            namespace=metrics.NAMESPACE, metric=drift.metric, statistic="Maximum",
            dimensions={metrics.ENDPOINT_DIMENSION: endpoint_name},
            period=3600, evaluation_periods=1, datapoints_to_alarm=1,
            comparison="GreaterThanThreshold", threshold=thresholds.drift_psi,
            treat_missing_data="notBreaching",
        ))
    return specs


def _query(query_id: str, metric: str, dims: dict[str, str]) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": SAGEMAKER_NAMESPACE, "MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
            "Period": 300,
            "Stat": "Sum",
        },
        "ReturnData": False,
    }


def rollback_alarm_names(specs: list[AlarmSpec]) -> list[str]:
    return [s.name for s in specs if s.rollback]
