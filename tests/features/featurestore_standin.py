"""A stand-in for `sagemaker-featurestore-runtime` (moto does not serve it): PutRecord and GetRecord over
real HTTP on 127.0.0.1, each request parsed as AWS would (REST-JSON: the group from the URI, the rest
from the JSON body) and validated against botocore's service model before it is applied.

It keeps one record per (group, record id), as the online store does: a put whose event time is
older than the stored record's leaves the stored one. It can answer the first N puts with a
ThrottlingException (HTTP 400) or a 503, to exercise retries.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

MODEL = botocore.session.get_session().get_service_model("sagemaker-featurestore-runtime")


class FeatureStoreStandIn:
    """Start with `start()`, point boto3 at `url` (AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME)."""

    def __init__(self, *, groups: dict[str, tuple[str, str]]):
        self.groups = groups
        """{group name: (record identifier feature, event time feature)}."""
        self.records: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.invalid: list[str] = []
        self.throttle = 0
        self.unavailable = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FeatureStoreStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, group: str, record_id: str) -> dict[str, str] | None:
        """The stored record as {feature: value}."""
        stored = self.records.get((group, record_id))
        return None if stored is None else {f["FeatureName"]: f["ValueAsString"] for f in stored}

    def put(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        group = params["FeatureGroupName"]
        if group not in self.groups:
            return 404, {"__type": "ResourceNotFound", "message": f"feature group {group} not found"}
        id_name, time_name = self.groups[group]
        values = {f["FeatureName"]: f.get("ValueAsString") for f in params["Record"]}
        if id_name not in values or time_name not in values:
            return 400, {"__type": "ValidationError", "message": f"record needs {id_name} and {time_name}"}
        with self.lock:
            if self.throttle > 0:
                self.throttle -= 1
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, {"__type": "ServiceUnavailable", "message": "try again"}
            key = (group, values[id_name])
            old = self.record(*key)
            if old is None or _event_key(values[time_name]) >= _event_key(old[time_name]):
                self.records[key] = params["Record"]
        return 200, {}


def _event_key(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        import datetime as dt

        return dt.datetime.fromisoformat(value).timestamp()


def _handler(store: FeatureStoreStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
        # Headers and body leave in one segment: written apart, the client's delayed ACK adds ~40 ms a call.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if "__type" in body:
                self.send_header("x-amzn-ErrorType", body["__type"])
            self.end_headers()
            self.wfile.write(data)

        def _parse(self, operation: str) -> dict[str, Any] | None:
            url = urlparse(self.path)
            parts = url.path.split("/")
            if len(parts) != 3 or parts[1] != "FeatureGroup":
                self._answer(404, {"__type": "UnknownOperation", "message": f"{self.command} {url.path}"})
                return None
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            params = {"FeatureGroupName": unquote(parts[2]), **body, **query}
            store.requests.append({"operation": operation, "params": params})
            try:
                validate_parameters(params, MODEL.operation_model(operation).input_shape)
            except ParamValidationError as exc:
                store.invalid.append(f"{operation}: {exc}")
                self._answer(400, {"__type": "ValidationError", "message": str(exc)})
                return None
            return params

        def do_PUT(self) -> None:
            params = self._parse("PutRecord")
            if params is not None:
                self._answer(*store.put(params))

        def do_GET(self) -> None:
            params = self._parse("GetRecord")
            if params is None:
                return
            record = store.records.get((params["FeatureGroupName"], params["RecordIdentifierValueAsString"]))
            self._answer(200, {"Record": record} if record else {})

    return Handler


if __name__ == "__main__":
    # A process of its own (benchmarks/ingest.py), so the server does not share the client's GIL:
    #   python featurestore_standin.py GROUP:RECORD_ID:EVENT_TIME ...   (prints its URL, serves until killed)
    import sys

    specs = [arg.split(":") for arg in sys.argv[1:]]
    standin = FeatureStoreStandIn(groups={g: (i, t) for g, i, t in specs})
    print(standin.url, flush=True)
    standin.server.serve_forever()
