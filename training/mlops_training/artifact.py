"""The model artifact (docs/contracts.md section 2): writing the model directory, packing and loading.

On SageMaker the members are written into `SM_MODEL_DIR` and SageMaker itself packs that directory
into `model.tar.gz` with the members at the archive root. Elsewhere (and for the upload to
`artifact_s3_uri`) `pack` builds the same archive.

`schema.json` is the feature schema with a `categories` list on every String feature entry.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import tarfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from mlops_contracts import artifact as contract

# The member names, re-exported: the rest of the trainer and its tests read them from here.
from mlops_contracts.artifact import (
    BASELINE_FILE, MEMBERS, METADATA_FILE, METADATA_FORMAT_VERSION, MODEL_FILE, SCHEMA_FILE, STATE_DICT_FILE,
)
from mlops_contracts.feature_schema import STRING

import mlops_training
from mlops_training.model import Predictor
from mlops_training.schema import FeatureSchema, parse_schema

SUPPORTED_BASELINE_VERSIONS = tuple(sorted(contract.SUPPORTED_BASELINE_VERSIONS))


def schema_document(schema: FeatureSchema, *, categories: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """schema.json: the feature schema plus `categories` on every String feature."""
    doc = schema.to_dict()
    for entry in doc["features"]:
        if entry["type"] == STRING:
            entry["categories"] = list(categories[entry["name"]])
    return doc


def parse_schema_document(doc: dict[str, Any], *, source: str) -> tuple[FeatureSchema, dict[str, list[str]]]:
    """Read schema.json back into the schema and the String vocabularies."""
    doc = copy.deepcopy(doc)
    categories: dict[str, list[str]] = {}
    for entry in doc.get("features", []):
        if isinstance(entry, dict) and entry.get("type") == STRING:
            if not isinstance(entry.get("categories"), list):
                raise ValueError(f"{source}: String feature {entry.get('name')!r} has no categories list")
            categories[entry["name"]] = entry.pop("categories")
    return parse_schema(doc, source=source), categories


def code_version() -> str:
    """`MLOPS_CODE_VERSION` (the image build sets it to the git commit), else version + source hash."""
    if os.environ.get("MLOPS_CODE_VERSION"):
        return os.environ["MLOPS_CODE_VERSION"]
    package = Path(mlops_training.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return f"mlops-training-{mlops_training.__version__}+src.{digest.hexdigest()[:12]}"


def build_metadata(
    *,
    model_name: str,
    model_version: str,
    task: str,
    data_fingerprint: str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any],
    dataset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """metadata.json (contracts.md section 2) with the creation time and code version filled in.

    `dataset` is the point-in-time dataset's manifest (`mlops_training.dataset.manifest`) when the
    training data was built with one; metadata then carries it under `dataset`.
    """
    doc = {
        "format_version": METADATA_FORMAT_VERSION,
        "model_name": model_name,
        "model_version": model_version,
        "task": task,
        "data_fingerprint": data_fingerprint,
        "code_version": code_version(),
        "hyperparameters": hyperparameters,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": metrics,
    }
    if dataset is not None:
        doc["dataset"] = dataset
    return doc


def _script(predictor: Predictor) -> torch.jit.ScriptModule:
    cpu = copy.deepcopy(predictor).cpu().eval()
    # The contract fixes TorchScript; torch >= 2.10 marks it deprecated, which is not news to act on here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        return torch.jit.script(cpu)


def _write_json(path: Path, doc: Any) -> None:
    # allow_nan=False: NaN is not JSON, and the readers are not all Python.
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def write_model_dir(
    model_dir: Path,
    *,
    predictor: Predictor,
    schema: FeatureSchema,
    categories: Mapping[str, Sequence[str]],
    metadata: dict[str, Any],
    baseline: dict[str, Any],
) -> list[Path]:
    """Write the five members of the artifact into `model_dir`; returns their paths."""
    model_dir.mkdir(parents=True, exist_ok=True)
    scripted = _script(predictor)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        torch.jit.save(scripted, str(model_dir / MODEL_FILE))
    state = {k: v.detach().cpu() for k, v in predictor.net.state_dict().items()}
    torch.save(state, model_dir / STATE_DICT_FILE)
    _write_json(model_dir / SCHEMA_FILE, schema_document(schema, categories=categories))
    _write_json(model_dir / METADATA_FILE, metadata)
    _write_json(model_dir / BASELINE_FILE, baseline)
    return [model_dir / m for m in MEMBERS]


def pack(model_dir: Path, archive: Path) -> Path:
    """Pack the artifact members of `model_dir` into `archive` (members at the root, owned by root:root)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.tmp")
    with open(tmp, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name in MEMBERS:
            info = tar.gettarinfo(str(model_dir / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(model_dir / name, "rb") as fh:
                tar.addfile(info, fh)
    os.replace(tmp, archive)
    return archive


@dataclass(frozen=True, kw_only=True)
class LoadedArtifact:
    """An artifact read back: the exported module and everything beside it."""

    module: torch.jit.ScriptModule
    schema: FeatureSchema
    categories: dict[str, list[str]]
    metadata: dict[str, Any]
    baseline: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def _read_members(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {m: (path / m).read_bytes() for m in MEMBERS if (path / m).exists()}
    with tarfile.open(path, mode="r:gz") as tar:
        out = {}
        for name in MEMBERS:
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            fh = tar.extractfile(member)
            if fh is not None:
                out[name] = fh.read()
        return out


def load_artifact(path: Path) -> LoadedArtifact:
    """Read a model directory or a `model.tar.gz`, refusing unknown format versions."""
    members = _read_members(path)
    missing = [m for m in MEMBERS if m not in members]
    if missing:
        raise ValueError(f"{path}: missing artifact member(s) {', '.join(missing)}; expected {', '.join(MEMBERS)}")
    schema, categories = parse_schema_document(json.loads(members[SCHEMA_FILE]), source=f"{path}:{SCHEMA_FILE}")
    metadata = json.loads(members[METADATA_FILE])
    if metadata.get("format_version") != METADATA_FORMAT_VERSION:
        raise ValueError(f"{path}: metadata format_version {metadata.get('format_version')!r}; "
                         f"this reader knows {METADATA_FORMAT_VERSION}")
    baseline = json.loads(members[BASELINE_FILE])
    if baseline.get("format_version") not in SUPPORTED_BASELINE_VERSIONS:
        raise ValueError(f"{path}: baseline format_version {baseline.get('format_version')!r}; "
                         f"this reader knows {SUPPORTED_BASELINE_VERSIONS}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        module = torch.jit.load(io.BytesIO(members[MODEL_FILE]), map_location="cpu")
    state_dict = torch.load(io.BytesIO(members[STATE_DICT_FILE]), map_location="cpu", weights_only=True)
    return LoadedArtifact(
        module=module, schema=schema, categories=categories, metadata=metadata, baseline=baseline,
        state_dict=state_dict,
    )
