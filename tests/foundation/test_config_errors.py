"""Bad stack configs fail `mlops plan` with exit 2 and one precise line per problem, no traceback."""
from __future__ import annotations

import subprocess
import sys

from specs.config import stack_files

OVR = "mlops:overrides"


def _plan_fails(cli, stack: str, *expected: str) -> str:
    result = cli("plan", "--stack", stack)
    assert result.exit_code == 2, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"
    return result.stderr


def test_ab_weight_of_zero_is_rejected_naming_the_field_and_file(cli, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"][OVR]["endpoints"]["scoring"]["traffic"]["variants"]["challenger"].update(weight=0))
    _plan_fails(cli, "fraud-prod", "Pulumi.fraud-prod.yaml: endpoints.scoring.traffic.variants.challenger.weight:",
                "A/B weight must be greater than 0, got 0")


def test_second_production_variant_in_shadow_mode_is_rejected(cli, edit):
    def second(d):
        production = d["config"][OVR]["endpoints"]["scoring"]["traffic"]["production"]
        production["champion-b"] = dict(production["champion"])

    edit("Pulumi.fraud-staging.yaml", second)
    _plan_fails(cli, "fraud-staging", "endpoints.scoring.traffic.production:",
                "production in shadow mode takes exactly one variant", "got 2: champion, champion-b")


def test_misspelt_instance_type_gets_a_did_you_mean(cli, edit):
    edit("teams/fraud.yaml", lambda d: d["endpoints"]["scoring"]["traffic"]["variants"]["champion"].update(instance_type="ml.g5.xlarg"))
    err = _plan_fails(cli, "fraud-dev", "teams/fraud.yaml: endpoints.scoring.traffic.variants.champion.instance_type:",
                      "'ml.g5.xlarg' is not a SageMaker endpoint instance type; did you mean 'ml.g5.xlarge'")
    assert err.startswith("stack fraud-dev: 1 configuration error(s)")


def test_team_name_that_makes_a_derived_name_too_long_is_rejected(cli, stacks):
    team = "fraud-detection-and-chargeback-analytics-emea"
    (stacks / "teams" / f"{team}.yaml").write_text((stacks / "teams" / "fraud.yaml").read_text())
    text = (stacks / "Pulumi.fraud-dev.yaml").read_text().replace("mlops:team: fraud", f"mlops:team: {team}")
    text = text.replace("fraud-dev-artifacts", f"{team}-dev-artifacts")
    (stacks / f"Pulumi.{team}-dev.yaml").write_text(text)
    err = _plan_fails(cli, f"{team}-dev", f"Pulumi.{team}-dev.yaml: team:", "derived SageMaker EndpointConfig name",
                      "AWS allows 63", f"shorten the team name ({len(team)} characters)")
    assert "derived S3 bucket name" in err


def test_missing_cost_center_tag_is_rejected(cli, edit):
    edit("teams/pricing.yaml", lambda d: d["tags"].pop("CostCenter"))
    _plan_fails(cli, "pricing-dev", "teams/pricing.yaml: tags:", "missing mandatory tag(s) CostCenter")


def test_unknown_key_is_rejected_with_the_allowed_keys(cli, edit):
    edit("Pulumi.pricing-prod.yaml", lambda d: d["config"][OVR]["endpoints"]["quotes"]["traffic"]["variants"]["main"].update(instance_cnt=3))
    _plan_fails(cli, "pricing-prod", "Pulumi.pricing-prod.yaml: endpoints.quotes.traffic.variants.main.instance_cnt: unknown key",
                "allowed here: model_version, model_data_url, instance_type, instance_count")


def test_prod_refuses_single_instances_unguarded_rollouts_and_silent_alarms(cli, edit):
    def weaken(d):
        scoring = d["config"][OVR]["endpoints"]["scoring"]
        scoring["traffic"]["variants"]["challenger"]["instance_count"] = 1
        scoring["rollout"] = {"strategy": "none", "wait_minutes": None, "canary_percent": None, "termination_wait_minutes": None}
        scoring["autoscaling"]["min_capacity"] = 1
        d["config"][OVR]["monitoring"]["notifications"] = {"emails": []}

    edit("Pulumi.fraud-prod.yaml", weaken)
    edit("teams/fraud.yaml", lambda d: d["monitoring"]["notifications"].update(emails=[]))
    _plan_fails(
        cli, "fraud-prod",
        "endpoints.scoring.traffic.variants.challenger.instance_count: prod needs at least 2 instances per production variant",
        "endpoints.scoring.rollout.strategy: prod needs a guarded rollout",
        "endpoints.scoring.autoscaling.min_capacity: prod needs at least 2",
        "monitoring.notifications: prod needs a notification target",
    )


def test_training_and_endpoint_instance_types_are_checked_against_their_own_enums(cli, edit):
    # ml.t2.medium hosts endpoints but cannot train.
    edit("teams/pricing.yaml", lambda d: d.setdefault("training", {}).update(instance_type="ml.t2.medium"))
    _plan_fails(cli, "pricing-dev", "training.instance_type:", "'ml.t2.medium' is not a SageMaker training instance type")


def test_stack_name_must_match_team_and_environment(cli, stacks):
    (stacks / "Pulumi.fraud-qa.yaml").write_text((stacks / "Pulumi.fraud-dev.yaml").read_text())
    _plan_fails(cli, "fraud-qa", "stack name 'fraud-qa' must be '<team>-<environment>' = fraud-dev")


def test_model_artifact_outside_the_stacks_own_bucket_is_rejected(cli, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"][OVR]["endpoints"]["scoring"]["traffic"]["variants"]["challenger"].update(
        model_data_url="s3://fraud-dev-artifacts-111111111111/models/fraud-detector/2/model.tar.gz"))
    _plan_fails(cli, "fraud-prod", "endpoints.scoring.traffic.variants.challenger.model_data_url: must be in this stack's artifacts bucket s3://fraud-prod-artifacts-333333333333/")


def test_every_problem_is_reported_at_once(cli, edit):
    def two(d):
        variants = d["config"][OVR]["endpoints"]["scoring"]["traffic"]["variants"]
        variants["challenger"]["weight"] = -1
        variants["champion"]["instance_type"] = "ml.c6i.xlarg"

    edit("Pulumi.fraud-prod.yaml", two)
    err = _plan_fails(cli, "fraud-prod", "2 configuration error(s)", "challenger.weight", "champion.instance_type")
    assert err.count("\n  - ") == 2


def test_config_error_from_the_command_line_has_no_traceback(stacks, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"][OVR]["endpoints"]["scoring"]["traffic"]["variants"]["challenger"].update(weight=0))
    proc = subprocess.run([sys.executable, "-m", "mlops.cli", "plan", "--stack", "fraud-prod"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0] == "stack fraud-prod: 1 configuration error(s)"


def test_unknown_stack_lists_the_stacks_that_exist(cli):
    result = cli("plan", "--stack", "fraud-qa")
    assert result.exit_code == 2
    assert "no such stack" in result.stderr and "fraud-dev, fraud-prod" in result.stderr


def test_every_shipped_stack_validates():
    assert len(stack_files.list_stacks()) >= 7
    for name in stack_files.list_stacks():
        stack_files.load(name)
