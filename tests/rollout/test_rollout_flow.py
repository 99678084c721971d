"""The automatic rollout's state machine through its stack-file edits and audit records: shadow ->
analysis -> blue/green -> pinned, and each way it ends early (analysis refuses, the update rolls
back), with the stack file back to its declared champion. The backend here is scripted (the verdicts
and apply results a real one would report); the local environment's run is tests/local."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from specs.config import stack_files
from specs.config.schema import StackConfig
from mlops.promote.audit import champion_history, read_audit
from mlops.promote.errors import PromotionUsageError
from mlops.rollout import flow, state
from mlops.rollout.state import Verdict, Version

STACK, ENDPOINT = "demo-local", "scoring"
ARTIFACTS = "s3://demo-local-artifacts-123456789012"
V5 = Version(5, f"{ARTIFACTS}/training-output/fraud-detector/pipelines-abc-Train/output/model.tar.gz", "arn:v5")


@pytest.fixture(autouse=True)
def opted_in(stacks: Path) -> Path:
    """The demo team opts in (its environment is "local", where the default is off)."""
    assert stack_files.load(STACK).endpoints[ENDPOINT].rollout.automatic is True
    return stacks


@dataclass
class Scripted:
    """A backend whose registry, analyses and deployments are what the test says."""

    newest: Version | None = V5
    verdicts: list[Verdict] = field(default_factory=list)
    applies: list[flow.Applied] = field(default_factory=list)
    deployed: list[StackConfig] = field(default_factory=list)
    persisted: list[str] = field(default_factory=list)

    def approved(self, config: StackConfig, model: str) -> Version | None:
        return self.newest

    def persist(self, path: Path, message: str) -> None:
        self.persisted.append(message)

    def apply(self, stack: str, endpoint: str) -> flow.Applied:
        self.deployed.append(stack_files.load(stack))
        return self.applies.pop(0) if self.applies else flow.Applied(True)

    def analyze(self, config: StackConfig, endpoint: str, *, since: str) -> Verdict:
        return self.verdicts.pop(0)


def advance(backend: Scripted, **kwargs) -> flow.Outcome:
    return flow.advance(flow.RolloutRequest(stack=STACK, endpoint=ENDPOINT, **kwargs), backend, on_output=lambda _: None)


def _file(stacks: Path) -> str:
    return (stacks / f"Pulumi.{STACK}.yaml").read_text()


PASSED = Verdict("passed", "agreement 0.99 >= 0.95", {"mirrored": 1200})


def test_a_newer_approved_version_goes_into_shadow_beside_the_champion(stacks):
    backend = Scripted()
    outcome = advance(backend)
    assert outcome.step == "shadow" and outcome.candidate == V5
    endpoint = stack_files.load(STACK).endpoints[ENDPOINT]
    assert endpoint.traffic.mode == "shadow"
    assert {n: v.model_version for n, v in endpoint.production_variants().items()} == {"champion": 1}
    assert {n: v.model_data_url for n, v in endpoint.shadow_variants().items()} == {state.CANDIDATE_VARIANT: V5.model_data_url}
    assert len(backend.deployed) == 1
    [record] = read_audit("demo")
    assert (record["action"], record["phase"], record["candidate"]["version"]) == ("rollout", "shadow", 5)
    assert "+          mode: shadow" in outcome.diff


def test_the_whole_rollout_pins_the_candidate_in_the_champions_place_and_keeps_the_ab_shape(stacks):
    before = stack_files.load(STACK).endpoints[ENDPOINT]
    backend = Scripted(verdicts=[Verdict("insufficient", "300 of 1000 mirrored", {}), PASSED])
    assert advance(backend).step == "shadow"
    waiting = advance(backend)
    assert waiting.step == "waiting" and waiting.reason == "300 of 1000 mirrored"
    done = advance(backend)
    assert done.step == "pinned", done.reason
    after = stack_files.load(STACK).endpoints[ENDPOINT]
    assert after.traffic.mode == before.traffic.mode == "ab"
    assert after.traffic.variants["champion"].model_version == 5
    assert after.traffic.variants["champion"].weight == before.traffic.variants["champion"].weight
    assert after.traffic.variants["challenger"] == before.traffic.variants["challenger"]
    phases = [r["phase"] for r in read_audit("demo")]
    assert phases == ["shadow", "pinned"]
    history = champion_history(read_audit("demo"), team="demo", environment="local", model="fraud-detector", refs={"scoring/champion"})
    assert [h["version"] for h in history] == [1, 5]  # `mlops rollback` can return to v1
    assert advance(backend).step == "idle"  # v5 is the champion now


def test_a_refused_analysis_restores_the_file_exactly_and_the_version_is_not_tried_again(stacks):
    original = _file(stacks)
    backend = Scripted(verdicts=[Verdict("failed", "agreement 0.71 < 0.95", {"agreement": 0.71})])
    advance(backend)
    refused = advance(backend)
    assert refused.step == "refused" and "agreement 0.71 < 0.95" in refused.reason
    assert _file(stacks) == original
    assert backend.deployed[-1].endpoints[ENDPOINT].traffic.mode == "ab"
    again = advance(backend)
    assert again.step == "idle" and "ended refused" in again.reason


def test_an_update_that_rolls_back_on_its_alarms_returns_the_file_to_the_champion(stacks):
    original = _file(stacks)
    backend = Scripted(verdicts=[PASSED], applies=[flow.Applied(True), flow.Applied(False, "alarm demo-local-scoring-champion-5xx-errors in ALARM during the bake")])
    advance(backend)
    outcome = advance(backend)
    assert outcome.step == "rolled_back" and "5xx-errors" in outcome.reason
    assert _file(stacks) == original
    assert [r["phase"] for r in read_audit("demo")] == ["shadow", "rolled_back"]
    # each file change was persisted before it was applied, and said what it was
    assert backend.persisted == ["rollout demo-local/scoring: v5 into shadow", "rollout demo-local/scoring: pin v5 (shadow analysis passed)",
                                 "rollout demo-local/scoring: v5 rolled_back, champion v1 restored"]


def test_a_dry_run_changes_nothing_and_shows_the_diff(stacks):
    original = _file(stacks)
    outcome = advance(Scripted(), dry_run=True)
    assert outcome.step == "shadow" and "mode: shadow" in outcome.diff
    assert _file(stacks) == original and read_audit("demo") == []


def test_off_where_the_environment_does_not_opt_in_and_idle_without_a_newer_version(stacks):
    base = stacks / "teams" / "demo.yaml"
    opted_in = base.read_text()
    base.write_text(opted_in.replace(", automatic: true}", "}"))
    off = advance(Scripted())
    assert off.step == "off" and "default on in dev only, this is local" in off.reason
    base.write_text(opted_in)
    assert advance(Scripted(newest=Version(1, f"{ARTIFACTS}/models/fraud-detector/1/model.tar.gz"))).step == "idle"
    assert advance(Scripted(newest=None)).reason == "the model's package group has no Approved version"


def test_an_unknown_endpoint_is_refused_naming_the_endpoints(stacks):
    with pytest.raises(PromotionUsageError, match="has no endpoint 'nope'; endpoints: scoring"):
        flow.advance(flow.RolloutRequest(stack=STACK, endpoint="nope"), Scripted(), on_output=lambda _: None)


@pytest.mark.parametrize("environment, expected", [("dev", True), ("staging", False), ("prod", False)])
def test_automatic_rollout_defaults_on_in_dev_only_and_never_without_guardrails(environment, expected):
    from specs.config.schema import AllAtOnceRollout, NoRollout

    endpoint = next(iter(stack_files.load("fraud-dev").endpoints.values()))
    guarded = endpoint.model_copy(update={"rollout": AllAtOnceRollout(strategy="all_at_once")})
    assert guarded.automatic_rollout(environment) is expected
    unguarded = endpoint.model_copy(update={"rollout": NoRollout(strategy="none")})
    assert unguarded.automatic_rollout(environment) is False


# ---- what counts as applied: DescribeEndpoint on the planned configuration ---------------------

def test_a_step_is_applied_only_when_describe_endpoint_shows_the_planned_configuration_in_service():
    from mlops.rollout.backends import served

    on = {"EndpointName": "e", "EndpointStatus": "InService", "EndpointConfigName": "e-new"}
    assert served(on, "e-new").ok
    rolled_back = {**on, "EndpointConfigName": "e-old", "FailureReason": "Rolled back: alarm(s) e-5xx in ALARM"}
    outcome = served(rolled_back, "e-new")
    # What pulumi up reports as success when SageMaker rolled the update back (terraform-provider-aws#46663).
    assert not outcome.ok and outcome.reason == "e is InService on e-old, not InService on e-new: Rolled back: alarm(s) e-5xx in ALARM"
    assert served({**on, "EndpointStatus": "UpdateRollbackFailed"}, "e-new").reason == "e is UpdateRollbackFailed on e-new, not InService on e-new"


def test_the_planned_configuration_is_read_from_the_offline_plan():
    from mlops.plan import plan_stack
    from mlops.rollout.backends import planned_config

    plan = plan_stack("demo-local")
    endpoint = next(r for r in plan.resources if r.type == "aws:sagemaker/endpoint:Endpoint")
    config = planned_config(plan, endpoint.inputs["name"])
    assert config in {r.inputs["name"] for r in plan.resources if r.type == "aws:sagemaker/endpointConfiguration:EndpointConfiguration"}
    with pytest.raises(ValueError, match="no endpoint named nope"):
        planned_config(plan, "nope")
