"""FeatureStore under Pulumi's mock runtime: one Feature Group per config entry, encrypted stores."""
from __future__ import annotations

import pytest

from specs.config.schema import FeatureGroupConfig
from components.feature_store import TOKEN, FeatureStore, FeatureStoreArgs

KEY = "arn:aws:kms:eu-west-1:111111111111:key/k-1"
ROLE = "arn:aws:iam::111111111111:role/t-dev-feature-store"
FG = "aws:sagemaker/featureGroup:FeatureGroup"

TRANSACTIONS = FeatureGroupConfig.model_validate({
    "description": "Card transactions",
    "record_identifier": "transaction_id",
    "event_time": "event_time",
    "features": [
        {"name": "transaction_id", "type": "String"},
        {"name": "event_time", "type": "String"},
        {"name": "amount", "type": "Fractional", "min": 0},
        {"name": "hour_of_day", "type": "Integral", "min": 0, "max": 23},
    ],
    "online_store": {"enabled": True, "ttl_hours": 720},
})
BASKETS = FeatureGroupConfig.model_validate({
    "record_identifier": "basket_id",
    "event_time": "event_time",
    "features": [{"name": "basket_id", "type": "Integral"}, {"name": "event_time", "type": "Fractional"}],
    "online_store": {"enabled": False},
})
ONLINE_ONLY = FeatureGroupConfig.model_validate({
    "record_identifier": "user_id",
    "event_time": "ts",
    "features": [{"name": "user_id", "type": "String"}, {"name": "ts", "type": "String"}],
    "offline_store": False,
})


@pytest.fixture
def built(mock_pulumi, namer):
    return mock_pulumi.run(lambda: FeatureStore("t-dev-features", FeatureStoreArgs(
        namer=namer,
        feature_groups={"transactions": TRANSACTIONS, "baskets": BASKETS, "sessions": ONLINE_ONLY},
        offline_bucket="t-dev-features-111111111111",
        kms_key_arn=KEY,
        role_arn=ROLE,
        tags=mock_pulumi.tags,
    )))


def test_one_feature_group_per_config_entry_under_the_component(built, mock_pulumi):
    component = mock_pulumi.top_urn(TOKEN, "t-dev-features")
    assert sorted((r.type, r.name) for r in built.children(component)) == [
        (FG, "t-dev-features-baskets"), (FG, "t-dev-features-sessions"), (FG, "t-dev-features-transactions"),
    ]
    assert len(built.resources) == 4
    for group in built.of_type(FG):
        assert group.urn == mock_pulumi.urn(TOKEN, FG, group.name)


def test_feature_group_carries_name_identity_columns_typed_features_role_and_tags(built, mock_pulumi):
    group = built.one(FG, "t-dev-features-transactions").inputs
    assert group["featureGroupName"] == "t-dev-transactions"
    assert group["description"] == "Card transactions"
    assert group["recordIdentifierFeatureName"] == "transaction_id"
    assert group["eventTimeFeatureName"] == "event_time"
    assert group["featureDefinitions"] == [
        {"featureName": "transaction_id", "featureType": "String"},
        {"featureName": "event_time", "featureType": "String"},
        {"featureName": "amount", "featureType": "Fractional"},
        {"featureName": "hour_of_day", "featureType": "Integral"},
    ]
    assert group["roleArn"] == ROLE
    assert group["tags"] == mock_pulumi.tags


def test_online_store_is_kms_encrypted_and_expires_records_after_the_ttl(built):
    assert built.one(FG, "t-dev-features-transactions").inputs["onlineStoreConfig"] == {
        "enableOnlineStore": True,
        "securityConfig": {"kmsKeyId": KEY},
        "ttlDuration": {"unit": "Hours", "value": 720},
    }


def test_online_store_without_ttl_has_no_ttl_duration(built):
    assert built.one(FG, "t-dev-features-sessions").inputs["onlineStoreConfig"] == {
        "enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY},
    }


def test_offline_store_writes_kms_encrypted_parquet_under_the_features_bucket(built):
    assert built.one(FG, "t-dev-features-transactions").inputs["offlineStoreConfig"] == {
        "s3StorageConfig": {"s3Uri": "s3://t-dev-features-111111111111/offline-store", "kmsKeyId": KEY},
        "disableGlueTableCreation": False,
    }


def test_disabled_stores_are_not_configured(built):
    baskets = built.one(FG, "t-dev-features-baskets").inputs
    assert "onlineStoreConfig" not in baskets
    assert "description" not in baskets  # an empty description is left out, not sent as ""
    assert baskets["offlineStoreConfig"]["s3StorageConfig"]["kmsKeyId"] == KEY
    assert "offlineStoreConfig" not in built.one(FG, "t-dev-features-sessions").inputs
