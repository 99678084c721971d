"""The team's audit log, `stacks/audit/<team>.jsonl`: one JSON line per promotion or rollback.

Appending, reading, who the actor is, and the champion history replayed from the log (promotions push,
rollbacks pop), which is how rollback finds the previous champion.

Must not import: boto3, botocore, pulumi or ruamel, nor the package's aws, pins, policy or flow modules
(tests/promotion/test_promote_layout.py checks it), nor `mlops_training`, `mlops_serving` or `torch` (the
CLI runs the containers as processes).
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specs.config import stack_files
from mlops.promote.errors import PromotionError

def audit_path(team: str) -> Path:
    """The team's audit log, beside its stack files."""
    return stack_files.stacks_dir() / "audit" / f"{team}.jsonl"


def append_audit(team: str, record: Mapping[str, Any]) -> Path:
    """Append one JSON line to the team's audit log, under a lock (other environments' promotions
    of the same team append to the same file under their own stack locks)."""
    path = audit_path(team)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=False, separators=(",", ":"), allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return path


def read_audit(team: str) -> list[dict[str, Any]]:
    """The team's audit records, oldest first. A line that is not JSON is an error naming it."""
    path = audit_path(team)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PromotionError(f"{path}:{number}: not a JSON audit record ({exc.msg}); fix or remove that line") from None
    return records


def actor() -> str:
    """Who is promoting: the CI's user, else git's user.email, else the login name."""
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        email = subprocess.run(
            ["git", "config", "user.email"], cwd=stack_files.ROOT, capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        if email:
            return email
    return os.environ.get("USER") or getpass.getuser()


def champion_history(records: list[dict[str, Any]], *, team: str, environment: str, model: str, refs: set[str]) -> list[dict[str, Any]]:
    """The champions of (team, environment, model), oldest first, replayed from the audit log:
    a promotion or a completed automatic rollout (mlops.rollout) pushes its pin (after the pin it
    replaced, for the first one), a rollback pops."""
    history: list[dict[str, Any]] = []
    for r in records:
        if (r.get("team"), r.get("to"), r.get("model")) != (team, environment, model) or not refs & set(r.get("variants", [])):
            continue
        pinned = {"version": r["target_version"], "model_data_url": r["model_data_url"], "package_arn": r.get("target_package_arn")}
        if r.get("action") == "promote" or (r.get("action") == "rollout" and r.get("phase") == "pinned"):
            if not history and r.get("previous"):
                history.append(r["previous"])
            history.append(pinned)
        elif r.get("action") == "rollback":
            if history:
                history.pop()
            if not history or history[-1]["version"] != pinned["version"]:
                history.append(pinned)
    return history

