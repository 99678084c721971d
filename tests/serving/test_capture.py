"""The capture writer on its own: layout, rotation, bounds, sampling, failures, flush on stop."""
from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

from serving_support import CAPTURE_PATH, read_capture

from mlops_serving.capture import CaptureWriter, IdGenerator


def offer(writer: CaptureWriter, k: int, *, body: bytes = b'{"instances": [[1.0, 2, "de"]]}') -> None:
    writer.offer(
        when=1_795_000_000.123 + k, inference_id=f"id-{k}", custom_attributes=None,
        input_type="application/json", input_encoding="JSON", input_body=body,
        output_type="application/json", output_encoding="JSON", output_body=b'{"predictions":[0.5]}',
    )


def test_records_land_in_sagemaker_layout_in_order_and_nothing_is_partial_after_stop(tmp_path: Path) -> None:
    writer = CaptureWriter(root=tmp_path, endpoint="fraud", variant="champion", rotate_bytes=2_000)
    writer.model_version = "7"
    writer.start()
    for k in range(40):
        offer(writer, k)
        if k % 10 == 9:
            time.sleep(0.3)  # let the writer drain (every 0.1 s): a file is rotated after a write
    writer.stop()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) >= 4, "~4 kB per drain against a 2 kB limit must rotate"
    assert all(CAPTURE_PATH.match(f) and f.startswith("fraud/champion/") for f in files), files
    records = read_capture(tmp_path)
    assert [r["eventMetadata"]["inferenceId"] for r in records] == [f"id-{k}" for k in range(40)]
    first = records[0]
    assert first["eventMetadata"]["inferenceTime"] == time.strftime(
        "%Y-%m-%dT%H:%M:%S.123Z", time.gmtime(1_795_000_000))
    assert first["eventMetadata"]["modelVersion"] == "7"
    assert first["captureData"]["endpointInput"]["data"] == '{"instances": [[1.0, 2, "de"]]}'
    assert writer.stats() == {"records": 40, "written": 40, "dropped": 0, "sampled_out": 0, "write_errors": 0}


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    # The writer drains every 10 s here, so nothing leaves the queue while we offer.
    writer = CaptureWriter(root=tmp_path, endpoint="e", variant="v", queue_bytes=10_000, flush_interval_s=10)
    writer.start()
    started = time.perf_counter()
    for k in range(100):
        offer(writer, k, body=b"x" * 500)
    elapsed = time.perf_counter() - started
    stats = writer.stats()
    assert stats["records"] + stats["dropped"] == 100
    assert 0 < stats["records"] < 100
    assert elapsed < 0.5
    writer.stop()
    assert writer.stats()["written"] == stats["records"]
    assert len(read_capture(tmp_path)) == stats["records"]


def test_sampling_captures_the_configured_fraction(tmp_path: Path) -> None:
    random.seed(1234)
    writer = CaptureWriter(root=tmp_path, endpoint="e", variant="v", sample=0.25)
    writer.start()
    for k in range(2000):
        offer(writer, k)
    writer.stop()
    stats = writer.stats()
    assert stats["records"] + stats["sampled_out"] == 2000
    assert 400 <= stats["records"] <= 600
    assert len(read_capture(tmp_path)) == stats["records"]


def test_write_failures_are_counted_not_raised(tmp_path: Path) -> None:
    (tmp_path / "e").write_text("a file where the endpoint directory should be")
    writer = CaptureWriter(root=tmp_path, endpoint="e", variant="v")
    writer.start()
    for k in range(5):
        offer(writer, k)
    writer.stop()
    assert writer.stats()["write_errors"] == 5
    assert writer.stats()["written"] == 0


def test_offers_after_stop_are_dropped(tmp_path: Path) -> None:
    writer = CaptureWriter(root=tmp_path, endpoint="e", variant="v")
    writer.start()
    writer.stop()
    offer(writer, 1)
    assert writer.stats()["dropped"] == 1


def test_generated_ids_are_unique_and_uuid_shaped() -> None:
    a, b = IdGenerator(), IdGenerator()
    ids = [a() for _ in range(1000)] + [b() for _ in range(1000)]
    assert len(set(ids)) == 2000
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    assert all(pattern.match(i) for i in ids)


def test_custom_attributes_are_recorded_verbatim(tmp_path: Path) -> None:
    writer = CaptureWriter(root=tmp_path, endpoint="e", variant="v")
    writer.start()
    writer.offer(when=time.time(), inference_id="x", custom_attributes="trace=1; inference_id=x",
                 input_type="text/csv", input_encoding="CSV", input_body=b"1,2,de\n",
                 output_type="text/csv", output_encoding="CSV", output_body=b"0.5\n")
    writer.stop()
    (record,) = read_capture(tmp_path)
    assert record["eventMetadata"]["customAttributes"] == "trace=1; inference_id=x"
    assert json.dumps(record["captureData"]) == json.dumps({
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,de\n", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.5\n", "encoding": "CSV"},
    })
