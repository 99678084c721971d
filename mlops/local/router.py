"""A local stand-in for the SageMaker Runtime data plane: InvokeEndpoint over HTTP.

boto3's `sagemaker-runtime` client works against it unchanged (endpoint_url=http://127.0.0.1:PORT):
`POST /endpoints/{name}/invocations`, the `X-Amzn-SageMaker-Target-Variant` header, the
`x-Amzn-Invoked-Production-Variant` response header, and SageMaker's error shapes (a container's
non-2xx answer becomes ModelError, HTTP 424, with the original status and message).

Routing follows the endpoint configuration read from the local SageMaker control plane: production
variants by weight; a shadow variant receives a copy of a share of requests, in the background, and
its answers reach only its own metrics and capture log, never the caller. Per-variant Invocations,
ModelLatency and 4XX/5XX counts are published to the local CloudWatch under AWS/SageMaker.
"""
from __future__ import annotations

import http.client
import sys
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
MAX_BODY = 6 * 1024 * 1024
"""SageMaker's real-time payload limit."""


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


@dataclass
class VariantStats:
    """Counters since the last publication."""

    invocations: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latencies_us: list[float] = field(default_factory=list)


class MetricsBuffer:
    """Per (endpoint, variant) counters, drained into CloudWatch datapoints."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], VariantStats] = {}
        self.totals: dict[tuple[str, str], dict[str, int]] = {}
        """Running totals for summaries (never drained)."""

    def record(self, endpoint: str, variant: str, status: int, latency_us: float) -> None:
        with self._lock:
            stats = self._stats.setdefault((endpoint, variant), VariantStats())
            total = self.totals.setdefault((endpoint, variant), {"invocations": 0, "4xx": 0, "5xx": 0})
            stats.invocations += 1
            total["invocations"] += 1
            stats.latencies_us.append(latency_us)
            if 400 <= status < 500:
                stats.errors_4xx += 1
                total["4xx"] += 1
            elif status >= 500:
                stats.errors_5xx += 1
                total["5xx"] += 1

    def drain(self) -> list[dict[str, Any]]:
        """PutMetricData entries for everything recorded since the last drain."""
        with self._lock:
            stats, self._stats = self._stats, {}
        data = []
        for (endpoint, variant), s in stats.items():
            dims = [{"Name": contract.ENDPOINT_DIMENSION, "Value": endpoint}, {"Name": contract.VARIANT_DIMENSION, "Value": variant}]
            data += [
                {"MetricName": contract.INVOCATIONS, "Dimensions": dims, "Value": s.invocations, "Unit": "Count"},
                {"MetricName": contract.INVOCATION_4XX_ERRORS, "Dimensions": dims, "Value": s.errors_4xx, "Unit": "Count"},
                {"MetricName": contract.INVOCATION_5XX_ERRORS, "Dimensions": dims, "Value": s.errors_5xx, "Unit": "Count"},
            ]
            # Values/Counts keep the distribution (CloudWatch computes percentiles from it).
            for start in range(0, len(s.latencies_us), 150):
                chunk = s.latencies_us[start:start + 150]
                data.append({"MetricName": contract.MODEL_LATENCY, "Dimensions": dims, "Values": chunk, "Unit": "Microseconds"})
        return data


class Router:
    """Routes InvokeEndpoint calls for a set of endpoints."""

    def __init__(self, routes: dict[str, Route], *, seed: int | None = None, timeout_s: float = 60.0):
        self.routes = dict(routes)
        self.metrics = MetricsBuffer()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._shadow_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="shadow")
        self.timeout_s = timeout_s

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
            try:
                variant = route.choose(self._rng, target)
            except KeyError:
                names = ", ".join(v.name for v in route.production)
                return _error(400, "ValidationError", f"Variant {target} not found for endpoint {endpoint}; production variants: {names}.")
            copy_to_shadow = route.shadow is not None and self._rng.random() < route.shadow_sampling
        if copy_to_shadow:
            self._shadow_pool.submit(self._call, route.endpoint, route.shadow, body, headers)
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
        except OSError as exc:
            self.metrics.record(endpoint, variant.name, 500, (time.perf_counter() - started) * 1e6)
            return None, {}, str(exc).encode()
        self.metrics.record(endpoint, variant.name, status, (time.perf_counter() - started) * 1e6)
        return status, reply_headers, reply

    def close(self) -> None:
        self._shadow_pool.shutdown(wait=True)


def _error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"Message": message, **extra}).encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:"}, body


def make_server(router: Router, *, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server answering InvokeEndpoint for `router` (port 0 picks a free port)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms per request).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if urlsplit(self.path).path == "/ping":
                return self._send(200, {"Content-Type": "application/json"}, json.dumps({"endpoints": sorted(router.routes)}).encode())
            self._send(*_error(404, "UnknownOperationException", f"no operation at GET {self.path}"))

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path.split("/")
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


def routes_from(sagemaker: Any, variant_urls: dict[str, str], configs: dict[str, dict[str, Any]] | None = None) -> dict[str, Route]:
    """Routes for every endpoint in the control plane whose variants have a running server.
    `variant_urls` maps a SageMaker Model name to the URL of the process serving it. `configs` holds
    the full CreateEndpointConfig requests by name, read in preference to DescribeEndpointConfig
    (moto drops ShadowProductionVariants from what it stores)."""
    routes = {}
    for page in sagemaker.get_paginator("list_endpoints").paginate():
        for summary in page["Endpoints"]:
            name = summary["EndpointName"]
            config_name = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
            config = (configs or {}).get(config_name) or sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
            production = tuple(
                VariantTarget(v["VariantName"], variant_urls[v["ModelName"]], float(v.get("InitialVariantWeight", 1.0)))
                for v in config["ProductionVariants"] if v["ModelName"] in variant_urls
            )
            if len(production) != len(config["ProductionVariants"]):
                continue  # not every variant is serving yet: SageMaker would not be InService either
            shadow, sampling = None, 0.0
            for v in config.get("ShadowProductionVariants", []):
                if v["ModelName"] in variant_urls:
                    shadow = VariantTarget(v["VariantName"], variant_urls[v["ModelName"]], float(v.get("InitialVariantWeight", 1.0)))
                    sampling = min(1.0, shadow.weight / production[0].weight)
            routes[name] = Route(endpoint=name, production=production, shadow=shadow, shadow_sampling=sampling)
    return routes


def publish(cloudwatch: Any, metrics: MetricsBuffer) -> int:
    """Send everything buffered to CloudWatch under AWS/SageMaker; returns the datapoints sent."""
    data = metrics.drain()
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=contract.SAGEMAKER_NAMESPACE, MetricData=data[start:start + 500])
    return len(data)


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
    args = parser.parse_args(argv)

    env = LocalEnvironment(args.stack)
    sagemaker = env.client("sagemaker", args.region)
    cloudwatch = env.client("cloudwatch", args.region)
    router = Router({}, seed=args.seed)
    server = make_server(router, port=args.port)
    stop = threading.Event()

    def refresh() -> None:
        urls = {p.model_name: f"http://127.0.0.1:{p.port}" for p in env.processes() if p.role == "variant"}
        for route in routes_from(sagemaker, urls, env.endpoint_configs()).values():
            if router.routes.get(route.endpoint) != route:
                router.set_route(route)

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
