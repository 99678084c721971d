"""Prediction capture contract, serving -> monitoring (docs/contracts.md section 3).

JSON lines in SageMaker's data-capture format, one object per request, filed the way SageMaker
files its capture in S3: `{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl`.
The serving container writes them (`mlops_serving.capture`), the monitoring job reads them
(`mlops_serving.monitor.captures`); ground truth for the quality job uses the same event metadata.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (both container images install this package on its
own).
"""
from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

# Top level of a record.
CAPTURE_DATA = "captureData"
EVENT_METADATA = "eventMetadata"
EVENT_VERSION = "eventVersion"
EVENT_VERSION_VALUE = "0"
"""The only `eventVersion` SageMaker writes (its format version)."""

# captureData members and their fields.
ENDPOINT_INPUT = "endpointInput"
ENDPOINT_OUTPUT = "endpointOutput"
OBSERVED_CONTENT_TYPE = "observedContentType"
MODE = "mode"
DATA = "data"
ENCODING = "encoding"
MODE_INPUT = "INPUT"
MODE_OUTPUT = "OUTPUT"
ENCODING_JSON = "JSON"
ENCODING_CSV = "CSV"
ENCODING_BASE64 = "BASE64"
"""Never written by our server; SageMaker's capture of other content types uses it."""
ENCODINGS: tuple[str, ...] = (ENCODING_JSON, ENCODING_CSV, ENCODING_BASE64)
"""The encodings a reader accepts."""

# eventMetadata fields. MODEL_VERSION and VARIANT are our additions to SageMaker's format.
EVENT_ID = "eventId"
INFERENCE_ID = "inferenceId"
INFERENCE_TIME = "inferenceTime"
MODEL_VERSION = "modelVersion"
VARIANT = "variant"
CUSTOM_ATTRIBUTES = "customAttributes"

# Ground truth (SageMaker's merge format), joined to captures by EVENT_METADATA.EVENT_ID.
GROUND_TRUTH_DATA = "groundTruthData"

FILE_SUFFIX = ".jsonl"
"""Capture files end in it; a file still being written carries PARTIAL_SUFFIX after it."""
PARTIAL_SUFFIX = ".partial"
"""Appended while a file is written, removed by the rename that closes it: readers skip such files."""
HOUR_FORMAT = "%Y/%m/%d/%H"
"""strftime format of the hour directories under `{root}/{endpoint}/{variant}/` (UTC)."""

TIME_EXAMPLE = "2026-11-22T06:30:00.123Z"
"""How `inferenceTime` is written (UTC, milliseconds); quoted in the errors of `parse_time`."""


# Decoding, shared by the readers of both containers (they may not import each other).

def decode_body(part: Any, *, encodings: Collection[str] = ENCODINGS) -> tuple[str, str]:
    """(text, `JSON` or `CSV`) of a capture part (`endpointInput`, `endpointOutput`, `groundTruthData`).

    A missing `encoding` means JSON. A `BASE64` part is decoded (UTF-8) and then read as CSV when
    its `observedContentType` mentions csv, as JSON otherwise. `encodings` are the wire encodings
    the caller accepts (a subset of ENCODINGS); any other raises ValueError naming the allowed ones,
    as does a part without string `data` or with BASE64 data that does not decode.
    """
    unknown = [e for e in encodings if e not in ENCODINGS]
    assert not unknown, f"encodings {unknown} are not capture encodings {ENCODINGS}"
    if not isinstance(part, dict):
        raise ValueError(f"no data: a capture part is a JSON object, got {type(part).__name__}")
    if not isinstance(part.get(DATA), str):
        got = type(part[DATA]).__name__ if DATA in part else "missing"
        raise ValueError(f"no data: {DATA!r} is {got}; allowed a string")
    text = part[DATA]
    encoding = str(part.get(ENCODING, ENCODING_JSON)).upper()
    if encoding not in encodings:
        raise ValueError(f"encoding {encoding!r}; allowed {', '.join(encodings)}")
    if encoding == ENCODING_BASE64:
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"bad BASE64 data: {exc}") from None
        content_type = str(part.get(OBSERVED_CONTENT_TYPE, "")).lower()
        encoding = ENCODING_CSV if "csv" in content_type else ENCODING_JSON
    return text, encoding


def ground_truth_values(
    part: Any, *, encodings: Collection[str] = ENCODINGS, loads: Callable[[str], Any] = json.loads
) -> list[Any]:
    """The labels of one ground-truth record's `groundTruthData`, one per row of the request, as written.

    CSV: every field of every line (`1`, `1,0` or one per line), as strings. JSON: a list
    (`[1, 0]`) is the labels, `{"label": x}` is `x`'s labels, anything else is one label (`1`).
    `loads` parses the JSON (a faster drop-in such as orjson's may be given); its errors are
    ValueErrors. Nothing is checked as a number here: callers count what they cannot use.
    """
    text, encoding = decode_body(part, encodings=encodings)
    if encoding == ENCODING_CSV:
        return [value for row in csv.reader(io.StringIO(text, newline="")) for value in row]
    doc = loads(text)
    if isinstance(doc, dict) and "label" in doc:
        doc = doc["label"]
    return doc if isinstance(doc, list) else [doc]


def ground_truth_record(
    doc: Any, *, encodings: Collection[str] = ENCODINGS, loads: Callable[[str], Any] = json.loads
) -> tuple[str, list[Any]]:
    """(event id, labels) of one parsed ground-truth line: `eventMetadata.eventId` and `ground_truth_values`.

    Raises KeyError or TypeError where the record lacks those fields, ValueError where the id is
    not a non-empty string, there are no labels, or the data does not decode.
    """
    event_id = doc[EVENT_METADATA][EVENT_ID]
    labels = ground_truth_values(doc[GROUND_TRUTH_DATA], encodings=encodings, loads=loads)
    if not isinstance(event_id, str) or not event_id or not labels:
        raise ValueError("no eventId or no labels")
    return event_id, labels


def ground_truth_records(
    lines: Iterable[tuple[str, int, str]],
    *,
    problem: Callable[[str], None],
    encodings: Collection[str] = ENCODINGS,
    loads: Callable[[str], Any] = json.loads,
) -> Iterator[tuple[str, list[Any]]]:
    """(event id, labels) of each ground-truth line of `(file, line number, line)`, in order.

    Blank lines are skipped. A line that is not a ground-truth record is reported to `problem` as
    `"{file}:{number}: {why}"` and skipped, so that the caller counts it rather than guesses.
    """
    for name, number, line in lines:
        if not line.strip():
            continue
        try:
            record = ground_truth_record(loads(line), encodings=encodings, loads=loads)
        except (ValueError, KeyError, TypeError) as exc:
            problem(f"{name}:{number}: {exc}")
            continue
        yield record


def ground_truth_line(event_id: str, labels: list[Any]) -> str:
    """One ground-truth record as SageMaker's merge format writes it (a JSON line without the newline):
    the labels of one request's rows as CSV, joined to its capture by `event_id` (the request's
    inference id, or the capture's own event id). `ground_truth_record` reads it back."""
    if not isinstance(event_id, str) or not event_id:
        raise ValueError(f"event id {event_id!r}: a non-empty string is needed")
    if not labels:
        raise ValueError(f"event {event_id}: no labels; give one per row of the request")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(labels)
    return json.dumps({
        GROUND_TRUTH_DATA: {DATA: buffer.getvalue(), ENCODING: ENCODING_CSV},
        EVENT_METADATA: {EVENT_ID: event_id},
        EVENT_VERSION: EVENT_VERSION_VALUE,
    })


def parse_time(raw: Any, *, spaces: bool = False) -> datetime:
    """An ISO 8601 time (`inferenceTime`) as an aware UTC datetime; no zone means UTC.

    `Z` and offsets are read (an offset is converted to UTC). With `spaces`, a time that does not
    parse as written is tried again without its whitespace, for Model Monitor's documented
    example `"2019-12-01T16: 20: 00Z"`. Anything else, non-strings included, raises ValueError.
    """
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not an ISO 8601 time string; allowed e.g. {TIME_EXAMPLE}")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None and spaces:
        try:
            value = datetime.fromisoformat(re.sub(r"\s+", "", raw))
        except ValueError:
            value = None
    if value is None:
        raise ValueError(f"{raw!r} is not an ISO 8601 time; allowed e.g. {TIME_EXAMPLE}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

