"""specs.alarms: the alarm specs as pure data (one table of rows read by one function), and the
rollback subset the Endpoint uses."""
from __future__ import annotations


from specs.config.schema import EndpointConfig, Thresholds
from specs import alarms
from specs.naming import Namer

NAMER = Namer(team="t", environment="dev", account_id="111111111111")
URL = "s3://t-dev-artifacts-111111111111/m/{}/model.tar.gz"


def shadow() -> EndpointConfig:
    return EndpointConfig.model_validate({"model": "m", "traffic": {
        "mode": "shadow",
        "production": {"champion": {"model_version": 1, "model_data_url": URL.format(1)}},
        "shadow": {"candidate": {"model_version": 2, "model_data_url": URL.format(2)}},
    }})


def ab(n: int) -> EndpointConfig:
    return EndpointConfig.model_validate({"model": "m", "traffic": {"mode": "ab", "variants": {
        f"v{i}": {"model_version": 1, "model_data_url": URL.format(1), "weight": 1} for i in range(n)
    }}})


def specs(endpoint: EndpointConfig, **thresholds) -> dict[str, alarms.AlarmSpec]:
    return {s.name: s for s in alarms.endpoint_alarms(
        namer=NAMER, key="e", endpoint=endpoint, thresholds=Thresholds(**thresholds),
    )}


def test_rollback_alarms_are_latency_and_5xx_of_production_variants_only():
    assert alarms.rollback_alarm_names(list(specs(shadow()).values())) == ["t-dev-e-champion-p99-latency", "t-dev-e-champion-5xx-errors"]


def test_rollback_alarms_per_ab_variant_in_variant_order():
    assert alarms.rollback_alarm_names(list(specs(ab(3)).values())) == [
        f"t-dev-e-v{i}-{m}" for i in range(3) for m in alarms.ROLLBACK_METRICS
    ]


def test_five_production_variants_fill_the_auto_rollback_limit_exactly():
    assert len(alarms.rollback_alarm_names(list(specs(ab(5)).values()))) == alarms.MAX_ROLLBACK_ALARMS


def test_latency_threshold_is_converted_from_milliseconds_to_microseconds():
    spec = specs(shadow(), latency_p99_ms=87.5)["t-dev-e-champion-p99-latency"]
    assert (spec.metric, spec.extended_statistic, spec.statistic, spec.threshold) == ("ModelLatency", "p99", None, 87_500)


def test_shadow_variant_has_health_alarms_but_no_no_traffic_alarm():
    names = [n for n in specs(shadow()) if "-candidate-" in n]
    assert names == ["t-dev-e-candidate-p99-latency", "t-dev-e-candidate-5xx-errors", "t-dev-e-candidate-4xx-rate"]


def test_zero_min_invocations_disables_no_traffic_alarms():
    assert [n for n in specs(ab(2), min_invocations_per_hour=0) if n.endswith("no-traffic")] == []
    assert [n for n in specs(ab(2), min_invocations_per_hour=3) if n.endswith("no-traffic")] == ["t-dev-e-v0-no-traffic", "t-dev-e-v1-no-traffic"]


def test_4xx_rate_is_metric_math_over_the_variants_errors_and_invocations():
    spec = specs(ab(2), rate_4xx_percent=7)["t-dev-e-v1-4xx-rate"]
    assert spec.metric is None and spec.namespace is None
    dims = [{"Name": "EndpointName", "Value": "t-dev-e"}, {"Name": "VariantName", "Value": "v1"}]
    assert [(q["Id"], q.get("MetricStat", {}).get("Metric", {}).get("MetricName"), q["ReturnData"]) for q in spec.metric_queries] == [
        ("errors", "Invocation4XXErrors", False), ("invocations", "Invocations", False), ("rate", None, True),
    ]
    assert spec.metric_queries[0]["MetricStat"]["Metric"]["Dimensions"] == dims
    assert spec.threshold == 7


def test_drift_alarms_watch_model_monitors_namespace_per_endpoint_and_schedule_at_the_psi_threshold():
    drift = {n: s for n, s in specs(ab(2), drift_psi=0.15).items() if s.variant is None}
    assert sorted(drift) == ["t-dev-e-drift-max-feature-psi", "t-dev-e-drift-prediction-psi"]
    for spec in drift.values():
        assert (spec.namespace, spec.statistic, spec.threshold, spec.dimensions) == (
            "/aws/sagemaker/Endpoint/data-metrics", "Maximum", 0.15, {"EndpointName": "t-dev-e", "MonitoringSchedule": "t-dev-e-drift"})
        assert spec.rollback is False
        assert alarms.watches_the_model(spec)


def test_live_quality_alarms_follow_the_models_gates_per_production_variant():
    from specs.config.schema import ABTraffic, AllAtOnceRollout, EndpointConfig, Thresholds
    from specs.naming import Namer

    variant = {"model_version": 1, "model_data_url": "s3://t-dev-artifacts-111111111111/m/1/model.tar.gz", "weight": 1}
    endpoint = EndpointConfig(model="fraud", traffic=ABTraffic(mode="ab", variants={"a": variant, "b": variant}),
                              rollout=AllAtOnceRollout(strategy="all_at_once"))
    specs = alarms.endpoint_alarms(namer=Namer(team="t", environment="dev", account_id="111111111111"), key="scoring",
                            endpoint=endpoint, thresholds=Thresholds(), gates={"auc": 0.85, "log_loss": 0.45, "r2": 0.5})
    live = {s.name: s for s in specs if s.metric and s.metric.startswith("Live")}
    assert sorted(live) == ["t-dev-scoring-a-live-auc", "t-dev-scoring-a-live-log-loss", "t-dev-scoring-b-live-auc", "t-dev-scoring-b-live-log-loss"]
    auc = live["t-dev-scoring-a-live-auc"]
    assert (auc.metric, auc.statistic, auc.comparison, auc.threshold) == ("LiveAUC", "Minimum", "LessThanThreshold", 0.85)
    loss = live["t-dev-scoring-b-live-log-loss"]
    assert (loss.metric, loss.statistic, loss.comparison, loss.threshold) == ("LiveLogLoss", "Maximum", "GreaterThanThreshold", 0.45)
    assert auc.dimensions == {"EndpointName": "t-dev-scoring", "VariantName": "a"} and not auc.rollback
    # fed hourly by the quality job, silent between labelled hours: a gap keeps the state
    assert {s.treat_missing_data for s in live.values()} == {"ignore"}
    assert {(s.period, s.evaluation_periods, s.datapoints_to_alarm) for s in live.values()} == {(3600, 1, 1)}


def test_alarm_specs_keep_their_names_order_and_rollback_flags():
    assert [(s.name, s.rollback) for s in specs(shadow()).values()] == [
        ("t-dev-e-champion-p99-latency", True), ("t-dev-e-champion-5xx-errors", True), ("t-dev-e-champion-4xx-rate", False),
        ("t-dev-e-champion-no-traffic", False), ("t-dev-e-candidate-p99-latency", False), ("t-dev-e-candidate-5xx-errors", False),
        ("t-dev-e-candidate-4xx-rate", False), ("t-dev-e-drift-max-feature-psi", False), ("t-dev-e-drift-prediction-psi", False),
    ]


def test_health_alarm_descriptions_state_role_variant_and_configured_threshold():
    got = {n: s.description for n, s in specs(shadow(), errors_5xx=3, rate_4xx_percent=2.5, min_invocations_per_hour=4).items()}
    assert got["t-dev-e-champion-p99-latency"] == "p99 ModelLatency of production variant champion above 250 ms"
    assert got["t-dev-e-candidate-5xx-errors"] == "3 or more 5XX errors in 5 minutes on shadow variant candidate"
    assert got["t-dev-e-champion-4xx-rate"] == "over 2.5 % of requests to production variant champion rejected (4XX) in 5 minutes"
    assert got["t-dev-e-champion-no-traffic"] == "fewer than 4 invocations in an hour on variant champion"
    assert got["t-dev-e-drift-prediction-psi"] == "the prediction distribution drifted from the training baseline (PSI above 0.2)"


def test_no_traffic_alarm_breaches_on_missing_data_and_the_others_do_not():
    assert {n: s.treat_missing_data for n, s in specs(ab(2)).items() if s.treat_missing_data != "notBreaching"} == {
        "t-dev-e-v0-no-traffic": "breaching", "t-dev-e-v1-no-traffic": "breaching",
    }
