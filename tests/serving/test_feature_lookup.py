"""Online feature lookup through the real server over HTTP, against a Feature Store stand-in that
validates every BatchGetRecord against botocore's model (`lookup_store_standin.py`)."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lookup_store_standin import FeatureStoreStandIn
from serving_support import RunningServer, encode_row, parse_responses, raw_exchange, read_capture, start_server

from mlops_serving.settings import Settings

GROUP = "t-dev-transactions"
FIELD = "transaction_id"
# Generous: two shared cores must not turn a normal lookup into a 504; the timeout test waits it out.
TIMEOUT_MS = 1500


@pytest.fixture(scope="module")
def store() -> Iterator[FeatureStoreStandIn]:
    standin = FeatureStoreStandIn().start()
    standin.put(GROUP, "t-1", transaction_id="t-1", event_time="2026-01-01T00:00:00Z", amount="12.5", n_items="3", country="fr")
    standin.put(GROUP, "t-2", transaction_id="t-2", amount="250.25", country="it")  # n_items null: omitted by the store
    standin.put(GROUP, "t-3", transaction_id="t-3", amount="7", n_items="1")  # no country, which is not nullable
    standin.put(GROUP, "t-4", transaction_id="t-4", amount="1.5", n_items="two", country="de")  # not an Integral
    standin.put(GROUP, "42", transaction_id="42", amount="3.25", n_items="0", country="xx")
    for k in range(150):
        standin.put(GROUP, f"bulk-{k}", amount=f"{k}.5", n_items=str(k % 4), country=["de", "fr", "it"][k % 3])
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def server(store: FeatureStoreStandIn, model_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ENDPOINT_URL": store.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "eu-west-1"}.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        settings = Settings(
            host="127.0.0.1", port=0, model_path=model_tar, capture_dir=tmp_path_factory.mktemp("capture"),
            variant="champion", endpoint_name="fraud", feature_group=GROUP, record_id_field=FIELD,
            feature_lookup_timeout_ms=TIMEOUT_MS,
        )
        running = start_server(settings)
        yield running
        running.stop()


@pytest.fixture(autouse=True)
def fresh(store: FeatureStoreStandIn) -> Iterator[None]:
    store.requests.clear()
    store.gate = None
    store.refuse = None
    yield
    assert store.invalid == [], "the server sent a request botocore's model refuses"


def invoke(server: RunningServer, instances: list[Any], **headers: str) -> Any:
    return server.invoke({"instances": instances}, **headers)


def test_by_id_prediction_is_the_inline_prediction_byte_for_byte(server, store, reference) -> None:
    by_id = invoke(server, [{FIELD: "t-1"}, {FIELD: "t-2"}, {FIELD: 42}])
    inline = invoke(server, [{"amount": 12.5, "n_items": 3, "country": "fr"}, {"amount": 250.25, "n_items": None, "country": "it"},
                             {"amount": 3.25, "n_items": 0, "country": "xx"}])
    assert (by_id.status, inline.status) == (200, 200)
    assert by_id.body == inline.body
    expected = reference([encode_row(12.5, 3, "fr"), encode_row(250.25, None, "it"), encode_row(3.25, 0, "xx")])
    assert by_id.json()["predictions"] == pytest.approx(expected, abs=1e-6)
    (request,) = store.requests
    assert request == {"Identifiers": [{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["t-1", "t-2", "42"],
                                        "FeatureNames": ["amount", "n_items", "country"]}]}


def test_supplied_features_take_precedence_over_fetched_ones(server) -> None:
    partial = invoke(server, [{FIELD: "t-1", "amount": 99.0, "country": "de"}])
    inline = invoke(server, [{"amount": 99.0, "n_items": 3, "country": "de"}])
    fetched = invoke(server, [{FIELD: "t-1"}])
    assert partial.status == 200 and partial.body == inline.body
    assert partial.body != fetched.body


def test_row_with_id_and_every_feature_needs_no_lookup(server, store) -> None:
    with_id = invoke(server, [{FIELD: "no-such-record", "amount": 1.0, "n_items": 2, "country": "it"}])
    inline = invoke(server, [{"amount": 1.0, "n_items": 2, "country": "it"}])
    assert with_id.status == 200 and with_id.body == inline.body
    assert store.requests == []


def test_missing_record_is_422_naming_every_missing_id(server) -> None:
    resp = invoke(server, [{FIELD: "t-1"}, {FIELD: "nope-1"}, {FIELD: "nope-2"}, {FIELD: "nope-1"}])
    assert resp.status == 422
    assert resp.json() == {
        "error": f"no record in feature group {GROUP!r} for {FIELD} 'nope-1', 'nope-2'",
        "field": FIELD,
        "received": ["nope-1", "nope-2"],
    }


def test_lookup_timeout_is_504_and_the_loop_keeps_serving(server, store) -> None:
    store.gate = threading.Event()
    try:
        started = time.monotonic()
        slow: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: slow.update(resp=invoke(server, [{FIELD: "t-1"}])))
        worker.start()
        # While the lookup hangs, inline requests and /ping are answered: the call runs off the loop.
        assert invoke(server, [{"amount": 1.0, "n_items": 2, "country": "it"}]).status == 200
        assert server.request("GET", "/ping").status == 200
        worker.join(30)
        resp = slow["resp"]
    finally:
        store.gate.set()
    assert resp.status == 504
    assert resp.json() == {
        "error": f"feature store did not answer within {TIMEOUT_MS} ms (1 record(s) of feature group {GROUP!r})",
        "allowed": f"<= {TIMEOUT_MS} ms",
    }
    assert time.monotonic() - started >= TIMEOUT_MS / 1000


def test_store_refusing_the_call_is_502_with_its_error_code(server, store) -> None:
    store.refuse = (400, "AccessDeniedException", "not authorized to perform sagemaker:BatchGetRecord")
    resp = invoke(server, [{FIELD: "t-1"}])
    assert resp.status == 502
    assert resp.json() == {"error": f"feature store refused BatchGetRecord on {GROUP!r}: AccessDeniedException: "
                                    "not authorized to perform sagemaker:BatchGetRecord"}


def test_record_lacking_a_required_feature_is_422_naming_record_and_feature(server) -> None:
    resp = invoke(server, [{FIELD: "t-1"}, {FIELD: "t-3"}])
    assert resp.status == 422
    assert resp.json() == {
        "error": f"row 1: record 't-3' of feature group {GROUP!r} has no value for feature 'country', which is not "
                 "nullable; send it in the request",
        "row": 1, "field": "country", "received": "t-3",
    }
    # ... which the request can supply.
    assert invoke(server, [{FIELD: "t-3", "country": "de"}]).body == invoke(server, [{"amount": 7.0, "n_items": 1, "country": "de"}]).body


def test_record_value_not_of_the_features_type_is_422(server) -> None:
    resp = invoke(server, [{FIELD: "t-4"}])
    assert resp.status == 422
    assert resp.json() == {
        "error": f"record 't-4' of feature group {GROUP!r}: feature 'n_items' is not Integral "
                 "(could not convert string to float: 'two')",
        "row": 0, "field": "n_items", "allowed": "Integral", "received": "t-4",
    }


def test_instance_with_neither_id_nor_all_features_is_the_existing_400(server, store) -> None:
    resp = invoke(server, [{"amount": 1.0, "n_items": 2}])
    assert resp.status == 400
    assert resp.json() == {"error": "row 0: missing feature 'country'", "row": 0, "field": "country",
                           "allowed": ["amount", "n_items", "country"]}
    assert store.requests == []


@pytest.mark.parametrize("value", [None, "", 1.5, True, ["t-1"]], ids=["null", "empty", "float", "bool", "list"])
def test_record_id_that_is_no_string_or_integer_is_400(server, value) -> None:
    resp = invoke(server, [{FIELD: value}])
    assert resp.status == 400
    body = resp.json()
    assert (body["row"], body["field"], body["allowed"]) == (0, FIELD, "non-empty string or integer")


def test_one_request_of_64_ids_is_one_batch_get_record(server, store) -> None:
    ids = [f"bulk-{k}" for k in range(64)]
    by_id = invoke(server, [{FIELD: i} for i in ids])
    inline = invoke(server, [{"amount": k + 0.5, "n_items": k % 4, "country": ["de", "fr", "it"][k % 3]} for k in range(64)])
    assert by_id.status == 200 and by_id.body == inline.body
    assert [r["Identifiers"][0]["RecordIdentifiersValueAsString"] for r in store.requests] == [ids]


def test_more_than_100_ids_go_in_chunks_of_100_the_apis_limit(server, store) -> None:
    resp = invoke(server, [{FIELD: f"bulk-{k}"} for k in range(150)])
    assert resp.status == 200 and len(resp.json()["predictions"]) == 150
    assert [len(r["Identifiers"][0]["RecordIdentifiersValueAsString"]) for r in store.requests] == [100, 50]


def test_pipelined_requests_share_one_batch_get_record(server, store) -> None:
    # Eight requests written at once arrive in one read: one lookup for all, each answered alone.
    bodies = [json.dumps({"instances": [{FIELD: f"bulk-{k}"}, {FIELD: "t-1"}]}).encode() for k in range(8)]
    wire = b"".join(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(b), b) for b in bodies)
    responses = parse_responses(raw_exchange(server.port, wire + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert [r.status for r in responses] == [200] * 8 + [200]
    for k, resp in enumerate(responses[:8]):
        assert resp.body == invoke(server, [{FIELD: f"bulk-{k}"}, {FIELD: "t-1"}]).body
    first, *rest = store.requests
    # Each id once, in order of first mention.
    assert first["Identifiers"][0]["RecordIdentifiersValueAsString"] == ["bulk-0", "t-1", *(f"bulk-{k}" for k in range(1, 8))]
    assert len(rest) == 8  # the eight single requests made for comparison


def test_capture_holds_the_features_the_model_saw(server) -> None:
    iid = "lookup-capture-1"
    resp = invoke(server, [{FIELD: "t-2", "amount": 5.0}, {"amount": 1.0, "n_items": 2, "country": "it"}],
                  **{"X-Amzn-SageMaker-Inference-Id": iid})
    assert resp.status == 200
    deadline = time.monotonic() + 10
    while True:
        records = {r["eventMetadata"]["inferenceId"]: r for r in read_capture(server.capture_dir, include_partial=True)}
        if iid in records or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    captured = records[iid]["captureData"]["endpointInput"]
    assert (captured["observedContentType"], captured["encoding"]) == ("application/json", "JSON")
    assert json.loads(captured["data"]) == {"instances": [
        {FIELD: "t-2", "amount": 5.0, "n_items": None, "country": "it"},
        {"amount": 1.0, "n_items": 2, "country": "it"},
    ]}
    assert records[iid]["captureData"]["endpointOutput"]["data"] == resp.body.decode()


def test_csv_and_inline_json_never_reach_the_store(server, store) -> None:
    assert server.invoke("12.5,3,fr\n", content_type="text/csv").status == 200
    assert invoke(server, [[12.5, 3, "fr"]]).status == 200
    assert store.requests == []


def test_the_standin_refuses_what_botocores_model_refuses(store) -> None:
    # The check every test ends with could pass by checking nothing: 101 identifiers are refused.
    status, body = store.answer("/BatchGetRecord", json.dumps({"Identifiers": [
        {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": [str(k) for k in range(101)]}]}).encode())
    assert status == 400 and body["__type"] == "ValidationException" and "101" in body["message"]
    assert len(store.invalid) == 1
    store.invalid.clear()


def test_settings_read_the_lookup_variables() -> None:
    settings = Settings.from_env({"MLOPS_FEATURE_GROUP": GROUP, "MLOPS_RECORD_ID_FIELD": FIELD, "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS": "250"})
    assert (settings.feature_group, settings.record_id_field, settings.feature_lookup_timeout_ms) == (GROUP, FIELD, 250)
    assert Settings.from_env({}).feature_group is None


@pytest.mark.parametrize(("env", "message"), [
    ({"MLOPS_FEATURE_GROUP": GROUP}, "record_id_field=None: allowed a request field name whenever feature_group is set"),
    ({"MLOPS_RECORD_ID_FIELD": FIELD}, "record_id_field='transaction_id': allowed only with feature_group"),
    ({"MLOPS_FEATURE_GROUP": GROUP, "MLOPS_RECORD_ID_FIELD": FIELD, "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS": "0"},
     "feature_lookup_timeout_ms=0: allowed 1..10000 milliseconds"),
])
def test_inconsistent_lookup_settings_are_refused(env, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)


def test_record_id_field_that_is_a_model_feature_fails_the_load(model_tar: Path) -> None:
    running = start_server(Settings(host="127.0.0.1", port=0, model_path=model_tar, feature_group=GROUP,
                                    record_id_field="amount"), wait_ready=False)
    try:
        deadline = time.monotonic() + 30
        while running.app.state == "loading" and time.monotonic() < deadline:
            time.sleep(0.02)
        ping = running.request("GET", "/ping")
        assert ping.status == 503
        assert "record_id_field='amount' is one of the model's features" in ping.json()["error"]
    finally:
        running.stop()
