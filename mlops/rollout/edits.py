"""The stack-file edits of a rollout: the endpoint's traffic block under `mlops:overrides`.

A round trip with ruamel (mlops.promote.pins), so comments, key order and quoting elsewhere in the file
stay as they were and each step is a reviewable diff. Overrides are a JSON merge patch over the team's
base file (specs.config.stack_files), so a block that must replace what the base declares names every
key it drops with null (`replace_patch`).

Must not import: boto3, botocore or pulumi, nor the package's flow or backends modules, nor
`mlops_training`, `mlops_serving` or `torch` (text and plain data in, text out).
"""
from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from typing import Any

from specs.config import stack_files
from specs.config.schema import EndpointConfig
from mlops.promote.pins import round_trip_yaml
from mlops.rollout.state import CANDIDATE_VARIANT, Version

OVERRIDES = f"{stack_files.PROJECT}:overrides"


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists and scalars."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def traffic_override(text: str, endpoint: str) -> Any:
    """`mlops:overrides.endpoints.<endpoint>.traffic` of the stack file `text`, as plain data (None: absent)."""
    doc = round_trip_yaml().load(text)
    node: Any = (doc or {}).get("config") or {}
    for key in (OVERRIDES, "endpoints", endpoint, "traffic"):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return _plain(node)


def with_traffic_override(text: str, endpoint: str, value: Any) -> str:
    """The stack file `text` with `mlops:overrides.endpoints.<endpoint>.traffic` set to `value`, or
    removed (with parents left empty by that) when `value` is None."""
    from ruamel.yaml.comments import CommentedMap

    y = round_trip_yaml()
    doc = y.load(text)
    config = doc["config"]
    if value is None:
        overrides = config.get(OVERRIDES)
        endpoints = overrides.get("endpoints") if isinstance(overrides, Mapping) else None
        entry = endpoints.get(endpoint) if isinstance(endpoints, Mapping) else None
        if isinstance(entry, Mapping) and "traffic" in entry:
            del entry["traffic"]
            if not entry:
                del endpoints[endpoint]
            if not endpoints:
                del overrides["endpoints"]
            if not overrides:
                del config[OVERRIDES]
    else:
        node = config
        for key in (OVERRIDES, "endpoints", endpoint):
            if not isinstance(node.get(key), Mapping):
                node[key] = CommentedMap()
            node = node[key]
        node["traffic"] = copy.deepcopy(value)
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def replace_patch(base: Any, desired: Any) -> Any:
    """A merge patch that turns `base` into exactly `desired`: every key `base` has and `desired` lacks
    is named with null, at every depth."""
    if not isinstance(base, Mapping) or not isinstance(desired, Mapping):
        return copy.deepcopy(desired)
    patch = {key: None for key in base if key not in desired}
    patch.update({key: replace_patch(base.get(key), value) for key, value in desired.items()})
    return patch


def _variant_fields(endpoint: EndpointConfig, name: str) -> dict[str, Any]:
    fields = endpoint.all_variants()[name].model_dump(mode="json", exclude_unset=True)
    fields.pop("weight", None)
    return fields


def shadow_traffic(endpoint: EndpointConfig, candidate: Version) -> dict[str, Any]:
    """The endpoint's traffic during the shadow phase: its champion alone answers, `candidate` (on the
    champion's instance type and count) gets a copy of every request."""
    champion, _ = endpoint.champion()
    shadow = {**_variant_fields(endpoint, champion), "model_version": candidate.version, "model_data_url": candidate.model_data_url}
    return {"mode": "shadow", "production": {champion: _variant_fields(endpoint, champion)}, "shadow": {CANDIDATE_VARIANT: shadow},
            "shadow_sampling_percent": 100}


def traffic_as_declared(endpoint: EndpointConfig) -> dict[str, Any]:
    """The endpoint's traffic block as validated (what a replace patch is computed against)."""
    return endpoint.traffic.model_dump(mode="json", exclude_unset=True)
