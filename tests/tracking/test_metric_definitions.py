"""The tuning contract's metric definitions against the real trainer's log (tiny data, real CPU runs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_contracts.tuning import METRIC_DEFINITIONS, OBJECTIVES, TUNABLE, parse_metrics
from mlops_training.hyperparameters import HyperparameterError, parse_hyperparameters
from mlops_training.synthetic import write_dataset


TINY = {"epochs": "2", "batch_size": "64", "learning_rate": "0.003", "num_threads": "1", "checkpoint_every_steps": "0"}


def _train(root: Path, task: str, hp: dict[str, str]) -> str:
    """`python -m mlops_training.main train` on 600 synthetic rows; returns its log (stdout and stderr)."""
    write_dataset(root / "data", n_rows=600, task=task, seed=5, n_files=1)
    argv = [
        "train", "--train", str(root / "data"), "--schema", str(root / "data" / "feature_schema.json"),
        "--model-dir", str(root / "model"), "--output-dir", str(root / "output"),
        "--checkpoint-dir", str(root / "checkpoints"), "--hyperparameters", json.dumps(hp),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k not in ("RANK", "WORLD_SIZE")}
    child = subprocess.run([sys.executable, "-m", "mlops_training.main", *argv], env=env, capture_output=True,
                           text=True, timeout=300)
    log = child.stdout + child.stderr
    assert child.returncode == 0, log
    return log


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_metric_definitions_read_every_objective_of_the_task_from_the_real_trainer_log(tmp_path: Path, task: str) -> None:
    # Tuned values arrive the way SageMaker sends them: strings, one per tunable hyperparameter.
    tuned = {"hidden_width": "8", "hidden_layers": "2", "weight_decay": "0.0001"}
    log = _train(tmp_path, task, TINY | tuned)

    parsed = parse_metrics(log)
    written = json.loads((tmp_path / "output" / "metrics.json").read_text())
    expected = {name for name, (for_task, _) in OBJECTIVES.items() if for_task == task}
    assert expected <= parsed.keys(), log
    for name in expected:
        assert parsed[name] == pytest.approx(float(written[name.split(":", 1)[1]]), abs=1e-6)
    assert not {n for n in OBJECTIVES if n not in expected} & parsed.keys()
    assert "train:loss" in parsed and parsed["train:loss"] > 0


def test_every_metric_definition_is_a_valid_sagemaker_regex_with_one_group() -> None:
    import re

    for definition in METRIC_DEFINITIONS:
        assert re.compile(definition["Regex"]).groups == 1, definition
        assert 1 <= len(definition["Regex"]) <= 500 and 1 <= len(definition["Name"]) <= 255


def test_every_tunable_name_is_a_hyperparameter_of_the_container() -> None:
    hp = parse_hyperparameters({name: "2" for name in TUNABLE})
    assert hp.layers() == (2, 2)


def test_tuned_width_without_depth_is_refused_naming_both() -> None:
    with pytest.raises(HyperparameterError, match="hidden_width=16, hidden_layers=0: set both"):
        parse_hyperparameters({"hidden_width": "16"})
