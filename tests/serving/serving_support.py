"""Helpers for the serving container's tests (imported by conftest.py and the test modules).

`build_artifact` writes a `model.tar.gz` exactly as contracts.md §2 describes it (all five members
at the archive root), around a small TorchScript MLP whose inputs are a Fractional, a nullable
Integral and a String feature; the module does its own NaN imputation and one-hot encoding, as the
contract requires. `start_server` starts the real server (the same `serve()` that `mlops-serve`
runs) on a free loopback port in a background thread.
"""
from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mlops_serving.settings import Settings

WAIT_CEILING_S = 120.0
"""How long a test waits for an event (a state, a file, a process's readiness) before calling it a
bug: generous, so that a loaded machine only makes a test slower, never makes it fail."""

CATEGORIES = ["de", "fr", "it"]
SCHEMA: dict[str, Any] = {
    "format_version": 1,
    "record_identifier": "transaction_id",
    "event_time": "event_time",
    "label": "is_fraud",
    "task": "binary_classification",
    "features": [
        {"name": "amount", "type": "Fractional", "nullable": False, "min": 0.0, "max": 100000.0},
        {"name": "n_items", "type": "Integral", "nullable": True},
        {"name": "country", "type": "String", "nullable": False, "categories": CATEGORIES},
    ],
}
MODEL_VERSION = "3"


class FraudMLP(nn.Module):
    """Input float32 [N, 3] in the contract's encoding; output P(class 1) as float32 [N]."""

    def __init__(self, n_categories: int) -> None:
        super().__init__()
        self.n_codes = n_categories + 1  # code 0 is "unknown category"
        self.net = nn.Sequential(nn.Linear(3 + self.n_codes, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        amount = x[:, 0:1] / 100.0
        n_items = x[:, 1:2]
        missing = torch.isnan(n_items).to(torch.float32)
        n_items = torch.nan_to_num(n_items, nan=0.0)
        code = torch.nan_to_num(x[:, 2], nan=0.0).to(torch.int64)
        onehot = nn.functional.one_hot(code, self.n_codes).to(torch.float32)
        h = torch.cat([amount, n_items, missing, onehot], dim=1)
        return torch.sigmoid(self.net(h)).reshape(-1)


def make_module() -> torch.jit.ScriptModule:
    """The scripted test model, with fixed random weights."""
    torch.manual_seed(7)
    module = FraudMLP(len(CATEGORIES))
    module.eval()
    return torch.jit.script(module)


def build_artifact(
    dest: Path,
    *,
    module: torch.jit.ScriptModule | None = None,
    schema: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    skip: tuple[str, ...] = (),
    raw_members: dict[str, bytes] | None = None,
) -> Path:
    """Write `dest/model.tar.gz` per contracts.md §2; `skip`/`raw_members` make broken variants."""
    dest.mkdir(parents=True, exist_ok=True)
    module = module if module is not None else make_module()
    schema = SCHEMA if schema is None else schema
    model_buf = io.BytesIO()
    torch.jit.save(module, model_buf)
    state_buf = io.BytesIO()
    torch.save(module.state_dict(), state_buf)
    meta = {
        "model_name": "fraud-mlp",
        "model_version": MODEL_VERSION,
        "task": schema.get("task", "binary_classification"),
        "data_fingerprint": hashlib.sha256(b"training data").hexdigest(),
        "code_version": "0123abc",
        "hyperparameters": {"hidden": 16, "epochs": 1},
        "created_at": "2026-11-22T06:00:00Z",
        "metrics": {"task": "binary_classification", "split": "validation", "n_rows": 100, "auc": 0.5},
    }
    meta.update(metadata or {})
    baseline = {
        "format_version": 1,
        "n_rows": 100,
        "features": {
            "amount": {"type": "Fractional", "null_rate": 0.0, "mean": 50.0, "std": 10.0},
            "n_items": {"type": "Integral", "null_rate": 0.1, "mean": 2.0, "std": 1.0},
            "country": {"type": "String", "null_rate": 0.0,
                        "category_frequencies": {"de": 0.5, "fr": 0.3, "it": 0.2}},
        },
        "prediction": {"type": "Fractional", "null_rate": 0.0, "mean": 0.5, "std": 0.1},
    }
    members = {
        "model.pt": model_buf.getvalue(),
        "schema.json": json.dumps(schema).encode(),
        "metadata.json": json.dumps(meta).encode(),
        "baseline.json": json.dumps(baseline).encode(),
        "state_dict.pt": state_buf.getvalue(),
    }
    members.update(raw_members or {})
    path = dest / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def encode_row(amount: float, n_items: float | None, country: str) -> list[float]:
    """The contract's model-input encoding of one row, written independently of the server."""
    code = CATEGORIES.index(country) + 1 if country in CATEGORIES else 0
    return [float(amount), float("nan") if n_items is None else float(n_items), float(code)]


@dataclass
class Response:
    """A complete HTTP response as the client saw it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningServer:
    """A server started in-process; `request` sends one request on a fresh connection."""

    host: str
    port: int
    capture_dir: Path | None
    app: Any
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    thread: threading.Thread
    result: dict[str, Any] = field(default_factory=dict)

    def request(
        self, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
    ) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def invoke(self, payload: Any, *, content_type: str = "application/json", **headers: str) -> Response:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        return self.request("POST", "/invocations", body,
                            {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}})

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
            self.thread.join(WAIT_CEILING_S)


def start_server(settings: Settings, *, wait_ready: bool = True) -> RunningServer:
    """Run `serve(settings)` on its own event loop in a thread; return once it listens."""
    from mlops_serving.server import new_event_loop, serve

    listening = threading.Event()
    box: dict[str, Any] = {}

    def on_listening(app: Any, server: Any) -> None:
        box["app"], box["port"] = app, server.port
        listening.set()

    def target() -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        box["loop"] = loop
        box["stop"] = asyncio.Event()
        try:
            box["clean"] = loop.run_until_complete(serve(settings, stop=box["stop"], on_listening=on_listening))
        except BaseException as exc:  # surfaced by the test through `result`
            box["error"] = exc
            listening.set()
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="test-server", daemon=True)
    thread.start()
    assert listening.wait(WAIT_CEILING_S), "server did not start listening"
    if "error" in box:
        raise box["error"]
    server = RunningServer(
        host="127.0.0.1", port=box["port"], capture_dir=settings.capture_dir, app=box["app"],
        loop=box["loop"], stop_event=box["stop"], thread=thread, result=box,
    )
    if wait_ready:
        def ready() -> bool:
            assert box["app"].state != "failed", box["app"].load_error
            return server.request("GET", "/ping").status == 200

        wait_until(ready, what="model loaded (/ping 200)")
    return server


def wait_until(condition: Callable[[], Any], *, what: str, timeout_s: float = WAIT_CEILING_S) -> Any:
    """Poll `condition()` until it returns something truthy and return that; fail naming `what`
    once `timeout_s` (a ceiling only a bug reaches) has passed."""
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.02)
    return result


def free_port() -> int:
    """A loopback port that was free a moment ago (for subprocess servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def entry_point() -> list[str]:
    """The Dockerfile's ENTRYPOINT (`mlops-serve`), or its module form when the script is not on disk."""
    script = Path(sys.executable).with_name("mlops-serve")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlops_serving"]


def spawn_server(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start the server as a child process through `entry_point()`."""
    return subprocess.Popen(
        [*entry_point(), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_for_ping(port: int, *, status: int = 200, timeout: float = WAIT_CEILING_S) -> None:
    """Poll GET /ping until it answers `status`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            last = conn.getresponse().status
            conn.close()
            if last == status:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"/ping did not answer {status} within {timeout}s (last: {last!r})")


def read_capture(root: Path, *, include_partial: bool = False) -> list[dict[str, Any]]:
    """Every record of every finished capture file under `root` (and of open ones if asked)."""
    records = []
    paths = list(root.rglob("*.jsonl"))
    if include_partial:
        paths += root.rglob("*.jsonl.partial")
    for path in sorted(paths):
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # Only the last line of a file being written may be cut short.
                if not (include_partial and n == len(lines) - 1 and path.suffix == ".partial"):
                    raise
    return records


CAPTURE_PATH = re.compile(r"^[^/]+/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")


def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes the connection (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError:
            chunks.append(b"<timeout>")
    return b"".join(chunks)


def parse_responses(data: bytes) -> list[Response]:
    """Split a byte stream of HTTP/1.1 responses (Content-Length framed) into `Response`s."""
    out = []
    while data.startswith(b"HTTP/1."):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        out.append(Response(status, headers, rest[:length]))
        data = rest[length:]
    assert data in (b"", b"<timeout>"), f"trailing bytes after the responses: {data[:200]!r}"
    return out
