"""Prediction capture: JSON lines in SageMaker's data-capture format (contracts.md §3).

The event loop only appends a tuple to a bounded in-memory queue (`offer`); a writer thread
formats and writes the records. When the queue is full the record is dropped and counted: a slow
disk must never slow down or fail a request. Files are laid out the way SageMaker lays out its
capture in S3:

    {root}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl

A file is written under a `.partial` suffix and renamed when it is closed (by size, by age, at an
hour boundary, or at shutdown), so that whatever ships or reads the directory sees whole files only.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import BinaryIO

import orjson

# Imported by name, not looked up as `module.NAME`: `_line` runs once per captured request.
from mlops_contracts.capture import (
    CAPTURE_DATA, CUSTOM_ATTRIBUTES, DATA, ENCODING, ENDPOINT_INPUT, ENDPOINT_OUTPUT, EVENT_ID, EVENT_METADATA,
    EVENT_VERSION, EVENT_VERSION_VALUE, FILE_SUFFIX, HOUR_FORMAT, INFERENCE_ID, INFERENCE_TIME, MODE, MODE_INPUT,
    MODE_OUTPUT, MODEL_VERSION, OBSERVED_CONTENT_TYPE, PARTIAL_SUFFIX, VARIANT,
)

log = logging.getLogger("mlops_serving")

# Records formatted per chunk (~5 us each) before the writer yields the GIL to the event loop.
_CHUNK = 32
# A real sleep, not sleep(0): a thread that releases the GIL and immediately asks for it again
# usually gets it back, and the loop then waits for the 5 ms switch interval.
_YIELD_S = 0.0002
_RECORD_OVERHEAD = 512


class IdGenerator:
    """UUID-formatted ids: a random per-process prefix (version 4 layout) plus a 48-bit counter.

    `str(uuid.uuid4())` costs about 7 us here (a getrandom syscall per id), a tenth of the
    per-request budget; ids only need to be unique, which the counter guarantees within the
    process and the 74 random bits of the prefix across processes.
    """

    def __init__(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = iter(range(1 << 48))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):012x}"


class CaptureWriter:
    """Bounded, asynchronous writer of capture records; `offer` never blocks."""

    def __init__(
        self,
        *,
        root: Path,
        endpoint: str,
        variant: str,
        sample: float = 1.0,
        queue_bytes: int = 64 * 1024 * 1024,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_s: float = 60.0,
        flush_interval_s: float = 0.1,
    ) -> None:
        self.root = Path(root)
        self.endpoint = endpoint
        self.variant = variant
        self.model_version = ""
        self._sample = sample
        self._queue_bytes = queue_bytes
        self._rotate_bytes = rotate_bytes
        self._rotate_s = rotate_s
        self._flush_interval_s = flush_interval_s
        self._queue: deque[tuple] = deque()
        # Each counter has one writing thread: the loop (enqueued_bytes, records, dropped,
        # sampled_out) or the writer (dequeued_bytes, written, write_errors).
        self._enqueued_bytes = 0
        self._dequeued_bytes = 0
        self.records = 0
        self.dropped = 0
        self.sampled_out = 0
        self.written = 0
        self.write_errors = 0
        self._accepting = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._file_bytes = 0
        self._file_opened = 0.0
        self._file_hour = ""
        self._event_id = IdGenerator()
        self._second = -1
        self._second_text = ""
        self._iso_when = -1.0
        self._iso_text = ""
        self._last_error_log = 0.0

    # ------------------------------------------------------------------ loop side
    def start(self) -> None:
        """Start the writer thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def offer(
        self,
        *,
        when: float,
        inference_id: str,
        custom_attributes: str | None,
        input_type: str,
        input_encoding: str,
        input_body: bytes,
        output_type: str,
        output_encoding: str,
        output_body: bytes,
    ) -> None:
        """Queue one prediction for capture, or count it as sampled out or dropped."""
        if self._sample < 1.0 and random.random() >= self._sample:
            self.sampled_out += 1
            return
        size = len(input_body) + len(output_body) + _RECORD_OVERHEAD
        if not self._accepting or self._enqueued_bytes - self._dequeued_bytes + size > self._queue_bytes:
            self.dropped += 1
            return
        self._queue.append((when, inference_id, custom_attributes, input_type, input_encoding, input_body,
                            output_type, output_encoding, output_body, size))
        self._enqueued_bytes += size
        self.records += 1

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop accepting, write everything queued, close the current file."""
        self._accepting = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("capture writer did not finish within %.1f s; %d records unwritten",
                          timeout, len(self._queue))

    def stats(self) -> dict[str, int]:
        """Counters for /metrics."""
        return {
            "records": self.records,
            "written": self.written,
            "dropped": self.dropped,
            "sampled_out": self.sampled_out,
            "write_errors": self.write_errors,
        }

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self._flush_interval_s)
            try:
                self._drain()
                if self._file is not None and time.time() - self._file_opened >= self._rotate_s:
                    self._close_file()
            except Exception:  # a bug here must not kill capture for the rest of the process
                log.exception("capture writer failed")
            if stopping and not self._queue:
                break
        self._close_file()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            lines = []
            size = 0
            for _ in range(min(len(queue), _CHUNK)):
                record = queue.popleft()
                size += record[-1]
                lines.append(self._line(record))
            self._dequeued_bytes += size
            self._write(b"".join(lines), len(lines))
            if queue:
                time.sleep(_YIELD_S)

    def _line(self, record: tuple) -> bytes:
        (when, inference_id, custom_attributes, input_type, input_encoding, input_body,
         output_type, output_encoding, output_body, _size) = record
        metadata = {
            EVENT_ID: self._event_id(),
            INFERENCE_ID: inference_id,
            INFERENCE_TIME: self._iso(when),
            MODEL_VERSION: self.model_version,
            VARIANT: self.variant,
        }
        if custom_attributes is not None:
            metadata[CUSTOM_ATTRIBUTES] = custom_attributes
        # A nested dict through orjson measured faster (5.3 us/record) than filling a byte
        # template with separately escaped fields (6.0 us/record).
        return orjson.dumps(
            {
                CAPTURE_DATA: {
                    ENDPOINT_INPUT: {
                        OBSERVED_CONTENT_TYPE: input_type,
                        MODE: MODE_INPUT,
                        DATA: input_body.decode("utf-8", "replace"),
                        ENCODING: input_encoding,
                    },
                    ENDPOINT_OUTPUT: {
                        OBSERVED_CONTENT_TYPE: output_type,
                        MODE: MODE_OUTPUT,
                        DATA: output_body.decode("utf-8", "replace"),
                        ENCODING: output_encoding,
                    },
                },
                EVENT_METADATA: metadata,
                EVENT_VERSION: EVENT_VERSION_VALUE,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )

    def _iso(self, when: float) -> str:
        # Every request of a batch has the same completion time, so most calls hit this cache.
        if when == self._iso_when:
            return self._iso_text
        self._iso_when = when
        second, millis = divmod(round(when * 1000), 1000)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._iso_text = f"{self._second_text}.{millis:03d}Z"
        return self._iso_text

    def _write(self, data: bytes, n_records: int) -> None:
        now = time.time()
        try:
            handle = self._file_for(now)
            handle.write(data)
            handle.flush()
        except OSError as exc:
            self.write_errors += n_records
            if now - self._last_error_log > 10.0:
                self._last_error_log = now
                log.error("capture write failed (%d records lost so far): %s", self.write_errors, exc)
            self._abandon_file()
            return
        self.written += n_records
        self._file_bytes += len(data)
        if self._file_bytes >= self._rotate_bytes:
            self._close_file()

    def _file_for(self, now: float) -> BinaryIO:
        tm = time.gmtime(now)
        hour = time.strftime(HOUR_FORMAT, tm)
        if self._file is not None and (hour != self._file_hour or now - self._file_opened >= self._rotate_s):
            self._close_file()
        if self._file is None:
            directory = self.root / self.endpoint / self.variant / hour
            directory.mkdir(parents=True, exist_ok=True)
            millis = int((now % 1) * 1000)
            name = f"{tm.tm_min:02d}-{tm.tm_sec:02d}-{millis:03d}-{uuid.uuid4()}{FILE_SUFFIX}"
            self._file_path = directory / name
            self._file = open(str(self._file_path) + PARTIAL_SUFFIX, "ab")
            self._file_bytes = 0
            self._file_opened = now
            self._file_hour = hour
        return self._file

    def _close_file(self) -> None:
        if self._file is None:
            return
        handle, path = self._file, self._file_path
        self._file = None
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(str(path) + PARTIAL_SUFFIX, path)
        except OSError as exc:
            log.error("capture file %s could not be closed: %s", path, exc)

    def _abandon_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # the write already failed and was counted; the next record opens a new file
            self._file = None
