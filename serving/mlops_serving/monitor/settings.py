"""Settings of the monitoring jobs: frozen objects built from the environment, overridden by flags.

Environment variables are the interface a SageMaker MonitoringSchedule (Model Monitor's
bring-your-own-container contract: `dataset_source`, `output_path`, `start_time`, ...) and a
Kubernetes CronJob (`MLOPS_MONITOR_*`) use; `main.py` maps flags onto the same fields.

The metric namespace, names and dimension names default to `mlops_contracts.metrics`, which the
alarms are built from too; the DriftMonitor component also passes them in the environment
(`mlops_contracts.metrics.monitor_environment`), so that a schedule states the names it publishes.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops_contracts import feature_schema
from mlops_contracts import metrics as contract

PUBLISH_TARGETS = ("cloudwatch", "file")
"""`cloudwatch`: PutMetricData from the job. `file`: metric records in Model Monitor's
`/opt/ml/output/metrics/cloudwatch/` for SageMaker to publish."""
SAGEMAKER_METRICS_DIR = "/opt/ml/output/metrics/cloudwatch"
SAGEMAKER_MESSAGE_FILE = "/opt/ml/output/message"
TASKS = feature_schema.TASKS


@dataclass(frozen=True, kw_only=True)
class MetricNames:
    """CloudWatch namespace, metric and dimension names (defaults: `mlops_contracts.metrics`)."""

    namespace: str = contract.NAMESPACE
    """Env `MLOPS_MONITOR_NAMESPACE`."""
    feature_psi: str = contract.FEATURE_PSI
    """Env `MLOPS_METRIC_FEATURE_PSI`."""
    feature_ks: str = contract.FEATURE_KS
    """Env `MLOPS_METRIC_FEATURE_KS`."""
    max_feature_psi: str = contract.MAX_FEATURE_PSI
    """Env `MLOPS_METRIC_MAX_FEATURE_PSI`."""
    drifted_features: str = contract.DRIFTED_FEATURES
    """Env `MLOPS_METRIC_DRIFTED_FEATURES`."""
    prediction_psi: str = contract.PREDICTION_PSI
    """Env `MLOPS_METRIC_PREDICTION_PSI`."""
    live_prefix: str = contract.LIVE_METRIC_PREFIX
    """Live quality metrics are `<prefix><Metric>` (LiveAUC...). Env `MLOPS_METRIC_LIVE_PREFIX`."""
    endpoint_dimension: str = contract.ENDPOINT_DIMENSION
    """Env `MLOPS_DIMENSION_ENDPOINT`."""
    feature_dimension: str = contract.FEATURE_DIMENSION
    """Env `MLOPS_DIMENSION_FEATURE`."""
    variant_dimension: str = contract.VARIANT_DIMENSION
    """Env `MLOPS_DIMENSION_VARIANT`."""
    schedule_dimension: str = contract.SCHEDULE_DIMENSION
    """Names the drift job's schedule (`DriftSettings.monitoring_schedule`) in its metrics' dimensions.
    Env `MLOPS_DIMENSION_SCHEDULE`."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MetricNames:
        values = {}
        for name, var in METRIC_NAME_ENV.items():
            raw = environ.get(var, "").strip()
            if raw:
                values[name] = raw
        return cls(**values)


METRIC_NAME_ENV: dict[str, str] = contract.MONITOR_ENV
"""MetricNames field -> the environment variable that overrides it."""


def parse_time(raw: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; no zone means UTC.

    Whitespace inside is dropped: Model Monitor's documented example reads
    `"2019-12-01T16: 20: 00Z"`.
    """
    text = re.sub(r"\s+", "", raw)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 time; allowed e.g. 2026-11-22T06:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """`2026-11-22T06:00:00Z` (milliseconds when there are any), None for None."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return text.replace(".000Z", "Z")


def parse_publish(raw: str) -> tuple[str, ...]:
    """`cloudwatch`, `file`, both comma-separated, or `none`."""
    items = [p.strip().lower() for p in raw.split(",") if p.strip()]
    if items in ([], ["none"]):
        return ()
    bad = [p for p in items if p not in PUBLISH_TARGETS]
    if bad:
        raise ValueError(f"publish={raw!r}: allowed {', '.join(PUBLISH_TARGETS)}, both comma-separated, or none")
    return tuple(dict.fromkeys(items))


def _problems_common(s: Any, problems: list[str]) -> None:
    def need(ok: bool, name: str, allowed: str) -> None:
        if not ok:
            problems.append(f"{name}={getattr(s, name)!r}: allowed {allowed}")

    need(bool(s.captures), "captures", "a directory or s3://bucket/prefix (--captures)")
    need(bool(s.out), "out", "a directory or s3://bucket/prefix (--out)")
    need(bool(s.endpoint) and "/" not in s.endpoint, "endpoint", "the endpoint name (--endpoint), without '/'")
    if s.start is not None and s.end is not None and s.start >= s.end:
        problems.append(f"start={iso(s.start)} is not before end={iso(s.end)}")
    need(s.batch_records >= 1, "batch_records", "an integer >= 1")


@dataclass(frozen=True, kw_only=True)
class DriftSettings:
    """One run of the drift job."""

    captures: str = ""
    """Capture root (`{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`), a directory or
    `s3://bucket/prefix`. Env `MLOPS_MONITOR_CAPTURES`, else Model Monitor's `dataset_source`."""
    baseline: str = ""
    """`baseline.json` (contracts §4) or the `model.tar.gz` holding it, local or S3.
    Env `MLOPS_MONITOR_BASELINE`, else Model Monitor's `baseline_statistics`."""
    schema: str | None = None
    """The model's `schema.json` (column order of positional rows). Default: the `model.tar.gz`'s
    own when `baseline` is one, else the order of `baseline.json`'s features. Env `MLOPS_MONITOR_SCHEMA`."""
    out: str = ""
    """Where reports go, a directory or `s3://bucket/prefix`. Env `MLOPS_MONITOR_OUT`, else
    Model Monitor's `output_path`."""
    endpoint: str = ""
    """Endpoint name: the capture path's first level and the metrics' endpoint dimension.
    Env `MLOPS_MONITOR_ENDPOINT`, else Model Monitor's `sagemaker_endpoint_name`."""
    start: datetime | None = None
    """Records with an earlier `inferenceTime` are skipped. Default: no bound. Env `start_time`."""
    end: datetime | None = None
    """Records at or after it are skipped. Default: no bound. Env `end_time`."""
    publish: tuple[str, ...] = ()
    """Metric targets, see `PUBLISH_TARGETS`. Default none; env `MLOPS_MONITOR_PUBLISH`, else
    `file` when Model Monitor's `publish_cloudwatch_metrics` is `Enabled`."""
    metrics_dir: str = SAGEMAKER_METRICS_DIR
    """Directory of the `file` target. Default Model Monitor's. Env `MLOPS_MONITOR_METRICS_DIR`."""
    message_file: str | None = None
    """Status line for SageMaker (`Completed...` / `CompletedWithViolations...`). Default: none, or
    `/opt/ml/output/message` under a MonitoringSchedule. Env `MLOPS_MONITOR_MESSAGE_FILE`."""
    monitoring_schedule: str | None = None
    """The MonitoringSchedule running the job: in the report, and a dimension of every metric
    (`names.schedule_dimension`, as AWS recommends for Model Monitor's metric files; the drift alarms
    match it). Default none: no such dimension. Env `sagemaker_monitoring_schedule_name`,
    flag `--monitoring-schedule`."""
    psi_threshold: float = 0.2
    """A feature (or the prediction) whose PSI is above this has drifted. Default 0.2, the drift
    alarms' default. Env `MLOPS_MONITOR_PSI_THRESHOLD`."""
    null_rate_tolerance: float = 0.05
    """A completeness violation when a null rate exceeds the baseline's by more than this.
    Default 0.05. Env `MLOPS_MONITOR_NULL_RATE_TOLERANCE`."""
    new_category_tolerance: float = 0.01
    """A categorical-values violation when categories unseen in training make up more than this
    share of a String feature. Default 0.01. Env `MLOPS_MONITOR_NEW_CATEGORY_TOLERANCE`."""
    batch_records: int = 2000
    """Capture records decoded at a time: with the rotation size of a capture file, this bounds
    the job's memory. Default 2000. Env `MLOPS_MONITOR_BATCH_RECORDS`."""
    html: bool = True
    """Also write `drift_report.html`. Default on."""
    names: MetricNames = field(default_factory=MetricNames)

    def __post_init__(self) -> None:
        problems: list[str] = []
        _problems_common(self, problems)
        if not self.baseline:
            problems.append("baseline='': allowed a baseline.json or model.tar.gz, local or s3:// (--baseline)")
        if self.monitoring_schedule is not None and not self.monitoring_schedule.strip():
            problems.append(f"monitoring_schedule={self.monitoring_schedule!r}: allowed the MonitoringSchedule's name "
                            "(--monitoring-schedule), not blank")
        for name in ("psi_threshold", "null_rate_tolerance", "new_category_tolerance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{name}={value!r}: allowed a number > 0")
        if problems:
            raise ValueError("invalid drift job settings: " + "; ".join(problems))

    def replace(self, **changes: object) -> DriftSettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class QualitySettings:
    """One run of the live-quality job."""

    captures: str = ""
    """Capture root, as for the drift job. Env `MLOPS_MONITOR_CAPTURES`."""
    labels: str = ""
    """Ground truth: a file or a directory / `s3://` prefix of JSON lines in SageMaker's
    ground-truth format. Env `MLOPS_MONITOR_LABELS`."""
    out: str = ""
    """Where the report goes. Env `MLOPS_MONITOR_OUT`."""
    endpoint: str = ""
    """Endpoint name. Env `MLOPS_MONITOR_ENDPOINT`."""
    window_hours: float = 24.0
    """Length of the window when `start` is not given. Default 24. Env `MLOPS_MONITOR_WINDOW_HOURS`."""
    start: datetime | None = None
    """Window start (inferenceTime of the predictions, inclusive). Default: end - window_hours."""
    end: datetime | None = None
    """Window end (exclusive). Default: the time the job starts."""
    task: str = feature_schema.BINARY_CLASSIFICATION
    """`binary_classification` (LiveAUC, LiveAccuracy, LiveLogLoss) or `regression` (LiveRMSE,
    LiveMAE). Env `MLOPS_MONITOR_TASK`."""
    classification_threshold: float = 0.5
    """Probability at or above which a prediction counts as class 1 (as in training's metrics)."""
    min_auc: float | None = None
    """Degraded when LiveAUC is below it. Env `MLOPS_MONITOR_MIN_AUC`."""
    min_accuracy: float | None = None
    """Degraded when LiveAccuracy is below it. Env `MLOPS_MONITOR_MIN_ACCURACY`."""
    max_log_loss: float | None = None
    """Degraded when LiveLogLoss is above it. Env `MLOPS_MONITOR_MAX_LOG_LOSS`."""
    max_rmse: float | None = None
    """Degraded when LiveRMSE is above it. Env `MLOPS_MONITOR_MAX_RMSE`."""
    max_mae: float | None = None
    """Degraded when LiveMAE is above it. Env `MLOPS_MONITOR_MAX_MAE`."""
    min_labeled: int = 100
    """A variant with fewer labelled predictions is reported but neither published nor judged:
    its metrics are noise. Default 100. Env `MLOPS_MONITOR_MIN_LABELED`."""
    publish: tuple[str, ...] = ()
    """As for the drift job. Env `MLOPS_MONITOR_PUBLISH`."""
    metrics_dir: str = SAGEMAKER_METRICS_DIR
    """Directory of the `file` target. Env `MLOPS_MONITOR_METRICS_DIR`."""
    batch_records: int = 2000
    """Records read at a time. Env `MLOPS_MONITOR_BATCH_RECORDS`."""
    names: MetricNames = field(default_factory=MetricNames)

    def __post_init__(self) -> None:
        problems: list[str] = []
        _problems_common(self, problems)
        if not self.labels:
            problems.append("labels='': allowed a file, directory or s3:// prefix of ground truth (--labels)")
        if self.task not in TASKS:
            problems.append(f"task={self.task!r}: allowed {', '.join(TASKS)}")
        if not 0.0 < self.classification_threshold < 1.0:
            problems.append(f"classification_threshold={self.classification_threshold!r}: allowed 0 < t < 1")
        if not (math.isfinite(self.window_hours) and self.window_hours > 0):
            problems.append(f"window_hours={self.window_hours!r}: allowed hours > 0")
        if self.min_labeled < 1:
            problems.append(f"min_labeled={self.min_labeled!r}: allowed an integer >= 1")
        classification = ("min_auc", "min_accuracy", "max_log_loss")
        regression = ("max_rmse", "max_mae")
        wrong = regression if self.task == feature_schema.BINARY_CLASSIFICATION else classification
        for name in wrong:
            if getattr(self, name) is not None:
                problems.append(f"{name}={getattr(self, name)!r}: not a threshold of task {self.task}")
        if problems:
            raise ValueError("invalid quality job settings: " + "; ".join(problems))

    def replace(self, **changes: object) -> QualitySettings:
        return dataclasses.replace(self, **changes)
