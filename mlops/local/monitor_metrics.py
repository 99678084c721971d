"""What SageMaker does after a bring-your-own-container monitoring job, locally: publish the metric
records the job wrote into CloudWatch.

With `publish_cloudwatch_metrics` `Enabled`, a Model Monitor job writes JSON lines shaped like
PutMetricData's `MetricData` entries (`MetricName`, `Timestamp`, `Dimensions`, `Value`, `Unit`) under
`/opt/ml/output/metrics/cloudwatch`, and SageMaker publishes them, for a real-time endpoint, into
`/aws/sagemaker/Endpoint/data-metrics` (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-byoc-cloudwatch.html).
The drift job runs network-isolated this way (components/drift_monitor.py); moto has no Model Monitor,
so `mlops local` runs the job as a process with the file target and then `publish_metric_files`
sends its records to the local CloudWatch, where the drift alarms watch.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops_contracts import metrics as contract

PUT_BATCH = 1000
"""PutMetricData takes up to 1,000 metrics per request."""
RECORD_FIELDS = ("MetricName", "Timestamp", "Dimensions", "Value", "StatisticValues", "Unit", "StorageResolution")
"""The members of a MetricData entry a record may hold (the contract's, and PutMetricData's)."""


def read_records(directory: Path) -> list[dict[str, Any]]:
    """Every record of every file in the job's metrics directory (files in name order), as a
    MetricData entry. A record that is not one raises ValueError naming its file and line."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no metrics directory {directory}: the job wrote no metric records (was it run with --publish file?)")
    records = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                records.append(_record(line, where=f"{path}:{number}"))
    return records


def _record(line: str, *, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not a JSON object; allowed a MetricData entry ({', '.join(RECORD_FIELDS)})")
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed {', '.join(RECORD_FIELDS)}")
    if not isinstance(record.get("MetricName"), str) or not record["MetricName"]:
        raise ValueError(f"{where}: MetricName is required (a non-empty string), got {record.get('MetricName')!r}")
    if ("Value" in record) == ("StatisticValues" in record):
        raise ValueError(f"{where}: exactly one of Value and StatisticValues is allowed")
    stamp = record.get("Timestamp")
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: Timestamp {stamp!r} is not an ISO 8601 time (e.g. 2026-11-22T06:00:00Z)") from None
    if when.tzinfo is None:
        raise ValueError(f"{where}: Timestamp {stamp!r} has no time zone; allowed e.g. 2026-11-22T06:00:00Z")
    return {**record, "Timestamp": when}


def put_requests(records: list[dict[str, Any]], *, namespace: str = contract.MODEL_MONITOR_NAMESPACE) -> list[dict[str, Any]]:
    """The PutMetricData requests (parameters) that publish `records` into `namespace`."""
    return [{"Namespace": namespace, "MetricData": records[i:i + PUT_BATCH]} for i in range(0, len(records), PUT_BATCH)]


def publish_metric_files(cloudwatch: Any, directory: Path, *, namespace: str = contract.MODEL_MONITOR_NAMESPACE) -> int:
    """Publish the records of the job's metrics directory into `namespace` (SageMaker's, by default),
    as SageMaker does after the job; returns how many were published."""
    records = read_records(directory)
    for request in put_requests(records, namespace=namespace):
        cloudwatch.put_metric_data(**request)
    return len(records)
