"""SageMaker's MLflow tracking server API, served by the local AWS endpoint (moto does not implement it),
each server a real `mlflow server` process (issue #20).

CreateMlflowTrackingServer, DescribeMlflowTrackingServer, ListMlflowTrackingServers and
DeleteMlflowTrackingServer arrive validated against botocore's model (mlops.local.aws_server). A created
server starts `Creating`, like AWS's, and becomes `Created` (IsActive `Active`) once its process answers
`/health`, or `CreateFailed` with the log's tail; DescribeMlflowTrackingServer then gives its
`TrackingServerUrl`, here `http://127.0.0.1:<port>`.

The process runs in the endpoint's process group, so `mlops local down`, which stops that group, stops
it too. Its SQLite store and artifacts live in `<state dir>/mlflow/<server name>/` and survive restarts:
a server created again under the same name finds its runs.

What differs from AWS (README, emulation limits): the artifacts are kept in that directory, not under the
request's ArtifactStoreUri; nothing authenticates (no SigV4, no `sagemaker-mlflow:*` permission checks);
and a job's MLFLOW_TRACKING_URI, which in AWS is the server's ARN resolved and signed by the
`sagemaker-mlflow` plugin, is replaced by the server's URL when the local job starts (`resolve_environment`).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.local.endpoint_updates import ValidationException  # SageMaker's control-plane validation error
from mlops.local.featurestore import FeatureStoreError

OPERATIONS = ("CreateMlflowTrackingServer", "DescribeMlflowTrackingServer", "ListMlflowTrackingServers", "DeleteMlflowTrackingServer")
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
ARN_PREFIX = "arn:aws:sagemaker:"
READY_CEILING_S = 180.0
"""How long a job waits for a `Creating` server (the process imports mlflow and migrates SQLite first)."""


class ResourceNotFound(FeatureStoreError):
    code = "ResourceNotFound"
    status = 400


@dataclass
class _Server:
    name: str
    arn: str
    request: dict[str, Any]
    created: datetime
    port: int
    status: str = "Creating"
    process: subprocess.Popen[bytes] | None = None

    def describe(self) -> dict[str, Any]:
        active = self.status == "Created"
        return {
            "TrackingServerArn": self.arn, "TrackingServerName": self.name,
            "ArtifactStoreUri": self.request["ArtifactStoreUri"],
            "TrackingServerSize": self.request.get("TrackingServerSize", "Small"),
            "MlflowVersion": self.request.get("MlflowVersion", ""),
            "RoleArn": self.request["RoleArn"], "TrackingServerStatus": self.status,
            "IsActive": "Active" if active else "Inactive",
            **({"TrackingServerUrl": f"http://127.0.0.1:{self.port}"} if active else {}),
            "WeeklyMaintenanceWindowStart": self.request.get("WeeklyMaintenanceWindowStart", "Tue:03:30"),
            "AutomaticModelRegistration": bool(self.request.get("AutomaticModelRegistration", False)),
            "CreationTime": self.created.timestamp(), "LastModifiedTime": self.created.timestamp(),
        }

    def summary(self) -> dict[str, Any]:
        full = self.describe()
        return {k: full[k] for k in ("TrackingServerArn", "TrackingServerName", "CreationTime", "LastModifiedTime",
                                     "TrackingServerStatus", "IsActive", "MlflowVersion")}


class TrackingServers:
    """The tracking servers of one local endpoint, keyed by (account, region, name)."""

    def __init__(self, state_dir: Path, *, start: Callable[[Path, int], subprocess.Popen[bytes]] | None = None):
        self.state_dir = state_dir
        self._start = start or _start_process
        self._servers: dict[tuple[str, str, str], _Server] = {}
        self._lock = threading.Lock()

    def handle(self, operation: str, params: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
        """Answer one validated request."""
        if operation == "CreateMlflowTrackingServer":
            return self.create(params, account=account, region=region)
        if operation == "ListMlflowTrackingServers":
            return self.list(params, account=account, region=region)
        server = self._find(params["TrackingServerName"], account=account, region=region)
        if operation == "DescribeMlflowTrackingServer":
            return server.describe()
        assert operation == "DeleteMlflowTrackingServer", operation
        with self._lock:
            self._servers.pop((account, region, server.name), None)
        _stop(server)
        return {"TrackingServerArn": server.arn}

    def create(self, params: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
        from mlops.local.environment import free_port

        name = params["TrackingServerName"]
        key = (account, region, name)
        with self._lock:
            if key in self._servers:
                raise ValidationException(f"a tracking server named {name} already exists in {region}; names are unique per account and region")
            server = _Server(name=name, arn=f"arn:aws:sagemaker:{region}:{account}:mlflow-tracking-server/{name}", request=dict(params),
                             created=datetime.now(UTC), port=free_port())
            self._servers[key] = server
        threading.Thread(target=self._launch, args=(server,), name=f"mlflow-{name}", daemon=True).start()
        return {"TrackingServerArn": server.arn}

    def _launch(self, server: _Server) -> None:
        from mlops.local.environment import wait_http

        root = self.state_dir / "mlflow" / server.name
        try:
            server.process = self._start(root, server.port)
            wait_http(f"http://127.0.0.1:{server.port}/health", timeout_s=READY_CEILING_S)
            server.status = "Created"
        except Exception:  # noqa: BLE001 (a server that does not start is CreateFailed, as in AWS; its log says why)
            server.status = "CreateFailed"
            _stop(server)

    def list(self, params: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
        with self._lock:
            servers = [s for (a, r, _), s in self._servers.items() if (a, r) == (account, region)]
        wanted = params.get("TrackingServerStatus")
        summaries = [s.summary() for s in sorted(servers, key=lambda s: s.created) if wanted in (None, s.status)]
        if params.get("SortOrder", "Descending") == "Descending":
            summaries.reverse()
        return {"TrackingServerSummaries": summaries[: params.get("MaxResults", 100)]}

    def _find(self, name: str, *, account: str, region: str) -> _Server:
        with self._lock:
            server = self._servers.get((account, region, name))
        if server is None:
            raise ResourceNotFound(f"tracking server {name} does not exist in {region}")
        return server

    def reset(self) -> None:
        """Stop every server and forget them (moto's backends were reset, or the endpoint stops)."""
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            _stop(server)


def _start_process(root: Path, port: int) -> subprocess.Popen[bytes]:
    from mlops.local import mlflow_server

    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "server.log", "ab")  # noqa: SIM115 (the child keeps it)
    # No new session: the server is stopped with the endpoint's process group.
    return subprocess.Popen(mlflow_server.command(root, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _stop(server: _Server) -> None:
    process = server.process
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def server_name_of(uri: str) -> str | None:
    """The tracking server's name when `uri` is a SageMaker tracking server ARN, else None."""
    if not uri.startswith(ARN_PREFIX) or ":mlflow-tracking-server/" not in uri:
        return None
    return uri.rsplit("/", 1)[-1]


def resolve_environment(environment: Mapping[str, str], sagemaker: Any, *, ceiling_s: float = READY_CEILING_S) -> dict[str, str]:
    """A job's environment with MLFLOW_TRACKING_URI, if it names a SageMaker tracking server by ARN,
    replaced by that server's URL (what the `sagemaker-mlflow` plugin does in AWS), once the server is
    `Created`. RuntimeError naming the server when it failed or is still not ready after `ceiling_s`."""
    env = dict(environment)
    name = server_name_of(env.get(TRACKING_URI_ENV, ""))
    if name is None:
        return env
    deadline = time.monotonic() + ceiling_s
    delay = 0.2
    from botocore.exceptions import ClientError

    while True:
        try:
            described = sagemaker.describe_mlflow_tracking_server(TrackingServerName=name)
        except ClientError as exc:
            raise RuntimeError(f"MLflow tracking server {name} ({TRACKING_URI_ENV}): {exc}") from None
        status = described["TrackingServerStatus"]
        if status == "Created":
            env[TRACKING_URI_ENV] = described["TrackingServerUrl"]
            return env
        if status != "Creating" or time.monotonic() > deadline:
            raise RuntimeError(f"MLflow tracking server {name} is {status}; see its server.log under the state directory's mlflow/{name}/")
        time.sleep(delay)  # a waiter on the API, as boto3's waiters poll
        delay = min(delay * 2, 2.0)
