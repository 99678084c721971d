"""Prediction capture contract, serving -> monitoring (docs/contracts.md section 3).

JSON lines in SageMaker's data-capture format, one object per request, filed the way SageMaker
files its capture in S3: `{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl`.
The serving container writes them (`mlops_serving.capture`), the monitoring job reads them
(`mlops_serving.monitor.captures`); ground truth for the quality job uses the same event metadata.
"""
from __future__ import annotations

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
