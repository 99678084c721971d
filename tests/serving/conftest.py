"""Fixtures for the serving container's tests; the helpers live in `serving_support.py`."""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

# Test modules import `serving_support` by name; this works under both pytest import modes.
sys.path.insert(0, str(Path(__file__).parent))

from mlops_serving.settings import Settings  # noqa: E402
from serving_support import RunningServer, build_artifact, make_module, start_server  # noqa: E402


@pytest.fixture(scope="session")
def model_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid model.tar.gz (session-wide, read-only)."""
    return build_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="session")
def reference() -> Callable[[list[list[float]]], list[float]]:
    """Predictions of the same module on already-encoded rows, rounded to float32."""
    module = make_module()

    def predict(rows: list[list[float]]) -> list[float]:
        with torch.inference_mode():
            return module(torch.tensor(rows, dtype=torch.float32)).tolist()

    return predict


@pytest.fixture(scope="module")
def server(model_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The server on the test model, capture on, shared by a test module."""
    settings = Settings(
        host="127.0.0.1", port=0, model_path=model_tar,
        capture_dir=tmp_path_factory.mktemp("capture"), variant="champion", endpoint_name="fraud",
        max_body_bytes=64 * 1024, max_wait_us=0,
    )
    running = start_server(settings)
    yield running
    running.stop()


