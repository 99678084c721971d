"""The demo's synthetic feature source and label events (mlops/local/demo_data.py): pure, no AWS."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops.local import demo_data

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _times(values: list[str]) -> list[datetime]:
    return [datetime.strptime(v, demo_data.ISO).replace(tzinfo=UTC) for v in values]


def test_labels_follow_their_rows_and_everything_lies_in_the_past():
    source, labels, corrected = demo_data.generate(rows=500, seed=3, label="is_fraud", now=NOW)
    assert corrected == 50 and source.num_rows == 550 and labels.num_rows == 500
    events = _times(source.column("event_time").to_pylist())
    assert max(events) <= NOW
    assert min(events) >= NOW - demo_data.LAST_EVENT_AGE - timedelta(days=demo_data.DAYS)
    label_times = labels.column("label_time").to_pylist()
    low, high = demo_data.LABEL_DELAY
    assert all(low <= t - e <= high for e, t in zip(events[:500], label_times))
    assert labels.column("record_id").to_pylist() == source.column("transaction_id").to_pylist()[:500]
    assert labels.column("label").to_pylist() == [float(v) for v in source.column("is_fraud").to_pylist()[:500]]


def test_corrections_come_after_their_label_and_change_only_the_item_count():
    source, labels, corrected = demo_data.generate(rows=500, seed=3, label="is_fraud", now=NOW)
    rows = source.to_pylist()
    label_time = dict(zip(labels.column("record_id").to_pylist(), labels.column("label_time").to_pylist()))
    for original, fix in zip(rows[500 - corrected:500], rows[500:]):
        assert fix["transaction_id"] == original["transaction_id"]
        assert _times([fix["event_time"]])[0] > label_time[fix["transaction_id"]]
        assert fix["n_items"] > (original["n_items"] or 0)
        assert {k: v for k, v in fix.items() if k not in ("event_time", "n_items")} == \
            {k: v for k, v in original.items() if k not in ("event_time", "n_items")}


def test_same_arguments_give_the_same_tables_and_a_naive_now_is_refused():
    first = demo_data.generate(rows=200, seed=4, label="is_fraud", now=NOW)
    assert demo_data.generate(rows=200, seed=4, label="is_fraud", now=NOW)[0].equals(first[0])
    with pytest.raises(ValueError, match="no time zone"):
        demo_data.generate(rows=10, seed=4, label="is_fraud", now=datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="label 'churned' is not a column"):
        demo_data.generate(rows=10, seed=4, label="churned", now=NOW)


def test_drifted_transactions_are_new_recent_larger_and_carry_an_unseen_country():
    before, _, _ = demo_data.generate(rows=400, seed=3, label="is_fraud", now=NOW)
    source, labels = demo_data.drifted(rows=400, seed=3, label="is_fraud", now=NOW)
    assert source.schema == before.schema
    ids = source.column("transaction_id").to_pylist()
    assert not set(ids) & set(before.column("transaction_id").to_pylist())
    assert labels.column("record_id").to_pylist() == ids
    assert labels.column("label").to_pylist() == [float(v) for v in source.column("is_fraud").to_pylist()]
    events = _times(source.column("event_time").to_pylist())
    oldest, newest = demo_data.DRIFT_SPAN
    assert all(NOW - oldest <= e <= NOW - newest for e in events)
    assert all(e < t <= NOW for e, t in zip(events, labels.column("label_time").to_pylist()))
    countries = source.column("country").to_pylist()
    share = countries.count(demo_data.DRIFT_COUNTRY) / len(countries)
    assert 0.3 < share < 0.5
    assert demo_data.DRIFT_COUNTRY not in before.column("country").to_pylist()
    amounts = sorted(source.column("amount").to_pylist())
    assert amounts[len(amounts) // 2] > 4 * sorted(before.column("amount").to_pylist())[200]
    # The unseen country carries the fraud: its rows are labelled fraud far more often.
    fraud = source.column("is_fraud").to_pylist()
    rate = lambda pick: sum(f for f, c in zip(fraud, countries) if pick(c)) / sum(1 for c in countries if pick(c))
    assert rate(lambda c: c == demo_data.DRIFT_COUNTRY) > rate(lambda c: c != demo_data.DRIFT_COUNTRY) + 0.2
    with pytest.raises(ValueError, match="time zone"):
        demo_data.drifted(rows=10, seed=1, label="is_fraud", now=NOW.replace(tzinfo=None))
