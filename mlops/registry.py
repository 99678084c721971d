"""The digest a public image tag points at, read from its registry (`mlops ci resolve-digest IMAGE`).

CI pins third-party images by digest with it (the created EKS cluster's cluster-autoscaler): one HEAD of
`/v2/<repository>/manifests/<tag>` per the OCI Distribution Specification, the digest taken from the
`Docker-Content-Digest` header. An anonymous pull that the registry refuses with 401 is retried with a
Bearer token from the realm its `WWW-Authenticate` challenge names (the Docker registry token
protocol, https://distribution.github.io/distribution/spec/auth/token/); redirects (registry.k8s.io sends
pulls to its mirrors) are followed. The Accept header asks for an index first, so a multi-platform tag
resolves to its index digest, which every platform's node can pull.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
TIMEOUT_S = 30
_IMAGE = re.compile(r"^(?P<host>[a-z0-9.-]+(?::\d+)?)/(?P<repository>[a-z0-9._/-]+):(?P<tag>[\w][\w.-]{0,127})$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryError(RuntimeError):
    """The registry did not give a digest for the tag; the message says what it answered."""


def parse(image: str) -> tuple[str, str, str]:
    """`host/repository:tag` -> (host, repository, tag); ValueError naming the expected form."""
    found = _IMAGE.match(image)
    if found is None:
        raise ValueError(f"image {image!r}; allowed: <registry host>/<repository>:<tag>, e.g. "
                         "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.6")
    return found["host"], found["repository"], found["tag"]


def manifest_digest(image: str, *, scheme: str = "https") -> str:
    """The digest `image` (`host/repository:tag`) points at now."""
    host, repository, tag = parse(image)
    url = f"{scheme}://{host}/v2/{repository}/manifests/{tag}"
    try:
        return _digest(_head(url, {}), image)
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise RegistryError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        token = _token(exc.headers.get("WWW-Authenticate", ""), url)
    try:
        return _digest(_head(url, {"Authorization": f"Bearer {token}"}), image)
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{url}: HTTP {exc.code} {exc.reason} with the registry's token") from None


def _head(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": ACCEPT, **headers})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (https registry URLs)


def _digest(response: Any, image: str) -> str:
    with response:
        digest = response.headers.get("Docker-Content-Digest", "")
    if not _DIGEST.match(digest):
        raise RegistryError(f"{image}: the registry sent no sha256 Docker-Content-Digest (got {digest!r})")
    return digest


def challenge(header: str) -> dict[str, str]:
    """The parameters of a `Bearer realm="...",service="...",scope="..."` challenge."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "bearer":
        raise RegistryError(f"the registry asks for {scheme or 'no'} authentication; only anonymous Bearer tokens are supported")
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


def _token(header: str, url: str) -> str:
    params = challenge(header)
    realm = params.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise RegistryError(f"{url}: the registry's challenge names no token realm ({header!r})")
    try:
        with urllib.request.urlopen(f"{realm}?{urllib.parse.urlencode(params)}", timeout=TIMEOUT_S) as answer:  # noqa: S310
            document = json.loads(answer.read())
    except (urllib.error.URLError, ValueError) as exc:
        raise RegistryError(f"{realm}: no anonymous token ({exc})") from None
    token = document.get("token") or document.get("access_token")
    if not token:
        raise RegistryError(f"{realm}: the token answer holds no token")
    return str(token)
