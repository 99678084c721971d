"""Domain errors and the one table that maps them to HTTP status codes.

Request handling raises these; only `ErrorMapper` turns an exception into a status and a JSON body
(KServe's `add_exception_handler` pattern). Anything not in the table is a bug in the server: it
becomes a 500 and is logged with its traceback, never swallowed.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

log = logging.getLogger("mlops_serving")


class ServingError(Exception):
    """Base of the errors a client can cause; carries the fields of the JSON error body."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        row: int | None = None,
        allowed: Any = None,
        received: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.row = row
        self.allowed = allowed
        self.received = received

    def body(self) -> dict[str, Any]:
        """The JSON error body: `error` always, the other keys when known."""
        out: dict[str, Any] = {"error": self.message}
        for key in ("row", "field", "allowed", "received"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class InvalidInputError(ServingError):
    """The request body does not match the model's feature schema (row and field say where)."""


class MalformedBodyError(ServingError):
    """The body is not valid JSON/CSV/UTF-8, or not shaped like any accepted format."""


class MalformedHttpError(ServingError):
    """The bytes on the connection are not a valid HTTP/1.x request."""


class InvalidHeaderError(ServingError):
    """A header we interpret (inference id, custom attributes) has an invalid value."""


class PayloadTooLargeError(ServingError):
    """The body is larger than the configured limit."""


class HeadersTooLargeError(ServingError):
    """The request line and headers are larger than the server reads."""


class UnsupportedMediaTypeError(ServingError):
    """The Content-Type (or Content-Encoding) of the body is not one we decode."""


class NotAcceptableError(ServingError):
    """The Accept header names no type we can produce."""


class RouteNotFoundError(ServingError):
    """No such path."""


class MethodNotAllowedError(ServingError):
    """The path exists but not for this method; `allowed` lists the methods."""


class ModelNotReadyError(ServingError):
    """The model is still loading, or failed to load."""


class RecordNotFoundError(ServingError):
    """Feature lookup: the online store holds no record for some identifiers (`received` lists them)."""


class InvalidRecordError(ServingError):
    """Feature lookup: a fetched record cannot complete the row (a required feature is absent, or a
    value is not of the feature's type)."""


class FeatureLookupTimeoutError(ServingError):
    """Feature lookup: the online store did not answer within the configured timeout."""


class FeatureStoreError(ServingError):
    """Feature lookup: the online store refused or failed the request (access, throttling, network)."""


class ModelLoadError(Exception):
    """The model artifact is missing, of an unknown format version, or does not run."""


DEFAULT_STATUS: dict[type[BaseException], int] = {
    InvalidInputError: 400,
    MalformedBodyError: 400,
    MalformedHttpError: 400,
    InvalidHeaderError: 400,
    RouteNotFoundError: 404,
    MethodNotAllowedError: 405,
    NotAcceptableError: 406,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    HeadersTooLargeError: 431,
    # The request is valid and the route exists, but it names a record the store lacks (or holds
    # unusable data for): 422, not 404, which means "no such route" here.
    RecordNotFoundError: 422,
    InvalidRecordError: 422,
    # A dependency failed, not this server: the gateway statuses, never a 500.
    FeatureStoreError: 502,
    ModelNotReadyError: 503,
    FeatureLookupTimeoutError: 504,
}


class ErrorMapper:
    """Exception class -> HTTP status, looked up along the exception's MRO."""

    def __init__(self, table: dict[type[BaseException], int] | None = None) -> None:
        self._table = dict(DEFAULT_STATUS if table is None else table)

    def add_exception_handler(self, exc_type: type[BaseException], status: int) -> None:
        """Map `exc_type` (and its subclasses) to `status`."""
        if not 400 <= status <= 599:
            raise ValueError(f"status {status} for {exc_type.__name__}: allowed 400..599")
        self._table[exc_type] = status

    def status_for(self, exc: BaseException) -> int | None:
        """The mapped status, or None when the exception is not a known domain error."""
        for klass in type(exc).__mro__:
            status = self._table.get(klass)
            if status is not None:
                return status
        return None

    def to_response(self, exc: BaseException, *, context: str) -> tuple[int, bytes]:
        """Status and JSON body for `exc`; unknown exceptions are logged and become 500."""
        status = self.status_for(exc)
        if status is not None and isinstance(exc, ServingError):
            return status, orjson.dumps(exc.body())
        if status is not None:
            return status, orjson.dumps({"error": str(exc)})
        log.error("unhandled error while %s", context, exc_info=exc)
        return 500, orjson.dumps({"error": "internal server error", "type": type(exc).__name__})
