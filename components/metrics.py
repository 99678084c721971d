"""CloudWatch metric names shared by the monitoring job (publisher) and the alarms (watchers).

The only place these names are spelt: the Monitoring component builds its drift and quality alarms
from them and passes them to the monitoring job's environment, so the two cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "MLOps/ModelMonitor"
"""Custom namespace of everything the monitoring job publishes."""

ENDPOINT_DIMENSION = "EndpointName"
FEATURE_DIMENSION = "Feature"
VARIANT_DIMENSION = "VariantName"

FEATURE_PSI = "FeaturePSI"
"""Population stability index of one feature against its training baseline (dims: endpoint, feature)."""
FEATURE_KS = "FeatureKS"
"""Two-sample Kolmogorov-Smirnov statistic of one numeric feature (dims: endpoint, feature)."""
MAX_FEATURE_PSI = "MaxFeaturePSI"
"""Largest FeaturePSI of a run (dims: endpoint)."""
DRIFTED_FEATURES = "DriftedFeatureCount"
"""Features whose PSI is above the configured threshold (dims: endpoint)."""
PREDICTION_PSI = "PredictionPSI"
"""PSI of the prediction distribution against the training baseline's (dims: endpoint)."""
LIVE_METRIC_PREFIX = "Live"
"""Live quality metrics are Live<Metric> (LiveAUC, LiveRMSE...) with dims endpoint and variant."""
LIVE_METRIC_SUFFIXES = {"auc": "AUC", "accuracy": "Accuracy", "log_loss": "LogLoss", "rmse": "RMSE", "mae": "MAE"}
"""Evaluation metric -> suffix of the live metric the quality job publishes (r2 is not published live)."""


@dataclass(frozen=True)
class DriftAlarm:
    """A drift alarm the Monitoring component creates per endpoint."""

    suffix: str
    metric: str
    description: str


DRIFT_ALARMS: tuple[DriftAlarm, ...] = (
    DriftAlarm("max-feature-psi", MAX_FEATURE_PSI, "a feature's distribution drifted from its training baseline"),
    DriftAlarm("prediction-psi", PREDICTION_PSI, "the prediction distribution drifted from the training baseline"),
)
DRIFT_ALARM_METRICS: tuple[str, ...] = tuple(a.suffix for a in DRIFT_ALARMS)
