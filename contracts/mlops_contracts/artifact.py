"""Model artifact contract, training -> serving and monitoring (docs/contracts.md sections 2, 4, 5).

`model.tar.gz` holds its members at the archive root; SageMaker extracts it into `/opt/ml/model`.
When the training job uploads the artifact it puts `metrics.json` and `baseline.json` beside it,
`{prefix}/{model_name}/{model_version}/`, where the promotion and the drift monitor find them.

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (both container images install this package on its
own).
"""
from __future__ import annotations

ARCHIVE = "model.tar.gz"
"""The artifact: a gzip'd tar of MEMBERS."""

MODEL_FILE = "model.pt"
"""TorchScript module, float32 `[N, F]` in, float32 `[N]` out."""
SCHEMA_FILE = "schema.json"
"""The feature schema plus `categories` for every String feature (mlops_contracts.feature_schema)."""
METADATA_FILE = "metadata.json"
"""Model name and version, task, data fingerprint, code version, hyperparameters, metrics."""
BASELINE_FILE = "baseline.json"
"""Baseline statistics of the training data and predictions (section 4)."""
STATE_DICT_FILE = "state_dict.pt"
"""The raw weights, for fine-tuning."""
MEMBERS: tuple[str, ...] = (MODEL_FILE, SCHEMA_FILE, METADATA_FILE, BASELINE_FILE, STATE_DICT_FILE)
"""Every member the training container writes."""
SERVING_MEMBERS: tuple[str, ...] = (MODEL_FILE, SCHEMA_FILE, METADATA_FILE)
"""The members a server needs; it refuses an artifact without them."""

METRICS_FILE = "metrics.json"
"""Validation metrics (section 5), uploaded beside the archive (not a member)."""

METADATA_FORMAT_VERSION = 1
"""`format_version` of metadata.json."""
BASELINE_FORMAT_VERSION = 1
"""`format_version` of baseline.json written today."""
SUPPORTED_BASELINE_VERSIONS: frozenset[int] = frozenset({BASELINE_FORMAT_VERSION})
"""The baseline versions a reader accepts; it refuses any other."""
METRICS_FORMAT_VERSION = 1
"""`format_version` of metrics.json."""


def beside_archive(model_data_url: str, name: str) -> str:
    """The URL of file `name` uploaded beside the archive at `model_data_url` (its ModelDataUrl)."""
    return model_data_url.rsplit("/", 1)[0] + "/" + name
