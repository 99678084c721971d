"""CloudWatch's alarm rule, as the local environment applies it."""
from __future__ import annotations

import pytest

from mlops.local.alarm_eval import decide, evaluate_expression

ALARM = {"EvaluationPeriods": 5, "DatapointsToAlarm": 3, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 10.0}


def test_m_out_of_n_datapoints_raise_the_alarm():
    assert decide(ALARM, [1, 11, 12, 13, 2])[0] == "ALARM"
    assert decide(ALARM, [1, 11, 12, 2, 2])[0] == "OK"


def test_only_the_last_n_periods_count():
    assert decide(ALARM, [11, 11, 11, 1, 1, 1, 1, 1])[0] == "OK"


def test_missing_data_follows_treat_missing_data():
    assert decide({**ALARM, "TreatMissingData": "missing"}, [])[0] == "INSUFFICIENT_DATA"
    assert decide({**ALARM, "TreatMissingData": "notBreaching"}, [])[0] == "OK"
    assert decide({**ALARM, "TreatMissingData": "breaching"}, [])[0] == "ALARM"


def test_no_traffic_alarm_fires_on_an_empty_hour():
    alarm = {"EvaluationPeriods": 1, "ComparisonOperator": "LessThanThreshold", "Threshold": 1, "TreatMissingData": "breaching"}
    assert decide(alarm, [])[0] == "ALARM"
    assert decide(alarm, [5])[0] == "OK"


def test_metric_math_of_the_4xx_rate_alarm():
    expression = "IF(invocations > 0, 100 * errors / invocations, 0)"
    assert evaluate_expression(expression, {"errors": 3, "invocations": 60}) == pytest.approx(5.0)
    assert evaluate_expression(expression, {"errors": 0, "invocations": 0}) == 0.0


def test_unsupported_metric_math_is_refused_not_guessed():
    with pytest.raises(ValueError, match="unsupported element"):
        evaluate_expression("ANOMALY_DETECTION_BAND(m1)", {"m1": 1.0})


def test_a_datapoint_from_earlier_in_the_same_second_counts(aws):
    """The drift job publishes, and the alarm is evaluated, often within one second: the emulator's
    GetMetricStatistics truncates EndTime to the second, which once hid the datapoint (a CI flake)."""
    from datetime import datetime, timedelta, timezone

    import boto3

    from mlops.local.alarm_eval import evaluate_all

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(AlarmName="scoring-drift-max-feature-psi", Namespace="MLOps/ModelMonitor", MetricName="MaxFeaturePSI",
                                Statistic="Maximum", Period=3600, EvaluationPeriods=1, Threshold=0.2,
                                ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    published = datetime.now(timezone.utc).replace(microsecond=700_000) - timedelta(seconds=5)
    cloudwatch.put_metric_data(Namespace="MLOps/ModelMonitor", MetricData=[{"MetricName": "MaxFeaturePSI", "Value": 3.0, "Timestamp": published}])
    fired = evaluate_all(cloudwatch, now=published + timedelta(milliseconds=200), prefix="scoring-")
    assert [(t.alarm, t.new) for t in fired] == [("scoring-drift-max-feature-psi", "ALARM")]
