"""`mlops plan`: the real program under Pulumi's mock runtime, offline."""
from __future__ import annotations

import json

from specs.config import stack_files
from mlops.plan import plan_stack


def test_plan_all_plans_every_shipped_stack_and_writes_a_json_plan(cli, tmp_path):
    out = tmp_path / "plan.json"
    result = cli("plan", "--all", "--quiet", "--json", str(out))
    assert result.exit_code == 0, result.stdout + result.stderr
    doc = json.loads(out.read_text())
    assert [p["stack"] for p in doc["plans"]] == stack_files.list_stacks()
    assert doc["failed"] == []
    for plan in doc["plans"]:
        assert plan["resourceCount"] == len(plan["resources"]) > 40
        assert plan["countByType"]["aws:sagemaker/endpoint:Endpoint"] >= 1
        assert not [f for f in plan["policyFindings"] if f["level"] == "mandatory"]
    assert "0 mandatory policy violation(s)" in result.stdout


def test_plan_prints_the_resource_tree_with_parents_and_key_properties(cli):
    result = cli("plan", "--stack", "fraud-prod")
    assert result.exit_code == 0, result.stderr
    assert "mlops:endpoint:Endpoint fraud-prod-scoring" in result.stdout
    assert "aws:sagemaker/endpoint:Endpoint fraud-prod-scoring-endpoint  name=fraud-prod-scoring" in result.stdout
    assert "fraud-prod: resources by type" in result.stdout


def test_planned_resources_carry_their_parent_component():
    plan = plan_stack("fraud-staging")
    endpoint = next(r for r in plan.resources if r.type == "mlops:endpoint:Endpoint")
    children = [r for r in plan.resources if r.parent == endpoint.urn]
    assert sorted(r.type for r in children) == [
        "aws:sagemaker/endpoint:Endpoint",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/model:Model",
        "aws:sagemaker/model:Model",
    ]
    assert all("mlops:endpoint:Endpoint$aws:sagemaker" in r.urn for r in children)
    config = next(r for r in children if r.type.endswith("EndpointConfiguration"))
    assert [v["variantName"] for v in config.inputs["shadowProductionVariants"]] == ["candidate"]
    assert config.inputs["shadowProductionVariants"][0]["initialVariantWeight"] == 0.5


def test_plan_exits_1_on_a_mandatory_policy_violation(cli, edit):
    # Turning alarms off is valid config outside prod, but the policy pack requires them on every variant.
    edit("Pulumi.pricing-dev.yaml", lambda d: d["config"]["mlops:overrides"]["monitoring"].update(alarms=False))
    result = cli("plan", "--stack", "pricing-dev", "--quiet")
    assert result.exit_code == 1
    assert "mandatory variant-alarms: pricing-dev-quotes-endpoint: production variant main has no alarm on ModelLatency, Invocation5XXErrors" in result.stdout


def test_the_json_plan_of_a_stack_is_the_same_bytes_every_time():
    # The mock engine registers children in no fixed order; the plan sorts, so a plan diff in review
    # (or the layout refactor's before/after comparison) shows only real changes.
    first, second = (json.dumps(plan_stack("fraud-prod").to_json(), sort_keys=False) for _ in range(2))
    assert first == second
    doc = json.loads(first)
    urns = [r["urn"] for r in doc["resources"]]
    assert urns == sorted(urns)
