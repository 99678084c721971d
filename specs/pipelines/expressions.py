"""SageMaker Pipelines' expression language, evaluated the way the service does when a run reaches a
step: `{"Get": "Execution.<var>" | "Parameters.<name>" | "Steps.<step>.<property path>"}`,
`{"Std:Join": {"On": sep, "Values": [...]}}` and `{"Std:JsonGet": {"PropertyFile": {"Get":
"Steps.<step>.PropertyFiles.<name>"}, "Path": "a.b[0]"}}`, plus the conditions of a Condition step.

Property paths follow the describe API of the step's job (`ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri`,
`ModelArtifacts.S3ModelArtifacts`, `TrainingJobArn`): a step's properties are given as that describe
response, with a processing job's outputs also keyed by name, as the service's property references do.
Tests resolve a generated definition with sample values to validate each step's request against
botocore's model; the local environment's pipeline executor resolves it for real.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[\s*(\d+)\s*\]")


class ExpressionError(ValueError):
    """An expression the context cannot resolve; the message names it."""


@dataclass
class Context:
    """What a run knows when it evaluates an expression."""

    execution: dict[str, str] = field(default_factory=dict)
    """Execution variables by name: PipelineExecutionId, PipelineExecutionArn, StartDateTime, PipelineName, ..."""
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, Any] = field(default_factory=dict)
    """Each finished step's properties (its job's describe response)."""
    property_files: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(step, property file name) -> the parsed JSON document."""


def walk(document: Any, path: str, *, what: str) -> Any:
    """Follow `a.b['c'][0]` through dicts and lists."""
    position, value = 0, document
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if not match:
            raise ExpressionError(f"{what}: cannot read path {path!r} at {path[position:]!r}")
        name, quoted, double, index = match.groups()
        key: Any = name or (quoted if quoted is not None else double)
        if index is not None:
            key = int(index)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise ExpressionError(f"{what}: {path!r} has no {key!r}") from None
        position = match.end()
    return value


def _get(reference: str, context: Context) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "Execution":
        if rest not in context.execution:
            raise ExpressionError(f"execution variable {rest!r} unknown; known: {', '.join(sorted(context.execution))}")
        return context.execution[rest]
    if kind == "Parameters":
        if rest not in context.parameters:
            raise ExpressionError(f"pipeline parameter {rest!r} unknown; known: {', '.join(sorted(context.parameters))}")
        return context.parameters[rest]
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in context.steps:
            raise ExpressionError(f"{reference}: step {step!r} has not run (finished: {', '.join(context.steps) or 'none'})")
        return walk(context.steps[step], path, what=reference)
    raise ExpressionError(f"{reference}: unknown reference kind {kind!r}; allowed: Execution, Parameters, Steps")


def _json_get(spec: Mapping[str, Any], context: Context) -> Any:
    reference = spec["PropertyFile"]["Get"] if isinstance(spec.get("PropertyFile"), dict) else None
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference or "")
    if not match:
        raise ExpressionError(f"Std:JsonGet: property file reference {spec.get('PropertyFile')!r} is not Steps.<step>.PropertyFiles.<name>")
    key = (match.group(1), match.group(2))
    if key not in context.property_files:
        raise ExpressionError(f"Std:JsonGet: property file {key[1]!r} of step {key[0]!r} was not read")
    return walk(context.property_files[key], spec["Path"], what=f"Std:JsonGet {key[1]}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def evaluate(value: Any, context: Context) -> Any:
    """`value` with every expression in it replaced by what it evaluates to."""
    if isinstance(value, list):
        return [evaluate(v, context) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"} and isinstance(value["Get"], str):
        return _get(value["Get"], context)
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(_text(evaluate(v, context)) for v in join["Values"])
    if set(value) == {"Std:JsonGet"}:
        return _json_get(value["Std:JsonGet"], context)
    return {k: evaluate(v, context) for k, v in value.items()}


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def condition_holds(condition: Mapping[str, Any], context: Context) -> bool:
    """One condition of a Condition step (Equals, GreaterThan..., In, Not, Or)."""
    kind = condition["Type"]
    if kind in _COMPARISONS:
        return _COMPARISONS[kind](evaluate(condition["LeftValue"], context), evaluate(condition["RightValue"], context))
    if kind == "In":
        return evaluate(condition["QueryValue"], context) in [evaluate(v, context) for v in condition["Values"]]
    if kind == "Not":
        return not condition_holds(condition["Expression"], context)
    if kind == "Or":
        return any(condition_holds(c, context) for c in condition["Conditions"])
    raise ExpressionError(f"condition type {kind!r} is not supported; supported: {', '.join([*_COMPARISONS, 'In', 'Not', 'Or'])}")


def references(value: Any) -> set[str]:
    """The steps an expression reads (its data dependencies)."""
    found: set[str] = set()
    if isinstance(value, list):
        for v in value:
            found |= references(v)
    elif isinstance(value, dict):
        get = value.get("Get")
        if set(value) == {"Get"} and isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".")[1])
        else:
            for v in value.values():
                found |= references(v)
    return found
