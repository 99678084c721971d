"""The shadow analysis of a stack's endpoint (`mlops experiment shadow`): its captures, CloudWatch's
latency and error figures per variant, the endpoint's `experiment.shadow` thresholds, and the JSON and
HTML reports.

Captures come from S3 (the endpoint's capture root, specs.pipelines.sources.capture_root) or, for a
local stack, from its environment's capture directory. Figures come from the AWS/SageMaker metrics of
the window as one period: Sum of Invocations and Invocation5XXErrors, p50 and p99 of ModelLatency.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlops_contracts import metrics as contract
from specs import templates
from specs.config.schema import StackConfig
from specs.naming import Namer
from specs.pipelines.sources import capture_root
from mlops.experiment import captures, shadow

DEFAULT_WINDOW = timedelta(hours=24)
"""The window read when no start is given."""


class ExperimentError(ValueError):
    """The endpoint cannot be analysed as asked; the message names what exists."""


def variant_figures(cloudwatch: Any, endpoint: str, variant: str, *, start: datetime, end: datetime) -> shadow.VariantFigures:
    """One variant's CloudWatch figures over [start, end], as one period."""
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    dims = [{"Name": contract.ENDPOINT_DIMENSION, "Value": endpoint}, {"Name": contract.VARIANT_DIMENSION, "Value": variant}]

    def stat(metric: str, **kind: Any) -> list[dict[str, Any]]:
        return cloudwatch.get_metric_statistics(Namespace=contract.SAGEMAKER_NAMESPACE, MetricName=metric, Dimensions=dims,
                                                StartTime=start, EndTime=end, Period=period, **kind)["Datapoints"]

    invocations = sum(p.get("Sum", 0.0) for p in stat(contract.INVOCATIONS, Statistics=["Sum"]))
    errors = sum(p.get("Sum", 0.0) for p in stat(contract.INVOCATION_5XX_ERRORS, Statistics=["Sum"]))
    latency = [p.get("ExtendedStatistics", {}) for p in stat(contract.MODEL_LATENCY, ExtendedStatistics=["p50", "p99"])]
    p50 = [x["p50"] for x in latency if "p50" in x]
    p99 = [x["p99"] for x in latency if "p99" in x]
    # ModelLatency is in microseconds; one period gives at most one datapoint.
    return shadow.VariantFigures(int(invocations), int(errors), p50[0] / 1000 if p50 else None, p99[0] / 1000 if p99 else None)


def shadow_readout(config: StackConfig, endpoint: str, *, client: Callable[[str], Any], since: datetime | None = None,
                   local_captures: Path | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The shadow analysis document of `endpoint` (its key) in `config`, over [since, now]."""
    if endpoint not in config.endpoints:
        raise ExperimentError(f"stack {config.stack_name} has no endpoint {endpoint!r}; endpoints: {', '.join(sorted(config.endpoints)) or 'none'}")
    spec = config.endpoints[endpoint]
    shadows, production = list(spec.shadow_variants()), list(spec.production_variants())
    if not shadows:
        raise ExperimentError(f"endpoint {endpoint} of {config.stack_name} has no shadow variant (traffic mode {spec.traffic.mode}); "
                              "a shadow analysis compares a shadow with its production variant")
    names = (production[0], shadows[0])
    namer = Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)
    end = now or datetime.now(UTC)
    start = since or end - DEFAULT_WINDOW
    source = str(local_captures / namer.endpoint(endpoint)) if local_captures else capture_root(namer, endpoint)
    lines = captures.local_lines(Path(source)) if local_captures else captures.s3_lines(client("s3"), source)
    read = captures.read(lines, since=start)
    cloudwatch = client("cloudwatch")
    figures = {name: variant_figures(cloudwatch, namer.endpoint(endpoint), name, start=start, end=end) for name in names}
    doc = shadow.analyze(read.variants.get(names[0], {}), read.variants.get(names[1], {}),
                         task=config.model_registry.models[spec.model].task, thresholds=spec.experiment.shadow,
                         figures=figures, names=names)
    return {**doc, "stack": config.stack_name, "endpoint": endpoint, "endpoint_name": namer.endpoint(endpoint),
            "window": {"from": start.isoformat(timespec="seconds"), "to": end.isoformat(timespec="seconds")},
            "captures": {"source": source, **read.to_json()}}


def write_reports(doc: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """shadow_analysis.json and shadow_analysis.html (an SVG histogram of the differences) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "shadow_analysis.json", out / "shadow_analysis.html"
    paths[0].write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(templates.render("experiment_shadow.html.j2", doc=doc, bars=_bars(doc)), encoding="utf-8")
    return paths


def _bars(doc: dict[str, Any]) -> list[dict[str, float]]:
    histogram = (doc.get("difference") or {}).get("histogram")
    if not histogram:
        return []
    top = max(histogram["counts"]) or 1.0
    return [{"x": 40 + i * 24, "height": 160 * c / top, "count": c, "low": histogram["edges"][i], "high": histogram["edges"][i + 1]}
            for i, c in enumerate(histogram["counts"])]
