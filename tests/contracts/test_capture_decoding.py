"""The capture format's decoding (mlops_contracts.capture), which both containers' readers call.

Exact outputs on purpose: the serving monitor and the training label join must read the same bytes
the same way, and a change here changes both.
"""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from mlops_contracts import capture

JSON_CSV = (capture.ENCODING_JSON, capture.ENCODING_CSV)


def part(data: object, encoding: str | None = "JSON", content_type: str = "application/json") -> dict:
    out = {"observedContentType": content_type, "mode": "INPUT", "data": data}
    if encoding is not None:
        out["encoding"] = encoding
    return out


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("given", "expected"), [
    (part('{"instances": [[1, 2]]}'), ('{"instances": [[1, 2]]}', "JSON")),
    (part('[1, 2]', encoding=None), ("[1, 2]", "JSON")),
    (part("1.5,2\n3,4\n", "CSV", "text/csv"), ("1.5,2\n3,4\n", "CSV")),
    (part("1,2", "csv", "text/csv"), ("1,2", "CSV")),
    (part(b64("1.5,de\n"), "BASE64", "text/csv"), ("1.5,de\n", "CSV")),
    (part(b64('{"predictions": [0.25]}'), "BASE64", "application/json"), ('{"predictions": [0.25]}', "JSON")),
    (part(b64("[1]"), "BASE64", "application/x-npy"), ("[1]", "JSON")),
])
def test_decode_body_gives_the_text_and_how_to_read_it(given, expected):
    assert capture.decode_body(given) == expected


@pytest.mark.parametrize(("given", "message"), [
    (None, "no data: a capture part is a JSON object, got NoneType"),
    ("1,2", "no data: a capture part is a JSON object, got str"),
    ({"encoding": "CSV"}, "no data: 'data' is missing; allowed a string"),
    (part(5), "no data: 'data' is int; allowed a string"),
    (part("1", "XML"), "encoding 'XML'; allowed JSON, CSV, BASE64"),
    (part("not base64!", "BASE64"), "bad BASE64 data: "),
    (part(base64.b64encode(b"\xff\xfe").decode(), "BASE64"), "bad BASE64 data: 'utf-8' codec can't decode"),
])
def test_decode_body_rejects_a_part_it_cannot_read_saying_why(given, message):
    with pytest.raises(ValueError) as caught:
        capture.decode_body(given)
    assert str(caught.value).startswith(message)


def test_decode_body_refuses_an_encoding_the_caller_does_not_accept():
    with pytest.raises(ValueError, match=r"^encoding 'BASE64'; allowed JSON, CSV$"):
        capture.decode_body(part(b64("1"), "BASE64", "text/csv"), encodings=JSON_CSV)
    assert capture.decode_body(part("1", "CSV"), encodings=JSON_CSV) == ("1", "CSV")


@pytest.mark.parametrize(("given", "labels"), [
    (part("1", "CSV", "text/csv"), ["1"]),
    (part("1,0", "CSV", "text/csv"), ["1", "0"]),
    (part("1\n\n0\n", "CSV", "text/csv"), ["1", "0"]),
    (part("1"), [1]),
    (part("0.5"), [0.5]),
    (part("[1, 0]"), [1, 0]),
    (part('{"label": 1}'), [1]),
    (part('{"label": [1, 0]}'), [1, 0]),
    (part('{"score": 1}'), [{"score": 1}]),
    (part("[]"), []),
    (part(b64("1,0"), "BASE64", "text/csv"), ["1", "0"]),
    (part(b64("[1, 0]"), "BASE64"), [1, 0]),
])
def test_ground_truth_values_in_every_shape_of_the_merge_format(given, labels):
    assert capture.ground_truth_values(given) == labels


def test_ground_truth_values_parse_json_with_the_given_loads():
    seen = []

    def loads(text: str) -> object:
        seen.append(text)
        return json.loads(text)

    assert capture.ground_truth_values(part("[1]"), loads=loads) == [1]
    assert seen == ["[1]"]
    with pytest.raises(ValueError):
        capture.ground_truth_values(part("[1"))


def record(event_id: object = "inf-1", data: str = "1,0", encoding: str = "CSV") -> dict:
    return {"groundTruthData": {"data": data, "encoding": encoding}, "eventMetadata": {"eventId": event_id},
            "eventVersion": "0"}


def test_ground_truth_record_gives_the_event_id_and_its_labels():
    assert capture.ground_truth_record(record()) == ("inf-1", ["1", "0"])
    assert capture.ground_truth_record(record(data="[1]", encoding="JSON")) == ("inf-1", [1])


@pytest.mark.parametrize(("doc", "error"), [
    (record(event_id=""), ValueError),
    (record(event_id=7), ValueError),
    (record(data="[]", encoding="JSON"), ValueError),
    ({"eventMetadata": {"eventId": "inf-1"}}, KeyError),
    ({"groundTruthData": {"data": "1"}}, KeyError),
    (["not", "a", "record"], TypeError),
])
def test_ground_truth_record_raises_what_the_readers_count_as_malformed(doc, error):
    with pytest.raises(error):
        capture.ground_truth_record(doc)


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-11-22T06:30:00.123Z", datetime(2026, 11, 22, 6, 30, 0, 123000, tzinfo=UTC)),
    ("2026-11-22T06:30:00Z", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)),
    ("2026-11-22T08:30:00+02:00", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)),
    ("2026-11-22T01:30:00-05:00", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)),
    ("2026-11-22T06:30:00", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)),
    ("2026-11-22 06:30:00", datetime(2026, 11, 22, 6, 30, tzinfo=UTC)),
    ("2026-11-22", datetime(2026, 11, 22, tzinfo=UTC)),
])
def test_parse_time_reads_zulu_offsets_and_naive_times_as_utc(raw, expected):
    parsed = capture.parse_time(raw)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0) and parsed.tzinfo is UTC


def test_parse_time_converts_an_offset_rather_than_dropping_it():
    parsed = capture.parse_time("2026-11-22T08:30:00+02:00")
    assert (parsed.hour, parsed.tzinfo) == (6, UTC)
    assert parsed == datetime(2026, 11, 22, 8, 30, tzinfo=timezone(timedelta(hours=2)))


def test_parse_time_reads_whitespace_inside_only_when_asked():
    spaced = "2019-12-01T16: 20: 00Z"
    assert capture.parse_time(spaced, spaces=True) == datetime(2019, 12, 1, 16, 20, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"^'2019-12-01T16: 20: 00Z' is not an ISO 8601 time; allowed e.g. "):
        capture.parse_time(spaced)


@pytest.mark.parametrize(("raw", "message"), [
    (None, "None is not an ISO 8601 time string; allowed e.g. 2026-11-22T06:30:00.123Z"),
    (1763793000, "1763793000 is not an ISO 8601 time string; allowed e.g. 2026-11-22T06:30:00.123Z"),
    ("yesterday", "'yesterday' is not an ISO 8601 time; allowed e.g. 2026-11-22T06:30:00.123Z"),
    ("", "'' is not an ISO 8601 time; allowed e.g. 2026-11-22T06:30:00.123Z"),
])
def test_parse_time_rejects_what_is_not_an_iso_time_naming_the_value(raw, message):
    for spaces in (False, True):
        with pytest.raises(ValueError) as caught:
            capture.parse_time(raw, spaces=spaces)
        assert str(caught.value) == message


def test_ground_truth_records_yield_each_record_and_report_each_bad_line_with_its_place():
    lines = [
        ("gt.jsonl", 1, json.dumps(record("a", "1"))),
        ("gt.jsonl", 2, "   "),
        ("gt.jsonl", 3, "{not json"),
        ("gt.jsonl", 4, json.dumps(record("b", b64("0"), "BASE64"))),
        ("gt.jsonl", 5, json.dumps({"eventMetadata": {"eventId": "c"}})),
        ("gt.jsonl", 6, json.dumps(record("a", "[0, 1]", "JSON"))),
    ]
    problems: list[str] = []
    got = list(capture.ground_truth_records(lines, problem=problems.append, encodings=JSON_CSV))
    assert got == [("a", ["1"]), ("a", [0, 1])]
    assert [p.split(": ")[0] for p in problems] == ["gt.jsonl:3", "gt.jsonl:4", "gt.jsonl:5"]
    assert problems[1:] == ["gt.jsonl:4: encoding 'BASE64'; allowed JSON, CSV", "gt.jsonl:5: 'groundTruthData'"]
    problems.clear()
    assert list(capture.ground_truth_records(lines[3:4], problem=problems.append)) == [("b", [0])]  # BASE64 without a csv content type is JSON
    assert problems == []


def test_ground_truth_line_round_trips():
    line = capture.ground_truth_line("inf-1", [1, 0.5])
    assert capture.ground_truth_record(json.loads(line)) == ("inf-1", ["1", "0.5"])
    with pytest.raises(ValueError, match="no labels"):
        capture.ground_truth_line("inf-1", [])
    with pytest.raises(ValueError, match="non-empty string"):
        capture.ground_truth_line("", [1])
