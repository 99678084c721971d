"""The application: routes, the model's lifecycle, and what each request does.

Transport-agnostic: `httpserver.py` parses requests into `Request` objects, calls `App.handle`, and writes
whatever `App.respond` puts on the request. Built by `create_app(settings)`.

Routes (the SageMaker inference container contract plus metrics):

- `GET /ping`: 200 once the model is loaded; 503 while loading and after a failed load.
- `POST /invocations`: predictions, see `codec.py` for the body formats.
- `GET /metrics`: Prometheus text format.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import time
from typing import Any

from .batcher import Batcher
from .capture import CaptureWriter, IdGenerator
from .codec import CSV, JSON, MEDIA_TYPES, RequestDecoder, body_format, encode_predictions, response_format
from .errors import (
    ErrorMapper,
    InvalidHeaderError,
    ModelLoadError,
    MethodNotAllowedError,
    ModelNotReadyError,
    RouteNotFoundError,
    UnsupportedMediaTypeError,
)
from .features import FeatureLookup, Found, OnlineStore, Pending, connect
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics, label_value
from .model import ModelBundle, load_bundle
from .settings import Settings

log = logging.getLogger("mlops_serving")
access_log = logging.getLogger("mlops_serving.access")

LOADING, READY, FAILED = "loading", "ready", "failed"
JSON_TYPE = b"application/json"
_PING_OK = b'{"status":"healthy"}'
_MAX_ID_LENGTH = 64
# Exact Content-Type values that need no parsing (None: the header is absent, which means JSON).
_KNOWN_CONTENT_TYPES = {None: JSON, b"application/json": JSON, b"text/csv": CSV}
_MAX_ATTRIBUTES_LENGTH = 1024


class Request:
    """One HTTP request and, once known, its response (filled by `App.respond`)."""

    __slots__ = (
        "conn", "started", "method", "url", "http10", "keep_alive", "body", "body_parts", "body_len",
        "content_type", "content_length", "content_encoding", "accept", "expect", "connection", "custom_attributes",
        "sm_inference_id", "route", "n_rows", "features", "in_format", "out_format", "inference_id",
        "attributes", "response_body", "status", "response_type", "response_headers", "capture_body",
    )

    def __init__(self, conn: Any, started: float) -> None:
        self.conn = conn
        self.started = started
        self.url = b""
        self.method = b""
        self.http10 = False
        self.keep_alive = True
        self.body = b""
        self.body_parts: list[bytes] = []
        self.body_len = 0
        self.content_type = None
        self.content_length = None
        self.content_encoding = None
        self.accept = None
        self.expect = None
        self.connection = None
        self.custom_attributes = None
        self.sm_inference_id = None
        self.route = "other"
        self.response_body: bytes | None = None
        self.status = 0
        self.response_type = JSON_TYPE
        self.response_headers = b""
        self.capture_body: bytes | None = None


class App:
    """Routes requests, owns the model, the batcher, the capture writer and the metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.errors = ErrorMapper()
        self.metrics = Metrics()
        self.state = LOADING
        self.load_error: str | None = None
        self.bundle: ModelBundle | None = None
        self.decoder: RequestDecoder | None = None
        self.batcher: Batcher | None = None
        self.capture: CaptureWriter | None = None
        self.lookup: FeatureLookup | None = None
        if settings.capture_dir is not None:
            self.capture = CaptureWriter(
                root=settings.capture_dir,
                endpoint=settings.endpoint_name,
                variant=settings.variant,
                sample=settings.capture_sample,
                queue_bytes=settings.capture_queue_bytes,
                rotate_bytes=settings.capture_rotate_bytes,
                rotate_s=settings.capture_rotate_s,
            )
            self.metrics.capture_stats = self.capture.stats
        self._new_id = IdGenerator()
        self._access_log = settings.access_log
        # path -> (route name for metrics and logs, {method: handler})
        self._routes = {
            b"/ping": ("ping", {b"GET": self._ping}),
            b"/invocations": ("invocations", {b"POST": self._invocations}),
            b"/metrics": ("metrics", {b"GET": self._metrics}),
        }

    def add_exception_handler(self, exc_type: type[BaseException], status: int) -> None:
        """Map another exception class to an HTTP status (see `ErrorMapper`)."""
        self.errors.add_exception_handler(exc_type, status)

    # ------------------------------------------------------------------ lifecycle
    async def startup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the capture writer and load the model off the loop; never raises for a bad model."""
        if self.capture is not None:
            self.capture.start()
        try:
            bundle = await loop.run_in_executor(None, self._load)
            store = None
            if self.settings.feature_group is not None:
                store = await loop.run_in_executor(None, self._connect_store, bundle)
        except Exception as exc:
            # The process stays up so that /ping can report the failure (503 with the reason).
            self.state = FAILED
            self.load_error = str(exc)
            log.error("model failed to load from %s: %s", self.settings.model_path, exc,
                      exc_info=not isinstance(exc, ModelLoadError))
            return
        self._ready(bundle, loop, store)

    def _load(self) -> ModelBundle:
        _set_torch_threads(self.settings.torch_threads)
        return load_bundle(self.settings.model_path, warm_rows=(1, self.settings.max_batch))

    def _connect_store(self, bundle: ModelBundle) -> OnlineStore:
        field = self.settings.record_id_field
        if field in bundle.schema.names:
            raise ModelLoadError(
                f"record_id_field={field!r} is one of the model's features; allowed: a request field that is not "
                f"({', '.join(bundle.schema.names)})"
            )
        return connect(self.settings.feature_group, timeout_s=self.settings.feature_lookup_timeout_ms / 1000)

    def _ready(self, bundle: ModelBundle, loop: asyncio.AbstractEventLoop, store: OnlineStore | None = None) -> None:
        self.bundle = bundle
        self.decoder = RequestDecoder(bundle.schema)
        if store is not None:
            self.lookup = FeatureLookup(
                store=store, schema=bundle.schema, record_id_field=self.settings.record_id_field,
                timeout_s=self.settings.feature_lookup_timeout_ms / 1000, loop=loop, on_done=self._lookup_done,
            )
        self.batcher = Batcher(
            predict=bundle.predict,
            encode=encode_predictions,
            n_features=len(bundle.schema.features),
            max_batch=self.settings.max_batch,
            max_wait_s=self.settings.max_wait_us / 1e6,
            loop=loop,
            on_done=self._batch_done,
            # Thread settings of the math libraries can be per thread (OpenMP): set them where
            # the model runs, not only in the thread that loaded it.
            thread_init=functools.partial(_set_torch_threads, self.settings.torch_threads),
        )
        self.batcher.start()
        if self.capture is not None:
            self.capture.model_version = bundle.model_version
        self.metrics.model_loaded = 1
        self.metrics.model_labels = (
            f'model_name="{label_value(bundle.model_name)}",'
            f'model_version="{label_value(bundle.model_version)}",'
            f'variant="{label_value(self.settings.variant)}"'
        )
        if self.settings.gc_freeze:
            # The model, torch and everything imported live for the whole process: freezing them
            # keeps gen-2 collections from walking that heap under load (p99 65 ms -> 9 ms measured
            # on a FastAPI server with the same model).
            gc.collect()
            gc.freeze()
        self.state = READY
        log.info("model %s version %s loaded from %s in %.2f s (%d features, task %s)",
                 bundle.model_name, bundle.model_version, bundle.source, bundle.load_seconds,
                 len(bundle.schema.features), bundle.schema.task)

    async def shutdown(self, loop: asyncio.AbstractEventLoop) -> None:
        """Finish queued batches, then flush the capture (call once no request is in flight)."""
        timeout = self.settings.shutdown_timeout_s
        if self.batcher is not None:
            # Joined from a thread so the loop can still run the last batches' callbacks.
            await loop.run_in_executor(None, functools.partial(self.batcher.stop, timeout=timeout))
            await asyncio.sleep(0)
        if self.lookup is not None:
            self.lookup.close()
        if self.capture is not None:
            await loop.run_in_executor(None, functools.partial(self.capture.stop, timeout=timeout))
            stats = self.capture.stats()
            log.info("capture flushed: %d written, %d dropped, %d write errors",
                     stats["written"], stats["dropped"], stats["write_errors"])

    # ------------------------------------------------------------------ requests
    def handle(self, req: Request) -> None:
        """Route one complete request; the response is set now or when its batch finishes."""
        url = req.url
        path = url.partition(b"?")[0] if b"?" in url else url
        route = self._routes.get(path)
        try:
            if route is None:
                raise RouteNotFoundError(
                    f"no route {path.decode('latin-1')!r}",
                    allowed=[p.decode() for p in self._routes],
                )
            req.route, methods = route
            handler = methods.get(req.method)
            if handler is None:
                allowed = list(methods)
                req.response_headers = b"Allow: " + b", ".join(allowed) + b"\r\n"
                raise MethodNotAllowedError(
                    f"method {req.method.decode('latin-1')} is not allowed on {path.decode()}",
                    allowed=[m.decode() for m in allowed],
                )
            handler(req)
        except Exception as exc:
            self.fail(req, exc)

    def fail(self, req: Request, exc: BaseException) -> None:
        """Answer `req` with the status and JSON body the error table gives `exc`."""
        status, body = self.errors.to_response(exc, context=f"handling {req.route}")
        self.respond(req, status, body)

    def respond(self, req: Request, status: int, body: bytes, content_type: bytes = JSON_TYPE) -> None:
        """Set the response of `req` and let its connection write it (in request order)."""
        req.status = status
        req.response_type = content_type
        req.response_body = body
        route = req.route
        if route == "invocations":
            self.metrics.latency.observe(time.perf_counter() - req.started)
        self.metrics.count_request(route, status)
        if self._access_log:
            access_log.info("%s %s %d %.3fms", req.method.decode("latin-1"), req.url.decode("latin-1"),
                            status, (time.perf_counter() - req.started) * 1000)
        req.conn.response_ready()

    def _ping(self, req: Request) -> None:
        if self.state is READY:
            self.respond(req, 200, _PING_OK)
        elif self.state is LOADING:
            raise ModelNotReadyError("model is loading")
        else:
            raise ModelNotReadyError(f"model failed to load: {self.load_error}")

    def _metrics(self, req: Request) -> None:
        self.respond(req, 200, self.metrics.render(), METRICS_CONTENT_TYPE)

    def _invocations(self, req: Request) -> None:
        if self.state is not READY:
            raise ModelNotReadyError("model is loading" if self.state is LOADING else
                                     f"model failed to load: {self.load_error}")
        content_type = req.content_type
        in_format = _KNOWN_CONTENT_TYPES.get(content_type) or body_format(content_type)
        req.in_format = in_format
        if req.content_encoding is not None and req.content_encoding.strip().lower() != b"identity":
            raise UnsupportedMediaTypeError(
                f"unsupported content encoding {req.content_encoding.decode('latin-1')!r}",
                field="Content-Encoding",
                allowed=["identity"],
            )
        accept = req.accept
        req.out_format = JSON if accept is None or accept == b"*/*" else response_format(accept)
        if req.sm_inference_id is None and req.custom_attributes is None:
            req.inference_id = self._new_id()
            req.attributes = None
        else:
            self._read_ids(req)
        decoder = self.decoder
        lookup = self.lookup
        if in_format is JSON and lookup is not None and lookup.mentions_id(req.body):
            pending = lookup.prepare(req, decoder.json_rows(req.body))
            if pending.wanted:
                lookup.submit(pending)  # on to the batcher once its records are in (_lookup_done)
                return
            req.n_rows, req.features = decoder.decode_rows(pending.rows)
        elif in_format is JSON:
            req.n_rows, req.features = decoder.decode_json(req.body)
        else:
            req.n_rows, req.features = decoder.decode_csv(req.body)
        self.batcher.submit(req)

    def _lookup_done(self, pending: Pending, found: Found | None, error: BaseException | None) -> None:
        """Loop-thread callback of the feature lookup: complete one request's rows and batch it, or answer its error."""
        req = pending.req
        if error is not None:
            self.fail(req, error)
            return
        assert found is not None, "a lookup without an error has its records"
        try:
            rows = self.lookup.complete(pending, found)
            req.n_rows, req.features = self.decoder.decode_rows(rows)
        except Exception as exc:
            self.fail(req, exc)
            return
        if self.capture is not None:
            req.capture_body = self.lookup.captured(pending)
        self.batcher.submit(req)

    def _read_ids(self, req: Request) -> None:
        attributes = None
        inference_id = None
        if req.custom_attributes is not None:
            attributes = _header_text(req.custom_attributes, "X-Amzn-SageMaker-Custom-Attributes",
                                      _MAX_ATTRIBUTES_LENGTH)
            for part in attributes.replace(";", ",").split(","):
                key, sep, value = part.partition("=")
                if sep and key.strip() == "inference_id":
                    inference_id = _header_text(value.strip().encode("latin-1"),
                                                "X-Amzn-SageMaker-Custom-Attributes", _MAX_ID_LENGTH,
                                                what="inference_id")
        if req.sm_inference_id is not None:
            inference_id = _header_text(req.sm_inference_id, "X-Amzn-SageMaker-Inference-Id", _MAX_ID_LENGTH)
        req.attributes = attributes
        req.inference_id = inference_id or self._new_id()

    def _batch_done(self, batch: list[Request], elapsed: float, error: BaseException | None) -> None:
        """Loop-thread callback of the batcher: answer and capture every request of one batch."""
        rows = 0
        for req in batch:
            rows += req.n_rows
        self.metrics.observe_batch(rows, elapsed)
        if error is not None:
            # Logged once for the batch; every request in it gets the same 500.
            status, body = self.errors.to_response(error, context=f"running a model call over {rows} rows")
            for req in batch:
                self.respond(req, status, body)
            return
        capture = self.capture
        when = time.time() if capture is not None else 0.0
        for req in batch:
            iid = req.inference_id
            out_type = MEDIA_TYPES[req.out_format]
            # Callers behind SageMaker only see the custom-attributes header, so the inference id
            # rides in it as well.
            req.response_headers = (
                b"X-Amzn-SageMaker-Inference-Id: %s\r\nX-Amzn-SageMaker-Custom-Attributes: inference_id=%s\r\n"
                % (iid.encode(), iid.encode())
            )
            self.respond(req, 200, req.response_body, out_type)
            if capture is not None:
                capture.offer(
                    when=when,
                    inference_id=iid,
                    custom_attributes=req.attributes,
                    input_type=(req.content_type or JSON_TYPE).decode("latin-1"),
                    input_encoding=req.in_format,
                    input_body=req.capture_body or req.body,
                    output_type=out_type.decode(),
                    output_encoding=req.out_format,
                    output_body=req.response_body,
                )


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _header_text(raw: bytes, header: str, limit: int, *, what: str | None = None) -> str:
    text = raw.decode("latin-1")
    name = what or header
    if not text or len(text) > limit or not text.isprintable() or not text.isascii():
        raise InvalidHeaderError(
            f"{name} must be 1 to {limit} printable ASCII characters",
            field=header,
            allowed=f"1..{limit} printable ASCII characters",
            received=len(text),
        )
    return text


def create_app(settings: Settings) -> App:
    """The app factory: everything the server runs is built from `settings`."""
    return App(settings)

