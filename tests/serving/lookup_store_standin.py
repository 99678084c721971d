"""A stand-in for the SageMaker Feature Store runtime: `BatchGetRecord` over HTTP on 127.0.0.1.

moto does not implement the Feature Store runtime, so the feature-lookup tests and benchmark talk to
this server through boto3 (`AWS_ENDPOINT_URL`). It speaks the REST-JSON protocol of botocore's
`sagemaker-featurestore-runtime` model: every request body is parsed and validated against the
operation's input shape (`botocore.validate.validate_parameters`: types, required members, minimum
lengths; plus the maximum lengths, patterns and enums it skips, such as the 100-identifier limit)
and every answer against its output shape, so a request AWS would refuse fails here too. It records each request, and can hold answers back (`gate`) or
refuse them (`refuse`) for the timeout and error paths.
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
import regex  # botocore patterns are Java regexes; `regex` reads them
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.validate import ParamValidator, validate_parameters

_MODEL = botocore.session.get_session().get_service_model("sagemaker-featurestore-runtime")
OPERATION = _MODEL.operation_model("BatchGetRecord")
GATE_CEILING_S = 30.0


@dataclass
class FeatureStoreStandIn:
    """Online records by feature group and id (values as the store keeps them: strings)."""

    records: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every valid BatchGetRecord request, parsed, in arrival order."""
    invalid: list[str] = field(default_factory=list)
    """Why each refused request was invalid (botocore's report)."""
    gate: threading.Event | None = None
    """When set to an unset Event, answers wait for it (at most GATE_CEILING_S)."""
    refuse: tuple[int, str, str] | None = None
    """(HTTP status, error code, message) to answer every request with, e.g. AccessDeniedException."""
    check_answers: bool = True
    """Validate each answer against the output shape (the benchmark turns it off: ~14 ms for 64 records
    of 32 features, which the real store does not spend)."""
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def put(self, group: str, record_id: str, **values: str) -> None:
        self.records.setdefault(group, {})[record_id] = dict(values)

    def start(self) -> FeatureStoreStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoint: botocore reuses its connections

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without this, Nagle holds the body back for the
                # client's delayed ACK (40 ms per call), which the real endpoint does not cost.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, answer = standin.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status >= 400:
                    self.send_header("x-amzn-ErrorType", answer["__type"])
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="featurestore-standin", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one HTTP request."""
        if path != OPERATION.http["requestUri"]:
            return 404, {"__type": "UnknownOperationException", "message": f"no operation at {path}"}
        try:
            params = json.loads(body)
            validate_parameters(params, OPERATION.input_shape)
            problems = constraint_problems(params, OPERATION.input_shape, "BatchGetRecord")
            if problems:
                raise ValueError("; ".join(problems))
        except (ValueError, ParamValidationError) as exc:
            self.invalid.append(str(exc))
            return 400, {"__type": "ValidationException", "message": str(exc)}
        self.requests.append(params)
        gate = self.gate
        if gate is not None:
            gate.wait(GATE_CEILING_S)
        if self.refuse is not None:
            status, code, message = self.refuse
            return status, {"__type": code, "message": message}
        answer = self._records(params)
        if self.check_answers:
            report = ParamValidator().validate(answer, OPERATION.output_shape)
            assert not report.has_errors(), report.generate_report()
        return 200, answer

    def _records(self, params: dict[str, Any]) -> dict[str, Any]:
        found = []
        for ident in params["Identifiers"]:
            group = ident["FeatureGroupName"]
            names = ident.get("FeatureNames")
            for rid in ident["RecordIdentifiersValueAsString"]:
                record = self.records.get(group, {}).get(rid)
                if record is None:
                    continue  # the real store leaves absent records out, without an error
                values = [{"FeatureName": n, "ValueAsString": v} for n, v in record.items() if names is None or n in names]
                if values:
                    found.append({"FeatureGroupName": group, "RecordIdentifierValueAsString": rid, "Record": values})
        return {"Records": found, "Errors": [], "UnprocessedIdentifiers": []}


def constraint_problems(value: Any, shape: Shape, path: str) -> list[str]:
    """Maximum lengths, patterns and enums of the shape metadata (ParamValidator checks minimums only)."""
    meta = shape.metadata
    problems = []
    if shape.type_name == "structure":
        for key, member in value.items():
            if key in shape.members:
                problems += constraint_problems(member, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list":
        if len(value) > meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} items, allowed at most {meta['max']}")
        for i, item in enumerate(value):
            problems += constraint_problems(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "string":
        if len(value) > meta.get("max", len(value)):
            problems.append(f"{path}: length {len(value)}, allowed at most {meta['max']}")
        if "pattern" in meta and not regex.fullmatch(meta["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    return problems
