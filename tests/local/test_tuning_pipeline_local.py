"""The generated retraining pipeline with `tuning` runs locally (issue #20): the Tune step runs Optuna
over the model's search space with real `mlops-train` trials, the best trial's model goes through the
normal Evaluate gate and is registered, carrying the best trial's job. (Here for the `endpoint` fixture.)"""
from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from specs.config.schema import ModelConfig, TrainingConfig
from specs.pipelines import retraining as pd
from specs.pipelines.sources import RetrainingSources

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_retraining_pipeline_local import ARTIFACTS, FEATURES, GROUP, REGION, ROLE, _run, pipeline  # noqa: E402,F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TUNING = {"objective": "validation:auc", "max_jobs": 3, "max_parallel_jobs": 1,
          "search_space": {"epochs": {"min": 1, "max": 4}, "learning_rate": {"min": 0.0005, "max": 0.02, "scaling": "Logarithmic"}}}


def _create_tuned(aws: dict[str, Any]) -> str:
    name = f"t-dev-fraud-tune-{uuid.uuid4().hex[:6]}"
    definition = pd.pipeline_definition(
        pipeline_name=name, region=REGION, model="fraud",
        spec=ModelConfig(feature_group="transactions", label="is_fraud", task="binary_classification", approval="auto",
                         gates={"auc": 0.6}, tuning=TUNING),
        training=TrainingConfig(hyperparameters={"batch_size": 64, "num_threads": 1}), image="img:train", role_arn=ROLE, training_role_arn=ROLE,
        features_uri=f"s3://{FEATURES}/offline-store/transactions", artifacts_bucket=ARTIFACTS, kms_key="alias/local",
        model_package_group=GROUP, serving_image="img:serve", network=None,
        sources=RetrainingSources(feature_group="transactions", label_events_uri=f"s3://{FEATURES}/labels/fraud/label_events.parquet",
                                  champions=(), config_hash="sha256:" + "0" * 64),
    )
    aws["sagemaker"].create_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex)
    return name


def test_the_tuned_pipeline_registers_the_best_trial_through_the_evaluation_gate(pipeline):
    described, steps = _run(pipeline, _create_tuned(pipeline))
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    assert list(steps) == ["Dataset", "Tune", "Evaluate", "Condition", "Register"]
    execution_id = described["PipelineExecutionArn"].rsplit("/", 1)[1]
    run_dir = next(pipeline["state"].rglob(f"{execution_id}/Tune/tuning.json"))
    summary = json.loads(run_dir.read_text())
    trials = [t for t in summary["trials"] if t["objective"] is not None]
    assert len(summary["trials"]) == 3 and trials
    best = max(trials, key=lambda t: t["objective"])
    assert summary["best"] == best["name"]

    package = pipeline["sagemaker"].describe_model_package(ModelPackageName=steps["Register"]["Metadata"]["RegisterModel"]["Arn"])
    model_data = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_data == f"s3://{ARTIFACTS}/training-output/fraud/{best['name']}/output/model.tar.gz"
    assert package["CustomerMetadataProperties"]["mlops:training_job"].endswith(f"training-job/{best['name'].lower()}")
    evaluation_key = f"evaluations/fraud/{execution_id}/evaluation.json"
    evaluation = json.loads(pipeline["s3"].get_object(Bucket=ARTIFACTS, Key=evaluation_key)["Body"].read())
    assert evaluation["decision"]["passed"] is True
