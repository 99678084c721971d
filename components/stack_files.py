"""Reading a team's stack: base definition + per-environment overrides -> one validated StackConfig.

Layout (the Pulumi project sets `stackConfigDir: stacks`):

    stacks/teams/<team>.yaml          what the team runs in every environment (the base)
    stacks/Pulumi.<team>-<env>.yaml   the Pulumi stack file: AWS target plus `mlops:overrides`

The stack file is an ordinary Pulumi stack config:

    config:
      aws:region: eu-west-1
      aws:allowedAccountIds: ["333333333333"]   # the AWS provider refuses any other account
      mlops:team: fraud
      mlops:environment: prod
      mlops:overrides: {...}                    # JSON Merge Patch (RFC 7386) onto the base

Merge semantics are RFC 7386: objects merge key by key, `null` deletes a key, anything else
replaces. Collections that differ per environment (endpoints, variants, feature groups, models) are
maps keyed by name, so an override touches one entry without copying the rest.
"""
from __future__ import annotations

import copy
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from components import rules
from components.config import ENVIRONMENTS, StackConfig

PROJECT = "mlops"
"""The Pulumi project name, and so the namespace of our config keys (`mlops:team`)."""
ROOT = Path(__file__).resolve().parent.parent
STACKS_ENV = "MLOPS_STACKS_DIR"
"""Overrides where stacks live (default: `stacks/` beside Pulumi.yaml); `mlops --stacks-dir` sets it."""


def stacks_dir() -> Path:
    """The stacks directory in force: $MLOPS_STACKS_DIR, else the project's `stacks/`."""
    return Path(os.environ.get(STACKS_ENV) or ROOT / "stacks")


class ConfigError(Exception):
    """A stack config is invalid. `str()` is the full report: one line per problem."""

    def __init__(self, stack: str, problems: list[str]):
        self.stack = stack
        self.problems = problems
        super().__init__("\n".join([f"stack {stack}: {len(problems)} configuration error(s)", *(f"  - {p}" for p in problems)]))


@dataclass(frozen=True)
class StackSource:
    """Where one stack's config came from: the files and the raw documents."""

    name: str
    stack_file: Path
    base_file: Path
    pulumi_config: dict[str, Any]
    """The stack file's `config:` map, keys as Pulumi writes them (`mlops:team`)."""
    base: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    merged: dict[str, Any] = field(default_factory=dict)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: returns a new document; neither input is modified."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def stack_file(name: str, directory: Path | None = None) -> Path:
    return (directory or stacks_dir()) / f"Pulumi.{name}.yaml"


def list_stacks(directory: Path | None = None) -> list[str]:
    """Names of every stack with a `Pulumi.<name>.yaml` in the stacks directory, sorted."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (directory or stacks_dir()).glob("Pulumi.*.yaml"))


def _read_yaml(path: Path) -> Any:
    try:
        with path.open() as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(path.stem, [f"{_rel(path)}: file not found"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path.stem, [f"{_rel(path)}: not valid YAML: {exc}"]) from None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_pulumi_config(path: Path) -> dict[str, Any]:
    """The `config:` map of a Pulumi stack file. Secret values stay as `{"secure": ...}`."""
    doc = _read_yaml(path) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("config", {}), dict):
        raise ConfigError(path.stem, [f"{_rel(path)}: expected a mapping with a 'config:' mapping"])
    return doc.get("config") or {}


def source_from_pulumi_config(name: str, pulumi_config: Mapping[str, Any]) -> StackSource:
    """Read the team's base file for a stack whose Pulumi config map is `pulumi_config`."""
    directory = stacks_dir()
    path = stack_file(name, directory)
    problems = []
    team = pulumi_config.get(f"{PROJECT}:team")
    environment = pulumi_config.get(f"{PROJECT}:environment")
    for key, value in ((f"{PROJECT}:team", team), (f"{PROJECT}:environment", environment)):
        if not isinstance(value, str):
            problems.append(f"{_rel(path)}: config.{key}: required (a string); set it with `pulumi config set {key} ...`")
    if problems:
        raise ConfigError(name, problems)
    if environment not in ENVIRONMENTS:
        raise ConfigError(name, [f"{_rel(path)}: config.{PROJECT}:environment: {environment!r} is not allowed; allowed: {', '.join(ENVIRONMENTS)}"])
    if name != f"{team}-{environment}":
        raise ConfigError(name, [
            f"{_rel(path)}: stack name {name!r} must be '<team>-<environment>' = {team}-{environment!s} "
            f"(from config.{PROJECT}:team and config.{PROJECT}:environment)"
        ])
    base_file = directory / "teams" / f"{team}.yaml"
    base = _read_yaml(base_file) if base_file.exists() else None
    if not isinstance(base, dict):
        reason = "not found" if not base_file.exists() else "must be a mapping"
        raise ConfigError(name, [f"{_rel(base_file)}: the base definition of team {team!r} is {reason}"])
    overrides = pulumi_config.get(f"{PROJECT}:overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(name, [f"{_rel(path)}: config.{PROJECT}:overrides must be a mapping (a JSON Merge Patch onto {_rel(base_file)})"])
    merged = merge_patch(base, overrides)
    # The one other key allowed is the secret that notifications.https_endpoint_secret names.
    secret = ((merged.get("monitoring") or {}).get("notifications") or {}).get("https_endpoint_secret")
    allowed = {"team", "environment", "overrides", *([secret] if isinstance(secret, str) else [])}
    unknown = sorted(k for k in pulumi_config if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] not in allowed)
    if unknown:
        raise ConfigError(name, [
            f"{_rel(path)}: config.{k}: unknown key; allowed: {', '.join(f'{PROJECT}:{a}' for a in sorted(allowed))}" for k in unknown
        ])
    for key in ("team", "environment", "aws"):
        if key in merged:
            where = _rel(path) if key in overrides else _rel(base_file)
            raise ConfigError(name, [f"{where}: {key}: not allowed in the team definition; it comes from the stack file's config.{'aws:region / aws:allowedAccountIds' if key == 'aws' else PROJECT + ':' + key}"])
    merged = {"team": team, "environment": environment, "aws": _aws_target(name, path, pulumi_config), **merged}
    return StackSource(name=name, stack_file=path, base_file=base_file, pulumi_config=dict(pulumi_config), base=base, overrides=overrides, merged=merged)


def _aws_target(name: str, path: Path, pulumi_config: Mapping[str, Any]) -> dict[str, Any]:
    region = pulumi_config.get("aws:region")
    accounts = pulumi_config.get("aws:allowedAccountIds")
    problems = []
    if not isinstance(region, str):
        problems.append(f"{_rel(path)}: config.aws:region: required, e.g. eu-west-1")
    if isinstance(accounts, str):
        try:
            accounts = json.loads(accounts)
        except ValueError:
            accounts = None
    if not (isinstance(accounts, list) and len(accounts) == 1):
        problems.append(
            f"{_rel(path)}: config.aws:allowedAccountIds: required, a list of exactly one 12-digit account id "
            f"(the AWS provider then refuses to deploy into any other account); got {accounts!r}"
        )
    if problems:
        raise ConfigError(name, problems)
    return {"region": region, "account_id": str(accounts[0])}


def load_source(name: str) -> StackSource:
    """Read stack `name` from its files."""
    path = stack_file(name)
    if not path.exists():
        known = ", ".join(list_stacks()) or "none"
        raise ConfigError(name, [f"{_rel(path)}: no such stack; stacks in {_rel(stacks_dir())}: {known}"])
    return source_from_pulumi_config(name, read_pulumi_config(path))


def validate(source: StackSource) -> StackConfig:
    """The validated StackConfig of `source`, or a ConfigError listing every problem."""
    try:
        config = StackConfig.model_validate(source.merged)
    except ValidationError as exc:
        raise ConfigError(source.name, [_format_pydantic(source, err) for err in exc.errors()]) from None
    problems = rules.check(config)
    if problems:
        raise ConfigError(source.name, [_format_problem(source, p.path, p.message, p.value) for p in problems])
    return config


def load(name: str) -> StackConfig:
    """Read and validate stack `name`."""
    return validate(load_source(name))


# --------------------------------------------------------------------------------------------
# Error reports

_TAGS = {"traffic": {"single", "ab", "shadow"}, "rollout": {"all_at_once", "canary", "linear", "none"}}


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic inserts into locations (`traffic.ab.variants`)."""
    out: list[Any] = []
    for part in loc:
        if out and out[-1] in _TAGS and part in _TAGS[out[-1]]:
            continue
        if isinstance(part, str) and (part.startswith("function-") or part == "[key]"):
            continue
        out.append(part)
    return tuple(out)


def _get(doc: Any, path: tuple[Any, ...]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(doc, Mapping) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and isinstance(part, int) and 0 <= part < len(doc):
            doc = doc[part]
        else:
            return False, None
    return True, doc


def _origin(source: StackSource, path: tuple[Any, ...]) -> str:
    """The file a value at `path` came from (the stack file if an override set it)."""
    if path and path[0] in ("team", "environment", "aws"):
        return _rel(source.stack_file)
    if _get(source.overrides, path)[0]:
        return _rel(source.stack_file)
    if _get(source.base, path)[0]:
        return _rel(source.base_file)
    # Missing values: name the deepest file that has the parent.
    for depth in range(len(path) - 1, 0, -1):
        if _get(source.overrides, path[:depth])[0]:
            return _rel(source.stack_file)
        if _get(source.base, path[:depth])[0]:
            return _rel(source.base_file)
    return f"{_rel(source.base_file)} + {_rel(source.stack_file)}"


def _allowed_keys(data: Any, path: tuple[Any, ...]) -> list[str]:
    """Field names a model accepts at `path` (the parent of an unknown key)."""
    cls: Any = StackConfig
    doc = data
    for part in path:
        cls = _unwrap(cls, doc)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            info = cls.model_fields.get(part)
            if info is None:
                return []
            cls = info.annotation
        elif typing.get_origin(cls) is dict:
            cls = typing.get_args(cls)[1]
        else:
            return []
        doc = doc.get(part) if isinstance(doc, Mapping) else None
    cls = _unwrap(cls, doc)
    return list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []


def _unwrap(tp: Any, doc: Any) -> Any:
    """Strip Annotated/Optional; pick the union member whose discriminator matches `doc`."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            chosen = members[0] if len(members) == 1 else None
            for member in members:
                if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(doc, Mapping):
                    for fname in ("mode", "strategy"):
                        field_info = member.model_fields.get(fname)
                        if field_info is not None and doc.get(fname) in typing.get_args(field_info.annotation):
                            chosen = member
            if chosen is None:
                return tp
            tp = chosen
            continue
        return tp


def _format_pydantic(source: StackSource, err: Any) -> str:
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(source.merged, loc[:-1])
        message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        value = None
    elif kind == "missing":
        allowed = None
        message = "required field is missing"
        value = None
    elif kind == "string_pattern_mismatch":
        message = f"does not match the pattern {err['ctx']['pattern']}"
    elif isinstance(value, Mapping) or isinstance(value, list):
        value = None  # the message describes the structure; echoing it back adds noise
    return _format_problem(source, loc, message, value)


def _format_problem(source: StackSource, path: tuple[Any, ...], message: str, value: Any) -> str:
    dotted = ".".join(str(p) for p in path) or "(top level)"
    shown = f" (got {value!r})" if value is not None and repr(value) not in message else ""
    return f"{_origin(source, path)}: {dotted}: {message}{shown}"
