"""The local environment, driven as a user would: boto3's sagemaker-runtime client against the router,
in front of real serving processes, with models trained by the training container's entry point.

One environment per module (starting it trains two small models): about a minute on 2 cores.
"""
from __future__ import annotations

import json
import math
import os
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlops.local import demo, demo_data
from mlops.local.alarm_eval import evaluate_all
from mlops.local.environment import STATE_ROOT_ENV, _alive
from mlops.local.router import SHADOW_QUEUE_DEFAULT, WAIT_CEILING_S, read_status, wait_published, wait_shadow_settled
from mlops.local.stack import LocalStack

STACK = "demo-local"
ENDPOINT = "demo-local-scoring"
ID = "transaction_id"
QUICK = {"epochs": 1, "batch_size": 256}


ROWS = 2000


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The demo's data plane on a small scale: a synthetic source ingested into the feature group, a
    point-in-time training set built from its offline store and label events, two versions trained
    on it, the endpoint deployed as declared (with feature lookup by transaction id)."""
    state = tmp_path_factory.mktemp("local-state")
    previous = os.environ.get(STATE_ROOT_ENV)
    os.environ[STATE_ROOT_ENV] = str(state)
    stack = LocalStack(STACK)
    try:
        stack.up()
        data = demo_data.write(stack.env.dir / "data", rows=ROWS, seed=1, label="is_fraud", now=datetime.now(timezone.utc))
        stack.ingest("transactions", data.source, report=stack.env.dir / "data" / "rejects.jsonl")
        stack.build_dataset("fraud-detector", label_events=data.labels, out=stack.env.dir / "datasets" / "fraud-detector")
        for seed in (1, 2):
            stack.train("fraud-detector", seed=seed, data=stack.env.dir / "datasets" / "fraud-detector", hyperparameters=QUICK)
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


def _source(stack: LocalStack) -> Path:
    return stack.env.dir / "data" / "source.parquet"


def _rows(stack: LocalStack, n: int, **kwargs) -> list[dict]:
    """Inline request records (the model's features, no record id)."""
    return [{k: v for k, v in row.items() if k != ID} for row in demo.request_rows(_source(stack), n=n, seed=5, **kwargs)]


def _invoke(runtime, row: dict, **kwargs) -> tuple[str, dict]:
    response = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=json.dumps({"instances": [row]}), ContentType="application/json", **kwargs)
    return response["InvokedProductionVariant"], json.loads(response["Body"].read())


def test_ingested_source_trains_from_a_point_in_time_set_whose_manifest_the_versions_carry(local):
    import pyarrow.parquet as pq

    corrected = int(ROWS * demo_data.CORRECTED_SHARE)
    dataset = local.env.dir / "datasets" / "fraud-detector"
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert manifest["counts"]["labels_in"] == manifest["counts"]["matched"] == ROWS
    assert manifest["counts"]["train"] + manifest["counts"]["validation"] == ROWS
    assert manifest["sources"] and all(uri.startswith(local.offline_store_uri("transactions")) for uri in manifest["sources"])
    # A record corrected after its label time trains on the row its label saw, not on the correction,
    # while the online store serves the correction.
    pit = demo_data.point_in_time_rows(dataset, _source(local), corrected=corrected, id_field=ID)
    assert pit == {"corrected": corrected, "as_labelled": corrected}
    last = pq.read_table(_source(local)).slice(ROWS + corrected - 1, 1).to_pylist()[0]
    record = local.env.session(local.region).client("sagemaker-featurestore-runtime", endpoint_url=local.env.moto_url()).get_record(
        FeatureGroupName="demo-local-transactions", RecordIdentifierValueAsString=last[ID])["Record"]
    assert {f["FeatureName"]: f["ValueAsString"] for f in record}["n_items"] == str(last["n_items"])
    for version in (1, 2):
        metadata = local.version_metadata("fraud-detector", version)
        assert metadata["dataset"]["content_hash"] == manifest["content_hash"]
        assert metadata["data_fingerprint"] == manifest["content_hash"]


def test_a_request_by_record_id_gets_the_inline_prediction_and_an_unknown_id_is_refused_with_422(local):
    runtime = local.runtime()
    # The first rows have no later correction, so the online store holds exactly these values.
    rows = demo.request_rows(_source(local), n=5, seed=5)
    for row in rows:
        inline = {k: v for k, v in row.items() if k != ID}
        assert _invoke(runtime, {ID: row[ID]}, TargetVariant="champion")[1] == _invoke(runtime, inline, TargetVariant="champion")[1]
    with pytest.raises(runtime.exceptions.ModelError) as caught:
        _invoke(runtime, {ID: "t-nowhere-1"}, TargetVariant="champion")
    assert caught.value.response["OriginalStatusCode"] == 422
    assert "t-nowhere-1" in caught.value.response["Error"]["Message"]
    check = demo.lookup_check(local, ENDPOINT, "challenger", rows, unknown_id="t-nowhere-2")
    assert (check["sample"], check["equal"]) == (5, 5)
    assert check["unknown"]["status"] == 422 and "t-nowhere-2" in check["unknown"]["message"]


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


def test_drift_starts_one_run_that_trains_on_the_new_data_and_registers_and_the_shuffled_drill_is_refused(local):
    import io

    from rich.console import Console

    from specs.pipelines.steps import FAILURE_PREFIX

    local.deploy()  # the stack as declared (earlier tests changed the endpoint): a guarded update, no alarm in ALARM yet
    _routed(local, {"champion", "challenger"})
    before = {v.version for v in local.versions("fraud-detector")}
    result = demo.drift_and_retrain(local, Console(file=io.StringIO()), endpoint_name=ENDPOINT,
                                    source=_source(local), champion_version=1, model="fraud-detector")
    assert {"amount", "country"} <= set(result["drifted_features"])
    fired = {a["alarm"] for a in result["alarms"] if a["new"] == "ALARM"}
    assert f"{ENDPOINT}-drift-max-feature-psi" in fired
    # the quality job joined every answered drifted request with its label
    assert sum(v["labeled_rows"] for v in result["live_quality"].values()) == demo.DRIFT_ROWS
    # every alarm event reached the starter; one started a run, the rest joined it
    assert len(result["deliveries"]) == len(fired) >= 1
    started = [d for d in result["deliveries"] if d["decision"] == "started"]
    assert len(started) == 1
    assert {d["execution"] for d in result["deliveries"]} == {started[0]["execution"]}
    retrain, drill = result["runs"]
    assert retrain["execution"] == started[0]["execution"] and retrain["rule"] == "demo-local-fraud-detector-retrain"
    assert retrain["status"] == "Succeeded", retrain["failure_reason"]
    assert retrain["steps"] == ["Dataset Succeeded", "Train Succeeded", "Evaluate Succeeded", "Condition Succeeded", "Register Succeeded"]
    # it trained on the drifted, labelled captures, not on phase 1's data
    evaluation = retrain["evaluation"]
    assert evaluation["passed"] is True
    assert evaluation["dataset_hash"] != local.version_metadata("fraud-detector", 1)["dataset"]["content_hash"]
    assert [c["name"] for c in evaluation["champions"]] == ["scoring/champion"]
    assert evaluation["candidate"]["value"] > 0 and evaluation["champions"][0]["auc"]["value"] > 0
    assert {v.version for v in local.versions("fraud-detector")} - before == {retrain["version"]}
    described = local.client("sagemaker").describe_model_package(
        ModelPackageName=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/demo-local-fraud-detector/{retrain['version']}")
    assert described["CustomerMetadataProperties"]["mlops:pipeline_execution"] == retrain["execution"]
    assert described["CustomerMetadataProperties"]["mlops:evaluation"] == evaluation["uri"]
    # the shuffled-labels drill ran the same definition and was refused with the evaluation's reason
    assert drill["parameters"] == {"ShuffleLabels": "true"}
    assert drill["status"] == "Failed" and drill["version"] is None
    assert drill["steps"][-1].startswith("Fail")
    assert drill["failure_reason"].startswith(FAILURE_PREFIX) and "gate failed" in drill["failure_reason"]
    assert drill["evaluation"]["passed"] is False


def test_the_retrained_version_rolls_out_by_itself_through_shadow_analysis_to_the_champions_place(local):
    import io

    from rich.console import Console

    from specs.config import stack_files

    newest = max(local.versions("fraud-detector"), key=lambda v: v.version)
    assert newest.approval == "Approved" and "retrained by" in newest.description  # the drift test's run registered it
    endpoint = local.config.endpoints["scoring"]
    target = demo.DemoEndpoint(key="scoring", name=ENDPOINT, model="fraud-detector", instance_type="ml.m5.large",
                               production=endpoint.production_variants(), pinned=[1, 2])
    # the drift test's traffic (every request labelled) read out as the A/B test the endpoint declares
    ab = demo.ab_readout(local, Console(file=io.StringIO()), target, since=datetime.now(timezone.utc) - timedelta(hours=1))
    assert [v["name"] for v in ab["variants"]] == ["champion", "challenger"]
    assert sum(v["labelled"] for v in ab["variants"]) == demo.DRIFT_ROWS
    assert ab["recommendation"] in ("keep", "promote", "stop") and ab["test"]["metric"] == "auc"
    result = demo.automatic_rollout(local, Console(file=io.StringIO()), target, candidate=newest.version)
    assert [s["step"] for s in result["steps"]] == ["shadow", "pinned"], result["steps"]
    analysis = {c["check"]: c["passed"] for c in result["steps"][1]["evidence"]["checks"]}
    assert analysis["agreement"] is True and analysis["error_rate"] is True and analysis["latency_p99"] is True
    # the copy of the stack file pins the new version in the champion's place, A/B shape kept
    source = stack_files.read_pulumi_config(Path(result["stack_files"]) / f"Pulumi.{STACK}.yaml")
    pinned = source["mlops:overrides"]["endpoints"]["scoring"]["traffic"]["variants"]["champion"]
    assert (pinned["model_version"], pinned["model_data_url"]) == (newest.version, newest.model_data_url)
    # and the endpoint serves it: its config's champion variant runs a Model of that artifact
    sagemaker = local.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"])
    champion = next(v for v in config["ProductionVariants"] if v["VariantName"] == "champion")
    assert sagemaker.describe_model(ModelName=champion["ModelName"])["PrimaryContainer"]["ModelDataUrl"] == newest.model_data_url
    # the checkout's stack file is untouched
    assert "mlops:overrides" not in stack_files.read_pulumi_config(stack_files.ROOT / "stacks" / f"Pulumi.{STACK}.yaml")


def test_faulty_canary_rolls_back_by_itself_and_callers_see_errors_only_on_the_canary_share(local, tmp_path: Path):
    """UpdateEndpoint with a canary policy: 20 % of traffic to the new fleet (champion and a faulty
    challenger, 50/50), whose 5XX alarm fires during the bake; the endpoint rolls back by itself."""
    v1, v2 = local.versions("fraud-detector")[:2]
    built = demo.faulty_artifact(local.env.artifact_path("fraud-detector", v2.version), tmp_path / "faulty.tar.gz")
    faulty = local.register_artifact("fraud-detector", built, based_on=v2, description=demo.FAULT_NOTE)
    instance = "ml.m5.large"
    sagemaker = local.client("sagemaker")
    config_before = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    route_before = read_status(local.router_url())["endpoints"][ENDPOINT]["route"]
    outcomes: list[bool] = []
    stop = threading.Event()
    rows = _rows(local, 200, null_share=0.5)

    def traffic() -> None:
        runtime = local.runtime()
        while not stop.is_set():
            try:
                _invoke(runtime, rows[len(outcomes) % len(rows)])
                outcomes.append(True)
            except runtime.exceptions.ModelError:
                outcomes.append(False)

    caller = threading.Thread(target=traffic, daemon=True)
    caller.start()
    try:
        local.deploy({"endpoints": {"scoring": {
            "rollout": {"strategy": "canary", "canary_percent": 20, "wait_minutes": 60},
            "traffic": {"variants": {
                "champion": demo._variant(v1, instance_type=instance, weight=50),
                "challenger": demo._variant(faulty, instance_type=instance, weight=50),
            }},
        }}}, allow_rollback=True)
    finally:
        stop.set()
        caller.join(WAIT_CEILING_S)
    outcome = local.last_updates[ENDPOINT]
    assert outcome["EndpointStatus"] == "InService"
    assert outcome["FailureReason"].startswith("Rolled back: alarm(s)") and f"{ENDPOINT}-challenger-5xx-errors" in outcome["FailureReason"]
    assert outcome["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["CanarySize"]["Value"] == 20
    assert [e["kind"] for e in outcome["Events"]][-2:] == ["alarm", "rolled-back"]
    # Callers saw errors only on the canary's share: 20 % to the new fleet, half of it the faulty
    # challenger, half of the requests with missing values: 5 %, within four standard deviations.
    n, errors = len(outcomes), outcomes.count(False)
    assert errors >= 3 and errors / n <= 0.05 + 4 * (0.05 * 0.95 / n) ** 0.5, (errors, n)
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == config_before
    assert read_status(local.router_url())["endpoints"][ENDPOINT]["route"] == route_before
    runtime = local.runtime()
    assert all(_invoke(runtime, row)[0] in {"champion", "challenger"} for row in rows[:40])  # blue again: no errors
    # Back to the stack's declaration without rollback alarms: the challenger's 5XX alarm stays in
    # ALARM for its period and would roll a guarded update back (LocalStackError), as in SageMaker.
    local.deploy({"endpoints": {"scoring": {"rollout": {"strategy": "none", "canary_percent": None, "wait_minutes": None, "termination_wait_minutes": None, "automatic": None}}}})
    assert all("FailureReason" not in u for u in local.last_updates.values())


def test_down_stops_every_process_it_started(local):
    pids = [p.pid for p in local.env.processes()]
    assert len(pids) >= 4  # moto, router and the variants
    local.env.down()
    assert not [pid for pid in pids if _alive(pid)]
    assert local.env.processes() == []
