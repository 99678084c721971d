"""The training baseline (`baseline.json`, docs/contracts.md §4) and the model's column order.

Positional capture rows (`{"instances": [[...]]}`, CSV) carry no names, so the job needs the
order of the model's input columns. The authority is the model's `schema.json`: it is used when
given (`--schema`) or when the baseline comes as the `model.tar.gz` that holds both. Otherwise the
order of `baseline.json`'s `features` object is used: training writes it by iterating the schema's
features (`mlops_training.baseline.compute_baseline`) and JSON writers and readers here keep key
order, but the contract does not promise it, hence the schema's precedence.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlops_contracts import artifact, feature_schema

from . import storage

SUPPORTED_FORMAT_VERSIONS = artifact.SUPPORTED_BASELINE_VERSIONS
NUMERIC_TYPES = feature_schema.NUMERIC_TYPES


@dataclass(frozen=True)
class NumericBaseline:
    """Training distribution of a numeric feature or of the predictions."""

    type: str
    null_rate: float
    edges: tuple[float, ...]
    """Bin edges (deciles; first = min, last = max); empty when training saw no values."""
    frequencies: tuple[float, ...]
    sample: tuple[float, ...]
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class CategoricalBaseline:
    """Training distribution of a String feature."""

    null_rate: float
    frequencies: dict[str, float]

    type: str = feature_schema.STRING


@dataclass(frozen=True)
class Baseline:
    """The parsed baseline with the model's feature order."""

    features: dict[str, NumericBaseline | CategoricalBaseline]
    """In model input column order."""
    prediction: NumericBaseline | None
    n_rows: int
    order_source: str
    """Where the column order came from: `schema.json` or `baseline.json`."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.features)


class BaselineError(ValueError):
    """The baseline or schema is missing, malformed or of an unknown version."""


def load(location: str, *, schema_location: str | None = None) -> Baseline:
    """Read `baseline.json` or a `model.tar.gz` (local or S3) and, if given, the model's schema."""
    data = storage.read_bytes(location)
    schema_doc = None
    if data[:2] == b"\x1f\x8b":  # gzip: a model.tar.gz
        members = _tar_members(data, location, (artifact.BASELINE_FILE, artifact.SCHEMA_FILE))
        if artifact.BASELINE_FILE not in members:
            raise BaselineError(f"{location}: the archive has no {artifact.BASELINE_FILE} at its root")
        doc = _json(members[artifact.BASELINE_FILE], f"{location}:{artifact.BASELINE_FILE}")
        if artifact.SCHEMA_FILE in members:
            where = f"{location}:{artifact.SCHEMA_FILE}"
            schema_doc = (_json(members[artifact.SCHEMA_FILE], where), where)
    else:
        doc = _json(data, location)
    if schema_location is not None:
        schema_doc = (_json(storage.read_bytes(schema_location), schema_location), schema_location)
    return parse(doc, source=location, schema=schema_doc)


def parse(doc: Any, *, source: str = artifact.BASELINE_FILE, schema: tuple[Any, str] | None = None) -> Baseline:
    """Validate a parsed baseline (and schema); errors name the file and the field."""
    if not isinstance(doc, Mapping):
        raise BaselineError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    version = doc.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise BaselineError(
            f"{source}: format_version={version!r} is not supported; allowed {sorted(SUPPORTED_FORMAT_VERSIONS)}")
    raw_features = doc.get("features")
    if not isinstance(raw_features, Mapping) or not raw_features:
        raise BaselineError(f"{source}: 'features' must be a non-empty object")
    features: dict[str, NumericBaseline | CategoricalBaseline] = {}
    for name, raw in raw_features.items():
        where = f"{source}: features.{name}"
        if not isinstance(raw, Mapping):
            raise BaselineError(f"{where}: expected an object")
        ftype = raw.get("type")
        if ftype == feature_schema.STRING:
            features[name] = _categorical(raw, where)
        elif ftype in NUMERIC_TYPES:
            features[name] = _numeric(raw, where)
        else:
            raise BaselineError(f"{where}.type={ftype!r}: allowed Integral, Fractional, String")
    prediction = None
    if doc.get("prediction") is not None:
        prediction = _numeric(doc["prediction"], f"{source}: prediction")
    n_rows = doc.get("n_rows", 0)
    order_source = artifact.BASELINE_FILE
    if schema is not None:
        schema_doc, schema_source = schema
        order = _schema_order(schema_doc, schema_source)
        if set(order) != set(features):
            raise BaselineError(
                f"{schema_source} and {source} describe different features: only in the schema "
                f"{sorted(set(order) - set(features))}, only in the baseline {sorted(set(features) - set(order))}"
            )
        features = {name: features[name] for name in order}
        order_source = artifact.SCHEMA_FILE
    return Baseline(features=features, prediction=prediction, n_rows=int(n_rows), order_source=order_source)


def _numeric(raw: Any, where: str) -> NumericBaseline:
    if not isinstance(raw, Mapping):
        raise BaselineError(f"{where}: expected an object")
    edges = _floats(raw.get("bin_edges", []), f"{where}.bin_edges")
    freqs = _floats(raw.get("bin_frequencies", []), f"{where}.bin_frequencies")
    sample = _floats(raw.get("sample", []), f"{where}.sample")
    if edges and (len(edges) < 2 or list(edges) != sorted(edges)):
        raise BaselineError(f"{where}.bin_edges: expected at least 2 ascending edges, got {len(edges)}")
    if len(freqs) != max(len(edges) - 1, 0):
        raise BaselineError(f"{where}.bin_frequencies: {len(freqs)} values for {len(edges)} edges; allowed one per bin")
    if freqs and not math.isclose(sum(freqs), 1.0, abs_tol=1e-6):
        raise BaselineError(f"{where}.bin_frequencies sum to {sum(freqs)!r}; allowed shares summing to 1")
    return NumericBaseline(
        type=str(raw.get("type", feature_schema.FRACTIONAL)), null_rate=_rate(raw, where),
        edges=edges, frequencies=freqs, sample=sample,
        mean=_optional_float(raw.get("mean")), std=_optional_float(raw.get("std")),
    )


def _categorical(raw: Mapping[str, Any], where: str) -> CategoricalBaseline:
    freqs = raw.get("category_frequencies", {})
    if not isinstance(freqs, Mapping) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in freqs.items()
    ):
        raise BaselineError(f"{where}.category_frequencies: expected an object of category -> share")
    return CategoricalBaseline(null_rate=_rate(raw, where), frequencies={k: float(v) for k, v in freqs.items()})


def _rate(raw: Mapping[str, Any], where: str) -> float:
    value = raw.get("null_rate", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BaselineError(f"{where}.null_rate={value!r}: allowed a share between 0 and 1")
    return float(value)


def _floats(values: Any, where: str) -> tuple[float, ...]:
    # Checked at C speed: a baseline holds 10,000 sample values per feature.
    if not isinstance(values, list) or not set(map(type, values)) <= {int, float}:
        raise BaselineError(f"{where}: expected a list of finite numbers")
    array = np.array(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise BaselineError(f"{where}: expected a list of finite numbers")
    return tuple(array.tolist())


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _schema_order(doc: Any, source: str) -> list[str]:
    if not isinstance(doc, Mapping):
        raise BaselineError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    version = doc.get("format_version")
    if version not in feature_schema.SUPPORTED_FORMAT_VERSIONS:
        raise BaselineError(
            f"{source}: format_version={version!r} is not supported; allowed {sorted(feature_schema.SUPPORTED_FORMAT_VERSIONS)}")
    features = doc.get("features")
    if not isinstance(features, list) or not all(
            isinstance(f, Mapping) and isinstance(f.get("name"), str) for f in features):
        raise BaselineError(f"{source}: 'features' must be a list of objects with a 'name'")
    return [f["name"] for f in features]


def _json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{source}: not valid JSON: {exc}") from None


def _tar_members(data: bytes, source: str, names: tuple[str, ...]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                name = member.name.removeprefix("./")
                if name in names and member.isfile():
                    handle = archive.extractfile(member)
                    assert handle is not None  # a regular file always has content
                    out[name] = handle.read()
    except (tarfile.TarError, OSError) as exc:
        raise BaselineError(f"{source}: not a readable model.tar.gz: {exc}") from None
    return out
