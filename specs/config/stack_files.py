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

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: only the program entry point reads `pulumi.Config`; this package
validates what it read).
"""
from __future__ import annotations

import copy
import difflib
import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from specs.config import rules
from specs.config.schema import ENVIRONMENTS, SLUG_ALLOWED, SLUG_PATTERN, StackConfig

PROJECT = "mlops"
"""The Pulumi project name, and so the namespace of our config keys (`mlops:team`)."""
ROOT = Path(__file__).resolve().parents[2]
STACKS_ENV = "MLOPS_STACKS_DIR"
"""Overrides where stacks live (default: `stacks/` beside Pulumi.yaml); `mlops --stacks-dir` sets it."""
PULUMI_STACK_KEYS: tuple[str, ...] = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")
"""The top-level keys of a Pulumi stack settings file (Pulumi's stack-file schema); Pulumi owns all but `config`."""
OWN_KEYS: tuple[str, ...] = ("team", "environment", "overrides")
"""Our config keys (`mlops:<key>`), besides the secret that monitoring.notifications.https_endpoint_secret names."""
MAX_DEPTH = 32
"""Deepest nesting a stack or team file may have (the deepest real value sits about 10 levels down)."""
MAX_VALUES = 100_000
"""Most values one file may hold, YAML aliases expanded (a guard against alias bombs)."""


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


def _read_yaml(path: Path, *, stack: str | None = None) -> Any:
    """The YAML document at `path`, checked for shape (`check_document`) before anyone walks it."""
    stack = stack or _stack_name(path)
    try:
        text = path.read_text(encoding="utf-8")
        if _flow_depth(text) > MAX_DEPTH:
            # Checked on the text: PyYAML's scanner takes quadratic time on thousands of open brackets.
            raise ConfigError(stack, [f"{_rel(path)}: brackets nested more than {MAX_DEPTH} levels deep; stack files nest at most {MAX_DEPTH} levels"])
        doc = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(stack, [f"{_rel(path)}: file not found"]) from None
    except OSError as exc:
        raise ConfigError(stack, [f"{_rel(path)}: cannot be read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(stack, [f"{_rel(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(stack, [f"{_rel(path)}: not valid YAML: {exc}"]) from None
    except RecursionError:
        # PyYAML composes nested nodes recursively; a document this deep is never a stack config.
        raise ConfigError(stack, [f"{_rel(path)}: nested too deeply to read; stack files nest at most {MAX_DEPTH} levels"]) from None
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise plain ValueErrors, e.g. for a timestamp like 2024-13-45.
        raise ConfigError(stack, [f"{_rel(path)}: not valid YAML: a value cannot be read: {exc}"]) from None
    problems = check_document(doc, where=_rel(path))
    if problems:
        raise ConfigError(stack, problems)
    return doc


_QUOTED_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\n]|\'\')*\'|(?:^|(?<=\s))#[^\n]*', re.MULTILINE)


def _flow_depth(text: str) -> int:
    """The deepest nesting of YAML flow brackets ([ ] { }) outside quoted strings and comments."""
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", _QUOTED_OR_COMMENT.sub("", text)):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def check_document(doc: Any, *, where: str, prefix: tuple[Any, ...] = ()) -> list[str]:
    """Shape problems of a parsed YAML document that no later step could report cleanly: keys that are
    not strings (YAML reads `1:`, `yes:`, `on:`, `~:` as numbers, booleans and null), nesting deeper
    than MAX_DEPTH (also what recursive YAML aliases look like) and more than MAX_VALUES values once
    aliases are expanded. Iterative, so a hostile document cannot exhaust Python's stack here."""
    problems: list[str] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, prefix)]
    seen = 0
    while stack:
        node, path = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            return [*problems, f"{where}: more than {MAX_VALUES} values (YAML aliases included); a stack config is far smaller"]
        if not isinstance(node, (Mapping, list)):
            continue
        if len(path) - len(prefix) >= MAX_DEPTH:
            return [*problems, f"{where}: {_dotted(path)}: nested more than {MAX_DEPTH} levels deep; "
                               f"stack configs nest at most {MAX_DEPTH} levels (a recursive YAML alias never ends)"]
        if isinstance(node, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(node))))
            continue
        for key, value in reversed(list(node.items())):
            if not isinstance(key, str):
                problems.append(_key_problem(where, path, key))
            else:
                stack.append((value, (*path, key)))
    return problems


def _key_problem(where: str, path: tuple[Any, ...], key: Any) -> str:
    kind = "null" if key is None else type(key).__name__
    return (
        f"{where}: {_dotted((*path, key))}: the key {_short(key)} is a YAML {kind}, not a string; keys must be strings "
        f"(YAML reads unquoted numbers, dates, yes/no/on/off/true/false and ~/null as other types): quote it"
    )


def _dotted(path: tuple[Any, ...]) -> str:
    """`a.b.0.c`, each part cut short (a key can be a 100,000-character string)."""
    return ".".join(_cut(str(p), 80) for p in path) or "(top level)"


def _short(value: Any, limit: int = 120) -> str:
    """repr() of a value, cut to `limit` characters so that a huge value cannot swamp the report."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _stack_name(path: Path) -> str:
    """`fraud-dev` for stacks/Pulumi.fraud-dev.yaml; the file's stem for any other file."""
    name = path.name
    return name[len("Pulumi."):-len(".yaml")] if name.startswith("Pulumi.") and name.endswith(".yaml") else path.stem


def _cut(text: str, limit: int = 120) -> str:
    """`text` as is, or its first `limit` characters and its length."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_pulumi_config(path: Path) -> dict[str, Any]:
    """The `config:` map of a Pulumi stack file. Secret values stay as `{"secure": ...}`.

    Keys are read as Pulumi reads them (`parse_config_key`): the legacy `<namespace>:config:<name>`
    becomes `<namespace>:<name>`; a key Pulumi cannot parse is kept as written, for
    `source_from_pulumi_config` to refuse by name."""
    where = _rel(path)
    doc = _read_yaml(path)
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigError(_stack_name(path), [f"{where}: expected a mapping with a 'config:' mapping; got a {_kind(doc)}"])
    problems = [
        f"{where}: {key}: unknown key{_did_you_mean(key, PULUMI_STACK_KEYS)}; allowed at the top of a Pulumi stack file: "
        f"{', '.join(PULUMI_STACK_KEYS)}"
        for key in doc if key not in PULUMI_STACK_KEYS
    ]
    config = doc.get("config")
    if config is not None and not isinstance(config, Mapping):
        problems.append(f"{where}: config: must be a mapping of config keys to values; got a {_kind(config)}")
    if problems:
        raise ConfigError(_stack_name(path), problems)
    result: dict[str, Any] = {}
    for key, value in (config or {}).items():
        parsed = parse_config_key(key)
        canonical = f"{parsed[0]}:{parsed[1]}" if parsed else key
        if canonical in result:
            raise ConfigError(_stack_name(path), [f"{where}: config.{key}: the same key as config.{canonical} (Pulumi reads both as {canonical})"])
        result[canonical] = value
    return result


def parse_config_key(key: str) -> tuple[str, str] | None:
    """(namespace, name) as Pulumi's config.ParseKey reads a stack file's key, or None where Pulumi refuses
    it: `<namespace>:<name>`, or the legacy `<namespace>:config:<name>`. A key with no namespace is
    refused there (only `pulumi config set` prefixes the project name, when it writes the file)."""
    parts = key.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] == "config" and all(parts):
        return parts[0], parts[2]
    return None


def _kind(value: Any) -> str:
    """How YAML would describe a value's type, for messages."""
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else f"{type(value).__name__} ({_short(value, 60)})"


def _did_you_mean(value: str, allowed: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _config_key_problems(where: str, pulumi_config: Mapping[Any, Any], allowed: tuple[str, ...]) -> list[str]:
    """Config keys Pulumi would refuse, and `mlops:` keys we do not read (a typo would be dropped silently)."""
    problems = []
    ours = [f"{PROJECT}:{name}" for name in allowed]
    for key in pulumi_config:
        if not isinstance(key, str):
            problems.append(_key_problem(where, ("config",), key))
            continue
        parsed = parse_config_key(key)
        if parsed is None:
            guess = f"{PROJECT}:{key}" if ":" not in key else key
            hint = _did_you_mean(guess, ours) or _did_you_mean(key, ours) or f"; our keys: {', '.join(ours)}"
            problems.append(
                f"{where}: config.{_cut(key)}: not a Pulumi config key (Pulumi reads stack-file keys as "
                f"'<namespace>:<name>' and refuses this file){hint}"
            )
        elif parsed[0] == PROJECT and parsed[1] not in allowed:
            problems.append(f"{where}: config.{key}: unknown key{_did_you_mean(key, ours)}; allowed: {', '.join(ours)}")
        elif parsed[0] != PROJECT and parsed[1] in OWN_KEYS and _did_you_mean(parsed[0], [PROJECT]):
            # `mlop:overrides` belongs to no provider: it is our key, misspelt, and would be ignored.
            problems.append(f"{where}: config.{key}: namespace {parsed[0]!r} is not read by anything here; did you mean '{PROJECT}:{parsed[1]}'?")
    return problems


def _section(doc: Any, *path: str) -> Any:
    """doc[path...] where every step is a mapping, else None (shapes are reported by the model)."""
    for part in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(part)
    return doc


def source_from_pulumi_config(name: str, pulumi_config: Mapping[str, Any]) -> StackSource:
    """Read the team's base file for a stack whose Pulumi config map is `pulumi_config`."""
    directory = stacks_dir()
    path = stack_file(name, directory)
    where = _rel(path)
    team, environment = _identity(name, where, pulumi_config)
    base_file = directory / "teams" / f"{team}.yaml"
    base = _read_yaml(base_file, stack=name) if base_file.exists() else None
    if not isinstance(base, Mapping):
        reason = "not found" if not base_file.exists() else f"not a mapping (it is a {_kind(base)})"
        raise ConfigError(name, [f"{_rel(base_file)}: the base definition of team {team!r} is {reason}"])
    overrides = pulumi_config.get(f"{PROJECT}:overrides")
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(name, [
            f"{where}: config.{PROJECT}:overrides: must be a mapping (a JSON Merge Patch onto {_rel(base_file)}); got a {_kind(overrides)}"
        ])
    merged = merge_patch(base, overrides)
    # The one other key allowed is the secret that notifications.https_endpoint_secret names.
    secret = _section(merged, "monitoring", "notifications", "https_endpoint_secret")
    allowed = (*OWN_KEYS, *([secret] if isinstance(secret, str) else []))
    problems = _config_key_problems(where, pulumi_config, allowed)
    for key in ("team", "environment", "aws"):
        if key in merged:
            origin = where if key in overrides else _rel(base_file)
            problems.append(f"{origin}: {key}: not allowed in the team definition; it comes from the stack file's config."
                            f"{'aws:region / aws:allowedAccountIds' if key == 'aws' else PROJECT + ':' + key}")
    if problems:
        raise ConfigError(name, problems)
    merged = {"team": team, "environment": environment, "aws": _aws_target(name, path, pulumi_config), **merged}
    return StackSource(name=name, stack_file=path, base_file=base_file, pulumi_config=dict(pulumi_config),
                       base=dict(base), overrides=dict(overrides), merged=merged)


def _identity(name: str, where: str, pulumi_config: Mapping[str, Any]) -> tuple[str, str]:
    """`mlops:team` and `mlops:environment`, checked before the team names a file to read."""
    team = pulumi_config.get(f"{PROJECT}:team")
    environment = pulumi_config.get(f"{PROJECT}:environment")
    problems = []
    for key, value in ((f"{PROJECT}:team", team), (f"{PROJECT}:environment", environment)):
        if not isinstance(value, str):
            got = "" if value is None else f"; got a {_kind(value)}"
            problems.append(f"{where}: config.{key}: required (a string); set it with `pulumi config set {key} ...`{got}")
    if problems:
        raise ConfigError(name, problems)
    if environment not in ENVIRONMENTS:
        raise ConfigError(name, [f"{where}: config.{PROJECT}:environment: {_short(environment)} is not allowed; allowed: {', '.join(ENVIRONMENTS)}"])
    if not re.match(SLUG_PATTERN, team) or len(team) > 63:
        # The team names a file (stacks/teams/<team>.yaml) and every AWS name: no paths, no oddities.
        raise ConfigError(name, [f"{where}: config.{PROJECT}:team: {_short(team)} is not a valid team name; allowed: {SLUG_ALLOWED}, at most 63 characters"])
    if name != f"{team}-{environment}":
        raise ConfigError(name, [
            f"{where}: stack name {name!r} must be '<team>-<environment>' = {team}-{environment!s} "
            f"(from config.{PROJECT}:team and config.{PROJECT}:environment)"
        ])
    return team, environment


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
        hint = _did_you_mean(str(loc[-1]), allowed) if loc else ""
        message = "unknown key" + hint + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
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
    dotted = _dotted(path)
    shown = f" (got {_short(value)})" if value is not None and repr(value) not in message else ""
    return f"{_origin(source, path)}: {dotted}: {message}{shown}"
