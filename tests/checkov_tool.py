"""Test utility: locate the checkov binary and run it over a directory, returning its findings.

checkov lives in its own virtual environment (`.venv-tools/checkov`, made by scripts/bootstrap from
tests/tools/checkov.txt) because its boto3 pin conflicts with the project's. Tests call it as a
process, once per framework over a directory of every file to check (it takes seconds to start).
Import it as `from checkov_tool import run_checkov` from a test package (a tests/<dir>/ with an
`__init__.py`: pytest then puts tests/ on sys.path).

Must not import: `pulumi`, `components`, `mlops`, `mlops_training`, `mlops_serving` (a test tool).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL_VENV = ROOT / ".venv-tools" / "checkov"
FRAMEWORKS = ("dockerfile", "github_actions", "gitlab_ci", "kubernetes", "secrets")


@dataclass(frozen=True)
class Finding:
    """One failed check: its id, the file (relative to the scanned directory) and the line range."""

    check_id: str
    name: str
    file: str
    lines: tuple[int, int]


@dataclass(frozen=True)
class Results:
    """What checkov reported for one framework: failed checks, and the ids that passed or were skipped."""

    failed: tuple[Finding, ...]
    passed: tuple[str, ...]
    skipped: tuple[str, ...]


def checkov_binary() -> str | None:
    """`$CHECKOV`, else the bootstrap's tool venv, else `checkov` on PATH; None when none exists."""
    if env := os.environ.get("CHECKOV"):
        return env
    beside = TOOL_VENV / "bin" / "checkov"
    if beside.exists():
        return str(beside)
    return shutil.which("checkov")


def run_checkov(directory: Path, framework: str, *, timeout: float = 300) -> Results:
    """Run checkov's `framework` checks over every file under `directory`.

    Raises RuntimeError when checkov is missing or fails to run (exit status other than 0 or 1, or
    no JSON report), so a broken tool never reads as "0 failed checks".
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework {framework!r} is not allowed; allowed: {', '.join(FRAMEWORKS)}")
    binary = checkov_binary()
    if binary is None:
        raise RuntimeError("checkov not found: run scripts/bootstrap (it installs tests/tools/checkov.txt into .venv-tools/checkov)")
    proc = subprocess.run(
        [binary, "--compact", "--output", "json", "--framework", framework,
         "--directory", str(directory), "--skip-download"],
        capture_output=True, text=True, check=False, timeout=timeout,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr[-2000:]}")
    return _parse(proc.stdout, framework)


def _parse(stdout: str, framework: str) -> Results:
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"checkov printed no JSON report for {framework}: {stdout[-2000:]!r}") from exc
    reports = report if isinstance(report, list) else [report]
    failed: list[Finding] = []
    passed: list[str] = []
    skipped: list[str] = []
    for one in reports:
        if "results" not in one:  # checkov's summary when no file of this framework was found
            if one.get("failed", 0) or one.get("passed", 0):
                raise RuntimeError(f"unexpected checkov report: {one!r}")
            continue
        results = one["results"]
        failed += [
            Finding(c["check_id"], c.get("check_name", ""), c["file_path"].lstrip("/"), tuple(c.get("file_line_range") or (0, 0)))
            for c in results.get("failed_checks", [])
        ]
        passed += [c["check_id"] for c in results.get("passed_checks", [])]
        skipped += [c["check_id"] for c in results.get("skipped_checks", [])]
    return Results(tuple(failed), tuple(passed), tuple(skipped))
