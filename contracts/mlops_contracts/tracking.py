"""Experiment-tracking contract (issue #20): where the MLflow run id of a trained model is recorded.

- the trainer (`mlops_training.tracking`) writes it into the model's metadata.json under
  `RUN_ID_METADATA_KEY` (and the model package properties it registers itself);
- the evaluation (`mlops-train evaluate`) copies the candidate's run id into evaluation.json's lineage
  under `LINEAGE_KEY`, which `mlops lineage` shows (specs.lineage.MLFLOW_RUN is this key).

Must not import: anything outside the standard library (both container images install this package on
its own).
"""
from __future__ import annotations

RUN_ID_METADATA_KEY = "mlflow_run_id"
"""Key of the MLflow run id in metadata.json and in a model package's CustomerMetadataProperties."""
LINEAGE_KEY = "mlops:mlflow_run"
"""Key of the MLflow run id in evaluation.json's lineage and among the specs.lineage keys."""
