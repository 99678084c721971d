"""Fixtures for the local-environment tests.

`request_problems` checks one `ApiCall` the way tests/components/test_aws_requests.py checks the
component requests: botocore's ParamValidator (types, required members, unknown members) plus that
module's `constraint_problems` (patterns, lengths, ranges, enums), from tests/conftest.py's
`aws_request_checks`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import botocore.session
import pytest
from botocore.validate import ParamValidator

from mlops.local.environment import free_port, wait_http
from mlops.local.realize import ApiCall

ROOT = Path(__file__).resolve().parents[2]

# Application Auto Scaling's ResourceId pattern spans surrogate code points ([\u0020-\uD7FF...]),
# which the `regex` module refuses to compile; its calls get ParamValidator's checks only.
_NO_PATTERN_CHECK = {"application-autoscaling"}


@pytest.fixture(scope="session")
def request_problems(aws_request_checks: ModuleType) -> Callable[[ApiCall], list[str]]:
    """A function: ApiCall -> what botocore's service model finds wrong with it ([] when valid)."""
    checks = aws_request_checks
    session = botocore.session.get_session()
    clients = {}

    def problems(call: ApiCall) -> list[str]:
        client = clients.setdefault(call.service, session.create_client(
            call.service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))
        operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[call.operation])
        report = ParamValidator().validate(call.params, operation.input_shape)
        found = [report.generate_report()] if report.has_errors() else []
        if call.service not in _NO_PATTERN_CHECK:
            found += checks.constraint_problems(call.params, operation.input_shape, operation.name)
        return found

    return problems


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The local AWS endpoint (mlops.local.aws_server) as a subprocess with a state directory, as
    LocalEnvironment starts it: (URL, state directory)."""
    port, state = free_port(), tmp_path_factory.mktemp("state")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops.local.aws_server", "-H", "127.0.0.1", "-p", str(port), "--state-dir", str(state)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/moto-api/", timeout_s=60)
        yield url, state
    finally:
        proc.terminate()
        proc.wait(timeout=30)
