"""Bad data is refused before training, with a report naming column, problem and row count."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlops_training.data import read_parquet_source
from mlops_training.schema import parse_schema
from mlops_training.synthetic import generate, schema_document
from mlops_training.validate import DataValidationError, Problem, validate

from .helpers import FAST, Export, new_run, run_in_process

SCHEMA = parse_schema(schema_document("binary_classification"))


def _set(table: pa.Table, column: str, *, values: dict[int, object]) -> pa.Table:
    data = table.column(column).to_pylist()
    for row, value in values.items():
        data[row] = value
    index = table.column_names.index(column)
    return table.set_column(index, column, pa.array(data, type=table.schema.field(column).type))


def _write_corrupt_export(root: Path) -> Export:
    """Three files, each broken in its own way, and a label with one class only."""
    table = generate(300, task="binary_classification", seed=1)
    table = table.set_column(
        table.column_names.index("is_fraud"), "is_fraud", pa.array(np.zeros(300, dtype=np.int64))
    )
    part0 = _set(table.slice(0, 100), "amount", values={5: None, 7: None, 9: -1.0, 11: 200000.0, 13: float("inf")})
    part1 = table.slice(100, 100)
    part1 = part1.set_column(part1.column_names.index("hour"), "hour", pc.cast(part1.column("hour"), pa.string()))
    part2 = table.slice(200, 100).drop_columns(["account_age_days"])
    data = root / "data"
    data.mkdir(parents=True)
    for i, part in enumerate((part0, part1, part2)):
        pq.write_table(part, data / f"part-{i}.parquet")
    schema = root / "feature_schema.json"
    schema.write_text(json.dumps(schema_document("binary_classification")))
    return Export(data=data, schema=schema)


EXPECTED = [
    Problem(column="hour", kind="wrong_type", rows=100,
            detail="expected Integral (an integer type), found string", examples=("part-1.parquet",)),
    Problem(column="account_age_days", kind="missing_column", rows=100,
            detail="column is absent from 1 of 3 file(s)", examples=("part-2.parquet",)),
    Problem(column="amount", kind="null_values", rows=2, detail="feature is not nullable but has nulls or NaN",
            examples=("part-0.parquet row 5", "part-0.parquet row 7")),
    Problem(column="amount", kind="non_finite_values", rows=1, detail="values must be finite; found infinity",
            examples=("part-0.parquet row 13: inf",)),
    Problem(column="amount", kind="out_of_range", rows=2,
            detail="allowed [0.0, 100000.0]; found values from -1.0 to 200000.0",
            examples=("part-0.parquet row 9: -1.0", "part-0.parquet row 11: 200000.0")),
    Problem(column="is_fraud", kind="single_class_label", rows=300,
            detail="every labelled row is class 0; both classes 0 and 1 are needed"),
]


def test_every_problem_is_reported_with_column_kind_rows_and_examples(tmp_path: Path) -> None:
    export = _write_corrupt_export(tmp_path)
    with pytest.raises(DataValidationError) as info:
        validate(read_parquet_source(str(export.data)), SCHEMA, min_label_fraction=0.001)
    report = info.value.report
    assert list(report.problems) == EXPECTED
    assert (report.n_rows, report.n_files, report.ok) == (300, 3, False)
    assert "  amount: out_of_range, 2 row(s): allowed [0.0, 100000.0]" in report.format()


def test_the_cli_refuses_bad_data_writes_the_report_and_trains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    export = _write_corrupt_export(tmp_path / "export")
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "run" / "output"))
    run = new_run(tmp_path / "run")
    assert run_in_process(run, export=export, hp=FAST | {"checkpoint_every_steps": "1"}) == 3
    assert not run.model_dir.exists() and not run.checkpoint_dir.exists() and not run.archive.exists()
    written = json.loads((run.output_dir / "validation_report.json").read_text())
    assert written["ok"] is False
    assert [(p["column"], p["kind"], p["rows"]) for p in written["problems"]] == [
        (p.column, p.kind, p.rows) for p in EXPECTED
    ]
    assert written["problems"][0]["examples"] == ["part-1.parquet"]
    failure = (tmp_path / "run" / "output" / "failure").read_text()
    assert failure.startswith("Data validation failed, nothing was trained: hour: wrong_type (100 rows);")
    assert "is_fraud: single_class_label (300 rows)" in failure
    assert "amount: out_of_range, 2 row(s)" in capsys.readouterr().err


def _raw(tmp_path: Path, table: pa.Table):  # noqa: ANN202 - RawData
    pq.write_table(table, tmp_path / "part.parquet")
    return read_parquet_source(str(tmp_path))


@pytest.mark.parametrize(
    ("labels", "kind", "rows"),
    [
        ([0, 1, 2, 1] * 50, "invalid_label", 50),
        ([0] * 199 + [1], "label_imbalance", 1),
        ([0.0, 1.0, None, 1.0] * 50, "null_values", 50),
    ],
)
def test_bad_binary_labels_are_refused(tmp_path: Path, labels: list, kind: str, rows: int) -> None:
    table = generate(200, task="binary_classification", seed=2)
    table = table.set_column(table.column_names.index("is_fraud"), "is_fraud", pa.array(labels))
    with pytest.raises(DataValidationError) as info:
        validate(_raw(tmp_path, table), SCHEMA, min_label_fraction=0.01)
    assert [(p.column, p.kind, p.rows) for p in info.value.report.problems] == [("is_fraud", kind, rows)]


def test_a_constant_regression_label_is_refused(tmp_path: Path) -> None:
    schema = parse_schema(schema_document("regression"))
    table = generate(50, task="regression", seed=2)
    table = table.set_column(table.column_names.index("loss_amount"), "loss_amount", pa.array([3.5] * 50))
    with pytest.raises(DataValidationError) as info:
        validate(_raw(tmp_path, table), schema, min_label_fraction=0.0)
    assert [(p.column, p.kind, p.rows) for p in info.value.report.problems] == [("loss_amount", "constant_label", 50)]


def test_nan_counts_as_null_and_nullable_features_accept_it(tmp_path: Path) -> None:
    table = generate(100, task="binary_classification", seed=3)
    table = _set(table, "account_age_days", values={0: float("nan")})  # nullable: fine
    table = _set(table, "amount", values={1: float("nan")})  # not nullable: refused
    with pytest.raises(DataValidationError) as info:
        validate(_raw(tmp_path, table), SCHEMA, min_label_fraction=0.0)
    assert [(p.column, p.kind, p.rows) for p in info.value.report.problems] == [("amount", "null_values", 1)]


def test_clean_data_passes_with_canonical_types(tmp_path: Path) -> None:
    table = generate(100, task="binary_classification", seed=4)
    table = table.set_column(table.column_names.index("hour"), "hour", pc.cast(table.column("hour"), pa.int8()))
    data = validate(_raw(tmp_path, table), SCHEMA, min_label_fraction=0.0)
    assert data.report.ok and data.table.num_rows == 100
    assert data.table.schema.field("hour").type == pa.int64()
    assert data.table.schema.field("is_fraud").type == pa.float64()
    assert data.table.column_names == [*SCHEMA.feature_names, "is_fraud"]


def test_an_export_without_rows_is_refused(tmp_path: Path) -> None:
    table = generate(10, task="binary_classification", seed=4).slice(0, 0)
    with pytest.raises(DataValidationError) as info:
        validate(_raw(tmp_path, table), SCHEMA, min_label_fraction=0.0)
    assert [(p.column, p.kind, p.rows) for p in info.value.report.problems] == [("*", "no_rows", 0)]
