"""Derived AWS names: stable, content-addressed where AWS resources are immutable, within limits."""
from __future__ import annotations

from specs.config import instance_types
from specs import naming


def test_derived_names_follow_team_environment_component():
    namer = naming.Namer(team="fraud", environment="prod", account_id="333333333333")
    assert namer.endpoint("scoring") == "fraud-prod-scoring"
    assert namer.bucket("capture") == "fraud-prod-capture-333333333333"
    assert namer.model_package_group("fraud-detector") == "fraud-prod-fraud-detector"
    assert namer.ecr_repository("serving") == "fraud/prod/serving"
    assert namer.alarm("scoring", "champion", "p99-latency") == "fraud-prod-scoring-champion-p99-latency"


def test_a_name_over_the_limit_is_reported_with_its_length():
    name = naming.DerivedName("SageMaker Endpoint", "x" * 64, ("team",))
    assert name.problem() == f"derived SageMaker Endpoint name {'x' * 64!r} would be 64 characters; AWS allows 63"
    assert naming.DerivedName("SageMaker Endpoint", "x" * 63, ("team",)).problem() is None


def test_a_name_breaking_the_pattern_is_reported():
    assert "does not match" in naming.DerivedName("S3 bucket", "Team_Prod", ("team",)).problem()


def test_content_hash_is_stable_and_order_independent():
    assert naming.content_hash({"a": 1, "b": [1, 2]}) == naming.content_hash({"b": [1, 2], "a": 1})
    assert naming.content_hash({"a": 1}) != naming.content_hash({"a": 2})
    assert len(naming.content_hash({})) == naming.HASH_LEN


def test_instance_types_come_from_botocores_enums_and_differ_by_use():
    assert "ml.g5.xlarge" in instance_types.allowed(instance_types.ENDPOINT_SHAPE)
    assert "ml.t2.medium" in instance_types.allowed(instance_types.ENDPOINT_SHAPE)
    assert "ml.t2.medium" not in instance_types.allowed(instance_types.TRAINING_SHAPE)
    assert instance_types.suggest("ml.g5.xlarg", instance_types.ENDPOINT_SHAPE)[0] == "ml.g5.xlarge"
    assert instance_types.is_gpu("ml.g5.xlarge") and instance_types.is_gpu("ml.p4d.24xlarge")
    assert not instance_types.is_gpu("ml.m5.large")
