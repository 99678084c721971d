"""The policy framework: what a rule is, what it sees, what it reports.

A resource rule looks at one resource (its type and camelCase props) and returns messages; a stack
rule sees every resource of a plan and returns (resource name, message) pairs. The same functions
run offline in `mlops plan` and inside `pulumi_policy` (policypack/__main__.py), so they take plain
dicts and never import Pulumi.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

MANDATORY = "mandatory"
ADVISORY = "advisory"
ENV_TAG = "mlops:environment"
"""The tag every taggable resource carries with its stack's environment (dev, staging, prod)."""


class ResourceLike(Protocol):
    """Anything with a type, a name and camelCase inputs: a planned resource or a `Res`."""

    type: str
    name: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Res:
    """A resource as the rules see it."""

    type: str
    name: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """One rule's complaint about one resource."""

    policy: str
    level: str
    resource: str
    message: str

    @property
    def mandatory(self) -> bool:
        """True when the finding blocks a deployment."""
        return self.level == MANDATORY

    def to_json(self) -> dict[str, str]:
        """The finding as `mlops plan --json` writes it."""
        return {"policy": self.policy, "level": self.level, "resource": self.resource, "message": self.message}


ResourceCheck = Callable[[str, dict[str, Any]], list[str]]
StackCheck = Callable[[list[ResourceLike]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    """A rule over one resource at a time: `check(type, props)` returns its violation messages."""

    name: str
    description: str
    level: str
    check: ResourceCheck


@dataclass(frozen=True)
class StackRule:
    """A rule over the whole plan: `check(resources)` returns (resource name, message) pairs."""

    name: str
    description: str
    level: str
    check: StackCheck


def environment(props: dict[str, Any]) -> str | None:
    """The environment a resource's tags say it belongs to, or None when untagged."""
    return (props.get("tags") or {}).get(ENV_TAG)


def of_type(resources: Iterable[ResourceLike], type_: str) -> list[ResourceLike]:
    """The resources of one Pulumi type, in plan order."""
    return [r for r in resources if r.type == type_]


def is_gpu_node_group(type_: str, props: dict[str, Any]) -> bool:
    """An EKS managed node group running an NVIDIA AMI."""
    return type_ == "aws:eks/nodeGroup:NodeGroup" and "NVIDIA" in str(props.get("amiType") or "")
