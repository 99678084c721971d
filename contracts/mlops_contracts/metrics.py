"""CloudWatch metric contract (docs/contracts.md section 6).

Who writes and who watches:
- the drift job (`mlops-monitor drift`, the DriftMonitor's network-isolated schedule) writes its metric
  records to Model Monitor's metric file and SageMaker publishes them into `MODEL_MONITOR_NAMESPACE`,
  with the dimensions `DRIFT_DIMENSIONS` (plus `FEATURE_DIMENSION` per feature); the drift alarms and
  the dashboard's drift chart watch them there;
- the live-quality job (`mlops-monitor quality`) calls PutMetricData itself into `NAMESPACE`, where
  the live-quality alarms and the dashboard watch them; the components hand the jobs these names in
  their environment (`monitor_environment`);
- SageMaker publishes the endpoint metrics (`SAGEMAKER_NAMESPACE`), which the local router
  (`mlops.local.router`) emulates and the per-variant alarms and the dashboard watch.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (both container images install this package on its
own).
"""
from __future__ import annotations

from mlops_contracts.feature_schema import BINARY_CLASSIFICATION, REGRESSION

NAMESPACE = "MLOps/ModelMonitor"
"""Custom namespace of the metrics the live-quality job publishes itself (PutMetricData)."""
MODEL_MONITOR_NAMESPACE = "/aws/sagemaker/Endpoint/data-metrics"
"""Where SageMaker publishes the metric records a real-time endpoint's bring-your-own-container
monitoring job writes under `/opt/ml/output/metrics/cloudwatch` (the drift metrics). The job cannot
choose it. Source: https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html"""

ENDPOINT_DIMENSION = "EndpointName"
"""Dimension naming the endpoint (the same name SageMaker's own endpoint metrics use)."""
FEATURE_DIMENSION = "Feature"
"""Dimension naming the feature of a per-feature drift metric."""
VARIANT_DIMENSION = "VariantName"
"""Dimension naming the production variant (the same name SageMaker's own endpoint metrics use)."""
SCHEDULE_DIMENSION = "MonitoringSchedule"
"""Dimension naming the MonitoringSchedule whose job wrote a drift metric: AWS recommends at least
`Endpoint` and `MonitoringSchedule` for metrics in `MODEL_MONITOR_NAMESPACE` (same source), which
other schedules of the account write into too."""
DRIFT_DIMENSIONS = (ENDPOINT_DIMENSION, SCHEDULE_DIMENSION)
"""The dimensions of every drift metric (a per-feature one adds `FEATURE_DIMENSION`), in the order the
job writes them. The drift alarms match exactly these: a drift job run without a schedule name (a
local or CronJob run that does not pass one) writes metrics no drift alarm watches."""

FEATURE_PSI = "FeaturePSI"
"""Population stability index of one feature against its training baseline (dims: endpoint, schedule, feature)."""
FEATURE_KS = "FeatureKS"
"""Two-sample Kolmogorov-Smirnov statistic of one numeric feature (dims: endpoint, schedule, feature)."""
MAX_FEATURE_PSI = "MaxFeaturePSI"
"""Largest FeaturePSI of a run (dims: endpoint, schedule)."""
DRIFTED_FEATURES = "DriftedFeatureCount"
"""Features whose PSI is above the configured threshold (dims: endpoint, schedule)."""
PREDICTION_PSI = "PredictionPSI"
"""PSI of the prediction distribution against the training baseline's (dims: endpoint, schedule)."""
LIVE_METRIC_PREFIX = "Live"
"""Live quality metrics are Live<Suffix> (LiveAUC, LiveRMSE...) with dims endpoint and variant."""
LIVE_METRIC_SUFFIXES: dict[str, str] = {"auc": "AUC", "accuracy": "Accuracy", "log_loss": "LogLoss", "rmse": "RMSE", "mae": "MAE"}
"""Evaluation metric (docs/contracts.md section 5) -> suffix of the live metric the quality job
publishes. r2 is not published live."""
LIVE_METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    BINARY_CLASSIFICATION: ("auc", "accuracy", "log_loss"),
    REGRESSION: ("rmse", "mae"),
}
"""The evaluation metrics the quality job publishes live, by model task."""


def live_metric(metric: str, *, prefix: str = LIVE_METRIC_PREFIX) -> str:
    """The CloudWatch name of evaluation metric `metric` measured live (`auc` -> `LiveAUC`)."""
    try:
        return prefix + LIVE_METRIC_SUFFIXES[metric]
    except KeyError:
        raise ValueError(f"metric {metric!r} is not published live; allowed: {', '.join(LIVE_METRIC_SUFFIXES)}") from None


MONITOR_NAMES: dict[str, str] = {
    "namespace": NAMESPACE,
    "feature_psi": FEATURE_PSI,
    "feature_ks": FEATURE_KS,
    "max_feature_psi": MAX_FEATURE_PSI,
    "drifted_features": DRIFTED_FEATURES,
    "prediction_psi": PREDICTION_PSI,
    "live_prefix": LIVE_METRIC_PREFIX,
    "endpoint_dimension": ENDPOINT_DIMENSION,
    "feature_dimension": FEATURE_DIMENSION,
    "variant_dimension": VARIANT_DIMENSION,
    "schedule_dimension": SCHEDULE_DIMENSION,
}
"""The names the monitoring job publishes under, by the field of its settings that holds each."""
MONITOR_ENV: dict[str, str] = {
    "namespace": "MLOPS_MONITOR_NAMESPACE",
    "feature_psi": "MLOPS_METRIC_FEATURE_PSI",
    "feature_ks": "MLOPS_METRIC_FEATURE_KS",
    "max_feature_psi": "MLOPS_METRIC_MAX_FEATURE_PSI",
    "drifted_features": "MLOPS_METRIC_DRIFTED_FEATURES",
    "prediction_psi": "MLOPS_METRIC_PREDICTION_PSI",
    "live_prefix": "MLOPS_METRIC_LIVE_PREFIX",
    "endpoint_dimension": "MLOPS_DIMENSION_ENDPOINT",
    "feature_dimension": "MLOPS_DIMENSION_FEATURE",
    "variant_dimension": "MLOPS_DIMENSION_VARIANT",
    "schedule_dimension": "MLOPS_DIMENSION_SCHEDULE",
}
"""The environment variable that overrides each of `MONITOR_NAMES` in the monitoring job."""


def monitor_environment(*, namespace: bool = True) -> dict[str, str]:
    """The environment that hands the monitoring job `MONITOR_NAMES` (variable -> value). Without
    `namespace`: for a job whose metrics SageMaker publishes (`MODEL_MONITOR_NAMESPACE`), where a
    namespace variable would name a namespace nothing is published to."""
    return {MONITOR_ENV[field]: value for field, value in MONITOR_NAMES.items() if namespace or field != "namespace"}


SAGEMAKER_NAMESPACE = "AWS/SageMaker"
"""Where SageMaker publishes the endpoint metrics below (dims: endpoint, variant)."""
INVOCATIONS = "Invocations"
INVOCATION_4XX_ERRORS = "Invocation4XXErrors"
INVOCATION_5XX_ERRORS = "Invocation5XXErrors"
MODEL_LATENCY = "ModelLatency"
"""Microseconds, per request."""
