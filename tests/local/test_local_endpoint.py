"""The local environment, driven as a user would: boto3's sagemaker-runtime client against the router,
in front of real serving processes, with models trained by the training container's entry point.

One environment per module (starting it trains two small models): about a minute on 2 cores.
"""
from __future__ import annotations

import json
import math
import os
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.local import demo
from mlops.local.alarm_eval import evaluate_all
from mlops.local.environment import STATE_ROOT_ENV, _alive
from mlops.local.router import SHADOW_QUEUE_DEFAULT, WAIT_CEILING_S, read_status, wait_published, wait_shadow_settled
from mlops.local.stack import LocalStack

STACK = "demo-local"
ENDPOINT = "demo-local-scoring"
QUICK = {"epochs": 1, "batch_size": 256}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state = tmp_path_factory.mktemp("local-state")
    previous = os.environ.get(STATE_ROOT_ENV)
    os.environ[STATE_ROOT_ENV] = str(state)
    stack = LocalStack(STACK)
    try:
        stack.up()
        data = stack.offline_store("fraud-detector", rows=4000)
        stack.publish_offline_store(data)
        for seed in (1, 2):
            stack.train("fraud-detector", seed=seed, data=data, hyperparameters=QUICK)
        stack.deploy()
        _routed(stack, {"champion", "challenger"})
        yield stack
    finally:
        stack.env.down()
        if previous is None:
            os.environ.pop(STATE_ROOT_ENV, None)
        else:
            os.environ[STATE_ROOT_ENV] = previous


def _routed(stack: LocalStack, production: set[str], shadow: frozenset[str] = frozenset()) -> None:
    """Wait until the router routes ENDPOINT to exactly the variant processes running now: a variant
    name alone is not enough, since consecutive deployments reuse names for other models."""
    stack.wait_routed(ENDPOINT, production, shadow, timeout_s=WAIT_CEILING_S)


def _rows(stack: LocalStack, n: int, **kwargs) -> list[dict]:
    return demo.request_rows(stack.offline_store("fraud-detector", rows=4000), n=n, seed=5, **kwargs)


def _invoke(runtime, row: dict, **kwargs) -> tuple[str, dict]:
    response = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=json.dumps({"instances": [row]}), ContentType="application/json", **kwargs)
    return response["InvokedProductionVariant"], json.loads(response["Body"].read())


def test_traffic_split_follows_the_planned_weights_within_four_standard_deviations(local):
    # The stack declares champion 80, challenger 20. For n requests the challenger count is
    # Binomial(n, 0.2): mean 0.2 n, sd sqrt(n 0.2 0.8). |count - mean| <= 4 sd fails by chance
    # with probability below 1e-4.
    runtime = local.runtime()
    n = 500
    counts = Counter(_invoke(runtime, row)[0] for row in _rows(local, n))
    assert set(counts) == {"champion", "challenger"}
    sd = math.sqrt(n * 0.2 * 0.8)
    assert abs(counts["challenger"] - 0.2 * n) <= 4 * sd, counts


def test_target_variant_header_pins_the_variant_and_unknown_variants_are_refused(local):
    runtime = local.runtime()
    row = _rows(local, 1)[0]
    assert {_invoke(runtime, row, TargetVariant="challenger")[0] for _ in range(20)} == {"challenger"}
    with pytest.raises(runtime.exceptions.ValidationError, match="Variant nope not found"):
        _invoke(runtime, row, TargetVariant="nope")


def test_container_errors_reach_the_caller_as_model_error_with_the_original_status(local):
    runtime = local.runtime()
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=b'{"instances": [[1, 2]]}', ContentType="application/json")
    assert caught.value.response["OriginalStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] == "ModelError"


def test_shadow_variant_gets_copies_and_its_answers_never_reach_the_caller(local):
    v1, v2 = local.versions("fraud-detector")[:2]
    instance = "ml.m5.large"
    local.deploy({"endpoints": {"scoring": {"traffic": {
        "mode": "shadow", "variants": None, "shadow_sampling_percent": 100,
        "production": {"champion": demo._variant(v1, instance_type=instance)},
        "shadow": {"candidate": demo._variant(v2, instance_type=instance)},
    }}}})
    _routed(local, {"champion"}, shadow=frozenset({"candidate"}))
    runtime = local.runtime()
    rows = _rows(local, 60)
    # The candidate's own answers, asked directly (before counting what the shadow receives).
    candidate_port = next(p.port for p in local.env.processes() if p.variant == "candidate")
    direct = urllib.request.Request(f"http://127.0.0.1:{candidate_port}/invocations", data=json.dumps({"instances": rows[:10]}).encode(),
                                    headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(direct) as response:
        candidate_predictions = json.loads(response.read())["predictions"]
    zero = {"mirrored": 0, "sent": 0, "dropped": 0, "failed": 0}
    copies_before = read_status(local.router_url())["endpoints"].get(ENDPOINT, {}).get("shadow", {}).get("candidate", zero)
    before = demo.served(local, ENDPOINT, "candidate")
    answers = [_invoke(runtime, row) for row in rows]
    assert {variant for variant, _ in answers} == {"champion"}
    # What callers got is the champion's prediction, not the candidate's (the models differ).
    champion_only = [_invoke(runtime, row, TargetVariant="champion")[1] for row in rows[:10]]
    assert [body for _, body in answers[:10]] == champion_only
    assert candidate_predictions != [body["predictions"][0] for body in champion_only]
    # Every request was copied (sampling 100 %). Copies go out in the background: wait until the
    # router has settled each one (sent, dropped or failed), however slow the machine is.
    copies = wait_shadow_settled(local.router_url(), ENDPOINT, "candidate")
    delta = {key: copies[key] - copies_before[key] for key in zero}
    # 70 copies cannot fill a queue of SHADOW_QUEUE_DEFAULT, so none may be dropped, and the
    # candidate's own counter confirms each copy it was sent.
    assert len(rows) + 10 <= SHADOW_QUEUE_DEFAULT
    assert delta == {"mirrored": len(rows) + 10, "sent": len(rows) + 10, "dropped": 0, "failed": 0}
    assert demo.served(local, ENDPOINT, "candidate") - before == delta["sent"]


def test_faulty_challenger_raises_its_5xx_alarm_and_only_its_own(local, tmp_path: Path):
    v1, v2 = local.versions("fraud-detector")[:2]
    built = demo.faulty_artifact(local.env.artifact_path("fraud-detector", v2.version), tmp_path / "faulty.tar.gz")
    faulty = local.register_artifact("fraud-detector", built, based_on=v2, description=demo.FAULT_NOTE)
    instance = "ml.m5.large"
    local.deploy({"endpoints": {"scoring": {"traffic": {"variants": {
        "champion": demo._variant(v1, instance_type=instance, weight=50),
        "challenger": demo._variant(faulty, instance_type=instance, weight=50),
    }}}}})
    _routed(local, {"champion", "challenger"})
    cloudwatch = local.client("cloudwatch")
    evaluate_all(cloudwatch, prefix=ENDPOINT)
    runtime = local.runtime()
    errors = 0
    for row in _rows(local, 120, null_share=0.5):
        try:
            _invoke(runtime, row)
        except runtime.exceptions.ModelError:
            errors += 1
    assert errors >= 3
    wait_published(local.router_url())  # the alarms below read what the router has published
    fired = {t.alarm for t in evaluate_all(cloudwatch, prefix=ENDPOINT) if t.new == "ALARM"}
    assert f"{ENDPOINT}-challenger-5xx-errors" in fired
    assert not any(name.startswith(f"{ENDPOINT}-champion-") for name in fired)


def test_drifted_traffic_raises_the_drift_alarm_and_its_rule_starts_a_retrain(local):
    import io

    from rich.console import Console

    local.deploy()  # the stack as declared (earlier tests changed the endpoint)
    _routed(local, {"champion", "challenger"})
    before = {v.version for v in local.versions("fraud-detector")}
    result = demo.drift_and_retrain(local, Console(file=io.StringIO()), endpoint_name=ENDPOINT,
                                    data=local.offline_store("fraud-detector", rows=4000), champion_version=1, model="fraud-detector")
    assert {"amount", "country"} <= set(result["drifted_features"])
    fired = {a["alarm"] for a in result["alarms"] if a["new"] == "ALARM"}
    assert f"{ENDPOINT}-drift-max-feature-psi" in fired
    assert result["runs"] and all(run["rule"] == "demo-local-fraud-detector-retrain" for run in result["runs"])
    new = {v.version for v in local.versions("fraud-detector")} - before
    assert new == {run["version"] for run in result["runs"]}
    described = local.client("sagemaker").describe_model_package(
        ModelPackageName=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/demo-local-fraud-detector/{min(new)}")
    # the pipeline run keyed its artifact by its execution id
    assert f"/models/fraud-detector/{result['runs'][0]['execution']}/model.tar.gz" in described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]


def test_down_stops_every_process_it_started(local):
    pids = [p.pid for p in local.env.processes()]
    assert len(pids) >= 4  # moto, router and the variants
    local.env.down()
    assert not [pid for pid in pids if _alive(pid)]
    assert local.env.processes() == []
