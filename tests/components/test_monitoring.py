"""Monitoring under Pulumi's mock runtime: alert topic, per-variant and drift alarms, dashboard."""
from __future__ import annotations

import json

import pulumi
import pytest

from specs.config.schema import EndpointConfig, MonitoringConfig
from components.monitoring import TOKEN, Monitoring, MonitoringArgs

KEY = "arn:aws:kms:eu-west-1:111111111111:key/k-1"
TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:t-dev-alerts"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
URL = "s3://t-dev-artifacts-111111111111/m/{}/model.tar.gz"

SCORING = EndpointConfig.model_validate({
    "model": "fraud",
    "traffic": {
        "mode": "shadow",
        "production": {"champion": {"model_version": 1, "model_data_url": URL.format(1)}},
        "shadow": {"candidate": {"model_version": 2, "model_data_url": URL.format(2)}},
    },
})
QUOTES = EndpointConfig.model_validate({
    "model": "price", "traffic": {"mode": "single", "variants": {"main": {"model_version": 3, "model_data_url": URL.format(3)}}},
})
CONFIG = MonitoringConfig.model_validate({
    "notifications": {"emails": ["oncall@example.com", "lead@example.com"]},
    "thresholds": {"latency_p99_ms": 120, "errors_5xx": 3, "rate_4xx_percent": 2.5, "min_invocations_per_hour": 5, "drift_psi": 0.3},
})


def build(mock_pulumi, namer, *, config=CONFIG, endpoints=None, https_endpoint=None, model_gates=None, refused=False):
    endpoints = {"scoring": SCORING, "quotes": QUOTES} if endpoints is None else endpoints
    make = lambda: Monitoring("t-dev-monitoring", MonitoringArgs(  # noqa: E731
        namer=namer, region="eu-west-1", config=config, endpoints=endpoints, kms_key_arn=KEY,
        model_gates=model_gates or {}, https_endpoint=https_endpoint, tags=mock_pulumi.tags,
    ))
    return mock_pulumi.refused(make) if refused else mock_pulumi.run(make)


@pytest.fixture
def built(mock_pulumi, namer):
    return build(mock_pulumi, namer)


def _alarm(run, name: str) -> dict:
    return run.one(ALARM, f"t-dev-monitoring-{name}").inputs


def test_topic_is_kms_encrypted_and_only_this_accounts_alarms_and_events_publish(built, mock_pulumi):
    topic = built.one("aws:sns/topic:Topic", "t-dev-monitoring-alerts")
    assert topic.parent == mock_pulumi.top_urn(TOKEN, "t-dev-monitoring")
    assert topic.inputs == {"name": "t-dev-alerts", "kmsMasterKeyId": KEY, "tags": mock_pulumi.tags}
    policy = built.one("aws:sns/topicPolicy:TopicPolicy", "t-dev-monitoring-alerts-policy")
    assert policy.inputs["arn"] == TOPIC_ARN
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}
    assert statement["Action"] == "sns:Publish"
    assert statement["Resource"] == TOPIC_ARN
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_each_email_gets_an_email_subscription(built):
    assert sorted((s.name, s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"]) for s in built.of_type(SUBSCRIPTION)) == [
        ("t-dev-monitoring-email-0", "email", "oncall@example.com", TOPIC_ARN),
        ("t-dev-monitoring-email-1", "email", "lead@example.com", TOPIC_ARN),
    ]


def test_webhook_secret_is_subscribed_over_https_and_stays_secret(mock_pulumi, namer):
    config = CONFIG.model_copy(update={"notifications": CONFIG.notifications.model_copy(update={"emails": [], "https_endpoint_secret": "webhook"})})
    run = build(mock_pulumi, namer, config=config, https_endpoint=pulumi.Output.secret("https://hooks.example.com/x"))
    (hook,) = run.of_type(SUBSCRIPTION)
    assert hook.name == "t-dev-monitoring-webhook"
    assert hook.inputs["protocol"] == "https"
    assert hook.inputs["endpointAutoConfirms"] is True
    assert hook.inputs["endpoint"] == "[secret]"  # PlanMonitor's stand-in for a value sent as a secret


WEBHOOK_WITHOUT_VALUE = CONFIG.model_copy(
    update={"notifications": CONFIG.notifications.model_copy(update={"https_endpoint_secret": "webhook"})}
)


def test_webhook_secret_named_without_a_value_is_an_input_error(mock_pulumi, namer):
    problems = build(mock_pulumi, namer, config=WEBHOOK_WITHOUT_VALUE, refused=True)
    assert problems == [("https_endpoint", "notifications.https_endpoint_secret names 'webhook' but no secret value was passed")]


def test_missing_webhook_value_and_gates_of_an_unknown_endpoint_are_reported_together(mock_pulumi, namer):
    problems = build(mock_pulumi, namer, config=WEBHOOK_WITHOUT_VALUE, model_gates={"scoring": {"auc": 0.8}, "scorng": {"auc": 0.8}},
                     refused=True)
    assert problems == [
        ("https_endpoint", "notifications.https_endpoint_secret names 'webhook' but no secret value was passed"),
        ("model_gates.scorng", "no endpoint 'scorng'; allowed: quotes, scoring"),
    ]


def test_alarm_set_is_health_per_variant_no_traffic_per_production_variant_and_drift_per_endpoint(built, mock_pulumi):
    health = ["p99-latency", "5xx-errors", "4xx-rate"]
    expected = [
        *(f"t-dev-scoring-champion-{m}" for m in [*health, "no-traffic"]),
        *(f"t-dev-scoring-candidate-{m}" for m in health),
        "t-dev-scoring-drift-max-feature-psi", "t-dev-scoring-drift-prediction-psi",
        *(f"t-dev-quotes-main-{m}" for m in [*health, "no-traffic"]),
        "t-dev-quotes-drift-max-feature-psi", "t-dev-quotes-drift-prediction-psi",
    ]
    alarms = built.of_type(ALARM)
    assert sorted(a.inputs["name"] for a in alarms) == sorted(expected)
    assert sorted(built.component.alarms) == sorted(expected)
    for alarm in alarms:
        assert alarm.name == f"t-dev-monitoring-{alarm.inputs['name']}"
        assert alarm.parent == mock_pulumi.top_urn(TOKEN, "t-dev-monitoring")
        assert alarm.inputs["alarmActions"] == [TOPIC_ARN]
        assert alarm.inputs["okActions"] == [TOPIC_ARN]
        assert alarm.inputs["tags"] == mock_pulumi.tags


def test_latency_alarm_is_p99_model_latency_with_the_threshold_in_microseconds(built):
    alarm = _alarm(built, "t-dev-scoring-candidate-p99-latency")
    keys = ("namespace", "metricName", "extendedStatistic", "dimensions", "period", "evaluationPeriods",
            "datapointsToAlarm", "comparisonOperator", "threshold", "treatMissingData")
    assert {k: alarm[k] for k in keys} == {
        "namespace": "AWS/SageMaker",
        "metricName": "ModelLatency",
        "extendedStatistic": "p99",
        "dimensions": {"EndpointName": "t-dev-scoring", "VariantName": "candidate"},
        "period": 60,
        "evaluationPeriods": 5,
        "datapointsToAlarm": 3,
        "comparisonOperator": "GreaterThanThreshold",
        "threshold": 120_000,  # 120 ms; SageMaker reports ModelLatency in microseconds
        "treatMissingData": "notBreaching",
    }
    assert "statistic" not in alarm


def test_5xx_alarm_sums_errors_over_five_minutes(built):
    alarm = _alarm(built, "t-dev-quotes-main-5xx-errors")
    assert {k: alarm[k] for k in ("namespace", "metricName", "statistic", "period", "evaluationPeriods", "comparisonOperator", "threshold", "dimensions")} == {
        "namespace": "AWS/SageMaker", "metricName": "Invocation5XXErrors", "statistic": "Sum", "period": 300,
        "evaluationPeriods": 1, "comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 3,
        "dimensions": {"EndpointName": "t-dev-quotes", "VariantName": "main"},
    }
    assert "extendedStatistic" not in alarm


def test_4xx_alarm_is_metric_math_of_errors_over_invocations_in_percent(built):
    alarm = _alarm(built, "t-dev-scoring-champion-4xx-rate")
    dims = {"EndpointName": "t-dev-scoring", "VariantName": "champion"}
    assert alarm["metricQueries"] == [
        {"id": "errors", "returnData": False, "metric": {"namespace": "AWS/SageMaker", "metricName": "Invocation4XXErrors", "dimensions": dims, "period": 300, "stat": "Sum"}},
        {"id": "invocations", "returnData": False, "metric": {"namespace": "AWS/SageMaker", "metricName": "Invocations", "dimensions": dims, "period": 300, "stat": "Sum"}},
        {"id": "rate", "returnData": True, "expression": "IF(invocations > 0, 100 * errors / invocations, 0)", "label": "4XX %"},
    ]
    assert alarm["threshold"] == 2.5
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    # A metric-math alarm must not also name a single metric (PutMetricAlarm rejects both).
    assert not {"metricName", "namespace", "statistic", "period", "dimensions"} & set(alarm)


def test_no_traffic_alarm_treats_missing_data_as_breaching_for_production_variants_only(built):
    alarm = _alarm(built, "t-dev-scoring-champion-no-traffic")
    assert {k: alarm[k] for k in ("metricName", "statistic", "period", "comparisonOperator", "threshold", "treatMissingData")} == {
        "metricName": "Invocations", "statistic": "Sum", "period": 3600, "comparisonOperator": "LessThanThreshold",
        "threshold": 5, "treatMissingData": "breaching",
    }
    assert [a.inputs["name"] for a in built.of_type(ALARM) if a.inputs["name"].startswith("t-dev-scoring-candidate-no-")] == []


def test_min_invocations_zero_creates_no_no_traffic_alarm(mock_pulumi, namer):
    config = CONFIG.model_copy(update={"thresholds": CONFIG.thresholds.model_copy(update={"min_invocations_per_hour": 0})})
    run = build(mock_pulumi, namer, config=config)
    assert [a.inputs["name"] for a in run.of_type(ALARM) if a.inputs["name"].endswith("-no-traffic")] == []


def test_drift_alarms_watch_model_monitors_namespace_per_endpoint_and_drift_schedule(built):
    for suffix, metric in (("max-feature-psi", "MaxFeaturePSI"), ("prediction-psi", "PredictionPSI")):
        alarm = _alarm(built, f"t-dev-quotes-drift-{suffix}")
        assert {k: alarm[k] for k in ("namespace", "metricName", "statistic", "dimensions", "period", "comparisonOperator", "threshold")} == {
            "namespace": "/aws/sagemaker/Endpoint/data-metrics", "metricName": metric, "statistic": "Maximum",
            "dimensions": {"EndpointName": "t-dev-quotes", "MonitoringSchedule": "t-dev-quotes-drift"}, "period": 3600,
            "comparisonOperator": "GreaterThanThreshold", "threshold": 0.3,
        }


def test_alarms_disabled_creates_no_alarms_and_no_specs(mock_pulumi, namer):
    run = build(mock_pulumi, namer, config=CONFIG.model_copy(update={"alarms": False}))
    assert run.of_type(ALARM) == []
    assert run.component.specs == []


def test_dashboard_json_parses_and_charts_every_variant_and_alarm_of_each_endpoint(built):
    dashboard = built.one(DASHBOARD, "t-dev-monitoring-dashboard")
    assert dashboard.inputs["dashboardName"] == "t-dev-mlops"
    body = json.loads(dashboard.inputs["dashboardBody"])
    metric_lines = [line for w in body["widgets"] if w["type"] == "metric" for line in w["properties"]["metrics"]]
    latency = [line for line in metric_lines if line[1] == "ModelLatency"]
    assert latency == [
        ["AWS/SageMaker", "ModelLatency", "EndpointName", "t-dev-scoring", "VariantName", "champion"],
        ["AWS/SageMaker", "ModelLatency", "EndpointName", "t-dev-scoring", "VariantName", "candidate"],
        ["AWS/SageMaker", "ModelLatency", "EndpointName", "t-dev-quotes", "VariantName", "main"],
    ]
    assert ["/aws/sagemaker/Endpoint/data-metrics", "MaxFeaturePSI", "EndpointName", "t-dev-quotes",
            "MonitoringSchedule", "t-dev-quotes-drift"] in metric_lines
    alarm_widgets = {w["properties"]["title"]: w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm"}
    names = sorted(built.component.alarms)
    arn = "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:{}".format
    assert sorted(alarm_widgets) == ["t-dev-quotes: alarms", "t-dev-scoring: alarms"]
    assert sorted(alarm_widgets["t-dev-scoring: alarms"]) == sorted(arn(n) for n in names if n.startswith("t-dev-scoring-"))
    assert sorted(alarm_widgets["t-dev-quotes: alarms"]) == sorted(arn(n) for n in names if n.startswith("t-dev-quotes-"))


def test_dashboard_widgets_do_not_overlap(built):
    body = json.loads(built.one(DASHBOARD, "t-dev-monitoring-dashboard").inputs["dashboardBody"])
    cells = set()
    for widget in body["widgets"]:
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24
        area = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"]) for y in range(widget["y"], widget["y"] + widget["height"])}
        assert not area & cells, widget["properties"].get("title")
        cells |= area


def test_no_dashboard_without_endpoints(mock_pulumi, namer):
    run = build(mock_pulumi, namer, endpoints={})
    assert run.of_type(DASHBOARD) == []
    assert run.of_type(ALARM) == []


def test_dashboard_alarm_widgets_hold_one_to_one_hundred_alarms_when_alarms_are_disabled(mock_pulumi, namer):
    run = build(mock_pulumi, namer, config=CONFIG.model_copy(update={"alarms": False}))
    body = json.loads(run.one(DASHBOARD, "t-dev-monitoring-dashboard").inputs["dashboardBody"])
    sizes = [len(w["properties"]["alarms"]) for w in body["widgets"] if w["type"] == "alarm"]
    assert all(1 <= n <= 100 for n in sizes), sizes


def test_dashboard_charts_the_live_metrics_of_each_gated_model_per_variant(mock_pulumi, namer):
    run = build(mock_pulumi, namer, model_gates={"scoring": {"auc": 0.8, "log_loss": 0.5, "r2": 0.3}})
    body = json.loads(run.one(DASHBOARD, "t-dev-monitoring-dashboard").inputs["dashboardBody"])
    (live,) = [w for w in body["widgets"] if "live quality" in w["properties"].get("title", "")]
    assert live["properties"]["title"].startswith("t-dev-scoring: ")
    assert live["properties"]["metrics"] == [
        ["MLOps/ModelMonitor", metric, "EndpointName", "t-dev-scoring", "VariantName", variant]
        for variant in ("champion", "candidate") for metric in ("LiveAUC", "LiveLogLoss")
    ]
    cells = set()
    for widget in body["widgets"]:
        area = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"]) for y in range(widget["y"], widget["y"] + widget["height"])}
        assert not area & cells, widget["properties"].get("title")
        cells |= area
