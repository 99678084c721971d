"""Feature schema contract, stack config -> training -> serving (docs/contracts.md section 1).

The layout of `feature_schema.json` and of the `schema.json` member of the model artifact: the
format version every reader checks, SageMaker Feature Store's type names, and the model tasks.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (both container images install this package on its
own).
"""
from __future__ import annotations

FORMAT_VERSION = 1
"""`format_version` of the schema documents written today."""
SUPPORTED_FORMAT_VERSIONS: frozenset[int] = frozenset({FORMAT_VERSION})
"""The versions a reader accepts; it refuses any other."""

INTEGRAL = "Integral"
FRACTIONAL = "Fractional"
STRING = "String"
FEATURE_TYPES: tuple[str, ...] = (INTEGRAL, FRACTIONAL, STRING)
"""SageMaker Feature Store's `FeatureType` names, the values of a feature's `type`."""
NUMERIC_TYPES: tuple[str, ...] = (INTEGRAL, FRACTIONAL)
"""Types encoded as their value; a `String` feature is encoded as `1 + categories.index(value)`."""

BINARY_CLASSIFICATION = "binary_classification"
REGRESSION = "regression"
TASKS: tuple[str, ...] = (BINARY_CLASSIFICATION, REGRESSION)
"""The schema's `task`: label 0/1 and output a probability, or label and output a float."""
