"""`mlops` exit codes, one test per class, through the CLI: 0 success, 1 refused by a policy or a gate,
2 configuration error, 64 usage error, 70 internal error (traceback in a log file, one line on stderr)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from specs.config import stack_files
from mlops import cli
from mlops.cli import app

REPO = stack_files.ROOT


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", copy, ignore=shutil.ignore_patterns("audit", ".locks"))
    monkeypatch.setenv(stack_files.STACKS_ENV, str(copy))
    return copy


def test_success_exits_0():
    result = run("stacks")
    assert result.exit_code == 0, result.output
    assert "fraud-prod" in result.stdout.splitlines()


def test_a_mandatory_policy_violation_exits_1(stacks: Path):
    path = stacks / "Pulumi.pricing-dev.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["mlops:overrides"]["monitoring"]["alarms"] = False  # valid config, refused by the policy pack
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run("plan", "--stack", "pricing-dev", "--quiet")
    assert result.exit_code == 1, result.output
    assert "1 stack(s) planned, 0 with configuration errors, 1 mandatory policy violation(s)" in result.stdout


def test_a_configuration_error_exits_2(stacks: Path):
    result = run("plan", "--stack", "nope-dev")
    assert result.exit_code == 2, result.output
    assert "0 stack(s) planned, 1 with configuration errors, 0 mandatory policy violation(s)" in result.stdout
    assert "nope-dev" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "--bogus"], "No such option: --bogus"),
    (["promote", "--team", "fraud"], "Missing option '--model'"),
    (["plan"], "give exactly one of --stack NAME or --all"),
    (["ci", "generate", "--provider", "jenkins"], "--provider 'jenkins' is not allowed; allowed: github, gitlab"),
    (["promote", "--team", "fraud", "--model", "fraud-detector", "--from", "dev", "--to", "staging", "--dry-run", "--check"],
     "--dry-run and --check exclude each other"),
    (["promote", "--team", "fraud", "--model", "fraud-detector", "--from", "prod", "--to", "staging", "--dry-run"],
     "cannot promote from prod to staging: promotion moves forward (dev -> staging -> prod)"),
    (["train", "-s", "pricing-dev", "--model", "nope", "--dry-run"], "unknown model 'nope' in pricing-dev; defined: basket-price"),
])
def test_usage_errors_exit_64_saying_what_was_wrong(args: list[str], message: str):
    result = run(*args)
    assert result.exit_code == 64, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_no_command_prints_the_help_and_exits_64():
    result = run()
    assert result.exit_code == 64
    assert "Usage:" in result.output


def test_an_unexpected_exception_exits_70_with_one_line_naming_the_log_with_the_traceback(tmp_path, monkeypatch):
    def broken() -> list[str]:
        raise RuntimeError("stacks index corrupted\nsecond line")

    monkeypatch.setattr(stack_files, "list_stacks", broken)
    monkeypatch.setenv(cli.LOG_DIR_ENV, str(tmp_path / "logs"))

    result = run("stacks")

    assert result.exit_code == 70
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    match = re.fullmatch(r"mlops: internal error \(RuntimeError: stacks index corrupted\); traceback in (\S+); please report it with that file", line)
    assert match, line
    log = Path(match.group(1))
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert text.startswith("mlops stacks\n")
    assert "Traceback (most recent call last)" in text and "in broken" in text and "RuntimeError: stacks index corrupted\nsecond line" in text


def test_the_traceback_goes_to_the_temp_dir_when_the_log_dir_is_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(stack_files, "list_stacks", lambda: 1 / 0)
    monkeypatch.setenv(cli.LOG_DIR_ENV, str(blocker / "logs"))  # cannot mkdir under a file
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)

    result = run("stacks")

    assert result.exit_code == 70
    path = Path(re.search(r"traceback in (\S+);", result.stderr).group(1))
    assert path.parent == tmp_path / "tmp" / "mlops-logs"
    assert "ZeroDivisionError: division by zero" in path.read_text()


def test_the_installed_entry_point_maps_exit_codes_and_its_help_lists_them():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("", "training", "serving", "contracts"))}
    usage = subprocess.run([sys.executable, "-m", "mlops.cli", "plan", "--bogus"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert usage.returncode == 64, usage.stderr
    assert "No such option: --bogus" in usage.stderr
    helped = subprocess.run([sys.executable, "-m", "mlops.cli", "--help"], cwd=REPO, env={**env, "COLUMNS": "300"}, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "Exit codes: 0 success; 1 refused by a policy or a gate" in text
    assert "2 configuration error; 64 usage error; 70 internal error" in text
