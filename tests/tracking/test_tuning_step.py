"""The retraining pipeline's tuning step (`ModelConfig.tuning`): generated offline by the SDK, valid for
botocore's CreateHyperParameterTuningJob, and its best trial is what Evaluate and Register read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlops_contracts.tuning import METRIC_DEFINITIONS
from specs.config.schema import ModelConfig, Network, TrainingConfig
from specs.pipelines import expressions
from specs.pipelines import retraining as pd
from specs.pipelines.sources import RetrainingSources

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "components"))
from test_pipeline_sdk import INPUTS, OFFLINE_SCRIPT, REPO  # noqa: E402  (the Train step tests' inputs, one source of truth)

TUNING = {
    "objective": "validation:log_loss",
    "search_space": {
        "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"},
        "weight_decay": {"min": 0, "max": 0.01},
        "epochs": {"min": 2, "max": 8},
        "hidden_width": {"min": 8, "max": 64},
        "hidden_layers": {"min": 1, "max": 3},
    },
    "max_jobs": 6, "max_parallel_jobs": 2, "early_stopping": False,
}
BEST = {"TrainingJobName": "fraud-abc-003-1a2b3c4d",
        "TrainingJobArn": "arn:aws:sagemaker:eu-west-1:111111111111:training-job/fraud-abc-003-1a2b3c4d"}


def _generate(**tuning: Any) -> dict[str, Any]:
    pd.clear_generated()
    raw = {**INPUTS, "spec": {**INPUTS["spec"], "tuning": {**TUNING, **tuning}}}
    return json.loads(pd.pipeline_definition(**{
        **raw, "spec": ModelConfig.model_validate(raw["spec"]), "training": TrainingConfig.model_validate(raw["training"]),
        "network": Network.model_validate(raw["network"]), "sources": RetrainingSources.model_validate(raw["sources"])}))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return _generate()


def _context(document: dict[str, Any]) -> Any:
    context = expressions.Context(
        execution={"PipelineExecutionId": "abc123", "PipelineName": "t-dev-fraud-train", "StartDateTime": "2026-12-03T20:00:00Z",
                   "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-train/execution/abc123"},
        parameters={p["Name"]: p["DefaultValue"] for p in document["Parameters"]},
    )
    context.steps["Dataset"] = expressions.resolve(pd.step_arguments(document, "Dataset"), context)
    context.steps["Tune"] = {"BestTrainingJob": BEST}
    context.steps["Evaluate"] = expressions.resolve(pd.step_arguments(document, "Evaluate"), context)
    context.property_files[("Evaluate", "Evaluation")] = {"decision": {"passed": True, "reason": ""}}
    return context


def test_a_model_with_tuning_gets_a_tuning_step_in_place_of_train(document):
    assert [s["Name"] for s in document["Steps"]] == ["Dataset", "Tune", "Evaluate", "Condition"]
    assert next(s for s in document["Steps"] if s["Name"] == "Tune")["Type"] == "Tuning"


def test_the_tuning_request_resolved_is_valid_for_botocores_create_hyper_parameter_tuning_job(document):
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    request = {**expressions.resolve(pd.step_arguments(document, "Tune"), _context(document)),
               "HyperParameterTuningJobName": "fraud-abc123"}
    assert not expressions.step_references(request), "an expression is left unresolved"
    validate_parameters(request, get_session().get_service_model("sagemaker")
                        .operation_model("CreateHyperParameterTuningJob").input_shape)


def test_the_search_space_objective_and_limits_come_from_the_config(document):
    config = pd.step_arguments(document, "Tune")["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian" and config["TrainingJobEarlyStoppingType"] == "Off"
    assert config["HyperParameterTuningJobObjective"] == {"MetricName": "validation:log_loss", "Type": "Minimize"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    ranges = config["ParameterRanges"]
    assert {r["Name"]: (r["MinValue"], r["MaxValue"]) for r in ranges["IntegerParameterRanges"]} == {
        "epochs": ("2", "8"), "hidden_width": ("8", "64"), "hidden_layers": ("1", "3")}
    assert {r["Name"]: r["ScalingType"] for r in ranges["ContinuousParameterRanges"]} == {
        "learning_rate": "Logarithmic", "weight_decay": "Auto"}


def test_trials_get_the_metric_definitions_and_no_static_value_for_a_tuned_hyperparameter(document):
    definition = pd.step_arguments(document, "Tune")["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    static = definition["StaticHyperParameters"]
    assert not set(TUNING["search_space"]) & set(static)
    assert static["artifact_s3_uri"] == "" and static["model_name"] == "fraud"
    assert "model_package_group_name" not in static


def test_evaluate_and_register_read_the_best_trials_artifact_and_job(document):
    context = _context(document)
    model_data = f"s3://t-dev-artifacts-111111111111/training-output/fraud/{BEST['TrainingJobName']}/output/model.tar.gz"
    args = context.steps["Evaluate"]["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--candidate") + 1] == model_data
    register = expressions.resolve(pd.step_arguments(document, "Register"), context)
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == model_data
    assert register["CustomerMetadataProperties"]["mlops:training_job"] == BEST["TrainingJobArn"]


def test_an_invalid_tuning_section_never_reaches_the_sdk():
    with pytest.raises(ValueError, match="max_parallel_jobs"):
        _generate(max_jobs=1, max_parallel_jobs=2)


def test_the_tuning_pipeline_generates_with_no_network_call_and_no_credentials(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "contracts")]), PYTHONHASHSEED="12345")
    raw = {**INPUTS, "spec": {**INPUTS["spec"], "tuning": TUNING}}
    result = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, json.dumps(raw)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["attempts"] == [] and run["canary"], run
    assert json.loads(run["definition"]) == _generate()


def test_with_a_tracking_server_every_trial_gets_its_uri():
    pd.clear_generated()
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/t-dev-mlflow"
    raw = {**INPUTS, "spec": {**INPUTS["spec"], "tuning": TUNING}}
    document = json.loads(pd.pipeline_definition(**{
        **raw, "spec": ModelConfig.model_validate(raw["spec"]), "training": TrainingConfig.model_validate(raw["training"]),
        "network": Network.model_validate(raw["network"]), "sources": RetrainingSources.model_validate(raw["sources"]),
        "tracking_uri": arn}))
    assert pd.step_arguments(document, "Tune")["TrainingJobDefinition"]["Environment"] == {"MLFLOW_TRACKING_URI": arn}
