"""The local InvokeEndpoint router's routing, in-process against stub variants: weights, the
target-variant header, and how variant failures reach the caller (SageMaker Runtime's error shapes)."""
from __future__ import annotations

import json
import math
import random
import socket
from collections.abc import Iterator

import pytest
from router_stubs import Stub

from mlops.local.router import Route, Router, VariantTarget

ENDPOINT = "t-dev-scoring"
BODY = json.dumps({"instances": [[1.0]]}).encode()


@pytest.fixture
def variants() -> Iterator[dict[str, Stub]]:
    stubs = {"champion": Stub("champion"), "challenger": Stub("challenger"), "broken": Stub("broken", status=500)}
    try:
        yield stubs
    finally:
        for stub in stubs.values():
            stub.close()


def _router(*targets: VariantTarget, seed: int = 7) -> Router:
    return Router({ENDPOINT: Route(endpoint=ENDPOINT, production=targets)}, seed=seed)


def test_weighted_choice_follows_the_weights_within_four_standard_deviations():
    route = Route(endpoint=ENDPOINT, production=(VariantTarget("a", "http://a", 3.0), VariantTarget("b", "http://b", 1.0)))
    rng, n = random.Random(11), 20000
    share = sum(route.choose(rng).name == "a" for _ in range(n)) / n
    assert abs(share - 0.75) <= 4 * math.sqrt(0.75 * 0.25 / n)


def test_each_answer_names_the_variant_that_served_it_and_the_split_follows_the_weights(variants):
    router = _router(VariantTarget("champion", variants["champion"].url, 9.0), VariantTarget("challenger", variants["challenger"].url, 1.0))
    n = 400
    served = [router.invoke(ENDPOINT, BODY, {})[1]["x-Amzn-Invoked-Production-Variant"] for _ in range(n)]
    assert variants["champion"].received + variants["challenger"].received == n
    assert served.count("champion") == variants["champion"].received
    assert abs(served.count("champion") / n - 0.9) <= 4 * math.sqrt(0.9 * 0.1 / n)
    router.close()


def test_target_variant_header_pins_the_variant(variants):
    router = _router(VariantTarget("champion", variants["champion"].url, 99.0), VariantTarget("challenger", variants["challenger"].url, 1.0))
    for _ in range(20):
        status, headers, body = router.invoke(ENDPOINT, BODY, {"X-Amzn-SageMaker-Target-Variant": "challenger"})
        assert (status, headers["x-Amzn-Invoked-Production-Variant"], json.loads(body)["variant"]) == (200, "challenger", "challenger")
    assert variants["champion"].received == 0
    router.close()


def test_an_unknown_target_variant_is_a_validation_error_listing_the_production_variants(variants):
    router = _router(VariantTarget("champion", variants["champion"].url, 1.0))
    status, headers, body = router.invoke(ENDPOINT, BODY, {"X-Amzn-SageMaker-Target-Variant": "nope"})
    assert (status, headers["x-amzn-ErrorType"]) == (400, "ValidationError:")
    assert json.loads(body) == {"Message": f"Variant nope not found for endpoint {ENDPOINT}; production variants: champion."}
    assert variants["champion"].received == 0
    router.close()


def test_an_unknown_endpoint_is_a_validation_error(variants):
    router = _router(VariantTarget("champion", variants["champion"].url, 1.0))
    status, headers, body = router.invoke("t-dev-other", BODY, {})
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)) == (400, "ValidationError:", {"Message": "Endpoint t-dev-other not found."})
    router.close()


def test_a_variants_error_reaches_the_caller_as_model_error_with_its_status_and_counts_as_a_5xx(variants):
    router = _router(VariantTarget("broken", variants["broken"].url, 1.0))
    status, headers, body = router.invoke(ENDPOINT, BODY, {})
    doc = json.loads(body)
    assert (status, headers["x-amzn-ErrorType"], doc["OriginalStatusCode"]) == (424, "ModelError:", 500)
    assert doc["OriginalMessage"] == json.dumps({"variant": "broken", "n": 1})
    assert router.metrics.snapshot()[0][(ENDPOINT, "broken")]["5xx"] == 1
    router.close()


def test_a_variant_that_does_not_answer_is_an_internal_failure_naming_it():
    with socket.socket() as closed:  # a port nothing listens on once closed: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    router = _router(VariantTarget("gone", f"http://127.0.0.1:{port}", 1.0))
    status, headers, body = router.invoke(ENDPOINT, BODY, {})
    assert (status, headers["x-amzn-ErrorType"]) == (500, "InternalFailure:")
    assert json.loads(body)["Message"].startswith("variant gone did not answer: ")
    router.close()
