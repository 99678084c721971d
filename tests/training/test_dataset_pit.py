"""The point-in-time builder on DuckDB: no leakage, dedup, deletes, time split, both event time types."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from mlops_training.dataset import build, query
from mlops_training.dataset.duckdb_engine import DuckDBEngine

from .dataset_helpers import at, events, feature_row, request, rows_of, write_offline_store

TABLE = "transactions_1740787200"


def run_build(tmp_path: Path, rows, label_events, *, event_type: str = "String", out: str = "out", **overrides):
    store = write_offline_store(tmp_path / "store", rows, event_type=event_type)
    engine = DuckDBEngine(str(store), feature_table=TABLE)
    return build.build(request(**overrides), engine=engine, events=label_events, out=tmp_path / out)


def naive_latest_row(store: Path, record: str) -> float:
    """What a join on 'the latest row of the record' (no label time) hands a label."""
    con = duckdb.connect()
    return con.execute(
        "SELECT amount FROM read_parquet(?, hive_partitioning = false) WHERE transaction_id = ? "
        "ORDER BY event_time DESC, write_time DESC LIMIT 1",
        [f"{store}/**/*.parquet", record],
    ).fetchone()[0]


@pytest.mark.parametrize("event_type", ["String", "Fractional"])
def test_label_before_a_features_event_time_never_sees_that_feature(tmp_path: Path, event_type: str) -> None:
    rows = [feature_row("t1", event=0, value=10.0, event_type=event_type),
            feature_row("t1", event=5, value=50.0, event_type=event_type)]
    built = run_build(tmp_path, rows, events(("t1", 1, 2), ("t1", 0, 6)), event_type=event_type,
                      cutoff=at(100))
    got = [r["amount"] for r in rows_of(built.directory)["train"]]
    assert got == [10.0, 50.0]
    # The naive join hands the label at hour 2 the row from hour 5: the leak this builder prevents.
    assert naive_latest_row(tmp_path / "store", "t1") == 50.0


@pytest.mark.parametrize("event_type", ["String", "Fractional"])
def test_a_feature_at_exactly_the_label_time_is_visible_and_one_millisecond_later_is_not(
    tmp_path: Path, event_type: str
) -> None:
    one_ms = 1 / 3600 / 1000
    rows = [feature_row("t1", event=0, value=1.0, event_type=event_type),
            feature_row("t1", event=2, value=2.0, event_type=event_type),
            feature_row("t1", event=4 + one_ms, value=3.0, event_type=event_type)]
    built = run_build(tmp_path, rows, events(("t1", 0, 2), ("t1", 1, 4)), event_type=event_type, cutoff=at(100))
    assert [r["amount"] for r in rows_of(built.directory)["train"]] == [2.0, 2.0]


def test_the_latest_write_wins_among_rows_with_the_same_event_time(tmp_path: Path) -> None:
    rows = [feature_row("t1", event=1, value=1.0, written=1.5),
            feature_row("t1", event=1, value=2.0, written=3.0),  # a correction of the same event, written later
            feature_row("t1", event=1, value=3.0, written=2.0)]
    built = run_build(tmp_path, rows, events(("t1", 0, 4)), cutoff=at(100))
    assert [r["amount"] for r in rows_of(built.directory)["train"]] == [2.0]


def test_api_invocation_time_breaks_a_write_time_tie(tmp_path: Path) -> None:
    first = feature_row("t1", event=1, value=1.0, written=2.0)
    second = feature_row("t1", event=1, value=2.0, written=2.0)
    second["api_invocation_time"] = first["api_invocation_time"].replace(microsecond=500_000)
    built = run_build(tmp_path, [second, first], events(("t1", 0, 4)), cutoff=at(100))
    assert [r["amount"] for r in rows_of(built.directory)["train"]] == [2.0]


def test_exact_duplicate_rows_count_once_and_conflicting_ties_are_refused(tmp_path: Path) -> None:
    row = feature_row("t1", event=1, value=1.0)
    built = run_build(tmp_path, [row, dict(row)], events(("t1", 0, 4)), cutoff=at(100))
    assert built.manifest.counts["matched"] == 1
    assert len(rows_of(built.directory)["train"]) == 1

    other = dict(row, amount=9.0)
    with pytest.raises(ValueError, match=r"record 't1': two different feature rows share event_time"):
        run_build(tmp_path / "conflict", [row, other], events(("t1", 0, 4)), cutoff=at(100))


def test_a_deleted_record_gives_its_labels_no_features_until_it_is_put_again(tmp_path: Path) -> None:
    rows = [feature_row("t1", event=0, value=1.0),
            feature_row("t1", event=2, value=0.0, deleted=True),
            feature_row("t1", event=4, value=4.0)]
    label_events = events(("t1", 0, 1), ("t1", 1, 3), ("t1", 0, 5), ("t2", 1, 5))
    built = run_build(tmp_path, rows, label_events, cutoff=at(100))
    assert [r["amount"] for r in rows_of(built.directory)["train"]] == [1.0, 4.0]
    assert built.manifest.counts == {
        "labels_in": 4, "matched": 2, "excluded_no_feature": 1, "excluded_deleted": 1, "train": 2, "validation": 0,
    }


def test_split_is_by_label_time_at_the_cutoff(tmp_path: Path) -> None:
    rows = [feature_row(f"t{i}", event=0, value=float(i)) for i in range(10)]
    label_events = events(*[(f"t{i}", i % 2, 1 + i) for i in range(10)])
    built = run_build(tmp_path, rows, label_events, cutoff=at(7))
    split = rows_of(built.directory)
    assert [r["transaction_id"] for r in split["train"]] == [f"t{i}" for i in range(6)]
    assert [r["transaction_id"] for r in split["validation"]] == [f"t{i}" for i in range(6, 10)]
    assert max(r["pit_label_time"] for r in split["train"]) < datetime(2026, 3, 1, 7) <= min(
        r["pit_label_time"] for r in split["validation"])
    assert built.manifest.doc["cutoff"] == "2026-03-01T07:00:00.000Z"


def test_default_cutoff_leaves_the_most_recent_fifth_for_validation(tmp_path: Path) -> None:
    rows = [feature_row(f"t{i}", event=0, value=float(i)) for i in range(10)]
    built = run_build(tmp_path, rows, events(*[(f"t{i}", i % 2, 1 + i) for i in range(10)]))
    assert built.manifest.doc["cutoff"] == "2026-03-01T09:00:00.000Z"
    assert (built.manifest.counts["train"], built.manifest.counts["validation"]) == (8, 2)


def test_manifest_counts_and_content_hash_are_stable_across_runs(tmp_path: Path) -> None:
    rows = [feature_row(f"t{i % 3}", event=i, value=float(i)) for i in range(12)]
    label_events = events(*[(f"t{i % 4}", i % 2, i + 0.5) for i in range(12)])
    first = run_build(tmp_path, rows, label_events, out="one")
    # The same events in another order build the same dataset.
    second = build.build(request(), engine=DuckDBEngine(str(tmp_path / "store"), feature_table=TABLE),
                         events=label_events.take(list(reversed(range(12)))), out=tmp_path / "two")
    assert first.manifest.content_hash == second.manifest.content_hash
    assert first.manifest.counts == second.manifest.counts
    assert first.manifest.doc["sql_sha256"] == second.manifest.doc["sql_sha256"] == query.sql_hash(first.sql)
    assert (tmp_path / "one/train/part-00000.parquet").read_bytes() == (
        tmp_path / "two/train/part-00000.parquet").read_bytes()
    assert first.manifest.counts["labels_in"] == 12
    assert sum(first.manifest.counts[k] for k in ("matched", "excluded_no_feature", "excluded_deleted")) == 12


def test_string_and_fractional_event_times_build_the_same_rows(tmp_path: Path) -> None:
    def rows(kind: str):
        return [feature_row(f"t{i % 3}", event=i * 0.7, value=float(i), event_type=kind) for i in range(15)]
    label_events = events(*[(f"t{i % 3}", i % 2, i * 0.9) for i in range(15)])
    as_text = run_build(tmp_path / "s", rows("String"), label_events, event_type="String", cutoff=at(8))
    as_epoch = run_build(tmp_path / "f", rows("Fractional"), label_events, event_type="Fractional", cutoff=at(8))
    strip = lambda split: [{k: v for k, v in r.items() if k != "event_time"} for r in split]  # noqa: E731
    for split in ("train", "validation"):
        assert strip(rows_of(as_text.directory)[split]) == strip(rows_of(as_epoch.directory)[split])
    assert as_text.manifest.counts == as_epoch.manifest.counts


def test_label_events_with_nulls_or_missing_columns_are_refused() -> None:
    import pyarrow as pa

    with pytest.raises(ValueError, match="label events lack column"):
        build.prepare_labels(pa.table({"record_id": ["a"], "label": [1.0]}))
    table = pa.table({"record_id": ["a", None], "label": [1.0, 0.0],
                      "label_time": pa.array([at(1), at(2)], pa.timestamp("ms", tz="UTC"))})
    with pytest.raises(ValueError, match="1 null value"):
        build.prepare_labels(table)


def test_render_refuses_unknown_event_time_types_and_unsafe_names() -> None:
    spec = dict(feature_table="t", labels_table="l", record_identifier="id", event_time="et",
                event_time_type="String", features=("x",), label="y", cutoff=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="event_time_type 'Integral'; allowed: String, Fractional"):
        query.render(query.QuerySpec(**{**spec, "event_time_type": "Integral"}))
    with pytest.raises(ValueError, match="feature 'x\"; drop' is not a usable SQL name"):
        query.render(query.QuerySpec(**{**spec, "features": ('x"; drop',)}))
    with pytest.raises(ValueError, match="feature 'write_time' clashes"):
        query.render(query.QuerySpec(**{**spec, "features": ("write_time",)}))
    with pytest.raises(ValueError, match="has no time zone"):
        query.render(query.QuerySpec(**{**spec, "cutoff": datetime(2026, 1, 1)}))
