"""`model_registry.models.<m>.tuning` and `tracking`: what the config accepts and what it refuses, each
error naming the file, the field and what is allowed."""
from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from mlops_contracts.tuning import OBJECTIVES, TUNABLE
from specs.config.schema import Objective, TrackingConfig, TunableName, TuningConfig

SPACE = {
    "learning_rate": {"min": 1e-4, "max": 1e-2, "scaling": "Logarithmic"},
    "hidden_width": {"min": 8, "max": 64},
    "hidden_layers": {"min": 1, "max": 3},
    "weight_decay": {"min": 0, "max": 0.01},
    "epochs": {"min": 2, "max": 6},
}


def _tune(doc, **tuning):
    doc["model_registry"]["models"]["fraud-detector"]["tuning"] = tuning


def test_config_names_are_the_contracts_names():
    assert set(typing.get_args(TunableName)) == set(TUNABLE)
    assert set(typing.get_args(Objective)) == set(OBJECTIVES)


def test_a_full_search_space_validates_in_a_stack(cli, edit):
    edit("teams/fraud.yaml", lambda d: _tune(d, objective="validation:auc", search_space=SPACE, max_jobs=6,
                                              max_parallel_jobs=2))
    result = cli("config", "validate", "--stack", "fraud-dev")
    assert result.exit_code == 0, result.stderr


def test_an_objective_of_the_other_task_is_refused_with_the_allowed_ones(edit, invalid):
    edit("teams/fraud.yaml", lambda d: _tune(d, objective="validation:rmse", search_space=SPACE))
    invalid("fraud-dev", "teams/fraud.yaml", "model_registry.models.fraud-detector",
             "tuning.objective 'validation:rmse' is not emitted for task 'binary_classification'",
             "allowed: validation:accuracy, validation:auc, validation:log_loss")


def test_more_parallel_jobs_than_jobs_is_refused(edit, invalid):
    edit("teams/fraud.yaml", lambda d: _tune(d, objective="validation:auc", search_space=SPACE, max_jobs=2,
                                              max_parallel_jobs=3))
    invalid("fraud-dev", "model_registry.models.fraud-detector.tuning",
             "max_parallel_jobs (3) must be at most max_jobs (2)")


@pytest.mark.parametrize(("name", "rng", "message"), [
    ("epochs", {"min": 1.5, "max": 4}, "search_space.epochs: epochs is an integer; got min=1.5, max=4"),
    ("epochs", {"min": 0, "max": 4}, "search_space.epochs.min=0: allowed >= 1"),
    ("learning_rate", {"min": 0, "max": 0.1}, "search_space.learning_rate.min=0: allowed > 0"),
    ("weight_decay", {"min": -0.1, "max": 0.1}, "search_space.weight_decay.min=-0.1: allowed >= 0"),
    ("weight_decay", {"min": 0, "max": 0.1, "scaling": "Logarithmic"},
     "search_space.weight_decay: scaling Logarithmic needs min > 0, got 0"),
    ("learning_rate", {"min": 0.1, "max": 0.01}, "search_space.learning_rate: min (0.1) must be below max (0.01)"),
])
def test_a_range_invalid_for_its_hyperparameter_is_refused(name, rng, message):
    with pytest.raises(ValidationError) as caught:
        TuningConfig(objective="validation:auc", search_space={name: rng})
    assert message in str(caught.value)


def test_width_without_depth_is_refused():
    with pytest.raises(ValidationError, match="hidden_width and hidden_layers go together"):
        TuningConfig(objective="validation:auc", search_space={"hidden_width": {"min": 8, "max": 16}})


def test_an_unknown_hyperparameter_is_refused_naming_the_allowed_ones(edit, invalid):
    edit("teams/fraud.yaml", lambda d: _tune(d, objective="validation:auc", search_space={"dropout": {"min": 0, "max": 1}}))
    invalid("fraud-dev", "search_space.dropout", "'learning_rate'", "'hidden_layers'")


def test_direction_follows_the_metric():
    assert TuningConfig(objective="validation:log_loss", search_space={"epochs": {"min": 1, "max": 3}}).direction() == "Minimize"
    assert TuningConfig(objective="validation:auc", search_space={"epochs": {"min": 1, "max": 3}}).direction() == "Maximize"


def test_tracking_is_off_by_default_and_a_shared_server_needs_it_enabled():
    assert TrackingConfig().enabled is False
    with pytest.raises(ValidationError, match="shared_stack needs tracking.enabled: true"):
        TrackingConfig(shared_stack="acme/mlops/platform-prod")
    with pytest.raises(ValidationError, match="apply to a server this stack creates"):
        TrackingConfig(enabled=True, shared_stack="acme/mlops/platform-prod", server_size="Large")


def test_tracking_section_validates_in_a_stack(cli, edit, invalid):
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True, "server_size": "Medium"}))
    assert cli("config", "validate", "--stack", "fraud-dev").exit_code == 0
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True, "server_size": "Huge"}))
    invalid("fraud-dev", "tracking.server_size", "'Small', 'Medium' or 'Large'")
