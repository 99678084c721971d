"""Blue/green endpoint updates the way SageMaker runs them, for the local router.

`UpdateEndpoint` with a `DeploymentConfig.BlueGreenUpdatePolicy` starts a new fleet (green) beside the
old one (blue) and shifts traffic to it: ALL_AT_ONCE (everything at once), CANARY (the canary share,
a bake of `WaitIntervalInSeconds`, then the rest) or LINEAR (equal steps, a bake after each). After
the last shift comes the final bake, `TerminationWaitInSeconds`, then blue is stopped. During every
bake the alarms of `AutoRollbackConfiguration` are evaluated once per evaluation interval; one in
ALARM sends all traffic back to blue and the update ends as a rollback: the endpoint is InService on
its old configuration with a `FailureReason`. A rollback that itself fails leaves
`UpdateRollbackFailed`. `MaximumExecutionTimeoutInSeconds` bounds the whole update (then: rollback).

`schedule` is the pure part (the shares and bakes a policy gives); `BlueGreenUpdate` runs it on a
thread against a `Shifter` (the router) and records every step as an event that callers wait on.
Wait times are multiplied by `time_scale()` (MLOPS_LOCAL_TIME_SCALE, default 1) so that demos and
tests bake in fractions of a second; nothing else changes with the scale.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import botocore.session
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

TIME_SCALE_ENV = "MLOPS_LOCAL_TIME_SCALE"
UPDATING, IN_SERVICE, ROLLBACK_FAILED = "Updating", "InService", "UpdateRollbackFailed"
CANARY_MAX_SHARE = 0.5
"""SageMaker: the canary may take at most half of the new fleet's capacity."""
LINEAR_SHARE_RANGE = (0.1, 0.5)
"""SageMaker: a linear step is 10 to 50 percent of the new fleet's capacity."""
DEFAULT_TIMEOUT_S = 3600
"""MaximumExecutionTimeoutInSeconds when the request names none (SageMaker's default)."""


class DeploymentConfigError(ValueError):
    """An UpdateEndpoint request or DeploymentConfig SageMaker would refuse (ValidationException)."""


def time_scale() -> float:
    """The factor every wait of an update is multiplied by (MLOPS_LOCAL_TIME_SCALE, default 1)."""
    raw = os.environ.get(TIME_SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise DeploymentConfigError(f"{TIME_SCALE_ENV}={raw!r} is not a number; allowed: a number > 0 and <= 1") from None
    if not 0 < scale <= 1:
        raise DeploymentConfigError(f"{TIME_SCALE_ENV}={raw!r}: allowed a number > 0 and <= 1 (1 = SageMaker's real waits)")
    return scale


def validate_update_endpoint(params: dict[str, Any]) -> None:
    """botocore's validation of an UpdateEndpoint request, plus the model's enums and maxima."""
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("UpdateEndpoint").input_shape
    try:
        validate_parameters(params, shape)
    except ParamValidationError as exc:
        raise DeploymentConfigError(str(exc)) from None
    from mlops.local.aws_server import _constraint_problems  # the same enum/maximum checks the AWS endpoint applies

    problems = list(_constraint_problems(params, shape, ""))
    if problems:
        raise DeploymentConfigError("; ".join(problems))


@dataclass(frozen=True)
class Step:
    """Green's share of traffic from this step on, and how long to bake before the next one."""

    share: float
    bake_s: float


def _size_share(size: dict[str, Any], instances: int, what: str) -> float:
    if size["Type"] == "CAPACITY_PERCENT":
        if size["Value"] > 100:
            raise DeploymentConfigError(f"{what}.Value={size['Value']} CAPACITY_PERCENT: allowed 1 to 100")
        return size["Value"] / 100.0
    if size["Value"] > instances:
        raise DeploymentConfigError(f"{what}.Value={size['Value']} INSTANCE_COUNT exceeds the new fleet's {instances} instance(s)")
    return size["Value"] / instances


def schedule(deployment: dict[str, Any], *, instances: int) -> tuple[list[Step], float]:
    """The traffic steps of a BlueGreenUpdatePolicy for a new fleet of `instances` instances, and the
    final bake (TerminationWaitInSeconds), in unscaled seconds."""
    policy = deployment.get("BlueGreenUpdatePolicy")
    if policy is None:
        raise DeploymentConfigError("DeploymentConfig needs a BlueGreenUpdatePolicy locally (RollingUpdatePolicy is not emulated)")
    routing = policy["TrafficRoutingConfiguration"]
    kind, wait = routing["Type"], float(routing["WaitIntervalInSeconds"])
    final = float(policy.get("TerminationWaitInSeconds", 0))
    where = "BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
    if kind == "ALL_AT_ONCE":
        return [Step(1.0, final)], final
    if kind == "CANARY":
        if "CanarySize" not in routing:
            raise DeploymentConfigError(f"{where}.Type=CANARY needs CanarySize")
        share = _size_share(routing["CanarySize"], instances, f"{where}.CanarySize")
        if share > CANARY_MAX_SHARE:
            raise DeploymentConfigError(f"{where}.CanarySize is {share:.0%} of the new fleet; allowed at most {CANARY_MAX_SHARE:.0%}")
        return [Step(share, wait), Step(1.0, final)], final
    if kind == "LINEAR":
        if "LinearStepSize" not in routing:
            raise DeploymentConfigError(f"{where}.Type=LINEAR needs LinearStepSize")
        step = _size_share(routing["LinearStepSize"], instances, f"{where}.LinearStepSize")
        low, high = LINEAR_SHARE_RANGE
        if not low <= step <= high:
            raise DeploymentConfigError(f"{where}.LinearStepSize is {step:.0%} of the new fleet; allowed {low:.0%} to {high:.0%}")
        steps, share = [], step
        while share < 1.0 - 1e-9:
            steps.append(Step(share, wait))
            share += step
        return [*steps, Step(1.0, final)], final
    raise DeploymentConfigError(f"{where}.Type={kind!r}: allowed ALL_AT_ONCE, CANARY, LINEAR")


class Shifter(Protocol):
    """What an update drives: the router's split of one endpoint between blue and green."""

    def shift(self, endpoint: str, green: Any, share: float) -> None: ...

    def finish_shift(self, endpoint: str, *, keep_green: bool) -> None: ...


@dataclass(frozen=True)
class Event:
    at: float
    """time.monotonic() when it happened."""
    kind: str
    """started, shifted, baked, alarm, rolled-back, rollback-failed, terminated, succeeded, timed-out."""
    share: float
    detail: str = ""


@dataclass
class BlueGreenUpdate:
    """One running UpdateEndpoint: blue serves until green takes over step by step."""

    endpoint: str
    green: Any
    """The router's Route for the new configuration."""
    deployment: dict[str, Any]
    instances: int
    shifter: Shifter
    alarms_in_alarm: Callable[[list[str]], list[str]]
    """Evaluates the named alarms now; returns those in ALARM."""
    evaluation_interval_s: float
    """How often alarms are evaluated during a bake (scaled already: one alarm period locally)."""
    on_succeeded: Callable[[], None] = lambda: None
    """Called once the final bake has passed, before green becomes the endpoint's route and blue is released."""
    on_rolled_back: Callable[[], None] = lambda: None
    scale: float = 1.0
    config_name: str = ""
    """The EndpointConfigName the update deploys."""
    status: str = UPDATING
    failure_reason: str = ""
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.evaluation_interval_s <= 0:
            raise ValueError(f"evaluation_interval_s={self.evaluation_interval_s}: must be > 0")
        self.steps, _ = schedule(self.deployment, instances=self.instances)
        self.alarm_names = [a["AlarmName"] for a in (self.deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        policy = self.deployment["BlueGreenUpdatePolicy"]
        self.timeout_s = float(policy.get("MaximumExecutionTimeoutInSeconds", DEFAULT_TIMEOUT_S)) * self.scale
        self._changed = threading.Condition()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bluegreen-{self.endpoint}", daemon=True)

    def start(self) -> BlueGreenUpdate:
        self._record("started", 0.0, f"{len(self.steps)} step(s); alarms: {', '.join(self.alarm_names) or 'none'}")
        self._thread.start()
        return self

    def wait_for(self, condition: Callable[[BlueGreenUpdate], bool], timeout_s: float) -> bool:
        """Block until `condition(self)` holds (checked on every event); False if `timeout_s` passed."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self), timeout_s)

    def wait_done(self, timeout_s: float) -> bool:
        return self.wait_for(lambda u: u.status != UPDATING, timeout_s)

    def cancel(self) -> None:
        """Stop baking now and roll back (the router is closing)."""
        self._cancel.set()

    def _record(self, kind: str, share: float, detail: str = "", status: str | None = None) -> None:
        with self._changed:
            self.events.append(Event(time.monotonic(), kind, share, detail))
            if status is not None:
                self.status = status
            self._changed.notify_all()

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        share = 0.0
        try:
            for index, step in enumerate(self.steps):
                share = step.share
                self.shifter.shift(self.endpoint, self.green, share)
                self._record("shifted", share)
                problem = self._bake(step.bake_s * self.scale, deadline, final=index == len(self.steps) - 1)
                if problem:
                    return self._roll_back(share, problem)
                self._record("baked", share)
            self.on_succeeded()
            self.shifter.finish_shift(self.endpoint, keep_green=True)
            self._record("terminated", 1.0, "old fleet released")
            self._record("succeeded", 1.0, status=IN_SERVICE)
        except Exception as exc:  # noqa: BLE001 - the failure is the update's outcome, reported in FailureReason
            self._roll_back(share, f"update failed: {exc!r}")

    def _bake(self, seconds: float, deadline: float, *, final: bool) -> str:
        """Wait `seconds`, evaluating the rollback alarms once per interval; the reason to roll back, or ''."""
        end = time.monotonic() + seconds
        while True:
            firing = self.alarms_in_alarm(self.alarm_names) if self.alarm_names else []
            if firing:
                self._record("alarm", self._share(), ", ".join(firing))
                stage = "final baking period" if final else "baking period"
                return f"Rolled back: alarm(s) {', '.join(firing)} in ALARM during the {stage}."
            now = time.monotonic()
            if now >= deadline:
                self._record("timed-out", self._share())
                return f"Rolled back: the update exceeded MaximumExecutionTimeoutInSeconds ({self.timeout_s / self.scale:.0f} s)."
            if now >= end:
                return ""
            if self._cancel.wait(min(self.evaluation_interval_s, end - now, deadline - now)):
                return "Rolled back: the update was cancelled (the local router stopped)."

    def _share(self) -> float:
        with self._changed:
            return self.events[-1].share if self.events else 0.0

    def _roll_back(self, share: float, reason: str) -> None:
        try:
            self.shifter.finish_shift(self.endpoint, keep_green=False)
            self.on_rolled_back()
        except Exception as exc:  # noqa: BLE001 - reported as UpdateRollbackFailed
            self.failure_reason = f"{reason} The rollback failed: {exc!r}"
            self._record("rollback-failed", share, self.failure_reason, status=ROLLBACK_FAILED)
            return
        self.failure_reason = reason
        self._record("rolled-back", 0.0, reason, status=IN_SERVICE)

    def describe(self) -> dict[str, Any]:
        """The update's part of DescribeEndpoint: status, failure reason, the deployment config."""
        with self._changed:
            out: dict[str, Any] = {"EndpointName": self.endpoint, "EndpointStatus": self.status, "LastDeploymentConfig": self.deployment,
                                   "UpdateEndpointConfigName": self.config_name}
            if self.failure_reason:
                out["FailureReason"] = self.failure_reason
            start = self.events[0].at if self.events else 0.0
            out["Events"] = [{"kind": e.kind, "share": e.share, "detail": e.detail, "at_s": round(e.at - start, 3)} for e in self.events]
            return out


def cloudwatch_alarm_check(cloudwatch: Any) -> Callable[[list[str]], list[str]]:
    """An `alarms_in_alarm` for BlueGreenUpdate: evaluates the named alarms against the local CloudWatch
    now (mlops.local.alarm_eval, since moto never evaluates), stores a changed state, returns those in ALARM."""
    from mlops.local.alarm_eval import evaluate

    def check(names: list[str]) -> list[str]:
        from datetime import datetime, timezone

        now = datetime.now(timezone.utc)
        found = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        missing = sorted(set(names) - {a["AlarmName"] for a in found})
        if missing:
            raise DeploymentConfigError(f"AutoRollbackConfiguration names alarm(s) that do not exist: {', '.join(missing)}")
        changed = {t.alarm: t.new for t in evaluate(cloudwatch, found, now=now)}
        return [a["AlarmName"] for a in found if changed.get(a["AlarmName"], a["StateValue"]) == "ALARM"]

    return check


ALL_AT_ONCE_DEFAULT = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                                                 "TerminationWaitInSeconds": 0}}
"""What an UpdateEndpoint without DeploymentConfig runs (SageMaker: blue/green, all at once)."""


def start_update(router: Any, params: dict[str, Any], *, config: dict[str, Any], variant_urls: dict[str, str],
                 alarms_in_alarm: Callable[[list[str]], list[str]], evaluation_interval_s: float,
                 on_succeeded: Callable[[], None] = lambda: None) -> BlueGreenUpdate:
    """Validate one UpdateEndpoint request (`config` is its EndpointConfigName's configuration) and start
    it on `router` (a mlops.local.router.Router). DeploymentConfigError names what SageMaker would refuse."""
    from mlops.local.router import route_for

    validate_update_endpoint(params)
    endpoint = params["EndpointName"]
    if endpoint not in router.routes:
        raise DeploymentConfigError(f"Could not find endpoint {endpoint} (known: {', '.join(sorted(router.routes)) or 'none'})")
    running = router.updates.get(endpoint)
    if running is not None and running.status == UPDATING:
        raise DeploymentConfigError(f"Cannot update in-progress endpoint {endpoint}: an update is still Updating")
    green = route_for(endpoint, config, variant_urls)
    if green is None:
        missing = sorted(v["ModelName"] for v in config["ProductionVariants"] if v["ModelName"] not in variant_urls)
        raise DeploymentConfigError(f"{params['EndpointConfigName']}: no serving process for model(s) {', '.join(missing)}; start them first")
    update = BlueGreenUpdate(
        endpoint=endpoint, green=green, deployment=params.get("DeploymentConfig") or ALL_AT_ONCE_DEFAULT,
        instances=sum(int(v.get("InitialInstanceCount", 1)) for v in config["ProductionVariants"]),
        shifter=router, alarms_in_alarm=alarms_in_alarm, evaluation_interval_s=evaluation_interval_s,
        on_succeeded=on_succeeded, scale=time_scale(), config_name=params["EndpointConfigName"],
    )
    router.updates[endpoint] = update
    return update.start()
