"""Evaluation metrics, baseline statistics, the input encoding, the split and the data fingerprint."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlops_training.baseline import bin_index, compute_baseline, numeric_stats
from mlops_training.data import fingerprint, read_parquet_source, split_rows
from mlops_training.encode import encode_records, encode_table, learn_categories
from mlops_training.evaluate import compute_metrics, log_loss, roc_auc
from mlops_training.schema import parse_schema
from mlops_training.synthetic import generate, schema_document


def test_auc_counts_pairs_and_half_counts_ties() -> None:
    # Pairs (pos, neg): (0.8, 0.1) win, (0.8, 0.4) win, (0.4, 0.1) win, (0.4, 0.4) tie -> 3.5 / 4.
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.1, 0.4])) == 0.875
    assert roc_auc(np.array([0, 1]), np.array([0.9, 0.1])) == 0.0
    with pytest.raises(ValueError, match="AUC needs both classes"):
        roc_auc(np.array([1, 1]), np.array([0.2, 0.3]))


def test_binary_metrics_match_hand_computed_values() -> None:
    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.6])
    metrics = compute_metrics(task="binary_classification", y_true=y, predictions=p)
    expected_loss = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4
    assert metrics == {
        "format_version": 1, "task": "binary_classification", "split": "validation", "n_rows": 4,
        "auc": 0.75, "accuracy": 0.5, "log_loss": pytest.approx(expected_loss),
    }
    assert log_loss(np.array([1.0]), np.array([0.0])) < 40  # clipped, not infinite


def test_regression_metrics_match_hand_computed_values() -> None:
    y, predictions = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])
    metrics = compute_metrics(task="regression", y_true=y, predictions=predictions)
    assert metrics["rmse"] == pytest.approx(math.sqrt(4 / 3))
    assert metrics["mae"] == pytest.approx(2 / 3)
    assert metrics["r2"] == pytest.approx(1 - 4 / 2)


def test_a_value_on_an_interior_edge_goes_to_the_upper_bin_and_outliers_to_the_end_bins() -> None:
    edges = np.array([float(x) for x in range(0, 101, 10)])
    assert list(bin_index(edges, np.array([-5.0, 0.0, 10.0, 99.9, 100.0, 500.0]))) == [0, 0, 1, 9, 9, 9]


def test_bin_edges_are_deciles_from_min_to_max_and_frequencies_follow_the_binning_rule() -> None:
    values = np.arange(101, dtype=np.float64)
    values[:3] = np.nan  # nulls are excluded from the bins and counted in null_rate
    stats = numeric_stats(values, type_name="Fractional", seed=0)
    present = values[~np.isnan(values)]
    assert stats["bin_edges"][0] == 3.0 and stats["bin_edges"][-1] == 100.0
    assert stats["bin_edges"] == pytest.approx(list(np.linspace(3.0, 100.0, 11)))
    counts = np.bincount(bin_index(np.array(stats["bin_edges"]), present), minlength=10)
    assert stats["bin_frequencies"] == list(counts / len(present))
    assert stats["null_rate"] == pytest.approx(3 / 101)
    assert stats["quantiles"]["0.5"] == np.median(present)
    assert sorted(stats["sample"]) == sorted(present.tolist())  # fewer rows than the cap: all of them


def test_baseline_has_the_contract_fields_null_rates_and_a_seeded_sample() -> None:
    schema = parse_schema(schema_document("binary_classification"))
    table = generate(20_000, task="binary_classification", seed=3)
    predictions = np.linspace(0, 1, table.num_rows)
    baseline = compute_baseline(table, schema, predictions=predictions, seed=5)
    assert baseline["format_version"] == 1 and baseline["n_rows"] == 20_000
    age = baseline["features"]["account_age_days"]
    assert set(age) == {"type", "null_rate", "mean", "std", "bin_edges", "bin_frequencies", "quantiles", "sample"}
    assert age["null_rate"] == pytest.approx(table.column("account_age_days").null_count / 20_000)
    assert len(age["bin_edges"]) == 11 and len(age["bin_frequencies"]) == 10
    assert sum(age["bin_frequencies"]) == pytest.approx(1.0)
    assert list(age["quantiles"]) == ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]
    assert len(age["sample"]) == 10_000  # capped
    assert age["bin_edges"][0] == min(age["sample"] + [age["bin_edges"][0]])
    country = baseline["features"]["country"]
    assert country["type"] == "String" and sum(country["category_frequencies"].values()) == pytest.approx(1.0)
    assert baseline["prediction"]["type"] == "Fractional" and baseline["prediction"]["bin_edges"][-1] == 1.0
    again = compute_baseline(table, schema, predictions=predictions, seed=5)
    assert again == baseline  # the sample is seeded


def test_encode_table_follows_the_contract_row_by_row() -> None:
    schema = parse_schema(schema_document("binary_classification"))
    table = generate(500, task="binary_classification", seed=1)
    categories = learn_categories(table, schema, max_categories=3)
    counts = Counter(c for c in table.column("country").to_pylist() if c is not None)
    assert categories["country"] == sorted(sorted(counts, key=lambda c: (-counts[c], c))[:3])
    records = table.to_pylist()
    vectorised = encode_table(table, schema, categories=categories)
    by_row = encode_records(records, schema, categories=categories)
    np.testing.assert_array_equal(vectorised, by_row)  # NaN positions equal too
    country = schema.feature_names.index("country")
    unknown = [i for i, r in enumerate(records) if r["country"] not in (None, *categories["country"])]
    null = [i for i, r in enumerate(records) if r["country"] is None]
    assert unknown and null
    assert (vectorised[unknown, country] == 0).all() and np.isnan(vectorised[null, country]).all()


def test_categories_keep_the_most_frequent_values_then_sort_them() -> None:
    schema = parse_schema(schema_document("binary_classification"))
    table = pa.table({"country": ["b", "a", "c", "c", "b", "c", None]})
    assert learn_categories(table, schema, max_categories=2) == {"country": ["b", "c"]}


def test_stratified_split_holds_out_both_classes_and_is_seeded() -> None:
    labels = np.array([0] * 95 + [1] * 5, dtype=np.float64)
    train, val = split_rows(100, labels=labels, fraction=0.2, seed=4)
    assert len(val) == 20 and labels[val].sum() == 1 and len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again_train, again_val = split_rows(100, labels=labels, fraction=0.2, seed=4)
    assert (val == again_val).all() and (train == again_train).all()
    with pytest.raises(ValueError, match="from 1 row"):
        split_rows(3, labels=np.array([0.0, 0.0, 1.0]), fraction=0.2, seed=0)


def test_fingerprint_frames_each_file_so_contents_cannot_shift_between_files() -> None:
    assert fingerprint([("a", b"xy"), ("b", b"z")]) != fingerprint([("a", b"x"), ("b", b"yz")])
    assert fingerprint([("a", b"x")]) != fingerprint([("b", b"x")])


def test_reading_a_directory_orders_files_by_relative_path(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    (tmp_path / "day=2").mkdir()
    (tmp_path / "day=1").mkdir()
    pq.write_table(pa.table({"v": [2]}), tmp_path / "day=2" / "a.parquet")
    pq.write_table(pa.table({"v": [1]}), tmp_path / "day=1" / "z.parquet")
    (tmp_path / "_SUCCESS").write_text("")
    raw = read_parquet_source(str(tmp_path))
    assert [p.name for p in raw.parts] == ["day=1/z.parquet", "day=2/a.parquet"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \.parquet files under .*empty; expected the feature store export"):
        read_parquet_source(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"training data directory .*nothing does not exist"):
        read_parquet_source(str(tmp_path / "nothing"))
