"""Local hyperparameter tuning (issue #20): a CreateHyperParameterTuningJob request run with Optuna on
this machine, each trial a real `mlops-train train` process (mlops.local.training_run).

The request is what the retraining pipeline's Tune step holds (specs.pipelines.tuning): its
`ParameterRanges` become Optuna distributions (Integer -> int, Continuous -> float, Logarithmic scaling ->
log-uniform; Auto, Linear and ReverseLogarithmic sample uniformly), its objective's metric is read from
each trial's log with the container's metric definitions (`mlops_contracts.tuning.parse_metrics`, the
regexes SageMaker applies), `MaxNumberOfTrainingJobs` trials run, `MaxParallelTrainingJobs` at a time.
Strategy "Bayesian" is Optuna's TPE sampler (seeded: the same request proposes the same trials).
Early stopping is not applied locally (trials are short); a trial that fails or emits no objective
counts as failed, and the job fails only when every trial did.
Each trial logs to MLflow when MLFLOW_TRACKING_URI is set in the environment (the trainer does it).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.local import training_run
from mlops_contracts.tuning import parse_metrics

SAMPLER_SEED = 0


@dataclass
class Trial:
    """One finished (or failed) trial."""

    name: str
    hyperparameters: dict[str, str]
    run_dir: Path
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    failure: str | None = None

    @property
    def archive(self) -> Path:
        return self.run_dir / "model.tar.gz"


@dataclass
class TuningResult:
    """The trials in the order they were proposed and the best one."""

    trials: list[Trial]
    best: Trial
    direction: str


def _suggest(trial: Any, ranges: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in ranges.get("IntegerParameterRanges", []):
        log = item.get("ScalingType") == "Logarithmic"
        values[item["Name"]] = str(trial.suggest_int(item["Name"], int(item["MinValue"]), int(item["MaxValue"]), log=log))
    for item in ranges.get("ContinuousParameterRanges", []):
        log = item.get("ScalingType") == "Logarithmic"
        values[item["Name"]] = repr(trial.suggest_float(item["Name"], float(item["MinValue"]), float(item["MaxValue"]), log=log))
    for item in ranges.get("CategoricalParameterRanges", []):
        values[item["Name"]] = str(trial.suggest_categorical(item["Name"], list(item["Values"])))
    return values


def run_tuning(root: Path, request: dict[str, Any], *, job_name: str, channels: dict[str, Path], aws_env: dict[str, str],
               on_trial: Callable[[Trial], None] | None = None) -> TuningResult:
    """Run the tuning job `request` (resolved: no pipeline expressions left) under `root`, one directory
    per trial (`<job_name>-NNN`). Raises RuntimeError when no trial produced the objective."""
    import optuna

    config = request["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    direction = "maximize" if objective["Type"] == "Maximize" else "minimize"
    if config.get("Strategy", "Bayesian") not in ("Bayesian", "Random"):
        raise ValueError(f"tuning strategy {config['Strategy']!r} is not run locally; allowed: Bayesian, Random")
    static = {k: str(v) for k, v in request["TrainingJobDefinition"].get("StaticHyperParameters", {}).items()}
    limits = config["ResourceLimits"]
    trials: list[Trial] = []
    lock = threading.Lock()

    def evaluate(study_trial: Any) -> float:
        tuned = _suggest(study_trial, config["ParameterRanges"])
        trial = Trial(name=f"{job_name}-{study_trial.number + 1:03d}", hyperparameters={**static, **tuned},
                      run_dir=root / f"trial-{study_trial.number + 1:03d}")
        with lock:
            trials.append(trial)
        try:
            training_run.run_training(trial.run_dir, hyperparameters=trial.hyperparameters, channels=channels,
                                      archive=trial.archive, label=f"trial {trial.name}", aws_env={**aws_env, "TRAINING_JOB_NAME": trial.name},
                                      log=trial.run_dir / "train.log")
            trial.metrics = parse_metrics((trial.run_dir / "train.log").read_text(errors="replace"))
            if objective["MetricName"] not in trial.metrics:
                raise RuntimeError(f"trial {trial.name} emitted no {objective['MetricName']} (see {trial.run_dir / 'train.log'})")
            trial.objective = trial.metrics[objective["MetricName"]]
        except RuntimeError as exc:
            trial.failure = str(exc)
            raise optuna.TrialPruned(trial.failure) from None
        finally:
            if on_trial is not None:
                on_trial(trial)
        return trial.objective

    sampler = (optuna.samplers.TPESampler(seed=SAMPLER_SEED) if config.get("Strategy", "Bayesian") == "Bayesian"
               else optuna.samplers.RandomSampler(seed=SAMPLER_SEED))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=direction, sampler=sampler)
    study.optimize(evaluate, n_trials=int(limits["MaxNumberOfTrainingJobs"]), n_jobs=int(limits.get("MaxParallelTrainingJobs", 1)))
    done = [t for t in trials if t.objective is not None]
    if not done:
        reasons = "\n".join(f"- {t.name}: {t.failure}" for t in trials)
        raise RuntimeError(f"tuning job {job_name}: no trial produced {objective['MetricName']}:\n{reasons}")
    best = (max if direction == "maximize" else min)(done, key=lambda t: t.objective)
    (root / "tuning.json").write_text(json.dumps({
        "objective": objective, "best": best.name,
        "trials": [{"name": t.name, "hyperparameters": t.hyperparameters, "objective": t.objective, "failure": t.failure}
                   for t in trials],
    }, indent=2, sort_keys=True))
    return TuningResult(trials=sorted(trials, key=lambda t: t.name), best=best, direction=direction)


def default_space(task: str) -> dict[str, Any]:
    """The search `mlops local tune` uses for a model that declares no `tuning`: learning rate and
    epochs, objective the task's primary metric (ModelConfig.tuning's shape, as a plain dict)."""
    objective = "validation:auc" if task == "binary_classification" else "validation:rmse"
    return {"objective": objective, "search_space": {
        "learning_rate": {"min": 0.0005, "max": 0.02, "scaling": "Logarithmic"}, "epochs": {"min": 2, "max": 8}}}


def request_for(tuning: Any, *, static: dict[str, Any], max_jobs: int | None = None) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob fields the local run reads, from a `TuningConfig`, as the
    pipeline's Tune step spells them (tests/tracking check both agree)."""
    from mlops_contracts.tuning import TUNABLE

    ranges: dict[str, list[dict[str, str]]] = {"ContinuousParameterRanges": [], "IntegerParameterRanges": []}
    for name, rng in sorted(tuning.search_space.items()):
        integer = TUNABLE[name].kind == "Integer"
        ranges["IntegerParameterRanges" if integer else "ContinuousParameterRanges"].append({
            "Name": name, "MinValue": str(int(rng.min)) if integer else str(rng.min),
            "MaxValue": str(int(rng.max)) if integer else str(rng.max), "ScalingType": rng.scaling})
    jobs = max_jobs or tuning.max_jobs
    return {
        "HyperParameterTuningJobConfig": {
            "Strategy": tuning.strategy,
            "HyperParameterTuningJobObjective": {"MetricName": tuning.objective, "Type": tuning.direction()},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": min(tuning.max_parallel_jobs, jobs)},
            "ParameterRanges": {k: v for k, v in ranges.items() if v},
            "TrainingJobEarlyStoppingType": "Auto" if tuning.early_stopping else "Off",
        },
        "TrainingJobDefinition": {"StaticHyperParameters": {
            k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in static.items() if k not in tuning.search_space}},
    }


def tune_stack_model(local: Any, model: str, *, trials: int, rows: int, report: Callable[[str], None]) -> tuple[TuningResult, str]:
    """`mlops local tune`: the model's search (its `tuning`, else `default_space`) over `trials` trials on
    the stack's synthetic offline store, each trial logged to the stack's MLflow tracking server while the
    stack's environment runs (otherwise, or for a stack without one, a server started for tuning). Returns the result and the MLflow URL."""
    import shutil

    from mlops.local import mlflow_server
    from specs import feature_schema
    from specs.config.schema import TuningConfig

    if trials < 1:
        raise ValueError(f"--trials {trials}: allowed: an integer >= 1")
    models = local.config.model_registry.models
    if model not in models:
        raise ValueError(f"model {model!r} is not in stack {local.name}; allowed: {', '.join(sorted(models)) or 'none declared'}")
    spec = models[model]
    tuning = spec.tuning or TuningConfig.model_validate({**default_space(spec.task), "max_jobs": trials, "max_parallel_jobs": 1})
    root = local.env.dir / "tuning" / model
    if root.exists():
        shutil.rmtree(root)
    (root / "config").mkdir(parents=True)
    (root / "config" / "feature_schema.json").write_text(json.dumps(feature_schema.feature_schema(local.config, model), indent=2))
    data = local.offline_store(model, rows=rows)
    # The stack's own tracking server while its environment runs (`mlops local up` realized it), else one
    # started for tuning.
    running = local.env.find("moto") is not None
    url = (running and local.tracking_environment().get("MLFLOW_TRACKING_URI")) or mlflow_server.ensure(local.env)
    report(f"MLflow: {url} (experiment {model}-tuning)")
    static = {**local.config.training.hyperparameters, "model_name": model, "num_threads": 1, "checkpoint_every_steps": 0}
    request = request_for(tuning, static=static, max_jobs=trials)
    result = run_tuning(root, request, job_name=f"{model}-tune", channels={"train": data, "config": root / "config"},
                        aws_env={"MLFLOW_TRACKING_URI": url, "MLFLOW_EXPERIMENT_NAME": f"{model}-tuning"},
                        on_trial=lambda t: report(f"  {t.name}: {tuning.objective}={t.objective if t.objective is not None else 'failed'} "
                                                  + " ".join(f"{k}={t.hyperparameters[k]}" for k in sorted(tuning.search_space))))
    return result, url
