"""The live-quality job locally (mlops.local.quality): the serving image's `mlops-monitor quality` as a
process over an endpoint's captures and the model's ground truth in the local S3, publishing to the
local CloudWatch; a degraded variant's live AUC alarm fires and its event reaches the retraining
starter through the same rule as drift.

The demo stack's AWS part is realized for real (the embedded moto server, every base resource of the
plan: buckets, alarms, the retraining rule and its starter); no router or variant processes are needed,
the captures are written by the serving container's own CaptureWriter."""
from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from mlops.local.events import alarm_state_change, deliveries, invoke
from mlops.local.environment import STATE_ROOT_ENV
from mlops.local.quality import live_quality_alarms, run_quality_job
from mlops.local.realize import realize
from mlops.local.stack import ENDPOINT_TYPES, LocalStack
from mlops.plan import plan_stack
from mlops_serving.capture import CaptureWriter

STACK = "demo-local"
ENDPOINT = "demo-local-scoring"
MODEL = "fraud-detector"
N = 160  # labelled requests per variant, above the job's min_labeled (100)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("local-state")
    previous = os.environ.get(STATE_ROOT_ENV)
    os.environ[STATE_ROOT_ENV] = str(state)
    local = LocalStack(STACK)
    try:
        local.env.down()
        local.env.start_moto()
        plan = plan_stack(STACK)
        realize([r for r in plan.resources if r.type not in ENDPOINT_TYPES], region=local.region, client=local.client)
        yield local
    finally:
        local.env.down()
        if previous is None:
            os.environ.pop(STATE_ROOT_ENV, None)
        else:
            os.environ[STATE_ROOT_ENV] = previous


def _capture(root: Path, variant: str, ids: list[str], scores: np.ndarray, when: float) -> None:
    writer = CaptureWriter(root=root, endpoint=ENDPOINT, variant=variant, flush_interval_s=0.01)
    writer.model_version = "1"
    writer.start()
    for i, (inference_id, p) in enumerate(zip(ids, scores)):
        writer.offer(when=when + i * 0.01, inference_id=inference_id, custom_attributes=None,
                     input_type="application/json", input_encoding="JSON", input_body=b'{"instances": [[1, 2]]}',
                     output_type="application/json", output_encoding="JSON", output_body=f"{{\"predictions\": [{float(p)!r}]}}".encode())
    writer.stop()
    assert writer.stats()["written"] == len(ids), writer.stats()


@pytest.fixture(scope="module")
def traffic(stack: LocalStack) -> dict:
    """A/B traffic of the last minutes: the champion scores well, the challenger's scores are the
    champion's turned upside down (the demo's faulty model). Every request is labelled."""
    rng = np.random.default_rng(17)
    now = datetime.now(UTC)
    y = {v: rng.integers(0, 2, N) for v in ("champion", "challenger")}
    good = {v: np.clip(0.5 + (y[v] - 0.5) * 0.6 + rng.normal(0, 0.2, N), 0.01, 0.99) for v in y}
    scores = {"champion": good["champion"], "challenger": 1.0 - good["challenger"]}
    ids = {v: [f"{v}-{i}" for i in range(N)] for v in y}
    for variant in y:
        _capture(stack.env.dir / "captures", variant, ids[variant], scores[variant], (now - timedelta(minutes=5)).timestamp())
    labels = {i: [int(label)] for v in y for i, label in zip(ids[v], y[v])}
    stack.put_ground_truth(MODEL, labels, at=now)
    return {"y": y, "scores": scores, "since": now - timedelta(minutes=30)}


@pytest.fixture(scope="module")
def job(stack: LocalStack, traffic: dict) -> dict:
    return run_quality_job(stack, ENDPOINT, traffic["since"])


def test_the_jobs_metrics_per_variant_are_scikit_learns_on_the_same_labels(job, traffic):
    for variant in ("champion", "challenger"):
        got = job["report"]["variants"][variant]
        y, p = traffic["y"][variant], traffic["scores"][variant]
        assert got["labeled_rows"] == N and got["judged"]
        assert got["metrics"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert got["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5), abs=1e-12)
        assert got["metrics"]["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-6)
    assert job["report_path"].is_file()


def test_the_degraded_variants_live_auc_alarm_fires_and_the_champions_does_not(job):
    # the emulator creates alarms in OK: the champion's stays there, the challenger's fires
    assert [(t.alarm, t.old, t.new) for t in job["transitions"]] == [(f"{ENDPOINT}-challenger-live-auc", "OK", "ALARM")]
    assert job["alarms"] == {f"{ENDPOINT}-challenger-live-auc": "ALARM", f"{ENDPOINT}-champion-live-auc": "OK"}
    (alarm,) = [t for t in job["transitions"] if t.new == "ALARM"]
    assert "LessThanThreshold 0.8" in alarm.reason


def test_the_alarm_event_reaches_the_retraining_starter_through_the_rule_drift_uses(stack, job):
    (alarm,) = [t for t in job["transitions"] if t.new == "ALARM"]
    events = stack.client("events")
    event = alarm_state_change(alarm_name=alarm.alarm, old=alarm.old, new=alarm.new, reason=alarm.reason,
                               region=stack.region, account=stack.namer.account_id)
    targets = [(d.rule, d.function) for d in deliveries(events, event) if d.function]
    drift = alarm_state_change(alarm_name=f"{ENDPOINT}-drift-max-feature-psi", old="OK", new="ALARM", reason="psi",
                               region=stack.region, account=stack.namer.account_id)
    assert len(targets) == 1 and targets == [(d.rule, d.function) for d in deliveries(events, drift) if d.function]
    decision = invoke(targets[0][1], event, client=stack.client)
    assert decision["decision"] == "started" and decision["trigger"] == "alarm", decision


def test_a_second_run_without_new_labels_keeps_the_alarm_and_starts_nothing_new(stack, job, traffic):
    # The window now holds no labelled prediction: the job publishes nothing new and the alarm, which
    # still sees this hour's datapoint, stays in ALARM: no second event, no second run.
    again = run_quality_job(stack, ENDPOINT, datetime.now(UTC) - timedelta(seconds=1))
    assert again["transitions"] == []
    assert again["alarms"][f"{ENDPOINT}-challenger-live-auc"] == "ALARM"
    assert all(not v["judged"] for v in again["report"]["variants"].values())


def test_an_unknown_endpoint_is_refused_naming_the_known_ones(stack):
    with pytest.raises(ValueError, match=f"has no endpoint named nope; it has {ENDPOINT}"):
        run_quality_job(stack, "nope", datetime.now(UTC) - timedelta(hours=1))


def test_only_the_endpoints_live_quality_alarms_are_evaluated(stack):
    names = sorted(a["AlarmName"] for a in live_quality_alarms(stack.client("cloudwatch"), ENDPOINT))
    assert names == [f"{ENDPOINT}-challenger-live-auc", f"{ENDPOINT}-champion-live-auc"]


def test_every_request_the_alarm_evaluation_sends_is_valid_by_botocores_model(stack, job, request_problems):
    from botocore import xform_name

    from mlops.local.quality import evaluate_live_alarms
    from mlops.local.realize import ApiCall

    cloudwatch = stack.env.session(stack.region).client("cloudwatch", endpoint_url=stack.env.moto_url())
    sent: list[ApiCall] = []
    cloudwatch.meta.events.register("before-parameter-build.cloudwatch",
                                    lambda params, model, **_: sent.append(ApiCall("cloudwatch", xform_name(model.name), dict(params))))
    cloudwatch.set_alarm_state(AlarmName=f"{ENDPOINT}-challenger-live-auc", StateValue="OK", StateReason="reset by the test")
    (again,) = evaluate_live_alarms(cloudwatch, ENDPOINT, now=datetime.now(UTC))
    assert (again.alarm, again.new) == (f"{ENDPOINT}-challenger-live-auc", "ALARM")
    assert {c.operation for c in sent} >= {"describe_alarms", "get_metric_statistics", "set_alarm_state"}
    assert {c.operation: request_problems(c) for c in sent} == {c.operation: [] for c in sent}
