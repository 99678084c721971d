"""Shadow copies when the shadow is slower than production: a bounded queue, drops counted exactly.

The router runs in-process behind its real HTTP server; the variants are stub HTTP servers this test
controls. The shadow stub blocks every request until the test releases it, so "slow" is an event the
test decides, not a timing. Every wait here waits on an event with a ceiling only a bug reaches.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import ThreadingHTTPServer

import boto3
import pytest

from router_stubs import Stub

from mlops.local.router import (
    SHADOW_DROPPED_METRIC,
    WAIT_CEILING_S,
    Route,
    Router,
    VariantTarget,
    make_server,
    publish,
    read_status,
    wait_published,
    wait_route,
    wait_shadow_settled,
)

ENDPOINT = "t-dev-scoring"


@pytest.fixture
def stubs() -> Iterator[tuple[Stub, Stub]]:
    production, shadow = Stub("champion"), Stub("candidate", gated=True)
    try:
        yield production, shadow
    finally:
        production.close()
        shadow.close()


def _serve(router: Router) -> tuple[str, ThreadingHTTPServer]:
    server = make_server(router)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def _invoke(router_url: str, row: int) -> tuple[int, dict[str, str], dict]:
    host, port = router_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT_CEILING_S)
    try:
        conn.request("POST", f"/endpoints/{ENDPOINT}/invocations", body=json.dumps({"instances": [[row]]}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def _route(production: str, shadow: str) -> Route:
    return Route(endpoint=ENDPOINT, production=(VariantTarget("champion", production, 1.0),),
                 shadow=VariantTarget("candidate", shadow, 1.0), shadow_sampling=1.0)


def test_copies_beyond_the_queue_of_a_stalled_shadow_are_dropped_and_counted_exactly(stubs):
    production, shadow = stubs
    # One worker and a queue of 3: while the worker is stuck on copy 1, copies 2-4 wait, 5-10 drop.
    router = Router({ENDPOINT: _route(production.url, shadow.url)}, seed=1, shadow_queue=3, shadow_workers=1)
    url, server = _serve(router)
    try:
        first = _invoke(url, 0)
        assert shadow.arrived.acquire(timeout=WAIT_CEILING_S), "the first copy never reached the shadow"
        answers = [first, *(_invoke(url, row) for row in range(1, 10))]
        # Production answered all ten while the shadow held its first copy: the caller never waits on it.
        assert [a[0] for a in answers] == [200] * 10
        assert {a[1]["x-Amzn-Invoked-Production-Variant"] for a in answers} == {"champion"}
        assert [a[2] for a in answers] == [{"variant": "champion", "n": n} for n in range(1, 11)]
        stalled = read_status(url)["endpoints"][ENDPOINT]["shadow"]["candidate"]
        assert stalled == {"mirrored": 10, "sent": 0, "dropped": 6, "failed": 0, "pending": 4}
        shadow.release.set()
        settled = wait_shadow_settled(url, ENDPOINT, "candidate")
        assert settled == {"mirrored": 10, "sent": 4, "dropped": 6, "failed": 0, "pending": 0}
        assert shadow.received == 4
        assert production.received == 10
    finally:
        shadow.release.set()  # a stalled copy would otherwise hold router.close()
        server.shutdown()
        server.server_close()
        router.close()


def test_copies_to_a_shadow_that_does_not_answer_are_failed_not_lost(stubs):
    production, shadow = stubs
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    router = Router({ENDPOINT: _route(production.url, dead)}, seed=1, shadow_queue=50, shadow_workers=2)
    url, server = _serve(router)
    try:
        assert [_invoke(url, row)[0] for row in range(5)] == [200] * 5
        settled = wait_shadow_settled(url, ENDPOINT, "candidate")
        assert settled == {"mirrored": 5, "sent": 0, "dropped": 0, "failed": 5, "pending": 0}
    finally:
        shadow.release.set()  # a stalled copy would otherwise hold router.close()
        server.shutdown()
        server.server_close()
        router.close()


def test_drops_are_published_as_a_cloudwatch_metric_beside_the_variants_other_metrics(stubs, aws):
    production, shadow = stubs
    router = Router({ENDPOINT: _route(production.url, shadow.url)}, seed=1, shadow_queue=1, shadow_workers=1)
    try:
        router.invoke(ENDPOINT, b"{}", {"Content-Type": "application/json"})
        assert shadow.arrived.acquire(timeout=WAIT_CEILING_S)
        for _ in range(4):  # copy 2 waits in the queue, copies 3-5 drop
            router.invoke(ENDPOINT, b"{}", {"Content-Type": "application/json"})
        shadow.release.set()
        assert router.mirror(ENDPOINT, "candidate").wait_settled()
        cloudwatch = boto3.client("cloudwatch")
        start = datetime.now(timezone.utc) - timedelta(minutes=5)
        publish(cloudwatch, router.metrics)
        end = datetime.now(timezone.utc) + timedelta(minutes=5)

        def total(metric: str, variant: str) -> float:
            points = cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker", MetricName=metric, StartTime=start, EndTime=end, Period=60, Statistics=["Sum"],
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}],
            )["Datapoints"]
            return sum(p["Sum"] for p in points)

        assert total(SHADOW_DROPPED_METRIC, "candidate") == 3
        assert total("Invocations", "candidate") == 2
        assert total("Invocations", "champion") == 5
        assert total(SHADOW_DROPPED_METRIC, "champion") == 0  # production variants publish no drop metric
        status = router.status()
        assert status["metrics"]["published"] == status["metrics"]["recorded"] == 5 + 2 + 3
    finally:
        shadow.release.set()
        router.close()


def test_wait_published_returns_once_the_publisher_has_sent_what_was_recorded(stubs, aws):
    production, shadow = stubs
    shadow.release.set()
    router = Router({ENDPOINT: _route(production.url, shadow.url)}, seed=1)
    url, server = _serve(router)
    published = threading.Event()
    try:
        for row in range(3):
            _invoke(url, row)
        wait_shadow_settled(url, ENDPOINT, "candidate")
        waiter = threading.Thread(target=lambda: (wait_published(url), published.set()), daemon=True)
        waiter.start()
        # Nothing is published until publish runs: the waiter must still be waiting after a status round trip.
        assert read_status(url)["metrics"] == {"recorded": 6, "published": 0}
        assert not published.is_set()
        publish(boto3.client("cloudwatch"), router.metrics)
        assert published.wait(WAIT_CEILING_S)
        waiter.join(WAIT_CEILING_S)
    finally:
        shadow.release.set()  # a stalled copy would otherwise hold router.close()
        server.shutdown()
        server.server_close()
        router.close()


def test_a_shadow_queue_smaller_than_one_is_refused_with_the_values():
    with pytest.raises(ValueError, match="shadow_queue=0, shadow_workers=4: both must be at least 1"):
        Router({}, shadow_queue=0)


def test_copies_still_queued_when_the_router_stops_are_counted_as_dropped(stubs):
    production, shadow = stubs
    router = Router({ENDPOINT: _route(production.url, shadow.url)}, seed=1, shadow_queue=5, shadow_workers=1)
    mirror = router.mirror(ENDPOINT, "candidate")
    try:
        router.invoke(ENDPOINT, b"{}", {})
        assert shadow.arrived.acquire(timeout=WAIT_CEILING_S)
        for _ in range(3):
            router.invoke(ENDPOINT, b"{}", {})
        closing = threading.Thread(target=router.close)
        closing.start()
        # close() discards the three queued copies, then waits for the one in flight.
        shadow.release.set()
        closing.join(WAIT_CEILING_S)
        assert not closing.is_alive()
        counts = mirror.counts()
        assert (counts.mirrored, counts.sent, counts.dropped, counts.failed, counts.pending) == (4, 1, 3, 0, 0)
        # A copy offered to a closed mirror (a request racing the shutdown) is dropped, never stuck as pending.
        assert mirror.offer(VariantTarget("candidate", shadow.url, 1.0), b"{}", {}) is False
        assert mirror.counts().as_dict() == {"mirrored": 5, "sent": 1, "dropped": 4, "failed": 0, "pending": 0}
    finally:
        shadow.release.set()
        router.close()


def test_status_shows_each_route_and_wait_route_returns_once_the_router_follows_a_change(stubs):
    production, shadow = stubs
    shadow.release.set()
    router = Router({ENDPOINT: Route(endpoint=ENDPOINT, production=(VariantTarget("champion", production.url, 1.0),))})
    url, server = _serve(router)
    try:
        assert read_status(url)["endpoints"][ENDPOINT]["route"] == {
            "production": {"champion": production.url}, "shadow": {}, "shadow_sampling": 0.0}
        with pytest.raises(TimeoutError, match=f"{ENDPOINT} routed to"):
            wait_route(url, ENDPOINT, production={"champion": production.url}, shadow={"candidate": shadow.url}, timeout_s=0)
        router.set_route(_route(production.url, shadow.url))
        wait_route(url, ENDPOINT, production={"champion": production.url}, shadow={"candidate": shadow.url})
    finally:
        server.shutdown()
        server.server_close()
        router.close()
