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


def test_ignore_keeps_the_state_on_an_empty_window_and_decides_on_the_datapoints_present():
    alarm = {**ALARM, "TreatMissingData": "ignore"}
    assert decide({**alarm, "StateValue": "ALARM"}, [])[0] == "ALARM"
    assert decide({**alarm, "StateValue": "OK"}, [])[0] == "OK"
    assert decide({**alarm, "StateValue": "OK"}, [11, 12, 13])[0] == "ALARM"


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


# ---- the evaluator on moto: datapoints at explicit timestamps, evaluated at an explicit `now` -----

from datetime import datetime, timedelta, timezone  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
NAMESPACE = "AWS/SageMaker"
DIMS = [{"Name": "EndpointName", "Value": "t-dev-scoring"}, {"Name": "VariantName", "Value": "champion"}]


@pytest.fixture
def cloudwatch(aws):
    import boto3

    return boto3.client("cloudwatch", region_name="us-east-1")


def _alarm(cw, name: str, **overrides) -> None:
    params = {"AlarmName": name, "Namespace": NAMESPACE, "MetricName": "Invocation5XXErrors", "Dimensions": DIMS, "Statistic": "Sum",
              "Period": 300, "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "Threshold": 5.0,
              "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching", **overrides}
    cw.put_metric_alarm(**{k: v for k, v in params.items() if v is not None})


def _publish(cw, metric: str, points: list[tuple[datetime, float]]) -> None:
    cw.put_metric_data(Namespace=NAMESPACE, MetricData=[
        {"MetricName": metric, "Dimensions": DIMS, "Timestamp": at, "Value": value} for at, value in points])


def _states(cw, prefix: str = "t-") -> dict[str, str]:
    return {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]}


def _evaluate(cw, now: datetime = NOW) -> list[tuple[str, str, str]]:
    from mlops.local.alarm_eval import evaluate_all

    return sorted((t.alarm, t.old, t.new) for t in evaluate_all(cw, now=now, prefix="t-"))


@pytest.mark.parametrize(("operator", "fires_at"), [
    ("GreaterThanThreshold", [6.0]),
    ("GreaterThanOrEqualToThreshold", [5.0, 6.0]),
    ("LessThanThreshold", [4.0]),
    ("LessThanOrEqualToThreshold", [4.0, 5.0]),
])
def test_each_comparison_operator_against_a_threshold_of_5(cloudwatch, operator, fires_at):
    for value in (4.0, 5.0, 6.0):
        _alarm(cloudwatch, f"t-{value:g}", ComparisonOperator=operator, MetricName=f"M{value:g}")
        _publish(cloudwatch, f"M{value:g}", [(NOW - timedelta(seconds=60), value)])
    assert _evaluate(cloudwatch) == sorted(("t-" + f"{v:g}", "OK", "ALARM") for v in fires_at)


def test_statistic_sum_average_and_maximum_of_one_period(cloudwatch):
    # one period holding 1, 2 and 6: Sum 9, Average 3, Maximum 6; each alarm's threshold sits between
    # its statistic and the next, so only the right statistic decides it
    _publish(cloudwatch, "Invocation5XXErrors", [(NOW - timedelta(seconds=s), v) for s, v in ((200, 1.0), (100, 2.0), (50, 6.0))])
    _alarm(cloudwatch, "t-sum", Statistic="Sum", Threshold=8.5, ComparisonOperator="GreaterThanThreshold")
    _alarm(cloudwatch, "t-sum-quiet", Statistic="Sum", Threshold=9.5, ComparisonOperator="GreaterThanThreshold")
    _alarm(cloudwatch, "t-avg", Statistic="Average", Threshold=2.5, ComparisonOperator="GreaterThanThreshold")
    _alarm(cloudwatch, "t-avg-quiet", Statistic="Average", Threshold=3.5, ComparisonOperator="GreaterThanThreshold")
    _alarm(cloudwatch, "t-max", Statistic="Maximum", Threshold=5.5, ComparisonOperator="GreaterThanThreshold")
    _alarm(cloudwatch, "t-max-quiet", Statistic="Maximum", Threshold=6.5, ComparisonOperator="GreaterThanThreshold")
    assert _evaluate(cloudwatch) == [("t-avg", "OK", "ALARM"), ("t-max", "OK", "ALARM"), ("t-sum", "OK", "ALARM")]


def test_m_of_n_over_evaluation_periods_published_one_per_period(cloudwatch):
    # five one-minute periods, oldest first; 3 of 5 needed
    def publish(metric: str, values: list[float]) -> None:
        _publish(cloudwatch, metric, [(NOW - timedelta(seconds=60 * (5 - k)) + timedelta(seconds=1), v) for k, v in enumerate(values)])

    publish("Three", [100.0, 0.0, 100.0, 0.0, 100.0])
    publish("Two", [100.0, 100.0, 0.0, 0.0, 0.0])
    for metric in ("Three", "Two"):
        _alarm(cloudwatch, f"t-{metric.lower()}", MetricName=metric, Statistic="Maximum", Period=60, EvaluationPeriods=5, DatapointsToAlarm=3,
               Threshold=50.0, ComparisonOperator="GreaterThanThreshold")
    assert _evaluate(cloudwatch) == [("t-three", "OK", "ALARM")]


def test_a_datapoint_older_than_the_evaluation_window_does_not_count(cloudwatch):
    _alarm(cloudwatch, "t-5xx")  # one 300 s period
    _publish(cloudwatch, "Invocation5XXErrors", [(NOW - timedelta(seconds=301), 50.0)])
    assert _evaluate(cloudwatch) == []
    assert _evaluate(cloudwatch, now=NOW - timedelta(seconds=2)) == [("t-5xx", "OK", "ALARM")]


@pytest.mark.parametrize(("treat", "state"), [
    ("missing", "INSUFFICIENT_DATA"),
    ("notBreaching", "OK"),
    ("breaching", "ALARM"),
])
def test_treat_missing_data_when_the_window_is_empty(cloudwatch, treat, state):
    _alarm(cloudwatch, "t-5xx", TreatMissingData=treat)
    assert _evaluate(cloudwatch) == ([("t-5xx", "OK", state)] if state != "OK" else [])
    assert _states(cloudwatch) == {"t-5xx": state}


def test_treat_missing_data_ignore_keeps_the_current_state_when_the_window_is_empty(cloudwatch):
    """CloudWatch: 'ignore - the current alarm state is maintained'."""
    _alarm(cloudwatch, "t-5xx", TreatMissingData="ignore")
    cloudwatch.set_alarm_state(AlarmName="t-5xx", StateValue="ALARM", StateReason="raised earlier")
    assert _evaluate(cloudwatch) == []
    assert _states(cloudwatch) == {"t-5xx": "ALARM"}


def test_partly_missing_datapoints_count_as_breaching_only_when_told(cloudwatch):
    # 2 of 3 periods needed; one breaching datapoint present, two periods empty
    for treat in ("breaching", "notBreaching"):
        _alarm(cloudwatch, f"t-{treat}", Period=60, EvaluationPeriods=3, DatapointsToAlarm=2, TreatMissingData=treat)
    _publish(cloudwatch, "Invocation5XXErrors", [(NOW - timedelta(seconds=30), 10.0)])
    assert _evaluate(cloudwatch) == [("t-breaching", "OK", "ALARM")]


def test_ok_alarm_ok_transitions_are_reported_once_each(cloudwatch):
    _alarm(cloudwatch, "t-5xx")
    _publish(cloudwatch, "Invocation5XXErrors", [(NOW - timedelta(seconds=60), 7.0)])
    assert _evaluate(cloudwatch) == [("t-5xx", "OK", "ALARM")]
    assert _evaluate(cloudwatch, now=NOW + timedelta(seconds=10)) == []  # still breaching: no second report
    later = NOW + timedelta(seconds=600)  # the breaching period has left the window
    _publish(cloudwatch, "Invocation5XXErrors", [(later - timedelta(seconds=60), 1.0)])
    assert _evaluate(cloudwatch, now=later) == [("t-5xx", "ALARM", "OK")]
    assert _evaluate(cloudwatch, now=later + timedelta(seconds=10)) == []
    assert _states(cloudwatch) == {"t-5xx": "OK"}


def test_p99_is_evaluated_on_the_periods_maximum_and_says_so(cloudwatch):
    from mlops.local.alarm_eval import evaluate_all

    # 99 fast requests and one slow one: CloudWatch's p99 would be low, the local maximum is 900 ms
    _publish(cloudwatch, "ModelLatency", [(NOW - timedelta(seconds=50), 1000.0)] * 99 + [(NOW - timedelta(seconds=40), 900_000.0)])
    _alarm(cloudwatch, "t-p99", MetricName="ModelLatency", Statistic=None, ExtendedStatistic="p99", Period=60, Threshold=200_000.0,
           ComparisonOperator="GreaterThanThreshold")
    (transition,) = evaluate_all(cloudwatch, now=NOW, prefix="t-")
    assert (transition.alarm, transition.new) == ("t-p99", "ALARM")
    assert "900000" in transition.reason
    assert transition.note == "p99 evaluated as Maximum (the local CloudWatch computes no percentiles)"


def test_metric_math_alarm_evaluates_the_returned_expression_per_period(cloudwatch):
    def _query(query_id: str, metric: str) -> dict:
        return {"Id": query_id, "ReturnData": False,
                "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": DIMS}, "Period": 300, "Stat": "Sum"}}

    _publish(cloudwatch, "Invocation4XXErrors", [(NOW - timedelta(seconds=100), 6.0)])
    _publish(cloudwatch, "Invocations", [(NOW - timedelta(seconds=100), 60.0)])
    cloudwatch.put_metric_alarm(
        AlarmName="t-4xx-rate", EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=5.0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching", Metrics=[
            _query("errors", "Invocation4XXErrors"), _query("invocations", "Invocations"),
            {"Id": "rate", "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)", "Label": "4XX %", "ReturnData": True}])
    assert _evaluate(cloudwatch) == [("t-4xx-rate", "OK", "ALARM")]  # 10 % > 5 %
