"""The SageMaker inference contract over real HTTP: exact status codes, headers and bodies."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from serving_support import (
    MODEL_VERSION,
    RunningServer,
    encode_row,
    parse_responses,
    raw_exchange,
    read_capture,
    wait_until,
)

ALLOWED_NAMES = ["amount", "n_items", "country"]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def as_float32(values: list[float]) -> list[np.float32]:
    return [np.float32(v) for v in values]


def test_ping_answers_200_with_healthy_body_once_loaded(server: RunningServer) -> None:
    resp = server.request("GET", "/ping")
    assert resp.status == 200
    assert resp.body == b'{"status":"healthy"}'
    assert resp.headers["content-type"] == "application/json"


def test_positional_instances_get_the_models_predictions(server: RunningServer, reference) -> None:
    resp = server.invoke({"instances": [[12.5, 2, "fr"], [80.0, None, "de"], [0, 0, "it"]]})
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert list(body) == ["predictions"]
    expected = reference([encode_row(12.5, 2, "fr"), encode_row(80.0, None, "de"), encode_row(0, 0, "it")])
    # The server writes float32 values with round-trip digits, so float32 equality is exact.
    assert as_float32(body["predictions"]) == as_float32(expected)


def test_records_keyed_by_feature_name_equal_positional_rows(server: RunningServer) -> None:
    positional = server.invoke({"instances": [[12.5, 2, "fr"], [80.0, None, "de"]]}).json()
    records = server.invoke({"instances": [
        {"country": "fr", "amount": 12.5, "n_items": 2},
        {"n_items": None, "amount": 80.0, "country": "de"},
    ]}).json()
    assert records == positional


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": 12.5, "n_items": 2, "country": "fr"},
        [12.5, 2, "fr"],
        [[12.5, 2, "fr"]],
        [{"amount": 12.5, "n_items": 2, "country": "fr"}],
        {"instances": [{"features": [12.5, 2, "fr"]}]},
    ],
    ids=["single-record", "single-positional-row", "bare-list-of-rows", "bare-list-of-records",
         "sagemaker-features-object"],
)
def test_other_accepted_json_shapes_give_the_same_prediction(server: RunningServer, payload) -> None:
    expected = server.invoke({"instances": [[12.5, 2, "fr"]]}).json()
    resp = server.invoke(payload)
    assert resp.status == 200
    assert resp.json() == expected


def test_unknown_category_is_valid_and_encoded_as_zero(server: RunningServer, reference) -> None:
    resp = server.invoke({"instances": [[40.0, 1, "zz-unknown"]]})
    assert resp.status == 200
    assert as_float32(resp.json()["predictions"]) == as_float32(reference([[40.0, 1.0, 0.0]]))


def test_csv_rows_with_csv_accept_get_one_value_per_line(server: RunningServer, reference) -> None:
    resp = server.invoke("12.5,2,fr\r\n80,,de\n", content_type="text/csv", Accept="text/csv")
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/csv"
    lines = resp.body.decode().split("\n")
    assert lines[-1] == ""
    expected = reference([encode_row(12.5, 2, "fr"), encode_row(80, None, "de")])
    assert as_float32([float(x) for x in lines[:-1]]) == as_float32(expected)


def test_csv_body_answers_json_by_default(server: RunningServer) -> None:
    csv_resp = server.invoke("12.5,2,fr\n", content_type="text/csv; charset=utf-8")
    json_resp = server.invoke({"instances": [[12.5, 2, "fr"]]})
    assert csv_resp.status == 200
    assert csv_resp.json() == json_resp.json()


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("text/csv;q=0.9, application/json;q=0.5", "text/csv"),
        ("application/json;q=0.1, text/*", "text/csv"),
        ("text/html, */*;q=0.2", "application/json"),
        ("application/*", "application/json"),
    ],
)
def test_accept_header_negotiates_by_quality(server: RunningServer, accept: str, content_type: str) -> None:
    resp = server.invoke({"instances": [[1, 1, "de"]]}, Accept=accept)
    assert resp.status == 200
    assert resp.headers["content-type"] == content_type


def test_unsupported_accept_is_406_naming_the_choices(server: RunningServer) -> None:
    resp = server.invoke({"instances": [[1, 1, "de"]]}, Accept="application/x-protobuf")
    assert resp.status == 406
    assert resp.json() == {
        "error": "cannot produce any of 'application/x-protobuf'",
        "field": "Accept",
        "allowed": ["application/json", "text/csv"],
    }


def test_callers_inference_id_is_returned_and_generated_ids_are_unique(server: RunningServer) -> None:
    given = server.invoke({"instances": [[1, 1, "de"]]}, **{"X-Amzn-SageMaker-Inference-Id": "caller-42"})
    assert given.headers["x-amzn-sagemaker-inference-id"] == "caller-42"
    assert given.headers["x-amzn-sagemaker-custom-attributes"] == "inference_id=caller-42"
    from_attributes = server.invoke(
        {"instances": [[1, 1, "de"]]},
        **{"X-Amzn-SageMaker-Custom-Attributes": "trace=abc, inference_id=from-attrs"},
    )
    assert from_attributes.headers["x-amzn-sagemaker-inference-id"] == "from-attrs"
    generated = {server.invoke({"instances": [[1, 1, "de"]]}).headers["x-amzn-sagemaker-inference-id"]
                 for _ in range(5)}
    assert len(generated) == 5
    assert all(UUID.match(i) for i in generated), generated


def test_overlong_inference_id_is_400(server: RunningServer) -> None:
    resp = server.invoke({"instances": [[1, 1, "de"]]}, **{"X-Amzn-SageMaker-Inference-Id": "x" * 65})
    assert resp.status == 400
    assert resp.json() == {
        "error": "X-Amzn-SageMaker-Inference-Id must be 1 to 64 printable ASCII characters",
        "field": "X-Amzn-SageMaker-Inference-Id",
        "allowed": "1..64 printable ASCII characters",
        "received": 65,
    }


FLT = "-3.402823e+38..3.402823e+38"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"instances": [[1.0, 2, "de"], [1.0, 2]]},
         {"error": "row 1 has 2 values, expected 3", "row": 1, "allowed": 3, "received": 2}),
        ({"instances": [{"amount": 1.0, "n_items": 2}]},
         {"error": "row 0: missing feature 'country'", "row": 0, "field": "country", "allowed": ALLOWED_NAMES}),
        ({"instances": [{"amount": 1.0, "n_items": 2, "country": "de", "colour": "red"}]},
         {"error": "row 0: unknown feature 'colour'", "row": 0, "field": "colour", "allowed": ALLOWED_NAMES}),
        ({"instances": [["1.0", 2, "de"]]},
         {"error": "row 0: feature 'amount' must be a number", "row": 0, "field": "amount",
          "allowed": "number", "received": "string"}),
        ({"instances": [[True, 2, "de"]]},
         {"error": "row 0: feature 'amount' must be a number", "row": 0, "field": "amount",
          "allowed": "number", "received": "boolean"}),
        ({"instances": [[None, 2, "de"]]},
         {"error": "row 0: feature 'amount' is not nullable", "row": 0, "field": "amount",
          "allowed": "number", "received": "null"}),
        ({"instances": [[1.0, 2, None]]},
         {"error": "row 0: feature 'country' is not nullable", "row": 0, "field": "country",
          "allowed": "string", "received": "null"}),
        ({"instances": [[1.0, 2, 7]]},
         {"error": "row 0: feature 'country' must be a string", "row": 0, "field": "country",
          "allowed": "string", "received": "number"}),
        ({"instances": [[1.0, 2.5, "de"]]},
         {"error": "row 0: feature 'n_items' must be a whole number", "row": 0, "field": "n_items",
          "allowed": "integer", "received": "2.5"}),
        ({"instances": [[1e39, 2, "de"]]},
         {"error": "row 0: feature 'amount' must be a finite number within the float32 range", "row": 0,
          "field": "amount", "allowed": FLT, "received": "1e+39"}),
        ({"instances": [[1.0, [2], "de"]]},
         {"error": "row 0: feature 'n_items' must be a number", "row": 0, "field": "n_items",
          "allowed": "integer or null", "received": "array"}),
        ({"instances": [7]},
         {"error": "row 0 must be an array of 3 values or an object keyed by feature name", "row": 0,
          "received": "number"}),
        ({"instances": []}, {"error": "the request holds no rows", "field": "instances"}),
        ({"instances": {"amount": 1}},
         {"error": "'instances' must be an array of rows", "field": "instances", "received": "object"}),
        ({"instances": [[1, 1, "de"]], "parameters": {}},
         {"error": "unknown top-level key 'parameters'", "field": "parameters", "allowed": ["instances"]}),
        ("3.5",
         {"error": "body must be a JSON object or array",
          "allowed": ['{"instances": [...]}', "[row, ...]", "{feature: value, ...}"], "received": "number"}),
    ],
    ids=["row-length", "missing-feature", "unknown-feature", "string-for-number", "boolean-for-number",
         "null-not-nullable", "null-string-feature", "number-for-string", "fraction-for-integral",
         "beyond-float32", "nested-array", "scalar-row", "no-rows", "instances-not-array",
         "unknown-top-level-key", "scalar-body"],
)
def test_schema_mismatch_is_400_naming_row_and_field(server: RunningServer, payload, expected) -> None:
    resp = server.invoke(payload)
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("1.0,2\n", {"error": "row 0 has 2 values, expected 3", "row": 0, "allowed": 3, "received": 2}),
        ("abc,2,de\n", {"error": "row 0: feature 'amount' must be a number", "row": 0, "field": "amount",
                        "allowed": "number", "received": "abc"}),
        ("1,2,de\nnan,2,de\n", {"error": "row 1: feature 'amount' must be a finite number within the float32 range",
                                "row": 1, "field": "amount", "allowed": FLT, "received": "nan"}),
        ("1,2,de\n1,2,\n", {"error": "row 1: feature 'country' is not nullable", "row": 1, "field": "country",
                            "allowed": "string", "received": "empty"}),
        ("\n\n", {"error": "the request holds no rows"}),
    ],
    ids=["row-length", "not-a-number", "nan", "empty-not-nullable", "no-rows"],
)
def test_csv_mismatch_is_400_naming_row_and_field(server: RunningServer, body: str, expected) -> None:
    resp = server.invoke(body, content_type="text/csv")
    assert resp.status == 400
    assert resp.json() == expected


def test_invalid_json_is_400_with_the_parser_message(server: RunningServer) -> None:
    resp = server.invoke(b'{"instances": [[1.0, NaN, "de"]]}')
    assert resp.status == 400
    assert resp.json()["error"].startswith("body is not valid JSON: ")
    assert set(resp.json()) == {"error"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Content-Type": "text/plain"},
         {"error": "unsupported content type 'text/plain'", "field": "Content-Type",
          "allowed": ["application/json", "text/csv"]}),
        ({"Content-Type": "application/json; charset=latin-1"},
         {"error": "unsupported charset in 'application/json; charset=latin-1'", "field": "Content-Type",
          "allowed": ["charset=utf-8"]}),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"},
         {"error": "unsupported content encoding 'gzip'", "field": "Content-Encoding", "allowed": ["identity"]}),
    ],
    ids=["text-plain", "latin-1", "gzip"],
)
def test_unsupported_content_type_or_encoding_is_415(server: RunningServer, headers, expected) -> None:
    resp = server.request("POST", "/invocations", b'{"instances": [[1, 1, "de"]]}', headers)
    assert resp.status == 415
    assert resp.json() == expected


def test_body_over_the_limit_is_413_and_the_connection_closes(server: RunningServer) -> None:
    limit = 64 * 1024
    resp = server.request("POST", "/invocations", b"[" + b"1," * limit + b"1]",
                          {"Content-Type": "application/json"})
    assert resp.status == 413
    assert resp.headers["connection"] == "close"
    assert resp.json() == {"error": f"request body exceeds the limit of {limit} bytes",
                           "allowed": limit, "received": 2 * limit + 3}


def test_chunked_body_over_the_limit_is_413(server: RunningServer) -> None:
    chunk = b"1," * 10_000
    data = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):
        data += b"%x\r\n%s\r\n" % (len(chunk), chunk)
    data += b"0\r\n\r\n"
    (resp,) = parse_responses(raw_exchange(server.port, data))
    assert resp.status == 413
    assert resp.json() == {"error": "request body exceeds the limit of 65536 bytes", "allowed": 65536}


def test_chunked_body_within_the_limit_is_served(server: RunningServer) -> None:
    body = b'{"instances": [[1, 1, "de"]]}'
    data = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:]))
    (resp,) = parse_responses(raw_exchange(server.port, data))
    assert resp.status == 200
    assert resp.json() == server.invoke(body).json()


def test_unknown_route_is_404_and_wrong_method_is_405_with_allow(server: RunningServer) -> None:
    missing = server.request("GET", "/v1/models/x:predict")
    assert missing.status == 404
    assert missing.json() == {"error": "no route '/v1/models/x:predict'",
                              "allowed": ["/ping", "/invocations", "/metrics"]}
    wrong = server.request("GET", "/invocations")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "method GET is not allowed on /invocations", "allowed": ["POST"]}


def test_malformed_http_gets_a_json_400_then_the_connection_closes(server: RunningServer) -> None:
    (resp,) = parse_responses(raw_exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n"))
    assert resp.status == 400
    assert resp.headers["connection"] == "close"
    assert resp.json() == {"error": "malformed HTTP request: Invalid method encountered"}


def test_pipelined_requests_are_answered_in_order(server: RunningServer) -> None:
    body = b'{"instances": [[1, 1, "de"]]}'
    post = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    data = post + b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" + post + b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    responses = parse_responses(raw_exchange(server.port, data))
    assert [r.status for r in responses] == [200, 404, 200, 200]
    assert responses[0].body == responses[2].body
    assert responses[3].body == b'{"status":"healthy"}'
    assert responses[3].headers["connection"] == "close"


def test_expect_100_continue_gets_the_interim_response(server: RunningServer) -> None:
    import socket

    body = b'{"instances": [[1, 1, "de"]]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    (resp,) = parse_responses(data)
    assert resp.status == 200


def test_http10_request_gets_a_response_and_a_close(server: RunningServer) -> None:
    (resp,) = parse_responses(raw_exchange(server.port, b"GET /ping HTTP/1.0\r\n\r\n"))
    assert resp.status == 200
    assert resp.headers["connection"] == "close"


def test_capture_holds_version_variant_input_and_output_of_each_prediction(server: RunningServer) -> None:
    sent = {}
    for k in range(5):
        iid = f"capture-test-{k}"
        payload = json.dumps({"instances": [[float(k), k, "fr"]]})
        resp = server.invoke(payload, **{"X-Amzn-SageMaker-Inference-Id": iid,
                                         "X-Amzn-SageMaker-Custom-Attributes": f"inference_id={iid}, k={k}"})
        assert resp.status == 200
        sent[iid] = (payload, resp.body)
    csv_resp = server.invoke("3,1,it\n", content_type="text/csv", Accept="text/csv",
                             **{"X-Amzn-SageMaker-Inference-Id": "capture-test-csv"})
    def all_captured() -> dict:
        records = {r["eventMetadata"]["inferenceId"]: r for r in read_capture(server.capture_dir, include_partial=True)}
        return records if all(i in records for i in [*sent, "capture-test-csv"]) else {}

    records = wait_until(all_captured, what="every prediction in the capture files")
    for iid, (payload, output) in sent.items():
        record = records[iid]
        assert record["eventVersion"] == "0"
        assert record["captureData"]["endpointInput"] == {
            "observedContentType": "application/json", "mode": "INPUT", "data": payload, "encoding": "JSON"}
        assert record["captureData"]["endpointOutput"] == {
            "observedContentType": "application/json", "mode": "OUTPUT", "data": output.decode(), "encoding": "JSON"}
        meta = record["eventMetadata"]
        assert meta["modelVersion"] == MODEL_VERSION
        assert meta["variant"] == "champion"
        assert meta["customAttributes"] == f"inference_id={iid}, k={iid[-1]}"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", meta["inferenceTime"])
        assert UUID.match(meta["eventId"])
    csv_record = records["capture-test-csv"]["captureData"]
    assert csv_record["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                           "data": "3,1,it\n", "encoding": "CSV"}
    assert csv_record["endpointOutput"] == {"observedContentType": "text/csv", "mode": "OUTPUT",
                                            "data": csv_resp.body.decode(), "encoding": "CSV"}


def test_metrics_count_requests_by_status_latency_and_batch_sizes(server: RunningServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[tuple[str, tuple], float]:
        resp = server.request("GET", "/metrics")
        assert resp.status == 200
        assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        samples = {}
        for family in text_string_to_metric_families(resp.body.decode()):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    before = scrape()
    for _ in range(3):
        assert server.invoke({"instances": [[1, 1, "de"], [2, 2, "fr"]]}).status == 200
    assert server.invoke({"instances": [[1, 1]]}).status == 400
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("mlops_serving_requests_total", route="invocations", code="200") == 3
    assert delta("mlops_serving_requests_total", route="invocations", code="400") == 1
    assert delta("mlops_serving_request_duration_seconds_count") == 4
    assert delta("mlops_serving_batch_rows_count") == 3
    assert delta("mlops_serving_batch_rows_sum") == 6
    assert delta("mlops_serving_batch_rows_bucket", le="2.0") == 3
    assert delta("mlops_serving_predicted_rows_total") == 6
    assert delta("mlops_serving_capture_records_total") == 3
    assert after[("mlops_serving_model_loaded", ())] == 1
    assert after[("mlops_serving_model_info", (("model_name", "fraud-mlp"), ("model_version", MODEL_VERSION),
                                               ("variant", "champion")))] == 1


def test_upgrade_request_is_answered_over_http11_then_closed(server: RunningServer) -> None:
    data = b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    (resp,) = parse_responses(raw_exchange(server.port, data))
    assert resp.status == 200
    assert resp.headers["connection"] == "close"


def test_client_half_close_still_gets_every_answer(server: RunningServer) -> None:
    import socket

    body = b'{"instances": [[1, 1, "de"]]}'
    post = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(post * 3)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert [r.status for r in parse_responses(data)] == [200, 200, 200]
