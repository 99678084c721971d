"""CloudWatch metric names for the components, and the drift alarms the Monitoring component creates.

The names themselves are the contract with the monitoring job and are spelt once, in
`mlops_contracts.metrics`; this module re-exports them for the importers not yet moved
(`components.alarms`, `components.foundation`, `components.stack`) and will be removed once they
import `mlops_contracts.metrics` directly. The DriftAlarm table below is an infrastructure
declaration, not part of the contract, and stays with the components.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlops_contracts.metrics import (
    DRIFTED_FEATURES,
    ENDPOINT_DIMENSION,
    FEATURE_DIMENSION,
    FEATURE_KS,
    FEATURE_PSI,
    LIVE_METRIC_PREFIX,
    LIVE_METRIC_SUFFIXES,
    MAX_FEATURE_PSI,
    NAMESPACE,
    PREDICTION_PSI,
    VARIANT_DIMENSION,
)

__all__ = [
    "DRIFTED_FEATURES", "ENDPOINT_DIMENSION", "FEATURE_DIMENSION", "FEATURE_KS", "FEATURE_PSI", "LIVE_METRIC_PREFIX",
    "LIVE_METRIC_SUFFIXES", "MAX_FEATURE_PSI", "NAMESPACE", "PREDICTION_PSI", "VARIANT_DIMENSION",
    "DriftAlarm", "DRIFT_ALARMS", "DRIFT_ALARM_METRICS",
]


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
