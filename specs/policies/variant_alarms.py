"""variant-alarms (stack rule): every production variant of every endpoint has latency and 5XX alarms.

These are the alarms the deployment guardrails roll back on and the on-call hears from; a variant
without them can fail silently. Shadow variants answer no caller and need none. The rule joins
alarms (by their EndpointName and VariantName dimensions) to endpoints and their configurations.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from specs.policies.core import MANDATORY, ResourceLike, StackRule, of_type

REQUIRED_METRICS = ("ModelLatency", "Invocation5XXErrors")


def _watched(resources: list[ResourceLike]) -> dict[tuple[str, str], set[str]]:
    """(endpoint name, variant name) -> the metrics some alarm watches on it."""
    watched: dict[tuple[str, str], set[str]] = {}
    for alarm in of_type(resources, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        dims = alarm.inputs.get("dimensions") or {}
        metric = alarm.inputs.get("metricName")
        if metric and "EndpointName" in dims and "VariantName" in dims:
            watched.setdefault((dims["EndpointName"], dims["VariantName"]), set()).add(metric)
    return watched


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    """Endpoints with a production variant that misses an alarm on one of REQUIRED_METRICS."""
    watched = _watched(resources)
    configs = {c.inputs.get("name"): c for c in of_type(resources, "aws:sagemaker/endpointConfiguration:EndpointConfiguration")}
    findings = []
    for endpoint in of_type(resources, "aws:sagemaker/endpoint:Endpoint"):
        config = configs.get(endpoint.inputs.get("endpointConfigName"))
        if config is None:
            continue
        for variant in config.inputs.get("productionVariants") or []:
            have = watched.get((endpoint.inputs.get("name"), variant.get("variantName")), set())
            missing = [m for m in REQUIRED_METRICS if m not in have]
            if missing:
                findings.append((endpoint.name, f"production variant {variant.get('variantName')} has no alarm on {', '.join(missing)}"))
    return findings


RULE = StackRule("variant-alarms", "Every production variant has latency and 5XX alarms", MANDATORY, check)
