"""What AWS or Pulumi would refuse at deploy time is refused at plan time: regions without SageMaker
(or EKS), two config keys deriving the same name, and a derived name too long because of a key,
reported against the file and field that hold that key."""
from __future__ import annotations

import copy

from specs import naming
from specs.config import rules
from specs.config.schema import region_problem, regions_offering

OVR = "mlops:overrides"


def _fails(cli, stack: str, *expected: str, command: tuple[str, ...] = ("plan",)) -> str:
    result = cli(*command, "--stack", stack)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"
    return result.stderr


def test_a_misspelt_region_gets_a_did_you_mean(cli, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"].update({"aws:region": "eu-wset-1"}))
    _fails(cli, "fraud-prod", "Pulumi.fraud-prod.yaml: aws.region: 'eu-wset-1' is not an AWS region that offers SageMaker; "
           "did you mean 'eu-west-1'? (regions with SageMaker, from botocore: af-south-1,")


def test_a_region_that_does_not_exist_is_refused_by_config_validate(cli, edit):
    edit("Pulumi.pricing-dev.yaml", lambda d: d["config"].update({"aws:region": "eu-west-9"}))
    _fails(cli, "pricing-dev", "Pulumi.pricing-dev.yaml: aws.region: 'eu-west-9' is not an AWS region that offers SageMaker",
           command=("config", "validate"))


def test_regions_come_from_botocore_for_every_partition():
    assert {"eu-west-1", "us-east-1", "cn-north-1", "us-gov-west-1"} <= set(regions_offering("sagemaker"))
    assert region_problem("us-east-1", service="eks", purpose="EKS") is None
    assert "did you mean 'us-west-2'?" in region_problem("us-wset-2", service="eks", purpose="EKS")


def _second_endpoint(d, name: str, variant: str, source: str = "scoring", old_variant: str = "champion"):
    endpoint = copy.deepcopy(d["endpoints"][source])
    endpoint["traffic"]["variants"] = {variant: endpoint["traffic"]["variants"][old_variant]}
    d["endpoints"][name] = endpoint


def test_two_endpoint_variant_pairs_deriving_the_same_names_are_refused_naming_both(cli, edit):
    def collide(d):
        _second_endpoint(d, "fraud-a", "b-c")
        _second_endpoint(d, "fraud-a-b", "c")

    edit("teams/fraud.yaml", collide)
    _fails(cli, "fraud-dev",
           "teams/fraud.yaml: endpoints.fraud-a-b.traffic.variants.c: endpoints.fraud-a.traffic.variants.b-c and "
           "endpoints.fraud-a-b.traffic.variants.c both derive the CloudWatch alarm name 'fraud-dev-fraud-a-b-c-p99-latency' "
           "(and the same 2 other kind(s) of name: Pulumi resource, SageMaker Model); "
           "AWS and Pulumi need each to be unique in the stack: rename one of the keys")


def test_a_collision_between_base_and_override_names_the_override_file(cli, edit):
    def collide(d):
        endpoints = d["config"][OVR]["endpoints"]
        endpoints["scoring-champion"] = {"model": "fraud-detector", "traffic": {"mode": "single", "variants": {"x": {
            "model_version": 1, "model_data_url": "s3://fraud-prod-artifacts-333333333333/models/fraud-detector/1/model.tar.gz",
            "instance_count": 2}}}}
        # endpoint "scoring", variant "champion-x" and endpoint "scoring-champion", variant "x": the same names
        variants = endpoints["scoring"]["traffic"]["variants"]
        variants["champion-x"] = variants.pop("challenger")

    edit("Pulumi.fraud-prod.yaml", collide)
    _fails(cli, "fraud-prod", "Pulumi.fraud-prod.yaml: endpoints.scoring-champion.traffic.variants.x: "
           "endpoints.scoring.traffic.variants.champion-x and endpoints.scoring-champion.traffic.variants.x both derive")


def test_two_models_deriving_the_same_eventbridge_rule_are_refused(cli, edit):
    edit("teams/fraud.yaml", lambda d: d["model_registry"]["models"].update(
        {"fraud-detector-scheduled": d["model_registry"]["models"]["fraud-detector"]}))
    _fails(cli, "fraud-dev", "teams/fraud.yaml: model_registry.models.fraud-detector-scheduled: model_registry.models.fraud-detector "
           "and model_registry.models.fraud-detector-scheduled both derive the EventBridge rule name "
           "'fraud-dev-fraud-detector-scheduled-retrain'")


def test_variant_names_may_repeat_across_endpoints(cli, edit):
    edit("teams/fraud.yaml", lambda d: _second_endpoint(d, "batch", "champion"))
    result = cli("config", "validate", "--stack", "fraud-dev")
    assert result.exit_code == 0, result.stderr


def test_a_key_in_the_team_file_that_makes_a_name_too_long_is_blamed_not_the_team(cli, edit):
    variant = "champion-with-a-very-long-descriptive-variant-name"
    edit("teams/fraud.yaml", lambda d: d["endpoints"]["scoring"]["traffic"]["variants"].update(
        {variant: d["endpoints"]["scoring"]["traffic"]["variants"].pop("champion")}))
    err = _fails(cli, "fraud-dev", f"teams/fraud.yaml: endpoints.scoring.traffic.variants.{variant}: derived SageMaker Model name",
                 f"AWS allows 63; shorten the key(s) 'scoring', '{variant}' (or the team name, 5 characters)")
    assert ": team:" not in err


def test_the_derived_pulumi_names_are_the_names_the_plan_registers(cli):
    from specs.config import stack_files
    from mlops.plan import plan_stack

    plan = plan_stack("fraud-prod")
    urns = {r.urn for r in plan.resources}
    derived = [n for n in rules.derived_names(stack_files.load("fraud-prod")) if n.kind == "Pulumi resource"]
    assert len(derived) >= 8  # endpoint, drift monitor, feature group, model group, 2 models, scaling targets and policies
    for name in derived:
        assert f"urn:pulumi:fraud-prod::mlops::{name.scope}::{name.value}" in urns, name


def test_the_derived_alarm_names_cover_every_alarm_the_plan_creates():
    from specs.config import stack_files
    from mlops.plan import plan_stack

    for stack in ("fraud-prod", "pricing-prod"):
        plan = plan_stack(stack)
        derived = {n.value for n in rules.derived_names(stack_files.load(stack)) if n.kind == "CloudWatch alarm"}
        alarms = {r.inputs["name"] for r in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
        assert alarms and alarms <= derived, sorted(alarms - derived)


def test_collisions_are_reported_once_per_pair_of_keys():
    names = [
        naming.DerivedName("CloudWatch alarm", "x-a-b-c", ("endpoints", "a")),
        naming.DerivedName("CloudWatch alarm", "x-a-b-c", ("endpoints", "a-b")),
        naming.DerivedName("SageMaker Model", "x-a-b-c-0", ("endpoints", "a-b")),
        naming.DerivedName("SageMaker Model", "x-a-b-c-0", ("endpoints", "a")),
        naming.DerivedName("SageMaker ProductionVariant", "v", ("endpoints", "a"), scope="x-a"),
        naming.DerivedName("SageMaker ProductionVariant", "v", ("endpoints", "b"), scope="x-b"),
    ]
    [collision] = naming.collisions(names)
    assert (collision.first, collision.second) == (("endpoints", "a"), ("endpoints", "a-b"))
    assert [n.kind for n in collision.names] == ["CloudWatch alarm", "SageMaker Model"]
    assert naming.collisions(names[4:]) == []  # the same variant name on two endpoints
