"""The real process, started the way the Dockerfile starts it: SIGTERM under load, and a bad model."""
from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

import pytest
from serving_support import (
    CAPTURE_PATH,
    WAIT_CEILING_S,
    build_artifact,
    free_port,
    read_capture,
    spawn_server,
    wait_for_ping,
    wait_until,
)

N_CLIENTS = 12
LOAD_BEFORE_SIGTERM = 100
"""Answered requests before SIGTERM is sent: enough load to test something, counted, not timed."""
BODY = json.dumps({"instances": [[12.5, 2, "fr"]]})


class Client(threading.Thread):
    """Closed-loop keep-alive client: sends until the server says `Connection: close` or refuses."""

    def __init__(self, port: int, name: str, stop_sending: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.port = port
        self.stop_sending = stop_sending
        self.sent: list[tuple[str, float]] = []  # (inference id, time the request was written)
        self.answers: dict[str, tuple[int, bytes, float]] = {}
        self.failures: list[str] = []
        self.refused = 0

    def run(self) -> None:
        conn = None
        n = 0
        deadline = time.monotonic() + WAIT_CEILING_S  # a ceiling: the server closing ends the loop
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_CEILING_S)
                try:
                    conn.connect()
                except ConnectionRefusedError:
                    self.refused += 1  # the listener is closed: nothing was sent
                    return
            iid = f"{self.name}-{n}"
            n += 1
            try:
                conn.request("POST", "/invocations", BODY, {
                    "Content-Type": "application/json", "X-Amzn-SageMaker-Inference-Id": iid})
            except OSError as exc:
                self.failures.append(f"{iid}: send failed: {exc!r}")
                return
            self.sent.append((iid, time.monotonic()))
            try:
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{iid}: no complete response: {exc!r}")
                return
            self.answers[iid] = (resp.status, body, time.monotonic())
            if resp.getheader("Connection") == "close":
                conn.close()
                conn = None
                if self.stop_sending.is_set():
                    return


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return build_artifact(tmp_path / "artifact")


def test_sigterm_under_load_answers_and_captures_every_request_then_exits_0(artifact: Path, tmp_path: Path) -> None:
    port = free_port()
    capture = tmp_path / "capture"
    # A 20 ms batching wait keeps requests queued in the batcher, so SIGTERM lands while
    # requests are genuinely in flight.
    proc = spawn_server(
        ["serve", "--host", "127.0.0.1", "--port", str(port), "--model-path", str(artifact)],
        {"MLOPS_CAPTURE_DIR": str(capture), "MLOPS_VARIANT": "champion", "MLOPS_MAX_WAIT_US": "20000",
         "MLOPS_MAX_BATCH": "256", "MLOPS_LOG_LEVEL": "INFO"},
    )
    try:
        wait_for_ping(port)
        stop_sending = threading.Event()
        clients = [Client(port, f"c{k}", stop_sending) for k in range(N_CLIENTS)]
        for c in clients:
            c.start()
        wait_until(lambda: sum(len(c.answers) for c in clients) >= LOAD_BEFORE_SIGTERM or None,
                   what=f"{LOAD_BEFORE_SIGTERM} answered requests before SIGTERM")
        sigterm_at = time.monotonic()
        stop_sending.set()
        proc.send_signal(signal.SIGTERM)
        for c in clients:
            c.join(WAIT_CEILING_S)
        assert proc.wait(WAIT_CEILING_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.stdout.read()
    assert not [f for c in clients for f in c.failures], output
    sent = {iid: t for c in clients for iid, t in c.sent}
    answers = {iid: a for c in clients for iid, a in c.answers.items()}
    assert set(answers) == set(sent)
    assert len(sent) >= LOAD_BEFORE_SIGTERM
    in_flight = [iid for iid, t in sent.items() if t < sigterm_at < answers[iid][2]]
    assert in_flight, "no request was in flight when SIGTERM arrived"
    for iid, (status, body, _) in answers.items():
        assert status == 200, (iid, body)
        assert len(json.loads(body)["predictions"]) == 1
    # Everything was flushed and every file finalised: no .partial left behind.
    assert not list(capture.rglob("*.partial"))
    files = [p.relative_to(capture).as_posix() for p in capture.rglob("*.jsonl")]
    assert files and all(CAPTURE_PATH.match(f) for f in files), files
    records = {r["eventMetadata"]["inferenceId"]: r for r in read_capture(capture)}
    assert set(records) == set(answers)
    for iid, (_, body, _) in answers.items():
        assert records[iid]["captureData"]["endpointOutput"]["data"] == body.decode()
        assert records[iid]["captureData"]["endpointInput"]["data"] == BODY
    assert "stopped" in output


def test_model_that_fails_to_load_keeps_ping_at_503_and_the_process_up(tmp_path: Path) -> None:
    broken = build_artifact(tmp_path / "broken", raw_members={"model.pt": b"not a torchscript file"})
    port = free_port()
    proc = spawn_server(["--host", "127.0.0.1", "--port", str(port)], {"SM_MODEL_DIR": str(broken)})
    try:
        wait_for_ping(port, status=503)
        def load_ended() -> tuple[http.client.HTTPResponse, dict] | None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_CEILING_S)
            conn.request("GET", "/ping")
            resp = conn.getresponse()
            body = json.loads(resp.read())
            conn.close()
            return None if body["error"] == "model is loading" else (resp, body)

        resp, body = wait_until(load_ended, what="the model load ended")
        assert resp.status == 503
        assert body["error"].startswith(f"model failed to load: {broken}: model.pt is not a loadable TorchScript")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_CEILING_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
