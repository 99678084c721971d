"""Baseline statistics for drift monitoring (docs/contracts.md section 4). Pure numpy/pyarrow.

Per numeric feature: null rate, mean, std, decile bin edges (first = min, last = max) with the
share of rows in each bin, quantiles and a seeded uniform sample (what a reservoir yields) for KS
tests. Per String feature: null rate and category frequencies. The same numeric statistics are
computed for the model's predictions.

Binning rule, which the contract leaves open for values equal to an interior edge: the bin of `v`
is the number of interior edges `<= v` (numpy `searchsorted(edges[1:-1], v, side="right")`),
i.e. bins are `[e_i, e_{i+1})` and the last one is closed; values below the first edge fall into
the first bin, above the last edge into the last, as the contract says.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlops_contracts.artifact import BASELINE_FORMAT_VERSION
from mlops_contracts.feature_schema import FRACTIONAL, STRING

from mlops_training.schema import FeatureSchema

N_BINS = 10
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
SAMPLE_SIZE = 10_000


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bin of each value under this module's rule (see the module docstring)."""
    return np.searchsorted(np.asarray(edges)[1:-1], values, side="right")


def numeric_stats(values: np.ndarray, *, type_name: str, seed: int) -> dict[str, Any]:
    """Statistics of one numeric column; NaN marks a null."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {"type": type_name, "null_rate": float(1 - len(present) / n) if n else 0.0}
    if len(present) == 0:
        # Nothing to describe; monitoring sees empty edges rather than made-up numbers.
        return stats | {"mean": None, "std": None, "bin_edges": [], "bin_frequencies": [],
                        "quantiles": {}, "sample": []}
    edges = np.quantile(present, np.linspace(0.0, 1.0, N_BINS + 1))
    counts = np.bincount(bin_index(edges, present), minlength=N_BINS)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(present), size=min(SAMPLE_SIZE, len(present)), replace=False))
    return stats | {
        "mean": float(present.mean()),
        "std": float(present.std()),
        "bin_edges": [float(e) for e in edges],
        "bin_frequencies": [float(c) / len(present) for c in counts],
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.quantile(present, QUANTILES))},
        "sample": [float(v) for v in present[take]],
    }


def string_stats(column: pa.ChunkedArray) -> dict[str, Any]:
    """Statistics of one String column: null rate and the frequency of every value seen."""
    n = len(column)
    nulls = column.null_count
    counts = pc.value_counts(column.drop_null()).to_pylist()
    present = n - nulls
    return {
        "type": STRING,
        "null_rate": float(nulls / n) if n else 0.0,
        "category_frequencies": {
            item["values"]: item["counts"] / present for item in sorted(counts, key=lambda i: i["values"])
        },
    }


def compute_baseline(
    table: pa.Table, schema: FeatureSchema, *, predictions: np.ndarray, seed: int
) -> dict[str, Any]:
    """baseline.json for `table` (the training split) and the model's predictions on it."""
    features: dict[str, Any] = {}
    for j, feature in enumerate(schema.features):
        column = table.column(feature.name)
        if feature.is_numeric:
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            # Each column gets its own sample stream so adding a feature does not change the others'.
            features[feature.name] = numeric_stats(values, type_name=feature.type, seed=seed + j)
        else:
            features[feature.name] = string_stats(column)
    return {
        "format_version": BASELINE_FORMAT_VERSION,
        "n_rows": table.num_rows,
        "features": features,
        "prediction": numeric_stats(predictions, type_name=FRACTIONAL, seed=seed + len(schema.features)),
    }
