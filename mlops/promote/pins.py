"""Pins in a stack file: which variants a promotion pins, what they pin now, and the pinning edit.

The edit is a ruamel round trip under `mlops:overrides` that keeps comments, key order and quoting, so
the change is a reviewable diff.

Must not import: boto3, botocore or pulumi, nor the package's aws, files, audit, policy or flow modules: it
works on text and validated configs only, and the caller writes the text, atomically, under its lock
(tests/promotion/test_promote_layout.py checks it); nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations

import difflib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specs.config import stack_files
from specs.config.schema import ShadowTraffic, StackConfig
from mlops.promote.errors import PromotionError, PromotionUsageError


@dataclass(frozen=True)
class PinTarget:
    """A variant the promotion pins: `endpoints.<endpoint>.traffic.<section>.<variant>`."""

    endpoint: str
    section: str
    """`variants` (single, ab), `production` or `shadow` (shadow mode)."""
    variant: str

    @property
    def ref(self) -> str:
        return f"{self.endpoint}/{self.variant}"

    @property
    def path(self) -> tuple[str, ...]:
        return ("endpoints", self.endpoint, "traffic", self.section, self.variant)


@dataclass(frozen=True)
class Pin:
    """What a variant serves: a version of the environment's model package group and its artifact."""

    version: int
    model_data_url: str
    package_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "model_data_url": self.model_data_url, "package_arn": self.package_arn}



def pin_targets(config: StackConfig, model: str, variant: str | None) -> list[PinTarget]:
    """The variants that serve `model`: each endpoint's first production variant, or `variant`."""
    endpoints = {name: ep for name, ep in config.endpoints.items() if ep.model == model}
    if not endpoints:
        raise PromotionError(
            f"no endpoint in stack {config.stack_name} serves model {model!r}; "
            f"endpoints: {', '.join(f'{n} (model {e.model})' for n, e in config.endpoints.items()) or 'none'}"
        )
    targets = []
    for name, endpoint in endpoints.items():
        shadow = isinstance(endpoint.traffic, ShadowTraffic)
        production = list(endpoint.production_variants())
        if variant is None:
            targets.append(PinTarget(name, "production" if shadow else "variants", production[0]))
        elif variant in production:
            targets.append(PinTarget(name, "production" if shadow else "variants", variant))
        elif variant in endpoint.shadow_variants():
            targets.append(PinTarget(name, "shadow", variant))
    if not targets:
        known = sorted({v for e in endpoints.values() for v in e.all_variants()})
        raise PromotionUsageError(f"no endpoint serving {model!r} in {config.stack_name} has a variant {variant!r}; variants: {', '.join(known)}")
    return targets


def current_pin(config: StackConfig, target: PinTarget) -> Pin:
    """What `target` serves in the validated stack `config` (no package ARN: the file does not hold one)."""
    v = config.endpoints[target.endpoint].all_variants()[target.variant]
    return Pin(version=v.model_version, model_data_url=v.model_data_url)


def round_trip_yaml() -> Any:
    """ruamel.yaml set up to edit a stack file keeping its comments, quotes and key order (promotion and rollout)."""
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line: the diff must show only what changed
    y.indent(mapping=2, sequence=4, offset=2)
    # Merge patches use null to delete a key; ruamel would write an empty value, which reads the same
    # but hides the intent from a reviewer.
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def pin_text(text: str, targets: list[PinTarget], *, pin: Pin) -> str:
    """The stack file `text` with `pin` written under `mlops:overrides` for each target.

    A round-trip edit: comments, key order, quoting and flow style stay as they were, and
    `model_version` goes before `model_data_url` when it is new.
    """
    from ruamel.yaml.comments import CommentedMap

    y = round_trip_yaml()
    doc = y.load(text)
    assert isinstance(doc, Mapping) and isinstance(doc.get("config"), Mapping), "the stack file validated before pinning"
    config = doc["config"]
    if not isinstance(config.get(f"{stack_files.PROJECT}:overrides"), Mapping):
        config[f"{stack_files.PROJECT}:overrides"] = CommentedMap()
    for target in targets:
        node = config[f"{stack_files.PROJECT}:overrides"]
        for key in target.path:
            child = node.get(key)
            if child is None:
                child = CommentedMap()
                node[key] = child
            assert isinstance(child, Mapping), f"{key} is a mapping in a stack file that validated"
            node = child
        if "model_version" not in node and "model_data_url" in node:
            node.insert(list(node).index("model_data_url"), "model_version", pin.version)
        else:
            node["model_version"] = pin.version
        node["model_data_url"] = pin.model_data_url
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def unified_diff(before: str, after: str, *, path: str) -> str:
    """The change from `before` to `after` as a `git diff`-style patch of `path`."""
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), fromfile=f"a/{path}", tofile=f"b/{path}"))

