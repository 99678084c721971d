"""A local stand-in for the SageMaker Runtime data plane: InvokeEndpoint over HTTP.

boto3's `sagemaker-runtime` client works against it unchanged (endpoint_url=http://127.0.0.1:PORT):
`POST /endpoints/{name}/invocations`, the `X-Amzn-SageMaker-Target-Variant` header, the
`x-Amzn-Invoked-Production-Variant` response header, and SageMaker's error shapes (a container's
non-2xx answer becomes ModelError, HTTP 424, with the original status and message).

Routing follows the endpoint configuration read from the local SageMaker control plane: production
variants by weight; a shadow variant receives a copy of a share of requests, in the background, and
its answers reach only its own metrics and capture log, never the caller. Per-variant Invocations,
ModelLatency and 4XX/5XX counts are published to the local CloudWatch under AWS/SageMaker.

A shadow slower than production never slows production down: copies wait in a bounded queue per
shadow variant (`SHADOW_QUEUE_DEFAULT`), and a copy that finds the queue full is dropped and counted.
Every mirrored request ends as exactly one of sent (the shadow answered, whatever the status),
dropped (queue full) or failed (no answer), so sent + dropped + failed == mirrored once the queue has
drained. Drops are published as `ShadowCopiesDropped` (same namespace and dimensions as the variant's
other metrics; a local metric, not one SageMaker publishes) and all four counts are in `GET /status`.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import http.client
import json
import queue
import random
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from mlops_contracts import metrics as contract

FORWARDED_HEADERS = (
    "Content-Type",
    "Accept",
    "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Inference-Id",
)
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
"""Forwarded to every variant; assigned by the router to a mirrored request that has no id."""
MAX_BODY = 6 * 1024 * 1024
"""SageMaker's real-time payload limit."""
SHADOW_QUEUE_DEFAULT = 256
"""Copies that may wait for one shadow variant; beyond that they are dropped (and counted)."""
SHADOW_WORKERS_DEFAULT = 4
"""Copies sent to one shadow variant at the same time."""
SHADOW_DROPPED_METRIC = "ShadowCopiesDropped"
WAIT_CEILING_S = 120.0
"""How long the `wait_*` helpers wait for an event before calling it a bug."""


@dataclass(frozen=True)
class VariantTarget:
    """One running serving process."""

    name: str
    url: str
    """Base URL, e.g. http://127.0.0.1:8101."""
    weight: float


@dataclass(frozen=True)
class Route:
    """How one endpoint's traffic is split."""

    endpoint: str
    production: tuple[VariantTarget, ...]
    shadow: VariantTarget | None = None
    shadow_sampling: float = 0.0
    """Share of requests copied to the shadow variant (shadow weight / production weight)."""

    def choose(self, rng: random.Random, target: str | None = None) -> VariantTarget:
        """The production variant for one request: the named one, or one drawn by weight."""
        if target is not None:
            for variant in self.production:
                if variant.name == target:
                    return variant
            raise KeyError(target)
        return rng.choices(self.production, weights=[v.weight for v in self.production])[0]


def with_shared_inference_id(headers: dict[str, str]) -> dict[str, str]:
    """`headers` with an inference id both the production variant and its shadow copy will capture.

    Each serving container otherwise draws its own id for a request without one, and the shadow
    analysis (`mlops experiment shadow`) could not join the two captures of the same request. The
    caller's own id (`X-Amzn-SageMaker-Inference-Id`, or `inference_id=` in the custom attributes,
    which the container reads when that header is absent) is kept as it is.
    """
    if INFERENCE_ID_HEADER in headers or "inference_id=" in headers.get("X-Amzn-SageMaker-Custom-Attributes", ""):
        return headers
    return {**headers, INFERENCE_ID_HEADER: uuid.uuid4().hex}


@dataclass
class VariantStats:
    """Counters since the last publication."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latencies_us: list[float] = field(default_factory=list)
    shadow: bool = False
    """A shadow variant: its ShadowCopiesDropped is published, zero included."""
    shadow_dropped: int = 0


class MetricsBuffer:
    """Per (endpoint, variant) counters, drained into CloudWatch datapoints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], VariantStats] = {}
        self.totals: dict[tuple[str, str], dict[str, int]] = {}
        """Running totals for summaries (never drained)."""
        self.recorded = 0
        """Events (calls and dropped copies) recorded so far."""
        self.published = 0
        """Of `recorded`, how many a successful `publish` has sent to CloudWatch."""

    def _entry(self, endpoint: str, variant: str) -> tuple[VariantStats, dict[str, int]]:
        stats = self._stats.setdefault((endpoint, variant), VariantStats())
        total = self.totals.setdefault((endpoint, variant), {"invocations": 0, "4xx": 0, "5xx": 0})
        return stats, total

    def record(self, endpoint: str, variant: str, status: int, latency_us: float) -> None:
        """One answered (or unanswered: status 500) call to a variant."""
        with self._lock:
            stats, total = self._entry(endpoint, variant)
            self.recorded += 1
            stats.invocations += 1
            total["invocations"] += 1
            stats.latencies_us.append(latency_us)
            if 400 <= status < 500:
                stats.errors_4xx += 1
                total["4xx"] += 1
            elif status >= 500:
                stats.errors_5xx += 1
                total["5xx"] += 1

    def record_shadow_drop(self, endpoint: str, variant: str) -> None:
        """One copy for a shadow variant dropped because its queue was full."""
        with self._lock:
            stats, _ = self._entry(endpoint, variant)
            self.recorded += 1
            stats.shadow = True
            stats.shadow_dropped += 1

    def mark_shadow(self, endpoint: str, variant: str) -> None:
        """Note that `variant` is a shadow, so that its drop count is published even when zero."""
        with self._lock:
            self._entry(endpoint, variant)[0].shadow = True

    def drain(self) -> tuple[list[dict[str, Any]], int]:
        """PutMetricData entries for everything recorded since the last drain, and `recorded` as of
        the drain (pass it to `mark_published` once the entries are stored)."""
        with self._lock:
            stats, self._stats = self._stats, {}
            through = self.recorded
            # A shadow stays a shadow across drains (its zero-drop periods are published too).
            for key, s in stats.items():
                if s.shadow:
                    self._stats[key] = VariantStats(shadow=True)
        data = []
        for (endpoint, variant), s in stats.items():
            dims = [{"Name": contract.ENDPOINT_DIMENSION, "Value": endpoint}, {"Name": contract.VARIANT_DIMENSION, "Value": variant}]
            if s.invocations:
                data += [
                    {"MetricName": contract.INVOCATIONS, "Dimensions": dims, "Value": s.invocations, "Unit": "Count"},
                    {"MetricName": contract.INVOCATION_4XX_ERRORS, "Dimensions": dims, "Value": s.errors_4xx, "Unit": "Count"},
                    {"MetricName": contract.INVOCATION_5XX_ERRORS, "Dimensions": dims, "Value": s.errors_5xx, "Unit": "Count"},
                ]
            if s.shadow:
                data.append({"MetricName": SHADOW_DROPPED_METRIC, "Dimensions": dims, "Value": s.shadow_dropped, "Unit": "Count"})
            # Values/Counts keep the distribution (CloudWatch computes percentiles from it).
            for start in range(0, len(s.latencies_us), 150):
                chunk = s.latencies_us[start:start + 150]
                data.append({"MetricName": contract.MODEL_LATENCY, "Dimensions": dims, "Values": chunk, "Unit": "Microseconds"})
        return data, through

    def snapshot(self) -> tuple[dict[tuple[str, str], dict[str, int]], int, int]:
        """A consistent copy of (totals, recorded, published)."""
        with self._lock:
            return {key: dict(value) for key, value in self.totals.items()}, self.recorded, self.published

    def mark_published(self, through: int) -> None:
        """Everything recorded up to `through` (from `drain`) is in CloudWatch."""
        with self._lock:
            self.published = max(self.published, through)


@dataclass
class ShadowCounts:
    """What became of the copies mirrored to one shadow variant."""

    mirrored: int = 0
    sent: int = 0
    """The shadow answered (any status: its errors are its own metrics' business)."""
    dropped: int = 0
    """The queue was full (or the copy was still queued when the router stopped)."""
    failed: int = 0
    """No answer (connection refused, reset or timed out)."""

    @property
    def pending(self) -> int:
        """Queued or on the wire: mirrored - sent - dropped - failed."""
        return self.mirrored - self.sent - self.dropped - self.failed

    def as_dict(self) -> dict[str, int]:
        return {"mirrored": self.mirrored, "sent": self.sent, "dropped": self.dropped, "failed": self.failed, "pending": self.pending}


_STOP = object()


class ShadowMirror:
    """Copies for one endpoint's shadow variant: a bounded queue drained by worker threads.

    `offer` never blocks the caller's request; a full queue drops the copy and counts it."""

    def __init__(self, *, endpoint: str, variant: str, send: Callable[[VariantTarget, bytes, dict[str, str]], bool],
                 on_drop: Callable[[], None], capacity: int, workers: int) -> None:
        if capacity < 1 or workers < 1:
            raise ValueError(f"shadow queue capacity {capacity} and workers {workers}: both must be at least 1")
        self.endpoint, self.variant = endpoint, variant
        self._send, self._on_drop = send, on_drop
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._counts = ShadowCounts()
        self._changed = threading.Condition()
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"shadow-{variant}-{k}", daemon=True) for k in range(workers)]
        for worker in self._workers:
            worker.start()

    def offer(self, target: VariantTarget, body: bytes, headers: dict[str, str]) -> bool:
        """Queue one copy; False when it was dropped because the queue is full."""
        with self._changed:
            self._counts.mirrored += 1
            try:
                if self._closed:
                    raise queue.Full
                self._queue.put_nowait((target, body, headers))
            except queue.Full:
                self._counts.dropped += 1
                self._changed.notify_all()
                dropped = True
            else:
                dropped = False
        if dropped:
            self._on_drop()
        return not dropped

    def counts(self) -> ShadowCounts:
        """A consistent snapshot of the counters."""
        with self._changed:
            return ShadowCounts(**{k: v for k, v in self._counts.as_dict().items() if k != "pending"})

    def wait_settled(self, timeout_s: float = WAIT_CEILING_S) -> bool:
        """Block until every mirrored copy is sent, dropped or failed; False if `timeout_s` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._counts.pending == 0, timeout_s)

    def close(self) -> None:
        """Drop (and count) the copies still queued, let the ones in flight finish, stop the workers."""
        with self._changed:
            self._closed = True  # no offer puts anything from here on
        discarded = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            discarded += 1
        with self._changed:
            self._counts.dropped += discarded
            self._changed.notify_all()
        for _ in range(discarded):
            self._on_drop()
        for _ in self._workers:
            self._queue.put(_STOP)
        for worker in self._workers:
            worker.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            answered = self._send(*item)
            with self._changed:
                if answered:
                    self._counts.sent += 1
                else:
                    self._counts.failed += 1
                self._changed.notify_all()


class Router:
    """Routes InvokeEndpoint calls for a set of endpoints."""

    def __init__(self, routes: dict[str, Route], *, seed: int | None = None, timeout_s: float = 60.0,
                 shadow_queue: int = SHADOW_QUEUE_DEFAULT, shadow_workers: int = SHADOW_WORKERS_DEFAULT):
        if shadow_queue < 1 or shadow_workers < 1:
            raise ValueError(f"shadow_queue={shadow_queue}, shadow_workers={shadow_workers}: both must be at least 1")
        self.routes = dict(routes)
        self.metrics = MetricsBuffer()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._mirrors: dict[tuple[str, str], ShadowMirror] = {}
        self._mirrors_lock = threading.Lock()
        self.shadow_queue, self.shadow_workers = shadow_queue, shadow_workers
        self.timeout_s = timeout_s
        self._shifts: dict[str, tuple[Route, float]] = {}
        """Blue/green updates in progress: endpoint -> (green route, green's share of traffic)."""
        self.updates: dict[str, Any] = {}
        """The last blue/green update of each endpoint (mlops.local.bluegreen.BlueGreenUpdate)."""
        self.update_starter: Callable[[dict[str, Any]], Any] | None = None
        """Starts an UpdateEndpoint request (set by the router process: it knows the control plane)."""

    def set_route(self, route: Route) -> None:
        """Replace an endpoint's routing (what UpdateEndpoint does once the new fleet is in service)."""
        self.routes = {**self.routes, route.endpoint: route}

    def invoke(self, endpoint: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One InvokeEndpoint call: (status, headers, body) as SageMaker Runtime would answer."""
        route = self.routes.get(endpoint)
        if route is None:
            return _error(400, "ValidationError", f"Endpoint {endpoint} not found.")
        target = headers.get("X-Amzn-SageMaker-Target-Variant")
        with self._rng_lock:
            route = self._fleet(route)
            try:
                variant = route.choose(self._rng, target)
            except KeyError:
                names = ", ".join(v.name for v in route.production)
                return _error(400, "ValidationError", f"Variant {target} not found for endpoint {endpoint}; production variants: {names}.")
            copy_to_shadow = route.shadow is not None and self._rng.random() < route.shadow_sampling
        if copy_to_shadow:
            headers = with_shared_inference_id(headers)
            self.mirror(route.endpoint, route.shadow.name).offer(route.shadow, body, headers)
        status, reply_headers, reply = self._call(route.endpoint, variant, body, headers)
        if status is None:
            return _error(500, "InternalFailure", f"variant {variant.name} did not answer: {reply.decode(errors='replace')}")
        if not 200 <= status < 300:
            message = reply.decode(errors="replace")
            return _error(
                424, "ModelError",
                f"Received client error ({status}) from primary with message \"{message}\".",
                OriginalStatusCode=status, OriginalMessage=message,
                LogStreamArn=f"arn:aws:logs:local:000000000000:log-group:/aws/sagemaker/Endpoints/{endpoint}",
            )
        out = {"Content-Type": reply_headers.get("Content-Type", "application/json"), "x-Amzn-Invoked-Production-Variant": variant.name}
        for name in ("X-Amzn-SageMaker-Custom-Attributes",):
            if name in reply_headers:
                out[name] = reply_headers[name]
        return 200, out, reply

    # ---- blue/green (mlops.local.bluegreen drives these) ----------------------------------------

    def shift(self, endpoint: str, green: Route, share: float) -> None:
        """Send `share` of `endpoint`'s requests to the new fleet `green`, the rest to the current route."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"green share {share}: allowed 0 to 1")
        if endpoint not in self.routes:
            raise KeyError(f"endpoint {endpoint} has no route to shift from")
        self._shifts = {**self._shifts, endpoint: (green, share)}

    def finish_shift(self, endpoint: str, *, keep_green: bool) -> None:
        """End a shift: green becomes the route (success) or all traffic returns to blue (rollback)."""
        shifts = dict(self._shifts)
        green, _ = shifts.pop(endpoint, (None, 0.0))
        if keep_green and green is not None:
            self.set_route(green)
        self._shifts = shifts

    def shift_share(self, endpoint: str) -> float:
        """Green's share of `endpoint` now (0 when no update is shifting it)."""
        return self._shifts.get(endpoint, (None, 0.0))[1]

    def _fleet(self, route: Route) -> Route:
        """The fleet one request goes to: green with its share while a shift runs (call under _rng_lock)."""
        shift = self._shifts.get(route.endpoint)
        if shift is not None and self._rng.random() < shift[1]:
            return shift[0]
        return route

    def mirror(self, endpoint: str, variant: str) -> ShadowMirror:
        """The copy queue of `endpoint`'s shadow `variant` (created on first use, kept across route changes)."""
        with self._mirrors_lock:
            found = self._mirrors.get((endpoint, variant))
            if found is None:
                found = self._mirrors[(endpoint, variant)] = ShadowMirror(
                    endpoint=endpoint, variant=variant, capacity=self.shadow_queue, workers=self.shadow_workers,
                    send=lambda target, body, headers: self._call(endpoint, target, body, headers)[0] is not None,
                    on_drop=lambda: self.metrics.record_shadow_drop(endpoint, variant),
                )
                self.metrics.mark_shadow(endpoint, variant)
            return found

    def status(self) -> dict[str, Any]:
        """What `GET /status` answers: per endpoint, each variant's running totals and each shadow's
        copy counts; and how many recorded events CloudWatch has received."""
        endpoints: dict[str, Any] = {name: {"variants": {}, "shadow": {}, "route": _describe(route)} for name, route in self.routes.items()}
        totals, recorded, published = self.metrics.snapshot()
        for (endpoint, variant), total in totals.items():
            endpoints.setdefault(endpoint, {"variants": {}, "shadow": {}})["variants"][variant] = total
        with self._mirrors_lock:
            mirrors = list(self._mirrors.values())
        for mirror in mirrors:
            shadow = endpoints.setdefault(mirror.endpoint, {"variants": {}, "shadow": {}})["shadow"]
            shadow[mirror.variant] = mirror.counts().as_dict()
        return {"endpoints": endpoints, "metrics": {"recorded": recorded, "published": published}}

    def _call(self, endpoint: str, variant: VariantTarget, body: bytes, headers: dict[str, str]) -> tuple[int | None, dict[str, str], bytes]:
        parts = urlsplit(variant.url)
        forwarded = {k: v for k, v in headers.items() if k in FORWARDED_HEADERS}
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout_s)
            try:
                conn.request("POST", "/invocations", body=body, headers=forwarded)
                response = conn.getresponse()
                reply = response.read()
                status, reply_headers = response.status, dict(response.getheaders())
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            self.metrics.record(endpoint, variant.name, 500, (time.perf_counter() - started) * 1e6)
            return None, {}, (str(exc) or type(exc).__name__).encode()
        self.metrics.record(endpoint, variant.name, status, (time.perf_counter() - started) * 1e6)
        return status, reply_headers, reply

    def close(self) -> None:
        """Stop the shadow workers (copies still queued are dropped and counted; see ShadowMirror.close)."""
        for update in list(self.updates.values()):
            update.cancel()
        with self._mirrors_lock:
            mirrors, self._mirrors = list(self._mirrors.values()), {}
        for mirror in mirrors:
            mirror.close()


def _describe(route: Route) -> dict[str, Any]:
    """A route as `GET /status` shows it: which URL serves each variant."""
    return {
        "production": {v.name: v.url for v in route.production},
        "shadow": {route.shadow.name: route.shadow.url} if route.shadow else {},
        "shadow_sampling": route.shadow_sampling,
    }


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"Message": message, **extra}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:"}, body


def _update_endpoint(router: Router, endpoint: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """`POST /endpoints/{name}/update`: an UpdateEndpoint request (its JSON parameters) started as a
    blue/green update; 400 ValidationException with the reason when it cannot start."""
    from mlops.local.bluegreen import DeploymentConfigError

    if router.update_starter is None:
        return _error(501, "NotImplemented", "this router serves no UpdateEndpoint (no control plane)")
    try:
        params = json.loads(body or b"{}")
        if not isinstance(params, dict) or params.get("EndpointName") != endpoint:
            raise DeploymentConfigError(f"the body must be UpdateEndpoint's parameters with EndpointName {endpoint!r}")
        update = router.update_starter(params)
    except (ValueError, KeyError) as exc:  # DeploymentConfigError and JSON errors are ValueErrors
        return _error(400, "ValidationException", str(exc))
    return 200, {"Content-Type": "application/json"}, json.dumps({"EndpointArn": endpoint, **update.describe()}).encode()


def make_server(router: Router, *, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server answering InvokeEndpoint for `router` (port 0 picks a free port)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms per request).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlsplit(self.path).path
            if path == "/ping":
                return self._send(200, {"Content-Type": "application/json"}, json.dumps({"endpoints": sorted(router.routes)}).encode())
            if path == "/status":
                return self._send(200, {"Content-Type": "application/json"}, json.dumps(router.status()).encode())
            parts = path.split("/")
            if len(parts) == 4 and parts[1] == "endpoints" and parts[3] == "update":
                update = router.updates.get(unquote(parts[2]))
                if update is None:
                    return self._send(*_error(404, "ValidationException", f"no UpdateEndpoint has run on endpoint {unquote(parts[2])}"))
                return self._send(200, {"Content-Type": "application/json"}, json.dumps(update.describe()).encode())
            self._send(*_error(404, "UnknownOperationException", f"no operation at GET {self.path}"))

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path.split("/")
            if len(path) == 4 and path[1] == "endpoints" and path[3] == "update":
                return self._send(*_update_endpoint(router, unquote(path[2]), self.rfile.read(int(self.headers.get("Content-Length") or 0))))
            if len(path) != 4 or path[1] != "endpoints" or path[3] != "invocations":
                return self._send(*_error(404, "UnknownOperationException", f"no operation at {self.path}"))
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._send(*_error(413, "ValidationError", f"payload of {length} bytes exceeds {MAX_BODY}"))
            body = self.rfile.read(length)
            headers = {k: v for k, v in self.headers.items()}
            # header names arrive in any case; normalise the ones we read
            canon = {h.lower(): h for h in (*FORWARDED_HEADERS, "X-Amzn-SageMaker-Target-Variant")}
            headers = {canon.get(k.lower(), k): v for k, v in headers.items()}
            self._send(*router.invoke(unquote(path[2]), body, headers))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # no per-request access log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def routes_from(sagemaker: Any, variant_urls: dict[str, str], configs: dict[str, dict[str, Any]] | None = None,
                config_names: dict[str, str] | None = None) -> dict[str, Route]:
    """Routes for every endpoint in the control plane whose variants have a running server.
    `variant_urls` maps a SageMaker Model name to the URL of the process serving it. `configs` holds
    the full CreateEndpointConfig requests by name, read in preference to DescribeEndpointConfig
    (moto drops ShadowProductionVariants from what it stores). `config_names` names the configuration
    an endpoint serves where it differs from the control plane's record (a finished blue/green update,
    until the record catches up: moto has no UpdateEndpoint)."""
    routes = {}
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            name = summary["EndpointName"]
            config_name = (config_names or {}).get(name) or sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
            config = (configs or {}).get(config_name) or sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            route = route_for(name, config, variant_urls)
            if route is not None:
                routes[name] = route
    return routes


def route_for(endpoint: str, config: dict[str, Any], variant_urls: dict[str, str]) -> Route | None:
    """The route of `endpoint` serving `config` (a CreateEndpointConfig request or DescribeEndpointConfig
    answer); None while some variant has no running server (SageMaker would not be InService either)."""
    production = tuple(
        VariantTarget(v["VariantName"], variant_urls[v["ModelName"]], float(v.get("InitialVariantWeight", 1.0)))
        for v in config["ProductionVariants"] if v["ModelName"] in variant_urls
    )
    if len(production) != len(config["ProductionVariants"]):
        return None
    shadow, sampling = None, 0.0
    for v in config.get("ShadowProductionVariants", []):
        if v["ModelName"] in variant_urls:
            shadow = VariantTarget(v["VariantName"], variant_urls[v["ModelName"]], float(v.get("InitialVariantWeight", 1.0)))
            sampling = min(1.0, shadow.weight / production[0].weight)
    return Route(endpoint=endpoint, production=production, shadow=shadow, shadow_sampling=sampling)


def publish(cloudwatch: Any, metrics: MetricsBuffer) -> int:
    """Send everything buffered to CloudWatch under AWS/SageMaker; returns the datapoints sent."""
    data, through = metrics.drain()
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=contract.SAGEMAKER_NAMESPACE, MetricData=data[start:start + 500])
    metrics.mark_published(through)
    return len(data)


def read_status(router_url: str) -> dict[str, Any]:
    """The router's `GET /status` (see `Router.status`)."""
    with urllib.request.urlopen(f"{router_url}/status", timeout=WAIT_CEILING_S) as response:
        return json.loads(response.read())


def wait_status(router_url: str, condition: Callable[[dict[str, Any]], bool], *, what: str,
                timeout_s: float = WAIT_CEILING_S) -> dict[str, Any]:
    """Poll `GET /status` until `condition(status)` holds and return that status. `timeout_s` is a
    ceiling that only a bug reaches: a TimeoutError names `what` and the last status seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = read_status(router_url)
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"the router did not reach '{what}' within {timeout_s:.0f} s; last status: {json.dumps(status)}")
        time.sleep(0.05)


def wait_shadow_settled(router_url: str, endpoint: str, variant: str, *, timeout_s: float = WAIT_CEILING_S) -> dict[str, int]:
    """Wait until every copy mirrored to `endpoint`'s shadow `variant` is sent, dropped or failed;
    returns its counts (mirrored, sent, dropped, failed, pending=0)."""
    def settled(status: dict[str, Any]) -> bool:
        counts = status["endpoints"].get(endpoint, {}).get("shadow", {}).get(variant)
        return counts is not None and counts["pending"] == 0

    status = wait_status(router_url, settled, what=f"{endpoint}/{variant} shadow copies settled", timeout_s=timeout_s)
    return status["endpoints"][endpoint]["shadow"][variant]


def wait_route(router_url: str, endpoint: str, *, production: dict[str, str], shadow: dict[str, str] | None = None,
               timeout_s: float = WAIT_CEILING_S) -> None:
    """Wait until the router sends `endpoint`'s traffic to exactly these variants ({name: url}), as it
    does once it has read the endpoint's new configuration (it polls the control plane)."""
    wanted = {"production": production, "shadow": shadow or {}}

    def routed(status: dict[str, Any]) -> bool:
        route = status["endpoints"].get(endpoint, {}).get("route")
        return route is not None and {key: route[key] for key in wanted} == wanted

    wait_status(router_url, routed, what=f"{endpoint} routed to {json.dumps(wanted)}", timeout_s=timeout_s)


def wait_published(router_url: str, *, timeout_s: float = WAIT_CEILING_S) -> None:
    """Wait until everything the router has recorded so far is in CloudWatch (it publishes on its
    own interval), so that alarms evaluated next see it."""
    recorded = read_status(router_url)["metrics"]["recorded"]
    wait_status(router_url, lambda status: status["metrics"]["published"] >= recorded,
                what=f"{recorded} recorded events published", timeout_s=timeout_s)


def _update_starter(router: Router, *, env: Any, sagemaker: Any, cloudwatch: Any, urls: Callable[[], dict[str, str]],
                    serving: dict[str, str], interval_s: float) -> Callable[[dict[str, Any]], Any]:
    """The router process's UpdateEndpoint: the new configuration from the control plane, the rollback
    alarms evaluated on what the router has published (it publishes right before each evaluation)."""
    from mlops.local import bluegreen

    check = bluegreen.cloudwatch_alarm_check(cloudwatch)

    def alarms_in_alarm(names: list[str]) -> list[str]:
        publish(cloudwatch, router.metrics)
        return check(names)

    def start(params: dict[str, Any]) -> Any:
        name = params.get("EndpointConfigName")
        config = env.endpoint_configs().get(name) or sagemaker.describe_endpoint_config(EndpointConfigName=name)
        endpoint = params.get("EndpointName")
        return bluegreen.start_update(router, params, config=config, variant_urls=urls(), alarms_in_alarm=alarms_in_alarm,
                                      evaluation_interval_s=interval_s, on_succeeded=lambda: serving.__setitem__(endpoint, name))

    return start


def main(argv: list[str] | None = None) -> int:
    """`python -m mlops.local.router --stack S --port P`: serve InvokeEndpoint for a local stack."""
    import argparse
    import signal

    from mlops.local.environment import LocalEnvironment

    parser = argparse.ArgumentParser(prog="mlops-local-router")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--publish-interval", type=float, default=5.0, help="seconds between PutMetricData calls")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--evaluation-interval", type=float, default=1.0,
                        help="seconds between rollback-alarm evaluations during a blue/green bake (metrics are published first)")
    parser.add_argument("--shadow-queue", type=int, default=SHADOW_QUEUE_DEFAULT,
                        help="copies that may wait per shadow variant; more are dropped and counted")
    parser.add_argument("--shadow-workers", type=int, default=SHADOW_WORKERS_DEFAULT, help="copies in flight per shadow variant")
    args = parser.parse_args(argv)
    if args.shadow_queue < 1 or args.shadow_workers < 1:
        parser.error(f"--shadow-queue {args.shadow_queue} and --shadow-workers {args.shadow_workers}: both must be at least 1")

    env = LocalEnvironment(args.stack)
    sagemaker = env.client("sagemaker", args.region)
    cloudwatch = env.client("cloudwatch", args.region)
    router = Router({}, seed=args.seed, shadow_queue=args.shadow_queue, shadow_workers=args.shadow_workers)
    server = make_server(router, port=args.port)
    stop = threading.Event()

    serving: dict[str, str] = {}
    """Endpoint -> the configuration it serves after a successful blue/green update."""

    def urls() -> dict[str, str]:
        return {p.model_name: f"http://127.0.0.1:{p.port}" for p in env.processes() if p.role == "variant"}

    def refresh() -> None:
        for route in routes_from(sagemaker, urls(), env.endpoint_configs(), serving).values():
            if router.routes.get(route.endpoint) != route:
                router.set_route(route)

    router.update_starter = _update_starter(router, env=env, sagemaker=sagemaker, cloudwatch=cloudwatch, urls=urls,
                                            serving=serving, interval_s=args.evaluation_interval)

    def background() -> None:
        last_publish = time.monotonic()
        while not stop.wait(0.5):
            try:
                refresh()
                if time.monotonic() - last_publish >= args.publish_interval:
                    publish(cloudwatch, router.metrics)
                    last_publish = time.monotonic()
            except Exception as exc:  # keep serving; the log says what failed
                print(f"router: background refresh failed: {exc!r}", file=sys.stderr, flush=True)

    def shutdown(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    refresh()
    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    print(f"router: listening on 127.0.0.1:{server.server_address[1]} for {sorted(router.routes)}", flush=True)
    server.serve_forever(poll_interval=0.2)
    worker.join(timeout=5)
    router.close()
    publish(cloudwatch, router.metrics)  # flush what the last interval collected
    return 0


if __name__ == "__main__":
    sys.exit(main())
