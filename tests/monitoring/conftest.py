"""Fixtures of the monitoring job's tests; the helpers live in `monitor_support.py`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test modules import `monitor_support` by name; this works under both pytest import modes.
sys.path.insert(0, str(Path(__file__).parent))

import monitor_support  # noqa: E402


@pytest.fixture(scope="session")
def baseline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """baseline.json of 20,000 synthetic training rows, computed by the training container's code."""
    return monitor_support.write_baseline(tmp_path_factory.mktemp("baseline"))
