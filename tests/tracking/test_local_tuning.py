"""Local tuning with Optuna: real trainer processes on small data, the best objective wins."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.local.tuning import run_tuning
from mlops_training.synthetic import write_dataset

REQUEST = {
    "HyperParameterTuningJobConfig": {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"MetricName": "validation:log_loss", "Type": "Minimize"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
        "ParameterRanges": {
            "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "4", "ScalingType": "Auto"}],
            "ContinuousParameterRanges": [{"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.02",
                                           "ScalingType": "Logarithmic"}],
        },
        "TrainingJobEarlyStoppingType": "Off",
    },
    "TrainingJobDefinition": {"StaticHyperParameters": {
        "batch_size": "64", "num_threads": "1", "checkpoint_every_steps": "0", "model_name": "fraud", "artifact_s3_uri": ""}},
}


def test_local_tuning_runs_the_trials_and_picks_the_best_objective(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", n_rows=600, task="binary_classification", seed=5, n_files=1)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "feature_schema.json").write_text((tmp_path / "data" / "feature_schema.json").read_text())
    (tmp_path / "data" / "feature_schema.json").unlink()
    seen: list[tuple[str, float | None]] = []
    result = run_tuning(tmp_path / "tune", REQUEST, job_name="fraud-tune", aws_env={},
                        channels={"train": tmp_path / "data", "config": tmp_path / "config"},
                        on_trial=lambda t: seen.append((t.name, t.objective)))

    assert [t.name for t in result.trials] == ["fraud-tune-001", "fraud-tune-002", "fraud-tune-003"]
    # The callback sees each finished trial with its objective.
    assert sorted(seen) == [(t.name, t.objective) for t in result.trials] and all(o is not None for _, o in seen)
    for trial in result.trials:
        assert trial.failure is None, trial.failure
        written = json.loads((trial.run_dir / "output" / "metrics.json").read_text())
        assert trial.objective == pytest.approx(written["log_loss"], abs=1e-6)
        assert trial.archive.is_file()
    # Each trial ran with what Optuna proposed: different hyperparameters, inside the ranges.
    proposed = {(t.hyperparameters["epochs"], t.hyperparameters["learning_rate"]) for t in result.trials}
    assert len(proposed) == 3
    assert all(1 <= int(e) <= 4 and 1e-4 <= float(lr) <= 0.02 for e, lr in proposed)
    assert result.best.objective == min(t.objective for t in result.trials)
    summary = json.loads((tmp_path / "tune" / "tuning.json").read_text())
    assert summary["best"] == result.best.name


def test_a_job_whose_every_trial_fails_names_each_failure(tmp_path: Path) -> None:
    request = json.loads(json.dumps(REQUEST))
    request["HyperParameterTuningJobConfig"]["ResourceLimits"] = {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1}
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match=r"no trial produced validation:log_loss:\n- fraud-tune-001: trial fraud-tune-001 failed"):
        run_tuning(tmp_path / "tune", request, job_name="fraud-tune", aws_env={}, channels={"train": tmp_path / "empty"})
