"""Blue/green updates on the local router (mlops.local.bluegreen): the schedule a DeploymentConfig
gives, the traffic shares CANARY and LINEAR put on the new fleet (measured over HTTP against stub
fleets, within a binomial bound), rollback on an alarm within one evaluation period, the success path,
a failing rollback, the execution timeout; every UpdateEndpoint request checked against botocore."""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator

import pytest
from router_stubs import Stub

from mlops.local import bluegreen
from mlops.local.bluegreen import BlueGreenUpdate, DeploymentConfigError, Step, schedule
from mlops.local.router import Route, Router, VariantTarget, publish

ENDPOINT = "t-dev-scoring"
BODY = json.dumps({"instances": [[1.0]]}).encode()
CEILING_S = 60.0


def _config(kind: str, *, wait: int = 600, size: dict | None = None, final: int = 0, alarms: tuple[str, ...] = (),
            timeout: int | None = None) -> dict:
    routing: dict = {"Type": kind, "WaitIntervalInSeconds": wait}
    if kind == "CANARY":
        routing["CanarySize"] = size or {"Type": "CAPACITY_PERCENT", "Value": 10}
    if kind == "LINEAR":
        routing["LinearStepSize"] = size or {"Type": "CAPACITY_PERCENT", "Value": 25}
    policy: dict = {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": final}
    if timeout is not None:
        policy["MaximumExecutionTimeoutInSeconds"] = timeout
    config: dict = {"BlueGreenUpdatePolicy": policy}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    bluegreen.validate_update_endpoint({"EndpointName": ENDPOINT, "EndpointConfigName": f"{ENDPOINT}-green", "DeploymentConfig": config})
    return config


# ---- the schedule (pure) ---------------------------------------------------------------------

def test_canary_gives_the_canary_share_for_the_wait_then_everything_for_the_termination_wait():
    assert schedule(_config("CANARY", wait=300, final=120), instances=1) == ([Step(0.1, 300.0), Step(1.0, 120.0)], 120.0)


def test_linear_steps_add_the_step_share_until_the_whole_fleet():
    steps, _ = schedule(_config("LINEAR", wait=60, size={"Type": "CAPACITY_PERCENT", "Value": 25}), instances=4)
    assert [s.share for s in steps] == [0.25, 0.5, 0.75, 1.0]
    assert [s.bake_s for s in steps] == [60.0, 60.0, 60.0, 0.0]


def test_instance_count_sizes_are_shares_of_the_new_fleet():
    steps, _ = schedule(_config("CANARY", size={"Type": "INSTANCE_COUNT", "Value": 1}), instances=4)
    assert steps[0].share == 0.25
    steps, _ = schedule(_config("LINEAR", size={"Type": "INSTANCE_COUNT", "Value": 2}), instances=5)
    assert [s.share for s in steps] == [0.4, 0.8, 1.0]


def test_all_at_once_shifts_everything_and_bakes_for_the_termination_wait():
    assert schedule(_config("ALL_AT_ONCE", final=30), instances=2) == ([Step(1.0, 30.0)], 30.0)


@pytest.mark.parametrize(("kind", "size", "message"), [
    ("CANARY", {"Type": "CAPACITY_PERCENT", "Value": 60}, "at most 50%"),
    ("CANARY", {"Type": "INSTANCE_COUNT", "Value": 3}, "exceeds the new fleet's 2 instance"),
    ("LINEAR", {"Type": "CAPACITY_PERCENT", "Value": 5}, "allowed 10% to 50%"),
])
def test_sizes_sagemaker_refuses_are_refused_with_the_value_and_the_allowed_range(kind, size, message):
    with pytest.raises(DeploymentConfigError, match=message):
        schedule(_config(kind, size=size), instances=2)


def test_a_rolling_update_policy_is_refused_locally():
    with pytest.raises(DeploymentConfigError, match="RollingUpdatePolicy is not emulated"):
        schedule({"RollingUpdatePolicy": {}}, instances=1)


def test_botocore_refuses_an_unknown_routing_type_and_a_short_execution_timeout():
    request = {"EndpointName": ENDPOINT, "EndpointConfigName": "c", "DeploymentConfig": {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "SLOW", "WaitIntervalInSeconds": 5000}, "MaximumExecutionTimeoutInSeconds": 60}}}
    with pytest.raises(DeploymentConfigError) as refused:
        bluegreen.validate_update_endpoint(request)
    assert "MaximumExecutionTimeoutInSeconds" in str(refused.value)


def test_the_time_scale_must_be_a_number_in_0_1(monkeypatch):
    monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, "0.01")
    assert bluegreen.time_scale() == 0.01
    for bad in ("fast", "0", "2"):
        monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, bad)
        with pytest.raises(DeploymentConfigError, match=bluegreen.TIME_SCALE_ENV):
            bluegreen.time_scale()


# ---- the update on the router, against stub fleets -------------------------------------------

@pytest.fixture
def fleets() -> Iterator[dict[str, Stub]]:
    stubs = {"blue": Stub("blue"), "green": Stub("green"), "faulty": Stub("faulty", status=500)}
    try:
        yield stubs
    finally:
        for stub in stubs.values():
            stub.close()


def _route(stub: Stub) -> Route:
    # Both fleets serve the variant under the same name, as an UpdateEndpoint to a new model does.
    return Route(endpoint=ENDPOINT, production=(VariantTarget("AllTraffic", stub.url, 1.0),))


class GatedAlarms:
    """An alarm check the test controls: it blocks the update thread on the first check after each
    shift until the test releases it (so the test measures each share while it cannot change), and
    reports `firing` once the test sets it."""

    def __init__(self, router: Router) -> None:
        self.router, self.firing, self.fired_at = router, [], None
        self.gated = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self._seen: set[float] = set()

    def __call__(self, names: list[str]) -> list[str]:
        share = self.router.shift_share(ENDPOINT)
        if share not in self._seen:
            self._seen.add(share)
            self.gated.release()
            assert self.release.acquire(timeout=CEILING_S), "the test never released the bake"
        return list(self.firing)


def _update(router: Router, green: Stub, config: dict, check, *, interval: float = 0.05, scale: float = 1.0, **kw) -> BlueGreenUpdate:
    return BlueGreenUpdate(endpoint=ENDPOINT, green=_route(green), deployment=config, instances=1, shifter=router,
                           alarms_in_alarm=check, evaluation_interval_s=interval, scale=scale, **kw)


def _green_share(router: Router, n: int) -> tuple[float, int]:
    """Send n requests; the share the green fleet served and how many calls failed."""
    served, errors = 0, 0
    for _ in range(n):
        status, _, body = router.invoke(ENDPOINT, BODY, {})
        if status == 200:
            served += json.loads(body)["variant"] != "blue"
        else:
            errors += 1
            served += 1  # only green is faulty in these tests
    return served / n, errors


def _within(share: float, expected: float, n: int) -> bool:
    return abs(share - expected) <= 4 * math.sqrt(max(expected * (1 - expected), 1e-12) / n) + 1e-9


def test_canary_share_is_measured_within_four_standard_deviations_and_the_bake_ends_in_green(fleets):
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=3)
    alarms = GatedAlarms(router)
    stopped = threading.Event()
    update = _update(router, fleets["green"], _config("CANARY", wait=1, alarms=("t-5xx",)), alarms, scale=0.01,
                     on_succeeded=stopped.set).start()
    assert alarms.gated.acquire(timeout=CEILING_S)
    n = 600
    share, _ = _green_share(router, n)
    assert _within(share, 0.1, n), share
    alarms.release.release()
    assert alarms.gated.acquire(timeout=CEILING_S)  # the rest: every request to green during the final bake
    assert _green_share(router, 50)[0] == 1.0
    alarms.release.release()
    assert update.wait_done(CEILING_S)
    assert (update.status, update.failure_reason, stopped.is_set()) == ("InService", "", True)
    assert router.routes[ENDPOINT] == _route(fleets["green"]) and router.shift_share(ENDPOINT) == 0.0
    assert [e.kind for e in update.events] == ["started", "shifted", "baked", "shifted", "baked", "terminated", "succeeded"]
    router.close()


def test_linear_steps_are_each_measured_within_four_standard_deviations(fleets):
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=5)
    alarms = GatedAlarms(router)
    update = _update(router, fleets["green"], _config("LINEAR", wait=1, size={"Type": "CAPACITY_PERCENT", "Value": 25}, alarms=("t-5xx",)),
                     alarms, scale=0.01).start()
    n = 300
    for expected in (0.25, 0.5, 0.75, 1.0):
        assert alarms.gated.acquire(timeout=CEILING_S)
        share, _ = _green_share(router, n)
        assert _within(share, expected, n), (expected, share)
        alarms.release.release()
    assert update.wait_done(CEILING_S) and update.status == "InService"
    router.close()


def test_an_alarm_during_the_canary_bake_rolls_back_within_one_evaluation_period_and_callers_saw_errors_only_on_the_canary_share(fleets):
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=9)
    alarms = GatedAlarms(router)
    rolled_back = threading.Event()
    interval = 0.5
    update = _update(router, fleets["faulty"], _config("CANARY", wait=3600, alarms=("t-5xx",)), alarms, interval=interval,
                     on_rolled_back=rolled_back.set).start()
    assert alarms.gated.acquire(timeout=CEILING_S)
    n = 600
    share, errors = _green_share(router, n)
    assert _within(errors / n, 0.1, n), errors
    alarms.release.release()  # this check answers OK; the alarm goes off after it
    alarms.firing = ["t-5xx"]
    fired = time.monotonic()
    assert update.wait_done(CEILING_S)
    alarm_event = next(e for e in update.events if e.kind == "alarm")
    assert alarm_event.at - fired <= interval + 0.25  # the next evaluation: one interval, plus scheduling slack
    assert (update.status, rolled_back.is_set()) == ("InService", True)
    assert update.failure_reason == "Rolled back: alarm(s) t-5xx in ALARM during the baking period."
    assert router.routes[ENDPOINT] == _route(fleets["blue"])
    assert _green_share(router, 100) == (0.0, 0)  # after the rollback: blue only, no errors
    router.close()


def test_a_failing_rollback_leaves_update_rollback_failed(fleets):
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=1)

    def broken_restore() -> None:
        raise RuntimeError("blue fleet is gone")

    update = _update(router, fleets["faulty"], _config("ALL_AT_ONCE", final=3600, alarms=("t-5xx",)), lambda names: ["t-5xx"],
                     on_rolled_back=broken_restore).start()
    assert update.wait_done(CEILING_S)
    assert update.status == "UpdateRollbackFailed"
    assert "final baking period" in update.failure_reason and "blue fleet is gone" in update.failure_reason
    described = update.describe()
    assert described["EndpointStatus"] == "UpdateRollbackFailed" and described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]
    router.close()


def test_the_maximum_execution_timeout_rolls_the_update_back(fleets):
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=1)
    update = _update(router, fleets["green"], _config("CANARY", wait=3600, timeout=600), lambda names: [], scale=0.001, interval=0.05).start()
    assert update.wait_done(CEILING_S)
    assert update.status == "InService" and "MaximumExecutionTimeoutInSeconds (600 s)" in update.failure_reason
    assert router.routes[ENDPOINT] == _route(fleets["blue"])
    router.close()


# ---- alarms from the router's own metrics, evaluated against the local CloudWatch -----------

def test_the_router_s_5xx_metrics_fire_a_real_alarm_that_rolls_the_canary_back(aws, fleets):
    import boto3

    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(
        AlarmName="t-5xx", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}])
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=2)
    check = bluegreen.cloudwatch_alarm_check(cloudwatch)
    shifted = threading.Event()

    def check_after_shift(names: list[str]) -> list[str]:
        shifted.set()
        return check(names)

    update = _update(router, fleets["faulty"], _config("CANARY", wait=3600, alarms=("t-5xx",)), check_after_shift, interval=0.2).start()
    assert shifted.wait(CEILING_S)
    errors = 0
    while errors == 0:  # callers reach the faulty canary on about one request in ten
        errors += router.invoke(ENDPOINT, BODY, {})[0] != 200
    publish(cloudwatch, router.metrics)
    assert update.wait_done(CEILING_S)
    assert update.failure_reason.startswith("Rolled back: alarm(s) t-5xx")
    assert cloudwatch.describe_alarms(AlarmNames=["t-5xx"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    router.close()


# ---- UpdateEndpoint over the router's HTTP interface -----------------------------------------

def _post(url: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=CEILING_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_update_endpoint_over_http_runs_the_update_and_describes_it_and_refuses_bad_requests(fleets, monkeypatch):
    from mlops.local.router import make_server, read_status

    monkeypatch.setenv(bluegreen.TIME_SCALE_ENV, "0.001")
    router = Router({ENDPOINT: _route(fleets["blue"])}, seed=4)
    config = {"EndpointConfigName": "green-config", "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-green", "InitialInstanceCount": 1}]}
    router.update_starter = lambda params: bluegreen.start_update(
        router, params, config=config, variant_urls={"m-green": fleets["green"].url}, alarms_in_alarm=lambda names: [], evaluation_interval_s=0.05)
    server = make_server(router)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    request = {"EndpointName": ENDPOINT, "EndpointConfigName": "green-config", "DeploymentConfig": _config("CANARY", wait=60, alarms=("t-5xx",))}
    status, started = _post(f"{url}/endpoints/{ENDPOINT}/update", request)
    assert (status, started["EndpointStatus"], started["UpdateEndpointConfigName"]) == (200, "Updating", "green-config")
    assert router.updates[ENDPOINT].wait_done(CEILING_S)
    import urllib.request

    with urllib.request.urlopen(f"{url}/endpoints/{ENDPOINT}/update", timeout=CEILING_S) as response:
        described = json.loads(response.read())
    assert described["EndpointStatus"] == "InService" and "FailureReason" not in described
    assert described["LastDeploymentConfig"] == request["DeploymentConfig"]
    assert read_status(url)["endpoints"][ENDPOINT]["route"]["production"] == {"AllTraffic": fleets["green"].url}
    bad = {**request, "DeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "SLOW", "WaitIntervalInSeconds": 1}}}}
    status, refused = _post(f"{url}/endpoints/{ENDPOINT}/update", bad)
    assert status == 400 and "SLOW" in refused["Message"]
    status, refused = _post(f"{url}/endpoints/other/update", {**request, "EndpointName": "other"})
    assert status == 400 and "Could not find endpoint other" in refused["Message"]
    server.shutdown()
    router.close()
