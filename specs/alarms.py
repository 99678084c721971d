"""The CloudWatch alarms a stack gets, as plain data: per-variant health alarms and drift alarms.

Pure: the Monitoring component turns each `AlarmSpec` into a MetricAlarm, the Endpoint component
names the rollback subset in its deployment guardrails, and `mlops local` evaluates the same specs
against its local CloudWatch. One definition, three users.

The alarms are declared as rows (`AlarmRow`): `VARIANT_ALARMS` is the table of health alarms every
variant gets; `live_quality_rows` and `drift_rows` derive the rows that depend on a model's gates
and on the monitoring job's published metrics (`DRIFT_ALARMS`, and the metric names of
`mlops_contracts.metrics`). One function, `endpoint_alarms`, turns the rows and an endpoint's config
into `AlarmSpec`s.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: three users, none of them imported here).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops_contracts import metrics as contract

from specs.config.schema import LOWER_IS_BETTER, EndpointConfig, Thresholds
from specs.naming import Namer

SAGEMAKER_NAMESPACE = contract.SAGEMAKER_NAMESPACE
SAGEMAKER_DIMENSIONS = (contract.ENDPOINT_DIMENSION, contract.VARIANT_DIMENSION)
"""The dimensions of SageMaker's own per-variant endpoint metrics."""
MAX_ROLLBACK_ALARMS = 10
"""AWS allows 1 to 10 alarms in an endpoint's AutoRollbackConfiguration."""
ENDPOINT_WIDE_GROUP = "drift"
"""The variant slot of an endpoint-wide alarm's name (`<prefix>-<endpoint>-drift-<suffix>`)."""


@dataclass(frozen=True)
class DriftAlarm:
    """A drift alarm the Monitoring component creates per endpoint."""

    suffix: str
    metric: str
    description: str


DRIFT_ALARMS: tuple[DriftAlarm, ...] = (
    DriftAlarm("max-feature-psi", contract.MAX_FEATURE_PSI, "a feature's distribution drifted from its training baseline"),
    DriftAlarm("prediction-psi", contract.PREDICTION_PSI, "the prediction distribution drifted from the training baseline"),
)
DRIFT_ALARM_METRICS: tuple[str, ...] = tuple(a.suffix for a in DRIFT_ALARMS)


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


@dataclass(frozen=True)
class MetricMath:
    """An alarm on an expression over per-variant SageMaker metrics instead of on one metric."""

    inputs: tuple[tuple[str, str], ...]
    """(query id, SageMaker metric name) of each input, at the row's statistic over its period."""
    expression: str
    label: str
    result_id: str = "rate"


@dataclass(frozen=True)
class AlarmRow:
    """One alarm declaration; `endpoint_alarms` instantiates it per variant (or once per endpoint)."""

    suffix: str
    """Last part of the alarm's name: `<prefix>-<endpoint>-<variant>-<suffix>`."""
    scope: Literal["variant", "production", "endpoint"]
    """Every variant (production and shadow), production variants only, or the endpoint as a whole."""
    description: str
    """`str.format` template over `role` (production/shadow), `variant` and `value` (the threshold as configured)."""
    comparison: str
    threshold: str | float
    """A `Thresholds` field name, or the threshold itself (a model's gate)."""
    threshold_scale: float = 1
    """Factor from the configured unit to the metric's (ModelLatency is in microseconds, the config in ms)."""
    namespace: str | None = SAGEMAKER_NAMESPACE
    metric: str | None = None
    statistic: str | None = None
    """The alarm's statistic; for a metric-math row, the statistic of its inputs."""
    extended_statistic: str | None = None
    dimension_names: tuple[str, ...] = SAGEMAKER_DIMENSIONS
    """Dimension names (of `contract`), filled with the endpoint's name, the variant (per-variant rows
    only) and the endpoint's drift schedule (`Namer.monitoring_schedule`)."""
    math: MetricMath | None = None
    period: int = 60
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    treat_missing_data: str = "notBreaching"
    rollback: bool = False
    """On a production variant, part of the endpoint's auto-rollback configuration."""
    zero_disables: bool = False
    """A configured threshold of 0 turns the alarm off."""


VARIANT_ALARMS: tuple[AlarmRow, ...] = (
    AlarmRow(
        "p99-latency", "variant", "p99 ModelLatency of {role} variant {variant} above {value:g} ms",
        "GreaterThanThreshold", "latency_p99_ms", threshold_scale=1000, metric="ModelLatency", extended_statistic="p99",
        period=60, evaluation_periods=5, datapoints_to_alarm=3, rollback=True,
    ),
    AlarmRow(
        "5xx-errors", "variant", "{value} or more 5XX errors in 5 minutes on {role} variant {variant}",
        "GreaterThanOrEqualToThreshold", "errors_5xx", metric="Invocation5XXErrors", statistic="Sum", period=300, rollback=True,
    ),
    AlarmRow(
        "4xx-rate", "variant", "over {value:g} % of requests to {role} variant {variant} rejected (4XX) in 5 minutes",
        "GreaterThanThreshold", "rate_4xx_percent", namespace=None, statistic="Sum", period=300,
        math=MetricMath(inputs=(("errors", "Invocation4XXErrors"), ("invocations", "Invocations")),
                        expression="IF(invocations > 0, 100 * errors / invocations, 0)", label="4XX %"),
    ),
    AlarmRow(
        "no-traffic", "production", "fewer than {value} invocations in an hour on variant {variant}",
        "LessThanThreshold", "min_invocations_per_hour", metric="Invocations", statistic="Sum", period=3600,
        treat_missing_data="breaching",  # no datapoints is exactly what this alarm is for
        zero_disables=True,
    ),
)
"""Health alarms of every variant, in the order they are created."""
ROLLBACK_METRICS = tuple(row.suffix for row in VARIANT_ALARMS if row.rollback)
"""Per production variant, these alarms roll a deployment back."""


LIVE_QUALITY_MISSING_DATA = "ignore"
"""What an hour without a live-quality datapoint means: nothing. The quality job (QualityMonitor,
hourly) publishes a variant's metric only when enough of its predictions are labelled, and labels
arrive late and in bursts, so many hours have no datapoint. `notBreaching` would turn a firing alarm
OK at the first such hour and fire it again at the next labelled hour, starting a retrain each time;
`missing` would do the same through INSUFFICIENT_DATA. `ignore` keeps the state until labelled data
says otherwise: one ALARM per degradation, cleared only by a datapoint that meets the gate. Before
the first datapoint the alarm stays INSUFFICIENT_DATA, which notifies nobody."""


def live_quality_rows(gates: Mapping[str, float]) -> list[AlarmRow]:
    """A live-quality alarm per gated metric the quality job publishes (r2 is not published live):
    it fires when the metric on labelled traffic falls on the wrong side of the model's gate."""
    rows = []
    for metric, gate in gates.items():
        suffix = contract.LIVE_METRIC_SUFFIXES.get(metric)
        if suffix is None:
            continue
        lower = metric in LOWER_IS_BETTER
        rows.append(AlarmRow(
            f"live-{metric.replace('_', '-')}", "production",
            f"live {metric} of variant {{variant}} on labelled traffic {'above' if lower else 'below'} its gate {{value:g}}",
            "GreaterThanThreshold" if lower else "LessThanThreshold", gate,
            namespace=contract.NAMESPACE, metric=f"{contract.LIVE_METRIC_PREFIX}{suffix}",
            statistic="Maximum" if lower else "Minimum",
            dimension_names=(contract.ENDPOINT_DIMENSION, contract.VARIANT_DIMENSION), period=3600,
            treat_missing_data=LIVE_QUALITY_MISSING_DATA,
        ))
    return rows


def drift_rows() -> list[AlarmRow]:
    """An endpoint-wide alarm per drift metric of the contract, at the configured PSI threshold. The
    drift job is network-isolated: SageMaker publishes its metric records into Model Monitor's
    namespace (`contract.MODEL_MONITOR_NAMESPACE`), with the endpoint and the schedule as dimensions
    (`contract.DRIFT_DIMENSIONS`); an alarm matches dimensions exactly, so it names both."""
    return [
        AlarmRow(
            drift.suffix, "endpoint", drift.description.replace("{", "{{").replace("}", "}}") + " (PSI above {value:g})",
            "GreaterThanThreshold", "drift_psi", namespace=contract.MODEL_MONITOR_NAMESPACE, metric=drift.metric,
            statistic="Maximum", dimension_names=contract.DRIFT_DIMENSIONS, period=3600,
        )
        for drift in DRIFT_ALARMS
    ]


MODEL_ALARM_NAMESPACES = (contract.MODEL_MONITOR_NAMESPACE, contract.NAMESPACE)
"""Where the monitoring jobs' metrics are: drift (SageMaker publishes it) and live quality."""


def watches_the_model(spec: AlarmSpec) -> bool:
    """A drift or live-quality alarm: it says the model no longer fits its traffic (these start a
    retrain), not that a variant is unhealthy."""
    return spec.namespace in MODEL_ALARM_NAMESPACES


def endpoint_alarms(
    *, namer: Namer, key: str, endpoint: EndpointConfig, thresholds: Thresholds, gates: Mapping[str, float] | None = None,
) -> list[AlarmSpec]:
    """Health alarms for every variant of one endpoint, production and shadow; drift alarms; and,
    per production variant, live-quality alarms at the model's evaluation `gates`."""
    production = endpoint.production_variants()
    live = live_quality_rows(gates or {})
    instances: list[tuple[AlarmRow, str | None]] = [
        (row, variant) for variant in endpoint.all_variants() for row in VARIANT_ALARMS
        if row.scope == "variant" or variant in production
    ]
    instances += [(row, variant) for variant in production for row in live]
    instances += [(row, None) for row in drift_rows()]
    specs = [_spec(row, namer=namer, key=key, variant=v, production=v in production, thresholds=thresholds) for row, v in instances]
    return [s for s in specs if s is not None]


def _spec(
    row: AlarmRow, *, namer: Namer, key: str, variant: str | None, production: bool, thresholds: Thresholds
) -> AlarmSpec | None:
    """The alarm one row declares for one variant (None: the variant's slot of an endpoint-wide
    row), or None when the configured threshold turns it off."""
    value = getattr(thresholds, row.threshold) if isinstance(row.threshold, str) else row.threshold
    if row.zero_disables and not value > 0:
        return None
    endpoint_name = namer.endpoint(key)
    per_variant = variant is not None
    values = {contract.ENDPOINT_DIMENSION: endpoint_name, contract.SCHEDULE_DIMENSION: namer.monitoring_schedule(key)}
    if per_variant:
        values[contract.VARIANT_DIMENSION] = variant
    dimensions = {name: values[name] for name in row.dimension_names}
    return AlarmSpec(
        name=namer.alarm(key, variant if per_variant else ENDPOINT_WIDE_GROUP, row.suffix),
        description=row.description.format(role="production" if production else "shadow", variant=variant, value=value),
        endpoint=key, variant=variant,
        namespace=row.namespace,
        metric=row.metric, statistic=row.statistic if row.math is None else None, extended_statistic=row.extended_statistic,
        dimensions=dimensions if row.math is None else {},
        metric_queries=_metric_queries(row, dimensions) if row.math else [],
        period=row.period, evaluation_periods=row.evaluation_periods, datapoints_to_alarm=row.datapoints_to_alarm,
        comparison=row.comparison, threshold=value if row.threshold_scale == 1 else value * row.threshold_scale,
        treat_missing_data=row.treat_missing_data, rollback=row.rollback and production,
    )


def _metric_queries(row: AlarmRow, dims: dict[str, str]) -> list[dict[str, Any]]:
    """MetricDataQueries of a metric-math row: its inputs (not returned), then the expression."""
    assert row.math is not None
    queries = [_query(query_id, metric, dims, period=row.period, stat=row.statistic) for query_id, metric in row.math.inputs]
    return [*queries, {"Id": row.math.result_id, "Expression": row.math.expression, "Label": row.math.label, "ReturnData": True}]


def _query(query_id: str, metric: str, dims: dict[str, str], *, period: int, stat: str | None) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": SAGEMAKER_NAMESPACE, "MetricName": metric, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": False,
    }


def rollback_alarm_names(specs: Iterable[AlarmSpec]) -> list[str]:
    """Names of the alarms that roll a deployment back, in creation order."""
    return [s.name for s in specs if s.rollback]
