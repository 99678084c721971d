"""Request bodies -> validated float32 model input; predictions -> response bodies.

Accepted request bodies (`Content-Type`):

- `application/json`:
  - `{"instances": [[v1, ..., vF], ...]}`: positional rows in schema order (KServe v1 / TF Serving
    "row" format); String features as strings.
  - `{"instances": [{"name": value, ...}, ...]}`: records keyed by feature name (KServe v1 with
    named inputs; SageMaker's `{"features": [...]}` row object is accepted too, unless the model has
    a feature called `features`).
  - A bare list of such rows, a single positional row (`[v1, ..., vF]`) or a single record object.
- `text/csv`: one row per line in schema order, no header; an empty field is null.

Every value is checked against the schema: row length, missing or unknown names, numbers for numeric
features (JSON booleans are not numbers), null only where `nullable`, finite and inside the float32
range, whole numbers for `Integral`. An unknown String category is valid and encodes to 0 (contract §2).
The resulting matrix is float32 `[N, F]` in the contract's encoding, as raw bytes.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import array
import csv
import io
import math
import struct
from itertools import chain
from typing import Any

import numpy as np
import orjson
from mlops_contracts import capture
from mlops_contracts.feature_schema import FRACTIONAL, INTEGRAL, STRING

from .errors import InvalidInputError, MalformedBodyError, NotAcceptableError, UnsupportedMediaTypeError
from .schema import FeatureSchema

FLT_MAX = float(np.finfo(np.float32).max)
NAN = float("nan")

# The body formats double as the capture records' `encoding` (the app records them as they are).
JSON = capture.ENCODING_JSON
CSV = capture.ENCODING_CSV
MEDIA_TYPES = {JSON: b"application/json", CSV: b"text/csv"}
ACCEPTED = ["application/json", "text/csv"]

_FLOAT32 = struct.Struct("f")
# struct packs a double beyond the float32 range as infinity (it does not raise).
_INF32 = _FLOAT32.pack(math.inf)
_NINF32 = _FLOAT32.pack(-math.inf)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_CHARSETS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def body_format(content_type: bytes | None) -> str:
    """`JSON` or `CSV` from a Content-Type value; a missing header means JSON."""
    if content_type is None:
        return JSON
    media, _, params = content_type.partition(b";")
    media = media.strip().lower()
    if media == b"application/json":
        fmt = JSON
    elif media == b"text/csv":
        fmt = CSV
    else:
        raise UnsupportedMediaTypeError(
            f"unsupported content type {content_type.decode('latin-1')!r}",
            field="Content-Type",
            allowed=ACCEPTED,
        )
    if params:
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"charset" and value.strip().strip(b'"').lower() not in _CHARSETS:
                raise UnsupportedMediaTypeError(
                    f"unsupported charset in {content_type.decode('latin-1')!r}",
                    field="Content-Type",
                    allowed=["charset=utf-8"],
                )
    return fmt


def response_format(accept: bytes | None) -> str:
    """`JSON` or `CSV` for an Accept header (q-values honoured); a missing header means JSON."""
    if accept is None or accept == b"*/*" or accept == b"application/json":
        return JSON
    best: tuple[float, int] | None = None
    choice = None
    for position, item in enumerate(accept.split(b",")):
        media, _, params = item.partition(b";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        if media in (b"application/json", b"application/*", b"*/*"):
            fmt = JSON
        elif media in (b"text/csv", b"text/*"):
            fmt = CSV
        else:
            continue
        rank = (q, -position)
        if best is None or rank > best:
            best, choice = rank, fmt
    if choice is None:
        raise NotAcceptableError(
            f"cannot produce any of {accept.decode('latin-1')!r}", field="Accept", allowed=ACCEPTED
        )
    return choice


def encode_predictions(preds: np.ndarray, fmt: str) -> bytes:
    """Response body for one request's predictions (float32, shortest round-trip digits)."""
    if fmt is JSON:
        return orjson.dumps({"predictions": preds}, option=_NUMPY)
    # orjson writes "[a,b,...]"; numbers contain no commas, so this is one value per line.
    return orjson.dumps(preds, option=_NUMPY)[1:-1].replace(b",", b"\n") + b"\n"


class RequestDecoder:
    """Turns a request body into `(n_rows, float32 bytes)` for the model, or raises a 4xx error."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.schema = schema
        self.features = schema.features
        self.names = schema.names
        self.n_features = len(schema.features)
        self.index = {name: j for j, name in enumerate(self.names)}
        self._string_cols = [
            (j, {c: float(k + 1) for k, c in enumerate(f.categories)})
            for j, f in enumerate(schema.features)
            if f.type == STRING
        ]
        self._integral_cols = [j for j, f in enumerate(schema.features) if f.type == INTEGRAL]
        self._accepts_features_key = "features" not in self.index
        self._row_struct = struct.Struct(f"{self.n_features}f")
        self._structs: dict[int, struct.Struct] = {}

    # ------------------------------------------------------------------ JSON
    def decode_json(self, body: bytes) -> tuple[int, bytes]:
        """Validate and encode a JSON body."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedBodyError(f"body is not valid JSON: {exc}") from None
        rows = self._rows_of(doc)
        # JSON has no NaN or Infinity, so a packed row is valid unless struct refused a value
        # (null, string, container), packed a number beyond float32 as infinity, or took a boolean
        # as 0/1. A body without boolean tokens is therefore packed directly and checked for
        # infinities; anything refused or suspicious, and every body that may hold a boolean, gets
        # the exact per-value check that names row and field.
        # Single-byte scans first: "u" and "f" occur in no number and not in "instances".
        fast = (b"u" not in body and b"f" not in body) or (b"true" not in body and b"false" not in body)
        if fast:
            packed = self._pack_rows(rows)
            if packed is not None:
                return len(rows), packed
        parts = []
        for i, row in enumerate(rows):
            values = self._row_values(i, row)
            packed = self._pack_rows([values]) if fast else None
            if packed is None:
                packed = self._row_struct.pack(*self._checked(i, values))
            parts.append(packed)
        return len(rows), b"".join(parts)

    def json_rows(self, body: bytes) -> list:
        """The rows of a JSON body, parsed but not yet validated (for the feature lookup)."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise MalformedBodyError(f"body is not valid JSON: {exc}") from None
        return self._rows_of(doc)

    def decode_rows(self, rows: list) -> tuple[int, bytes]:
        """Validate and encode parsed rows with the exact per-value check (the bytes `decode_json`
        gives the same values)."""
        return len(rows), b"".join(
            self._row_struct.pack(*self._checked(i, self._row_values(i, row))) for i, row in enumerate(rows)
        )

    def _pack_rows(self, rows: list) -> bytes | None:
        """float32 bytes of positional rows of plain values; None means: run the exact check."""
        n = self.n_features
        n_rows = len(rows)
        if n_rows == 1:
            if type(rows[0]) is not list or len(rows[0]) != n:
                return None
        elif set(map(type, rows)) != {list} or set(map(len, rows)) != {n}:
            return None
        if self._string_cols:
            encoded = []
            for row in rows:
                row = row.copy()
                for j, categories in self._string_cols:
                    value = row[j]
                    if type(value) is not str:
                        return None
                    row[j] = categories.get(value, 0.0)
                encoded.append(row)
            rows = encoded
        try:
            if n_rows == 1:
                packed = self._row_struct.pack(*rows[0])
            else:
                packed = self._rows_struct(n_rows).pack(*chain.from_iterable(rows))
        except (struct.error, OverflowError):
            return None
        # The byte patterns can also straddle two values; the exact check then clears the row.
        if _INF32 in packed or _NINF32 in packed:
            return None
        for j in self._integral_cols:
            for row in rows:
                value = row[j]
                if type(value) is float and not value.is_integer():
                    return None
        return packed

    def _rows_struct(self, n_rows: int) -> struct.Struct:
        packer = self._structs.get(n_rows)
        if packer is None:
            packer = struct.Struct(f"{n_rows * self.n_features}f")
            if len(self._structs) < 256:  # batch sizes repeat; arbitrary sizes do not grow memory
                self._structs[n_rows] = packer
        return packer

    def _row_values(self, i: int, row: Any) -> list:
        """A row as a positional list of the right length, or a 400 naming the row."""
        if type(row) is dict:
            row = self._positional(i, row)
        elif type(row) is not list:
            raise InvalidInputError(
                f"row {i} must be an array of {self.n_features} values or an object keyed by feature name",
                row=i,
                received=json_type(row),
            )
        if len(row) != self.n_features:
            raise InvalidInputError(
                f"row {i} has {len(row)} values, expected {self.n_features}",
                row=i,
                allowed=self.n_features,
                received=len(row),
            )
        return row

    def _rows_of(self, doc: Any) -> list:
        if type(doc) is dict:
            if "instances" in doc and "instances" not in self.index:
                if len(doc) != 1:
                    extra = sorted(k for k in doc if k != "instances")[0]
                    raise MalformedBodyError(
                        f"unknown top-level key {extra!r}", field=extra, allowed=["instances"]
                    )
                rows = doc["instances"]
                if type(rows) is not list:
                    raise MalformedBodyError(
                        "'instances' must be an array of rows",
                        field="instances",
                        received=json_type(rows),
                    )
            else:
                rows = [doc]
        elif type(doc) is list:
            # A list of scalars is one positional row; a list of arrays/objects is many rows.
            if not doc:
                raise MalformedBodyError("the request holds no rows")
            rows = doc if type(doc[0]) in (list, dict) else [doc]
        else:
            raise MalformedBodyError(
                "body must be a JSON object or array",
                allowed=['{"instances": [...]}', "[row, ...]", "{feature: value, ...}"],
                received=json_type(doc),
            )
        if not rows:
            raise MalformedBodyError("the request holds no rows", field="instances")
        return rows

    def _positional(self, i: int, record: dict) -> list:
        if len(record) == self.n_features:
            try:
                return [record[name] for name in self.names]
            except KeyError:
                pass
        if self._accepts_features_key and len(record) == 1 and "features" in record:
            values = record["features"]
            if type(values) is not list:
                raise InvalidInputError(
                    f"row {i}: 'features' must be an array of {self.n_features} values",
                    row=i,
                    field="features",
                    received=json_type(values),
                )
            return values
        for name in record:
            if name not in self.index:
                raise InvalidInputError(
                    f"row {i}: unknown feature {name!r}", row=i, field=name, allowed=list(self.names)
                )
        for name in self.names:
            if name not in record:
                raise InvalidInputError(
                    f"row {i}: missing feature {name!r}", row=i, field=name, allowed=list(self.names)
                )
        raise AssertionError("unreachable: record neither complete nor wrong")

    def _checked(self, i: int, row: list) -> list[float]:
        """Exact per-value validation and encoding of one positional row of decoded JSON values."""
        out: list[float] = []
        for j, feature in enumerate(self.features):
            value = row[j]
            if value is None:
                if not feature.nullable:
                    raise InvalidInputError(
                        f"row {i}: feature {feature.name!r} is not nullable",
                        row=i,
                        field=feature.name,
                        allowed=_allowed(feature.type, nullable=False),
                        received="null",
                    )
                out.append(NAN)
            elif feature.type == STRING:
                if type(value) is not str:
                    raise InvalidInputError(
                        f"row {i}: feature {feature.name!r} must be a string",
                        row=i,
                        field=feature.name,
                        allowed=_allowed(STRING, nullable=feature.nullable),
                        received=json_type(value),
                    )
                out.append(self._category(j, value))
            else:
                if type(value) is not int and type(value) is not float:
                    raise InvalidInputError(
                        f"row {i}: feature {feature.name!r} must be a number",
                        row=i,
                        field=feature.name,
                        allowed=_allowed(feature.type, nullable=feature.nullable),
                        received=json_type(value),
                    )
                out.append(self._number(i, feature.name, feature.type, float(value)))
        return out

    def _category(self, j: int, value: str) -> float:
        for col, categories in self._string_cols:
            if col == j:
                return categories.get(value, 0.0)
        raise AssertionError(f"column {j} is not a String feature")

    @staticmethod
    def _number(i: int, name: str, ftype: str, value: float) -> float:
        if not math.isfinite(value) or not _fits_float32(value):
            raise InvalidInputError(
                f"row {i}: feature {name!r} must be a finite number within the float32 range",
                row=i,
                field=name,
                allowed=f"-{FLT_MAX:.7g}..{FLT_MAX:.7g}",
                received=repr(value),
            )
        if ftype == INTEGRAL and not value.is_integer():
            raise InvalidInputError(
                f"row {i}: feature {name!r} must be a whole number",
                row=i,
                field=name,
                allowed="integer",
                received=repr(value),
            )
        return value

    # ------------------------------------------------------------------ CSV
    def decode_csv(self, body: bytes) -> tuple[int, bytes]:
        """Validate and encode a CSV body (rows in schema order, no header, blank lines skipped)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedBodyError(f"body is not valid UTF-8: {exc}") from None
        n = self.n_features
        out = array.array("f")
        rows = 0
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        try:
            for record in reader:
                if not record:
                    continue
                i = rows
                if len(record) != n:
                    raise InvalidInputError(
                        f"row {i} has {len(record)} values, expected {n}",
                        row=i,
                        allowed=n,
                        received=len(record),
                    )
                out.extend(self._csv_value(i, j, field) for j, field in enumerate(record))
                rows += 1
        except csv.Error as exc:
            raise MalformedBodyError(f"body is not valid CSV (line {reader.line_num}): {exc}") from None
        if rows == 0:
            raise MalformedBodyError("the request holds no rows")
        return rows, out.tobytes()

    def _csv_value(self, i: int, j: int, text: str) -> float:
        feature = self.features[j]
        stripped = text.strip()
        if not stripped:
            if not feature.nullable:
                raise InvalidInputError(
                    f"row {i}: feature {feature.name!r} is not nullable",
                    row=i,
                    field=feature.name,
                    allowed=_allowed(feature.type, nullable=False),
                    received="empty",
                )
            return NAN
        if feature.type == STRING:
            return self._category(j, text)
        try:
            if "_" in stripped:
                raise ValueError(stripped)
            value = float(stripped)
        except ValueError:
            raise InvalidInputError(
                f"row {i}: feature {feature.name!r} must be a number",
                row=i,
                field=feature.name,
                allowed=_allowed(feature.type, nullable=feature.nullable),
                received=stripped[:64],
            ) from None
        return self._number(i, feature.name, feature.type, value)


def _fits_float32(value: float) -> bool:
    # The same rule as the fast path: whatever rounds to a finite float32 is accepted.
    try:
        return math.isfinite(_FLOAT32.unpack(_FLOAT32.pack(value))[0])
    except OverflowError:
        return False


def _allowed(ftype: str, *, nullable: bool) -> str:
    base = {STRING: "string", INTEGRAL: "integer", FRACTIONAL: "number"}[ftype]
    return f"{base} or null" if nullable else base
