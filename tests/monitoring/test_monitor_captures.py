"""Reading captures: every request and response shape the server accepts, and which files a
window reads."""
from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops_serving.monitor.captures import InputDecoder, find_files, predictions

NAMES = ("amount", "n_items", "country")


def part(data: str, encoding: str = "JSON", content_type: str = "application/json") -> dict:
    return {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding}


@pytest.mark.parametrize(("body", "rows"), [
    ('{"instances": [[1.5, 2, "de"], [3.0, null, null]]}', [[1.5, 2, "de"], [3.0, None, None]]),
    ('{"instances": [{"country": "fr", "amount": 1.0, "n_items": 4}]}', [[1.0, 4, "fr"]]),
    ('{"instances": [{"features": [1.0, 4, "fr"]}]}', [[1.0, 4, "fr"]]),
    ('[[1.0, 4, "fr"], [2.0, 5, "it"]]', [[1.0, 4, "fr"], [2.0, 5, "it"]]),
    ('[1.0, 4, "fr"]', [[1.0, 4, "fr"]]),
    ('{"amount": 1.0, "n_items": 4, "country": "fr"}', [[1.0, 4, "fr"]]),
])
def test_json_bodies_decode_to_rows_in_model_column_order(body, rows):
    assert InputDecoder(NAMES).rows(part(body)) == rows


def test_csv_bodies_decode_with_empty_fields_as_null_and_quoted_text_kept():
    body = '1.5,2,"de, north"\n\n3.0,, \n'
    assert InputDecoder(NAMES).rows(part(body, "CSV", "text/csv")) == [["1.5", "2", "de, north"], ["3.0", None, None]]


def test_base64_parts_are_read_by_their_content_type():
    csv_part = part(base64.b64encode(b"1.5,2,de\n").decode(), "BASE64", "text/csv")
    assert InputDecoder(NAMES).rows(csv_part) == [["1.5", "2", "de"]]
    json_part = part(base64.b64encode(b'{"predictions": [0.25]}').decode(), "BASE64", "application/json")
    assert predictions(json_part) == [0.25]


@pytest.mark.parametrize(("body", "message"), [
    ('{"instances": [[1.0, 2]]}', "a row has 2 values; the model has 3 features"),
    ('{"instances": [{"amount": 1.0}]}', "a record lacks features ['country', 'n_items']"),
    ('{"instances": 5}', "'instances' is not a list"),
    ("not json", "input is not JSON"),
])
def test_unusable_bodies_raise_value_error_saying_why(body, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        InputDecoder(NAMES).rows(part(body))


@pytest.mark.parametrize(("data", "encoding", "values"), [
    ('{"predictions": [0.1, 0.2]}', "JSON", [0.1, 0.2]),
    ("[0.1, 0.2]", "JSON", [0.1, 0.2]),
    ('{"predictions": [[0.1], [0.2]]}', "JSON", [0.1, 0.2]),
    ("0.1\n0.2\n", "CSV", ["0.1", "0.2"]),
])
def test_responses_give_one_prediction_per_row(data, encoding, values):
    assert predictions({"data": data, "encoding": encoding}) == values


def test_a_window_reads_only_the_hour_directories_that_can_hold_it_and_never_partial_files(tmp_path: Path):
    def touch(rel: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"captureData": {}}) + "\n")

    touch("fraud/champion/2026/03/01/08/a.jsonl")   # two hours before: outside the margin
    touch("fraud/champion/2026/03/01/09/b.jsonl")   # the hour before: margin
    touch("fraud/champion/2026/03/01/10/c.jsonl")
    touch("fraud/shadow/2026/03/01/10/d.jsonl")
    touch("fraud/champion/2026/03/01/10/e.jsonl.partial")
    touch("fraud/champion/2026/03/01/12/f.jsonl")   # the hour after the end: margin
    touch("fraud/champion/2026/03/01/13/g.jsonl")   # outside
    touch("other/champion/2026/03/01/10/h.jsonl")   # another endpoint
    files = find_files(str(tmp_path), endpoint="fraud", start=datetime(2026, 3, 1, 10, tzinfo=UTC),
                       end=datetime(2026, 3, 1, 11, 30, tzinfo=UTC))
    assert [(Path(f.location).name, f.variant) for f in files] == [
        ("b.jsonl", "champion"), ("c.jsonl", "champion"), ("f.jsonl", "champion"), ("d.jsonl", "shadow")]
    everything = find_files(str(tmp_path), endpoint="fraud", start=None, end=None)
    assert len(everything) == 6
    with pytest.raises(FileNotFoundError):
        find_files(str(tmp_path / "missing"), endpoint="fraud", start=None, end=None)
