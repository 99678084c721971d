"""The expressions of a pipeline definition (schema 2020-12-01) and their resolution, as SageMaker
Pipelines resolves them when a run reaches a step:

- `{"Get": "Execution.<Variable>"}`: an execution variable (PipelineExecutionId, PipelineExecutionArn,
  PipelineName, StartDateTime, ...);
- `{"Get": "Parameters.<Name>"}`: a pipeline parameter (the value the run was started with, else its default);
- `{"Get": "Steps.<Step>.<property path>"}`: a property of an earlier step's Describe* response, e.g.
  `Steps.Train.ModelArtifacts.S3ModelArtifacts` or `Steps.Dataset.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri`
  (a quoted index selects the list member whose name field equals it);
- `{"Std:Join": {"On": sep, "Values": [...]}}`: the values, resolved, joined;
- `{"Std:JsonGet": {"PropertyFile": {"Get": "Steps.<Step>.PropertyFiles.<File>"}, "Path": "a.b"}}`: a field of
  a processing step's property file (JSON).

Used by the local executor (mlops.local.pipeline_exec) and by the tests, which resolve each step's
request with sample values and validate it against botocore's model.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")


class ExpressionError(ValueError):
    """An expression that names nothing the run knows (a step not run yet, an unknown variable or path)."""


@dataclass
class Context:
    """What a run knows when it resolves a step's arguments."""

    execution: dict[str, str]
    """Execution variables by name (without the `Execution.` prefix)."""
    parameters: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Properties (the Describe* response) of each step that has run."""
    property_files: dict[tuple[str, str], Any] = field(default_factory=dict)
    """(step, property file name) -> the file's parsed JSON."""


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, single, double, index = match.groups()
        out.append(int(index) if index is not None else (name if name is not None else (single if single is not None else double)))
        position = match.end()
    return out


def _select(value: Any, token: str | int, *, where: str) -> Any:
    if isinstance(token, int):
        if isinstance(value, list) and -len(value) <= token < len(value):
            return value[token]
    elif isinstance(value, dict) and token in value:
        return value[token]
    elif isinstance(value, list):
        # Outputs['dataset']: the member whose *Name field is the key (OutputName, ChannelName, ...).
        for member in value:
            if isinstance(member, dict) and any(k.endswith("Name") and v == token for k, v in member.items()):
                return member
    raise ExpressionError(f"{where}: no {token!r} there")


def walk(value: Any, path: str, *, where: str) -> Any:
    """Follow a property path (`A.B['x'][0].C`) from `value`."""
    for token in _tokens(path):
        value = _select(value, token, where=where)
    return value


def _get(reference: str, context: Context) -> Any:
    kind, _, rest = reference.partition(".")
    if kind == "Execution":
        if rest not in context.execution:
            raise ExpressionError(f"{reference}: unknown execution variable; known: {sorted(context.execution)}")
        return context.execution[rest]
    if kind == "Parameters":
        if rest not in context.parameters:
            raise ExpressionError(f"{reference}: the pipeline declares no such parameter; declared: {sorted(context.parameters)}")
        return context.parameters[rest]
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in context.steps:
            raise ExpressionError(f"{reference}: step {step!r} has not run (ran: {sorted(context.steps)})")
        return walk(context.steps[step], path, where=reference)
    raise ExpressionError(f"{reference}: a Get reads Execution.*, Parameters.* or Steps.*")


def _json_get(spec: dict[str, Any], context: Context) -> Any:
    reference = spec["PropertyFile"]["Get"]
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", reference)
    if match is None:
        raise ExpressionError(f"Std:JsonGet reads Steps.<step>.PropertyFiles.<name>, not {reference!r}")
    key = (match.group(1), match.group(2))
    if key not in context.property_files:
        raise ExpressionError(f"{reference}: no such property file has been read (read: {sorted(context.property_files)})")
    return walk(context.property_files[key], spec["Path"], where=f"{reference} {spec['Path']}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(value: Any, context: Context) -> Any:
    """`value` with every expression replaced by what it evaluates to."""
    if isinstance(value, dict):
        if set(value) == {"Get"} and isinstance(value["Get"], str):
            return _get(value["Get"], context)
        if set(value) == {"Std:Join"}:
            spec = value["Std:Join"]
            return spec["On"].join(_text(resolve(v, context)) for v in spec["Values"])
        if set(value) == {"Std:JsonGet"}:
            return _json_get(value["Std:JsonGet"], context)
        return {k: resolve(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, context) for v in value]
    return value


def step_references(value: Any) -> set[str]:
    """Names of the steps an expression tree reads (its data dependencies)."""
    found: set[str] = set()
    if isinstance(value, dict):
        reference = value.get("Get")
        if isinstance(reference, str) and reference.startswith("Steps."):
            found.add(reference.split(".")[1])
        for item in value.values():
            found |= step_references(item)
    elif isinstance(value, list):
        for item in value:
            found |= step_references(item)
    return found
