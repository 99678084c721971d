"""Model loading states as /ping and /invocations report them, and server-side failures as 500s."""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import torch
from serving_support import SCHEMA, WAIT_CEILING_S, RunningServer, build_artifact, make_module, start_server, wait_until

import mlops_serving.app as app_module
from mlops_serving.errors import ErrorMapper, InvalidInputError, ServingError
from mlops_serving.settings import Settings


def settings_for(path: Path, **extra) -> Settings:
    return Settings(host="127.0.0.1", port=0, model_path=path, **extra)


def wait_for_state(server: RunningServer, state: str) -> None:
    wait_until(lambda: server.app.state == state, what=f"app state {state} (it is {server.app.state})")


def test_ping_is_503_while_the_model_loads_and_200_once_it_is_loaded(
    model_tar: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    real_load = app_module.load_bundle

    def gated_load(*args, **kwargs):
        assert release.wait(WAIT_CEILING_S)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(app_module, "load_bundle", gated_load)
    server = start_server(settings_for(model_tar), wait_ready=False)
    try:
        ping = server.request("GET", "/ping")
        assert (ping.status, ping.json()) == (503, {"error": "model is loading"})
        invoke = server.invoke({"instances": [[1.0, 1, "de"]]})
        assert (invoke.status, invoke.json()) == (503, {"error": "model is loading"})
        release.set()
        wait_for_state(server, "ready")
        assert server.request("GET", "/ping").status == 200
        assert server.invoke({"instances": [[1.0, 1, "de"]]}).status == 200
    finally:
        release.set()
        server.stop()


def bad_schema(**changes) -> dict:
    return {**SCHEMA, **changes}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"skip": ("model.pt",)},
         "{tar}: missing model.pt (required: ['model.pt', 'schema.json', 'metadata.json'])"),
        ({"schema": bad_schema(format_version=2)},
         "schema.json: format_version=2 is not supported; allowed [1]"),
        ({"schema": bad_schema(features=[{"name": "country", "type": "String"}])},
         "schema.json: features[0] ('country') is a String feature: expected 'categories' as a list "
         "of strings, got None"),
        ({"schema": bad_schema(features=[{"name": "x", "type": "Boolean"}])},
         "schema.json: features[0].type='Boolean': allowed ['Integral', 'Fractional', 'String']"),
        ({"metadata": {"model_version": None}, "raw_members": {"metadata.json": b'{"model_name": "m"}'}},
         "{tar}: metadata.json must be an object with 'model_version'"),
        ({"schema": bad_schema(features=SCHEMA["features"][:2])},
         "{tar}: model.pt fails on a float32 [1, 2] input (schema.json has 2 features): "),
    ],
    ids=["missing-model", "unknown-format-version", "string-without-categories", "unknown-type",
         "no-model-version", "schema-width-mismatch"],
)
def test_a_model_that_fails_to_load_keeps_ping_and_invocations_at_503(tmp_path: Path, kwargs, message) -> None:
    tar = build_artifact(tmp_path, **kwargs)
    server = start_server(settings_for(tar), wait_ready=False)
    try:
        wait_for_state(server, "failed")
        expected = "model failed to load: " + message.format(tar=tar)
        ping = server.request("GET", "/ping")
        assert ping.status == 503
        assert ping.json()["error"].startswith(expected)
        if not message.endswith(": "):
            assert ping.json() == {"error": expected}
        invoke = server.invoke({"instances": [[1.0, 1, "de"]]})
        assert invoke.status == 503
        assert invoke.json() == ping.json()
    finally:
        server.stop()


def test_a_missing_model_path_fails_the_load(tmp_path: Path) -> None:
    server = start_server(settings_for(tmp_path / "nowhere"), wait_ready=False)
    try:
        wait_for_state(server, "failed")
        assert server.request("GET", "/ping").json() == {
            "error": f"model failed to load: model path {str(tmp_path / 'nowhere')!r} does not exist"}
    finally:
        server.stop()


class Explodes(torch.nn.Module):
    """Behaves like the test model, except that it raises for an amount of exactly 13."""

    def __init__(self, inner: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x[:, 0] == 13.0).any()):
            raise RuntimeError("boom")
        return self.inner(x)


def test_a_model_error_is_a_logged_500_with_a_json_body(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tar = build_artifact(tmp_path, module=torch.jit.script(Explodes(make_module())))
    server = start_server(settings_for(tar))
    try:
        caplog.clear()  # what start-up logged (at whatever level an earlier test left the logger) is not this test's
        with caplog.at_level(logging.ERROR, logger="mlops_serving"):
            resp = server.invoke({"instances": [[13.0, 1, "de"]]})
        assert resp.status == 500
        # TorchScript re-raises the module's RuntimeError as torch.jit.Error.
        assert resp.json() == {"error": "internal server error", "type": "Error"}
        logged = [r for r in caplog.records if r.name == "mlops_serving"]
        assert [r.message for r in logged] == ["unhandled error while running a model call over 1 rows"]
        assert "boom" in str(logged[0].exc_info[1])
        # The failure is confined to its batch: the next request is served.
        assert server.invoke({"instances": [[12.0, 1, "de"]]}).status == 200
    finally:
        server.stop()


def test_error_mapper_maps_by_class_hierarchy_and_accepts_new_handlers(caplog: pytest.LogCaptureFixture) -> None:
    class QuotaExceeded(ServingError):
        pass

    class Subclass(InvalidInputError):
        pass

    mapper = ErrorMapper()
    assert mapper.to_response(Subclass("bad", field="x"), context="t") == (400, b'{"error":"bad","field":"x"}')
    with caplog.at_level(logging.ERROR, logger="mlops_serving"):
        status, body = mapper.to_response(QuotaExceeded("slow down"), context="handling test")
    assert (status, json.loads(body)) == (500, {"error": "internal server error", "type": "QuotaExceeded"})
    assert [r.message for r in caplog.records] == ["unhandled error while handling test"]
    mapper.add_exception_handler(QuotaExceeded, 429)
    assert mapper.to_response(QuotaExceeded("slow down"), context="t") == (429, b'{"error":"slow down"}')
    with pytest.raises(ValueError, match="status 200 for QuotaExceeded: allowed 400..599"):
        mapper.add_exception_handler(QuotaExceeded, 200)


def test_idle_keep_alive_connections_are_closed_after_the_timeout(model_tar: Path) -> None:
    import socket

    server = start_server(settings_for(model_tar, keep_alive_s=0.3))
    try:
        # The socket's timeout is the ceiling: a server that never closes fails with TimeoutError.
        # No upper bound on the wait itself: how late the close comes on a loaded machine is a timing.
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_CEILING_S) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(65536):  # returns b"" when the server closes
                data += chunk
            waited = time.monotonic() - started
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert waited >= 0.3
    finally:
        server.stop()


def test_access_log_writes_one_line_per_request_when_enabled(model_tar: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = start_server(settings_for(model_tar, access_log=True))
    try:
        caplog.clear()  # the readiness pings of start_server are logged too when the logger is already at INFO
        with caplog.at_level(logging.INFO, logger="mlops_serving.access"):
            server.invoke({"instances": [[1.0, 1, "de"]]})
            server.request("GET", "/nope")
        lines = [r.getMessage() for r in caplog.records if r.name == "mlops_serving.access"]
        assert len(lines) == 2
        assert lines[0].startswith("POST /invocations 200 ")
        assert lines[1].startswith("GET /nope 404 ")
    finally:
        server.stop()
