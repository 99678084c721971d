"""The retraining pipeline's tuning step: a SageMaker hyperparameter tuning job over a model's search
space (`ModelConfig.tuning`), in place of the single Train step, and the best trial as the candidate.

The step is the SDK v3 `TuningStep` of a `HyperparameterTuner` around the same `ModelTrainer` the Train
step uses: the trials run the training image with the run's hyperparameters, minus the tuned ones (a
hyperparameter cannot be both static and tuned), with the container's metric definitions
(`mlops_contracts.tuning.METRIC_DEFINITIONS`). The trials upload no artifact of their own
(`artifact_s3_uri` empty: they would all write the run's key); the candidate is the best trial's
SageMaker output, `s3://<artifacts>/training-output/<model>/<best job>/output/model.tar.gz`.

`BestTrial` gives the Evaluate and Register steps what they read from a Train step
(`properties.ModelArtifacts.S3ModelArtifacts`, `properties.TrainingJobArn`), as the tuning step's
properties, so those steps are built by the same code either way.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure, like specs.pipelines.retraining).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from mlops_contracts.tuning import METRIC_DEFINITIONS, TUNABLE
from specs.config.schema import TuningConfig  # layout: moves with config

TUNING_STEP = "Tune"
"""The tuning step's name (the pipeline's second step when the model declares `tuning`)."""
TUNED_AWAY_HYPERPARAMETERS = ("artifact_s3_uri",)
"""Static hyperparameters the trials get empty: each trial would upload to the same key."""


def hyperparameter_ranges(tuning: TuningConfig) -> dict[str, Any]:
    """The SDK's range objects, by hyperparameter name (integers as integers)."""
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter

    ranges: dict[str, Any] = {}
    for name, rng in sorted(tuning.search_space.items()):
        if TUNABLE[name].kind == "Integer":
            ranges[name] = IntegerParameter(int(rng.min), int(rng.max), scaling_type=rng.scaling)
        else:
            ranges[name] = ContinuousParameter(rng.min, rng.max, scaling_type=rng.scaling)
    return ranges


def tuning_step(trainer: Any, *, tuning: TuningConfig, model: str, channels: list[Any]) -> Any:
    """The TuningStep: Bayesian over `tuning.search_space`, early stopping Auto/Off, max jobs and
    parallel jobs from the config. `trainer` is the Train step's ModelTrainer; the tuned names are
    removed from its static hyperparameters here."""
    from sagemaker.mlops.workflow import TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    trainer.hyperparameters = {
        k: ("" if k in TUNED_AWAY_HYPERPARAMETERS else v)
        for k, v in trainer.hyperparameters.items() if k not in tuning.search_space
    }
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=tuning.objective,
        objective_type=tuning.direction(),
        hyperparameter_ranges=hyperparameter_ranges(tuning),
        metric_definitions=[dict(d) for d in METRIC_DEFINITIONS],
        strategy=tuning.strategy,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type="Auto" if tuning.early_stopping else "Off",
        base_tuning_job_name=model[:20],
    )
    return TuningStep(name=TUNING_STEP, step_args=tuner.tune(inputs=channels, wait=False))


@dataclass(frozen=True)
class BestTrial:
    """The tuning step seen as a Train step: the best trial's model artifact and training job."""

    step: Any
    artifacts_bucket: str
    model: str

    @property
    def properties(self) -> Any:
        from sagemaker.core.workflow.functions import Join

        best = self.step.properties.BestTrainingJob
        # SageMaker writes a trial's output under <S3OutputPath>/<trial job name>/output/.
        model_data = Join(on="/", values=[f"s3://{self.artifacts_bucket}/training-output/{self.model}",
                                          best.TrainingJobName, "output/model.tar.gz"])
        return SimpleNamespace(ModelArtifacts=SimpleNamespace(S3ModelArtifacts=model_data),
                               TrainingJobArn=best.TrainingJobArn)
