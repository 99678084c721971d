"""UpdateEndpoint on the local AWS endpoint, and the update's state in DescribeEndpoint.

moto has no UpdateEndpoint, and its endpoint records are always `InService`. The local AWS endpoint
(mlops.local.aws_server) serves both operations itself, the way SageMaker reports a blue/green update:

- `UpdateEndpoint` is validated against botocore's model, refused as SageMaker refuses it (unknown
  endpoint or configuration, an endpoint that is neither `InService` nor `UpdateRollbackFailed`), then started on the stack's router
  (`POST /endpoints/{name}/update`, mlops.local.bluegreen runs it); the endpoint's record turns
  `Updating` at once, and the answer is `{"EndpointArn": ...}`.
- `DescribeEndpoint` and `ListEndpoints` first bring every updating record in line with what the
  router reports (`GET /endpoints/{name}/update`): still `Updating`; `InService` on the new
  configuration (its variants, `LastDeploymentConfig`) once the update succeeded; `InService` on the old
  configuration with the rollback's `FailureReason`; or `UpdateRollbackFailed`.

The router is the stack's, found in the local environment's process file (`processes.json` in the
state directory aws_server runs with).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops.local.featurestore import FeatureStoreError, ValidationError

UPDATING = "Updating"
ROUTER_TIMEOUT_S = 30.0


class ValidationException(ValidationError):
    """SageMaker's control-plane validation error (its `__type`)."""

    code = "ValidationException"


class RouterUnavailable(FeatureStoreError):
    """No router runs for the stack: nothing could run the update."""

    code = "ServiceUnavailable"
    status = 503


def router_from_process_file(state_dir: Path) -> Callable[[], str | None]:
    """A locator of the stack's router: its URL from the environment's process file, None without one."""
    process_file = Path(state_dir) / "processes.json"

    def locate() -> str | None:
        try:
            processes = json.loads(process_file.read_text())
        except (OSError, ValueError):
            return None
        router = next((p for p in processes if p.get("role") == "router"), None)
        return None if router is None else f"http://127.0.0.1:{router['port']}"

    return locate


@dataclass
class _Pending:
    account: str
    region: str
    config_name: str


class EndpointUpdates:
    """The endpoint updates the local AWS endpoint started, and their effect on moto's records."""

    def __init__(self, router_url: Callable[[], str | None]):
        self.router_url = router_url
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def update(self, params: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
        """UpdateEndpoint (already validated against botocore's model): refused as SageMaker would,
        else started on the router; the record turns Updating."""
        backend = _backend(account, region)
        name = params["EndpointName"]
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise ValidationException(f'Could not find endpoint "{_arn(account, region, "endpoint", name)}".')
        config_name = params["EndpointConfigName"]
        if config_name not in backend.endpoint_configs:
            raise ValidationException(f'Could not find endpoint configuration "{_arn(account, region, "endpoint-config", config_name)}".')
        with self._lock:
            self._sync(name, account=account, region=region)
            # UpdateRollbackFailed is recovered by another UpdateEndpoint (SageMaker's guide on rolling deployments).
            if endpoint.endpoint_status not in ("InService", "UpdateRollbackFailed"):
                raise ValidationException(f"Cannot update in-progress endpoint \"{endpoint.arn}\" (status {endpoint.endpoint_status}).")
            self._router("POST", name, params)
            endpoint.endpoint_status, endpoint.failure_reason = UPDATING, None
            endpoint.last_modified_time = datetime.now(timezone.utc)
            self._pending[name] = _Pending(account, region, config_name)
        return {"EndpointArn": endpoint.arn}

    def sync_all(self, *, account: str, region: str) -> None:
        """Bring every updating record of this account and region in line with the router."""
        with self._lock:
            for name, pending in list(self._pending.items()):
                if (pending.account, pending.region) == (account, region):
                    self._sync(name, account=account, region=region)

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()

    def _sync(self, name: str, *, account: str, region: str) -> None:
        pending = self._pending.get(name)
        if pending is None:
            return
        endpoint = _backend(account, region).endpoints.get(name)
        if endpoint is None:  # deleted while updating
            del self._pending[name]
            return
        described = self._router("GET", name)
        status = described["EndpointStatus"]
        if status == UPDATING:
            return
        del self._pending[name]
        endpoint.endpoint_status, endpoint.failure_reason = status, described.get("FailureReason")
        endpoint.last_deployment_config = described.get("LastDeploymentConfig")
        endpoint.last_modified_time = datetime.now(timezone.utc)
        if status == "InService" and not described.get("FailureReason"):
            config = _backend(account, region).describe_endpoint_config(pending.config_name)
            endpoint.endpoint_config_name = pending.config_name
            endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
            endpoint.data_capture_config = config.get("DataCaptureConfig")

    def _router(self, method: str, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.router_url()
        if url is None:
            raise RouterUnavailable("no router runs for this stack (start it with `mlops local up`), so no endpoint can be updated")
        data = None if params is None else json.dumps(params).encode()
        request = urllib.request.Request(f"{url}/endpoints/{quote(name, safe='')}/update", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=ROUTER_TIMEOUT_S) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                message = json.loads(raw).get("Message") or raw.decode(errors="replace")
            except ValueError:
                message = raw.decode(errors="replace")
            if error.code == 400:
                raise ValidationException(message) from None
            raise RouterUnavailable(f"the router answered HTTP {error.code}: {message}") from None
        except OSError as error:
            raise RouterUnavailable(f"the router at {url} does not answer: {error}") from None


def _backend(account: str, region: str) -> Any:
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends[account][region]


def _arn(account: str, region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"
