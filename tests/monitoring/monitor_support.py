"""Helpers of the monitoring tests: a baseline from the training container's own code, and
captures written by the serving container's own capture writer."""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mlops_serving.capture import CaptureWriter
from mlops_training import synthetic
from mlops_training.baseline import compute_baseline
from mlops_training.schema import parse_schema

TASK = "binary_classification"
FEATURES = ("amount", "n_items", "country", "hour", "account_age_days")
# 2026-03-01T10:00:00Z: the capture window of the tests.
T0 = 1_772_359_200.0


def score(table: pa.Table) -> np.ndarray:
    """A fixed stand-in for the model: P(class 1) from the synthetic data's true signal."""
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in FEATURES}
    country = np.array([c if c is not None else "de" for c in table.column("country").to_pylist()])
    known = np.isin(country, synthetic.COUNTRIES)
    country = np.where(known, country, "de")
    n_items = np.nan_to_num(col["n_items"].astype(float), nan=3.0)
    age = np.nan_to_num(col["account_age_days"].astype(float), nan=400.0)
    z = synthetic.signal(amount=col["amount"], n_items=n_items, country=country, hour=col["hour"], age=age)
    return (1.0 / (1.0 + np.exp(-2.0 * (z - 1.0)))).astype(np.float32).astype(np.float64)


def schema_document() -> dict:
    return synthetic.schema_document(TASK)


def baseline_document(*, n_rows: int = 20_000, seed: int = 0) -> dict:
    """baseline.json exactly as the training container computes it on synthetic training data."""
    table = synthetic.generate(n_rows, task=TASK, seed=seed)
    schema = parse_schema(schema_document())
    return compute_baseline(table, schema, predictions=score(table), seed=seed)


def write_baseline(directory: Path, **kwargs: object) -> Path:
    path = directory / "baseline.json"
    path.write_text(json.dumps(baseline_document(**kwargs)), encoding="utf-8")
    return path


def write_model_tar(directory: Path, baseline_path: Path, *, schema: dict | None = None) -> Path:
    """A model.tar.gz holding baseline.json and schema.json (the members monitoring reads)."""
    doc = schema or {**schema_document(), "features": [
        {**f, **({"categories": list(synthetic.COUNTRIES)} if f["type"] == "String" else {})}
        for f in schema_document()["features"]]}
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("baseline.json", baseline_path.read_bytes()), ("schema.json", json.dumps(doc).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def rows_of(table: pa.Table) -> list[list]:
    """Positional rows in schema order, None for null (what a client sends)."""
    columns = [table.column(name).to_pylist() for name in FEATURES]
    return [list(r) for r in zip(*columns)]


@dataclass
class Request:
    inference_id: str
    rows: list[list]
    predictions: list[float]
    when: float
    body_format: str = "instances"  # instances | records | csv


def requests_from(table: pa.Table, *, rows_per_request: int = 5, start: float = T0, spacing_s: float = 1.0,
                  id_prefix: str = "req") -> list[Request]:
    rows = rows_of(table)
    preds = score(table).tolist()
    out = []
    formats = ("instances", "instances", "records", "csv")
    for k, i in enumerate(range(0, len(rows), rows_per_request)):
        out.append(Request(f"{id_prefix}-{k}", rows[i:i + rows_per_request], preds[i:i + rows_per_request],
                           start + k * spacing_s, formats[k % len(formats)]))
    return out


def _body(request: Request) -> tuple[str, str, bytes]:
    if request.body_format == "csv":
        lines = [",".join("" if v is None else (v if isinstance(v, str) else repr(v)) for v in row) for row in request.rows]
        return "text/csv", "CSV", ("\n".join(lines) + "\n").encode()
    if request.body_format == "records":
        return "application/json", "JSON", json.dumps({"instances": [dict(zip(FEATURES, r)) for r in request.rows]}).encode()
    return "application/json", "JSON", json.dumps({"instances": request.rows}).encode()


def write_captures(root: Path, requests: list[Request], *, endpoint: str = "fraud", variant: str = "champion") -> None:
    """Capture `requests` with the serving container's CaptureWriter (the real file layout and format)."""
    writer = CaptureWriter(root=root, endpoint=endpoint, variant=variant, flush_interval_s=0.01)
    writer.model_version = "1"
    writer.start()
    for request in requests:
        content_type, encoding, body = _body(request)
        writer.offer(
            when=request.when, inference_id=request.inference_id, custom_attributes=None,
            input_type=content_type, input_encoding=encoding, input_body=body,
            output_type="application/json", output_encoding="JSON",
            output_body=json.dumps({"predictions": request.predictions}).encode(),
        )
    writer.stop()
    assert writer.stats()["written"] == len(requests), writer.stats()


def ground_truth_lines(labels: dict[str, list[int]]) -> Iterator[str]:
    """SageMaker's ground-truth merge format, one record per inference id."""
    for inference_id, values in labels.items():
        yield json.dumps({"groundTruthData": {"data": ",".join(map(str, values)), "encoding": "CSV"},
                          "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"})


def drifted(table: pa.Table, *, seed: int) -> pa.Table:
    """The same generator, then amounts tripled and 30% of the countries a new one ("br")."""
    rng = np.random.default_rng(seed)
    amount = table.column("amount").to_numpy() * 3.0
    country = table.column("country").to_pylist()
    country = ["br" if rng.random() < 0.3 else c for c in country]
    table = table.set_column(table.schema.get_field_index("amount"), "amount", pa.array(amount))
    return table.set_column(table.schema.get_field_index("country"), "country", pa.array(country, pa.string()))
