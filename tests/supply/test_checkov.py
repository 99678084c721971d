"""checkov on both Dockerfiles and on the generated GitHub and GitLab workflows: 0 failed checks; every
skip sits in the file with its reason. checkov is a declared test dependency (tests/tools/checkov.txt,
installed by scripts/bootstrap); missing, it fails these tests rather than skipping them."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from checkov_tool import ROOT, checkov_binary, run_checkov
from mlops import ci

SKIP = re.compile(r"#\s*checkov:skip=(CKV\w+):\s*(\S.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def checkov() -> str:
    binary = checkov_binary()
    assert binary, "checkov not found: run scripts/bootstrap --test-tools (make test does; tests/tools/checkov.txt -> .venv-tools/checkov)"
    return binary


def _skips(texts: list[str]) -> list[str]:
    found = [m.group(1) for t in texts for m in SKIP.finditer(t)]
    bare = [line for t in texts for line in t.splitlines() if "checkov:skip=" in line and not SKIP.search(line)]
    assert not bare, f"a skip without a reason: {bare}"
    return found


def test_dockerfiles_pass_checkov(checkov, tmp_path: Path):
    texts = []
    for image in ("training", "serving"):
        (tmp_path / image).mkdir()
        shutil.copy(ROOT / image / "Dockerfile", tmp_path / image / "Dockerfile")
        texts.append((ROOT / image / "Dockerfile").read_text())
    results = run_checkov(tmp_path, "dockerfile")
    assert results.failed == (), results.failed
    assert "CKV_DOCKER_2" in results.passed  # a HEALTHCHECK in each
    assert sorted(results.skipped) == sorted(_skips(texts)) == ["CKV_DOCKER_3", "CKV_DOCKER_3"]


@pytest.mark.parametrize(("provider", "framework"), [("github", "github_actions"), ("gitlab", "gitlab_ci")])
def test_generated_workflows_pass_checkov(checkov, tmp_path: Path, provider: str, framework: str):
    files = ci.generate(provider, tmp_path)
    results = run_checkov(tmp_path, framework)
    assert results.failed == (), results.failed
    assert len(results.passed) > 10
    assert sorted(results.skipped) == sorted(_skips([f.read_text() for f in files]))
