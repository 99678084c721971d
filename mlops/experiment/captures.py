"""An endpoint's capture records, per variant, read from S3 or from a local capture directory.

Both hold SageMaker's layout (mlops_contracts.capture): `<root>/<variant>/yyyy/mm/dd/hh/*.jsonl`, one
JSON record per request with its event metadata, the request and the response. A request is keyed by
its `inferenceId` (the caller's InferenceId, which the router forwards with a shadow copy), else by the
capture's own `eventId`. Records that do not parse are counted, never guessed.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlops_contracts import capture as contract


@dataclass(frozen=True)
class Captured:
    """One captured request: its key, the variant that answered, when, and the predictions it returned."""

    key: str
    variant: str
    time: datetime
    predictions: tuple[float, ...]


@dataclass
class Read:
    """What a read found: records per variant (key -> record, the first capture of a key wins)."""

    variants: dict[str, dict[str, Captured]] = field(default_factory=dict)
    files: int = 0
    before_window: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "records": {v: len(r) for v, r in sorted(self.variants.items())},
                "before_window": self.before_window, "problems": len(self.problems), "first_problems": self.problems[:5]}


def local_lines(root: Path) -> Iterator[tuple[str, str, str]]:
    """(file, variant, line) of every completed capture file under `root` (one endpoint's directory)."""
    for path in sorted(root.rglob(f"*{contract.FILE_SUFFIX}")) if root.exists() else []:
        variant = path.relative_to(root).parts[0]
        for line in path.read_text(encoding="utf-8").splitlines():
            yield str(path), variant, line


def s3_lines(s3: Any, uri: str) -> Iterator[tuple[str, str, str]]:
    """(object URI, variant, line) of every capture object under `uri` (s3://bucket/prefix, one endpoint's captures)."""
    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.lstrip("/").rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(contract.FILE_SUFFIX):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8")
                variant = item["Key"][len(prefix):].split("/", 1)[0]
                for line in body.splitlines():
                    yield f"s3://{bucket}/{item['Key']}", variant, line


def predictions(part: Any) -> tuple[float, ...]:
    """The numbers a response returned: `{"predictions": [...]}`, a bare list, or CSV."""
    text, encoding = contract.decode_body(part)
    if encoding == contract.ENCODING_CSV:
        values: list[Any] = [v for v in text.replace("\n", ",").split(",") if v.strip()]
    else:
        doc = json.loads(text)
        values = doc.get("predictions") if isinstance(doc, dict) else doc
        if not isinstance(values, list):
            raise ValueError("the response has no 'predictions' list")
    flat = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
    return tuple(float(v) for v in flat)


def read(lines: Iterable[tuple[str, str, str]], *, since: datetime | None = None) -> Read:
    """The records of `lines` ((file, variant from its path, line)) inferred at or after `since`, per
    variant (the record's own `variant` field where it has one, else its path's)."""
    found = Read()
    seen_files: set[str] = set()
    for name, path_variant, line in lines:
        seen_files.add(name)
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            metadata = doc[contract.EVENT_METADATA]
            when = contract.parse_time(metadata.get(contract.INFERENCE_TIME))
            key = metadata.get(contract.INFERENCE_ID) or metadata[contract.EVENT_ID]
            variant = metadata.get(contract.VARIANT) or path_variant
            values = predictions(doc[contract.CAPTURE_DATA][contract.ENDPOINT_OUTPUT])
        except (ValueError, KeyError, TypeError) as exc:
            found.problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if since is not None and when < since:
            found.before_window += 1
            continue
        found.variants.setdefault(str(variant), {}).setdefault(str(key), Captured(str(key), str(variant), when, values))
    found.files = len(seen_files)
    return found
