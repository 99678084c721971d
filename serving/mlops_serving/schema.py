"""The feature schema inside `model.tar.gz` (contracts.md §1 and §2), as the server reads it.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_contracts import artifact, feature_schema

from .errors import ModelLoadError

SUPPORTED_FORMAT_VERSIONS = feature_schema.SUPPORTED_FORMAT_VERSIONS
FEATURE_TYPES = feature_schema.FEATURE_TYPES


@dataclass(frozen=True)
class Feature:
    """One model input column, in schema order."""

    name: str
    type: str
    """`Integral`, `Fractional` or `String` (SageMaker Feature Store type names)."""
    nullable: bool = False
    categories: tuple[str, ...] = ()
    """For `String` features: the known categories; category `k` is encoded as `k + 1`."""


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered model inputs plus the task; column `j` of the model input is `features[j]`."""

    features: tuple[Feature, ...]
    task: str
    format_version: int = feature_schema.FORMAT_VERSION

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return tuple(f.name for f in self.features)

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = artifact.SCHEMA_FILE) -> FeatureSchema:
        """Validate a parsed `schema.json`; raise `ModelLoadError` naming the offending field."""
        if not isinstance(doc, Mapping):
            raise ModelLoadError(f"{source}: expected a JSON object, got {type(doc).__name__}")
        version = doc.get("format_version")
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise ModelLoadError(
                f"{source}: format_version={version!r} is not supported; "
                f"allowed {sorted(SUPPORTED_FORMAT_VERSIONS)}"
            )
        raw_features = doc.get("features")
        if not isinstance(raw_features, list) or not raw_features:
            raise ModelLoadError(f"{source}: 'features' must be a non-empty list")
        # The contract says the schema carries "categories for every String feature" without saying
        # where; we read a per-feature `categories` list and accept a top-level
        # `{"categories": {name: [...]}}` map as well.
        top_categories = doc.get("categories")
        if top_categories is not None and not isinstance(top_categories, Mapping):
            raise ModelLoadError(f"{source}: 'categories' must map feature names to lists")
        features: list[Feature] = []
        seen: set[str] = set()
        for j, raw in enumerate(raw_features):
            where = f"{source}: features[{j}]"
            if not isinstance(raw, Mapping):
                raise ModelLoadError(f"{where}: expected an object")
            name = raw.get("name")
            if not isinstance(name, str) or not name:
                raise ModelLoadError(f"{where}.name={name!r}: expected a non-empty string")
            if name in seen:
                raise ModelLoadError(f"{where}.name={name!r}: duplicate feature name")
            seen.add(name)
            ftype = raw.get("type")
            if ftype not in FEATURE_TYPES:
                raise ModelLoadError(f"{where}.type={ftype!r}: allowed {list(FEATURE_TYPES)}")
            nullable = raw.get("nullable", False)
            if not isinstance(nullable, bool):
                raise ModelLoadError(f"{where}.nullable={nullable!r}: expected true or false")
            categories: tuple[str, ...] = ()
            if ftype == feature_schema.STRING:
                cats = raw.get("categories")
                if cats is None and top_categories is not None:
                    cats = top_categories.get(name)
                if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                    raise ModelLoadError(
                        f"{where} ({name!r}) is a String feature: expected 'categories' as a list "
                        f"of strings, got {cats!r}"
                    )
                if len(set(cats)) != len(cats):
                    raise ModelLoadError(f"{where} ({name!r}): duplicate categories")
                categories = tuple(cats)
            features.append(Feature(name=name, type=ftype, nullable=nullable, categories=categories))
        task = doc.get("task", feature_schema.BINARY_CLASSIFICATION)
        if task not in feature_schema.TASKS:
            raise ModelLoadError(f"{source}: task={task!r}: allowed {list(feature_schema.TASKS)}")
        return cls(features=tuple(features), task=task, format_version=version)
