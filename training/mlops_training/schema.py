"""The feature schema (docs/contracts.md section 1): loading and validation.

Pure logic, no torch. A schema describes which columns of the offline-store export are model inputs,
their SageMaker Feature Store types, which may be null and which value ranges are acceptable.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from mlops_contracts.feature_schema import FEATURE_TYPES, FORMAT_VERSION, TASKS

# The Literals let a type checker follow the names; they must list exactly the contract's values.
FeatureType = Literal["Integral", "Fractional", "String"]
Task = Literal["binary_classification", "regression"]
assert get_args(FeatureType) == FEATURE_TYPES and get_args(Task) == TASKS, "schema Literals out of step with mlops_contracts"

_SCHEMA_KEYS = {"format_version", "record_identifier", "event_time", "label", "task", "features"}
_FEATURE_KEYS = {"name", "type", "nullable", "min", "max"}


class SchemaError(ValueError):
    """The feature schema is malformed; the message lists every problem found."""


@dataclass(frozen=True, kw_only=True)
class Feature:
    """One model input column."""

    name: str
    """Column name in the exported Parquet data."""
    type: FeatureType
    """SageMaker Feature Store type: `Integral`, `Fractional` or `String`."""
    nullable: bool = False
    """Whether nulls are allowed in training data (they are encoded as NaN). Default: false."""
    min: float | None = None
    """Smallest value accepted in training data (numeric features only). Default: no bound."""
    max: float | None = None
    """Largest value accepted in training data (numeric features only). Default: no bound."""

    @property
    def is_numeric(self) -> bool:
        """True for `Integral` and `Fractional` features."""
        return self.type != "String"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of contracts.md section 1 (bounds only when set)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclass(frozen=True, kw_only=True)
class FeatureSchema:
    """The feature schema of contracts.md section 1."""

    record_identifier: str
    """Column that identifies a record; present in the data, never a model input."""
    event_time: str
    """Column with the record's event time; present in the data, never a model input."""
    label: str
    """Target column: 0/1 for binary classification, a number for regression."""
    task: Task
    """`binary_classification` or `regression`."""
    features: tuple[Feature, ...]
    """Model inputs, in the order of the encoded tensor's columns."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the model inputs, in tensor column order."""
        return tuple(f.name for f in self.features)

    @property
    def string_features(self) -> tuple[Feature, ...]:
        """The `String` features (they get a category vocabulary at training time)."""
        return tuple(f for f in self.features if f.type == "String")

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of contracts.md section 1."""
        return {
            "format_version": FORMAT_VERSION,
            "record_identifier": self.record_identifier,
            "event_time": self.event_time,
            "label": self.label,
            "task": self.task,
            "features": [f.to_dict() for f in self.features],
        }


def parse_schema(doc: Any, *, source: str = "feature schema") -> FeatureSchema:
    """Validate a decoded JSON document and build a `FeatureSchema`.

    Collects every problem before raising `SchemaError`, each naming the field path, the value
    received and what is allowed. `source` names the file or hyperparameter in the message.
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise SchemaError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        # A reader refuses a version it does not know (contracts.md preamble).
        raise SchemaError(
            f"{source}: format_version is {version!r}; this trainer reads format_version {FORMAT_VERSION}"
        )
    for key in sorted(set(doc) - _SCHEMA_KEYS):
        problems.append(f"{key}: unknown field; allowed: {', '.join(sorted(_SCHEMA_KEYS))}")

    def required_name(key: str) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{key}: got {value!r}; expected a non-empty column name")
            return ""
        return value

    record_identifier = required_name("record_identifier")
    event_time = required_name("event_time")
    label = required_name("label")
    task = doc.get("task")
    if task not in TASKS:
        problems.append(f"task: got {task!r}; allowed: {', '.join(TASKS)}")

    raw_features = doc.get("features")
    features: list[Feature] = []
    if not isinstance(raw_features, list) or not raw_features:
        problems.append(f"features: got {raw_features!r}; expected a non-empty list")
        raw_features = []
    for i, raw in enumerate(raw_features):
        feature = _parse_feature(raw, path=f"features[{i}]", problems=problems)
        if feature is not None:
            features.append(feature)

    names = [f.name for f in features]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"features: {name!r} appears {names.count(name)} times; names must be unique")
    reserved = {"record_identifier": record_identifier, "event_time": event_time, "label": label}
    for key, column in reserved.items():
        if column and column in names:
            problems.append(f"features: {column!r} is the {key}; it cannot also be a model input")
    if len({c for c in reserved.values() if c}) < len([c for c in reserved.values() if c]):
        problems.append(f"record_identifier, event_time and label must be distinct columns; got {reserved}")

    if problems:
        raise SchemaError(f"{source} is invalid:\n  - " + "\n  - ".join(problems))
    return FeatureSchema(
        record_identifier=record_identifier,
        event_time=event_time,
        label=label,
        task=task,  # type: ignore[arg-type]  # checked against TASKS above
        features=tuple(features),
    )


def _parse_feature(raw: Any, *, path: str, problems: list[str]) -> Feature | None:
    if not isinstance(raw, dict):
        problems.append(f"{path}: got {raw!r}; expected an object with name and type")
        return None
    for key in sorted(set(raw) - _FEATURE_KEYS):
        problems.append(f"{path}.{key}: unknown field; allowed: {', '.join(sorted(_FEATURE_KEYS))}")
    name, ftype = raw.get("name"), raw.get("type")
    ok = True
    if not isinstance(name, str) or not name:
        problems.append(f"{path}.name: got {name!r}; expected a non-empty column name")
        ok = False
    if ftype not in FEATURE_TYPES:
        problems.append(f"{path}.type: got {ftype!r}; allowed: {', '.join(FEATURE_TYPES)}")
        ok = False
    nullable = raw.get("nullable", False)
    if not isinstance(nullable, bool):
        problems.append(f"{path}.nullable: got {nullable!r}; expected true or false")
        ok = False
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        if ftype == "String":
            problems.append(f"{path}.{key}: got {value!r}; ranges apply to Integral and Fractional features only")
            ok = False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{path}.{key}: got {value!r}; expected a finite number")
            ok = False
        else:
            bounds[key] = value  # kept as written (an int stays an int in schema.json)
    lo, hi = bounds.get("min"), bounds.get("max")
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"{path}: min {lo} is greater than max {hi}")
        ok = False
    if not ok:
        return None
    return Feature(name=name, type=ftype, nullable=nullable, min=lo, max=hi)


def load_schema(path: str | Path) -> FeatureSchema:
    """Read and validate a `feature_schema.json` file."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"feature schema file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc})") from None
    return parse_schema(doc, source=str(path))


def schema_from_json(text: str, *, source: str) -> FeatureSchema:
    """Parse a schema given as a JSON string (the `feature_schema` hyperparameter)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{source}: not valid JSON ({exc})") from None
    return parse_schema(doc, source=source)
