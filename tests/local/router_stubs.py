"""Stub serving variants for the router's tests: plain HTTP servers the test controls."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlops.local.router import WAIT_CEILING_S


class Stub:
    """An HTTP variant that answers `{"variant": name, "n": k}` with `status` (200 by default); when `gated`, each request first
    announces itself on `arrived` and then waits for `release`."""

    def __init__(self, name: str, *, gated: bool = False, status: int = 200) -> None:
        self.name = name
        self.status = status
        self.received = 0
        self.arrived = threading.Semaphore(0)
        self.release = threading.Event()
        if not gated:
            self.release.set()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    stub.received += 1
                    n = stub.received
                stub.arrived.release()
                assert stub.release.wait(WAIT_CEILING_S), "the test never released the stub"
                body = json.dumps({"variant": stub.name, "n": n}).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
