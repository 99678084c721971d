"""Loading the `model.tar.gz` the training container writes (contracts.md §2).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts)."""
from __future__ import annotations

import json
import logging
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mlops_contracts import artifact

from .errors import ModelLoadError
from .schema import FeatureSchema

log = logging.getLogger("mlops_serving")

ARCHIVE_NAME = artifact.ARCHIVE
REQUIRED_MEMBERS = artifact.SERVING_MEMBERS


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model: the TorchScript module with its schema and metadata."""

    module: Any
    schema: FeatureSchema
    metadata: dict[str, Any]
    source: str
    load_seconds: float = field(default=0.0, compare=False)

    @property
    def model_name(self) -> str:
        """`metadata.model_name`, or `model` when absent."""
        return str(self.metadata.get("model_name", "model"))

    @property
    def model_version(self) -> str:
        """`metadata.model_version` as a string (recorded in every capture record)."""
        return str(self.metadata["model_version"])

    def predict(self, x: torch.Tensor) -> np.ndarray:
        """Run the module on float32 `[N, F]`; return float32 `[N]` (called from one thread only)."""
        with torch.inference_mode():
            y = self.module(x)
        if y.dim() == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != (x.shape[0],):
            raise RuntimeError(f"model returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
        return y.to(torch.float32).contiguous().numpy()


def load_bundle(path: Path, *, warm_rows: tuple[int, ...] = (1, 64)) -> ModelBundle:
    """Load from an extracted model directory or a `model.tar.gz`, then warm it up.

    A directory holding only `model.tar.gz` (not yet extracted) is accepted too. Raises
    `ModelLoadError` with the member and the problem.
    """
    started = time.perf_counter()
    path = Path(path)
    if path.is_file():
        archive = path
    elif path.is_dir() and not (path / artifact.MODEL_FILE).exists() and (path / ARCHIVE_NAME).is_file():
        archive = path / ARCHIVE_NAME
    elif path.is_dir():
        archive = None
    else:
        raise ModelLoadError(f"model path {str(path)!r} does not exist")
    if archive is None:
        bundle = _load_dir(path, source=str(path), warm_rows=warm_rows)
    else:
        with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
            _extract(archive, Path(tmp))
            bundle = _load_dir(Path(tmp), source=str(archive), warm_rows=warm_rows)
    elapsed = time.perf_counter() - started
    return ModelBundle(bundle.module, bundle.schema, bundle.metadata, bundle.source, elapsed)


def _extract(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            # The "data" filter refuses absolute paths, "..", links out of the tree and devices.
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ModelLoadError(f"{archive}: cannot extract: {exc}") from exc
    # Accept archives packed with a top-level folder as well as members at the root.
    if not (dest / artifact.MODEL_FILE).exists():
        subdirs = [p for p in dest.iterdir() if p.is_dir()]
        if len(subdirs) == 1 and (subdirs[0] / artifact.MODEL_FILE).exists():
            for child in subdirs[0].iterdir():
                shutil.move(str(child), dest / child.name)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path.name}: cannot read JSON: {exc}") from exc


def _load_dir(root: Path, *, source: str, warm_rows: tuple[int, ...]) -> ModelBundle:
    missing = [m for m in REQUIRED_MEMBERS if not (root / m).is_file()]
    if missing:
        raise ModelLoadError(f"{source}: missing {', '.join(missing)} (required: {list(REQUIRED_MEMBERS)})")
    schema = FeatureSchema.from_dict(_read_json(root / artifact.SCHEMA_FILE))
    metadata = _read_json(root / artifact.METADATA_FILE)
    if not isinstance(metadata, dict) or "model_version" not in metadata:
        raise ModelLoadError(f"{source}: metadata.json must be an object with 'model_version'")
    try:
        module = torch.jit.load(str(root / artifact.MODEL_FILE), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError/ValueError/pickle errors for a bad file
        raise ModelLoadError(f"{source}: model.pt is not a loadable TorchScript module: {exc}") from exc
    module.eval()
    bundle = ModelBundle(module, schema, metadata, source)
    n_features = len(schema.features)
    for rows in warm_rows:
        # Zeros are a valid encoding of every feature (unknown category / value 0), so the warm-up
        # also proves that the module accepts the schema's width and returns one value per row.
        try:
            bundle.predict(torch.zeros(rows, n_features))
        except Exception as exc:
            raise ModelLoadError(
                f"{source}: model.pt fails on a float32 [{rows}, {n_features}] input "
                f"(schema.json has {n_features} features): {exc}"
            ) from exc
    return bundle
