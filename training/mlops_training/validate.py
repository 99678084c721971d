"""Data validation before training: schema, types, nulls, ranges and label balance.

Every problem is collected (not only the first) into a `ValidationReport`: the column, the kind of
problem, how many rows it affects, and a few examples pointing at file and row. Bad data raises
`DataValidationError` carrying the report, and nothing is trained on it.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mlops_training.data import RawData
from mlops_training.schema import Feature, FeatureSchema

REPORT_FORMAT_VERSION = 1
MAX_EXAMPLES = 3
ALL_COLUMNS = "*"

ProblemKind = Literal[
    "no_rows",
    "missing_column",
    "wrong_type",
    "null_values",
    "non_finite_values",
    "out_of_range",
    "invalid_label",
    "single_class_label",
    "label_imbalance",
    "constant_label",
]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One reason to refuse the data."""

    column: str
    """The column concerned (`*` for the whole dataset)."""
    kind: ProblemKind
    """What is wrong (see `ProblemKind`)."""
    rows: int
    """How many rows are affected."""
    detail: str
    """What was expected and what was found."""
    examples: tuple[str, ...] = ()
    """Up to three places, `file row N: value` or a file name."""


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    """The outcome of validating one export."""

    source: str
    n_rows: int
    n_files: int
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to `validation_report.json`."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "ok": self.ok,
            "source": self.source,
            "n_rows": self.n_rows,
            "n_files": self.n_files,
            "problems": [asdict(p) | {"examples": list(p.examples)} for p in self.problems],
        }

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def format(self) -> str:
        """A human-readable report, one line per problem."""
        if self.ok:
            return f"data validation passed: {self.n_rows} rows in {self.n_files} files from {self.source}"
        lines = [
            f"data validation failed: {len(self.problems)} problem(s) in {self.n_rows} rows "
            f"from {self.n_files} file(s) under {self.source}"
        ]
        for p in self.problems:
            lines.append(f"  {p.column}: {p.kind}, {p.rows} row(s): {p.detail}")
            lines.extend(f"      e.g. {e}" for e in p.examples)
        return "\n".join(lines)

    def summary(self, *, limit: int = 1024) -> str:
        """A one-line reason, at most `limit` characters (SageMaker's failure reason is 1024)."""
        items = "; ".join(f"{p.column}: {p.kind} ({p.rows} rows)" for p in self.problems)
        text = f"Data validation failed, nothing was trained: {items}"
        return text if len(text) <= limit else text[: limit - 3] + "..."


class DataValidationError(ValueError):
    """The training data was refused; `report` says why."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.format())
        self.report = report


@dataclass(frozen=True, kw_only=True)
class ValidatedData:
    """Data that passed validation, with canonical column types.

    Integral -> int64, Fractional -> float64, String -> string, label -> float64; only the model
    inputs and the label are kept.
    """

    table: pa.Table
    fingerprint: str
    source: str
    report: ValidationReport


def _describe_expected(kind: str) -> str:
    return {
        "Integral": "Integral (an integer type)",
        "Fractional": "Fractional (a floating-point or integer type)",
        "String": "String (a string type)",
        "binary_label": "a 0/1 label (integer, boolean or floating-point type)",
        "regression_label": "a numeric label (integer or floating-point type)",
    }[kind]


def _type_ok(arrow_type: pa.DataType, kind: str) -> bool:
    if pa.types.is_null(arrow_type):
        return True  # an all-null file column: the null checks below decide
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if kind == "Integral":
        return pa.types.is_integer(arrow_type)
    if kind in ("Fractional", "regression_label"):
        return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    if kind == "String":
        return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
    if kind == "binary_label":
        return (
            pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)
        )
    raise AssertionError(kind)


_CANONICAL = {
    "Integral": pa.int64(),
    "Fractional": pa.float64(),
    "String": pa.string(),
    "binary_label": pa.float64(),
    "regression_label": pa.float64(),
}


class _Locator:
    """Maps a global row index to (file, row in file) for examples."""

    def __init__(self, raw: RawData) -> None:
        self.names = [p.name for p in raw.parts]
        self.starts = np.cumsum([0] + [p.table.num_rows for p in raw.parts])

    def where(self, index: int) -> str:
        """`file row N` for a global row index."""
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        return f"{self.names[part]} row {index - int(self.starts[part])}"


def validate(raw: RawData, schema: FeatureSchema, *, min_label_fraction: float) -> ValidatedData:
    """Check `raw` against `schema`; return the data with canonical types or raise `DataValidationError`."""
    problems: list[Problem] = []
    n_rows = raw.n_rows
    if n_rows == 0:
        problems.append(Problem(
            column=ALL_COLUMNS, kind="no_rows", rows=0, detail=f"the {len(raw.parts)} file(s) hold no rows"
        ))
        raise DataValidationError(
            ValidationReport(source=raw.source, n_rows=0, n_files=len(raw.parts), problems=tuple(problems))
        )

    label_kind = "binary_label" if schema.task == "binary_classification" else "regression_label"
    typed: dict[str, str] = {f.name: f.type for f in schema.features}
    typed[schema.label] = label_kind
    # The identifier and event time are never model inputs; they only have to be there.
    present_only = [schema.record_identifier, schema.event_time]

    columns: dict[str, pa.ChunkedArray] = {}
    for name in present_only + list(typed):
        missing = [p for p in raw.parts if name not in p.table.column_names]
        if missing:
            problems.append(Problem(
                column=name, kind="missing_column", rows=sum(p.table.num_rows for p in missing),
                detail=f"column is absent from {len(missing)} of {len(raw.parts)} file(s)",
                examples=tuple(p.name for p in missing[:MAX_EXAMPLES]),
            ))
            continue
        if name in present_only:
            continue
        kind = typed[name]
        wrong: dict[str, list[str]] = {}
        wrong_rows: dict[str, int] = {}
        for part in raw.parts:
            arrow_type = part.table.schema.field(name).type
            if not _type_ok(arrow_type, kind):
                wrong.setdefault(str(arrow_type), []).append(part.name)
                wrong_rows[str(arrow_type)] = wrong_rows.get(str(arrow_type), 0) + part.table.num_rows
        for found, files in wrong.items():
            problems.append(Problem(
                column=name, kind="wrong_type", rows=wrong_rows[found],
                detail=f"expected {_describe_expected(kind)}, found {found}",
                examples=tuple(files[:MAX_EXAMPLES]),
            ))
        if not wrong:
            target = _CANONICAL[kind]
            chunks = []
            for part in raw.parts:
                column = part.table.column(name)
                # int -> float may round above 2**53; that is what a float32 model input does anyway.
                safe = not (pa.types.is_integer(column.type) and pa.types.is_floating(target))
                try:
                    chunks.extend(column.cast(target, safe=safe).chunks)
                except pa.ArrowInvalid as exc:  # e.g. uint64 values beyond int64
                    problems.append(Problem(
                        column=name, kind="wrong_type", rows=part.table.num_rows,
                        detail=f"values of type {column.type} do not convert to {target}: {exc}",
                        examples=(part.name,),
                    ))
                    break
            else:
                columns[name] = pa.chunked_array(chunks, type=target)

    locate = _Locator(raw)
    for feature in schema.features:
        if feature.name in columns:
            problems.extend(_check_feature(feature, columns[feature.name], locate=locate))
    if schema.label in columns:
        problems.extend(_check_label(
            schema, columns[schema.label], locate=locate, min_label_fraction=min_label_fraction
        ))

    report = ValidationReport(source=raw.source, n_rows=n_rows, n_files=len(raw.parts), problems=tuple(problems))
    if problems:
        raise DataValidationError(report)
    keep = [*schema.feature_names, schema.label]
    return ValidatedData(
        table=pa.table({name: columns[name] for name in keep}),
        fingerprint=raw.fingerprint, source=raw.source, report=report,
    )


def _examples(mask: np.ndarray, *, values: np.ndarray | None, locate: _Locator) -> tuple[str, ...]:
    out = []
    for index in np.flatnonzero(mask)[:MAX_EXAMPLES]:
        where = locate.where(int(index))
        out.append(where if values is None else f"{where}: {float(values[index])!r}")
    return tuple(out)


def _numeric(column: pa.ChunkedArray) -> np.ndarray:
    # Nulls become NaN; the contract encodes a null as NaN, so the two are one and the same here.
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def _check_feature(feature: Feature, column: pa.ChunkedArray, *, locate: _Locator) -> list[Problem]:
    problems = []
    if not feature.is_numeric:
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        if not feature.nullable and nulls.any():
            problems.append(Problem(
                column=feature.name, kind="null_values", rows=int(nulls.sum()),
                detail="feature is not nullable but has nulls",
                examples=_examples(nulls, values=None, locate=locate),
            ))
        return problems
    values = _numeric(column)
    nulls = np.isnan(values)
    if not feature.nullable and nulls.any():
        problems.append(Problem(
            column=feature.name, kind="null_values", rows=int(nulls.sum()),
            detail="feature is not nullable but has nulls or NaN",
            examples=_examples(nulls, values=None, locate=locate),
        ))
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(Problem(
            column=feature.name, kind="non_finite_values", rows=int(infinite.sum()),
            detail="values must be finite; found infinity",
            examples=_examples(infinite, values=values, locate=locate),
        ))
    finite = np.isfinite(values)
    outside = np.zeros_like(finite)
    if feature.min is not None:
        outside |= finite & (values < feature.min)
    if feature.max is not None:
        outside |= finite & (values > feature.max)
    if outside.any():
        lo = "-inf" if feature.min is None else repr(feature.min)
        hi = "inf" if feature.max is None else repr(feature.max)
        found_lo, found_hi = float(values[outside].min()), float(values[outside].max())
        problems.append(Problem(
            column=feature.name, kind="out_of_range", rows=int(outside.sum()),
            detail=f"allowed [{lo}, {hi}]; found values from {found_lo!r} to {found_hi!r}",
            examples=_examples(outside, values=values, locate=locate),
        ))
    return problems


def _check_label(
    schema: FeatureSchema, column: pa.ChunkedArray, *, locate: _Locator, min_label_fraction: float
) -> list[Problem]:
    problems = []
    name = schema.label
    values = _numeric(column)
    nulls = np.isnan(values)
    if nulls.any():
        problems.append(Problem(
            column=name, kind="null_values", rows=int(nulls.sum()), detail="the label must never be null",
            examples=_examples(nulls, values=None, locate=locate),
        ))
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(Problem(
            column=name, kind="non_finite_values", rows=int(infinite.sum()), detail="the label must be finite",
            examples=_examples(infinite, values=values, locate=locate),
        ))
    finite = values[np.isfinite(values)]
    if schema.task == "binary_classification":
        invalid = np.isfinite(values) & (values != 0) & (values != 1)
        if invalid.any():
            problems.append(Problem(
                column=name, kind="invalid_label", rows=int(invalid.sum()),
                detail="binary classification labels must be 0 or 1",
                examples=_examples(invalid, values=values, locate=locate),
            ))
        positives = int((finite == 1).sum())
        negatives = int((finite == 0).sum())
        valid = positives + negatives
        if valid and (positives == 0 or negatives == 0):
            only = 1 if positives else 0
            problems.append(Problem(
                column=name, kind="single_class_label", rows=valid,
                detail=f"every labelled row is class {only}; both classes 0 and 1 are needed",
            ))
        elif valid and min(positives, negatives) / valid < min_label_fraction:
            minority = min(positives, negatives)
            problems.append(Problem(
                column=name, kind="label_imbalance", rows=minority,
                detail=f"the rarer class has {minority} of {valid} rows ({minority / valid:.4%}); "
                f"min_label_fraction is {min_label_fraction}",
            ))
    elif finite.size and np.all(finite == finite[0]):
        problems.append(Problem(
            column=name, kind="constant_label", rows=int(finite.size),
            detail=f"every row has label {float(finite[0])!r}; nothing can be learned",
        ))
    return problems
