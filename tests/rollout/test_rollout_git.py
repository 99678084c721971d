"""The cloud backend's `persist`: each rollout step is committed and pushed (rebasing on what others
pushed meanwhile) before `pulumi up` deploys it. Real git, a bare repository as origin."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops.rollout.backends import commit_and_push


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path]:
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    clones = []
    for name in ("ci", "someone"):
        clone = tmp_path / name
        git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
        git("config", "user.email", f"{name}@example.com", cwd=clone)
        git("config", "user.name", name, cwd=clone)
        git("checkout", "-q", "-b", "main", cwd=clone)
        clones.append(clone)
    (clones[0] / "stacks").mkdir()
    (clones[0] / "stacks" / "Pulumi.t-dev.yaml").write_text("config: {}\n")
    git("add", ".", cwd=clones[0])
    git("commit", "-q", "-m", "first", cwd=clones[0])
    git("push", "-q", "origin", "main", cwd=clones[0])
    git("pull", "-q", "origin", "main", cwd=clones[1])
    return clones[0], clones[1]


def test_a_step_is_committed_and_pushed_on_top_of_what_others_pushed(clones):
    ci, someone = clones
    (someone / "README").write_text("meanwhile\n")
    git("add", "README", cwd=someone)
    git("commit", "-q", "-m", "meanwhile", cwd=someone)
    git("push", "-q", "origin", "main", cwd=someone)
    stack = ci / "stacks" / "Pulumi.t-dev.yaml"
    stack.write_text("config: {mlops:overrides: {}}\n")
    audit = ci / "stacks" / "audit" / "t.jsonl"  # not written yet: skipped
    assert commit_and_push([stack, audit], message="rollout t-dev/scoring: v5 into shadow", branch="main") is True
    git("pull", "-q", "origin", "main", cwd=someone)
    assert git("log", "--format=%s", cwd=someone).splitlines()[:2] == ["rollout t-dev/scoring: v5 into shadow", "meanwhile"]
    assert (someone / "stacks" / "Pulumi.t-dev.yaml").read_text() == "config: {mlops:overrides: {}}\n"


def test_nothing_changed_commits_nothing(clones):
    ci, _ = clones
    head = git("rev-parse", "HEAD", cwd=ci)
    assert commit_and_push([ci / "stacks" / "Pulumi.t-dev.yaml"], message="m", branch="main") is False
    assert git("rev-parse", "HEAD", cwd=ci) == head


def test_a_push_that_keeps_failing_is_an_error_naming_git(clones, tmp_path):
    ci, _ = clones
    git("remote", "set-url", "origin", str(tmp_path / "gone.git"), cwd=ci)
    stack = ci / "stacks" / "Pulumi.t-dev.yaml"
    stack.write_text("config: {x: 1}\n")
    with pytest.raises(RuntimeError, match="failed 3 times"):
        commit_and_push([stack], message="m", branch="main")
