"""Every component refuses bad input the same way: it collects all its problems first and raises them
together, before anything registers (STYLE.md: validate every input first, then super().__init__).

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import re

import pulumi

Problem = tuple[str, str]
"""(property path, reason): what is wrong with which input, with the value and what is allowed."""

ACCOUNT_ID = re.compile(r"\d{12}")


def raise_input_problems(component: str, problems: list[Problem]) -> None:
    """Raise one `pulumi.InputPropertiesError` listing every problem; return quietly when there are none.

    The message repeats the details so that a plain traceback (no Pulumi engine formatting them) still
    says what was wrong."""
    if not problems:
        return
    summary = "; ".join(f"{path}: {reason}" for path, reason in problems)
    raise pulumi.InputPropertiesError(f"invalid {component} arguments: {summary}", [
        pulumi.InputPropertyErrorDetails(property_path=path, reason=reason) for path, reason in problems
    ])


def required_name(path: str, value: str) -> list[Problem]:
    """A name that other names derive from must not be empty (or only spaces)."""
    return [] if value.strip() else [(path, f"must not be empty, got {value!r}")]
