"""The local MLflow tracking server (issue #20): a real `mlflow server` process with a SQLite backend
and a local artifact root under the environment's state directory, ready when `/health` answers.

A stack with `tracking.enabled` gets its server the way AWS gives it one: `mlops local up` realizes the
MlflowTrackingServer resource through the local endpoint (mlops.local.tracking_servers runs `command`).
`ensure` starts one for `mlops local tune` on a stack without tracking; `mlops local down` stops either.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops_training` or `mlops_serving` (the local
environment drives the containers as processes).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops.local.environment import LocalEnvironment, free_port, wait_http

READY_TIMEOUT_S = 120
"""A ceiling only a broken install reaches (the server imports mlflow and migrates SQLite first)."""


@dataclass(frozen=True)
class MlflowServer:
    """A running server: its process and URL."""

    pid: int
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM the server's process group (mlflow runs its workers as children) and wait."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return


def command(root: Path, port: int) -> list[str]:
    """The `mlflow server` command line: SQLite store and artifacts under `root`, on 127.0.0.1:`port`."""
    return [
        str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", (root / "artifacts").as_uri(), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]


def ensure(env: LocalEnvironment) -> str:
    """The URL of the stack's MLflow server, started (role "mlflow", stopped by `mlops local down`) unless
    one already runs. Its data persists in <state>/<stack>/mlflow/ across restarts."""
    running = env.find("mlflow")
    if running is not None:
        return f"http://127.0.0.1:{running.port}"
    root = env.dir / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env.spawn("mlflow", command(root, port), port=port)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", timeout_s=READY_TIMEOUT_S)
    return url


def start(root: Path, *, port: int | None = None) -> tuple[MlflowServer, subprocess.Popen[bytes]]:
    """Start `mlflow server` storing under `root` (mlflow.db, artifacts/) and wait until it is healthy."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(root / "server.log", "ab")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(command(root, port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = MlflowServer(pid=process.pid, port=port, root=root)
    try:
        wait_http(f"{server.url}/health", timeout_s=READY_TIMEOUT_S)
    except TimeoutError as exc:
        server.stop()
        tail = (root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the MLflow server did not become healthy: {exc}\n{tail}") from None
    return server, process
