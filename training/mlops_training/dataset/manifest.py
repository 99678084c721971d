"""The dataset manifest (`manifest.json` beside the dataset's Parquet files) and the time split it carries.

Layout of a built dataset, which `mlops-train --train DIR` reads as it is:

    DIR/manifest.json
    DIR/train/part-00000.parquet        label events before the cutoff
    DIR/validation/part-00000.parquet   label events at or after the cutoff

`content_hash` is the training data fingerprint (`mlops_training.data.fingerprint`) of those
Parquet files, so a trainer that reads the directory gets `data_fingerprint == content_hash` and
can tell that the manifest describes exactly the files it read.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_training import s3
from mlops_training.data import RawData

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
SPLITS = ("train", "validation")
COUNT_KEYS = ("labels_in", "matched", "excluded_no_feature", "excluded_deleted", "train", "validation")


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; `doc` is the JSON document as written."""

    doc: dict[str, Any]

    @property
    def content_hash(self) -> str:
        """Fingerprint of the dataset's Parquet files."""
        return str(self.doc["content_hash"])

    @property
    def counts(self) -> dict[str, int]:
        """Row counts: labels in, matched, excluded (no feature, deleted), train, validation."""
        return dict(self.doc["counts"])


def parse(doc: Any, *, source: str) -> Manifest:
    """Validate a decoded manifest document; errors name the source, the field and the value."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{source}: format_version is {doc.get('format_version')!r}; this reader knows {FORMAT_VERSION}"
        )
    if doc.get("split") != "time":
        raise ValueError(f"{source}: split is {doc.get('split')!r}; allowed: 'time'")
    counts = doc.get("counts")
    if not isinstance(counts, dict) or any(not isinstance(counts.get(k), int) for k in COUNT_KEYS):
        raise ValueError(f"{source}: counts is {counts!r}; expected integers for {', '.join(COUNT_KEYS)}")
    if not isinstance(doc.get("content_hash"), str) or not doc["content_hash"].startswith("sha256:"):
        raise ValueError(f"{source}: content_hash is {doc.get('content_hash')!r}; expected 'sha256:<hex>'")
    return Manifest(doc)


def write(directory: Path, doc: dict[str, Any]) -> Path:
    """Write `doc` as `directory/manifest.json` (after validating it)."""
    parse(doc, source="manifest being written")
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return path


def find(source: str) -> Manifest | None:
    """The manifest of a training source (a directory or `s3://bucket/prefix`), or None without one."""
    if s3.is_s3_uri(source):
        bucket, prefix = s3.split_s3_uri(source)
        key = f"{prefix.rstrip('/')}/{MANIFEST_FILE}" if prefix else MANIFEST_FILE
        client = s3.client()
        if key not in s3.list_keys(bucket=bucket, prefix=key, s3=client):
            return None
        text = s3.get_bytes(bucket=bucket, key=key, s3=client).decode("utf-8")
        where = f"s3://{bucket}/{key}"
    else:
        path = Path(source) / MANIFEST_FILE
        if not path.is_file():
            return None
        text, where = path.read_text(encoding="utf-8"), str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from None
    return parse(doc, source=where)


def time_split(raw: RawData, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """(train row indices, validation row indices) of `raw` as the manifest's time split says.

    Rows of files under `train/` are training rows, under `validation/` validation rows, in the row
    order `validate` keeps (files in relative-path order). Refuses files the manifest does not describe.
    """
    if raw.fingerprint != manifest.content_hash:
        raise ValueError(
            f"{raw.source}: the files hash to {raw.fingerprint} but {MANIFEST_FILE} says {manifest.content_hash}; "
            "the dataset was changed after it was built (rebuild it, or remove the manifest for a random split)"
        )
    train, validation, offset = [], [], 0
    for part in raw.parts:
        split = part.name.split("/", 1)[0]
        if split not in SPLITS:
            raise ValueError(f"{raw.source}: {part.name} is outside {' and '.join(f'{s}/' for s in SPLITS)}")
        rows = np.arange(offset, offset + part.table.num_rows)
        (train if split == "train" else validation).append(rows)
        offset += part.table.num_rows
    train_idx = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
    val_idx = np.concatenate(validation) if validation else np.zeros(0, dtype=np.int64)
    for name, idx in (("train", train_idx), ("validation", val_idx)):
        if idx.size == 0:
            raise ValueError(
                f"{raw.source}: the time split has no {name} rows (counts {manifest.counts}); "
                "move the cutoff or add label events"
            )
    return train_idx, val_idx
