"""The shared checkov helper (tests/checkov_tool.py) reports real findings, not an empty pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from checkov_tool import checkov_binary, run_checkov

pytestmark = pytest.mark.skipif(checkov_binary() is None, reason="checkov not installed: run scripts/bootstrap --test-tools (make test does)")


def test_run_checkov_reports_a_missing_healthcheck_and_a_skip_in_place(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\nUSER 1000\nCMD [\"python\"]\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "Dockerfile").write_text(
        "# checkov:skip=CKV_DOCKER_2: a test of skips\nFROM python:3.11-slim-bookworm\nUSER 1000\nCMD [\"python\"]\n"
    )
    results = run_checkov(tmp_path, "dockerfile")
    assert [(f.check_id, f.file) for f in results.failed] == [("CKV_DOCKER_2", "a/Dockerfile")]
    assert "CKV_DOCKER_2" in results.skipped
    assert "CKV_DOCKER_3" in results.passed


def test_run_checkov_rejects_an_unknown_framework(tmp_path: Path):
    with pytest.raises(ValueError, match="'cloudformationx' is not allowed"):
        run_checkov(tmp_path, "cloudformationx")
