"""The model input encoding of docs/contracts.md section 2, shared by training and tests.

Column `j` of the float32 `[N, F]` input is `schema.features[j]`:
`Integral`/`Fractional` -> the value as float, null -> NaN; `String` -> `1 + categories.index(value)`,
unknown -> 0, null -> NaN. Everything else happens inside the model.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlops_training.schema import FeatureSchema

UNKNOWN_CODE = 0


def learn_categories(table: pa.Table, schema: FeatureSchema, *, max_categories: int) -> dict[str, list[str]]:
    """The vocabulary of every `String` feature: its `max_categories` most frequent values.

    Ties are broken by value so the result does not depend on row order; the kept values are then
    sorted, which makes `categories` in schema.json easy to read. Values left out encode as unknown.
    """
    vocab: dict[str, list[str]] = {}
    for feature in schema.string_features:
        counts = pc.value_counts(table.column(feature.name).drop_null()).to_pylist()
        ranked = sorted(counts, key=lambda item: (-item["counts"], item["values"]))
        vocab[feature.name] = sorted(item["values"] for item in ranked[:max_categories])
    return vocab


def encode_table(table: pa.Table, schema: FeatureSchema, *, categories: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Encode the schema's feature columns of `table` into the float32 `[N, F]` model input."""
    out = np.empty((table.num_rows, len(schema.features)), dtype=np.float32)
    for j, feature in enumerate(schema.features):
        column = table.column(feature.name)
        if feature.is_numeric:
            out[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            continue
        column = column.cast(pa.string())
        index = pc.index_in(column, value_set=pa.array(list(categories[feature.name]), type=pa.string()))
        # float64 with NaN where the value was not found or null (int64 when every value was found).
        codes = index.to_numpy(zero_copy_only=False).astype(np.float64)
        codes = np.where(np.isnan(codes), UNKNOWN_CODE, codes + 1)
        codes[column.is_null().to_numpy(zero_copy_only=False)] = np.nan
        out[:, j] = codes
    return out


def encode_records(
    records: Sequence[Mapping[str, Any]], schema: FeatureSchema, *, categories: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Encode JSON-like records (`{"amount": 12.5, "country": "de", ...}`) row by row.

    The straightforward reading of the contract, as a server would write it; tests use it to check
    `encode_table` and the exported model against each other.
    """
    out = np.empty((len(records), len(schema.features)), dtype=np.float32)
    for i, record in enumerate(records):
        for j, feature in enumerate(schema.features):
            value = record.get(feature.name)
            if value is None:
                out[i, j] = np.nan
            elif feature.is_numeric:
                out[i, j] = float(value)
            else:
                vocab = list(categories[feature.name])
                out[i, j] = 1 + vocab.index(value) if value in vocab else UNKNOWN_CODE
    return out
