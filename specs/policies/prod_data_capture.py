"""prod-data-capture: prod endpoints capture requests and responses.

Drift detection, live-quality metrics and retraining all read the captured traffic; a prod endpoint
without capture leaves its model unmonitored.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from typing import Any

from specs.policies.core import MANDATORY, ResourceRule, environment


def check(type_: str, props: dict[str, Any]) -> list[str]:
    """A prod endpoint configuration enables data capture."""
    if type_ != "aws:sagemaker/endpointConfiguration:EndpointConfiguration" or environment(props) != "prod":
        return []
    if not (props.get("dataCaptureConfig") or {}).get("enableCapture"):
        return ["prod endpoint does not capture requests and responses (dataCaptureConfig.enableCapture)"]
    return []


RULE = ResourceRule("prod-data-capture", "Prod endpoints capture requests and responses", MANDATORY, check)
