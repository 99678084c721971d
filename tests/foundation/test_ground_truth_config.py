"""`model_registry.models.<m>.ground_truth_uri`: where a model's labels arrive, its default in the
features bucket, the rule that keeps it there, and the stack output that tells a labelling job."""
from __future__ import annotations

from components.stack import ground_truth_uris
from specs.config import rules, stack_files
from specs.config.schema import StackConfig

FEATURES = "s3://fraud-dev-features-111111111111"


def fraud_dev(uri: str | None) -> StackConfig:
    doc = stack_files.load("fraud-dev").model_dump()
    doc["model_registry"]["models"]["fraud-detector"]["ground_truth_uri"] = uri
    return StackConfig.model_validate(doc)


def test_by_default_each_model_gets_a_prefix_of_its_own_in_the_features_bucket():
    config = fraud_dev(None)
    assert ground_truth_uris(config) == {"fraud-detector": f"{FEATURES}/ground-truth/fraud-detector/"}
    assert not [p for p in rules.check(config) if "ground_truth_uri" in p.path]


def test_a_configured_location_in_the_features_bucket_is_kept():
    config = fraud_dev(f"{FEATURES}/labels/fraud/")
    assert ground_truth_uris(config)["fraud-detector"] == f"{FEATURES}/labels/fraud/"
    assert not [p for p in rules.check(config) if "ground_truth_uri" in p.path]


def test_a_location_in_another_bucket_is_refused_naming_the_field_value_and_default():
    problems = [(p.dotted(), p.message, p.value) for p in rules.check(fraud_dev("s3://someone-elses-bucket/gt/"))
                if "ground_truth_uri" in p.path]
    assert problems == [(
        "model_registry.models.fraud-detector.ground_truth_uri",
        f"must be in this stack's features bucket {FEATURES}/ (training reads no other bucket); "
        f"the default is {FEATURES}/ground-truth/fraud-detector/",
        "s3://someone-elses-bucket/gt/",
    )]


def test_mlops_config_validate_reports_it_with_file_and_exit_code_2(cli, edit):
    def change(doc):
        doc["model_registry"]["models"]["fraud-detector"]["ground_truth_uri"] = "s3://someone-elses-bucket/gt/"
    edit("teams/fraud.yaml", change)
    result = cli("config", "validate", "--stack", "fraud-dev")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "model_registry.models.fraud-detector.ground_truth_uri: must be in this stack's features bucket" in result.stdout + result.stderr
