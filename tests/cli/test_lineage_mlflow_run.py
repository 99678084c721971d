"""`mlops lineage` shows the MLflow run of a version (issue #20): from the evaluation's lineage (the
pipeline), or from the package's own properties (a version the training container registered)."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_lineage import (  # noqa: E402,F401  (fixtures and documents of the lineage tests)
    BUCKET, EVALUATION, EVALUATION_URI, MANIFEST, MANIFEST_URI, PINNED, STACK, _pipeline_metadata, _register, keys, registry, run,
    stack_files,
)

RUN_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_the_run_id_the_evaluation_recorded_is_shown(registry):
    s3, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata=_pipeline_metadata(keys.config_hash(stack_files.load(STACK), "fraud-detector")))
    evaluation = copy.deepcopy(EVALUATION)
    evaluation["lineage"][keys.MLFLOW_RUN] = RUN_ID
    s3.put_object(Bucket=BUCKET, Key=EVALUATION_URI.split("/", 3)[3], Body=json.dumps(evaluation).encode())
    s3.put_object(Bucket=BUCKET, Key=MANIFEST_URI.split("/", 3)[3], Body=json.dumps(MANIFEST).encode())
    result = run("lineage", "-s", STACK, "--endpoint", "scoring", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mlflow_run"] == RUN_ID
    table = run("lineage", "-s", STACK, "--endpoint", "scoring")
    assert "mlflow run" in table.stdout and RUN_ID in table.stdout


def test_a_container_registered_version_shows_its_own_run_id_property(registry):
    _, sagemaker = registry
    _register(sagemaker, url=PINNED, metadata={"model_name": "fraud-detector", "mlflow_run_id": RUN_ID})
    assert json.loads(run("lineage", "-s", STACK, "--endpoint", "scoring", "--json").stdout)["mlflow_run"] == RUN_ID
