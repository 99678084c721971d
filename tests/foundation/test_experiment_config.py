"""`endpoints.<e>.experiment`: the thresholds of the shadow analysis and the A/B readout, their
defaults, and refusals that name the field and what is allowed."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from specs.config import stack_files
from specs.config.schema import StackConfig


def fraud_dev(experiment: dict | None) -> StackConfig:
    doc = stack_files.load("fraud-dev").model_dump()
    endpoint = next(iter(doc["endpoints"]))
    if experiment is None:
        doc["endpoints"][endpoint].pop("experiment", None)
    else:
        doc["endpoints"][endpoint]["experiment"] = experiment
    return StackConfig.model_validate(doc)


def test_an_endpoint_without_experiment_gets_the_documented_defaults():
    experiment = next(iter(fraud_dev(None).endpoints.values())).experiment
    assert (experiment.shadow.min_requests, experiment.shadow.min_agreement, experiment.shadow.decision_threshold) == (1000, 0.95, 0.5)
    assert experiment.shadow.max_difference_p99 is None
    assert (experiment.ab.alpha, experiment.ab.power, experiment.ab.min_detectable_effect) == (0.05, 0.8, 0.02)


def test_configured_thresholds_are_kept():
    experiment = next(iter(fraud_dev({"shadow": {"min_requests": 50, "max_difference_p99": 0.2}, "ab": {"alpha": 0.01}}).endpoints.values())).experiment
    assert (experiment.shadow.min_requests, experiment.shadow.max_difference_p99, experiment.ab.alpha) == (50, 0.2, 0.01)


@pytest.mark.parametrize("experiment, field", [
    ({"shadow": {"min_agreement": 1.5}}, "min_agreement"),
    ({"ab": {"alpha": 0.7}}, "alpha"),
    ({"ab": {"power": 0.3}}, "power"),
    ({"shadow": {"min_requests": 0}}, "min_requests"),
    ({"ab": {"significance": 0.05}}, "significance"),
])
def test_out_of_range_or_unknown_fields_are_refused_naming_the_field(experiment, field):
    with pytest.raises(ValidationError) as caught:
        fraud_dev(experiment)
    assert field in str(caught.value)
