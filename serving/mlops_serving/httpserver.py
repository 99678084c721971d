"""A lean HTTP/1.1 server: asyncio protocol callbacks (uvloop when installed) and httptools parsing.

No framework runs per request: on ~10k requests/s on one core the budget is ~90 us per request
including the kernel's work, and a framework's routing, middleware and request objects cost
more than that. What it does:

- keep-alive (HTTP/1.1 default, HTTP/1.0 with `Connection: keep-alive`) and pipelining: responses
  leave in request order even when a later request finishes first;
- Content-Length and chunked bodies; a body over the limit gets 413 as soon as the headers (or the
  chunks so far) show it, without reading the rest; `Expect: 100-continue`;
- malformed requests get a JSON 400 (oversized headers 431), then a lingering close: we stop
  answering but keep reading for a moment so that the client receives the error instead of a reset;
- back-pressure: a connection that queues too many requests or does not read its responses stops
  being read;
- graceful shutdown: stop accepting, answer everything already received with `Connection: close`,
  close idle connections after a short grace, wait for the rest.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus

import httptools

from .app import App, Request
from .errors import HeadersTooLargeError, MalformedHttpError, PayloadTooLargeError
from .settings import Settings

log = logging.getLogger("mlops_serving")

MAX_HEADER_BYTES = 64 * 1024
MAX_PIPELINE = 64
LINGER_S = 2.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n"
# Header name (lower case) -> Request attribute; every other header is ignored.
_HEADERS: dict[bytes, str | None] = {
    b"connection": "connection",
    b"content-type": "content_type",
    b"content-length": "content_length",
    b"content-encoding": "content_encoding",
    b"accept": "accept",
    b"expect": "expect",
    b"x-amzn-sagemaker-custom-attributes": "custom_attributes",
    b"x-amzn-sagemaker-inference-id": "sm_inference_id",
}
# The spellings clients actually send, looked up before lower-casing (which allocates); the
# None entries are headers we know we ignore.
_HEADERS_AS_SENT: dict[bytes, str | None] = {
    **{name.title().replace(b"Sagemaker", b"SageMaker"): attr for name, attr in _HEADERS.items()},
    b"Host": None, b"User-Agent": None, b"Accept-Encoding": None,
}
_UNSEEN = "?"


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests, hands them to the app, writes responses in order."""

    __slots__ = (
        "server", "app", "transport", "parser", "current", "pending", "in_body", "header_bytes",
        "closing", "closed", "peer_eof", "last_active", "reading_paused", "writing_paused", "max_body",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None
        self.pending: deque[Request] = deque()
        self.in_body = False
        self.header_bytes = 0
        self.closing = False
        self.closed = False
        self.peer_eof = False
        self.last_active = time.monotonic()
        self.reading_paused = False
        self.writing_paused = False
        self.max_body = server.settings.max_body_bytes

    # ------------------------------------------------------------------ transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.app.metrics.open_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self.closed = True
        self.app.metrics.open_connections -= 1
        self.server.connection_closed(self)

    def pause_writing(self) -> None:  # noqa: D102
        # The client does not read its responses: stop reading its requests until it does.
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:  # noqa: D102
        self.writing_paused = False
        if len(self.pending) < MAX_PIPELINE // 2:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:  # noqa: D102
        if self.closing:
            return  # lingering after an error: read and discard
        self.last_active = time.monotonic()
        if not self.in_body:
            self.header_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # We speak HTTP/1.1 only: answer what was received, then close instead of switching.
            self._close_after_pending()
        except httptools.HttpParserCallbackError as exc:
            # One of our callbacks raised: that is a bug on our side (a 500, logged), not the client's.
            self._protocol_error(exc.__cause__ or exc.__context__ or exc)
        except httptools.HttpParserError as exc:
            self._protocol_error(MalformedHttpError(f"malformed HTTP request: {exc}"))
        else:
            if self.current is not None and not self.in_body and self.header_bytes > MAX_HEADER_BYTES:
                self._protocol_error(HeadersTooLargeError(
                    f"request line and headers exceed {MAX_HEADER_BYTES} bytes", allowed=MAX_HEADER_BYTES
                ))

    def eof_received(self) -> bool:  # noqa: D102
        # The client has sent all it will send; keep the socket open until our answers are out.
        if not self.pending:
            return False
        self.closing = True
        self.peer_eof = True
        return True

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:  # noqa: D102
        self.current = Request(self, time.perf_counter())

    def on_url(self, url: bytes) -> None:  # noqa: D102
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:  # noqa: D102
        attr = _HEADERS_AS_SENT.get(name, _UNSEEN)
        if attr is _UNSEEN:
            attr = _HEADERS.get(name.lower())
        if attr is not None:
            setattr(self.current, attr, value)

    def on_headers_complete(self) -> None:  # noqa: D102
        req = self.current
        parser = self.parser
        self.in_body = True
        self.header_bytes = 0
        req.method = parser.get_method()
        req.keep_alive = parser.should_keep_alive()
        if req.connection is not None:
            # Only a Connection header can ask for an Upgrade or HTTP/1.0 keep-alive, so the
            # common request skips these two calls (get_http_version formats a new string).
            # An Upgrade (h2c, websocket) is answered over HTTP/1.1 and the connection then closed.
            if parser.should_upgrade():
                req.keep_alive = False
            req.http10 = parser.get_http_version() == "1.0"
        if self.closing:
            return
        if req.content_length is not None and int(req.content_length) > self.max_body:
            self._reject_too_large(req, int(req.content_length))
            return
        if req.expect is not None and req.expect.lower() == b"100-continue" and not self.pending:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:  # noqa: D102
        if self.closing:
            return
        req = self.current
        req.body_len += len(body)
        if req.body_len > self.max_body:
            self._reject_too_large(req, None)
            return
        req.body_parts.append(body)

    def on_message_complete(self) -> None:  # noqa: D102
        req = self.current
        self.current = None
        self.in_body = False
        self.header_bytes = 0
        if self.closing:
            return
        parts = req.body_parts
        if parts:
            req.body = parts[0] if len(parts) == 1 else b"".join(parts)
            req.body_parts = None
        pending = self.pending
        pending.append(req)
        if len(pending) >= MAX_PIPELINE:
            self._pause_reading()
        self.app.handle(req)

    # ------------------------------------------------------------------ responses
    def response_ready(self) -> None:
        """Write every finished response at the head of the queue (responses keep request order)."""
        pending = self.pending
        transport = self.transport
        server = self.server
        while pending and pending[0].status:
            req = pending.popleft()
            body = req.response_body
            linger = self.closing and not pending
            close = (
                linger
                or not req.keep_alive
                or (server.draining and not pending and self.current is None)
            )
            if not self.closed:
                transport.write(
                    b"%sContent-Type: %s\r\nContent-Length: %d\r\n%s%s%s\r\n%s"
                    % (
                        _STATUS_LINES[req.status],
                        req.response_type,
                        len(body),
                        req.response_headers,
                        server.date_header,
                        _CLOSE if close else (_KEEP_ALIVE if req.http10 else b""),
                        body,
                    )
                )
            if close:
                pending.clear()
                if linger and not self.peer_eof:
                    self._linger_close()
                else:
                    self.closing = True
                    if not self.closed:
                        transport.close()
                return
        if self.reading_paused and len(pending) < MAX_PIPELINE // 2 and not self.writing_paused:
            self._resume_reading()

    def is_idle(self) -> bool:
        """No request half-received, none waiting for an answer."""
        return self.current is None and not self.pending and not self.closing

    def close(self) -> None:
        """Close now (idle keep-alive timeout, or end of the shutdown grace)."""
        self.closing = True
        if not self.closed:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection (shutdown timeout reached with requests unanswered)."""
        self.closing = True
        if not self.closed:
            self.transport.abort()

    # ------------------------------------------------------------------ internals
    def _reject_too_large(self, req: Request, declared: int | None) -> None:
        self.closing = True
        self.current = None
        self.pending.append(req)
        self.app.fail(req, PayloadTooLargeError(
            f"request body exceeds the limit of {self.max_body} bytes",
            allowed=self.max_body,
            received=declared,
        ))

    def _protocol_error(self, exc: Exception) -> None:
        req = self.current or Request(self, time.perf_counter())
        self.current = None
        self.closing = True
        self.pending.append(req)
        self.app.fail(req, exc)

    def _close_after_pending(self) -> None:
        self.closing = True
        if not self.pending:
            self.close()
        else:
            # The last queued response closes the connection (see response_ready).
            self.pending[-1].keep_alive = False

    def _linger_close(self) -> None:
        transport = self.transport
        if self.closed:
            return
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.close)

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()


class HttpServer:
    """Listens, tracks connections, and runs the keep-alive and shutdown bookkeeping."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.connections: set[HttpConnection] = set()
        self.draining = False
        self.date_header = b""
        self.port = 0
        self._listener: asyncio.base_events.Server | None = None
        self._drain_started = 0.0
        self._all_closed: asyncio.Event | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._date_second = -1

    async def start(self) -> int:
        """Bind and listen; return the bound port."""
        loop = asyncio.get_running_loop()
        self._all_closed = asyncio.Event()
        self._refresh_date()
        self._listener = await loop.create_server(
            lambda: HttpConnection(self), self.settings.host, self.settings.port,
            backlog=2048, reuse_address=True,
        )
        self.port = self._listener.sockets[0].getsockname()[1]
        self._tick_handle = loop.call_later(1.0, self._tick)
        return self.port

    def begin_shutdown(self) -> None:
        """Stop accepting; from now on every connection closes once it is idle."""
        if self.draining:
            return
        self.draining = True
        self._drain_started = time.monotonic()
        if self._listener is not None:
            self._listener.close()
        log.info("shutting down: %d open connections", len(self.connections))
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        self._tick()
        self._check_all_closed()

    async def drain(self) -> bool:
        """Wait until every connection has closed; after the timeout abort the rest (False)."""
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.settings.shutdown_timeout_s)
            return True
        except asyncio.TimeoutError:
            unanswered = sum(len(c.pending) for c in self.connections)
            log.error("shutdown timeout: aborting %d connections with %d unanswered requests",
                      len(self.connections), unanswered)
            for conn in list(self.connections):
                conn.abort()
            return False
        finally:
            if self._tick_handle is not None:
                self._tick_handle.cancel()

    def connection_closed(self, conn: HttpConnection) -> None:
        """Called by a connection when its transport is gone."""
        self.connections.discard(conn)
        self._check_all_closed()

    def _check_all_closed(self) -> None:
        if self.draining and not self.connections and self._all_closed is not None:
            self._all_closed.set()

    def _refresh_date(self) -> None:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self.date_header = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"

    def _tick(self) -> None:
        self._refresh_date()
        now = time.monotonic()
        if self.draining:
            grace = self.settings.drain_grace_s
            for conn in list(self.connections):
                if conn.is_idle() and now - max(conn.last_active, self._drain_started) >= grace:
                    conn.close()
            interval = min(0.05, max(grace / 2, 0.01))
        else:
            limit = self.settings.keep_alive_s
            for conn in list(self.connections):
                if not conn.pending and now - conn.last_active >= limit:
                    conn.close()
            interval = 1.0
        self._tick_handle = asyncio.get_running_loop().call_later(interval, self._tick)
