"""`mlops promote` and `mlops rollback` against moto's server, each environment in its own account.

The fraud team's shipped stack files (in a private copy of stacks/) pin staging's champion to
version 1 (candidate 2 in shadow) and prod's to 1 (challenger 2); `world` registers those versions
in staging's and prod's registries and buckets, and each test registers dev versions to promote.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from specs.config import stack_files
from mlops import promote
from mlops.cli import app
from promotion_support import ACCOUNTS, MODEL, model_schema

BETTER = {"auc": 0.92, "log_loss": 0.30, "accuracy": 0.93}
STAGING_URL = "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/{}/model.tar.gz"
GATES = ["approved", "metrics", "regression", "schema", "policy"]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def promote_cli(version: int, *extra: str, source: str = "dev", target: str = "staging"):
    return run("promote", "--team", "fraud", "--model", MODEL, "--from", source, "--to", target, "--version", str(version), *extra)


def snapshot(world, stacks: Path) -> dict:
    """Everything a promotion may change: stack files, audit log, registries, buckets."""
    audit = stacks / "audit" / "fraud.jsonl"
    return {
        "files": {p.name: p.read_bytes() for p in sorted(stacks.glob("Pulumi.*.yaml"))},
        "audit": audit.read_bytes() if audit.exists() else None,
        "versions": {env: e.versions() for env, e in world.items()},
        "keys": {env: e.keys() for env, e in world.items()},
    }


def champion(stack: str = "fraud-staging") -> tuple[int, str]:
    variant = stack_files.load(stack).endpoints["scoring"].production_variants()["champion"]
    return variant.model_version, variant.model_data_url


def audit_records(stacks: Path) -> list[dict]:
    return [json.loads(line) for line in (stacks / "audit" / "fraud.jsonl").read_text().splitlines()]


def test_promotes_an_approved_better_model_into_staging(world, stacks):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    dev_keys = world["dev"].keys()
    before = (stacks / "Pulumi.fraud-staging.yaml").read_text()

    result = promote_cli(version)

    assert result.exit_code == 0, result.output
    assert "promoted: fraud-staging pins fraud-detector version 3 (scoring/champion)" in result.output
    # Registered in staging's own account, Approved, with the source recorded and the metrics kept.
    assert world["staging"].versions() == [1, 2, 3]
    package = world["staging"].describe(3)
    assert package["ModelPackageArn"].startswith(f"arn:aws:sagemaker:eu-west-1:{ACCOUNTS['staging']}:")
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["source_package_arn"] == world["dev"].packages[version]
    assert package["CustomerMetadataProperties"]["metric_auc"] == "0.92"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == STAGING_URL.format(3)
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/3/metrics.json"
    # The artifact's bytes were copied into staging's bucket; dev was only read.
    source = world["dev"].s3.get_object(Bucket=world["dev"].bucket, Key=f"models/{MODEL}/{version}/model.tar.gz")["Body"].read()
    copied = world["staging"].s3.get_object(Bucket=world["staging"].bucket, Key=f"models/{MODEL}/3/model.tar.gz")["Body"].read()
    assert copied == source
    assert world["dev"].keys() == dev_keys
    # The pin: champion only, the shadow candidate untouched, the file still valid.
    assert champion() == (3, STAGING_URL.format(3))
    assert stack_files.load("fraud-staging").endpoints["scoring"].shadow_variants()["candidate"].model_version == 2
    after = (stacks / "Pulumi.fraud-staging.yaml").read_text()
    changed = [line for line in promote.unified_diff(before, after, path="f").splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert len(changed) == 4 and all("model_version" in line or "model_data_url" in line for line in changed)
    # One audit record with everything the review needs.
    [record] = audit_records(stacks)
    assert {k: record[k] for k in ("action", "who", "from", "to", "stack", "source_version", "target_version", "model_data_url", "variants", "file")} == {
        "action": "promote", "who": "test-operator", "from": "dev", "to": "staging", "stack": "fraud-staging",
        "source_version": version, "target_version": 3, "model_data_url": STAGING_URL.format(3),
        "variants": ["scoring/champion"], "file": "stacks/Pulumi.fraud-staging.yaml",
    }
    assert record["source_package_arn"] == world["dev"].packages[version]
    assert record["target_package_arn"] == package["ModelPackageArn"]
    assert record["previous"]["version"] == 1
    assert record["metrics"] == BETTER
    assert [(g["name"], g["passed"]) for g in record["gates"]] == [(g, True) for g in GATES]
    assert record["file_sha256"] == hashlib.sha256(after.encode()).hexdigest()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["when"])


def test_default_version_is_the_newest_approved_one(world, stacks):
    approved = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    world["dev"].register(metrics=BETTER, approved=False)

    result = run("promote", "--team", "fraud", "--model", MODEL, "--from", "dev", "--to", "staging")

    assert result.exit_code == 0, result.output
    assert audit_records(stacks)[0]["source_version"] == approved


def test_refuses_an_unapproved_model_and_changes_nothing(world, stacks):
    version = world["dev"].register(metrics=BETTER, approved=False, faced=[world["staging"].faced(1)])
    before = snapshot(world, stacks)

    result = promote_cli(version)

    assert result.exit_code == 1, result.output
    assert "promote refused: 1 gate(s) failed" in result.output
    assert f"  - approved: {world['dev'].packages[version]} is PendingManualApproval; approve it in fraud-dev-fraud-detector first" in result.output
    assert snapshot(world, stacks) == before


def test_refuses_a_model_that_regresses_against_the_champion_beyond_the_margin(world, stacks):
    # auc 0.865 clears staging's gate (0.85) but is 0.015 below the champion's 0.88 (margin 0.01).
    version = world["dev"].register(metrics={"auc": 0.865, "log_loss": 0.30, "accuracy": 0.9}, faced=[world["staging"].faced(1)])
    before = snapshot(world, stacks)

    result = promote_cli(version)

    assert result.exit_code == 1, result.output
    assert "regression: against champion fraud-staging-fraud-detector version 1, evidence candidate evaluation s3://fraud-dev-artifacts-111111111111/models/fraud-detector/1/evaluation/evaluation.json" in result.output
    assert "auc candidate 0.8650 (95% CI 0.8550..0.8750) vs champion 0.8800 (95% CI 0.8700..0.8900): paired difference -0.0150 (95% CI -0.0250..-0.0050), worse by 0.0150 exceeds max_regression 0.01" in result.output
    assert "pass metrics" in result.output
    assert snapshot(world, stacks) == before


def test_refuses_a_schema_incompatible_model_naming_each_mismatch(world, stacks):
    schema = model_schema()
    next(f for f in schema["features"] if f["name"] == "hour_of_day")["type"] = "Fractional"
    schema["features"].append({"name": "device_id", "type": "String", "nullable": False, "categories": ["a"]})
    version = world["dev"].register(metrics=BETTER, schema=schema, faced=[world["staging"].faced(1)])
    before = snapshot(world, stacks)

    result = promote_cli(version)

    assert result.exit_code == 1, result.output
    assert "input 'hour_of_day' is Fractional in the model, Integral in the target" in result.output
    assert "input 'device_id' is not a feature of the target's feature group 'transactions'" in result.output
    assert snapshot(world, stacks) == before


def test_a_refusal_lists_every_failed_gate(world, stacks):
    version = world["dev"].register(metrics={"auc": 0.80, "log_loss": 0.5}, approved=False)

    result = promote_cli(version)

    assert result.exit_code == 1
    assert "promote refused: 3 gate(s) failed" in result.output
    for gate in ("approved", "metrics", "regression"):
        assert f"  - {gate}: " in result.output


def test_promoting_the_pinned_version_again_changes_nothing(world, stacks):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    assert promote_cli(version).exit_code == 0
    after_first = snapshot(world, stacks)

    again = promote_cli(version)

    assert again.exit_code == 0, again.output
    assert "already pins version 3; nothing changed" in again.output
    assert snapshot(world, stacks) == after_first  # no package, no file change, no audit line


def test_a_package_left_by_an_interrupted_promotion_is_reused_not_registered_twice(world, stacks):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    original = (stacks / "Pulumi.fraud-staging.yaml").read_bytes()
    assert promote_cli(version).exit_code == 0
    # As if the run had died after registering: the pin and the audit line never landed.
    (stacks / "Pulumi.fraud-staging.yaml").write_bytes(original)
    (stacks / "audit" / "fraud.jsonl").unlink()

    result = promote_cli(version)

    assert result.exit_code == 0, result.output
    assert "note: reusing arn:aws:sagemaker:eu-west-1:222222222222:model-package/fraud-staging-fraud-detector/3" in result.output
    assert world["staging"].versions() == [1, 2, 3]
    assert champion() == (3, STAGING_URL.format(3))


def test_check_runs_the_gates_against_aws_shows_the_diff_and_changes_nothing(world, stacks):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    before = snapshot(world, stacks)

    result = promote_cli(version, "--check")

    assert result.exit_code == 0, result.output
    assert "+              model_version: 3" in result.output
    assert "check: the gates pass; nothing was changed" in result.output
    assert snapshot(world, stacks) == before


def test_promotes_from_staging_to_prod_into_prods_account(world, stacks):
    version = world["staging"].register(metrics=BETTER, schema=model_schema("staging"), faced=[world["prod"].faced(1)])

    result = promote_cli(version, source="staging", target="prod")

    assert result.exit_code == 0, result.output
    assert world["prod"].versions() == [1, 2, 3]
    assert champion("fraud-prod") == (3, "s3://fraud-prod-artifacts-333333333333/models/fraud-detector/3/model.tar.gz")
    assert stack_files.load("fraud-prod").endpoints["scoring"].production_variants()["challenger"].model_version == 2


def test_rollback_pins_the_previous_champion_with_the_same_audit(world, stacks):
    first = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    # Its evaluation faced staging's champion by then, staging 3: named by the dev artifact it was promoted from.
    second = world["dev"].register(metrics={**BETTER, "auc": 0.925}, faced=[world["dev"].faced(first, BETTER)])
    assert promote_cli(first).exit_code == 0   # staging 3
    assert promote_cli(second).exit_code == 0  # staging 4
    assert champion() == (4, STAGING_URL.format(4))

    result = run("rollback", "--team", "fraud", "--env", "staging")

    assert result.exit_code == 0, result.output
    assert "rolled back: fraud-staging pins version 3 again" in result.output
    assert champion() == (3, STAGING_URL.format(3))
    record = audit_records(stacks)[-1]
    assert (record["action"], record["from"], record["to"], record["target_version"], record["previous"]["version"]) == ("rollback", "staging", "staging", 3, 4)
    assert [g["name"] for g in record["gates"]] == ["approved", "metrics", "schema", "policy"]
    assert record["file_sha256"] == hashlib.sha256((stacks / "Pulumi.fraud-staging.yaml").read_bytes()).hexdigest()

    # Again: back to the champion the file pinned before the first promotion.
    assert run("rollback", "--team", "fraud", "--env", "staging").exit_code == 0
    assert champion() == (1, STAGING_URL.format(1))
    nothing_left = run("rollback", "--team", "fraud", "--env", "staging")
    assert nothing_left.exit_code == 2
    assert "is the first champion of fraud-staging in the audit log; there is no previous one" in nothing_left.output


def test_rollback_refuses_when_the_file_was_changed_outside_promote(world, stacks):
    assert promote_cli(world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])).exit_code == 0
    path = stacks / "Pulumi.fraud-staging.yaml"
    path.write_text(path.read_text().replace("model_version: 3", "model_version: 2").replace("fraud-detector/3/", "fraud-detector/2/"))

    result = run("rollback", "--team", "fraud", "--env", "staging")

    assert result.exit_code == 2
    assert "the file was changed outside promote/rollback, so the previous champion is unknown" in result.output


def test_rollback_without_a_promotion_in_the_audit_log_is_a_user_error(world, stacks):
    result = run("rollback", "--team", "fraud", "--env", "prod")
    assert result.exit_code == 2
    assert "records no promotion of fraud-detector into fraud-prod" in result.output


def test_two_concurrent_promotions_serialize_and_leave_a_valid_file(world, stacks):
    # Whichever runs second faces the other's promoted artifact as the champion: each evaluation faced both.
    first = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1), world["dev"].faced(2, {**BETTER, "auc": 0.921})])
    second = world["dev"].register(metrics={**BETTER, "auc": 0.921}, faced=[world["staging"].faced(1), world["dev"].faced(first, BETTER)])
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlops.cli", "promote", "--team", "fraud", "--model", MODEL, "--from", "dev", "--to", "staging", "--version", str(v)],
            cwd=stack_files.ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for v in (first, second)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    records = audit_records(stacks)  # every line parses
    assert sorted(r["source_version"] for r in records) == [first, second]
    assert sorted(r["target_version"] for r in records) == [3, 4]
    # Serialized: the second saw the first's pin as its previous champion, and its pin is the file's.
    assert records[1]["previous"]["version"] == records[0]["target_version"]
    version, url = champion()  # the file loads and validates
    assert (version, url) == (records[1]["target_version"], STAGING_URL.format(records[1]["target_version"]))
    assert records[1]["file_sha256"] == hashlib.sha256((stacks / "Pulumi.fraud-staging.yaml").read_bytes()).hexdigest()
    assert world["staging"].versions() == [1, 2, 3, 4]
    assert not list(stacks.glob(".Pulumi.*.tmp"))


def test_apply_without_the_pulumi_cli_says_so_and_changes_nothing(world, stacks, tmp_path, monkeypatch):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    before = snapshot(world, stacks)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    result = promote_cli(version, "--apply")

    assert result.exit_code == 2
    assert "--apply needs the Pulumi CLI, which is not on PATH" in result.output
    assert "nothing was changed" in result.output
    assert snapshot(world, stacks) == before


def test_apply_runs_pulumi_up_through_the_automation_api_after_the_pin(world, stacks, monkeypatch):
    from pulumi import automation

    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/opt/pulumi/bin/pulumi" if name == "pulumi" else real_which(name, *a, **k))
    monkeypatch.setattr(stack_files, "ROOT", stacks.parent)  # Pulumi's stackConfigDir is then our copy
    calls = []

    class Stack:
        def __init__(self, stack_name: str, work_dir: str):
            self.name, self.work_dir = stack_name, work_dir

        def up(self, *, on_output, policy_packs):
            calls.append((self.name, self.work_dir, policy_packs, champion()[0]))
            on_output("Resources: 3 changed")

    monkeypatch.setattr(automation, "select_stack", lambda *, stack_name, work_dir: Stack(stack_name, work_dir))

    result = promote_cli(version, "--apply")

    assert result.exit_code == 0, result.output
    assert calls == [("fraud-staging", str(stacks.parent), [str(stacks.parent / "policypack")], 3)]
    assert "Resources: 3 changed" in result.output and "`pulumi up` ran" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "staging", "--to", "dev"), "cannot promote from staging to dev: promotion moves forward (dev -> staging -> prod)"),
    (("--from", "dev", "--to", "qa"), "--to 'qa' is not allowed; allowed: dev, staging, prod"),
    (("--from", "dev", "--to", "staging", "--version", "42"), "version 42 is not in fraud-dev-fraud-detector; versions: 1"),
    (("--from", "dev", "--to", "staging", "--variant", "blue"), "has a variant 'blue'; variants: candidate, champion"),
    (("--from", "dev", "--to", "staging", "--dry-run", "--apply"), "--dry-run and --apply exclude each other"),
    (("--from", "dev", "--to", "staging", "--check", "--apply"), "--check and --apply exclude each other"),
])
def test_user_mistakes_exit_64_with_what_is_allowed(world, stacks, args, message):
    world["dev"].register(metrics=BETTER)
    result = run("promote", "--team", "fraud", "--model", MODEL, *args)
    assert result.exit_code == 64, result.output
    assert message in result.output


def test_unknown_model_and_team_are_usage_errors(world, stacks):
    unknown_model = run("promote", "--team", "fraud", "--model", "churn", "--from", "dev", "--to", "staging")
    assert unknown_model.exit_code == 64
    assert "model 'churn' is not defined in fraud-dev; models: fraud-detector" in unknown_model.output
    unknown_team = run("promote", "--team", "risk", "--model", MODEL, "--from", "dev", "--to", "staging")
    assert unknown_team.exit_code == 64
    assert "no stack risk-dev" in unknown_team.output and "teams: demo, fraud, pricing" in unknown_team.output


def test_each_environment_uses_its_own_role_or_the_ambient_credentials(aws, monkeypatch):
    monkeypatch.setenv("MLOPS_AWS_ROLE_ARN_PROD", "arn:aws:iam::333333333333:role/deployer")
    monkeypatch.delenv("MLOPS_AWS_PROFILE_PROD", raising=False)
    monkeypatch.delenv("MLOPS_AWS_ROLE_ARN_DEV", raising=False)
    monkeypatch.delenv("MLOPS_AWS_PROFILE_DEV", raising=False)
    assert promote.session_for("prod", "eu-west-1").client("sts").get_caller_identity()["Account"] == "333333333333"
    assert promote.session_for("dev", "eu-west-1").client("sts").get_caller_identity()["Account"] == "123456789012"
    monkeypatch.setenv("MLOPS_AWS_PROFILE_PROD", "prod-admin")
    with pytest.raises(promote.PromotionError, match="both MLOPS_AWS_PROFILE_PROD and MLOPS_AWS_ROLE_ARN_PROD are set"):
        promote.session_for("prod", "eu-west-1")
