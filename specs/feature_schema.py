"""The feature schema a training job receives (docs/contracts.md section 1), from the stack config.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: computed without a Pulumi runtime; the layers above build on
specifications, never the reverse)."""
from __future__ import annotations

from typing import Any

from specs.config.schema import StackConfig

FORMAT_VERSION = 1


def feature_schema(config: StackConfig, model: str) -> dict[str, Any]:
    """`feature_schema.json` for `model`: its feature group's inputs, typed, with its label and task."""
    if model not in config.model_registry.models:
        raise ValueError(f"unknown model {model!r}; defined: {', '.join(config.model_registry.models) or 'none'}")
    spec = config.model_registry.models[model]
    group = config.feature_store.feature_groups[spec.feature_group]
    # Inputs only: the record id, event time and label are columns of the data, never model inputs.
    not_inputs = {group.record_identifier, group.event_time, spec.label}
    features = []
    for f in (f for f in group.features if f.name not in not_inputs):
        entry: dict[str, Any] = {"name": f.name, "type": f.type, "nullable": f.nullable}
        if f.min is not None:
            entry["min"] = f.min
        if f.max is not None:
            entry["max"] = f.max
        features.append(entry)
    return {
        "format_version": FORMAT_VERSION,
        "record_identifier": group.record_identifier,
        "event_time": group.event_time,
        "label": spec.label,
        "task": spec.task,
        "features": features,
    }
