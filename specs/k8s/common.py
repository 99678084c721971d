"""What every Kubernetes object family of specs.k8s shares: the manifest type, the DNS-label check and
the validation helpers with which a spec collects every problem before raising one ValueError.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it), nor another module of specs.k8s
(they all import this one).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Manifest = dict[str, Any]
"""One Kubernetes object as a plain dict (apiVersion, kind, metadata, spec)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(name: str, *, limit: int = 63) -> bool:
    """A DNS-1123 label (lowercase alphanumerics and '-', alphanumeric at both ends) of at most `limit` characters."""
    return 0 < len(name) <= limit and bool(_DNS_LABEL.match(name))


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, without a trailing '-' (a DNS label must end alphanumeric)."""
    return text[:limit].rstrip("-")


# --------------------------------------------------------------------------------------------
# Validation helpers (collect every problem, then raise one ValueError)

QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
"""A Kubernetes quantity as the specs accept it (e.g. "256Gi", "512Mi")."""
CPU_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\d+m)$")
"""A CPU quantity: cores ("4", "0.5") or millicores ("500m")."""
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def raise_problems(kind: str, problems: list[str]) -> None:
    """Raise one ValueError listing every problem found in a `kind` spec; nothing when there is none."""
    if problems:
        raise ValueError(f"invalid {kind}:\n  - " + "\n  - ".join(problems))


def check_labels(where: str, labels: Mapping[str, str], problems: list[str]) -> None:
    """Add a problem for each key or value of `labels` that Kubernetes would refuse."""
    for key, value in labels.items():
        if len(key.rsplit("/", 1)[-1]) > 63 or not _LABEL_KEY.match(key):
            problems.append(f"{where} key {key!r} is not a Kubernetes label key (optional DNS prefix '/', then a name of at most 63 characters)")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(f"{where}[{key!r}]={value!r}: a label value is at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends")


def check_namespace(namespace: str, problems: list[str]) -> None:
    """Add a problem when `namespace` is not a valid namespace name."""
    if not is_dns_label(namespace):
        problems.append(f"namespace={namespace!r}: a DNS label of at most 63 lowercase letters, digits and '-'")


def check_integer(spec: Any, name: str, problems: list[str], low: int, high: int | None = None) -> None:
    """Add a problem when `spec.<name>` is not an integer (bools refused) in [low, high]."""
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        problems.append(f"{name}={value!r}: an integer >= {low}" + (f" and <= {high}" if high is not None else ""))


def cpu_cores(quantity: str) -> float:
    """A CPU quantity (already checked against CPU_QUANTITY) in cores: "500m" -> 0.5."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
