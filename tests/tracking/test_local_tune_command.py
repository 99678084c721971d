"""`mlops local tune`: a short local tuning run of a stack's model, each trial a run in the stack's MLflow
server, which `mlops local down` stops; and the local request spells the config as the Tune step does."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops.cli import app
from mlops.local.environment import STATE_ROOT_ENV, LocalEnvironment
from mlops.local.tuning import request_for
from specs.config.schema import TuningConfig


def test_local_tune_logs_every_trial_to_mlflow_and_down_stops_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["local", "tune", "-s", "demo-local", "--model", "fraud-detector", "--trials", "2", "--rows", "600"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "fraud-detector-tune-001: validation:auc=0." in result.stdout
        assert "fraud-detector-tune-002: validation:auc=0." in result.stdout and "=failed" not in result.stdout
        url = result.stdout.split("runs: ", 1)[1].split()[0]
        client = mlflow.MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("fraud-detector-tuning")
        runs = client.search_runs([experiment.experiment_id])
        assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
        summary = json.loads((tmp_path / "demo-local" / "tuning" / "fraud-detector" / "tuning.json").read_text())
        best = max((t for t in summary["trials"]), key=lambda t: t["objective"])
        assert summary["best"] == best["name"] and f"best: {best['name']}" in result.stdout
    finally:
        down = runner.invoke(app, ["local", "down", "-s", "demo-local"], catch_exceptions=False)
    assert "mlflow" in down.stdout
    assert LocalEnvironment("demo-local").find("mlflow") is None


def test_an_unknown_model_exits_2_naming_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))
    result = CliRunner().invoke(app, ["local", "tune", "-s", "demo-local", "--model", "nope"])
    assert result.exit_code == 2 and "allowed: fraud-detector" in result.stderr


def test_the_local_request_spells_the_config_as_the_pipelines_tune_step(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_tuning_step import TUNING, _generate
    from specs.pipelines import retraining as pd

    sdk = pd.step_arguments(_generate(), "Tune")["HyperParameterTuningJobConfig"]
    local = request_for(TuningConfig.model_validate(TUNING), static={})["HyperParameterTuningJobConfig"]
    assert local["ResourceLimits"] == sdk["ResourceLimits"]
    assert local["HyperParameterTuningJobObjective"] == sdk["HyperParameterTuningJobObjective"]
    assert local["Strategy"] == sdk["Strategy"] and local["TrainingJobEarlyStoppingType"] == sdk["TrainingJobEarlyStoppingType"]
    for kind in ("IntegerParameterRanges", "ContinuousParameterRanges"):
        assert sorted(((r["Name"], float(r["MinValue"]), float(r["MaxValue"]), r["ScalingType"]) for r in local["ParameterRanges"][kind]), key=str) == \
            sorted(((r["Name"], float(r["MinValue"]), float(r["MaxValue"]), r["ScalingType"]) for r in sdk["ParameterRanges"][kind]), key=str)
