"""`mlops local up -s demo-local --no-demo` on a cold machine (an empty state directory): it trains
the versions the stack pins and serves them, refuses pins it cannot produce before starting
anything, and on a failure stops every process it started."""
from __future__ import annotations

import json
import re
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from specs.config import stack_files
from mlops.cli import app
from mlops.local.environment import STATE_ROOT_ENV, LocalEnvironment, _alive

STACK = "demo-local"
TEAM_FILE = "teams/demo.yaml"


@pytest.fixture
def cold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh local state directory and a private copy of stacks/ (returned) whose training is quick."""
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_LOG_DIR", str(tmp_path / "logs"))
    stacks = tmp_path / "stacks"
    shutil.copytree(stack_files.ROOT / "stacks", stacks, ignore=shutil.ignore_patterns("audit", ".locks"))
    monkeypatch.setenv(stack_files.STACKS_ENV, str(stacks))
    edit(stacks, lambda d: d["training"]["hyperparameters"].update(epochs=1))
    yield stacks
    LocalEnvironment(STACK).down()  # whatever a failing assertion left running


def edit(stacks: Path, change) -> None:
    path = stacks / TEAM_FILE
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def up():
    return CliRunner().invoke(app, ["local", "up", "-s", STACK, "--no-demo"])


def refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_cold_no_demo_trains_the_pinned_versions_and_serves_them(cold: Path):
    result = up()

    assert result.exit_code == 0, result.output
    assert "trained and registered demo-local-fraud-detector v1" in result.stdout
    assert "trained and registered demo-local-fraud-detector v2" in result.stdout
    env = LocalEnvironment(STACK)
    variants = {p.variant: p for p in env.processes() if p.role == "variant"}
    assert set(variants) == {"champion", "challenger"}
    for process in variants.values():
        with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/ping", timeout=10) as response:
            assert response.status == 200
    assert [e["version"] for e in env.journal()] == [1, 2]
    # The stack's MLflow tracking server (the local endpoint runs it) has both training runs.
    url = result.stdout.split("MLflow: ", 1)[1].split()[0]
    search = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=b'{"experiment_ids": ["1"]}',
                                    headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(search, timeout=30) as response:
        runs = json.loads(response.read())["runs"]
    assert sorted(r["info"]["run_name"] for r in runs) == [f"{STACK}-fraud-detector-1", f"{STACK}-fraud-detector-2"]
    down = CliRunner().invoke(app, ["local", "down", "-s", STACK])
    assert down.exit_code == 0 and "stopped 4 process(es)" in down.stdout
    assert refuses_connections(int(url.rsplit(":", 1)[1]))  # stopped with the endpoint


def test_pins_local_training_cannot_produce_are_refused_before_anything_starts(cold: Path):
    elsewhere = "s3://demo-local-artifacts-123456789012/elsewhere/model.tar.gz"
    edit(cold, lambda d: d["endpoints"]["scoring"]["traffic"]["variants"]["challenger"].update(model_data_url=elsewhere))

    result = up()

    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"stack {STACK} cannot be brought up locally: fraud-detector version 2 is pinned at {elsewhere} but local training "
        "would register it at s3://demo-local-artifacts-123456789012/models/fraud-detector/2/model.tar.gz; pin model_data_url "
        f"to where the local registry keeps each version (state: {LocalEnvironment(STACK).dir})"
    )
    assert LocalEnvironment(STACK).processes() == []
    assert not list(LocalEnvironment(STACK).logs.glob("moto-*.log"))


def test_a_failure_after_the_emulator_and_router_started_stops_every_process(cold: Path):
    # A learning rate the training container refuses: training fails after moto and the router are up.
    edit(cold, lambda d: d["training"]["hyperparameters"].update(learning_rate=-1))

    result = up()

    assert result.exit_code == 70, result.output
    lines = result.stderr.strip().splitlines()
    stopped = next(line for line in lines if line.startswith("mlops local up failed; stopped the 2 process(es) it started: "))
    processes = re.findall(r"(\w+) \(pid (\d+), port (\d+)\)", stopped)
    assert sorted(role for role, _, _ in processes) == ["moto", "router"]
    for _, pid, port in processes:
        assert not _alive(int(pid))
        assert refuses_connections(int(port))
    assert re.fullmatch(r"mlops: internal error \(RuntimeError: training fraud-detector v1 failed \(exit \d+\); see .*train-fraud-detector-1\.log:\); "
                        r"traceback in \S+; please report it with that file", lines[-1]), lines[-1]
    assert LocalEnvironment(STACK).processes() == []
