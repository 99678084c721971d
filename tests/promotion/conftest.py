"""Fixtures for the promotion tests: a private copy of stacks/ and a three-account registry on moto."""
from __future__ import annotations

from pathlib import Path

import pytest

from specs.config import stack_files
from promotion_support import ACCOUNTS, build_world, role_arn


@pytest.fixture
def world(aws: str, stacks: Path, monkeypatch: pytest.MonkeyPatch):
    """Registries and buckets per environment, each reached through a role in its own account."""
    for env in ACCOUNTS:
        monkeypatch.setenv(f"MLOPS_AWS_ROLE_ARN_{env.upper()}", role_arn(env))
        monkeypatch.delenv(f"MLOPS_AWS_PROFILE_{env.upper()}", raising=False)
    monkeypatch.setenv("GITHUB_ACTOR", "test-operator")
    return build_world()
