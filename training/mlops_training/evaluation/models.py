"""Finding, loading and scoring a model artifact for evaluation.

A model is named by a URI: a `model.tar.gz` file, a directory holding one, a model directory with
the artifact's members (what training writes into SM_MODEL_DIR), `s3://.../model.tar.gz`, or an
`s3://` prefix holding `model.tar.gz`. Loading is the training container's own
(`mlops_training.artifact.load_artifact`); scoring encodes the slice with the model's own schema and
vocabularies (`mlops_training.encode`) and runs the exported TorchScript module
(`mlops_training.train.predict`), so a champion trained on an older vocabulary is scored as it serves.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
from __future__ import annotations

import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from mlops_contracts.artifact import ARCHIVE, MEMBERS

from mlops_training import s3
from mlops_training.artifact import LoadedArtifact, load_artifact
from mlops_training.encode import encode_table
from mlops_training.schema import FeatureSchema
from mlops_training.train import predict


@dataclass(frozen=True, kw_only=True)
class Model:
    """A loaded model and where it came from."""

    name: str
    """`candidate`, or the champion's name (`scoring/champion`, `prod`)."""
    uri: str
    artifact: LoadedArtifact


def _local_artifact(path: Path, *, what: str) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        if (path / ARCHIVE).is_file():
            return path / ARCHIVE
        if all((path / m).is_file() for m in MEMBERS):
            return path
        raise ValueError(f"{what} {path}: the directory holds neither {ARCHIVE} nor the artifact's members "
                         f"({', '.join(MEMBERS)})")
    raise ValueError(f"{what} {path}: no such file or directory; expected {ARCHIVE}, a directory holding it, "
                     "or s3://bucket/key")


def _download(uri: str, *, into: Path, what: str) -> Path:
    bucket, key = s3.split_s3_uri(uri)
    if not key.endswith(".tar.gz"):
        key = f"{key.rstrip('/')}/{ARCHIVE}" if key else ARCHIVE
    client = s3.client()
    if key not in s3.list_keys(bucket=bucket, prefix=key, s3=client):
        raise ValueError(f"{what} {uri}: no object s3://{bucket}/{key}; expected the model's {ARCHIVE}")
    path = into / f"{len(list(into.iterdir()))}-{ARCHIVE}"
    path.write_bytes(s3.get_bytes(bucket=bucket, key=key, s3=client))
    return path


def load_model(name: str, uri: str, *, schema: FeatureSchema, workdir: Path, what: str) -> Model:
    """Load the artifact at `uri`; ValueError names `what` (the argument) when it is missing or does not fit.

    The model must solve the schema's task; its inputs are checked against the slice when it is scored.
    """
    path = _download(uri, into=workdir, what=what) if s3.is_s3_uri(uri) else _local_artifact(Path(uri), what=what)
    try:
        loaded = load_artifact(path)
    except (ValueError, OSError, RuntimeError, tarfile.TarError) as exc:
        raise ValueError(f"{what} {uri}: not a readable model artifact ({exc})") from None
    if loaded.schema.task != schema.task:
        raise ValueError(f"{what} {uri}: the model solves {loaded.schema.task}, the feature schema says {schema.task}; "
                         "allowed: a model of the schema's task")
    return Model(name=name, uri=uri, artifact=loaded)


def score(model: Model, table: pa.Table) -> np.ndarray:
    """The model's outputs (probability of class 1, or the value) for every row of `table`, as float64."""
    schema = model.artifact.schema
    missing = [f.name for f in schema.features if f.name not in table.column_names]
    if missing:
        raise ValueError(f"{model.name} ({model.uri}) needs input(s) {', '.join(missing)}, which the slice lacks")
    features = encode_table(table, schema, categories=model.artifact.categories)
    out = predict(model.artifact.module, torch.from_numpy(features))
    if out.shape != (table.num_rows,) or not np.all(np.isfinite(out)):
        raise ValueError(f"{model.name} ({model.uri}) returned {out.shape} outputs with non-finite values for "
                         f"{table.num_rows} rows")
    return out


def workdir() -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for downloaded artifacts."""
    return tempfile.TemporaryDirectory(prefix="mlops-evaluate-")
