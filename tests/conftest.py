"""Fixtures shared by every test package.

`moto_server` is moto's real HTTP emulator of the AWS APIs on 127.0.0.1 (one per test session);
`aws` gives a test its own clean account state on it and the environment boto3 needs to reach it;
`stacks` a private copy of stacks/ for tests that change stack files; `aws_request_checks` the
botocore constraint checker of tests/components/test_aws_requests.py for any test folder.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Start moto's server on a free loopback port; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto account for one test, with boto3 pointed at the server through the environment."""
    import requests

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    yield moto_server


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's stacks/ that the test may change ($MLOPS_STACKS_DIR points at it)."""
    from specs.config import stack_files

    copy = tmp_path / "stacks"
    shutil.copytree(stack_files.ROOT / "stacks", copy, ignore=shutil.ignore_patterns("audit", ".locks"))
    monkeypatch.setenv(stack_files.STACKS_ENV, str(copy))
    return copy


@pytest.fixture(scope="session")
def aws_request_checks() -> ModuleType:
    """tests/components/test_aws_requests.py as a module (its `constraint_problems`: patterns, lengths,
    ranges, enums), loaded from its file: test folders are not packages, and an installed distribution
    ships a top-level `tests` package that would shadow an import."""
    path = Path(__file__).parent / "components" / "test_aws_requests.py"
    spec = importlib.util.spec_from_file_location("_aws_request_checks", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
