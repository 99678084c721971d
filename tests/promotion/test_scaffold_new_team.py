"""`mlops new-team`: templates rendered, validated and planned; nothing overwritten or left behind."""
from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from specs.config import stack_files
from mlops.cli import app

ARGS = ["--account-dev", "444444444444", "--account-staging", "555555555555", "--account-prod", "666666666666",
        "--region", "eu-central-1", "--owner", "churn-ml@example.com", "--cost-center", "cc-1234"]
FILES = ["teams/churn.yaml", "Pulumi.churn-dev.yaml", "Pulumi.churn-staging.yaml", "Pulumi.churn-prod.yaml"]


def new_team(name: str, *args: str):
    return CliRunner().invoke(app, ["new-team", name, *args])


def test_new_team_writes_a_stack_per_environment_that_plans_cleanly(stacks: Path):
    result = new_team("churn", *ARGS)

    assert result.exit_code == 0, result.output
    for rel in FILES:
        assert (stacks / rel).is_file(), rel
    for env, account in (("dev", "444444444444"), ("staging", "555555555555"), ("prod", "666666666666")):
        assert f"churn-{env}: valid, plans" in result.output
        config = stack_files.load(f"churn-{env}")
        assert (config.aws.account_id, config.aws.region, config.environment) == (account, "eu-central-1", env)
        assert config.tags == {"CostCenter": "cc-1234", "Owner": "churn-ml@example.com"}
        assert config.monitoring.notifications.emails == ["churn-ml@example.com"]
    # The CLI's own gate agrees: `mlops plan` exits 0 (no configuration error, no mandatory violation).
    for env in ("dev", "staging", "prod"):
        planned = CliRunner().invoke(app, ["plan", "--stack", f"churn-{env}", "--quiet"])
        assert planned.exit_code == 0, planned.output
    assert yaml.safe_load((stacks / "Pulumi.churn-prod.yaml").read_text())["config"]["aws:allowedAccountIds"] == ["666666666666"]


def test_new_team_never_overwrites_an_existing_team(stacks: Path):
    before = {p: p.read_bytes() for p in stacks.rglob("*.yaml")}

    result = new_team("fraud", *ARGS)

    assert result.exit_code == 64
    assert "team 'fraud' already has" in result.output and "never overwrites" in result.output
    assert {p: p.read_bytes() for p in stacks.rglob("*.yaml")} == before


def test_bad_arguments_exit_64_naming_the_flag_and_write_nothing(stacks: Path):
    cases = [
        (["Churn", *ARGS], "NAME 'Churn'"),
        (["churn", *ARGS[:1], "4444", *ARGS[2:]], "--account-dev '4444'"),
        (["churn", *ARGS[:9], "not-an-email", *ARGS[10:]], "--owner 'not-an-email'"),
        (["churn", *ARGS[:7], "europe", *ARGS[8:]], "--region 'europe'"),
        (["churn", *ARGS[:11], "cc#1"], "--cost-center 'cc#1'"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(app, ["new-team", *args])
        assert result.exit_code == 64, (args, result.output)
        assert message in result.output, result.output
        assert not [rel for rel in FILES if (stacks / rel).exists()]


def test_a_scaffold_that_does_not_validate_is_removed_again(stacks: Path):
    # A legal slug so long that the names AWS derives from it (buckets, roles) exceed AWS's limits.
    name = "churn-" + "x" * 40
    result = new_team(name, *ARGS)

    assert result.exit_code == 2
    assert "the scaffold did not validate; nothing was kept" in result.output
    assert "AWS allows 63" in result.output or "AWS allows 64" in result.output
    assert not list(stacks.rglob(f"*{name}*"))
