"""Fuzzing the real server over HTTP: bad input gets a 4xx with a JSON error body, never a 5xx or a
dropped connection, and the server keeps answering afterwards."""
from __future__ import annotations

import csv
import http.client
import io
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_support import RunningServer, parse_responses, raw_exchange

NAMES = ["amount", "n_items", "country"]
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=8)
good_amount = st.floats(0, 1e6, allow_nan=False)
good_items = st.none() | st.integers(0, 50)
good_country = st.sampled_from(["de", "fr", "it", "zz"])


def post(server: RunningServer, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; a dropped connection fails the test."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("POST", "/invocations", body, headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def assert_client_error(status: int, headers: dict[str, str], body: bytes) -> None:
    assert 400 <= status < 500, (status, body[:300])
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert isinstance(doc["error"], str) and doc["error"]


@pytest.fixture(autouse=True)
def still_answers_after(server: RunningServer):
    yield
    assert server.request("GET", "/ping").status == 200
    assert server.invoke({"instances": [[1.0, 1, "de"]]}).status == 200


def could_be_valid(body: bytes, content_type: str) -> bool:
    """True when random bytes happen to form a request that may be valid (then 200 is allowed)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if content_type == "application/json":
        try:
            json.loads(text)
        except ValueError:
            return False
        return True
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error:
        return False
    return bool(records) and all(len(r) == 3 for r in records)


@FUZZ
@given(body=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/csv"]))
def test_random_bytes_get_a_4xx(server: RunningServer, body: bytes, content_type: str) -> None:
    status, headers, answer = post(server, body, {"Content-Type": content_type})
    if status == 200 and could_be_valid(body, content_type):
        return
    assert_client_error(status, headers, answer)


@FUZZ
@given(doc=json_values)
def test_arbitrary_json_documents_get_a_4xx_unless_they_are_valid_rows(server: RunningServer, doc) -> None:
    status, headers, answer = post(server, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    if status == 200:
        # Only a document that really is a row or rows in one of the accepted shapes may pass.
        predictions = json.loads(answer)["predictions"]
        assert all(isinstance(p, float) for p in predictions)
        return
    assert_client_error(status, headers, answer)


@FUZZ
@given(row=st.lists(json_scalars, max_size=6).filter(lambda r: len(r) != 3))
def test_rows_of_the_wrong_length_get_400(server: RunningServer, row: list) -> None:
    status, headers, answer = post(server, json.dumps({"instances": [[1.0, 1, "de"], row]}).encode(),
                                   {"Content-Type": "application/json"})
    assert_client_error(status, headers, answer)
    assert status == 400


@FUZZ
@given(amount=good_amount, items=good_items, country=good_country, column=st.integers(0, 2),
       token=st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "1e400", "-1e99999", "0x10", "+1", ".5"]))
def test_non_finite_and_non_json_number_tokens_get_400(server: RunningServer, amount, items, country,
                                                       column: int, token: str) -> None:
    cells = [json.dumps(amount), json.dumps(items), json.dumps(country)]
    cells[column] = token
    body = ('{"instances": [[' + ",".join(cells) + "]]}").encode()
    status, headers, answer = post(server, body, {"Content-Type": "application/json"})
    assert_client_error(status, headers, answer)
    assert status == 400


@FUZZ
@given(magnitude=st.floats(3.5e38, 1.7e308) | st.integers(10**39, 10**400),
       sign=st.sampled_from([1, -1]), column=st.sampled_from([0, 1]))
def test_numbers_beyond_float32_get_400_naming_the_field(server: RunningServer, magnitude: float | int,
                                                         sign: int, column: int) -> None:
    row = [1.0, 1, "de"]
    row[column] = sign * (int(magnitude) if column == 1 else magnitude)
    status, headers, answer = post(server, json.dumps({"instances": [row]}).encode(),
                                   {"Content-Type": "application/json"})
    assert_client_error(status, headers, answer)
    assert status == 400
    error = json.loads(answer)
    if not error["error"].startswith("body is not valid JSON"):  # beyond double: a parse error
        assert error["field"] == NAMES[column]


@FUZZ
@given(keep=st.lists(st.sampled_from(NAMES), unique=True, max_size=3),
       extra=st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k not in NAMES), json_scalars,
                             max_size=3),
       amount=good_amount, items=good_items, country=good_country)
def test_records_with_missing_or_extra_fields_get_400(server: RunningServer, keep, extra, amount, items,
                                                      country) -> None:
    full = {"amount": amount, "n_items": items, "country": country}
    record = {k: full[k] for k in keep} | extra
    status, headers, answer = post(server, json.dumps({"instances": [record]}).encode(),
                                   {"Content-Type": "application/json"})
    if len(keep) == 3 and not extra:
        assert status == 200
        return
    assert_client_error(status, headers, answer)
    assert status == 400


@FUZZ
@given(column=st.integers(0, 2), value=json_values)
def test_values_of_the_wrong_type_get_400(server: RunningServer, column: int, value) -> None:
    expects_string = column == 2
    ok = (isinstance(value, str) if expects_string
          else (value is None and column == 1) or (type(value) in (int, float)))
    row = [1.0, 1, "de"]
    row[column] = value
    status, headers, answer = post(server, json.dumps({"instances": [row]}).encode(),
                                   {"Content-Type": "application/json"})
    if ok:
        # Numbers can still be out of range or fractional for the Integral column.
        assert status in (200, 400)
        return
    assert_client_error(status, headers, answer)
    assert status == 400


@FUZZ
@given(content_type=st.text(alphabet=string.ascii_letters + string.digits + "/;=+-._ ", min_size=1, max_size=30)
       .map(str.strip).filter(lambda t: t and t.split(";")[0].strip().lower() not in ("application/json", "text/csv")))
def test_unknown_content_types_get_415(server: RunningServer, content_type: str) -> None:
    status, headers, answer = post(server, b'{"instances": [[1.0, 1, "de"]]}', {"Content-Type": content_type})
    assert_client_error(status, headers, answer)
    assert status == 415


@FUZZ
@given(junk=st.binary(min_size=1, max_size=200).filter(lambda b: b"\r" not in b and b"\n" not in b))
def test_garbage_bytes_in_a_header_value_get_a_json_400(server: RunningServer, junk: bytes) -> None:
    # Whatever llhttp makes of the bytes (invalid header characters, or a value it accepts), the
    # request is either malformed or has no JSON body: both are a 400 with a JSON error.
    data = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nX-Fuzz: " + junk + b"\r\n\r\n")
    responses = parse_responses(raw_exchange(server.port, data, timeout=5))
    assert len(responses) == 1
    assert_client_error(responses[0].status, responses[0].headers, responses[0].body)
    assert responses[0].status == 400
