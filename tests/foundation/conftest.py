"""Fixtures for config and plan tests: a private copy of the shipped stacks to break on purpose."""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from specs.config import stack_files

SHIPPED = stack_files.ROOT / "stacks"


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A writable copy of stacks/, in force for the CLI and the program through MLOPS_STACKS_DIR."""
    target = tmp_path / "stacks"
    shutil.copytree(SHIPPED, target)
    monkeypatch.setenv(stack_files.STACKS_ENV, str(target))
    yield target


@pytest.fixture
def edit(stacks: Path) -> Callable[[str, Callable[[dict[str, Any]], None]], Path]:
    """edit("Pulumi.fraud-prod.yaml", fn): load that YAML file, let fn change it, write it back."""

    def apply(relative: str, change: Callable[[dict[str, Any]], None]) -> Path:
        path = stacks / relative
        doc = yaml.safe_load(path.read_text())
        change(doc)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    return apply


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Run `mlops ARGS...` in-process; returns click's Result (exit_code, stdout, stderr)."""
    from mlops.cli import app

    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def invalid(cli: Callable[..., Any]) -> Callable[..., str]:
    """invalid(stack, *expected): `mlops config validate` refuses the stack with exit 2 and no
    traceback, and its report names each `expected` text; returns the report."""

    def check(stack: str, *expected: str) -> str:
        result = cli("config", "validate", "--stack", stack)
        assert result.exit_code == 2, result.stdout
        assert "Traceback" not in result.stderr + result.stdout
        for text in expected:
            assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"
        return result.stderr

    return check
