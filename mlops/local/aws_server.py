"""The local environment's AWS endpoint: moto's server, plus the SageMaker Feature Store runtime,
which moto does not emulate.

Run it as `python -m mlops.local.aws_server -H 127.0.0.1 -p PORT`. Every request goes to moto's own
application (`DomainDispatcherApplication(create_backend_app)`, served the way `moto.server` serves
it) except the four `sagemaker-featurestore-runtime` operations (PutRecord, GetRecord, BatchGetRecord,
DeleteRecord). Those sign as `sagemaker`, so moto would hand them to its SageMaker control-plane
backend; here they are recognised by botocore's model of the runtime (method and request URI), parsed
into the operation's input parameters from that model (URI labels, query string, JSON body),
validated with botocore's `ParamValidator` plus the model's enums and maxima, and answered by
`mlops.local.featurestore` against moto's SageMaker and S3 backends in this same process. A
validation failure is answered as AWS does: the error shape's HTTP status, a JSON body with
`__type` and `message`, and the `x-amzn-ErrorType` header.

SageMaker Pipelines executions are run for real (mlops.local.pipeline_runs): StartPipelineExecution
is validated against botocore's model, recorded by moto, set Executing and run on a thread of this
process by mlops.local.pipeline_exec, with ClientRequestToken idempotency; DescribePipelineExecution and
ListPipelineExecutions report the run's status and failure reason, and ListPipelineExecutionSteps
(which moto lacks) its steps. Runs keep their files under `--state-dir` (the local environment passes
its stack's state directory; default a fresh temporary directory).

UpdateEndpoint, which moto lacks, is validated here and run by the stack's router as a blue/green
update (mlops.local.endpoint_updates); DescribeEndpoint and ListEndpoints then report `Updating`, and
afterwards `InService` on the new configuration, or on the old one with the rollback's FailureReason,
or `UpdateRollbackFailed`, as SageMaker does (needs `--state-dir`, where the router is found).

SageMaker's MLflow tracking server operations (CreateMlflowTrackingServer, DescribeMlflowTrackingServer,
ListMlflowTrackingServers, DeleteMlflowTrackingServer), which moto lacks, are validated here and served by
mlops.local.tracking_servers: each server a real `mlflow server` process in this endpoint's process group.

Two moto requests are watched on their way through: CreateFeatureGroup, because moto keeps no
OnlineStoreConfig (whether the group has an online store and its default TtlDuration), and
`/moto-api/reset`, which empties the online store too.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, Shape
from botocore.validate import validate_parameters

from mlops.local.featurestore import (
    FeatureStoreError,
    FeatureStoreRuntime,
    GroupSpec,
    ValidationError,
)
from mlops.local.endpoint_updates import EndpointUpdates, ValidationException, router_from_process_file
from mlops.local.pipeline_runs import PipelineRuns
from mlops.local.tracking_servers import TrackingServers
from mlops.local import tracking_servers

SERVICE = "sagemaker-featurestore-runtime"
OPERATIONS = ("PutRecord", "GetRecord", "BatchGetRecord", "DeleteRecord")
PIPELINE_OPERATIONS = ("StartPipelineExecution", "DescribePipelineExecution", "ListPipelineExecutions", "ListPipelineExecutionSteps")
"""SageMaker control-plane operations this endpoint answers itself or completes moto's answer to."""
ENDPOINT_OPERATIONS = ("UpdateEndpoint", "DescribeEndpoint", "ListEndpoints")
"""UpdateEndpoint (moto lacks it) and the reads that report its progress (mlops.local.endpoint_updates)."""
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Route:
    """One runtime operation: its HTTP method and request URI as a regex over the raw path."""

    operation: OperationModel
    method: str
    pattern: re.Pattern[str]


def build_routes(operations: Iterable[str] = OPERATIONS) -> list[Route]:
    """Routes for `operations` from botocore's model of the Feature Store runtime."""
    model = botocore.session.get_session().get_service_model(SERVICE)
    routes = []
    for name in operations:
        operation = model.operation_model(name)
        path = operation.http["requestUri"].split("?")[0]
        regex = re.sub(r"\\\{(\w+)(?:\\\+)?\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(path))
        routes.append(Route(operation=operation, method=operation.http["method"], pattern=re.compile(f"^{regex}$")))
    return routes


def request_params(operation: OperationModel, *, labels: dict[str, str], query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
    """A REST-JSON request as the operation's input parameters, the way botocore serialized them.

    Body keys the model does not know are kept, so that validation reports them."""
    shape = operation.input_shape
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise ValidationError(f"the request body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ValidationError(f"the request body must be a JSON object, not {type(payload).__name__}")
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri" and wire in labels:
            params[name] = unquote(labels[wire])
        elif location == "querystring" and query.get(wire):
            params[name] = query[wire] if member.type_name == "list" else _scalar(member, query[wire][-1], wire)
    params.update(payload)
    return params


def _scalar(shape: Shape, value: str, wire: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise ValidationError(f"query parameter {wire}={value!r} is not an integer") from None
    if shape.type_name == "boolean":
        return value == "true"
    return value


def validate(operation: OperationModel, params: dict[str, Any]) -> None:
    """botocore's ParamValidator (types, required members, minima, unknown members), then the model's
    enums and maxima, which botocore leaves to the service."""
    try:
        validate_parameters(params, operation.input_shape)
    except ParamValidationError as exc:
        raise ValidationError(str(exc)) from None
    problems = list(_constraint_problems(params, operation.input_shape, ""))
    if problems:
        raise ValidationError(f"{len(problems)} validation error(s) detected: " + "; ".join(problems))


def _constraint_problems(value: Any, shape: Shape, path: str) -> Iterable[str]:
    meta = shape.metadata
    where = path or "input"
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from _constraint_problems(value[name], member, f"{path}.{name}" if path else name)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            yield f"{where} has {len(value)} items, at most {meta['max']} allowed"
        for index, item in enumerate(value):
            yield from _constraint_problems(item, shape.member, f"{where}[{index}]")
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            yield f"{where}={value!r} is not one of {', '.join(shape.enum)}"
        if "max" in meta and len(value) > meta["max"]:
            yield f"{where} is {len(value)} characters long, at most {meta['max']} allowed"
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            yield f"{where}={value} is above the maximum {meta['max']}"


def error_body(error: FeatureStoreError) -> tuple[bytes, int, list[tuple[str, str]]]:
    """An error the way AWS's REST-JSON services answer it (botocore reads the code from the header)."""
    body = json.dumps({"__type": error.code, "message": error.message}).encode()
    return body, error.status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error.code)]


class LocalAwsApp:
    """WSGI app: the Feature Store runtime in front of moto's server application."""

    def __init__(self, moto_app: WsgiApp, *, runtime: FeatureStoreRuntime | None = None, pipelines: PipelineRuns | None = None,
                 updates: EndpointUpdates | None = None, tracking: TrackingServers | None = None):
        self.moto_app = moto_app
        self.runtime = runtime or FeatureStoreRuntime()
        self.pipelines = pipelines
        self.updates = updates
        self.tracking = tracking
        self._sagemaker = botocore.session.get_session().get_service_model("sagemaker")
        self.routes = build_routes()
        self._lock = threading.Lock()
        self._online_configs: dict[str, dict[str, Any]] = {}
        """OnlineStoreConfig by feature group ARN, as sent to CreateFeatureGroup."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = _credential_scope(environ)
        if scope is not None and scope[2] == "sagemaker":
            matched = self._match(environ)
            if matched is not None:
                return self._serve(*matched, environ=environ, scope=scope, start_response=start_response)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if target == "SageMaker.CreateFeatureGroup":
                return self._create_feature_group(environ, start_response)
            operation = target.removeprefix("SageMaker.")
            if self.pipelines is not None and operation in PIPELINE_OPERATIONS:
                return self._pipeline_operation(operation, environ=environ, scope=scope, start_response=start_response)
            if self.updates is not None and operation in ENDPOINT_OPERATIONS:
                return self._endpoint_operation(operation, environ=environ, scope=scope, start_response=start_response)
            if self.tracking is not None and operation in tracking_servers.OPERATIONS:
                return self._tracking_operation(operation, environ=environ, scope=scope, start_response=start_response)
        if environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            status, headers, body = _call(self.moto_app, environ)
            if status.startswith("200"):
                self.reset()
            start_response(status, headers)
            return [body]
        return self.moto_app(environ, start_response)

    def reset(self) -> None:
        """Forget every record and online-store configuration (moto's backends were reset)."""
        with self._lock:
            self._online_configs.clear()
        self.runtime.online.clear()
        if self.pipelines is not None:
            self.pipelines.reset()
        if self.updates is not None:
            self.updates.reset()
        if self.tracking is not None:
            self.tracking.reset()

    def _match(self, environ: dict[str, Any]) -> tuple[Route, dict[str, str]] | None:
        raw_path = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).path
        for route in self.routes:
            if route.method == environ.get("REQUEST_METHOD"):
                found = route.pattern.match(raw_path)
                if found:
                    return route, found.groupdict()
        return None

    def _serve(self, route: Route, labels: dict[str, str], *, environ: dict[str, Any], scope: tuple[str, str, str],
               start_response: Callable[..., Any]) -> Iterable[bytes]:
        access_key, region, _ = scope
        account = _account(environ, access_key)
        try:
            params = request_params(
                route.operation, labels=labels, query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
                body=_read_body(environ),
            )
            validate(route.operation, params)
            result = self._dispatch(route.operation.name, params, account=account, region=region)
            body, status, headers = json.dumps(result).encode(), 200, [("Content-Type", "application/json")]
        except FeatureStoreError as exc:
            body, status, headers = error_body(exc)
        except Exception as exc:  # a bug here must reach the caller as AWS's InternalFailure, not a dropped connection
            traceback.print_exc()
            failure = FeatureStoreError(f"{type(exc).__name__}: {exc}")
            body, status, headers = error_body(failure)
        start_response(f"{status} {_REASONS.get(status, 'Error')}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _dispatch(self, operation: str, params: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
        groups = self._group_resolver(account, region)
        if operation == "PutRecord":
            return self.runtime.put_record(params, groups=groups, write=_s3_writer(account, region))
        if operation == "DeleteRecord":
            return self.runtime.delete_record(params, groups=groups, write=_s3_writer(account, region))
        if operation == "GetRecord":
            return self.runtime.get_record(params, groups=groups)
        assert operation == "BatchGetRecord", operation
        return self.runtime.batch_get_record(params, groups=groups)

    def _group_resolver(self, account: str, region: str) -> Callable[[str], GroupSpec | None]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[account][region]

        def find(name: str) -> GroupSpec | None:
            for group in list(backend.feature_groups.values()):
                if name in (group.feature_group_name, group.arn):
                    with self._lock:
                        online = self._online_configs.get(group.arn, {})
                    storage = (group.offline_store_config or {}).get("S3StorageConfig") or {}
                    return GroupSpec(
                        name=group.feature_group_name, arn=group.arn,
                        record_identifier=group.record_identifier_feature_name, event_time_feature=group.event_time_feature_name,
                        definitions={d["FeatureName"]: d for d in group.feature_definitions},
                        online=bool(online.get("EnableOnlineStore")), ttl=online.get("TtlDuration"),
                        offline_uri=storage.get("ResolvedOutputS3Uri"),
                    )
            return None

        return find

    def _create_feature_group(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(_read_body(environ) or b"{}")
        status, headers, body = _call(self.moto_app, environ)
        if status.startswith("200"):
            arn = json.loads(body)["FeatureGroupArn"]
            with self._lock:
                self._online_configs[arn] = dict(request.get("OnlineStoreConfig") or {})
            self.runtime.online.drop_group(arn)
        start_response(status, headers)
        return [body]


    def _pipeline_operation(self, operation: str, *, environ: dict[str, Any], scope: tuple[str, str, str],
                            start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The pipeline execution operations (module docstring): validated, then moto's answer
        completed, or (ListPipelineExecutionSteps) answered from the executor's record."""
        assert self.pipelines is not None
        access_key, region, _ = scope
        account = _account(environ, access_key)
        try:
            params = json.loads(_read_body(environ) or b"{}")
            if not isinstance(params, dict):
                raise ValidationError("the request body must be a JSON object")
            validate(self._sagemaker.operation_model(operation), params)
            if operation == "ListPipelineExecutionSteps":
                return _answer(start_response, "200 OK", [("Content-Type", "application/x-amz-json-1.1")],
                               json.dumps(self.pipelines.list_steps(params)).encode())
            if operation == "StartPipelineExecution":
                return self._start_pipeline_execution(params, environ=environ, account=account, region=region,
                                                      access_key=access_key, start_response=start_response)
        except FeatureStoreError as exc:
            body, status, headers = error_body(exc)
            return _answer(start_response, f"{status} {_REASONS.get(status, 'Error')}", headers, body)
        status, headers, body = _call(self.moto_app, environ)
        if status.startswith("200"):
            body = self._with_failure_reasons(operation, body)
        return _answer(start_response, status, headers, body)

    def _tracking_operation(self, operation: str, *, environ: dict[str, Any], scope: tuple[str, str, str],
                            start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The MLflow tracking server operations, validated and served here (mlops.local.tracking_servers)."""
        assert self.tracking is not None
        access_key, region, _ = scope
        try:
            params = json.loads(_read_body(environ) or b"{}")
            if not isinstance(params, dict):
                raise tracking_servers.ValidationException("the request body must be a JSON object")
            try:
                validate(self._sagemaker.operation_model(operation), params)
            except ValidationError as exc:  # the SageMaker control plane's name for it
                raise tracking_servers.ValidationException(exc.message) from None
            answer = self.tracking.handle(operation, params, account=_account(environ, access_key), region=region)
        except FeatureStoreError as exc:
            body, status, headers = error_body(exc)
            return _answer(start_response, f"{status} {_REASONS.get(status, 'Error')}", headers, body)
        return _answer(start_response, "200 OK", [("Content-Type", "application/x-amz-json-1.1")], json.dumps(answer).encode())

    def _endpoint_operation(self, operation: str, *, environ: dict[str, Any], scope: tuple[str, str, str],
                            start_response: Callable[..., Any]) -> Iterable[bytes]:
        """UpdateEndpoint, served here; DescribeEndpoint and ListEndpoints, moto's answer once the
        updating records are in line with the router (mlops.local.endpoint_updates)."""
        assert self.updates is not None
        access_key, region, _ = scope
        account = _account(environ, access_key)
        try:
            if operation == "UpdateEndpoint":
                params = json.loads(_read_body(environ) or b"{}")
                if not isinstance(params, dict):
                    raise ValidationException("the request body must be a JSON object")
                try:
                    validate(self._sagemaker.operation_model(operation), params)
                except ValidationError as exc:  # the SageMaker control plane's name for it
                    raise ValidationException(exc.message) from None
                answer = self.updates.update(params, account=account, region=region)
                return _answer(start_response, "200 OK", [("Content-Type", "application/x-amz-json-1.1")], json.dumps(answer).encode())
            self.updates.sync_all(account=account, region=region)
        except FeatureStoreError as exc:
            body, status, headers = error_body(exc)
            return _answer(start_response, f"{status} {_REASONS.get(status, 'Error')}", headers, body)
        return self.moto_app(environ, start_response)

    def _start_pipeline_execution(self, params: dict[str, Any], *, environ: dict[str, Any], account: str, region: str,
                                  access_key: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self.pipelines is not None
        pipeline = params["PipelineName"].rsplit("/", 1)[-1]
        token = params.get("ClientRequestToken")
        with self._lock:  # one start per token, even when two arrive together
            known = self.pipelines.known(account=account, region=region, pipeline=pipeline, token=token)
            if known is not None:
                return _answer(start_response, "200 OK", [("Content-Type", "application/x-amz-json-1.1")],
                               json.dumps({"PipelineExecutionArn": known}).encode())
            status, headers, body = _call(self.moto_app, environ)
            if status.startswith("200"):
                self.pipelines.started(json.loads(body)["PipelineExecutionArn"], account=account, region=region,
                                       access_key=access_key, token=token, parameters=params.get("PipelineParameters", []))
        return _answer(start_response, status, headers, body)

    def _with_failure_reasons(self, operation: str, body: bytes) -> bytes:
        assert self.pipelines is not None
        document = json.loads(body)
        if operation == "DescribePipelineExecution":
            reason = self.pipelines.failure_reason(document.get("PipelineExecutionArn", ""))
            if reason:
                document["FailureReason"] = reason
            else:
                document.pop("FailureReason", None)
        else:
            for summary in document.get("PipelineExecutionSummaries", []):
                reason = self.pipelines.failure_reason(summary["PipelineExecutionArn"])
                if reason:
                    summary["PipelineExecutionFailureReason"] = reason
                else:
                    summary.pop("PipelineExecutionFailureReason", None)
        return json.dumps(document).encode()


def _answer(start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes) -> Iterable[bytes]:
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, service) from a SigV4 Authorization header, or None."""
    found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (found.group(1), found.group(2), found.group(3).lower()) if found else None


def _account(environ: dict[str, Any], access_key: str) -> str:
    """The moto account a request acts in, chosen the way moto's own responses choose it."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body; put back so that moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run a WSGI app to completion: (status, headers, body)."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        answer.update(status=status, headers=headers)
        return lambda chunk: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return answer["status"], answer["headers"], body


def _s3_writer(account: str, region: str) -> Callable[[str, str, bytes], None]:
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[account][get_partition(region)]

    def write(bucket: str, key: str, body: bytes) -> None:
        try:
            backend.put_object(bucket, key, body)
        except MissingBucket:
            raise ValidationError(f"the offline store's bucket {bucket!r} does not exist; create it before writing records") from None

    return write


def create_app(*, state_dir: Path | None = None, endpoint_url: str | None = None) -> LocalAwsApp:
    """The endpoint's WSGI app: moto's server application behind the Feature Store runtime and the
    pipeline executions (which need the endpoint's own URL, for the processes they run, and a state
    directory; without `endpoint_url`, pipelines are moto's alone)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    pipelines = None
    if endpoint_url is not None:
        pipelines = PipelineRuns(state_dir=state_dir or Path(tempfile.mkdtemp(prefix="mlops-pipelines-")), endpoint_url=endpoint_url)
    updates = None if state_dir is None else EndpointUpdates(router_from_process_file(state_dir))
    tracking = None if state_dir is None else TrackingServers(state_dir)
    return LocalAwsApp(DomainDispatcherApplication(create_backend_app), pipelines=pipelines, updates=updates, tracking=tracking)


def main(argv: list[str] | None = None) -> None:
    """Serve the local AWS endpoint until SIGTERM/SIGINT, threaded, like `python -m moto.server`."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(prog="python -m mlops.local.aws_server", description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="port (default $MOTO_PORT or 5000)")
    parser.add_argument("--state-dir", type=Path, help="where pipeline runs keep their files (default: a new temporary directory)")
    args = parser.parse_args(argv)
    # moto builds some URLs (presigned ones, SQS queue URLs) from MOTO_PORT
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = create_app(state_dir=args.state_dir, endpoint_url=f"http://{args.host}:{args.port}")

    def stop(signum: int, frame: Any) -> None:
        # The tracking servers' processes are this process's children: stop them even when only this
        # process is signalled (LocalEnvironment signals the whole process group).
        if app.tracking is not None:
            app.tracking.reset()
        sys.exit(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
