"""`mlops ci resolve-digest`: the digest a tag points at, from a registry speaking the OCI distribution API
(a local HTTP server here, answering as registry.k8s.io does: a redirect to a mirror, a 401 Bearer
challenge there, an anonymous token from the realm, then the manifest's Docker-Content-Digest)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from mlops import registry
from mlops.cli import app

DIGEST = "sha256:" + "ab" * 32
TOKEN = "anonymous-pull-token"


class FakeRegistry(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.seen.append((self.command, url.path, self.headers.get("Authorization", "")))
        if url.path == "/token":
            query = parse_qs(url.query)
            assert query == {"service": ["fake"], "scope": ["repository:autoscaling/cluster-autoscaler:pull"]}
            return self._send(200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode())
        if url.path.startswith("/v2/autoscaling/"):  # the front door sends pulls to a mirror
            return self._send(307, {"Location": f"{base}/mirror{url.path}"})
        if url.path == "/v2/autoscaling/cluster-autoscaler/manifests/v1.33.6" or url.path.startswith("/mirror/v2/"):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                challenge = f'Bearer realm="{base}/token",service="fake",scope="repository:autoscaling/cluster-autoscaler:pull"'
                return self._send(401, {"WWW-Authenticate": challenge})
            if not url.path.endswith("/manifests/v1.33.6"):
                return self._send(404, {})
            assert "application/vnd.oci.image.index.v1+json" in self.headers["Accept"]
            return self._send(200, {"Docker-Content-Digest": DIGEST, "Content-Type": "application/vnd.oci.image.index.v1+json"})
        return self._send(404, {})

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture
def fake() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeRegistry.seen = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_tag_resolves_through_the_redirect_and_the_anonymous_token(fake):
    assert registry.manifest_digest(f"{fake}/autoscaling/cluster-autoscaler:v1.33.6", scheme="http") == DIGEST
    # anonymous first, then the token from the challenge's realm, then the manifest with it
    assert [(m, p.split("/manifests")[0]) for m, p, _ in FakeRegistry.seen[:3]] == [
        ("HEAD", "/v2/autoscaling/cluster-autoscaler"), ("GET", "/mirror/v2/autoscaling/cluster-autoscaler"), ("GET", "/token")]
    assert FakeRegistry.seen[-1][2] == f"Bearer {TOKEN}"


def test_an_unknown_tag_and_a_malformed_image_are_named(fake):
    with pytest.raises(registry.RegistryError, match="HTTP 404"):
        registry.manifest_digest(f"{fake}/autoscaling/cluster-autoscaler:v0.0.0", scheme="http")
    with pytest.raises(ValueError, match="allowed: <registry host>/<repository>:<tag>"):
        registry.parse("cluster-autoscaler")
    result = CliRunner().invoke(app, ["ci", "resolve-digest", "cluster-autoscaler"])
    assert result.exit_code == 64 and "allowed: <registry host>/<repository>:<tag>" in result.stderr  # usage (EX_USAGE)


def test_only_bearer_challenges_with_a_realm_are_followed():
    assert registry.challenge('Bearer realm="https://r/token",service="s",scope="x:y:pull"') == {
        "realm": "https://r/token", "service": "s", "scope": "x:y:pull"}
    with pytest.raises(registry.RegistryError, match="asks for Basic authentication"):
        registry.challenge('Basic realm="r"')
