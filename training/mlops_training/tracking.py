"""Experiment tracking in the training container: an MLflow run per training run, when a tracking
server is configured (`MLFLOW_TRACKING_URI`: the SageMaker managed server's ARN in the cloud, signed by
the `sagemaker-mlflow` plugin; an http:// URL locally). Without it nothing is logged and mlflow is not
imported.

What a run holds: every hyperparameter as a parameter; per-epoch `train:loss` (step = epoch) and the
final validation metrics, read from the trainer's own log lines with the contract's metric definitions
(`mlops_contracts.tuning.METRIC_DEFINITIONS`, the same regexes SageMaker tuning applies); the dataset
manifest; metrics.json and validation_report.json; the model directory as the `model` artifact.
The run id goes into the model's metadata.json and the output's `mlflow_run.json` (RUN_FILE), so the
registered version carries it.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container).
"""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from mlops_contracts.tracking import RUN_ID_METADATA_KEY
from mlops_contracts.tuning import METRIC_DEFINITIONS

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
RUN_FILE = "mlflow_run.json"
"""Written to the output data directory: {"run_id", "experiment_id", "tracking_uri"}."""
RUN_ID_KEY = RUN_ID_METADATA_KEY
"""The key of the run id in metadata.json and in the model package's properties."""


class _MetricLines(logging.Handler):
    """Logs to MLflow every metric a log record's message carries (epoch lines: step = the epoch)."""

    def __init__(self, mlflow: Any) -> None:
        super().__init__(level=logging.INFO)
        self._mlflow = mlflow
        self._patterns = [(d["Name"], re.compile(d["Regex"])) for d in METRIC_DEFINITIONS]

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        epoch = re.match(r"epoch=(\d+) ", message)
        for name, pattern in self._patterns:
            found = pattern.search(message)
            if found:
                self._mlflow.log_metric(name.replace(":", "_"), float(found[1]), step=int(epoch[1]) if epoch else 0)


class Tracking:
    """One MLflow run, or nothing when no tracking URI is set (`enabled` False)."""

    def __init__(self) -> None:
        self.run_id: str | None = None
        self._mlflow: Any = None
        self._handler: _MetricLines | None = None

    @property
    def enabled(self) -> bool:
        return self.run_id is not None

    def start(self, *, hyperparameters: dict[str, Any], model_name: str, is_main: bool) -> None:
        """Start the run (main process only) and log the hyperparameters."""
        uri = os.environ.get(TRACKING_URI_ENV, "")
        if not uri or not is_main:
            return
        import mlflow

        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get(EXPERIMENT_ENV) or model_name)
        run = mlflow.start_run(run_name=os.environ.get("TRAINING_JOB_NAME") or None)
        self.run_id, self._mlflow = run.info.run_id, mlflow
        mlflow.log_params({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in hyperparameters.items()})
        self._handler = _MetricLines(mlflow)
        logging.getLogger("mlops_training").addHandler(self._handler)

    def finish(self, *, out_dir: Path, model_dir: Path, dataset: dict[str, Any] | None, files: list[str]) -> None:
        """Log the dataset manifest, the output files and the model, write RUN_FILE, end the run."""
        if not self.enabled:
            return
        mlflow = self._mlflow
        logging.getLogger("mlops_training").removeHandler(self._handler)
        if dataset is not None:
            mlflow.log_dict(dataset, "dataset/manifest.json")
        for name in files:
            if (out_dir / name).exists():
                mlflow.log_artifact(str(out_dir / name), artifact_path="evaluation")
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        run = mlflow.active_run()
        (out_dir / RUN_FILE).write_text(json.dumps({
            "run_id": self.run_id, "experiment_id": run.info.experiment_id, "tracking_uri": mlflow.get_tracking_uri(),
        }, sort_keys=True))
        mlflow.end_run()
