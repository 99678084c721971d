"""EventBridge pattern matching, as the local environment applies it to alarm state changes."""
from __future__ import annotations

from mlops.local.events import alarm_state_change, matches
from specs.pipelines.retraining import retrain_event_pattern

ALARMS = ["t-dev-scoring-drift-max-feature-psi", "t-dev-scoring-drift-prediction-psi"]


def _event(alarm: str, new: str = "ALARM", old: str = "OK") -> dict:
    return alarm_state_change(alarm_name=alarm, old=old, new=new, reason="r", region="eu-west-1", account="111111111111")


def test_retrain_rule_matches_its_alarms_entering_alarm():
    pattern = retrain_event_pattern(ALARMS)
    assert matches(pattern, _event(ALARMS[0]))
    assert matches(pattern, _event(ALARMS[1]))


def test_retrain_rule_ignores_recovery_other_alarms_and_other_sources():
    pattern = retrain_event_pattern(ALARMS)
    assert not matches(pattern, _event(ALARMS[0], new="OK", old="ALARM"))
    assert not matches(pattern, _event("t-dev-scoring-champion-5xx-errors"))
    assert not matches(pattern, {**_event(ALARMS[0]), "source": "aws.sagemaker"})


def test_patterns_match_values_inside_event_lists_and_need_every_key():
    assert matches({"resources": ["a"]}, {"resources": ["b", "a"]})
    assert not matches({"detail": {"missing": ["x"]}}, {"detail": {}})
