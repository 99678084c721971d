"""The regression gate's evidence, against moto's server: the candidate's own evaluation when it faced the
target's champion, a refusal naming `--evaluation-data` when there is none, and the evidence in the audit
record and the `--json` outcome. The evaluation.json documents are crafted per docs/contracts.md section 8
(the maths is `mlops-train evaluate`'s, tested with the training container)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.validate import validate_parameters
from typer.testing import CliRunner

from mlops.cli import app
from mlops.promote import flow
from promotion_support import ACCOUNTS, MODEL, TEAM

BETTER = {"auc": 0.92, "log_loss": 0.30, "accuracy": 0.93}
DEV_EVALUATION = "s3://fraud-dev-artifacts-111111111111/models/fraud-detector/{}/evaluation/evaluation.json"


def promote_cli(version: int, *extra: str):
    return CliRunner().invoke(app, ["promote", "--team", TEAM, "--model", MODEL, "--from", "dev", "--to", "staging", "--version", str(version), *extra])


def audit(stacks: Path) -> list[dict]:
    path = stacks / "audit" / f"{TEAM}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request promotion sends, validated against botocore's service model as it goes out."""
    names: list[str] = []
    real = flow.session_for

    def check(params: dict, model, **_) -> None:
        names.append(model.name)
        validate_parameters(params, model.input_shape)

    def session_for(environment: str, region: str):
        session = real(environment, region)
        session.events.register("provide-client-params.*.*", check)
        return session

    monkeypatch.setattr(flow, "session_for", session_for)
    return names


def test_the_candidates_own_evaluation_against_the_champion_decides_and_is_recorded(world, stacks, tmp_path, sent):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])
    outcome = tmp_path / "outcome.json"

    result = promote_cli(version, "--json", str(outcome))

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert (f"pass regression: against champion fraud-staging-fraud-detector version 1, evidence candidate evaluation "
            f"{DEV_EVALUATION.format(version)} (champion entry 'scoring/champion'; slice validation: 800 rows labelled "
            "2026-11-01T00:00:00Z .. 2026-11-30T23:00:00Z") in out
    assert "auc candidate 0.9200 (95% CI 0.9100..0.9300) vs champion 0.8800 (95% CI 0.8700..0.8900): paired difference +0.0400" in out
    assert "fraud-staging gates, on the candidate evaluation's slice: auc 0.92 >= 0.85" in out
    record = audit(stacks)[-1]
    assert record["evidence"]["kind"] == "candidate evaluation"
    assert record["evidence"]["evaluation"] == DEV_EVALUATION.format(version)
    assert record["evidence"]["decision"]["passed"] is True
    assert record["evidence"]["slice"]["rows"] == 800
    doc = json.loads(outcome.read_text())
    assert (doc["status"], doc["failed_gates"], doc["evidence"]) == ("promoted", [], record["evidence"])
    assert {"DescribeModelPackage", "GetObject", "CreateModelPackage", "PutObject"} <= set(sent)


def test_a_higher_self_reported_auc_does_not_win_when_the_shared_slice_says_worse(world, stacks, tmp_path, sent):
    # Self-reported on dev's own validation split: 0.95 against the champion's 0.88. On the shared slice: 0.86 vs 0.88.
    version = world["dev"].register(
        metrics={"auc": 0.95, "log_loss": 0.20, "accuracy": 0.95},
        shared={"auc": 0.86, "log_loss": 0.36, "accuracy": 0.89}, faced=[world["staging"].faced(1)],
    )
    outcome = tmp_path / "outcome.json"

    result = promote_cli(version, "--json", str(outcome))

    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "promote refused: 1 gate(s) failed" in out
    assert "auc candidate 0.8600 (95% CI 0.8500..0.8700) vs champion 0.8800 (95% CI 0.8700..0.8900): paired difference -0.0200 (95% CI -0.0300..-0.0100), worse by 0.0200 exceeds max_regression 0.01" in out
    assert audit(stacks) == []
    assert world["staging"].versions() == [1, 2]
    doc = json.loads(outcome.read_text())
    assert (doc["status"], doc["failed_gates"]) == ("refused", ["regression"])
    assert doc["evidence"]["evaluation"] == DEV_EVALUATION.format(version)


def _feature_group(world) -> None:
    """staging's feature group with an offline store, its capture and features buckets, all empty: no labelled
    data in any window."""
    for purpose in ("features", "capture"):
        world["staging"].s3.create_bucket(Bucket=f"fraud-staging-{purpose}-{ACCOUNTS['staging']}", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    world["staging"].sagemaker.create_feature_group(
        FeatureGroupName="fraud-staging-transactions", RecordIdentifierFeatureName="transaction_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": "transaction_id", "FeatureType": "String"}, {"FeatureName": "event_time", "FeatureType": "String"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://fraud-staging-features-{ACCOUNTS['staging']}/offline"}},
        RoleArn=f"arn:aws:iam::{ACCOUNTS['staging']}:role/fraud-staging-feature-store",
    )


def test_with_a_champion_and_no_evidence_the_regression_gate_fails_naming_evaluation_data(world, stacks, sent):
    _feature_group(world)
    # Its evaluation faced staging's shadow candidate, not the champion: no evidence about the champion.
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(2)])
    before = (stacks / "Pulumi.fraud-staging.yaml").read_bytes()

    result = promote_cli(version)

    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "promote refused: 1 gate(s) failed" in out
    assert "- regression: no shared evaluation against champion fraud-staging-fraud-detector version 1" in out
    assert (f"the candidate's evaluation {DEV_EVALUATION.format(version)} compared it with scoring/champion="
            "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/2/model.tar.gz, not with the target's champion") in out
    assert "a shared evaluation on the target's recent labelled data was not possible: `mlops-train dataset`" in out
    assert "supply labelled data with --evaluation-data PATH|s3://PREFIX" in out
    assert (stacks / "Pulumi.fraud-staging.yaml").read_bytes() == before
    assert "DescribeFeatureGroup" in sent


def test_a_candidate_without_an_evaluation_is_refused_when_the_target_has_a_champion(world, stacks):
    _feature_group(world)
    version = world["dev"].register(metrics=BETTER)

    result = promote_cli(version)

    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "the candidate package carries no evaluation (mlops:evaluation is not in its CustomerMetadataProperties)" in out
    assert "`mlops-train dataset` (labelled data of the last 30 days) exited 2: no .parquet files under s3://fraud-staging-features-222222222222/offline" in out
    assert "--evaluation-data" in out


def test_evaluation_data_that_is_not_a_directory_is_a_usage_error(world, stacks, tmp_path):
    version = world["dev"].register(metrics=BETTER, faced=[world["staging"].faced(1)])

    result = promote_cli(version, "--evaluation-data", str(tmp_path / "nowhere"))

    assert result.exit_code == 64, result.output
    assert "--evaluation-data" in result.output and "no such directory" in result.output
