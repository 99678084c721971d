"""Metric records and where they go: CloudWatch's PutMetricData, or Model Monitor's metric files.

`cloudwatch`: the job calls PutMetricData itself into the configured namespace (the live-quality
job's schedule, whose role may publish to `MLOps/ModelMonitor`, a CronJob, or a local run).

`file`: Model Monitor's bring-your-own-container contract, what the drift job's network-isolated
schedule uses. With `publish_cloudwatch_metrics` `Enabled`, the container writes JSON lines shaped
like PutMetricData's `MetricData` entries (`MetricName`, `Timestamp`, `Dimensions`, `Value`, `Unit`)
under `/opt/ml/output/metrics/cloudwatch/` and SageMaker publishes them after the job into
`/aws/sagemaker/Endpoint/data-metrics` (the contract cannot name a namespace; the drift alarms watch
that one, `mlops_contracts.metrics.MODEL_MONITOR_NAMESPACE`). The job itself then needs no network.
Source: https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import storage

log = logging.getLogger("mlops_serving.monitor")

METRICS_FILE = "cloudwatch_metrics.jsonl"
PUT_BATCH = 1000
"""PutMetricData takes up to 1,000 metrics per request."""
_CLOUDWATCH_MIN = 8.515920e-109
"""CloudWatch rejects non-zero magnitudes below this (and NaN, and infinities)."""


def datum(name: str, value: float | None, dimensions: Mapping[str, str], *, timestamp: datetime,
          unit: str = "None") -> dict[str, Any] | None:
    """One MetricData entry, or None for a value CloudWatch cannot hold (None, NaN, infinite)."""
    if value is None or not math.isfinite(value):
        return None
    if value != 0 and abs(value) < _CLOUDWATCH_MIN:
        value = 0.0
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Timestamp": timestamp.astimezone(UTC),
        "Value": float(value),
        "Unit": unit,
    }


def publish(metrics: Sequence[dict[str, Any]], *, targets: Iterable[str], namespace: str, metrics_dir: str) -> None:
    """Send `metrics` to every target (`cloudwatch`, `file`); no target, no effect."""
    for target in targets:
        if target == "cloudwatch":
            put_metric_data(metrics, namespace=namespace)
        elif target == "file":
            write_metric_file(metrics, directory=metrics_dir)
        else:
            raise ValueError(f"publish target {target!r}: allowed cloudwatch, file")


def put_metric_data(metrics: Sequence[dict[str, Any]], *, namespace: str) -> None:
    cloudwatch = storage.client("cloudwatch")
    for i in range(0, len(metrics), PUT_BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=list(metrics[i:i + PUT_BATCH]))
    log.info("published %d metrics to CloudWatch namespace %s", len(metrics), namespace)


def write_metric_file(metrics: Sequence[dict[str, Any]], *, directory: str) -> Path:
    """Append the records, one JSON object per line, to the contract's metrics directory."""
    path = Path(directory) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({**m, "Timestamp": m["Timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n" for m in metrics]
    with open(path, "a", encoding="utf-8") as handle:
        handle.writelines(lines)
    log.info("wrote %d metric records to %s", len(metrics), path)
    return path
