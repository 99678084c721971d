"""The local environment: an embedded AWS (moto's server), the realized plan, serving processes per
variant, and the InvokeEndpoint router, all on 127.0.0.1, all recorded so `down` can stop them.

State lives in `.mlops/local/<stack>/`: the process table, the model registry journal (so a second
run keeps the first run's models even though the emulator starts empty), artifacts, the offline
store, captures and the report.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from specs.config import stack_files

STATE_ROOT_ENV = "MLOPS_LOCAL_STATE"
ACCOUNT_ID = "123456789012"
"""moto's account: local stacks must name it in aws:allowedAccountIds."""


START_CEILING_S = 120.0
"""How long a started process (moto, router, variant) may take to answer its health check before it
counts as broken: generous, since the two shared cores may be busy with other work."""


def state_root() -> Path:
    return Path(os.environ.get(STATE_ROOT_ENV) or stack_files.ROOT / ".mlops" / "local")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, *, timeout_s: float, expect: int = 200) -> None:
    """Poll `url` until it answers `expect`; raise TimeoutError naming the url and last answer."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == expect:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {expect} within {timeout_s:.0f} s (last: {last})")


@dataclass
class Process:
    """A process the environment started."""

    role: str
    """moto, router or variant."""
    pid: int
    port: int
    log: str
    endpoint: str = ""
    variant: str = ""
    model_name: str = ""
    """The SageMaker Model this process serves (variants only)."""


class LocalEnvironment:
    """One stack's local environment."""

    def __init__(self, stack: str):
        self.stack = stack
        self.dir = state_root() / stack
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs = self.dir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.process_file = self.dir / "processes.json"
        self.registry_file = self.dir / "registry.json"
        self._clients: dict[tuple[str, str, str], Any] = {}

    # ---- processes -------------------------------------------------------------------------

    def processes(self) -> list[Process]:
        if not self.process_file.exists():
            return []
        return [Process(**p) for p in json.loads(self.process_file.read_text())]

    def _save(self, processes: list[Process]) -> None:
        tmp = self.process_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(p) for p in processes], indent=2))
        tmp.replace(self.process_file)

    def spawn(self, role: str, argv: list[str], *, port: int, env: dict[str, str] | None = None, **labels: str) -> Process:
        """Start `argv` in its own session (so `down` can stop it and its children) and record it."""
        log = self.logs / f"{role}{'-' + labels['variant'] if labels.get('variant') else ''}-{port}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True, cwd=stack_files.ROOT,
            )
        record = Process(role=role, pid=proc.pid, port=port, log=str(log), **labels)
        self._save([*self.processes(), record])
        return record

    def stop(self, record: Process, *, timeout_s: float = 15.0) -> None:
        """SIGTERM the process group (graceful drain), SIGKILL after `timeout_s`."""
        try:
            os.killpg(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(record.pid):
            time.sleep(0.05)
        if _alive(record.pid):
            try:
                os.killpg(record.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._save([p for p in self.processes() if p.pid != record.pid])

    def down(self) -> list[Process]:
        """Stop everything this environment started: variants first, then router, then moto."""
        order = {"variant": 0, "router": 1, "moto": 2}
        stopped = []
        for record in sorted(self.processes(), key=lambda p: order.get(p.role, 0)):
            self.stop(record)
            stopped.append(record)
        self.process_file.unlink(missing_ok=True)
        return stopped

    def find(self, role: str) -> Process | None:
        return next((p for p in self.processes() if p.role == role and _alive(p.pid)), None)

    # ---- the embedded AWS ------------------------------------------------------------------

    def start_moto(self) -> str:
        port = free_port()
        self.spawn("moto", [sys.executable, "-m", "mlops.local.aws_server", "-H", "127.0.0.1", "-p", str(port),
                                   "--state-dir", str(self.dir)], port=port)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/moto-api/", timeout_s=START_CEILING_S)
        return url

    def moto_url(self) -> str:
        moto = self.find("moto")
        if moto is None:
            raise RuntimeError(f"the local environment of {self.stack} is not running; start it with `mlops local up -s {self.stack}`")
        return f"http://127.0.0.1:{moto.port}"

    def session(self, region: str) -> boto3.Session:
        return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for the embedded AWS; one per service (creating one loads its API model)."""
        url = self.moto_url()
        key = (service, region, url)
        if key not in self._clients:
            self._clients[key] = self.session(region).client(service, endpoint_url=url)
        return self._clients[key]

    def aws_env(self, region: str) -> dict[str, str]:
        """Environment that points a child process's boto3 at the embedded AWS."""
        return {
            "AWS_ENDPOINT_URL": self.moto_url(),
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
        }

    # ---- registry journal ------------------------------------------------------------------

    def journal(self) -> list[dict[str, Any]]:
        return json.loads(self.registry_file.read_text()) if self.registry_file.exists() else []

    def record_version(self, entry: dict[str, Any]) -> None:
        entries = [e for e in self.journal() if not (e["group"] == entry["group"] and e["version"] == entry["version"])]
        tmp = self.registry_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted([*entries, entry], key=lambda e: (e["group"], e["version"])), indent=2))
        tmp.replace(self.registry_file)

    def record_endpoint_config(self, request: dict[str, Any]) -> None:
        """Keep a CreateEndpointConfig request whole (the emulator drops shadow variants)."""
        directory = self.dir / "endpoint-configs"
        directory.mkdir(exist_ok=True)
        (directory / f"{request['EndpointConfigName']}.json").write_text(json.dumps(request, indent=2))

    def endpoint_configs(self) -> dict[str, dict[str, Any]]:
        directory = self.dir / "endpoint-configs"
        return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")} if directory.exists() else {}

    def artifact_path(self, model: str, version: int) -> Path:
        return self.dir / "artifacts" / model / str(version) / "model.tar.gz"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def extract(archive: Path, target: Path) -> Path:
    """Unpack a model.tar.gz (members at the root, per the contract) into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target
