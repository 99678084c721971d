"""The local router gives a mirrored request one inference id for the champion and its shadow copy,
so that `mlops experiment shadow` can join their captures; a caller's own id is never replaced."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlops.local.router import INFERENCE_ID_HEADER, WAIT_CEILING_S, Route, Router, VariantTarget, with_shared_inference_id

ENDPOINT = "t-dev-scoring"


class IdStub:
    """An HTTP variant that records the inference id header of each request and signals each arrival."""

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.arrived = threading.Semaphore(0)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.ids.append(self.headers.get(INFERENCE_ID_HEADER))
                body = json.dumps({"predictions": [0.5]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                stub.arrived.release()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def router() -> Iterator[tuple[Router, IdStub, IdStub]]:
    production, shadow = IdStub(), IdStub()
    route = Route(endpoint=ENDPOINT, production=(VariantTarget("champion", production.url, 1.0),),
                  shadow=VariantTarget("candidate", shadow.url, 1.0), shadow_sampling=1.0)
    router = Router({ENDPOINT: route}, seed=1)
    try:
        yield router, production, shadow
    finally:
        router.close()
        production.close()
        shadow.close()


def test_a_mirrored_request_without_an_id_reaches_champion_and_shadow_with_the_same_new_id(router):
    r, production, shadow = router
    for _ in range(3):
        status, _, _ = r.invoke(ENDPOINT, b'{"instances": [[1]]}', {"Content-Type": "application/json"})
        assert status == 200
    for _ in range(3):
        assert shadow.arrived.acquire(timeout=WAIT_CEILING_S), "a copy never reached the shadow"
    assert all(production.ids) and len(set(production.ids)) == 3
    assert sorted(shadow.ids) == sorted(production.ids)


def test_the_callers_inference_id_is_kept_for_both_variants(router):
    r, production, shadow = router
    status, _, _ = r.invoke(ENDPOINT, b'{"instances": [[1]]}', {"Content-Type": "application/json", INFERENCE_ID_HEADER: "req-42"})
    assert status == 200
    assert shadow.arrived.acquire(timeout=WAIT_CEILING_S)
    assert production.ids == ["req-42"] and shadow.ids == ["req-42"]


def test_an_inference_id_in_the_custom_attributes_is_not_overridden():
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "inference_id=abc"}
    assert with_shared_inference_id(headers) is headers
    added = with_shared_inference_id({"X-Amzn-SageMaker-Custom-Attributes": "tenant=a"})
    assert len(added[INFERENCE_ID_HEADER]) == 32
