"""`endpoints.<name>.feature_lookup`: the field rules on the model, the cross-field rule against the
feature store and the model's features, and how `mlops plan` reports a broken one (file and field)."""
from __future__ import annotations

from typing import Any

import pydantic
import pytest

from specs.config import rules, stack_files
from specs.config.schema import StackConfig

OVR = "mlops:overrides"


def fraud_dev(lookup: dict[str, Any] | None, *, groups: dict[str, Any] | None = None) -> StackConfig:
    """The shipped fraud-dev config with `lookup` on its scoring endpoint and extra feature groups."""
    doc = stack_files.load("fraud-dev").model_dump()
    doc["endpoints"]["scoring"]["feature_lookup"] = lookup
    doc["feature_store"]["feature_groups"].update(groups or {})
    return StackConfig.model_validate(doc)


def lookup_problems(config: StackConfig) -> list[tuple[str, str, Any]]:
    return [(p.dotted(), p.message, p.value) for p in rules.check(config) if "feature_lookup" in p.path]


def group(features: list[tuple[str, str]], *, online: bool = True) -> dict[str, Any]:
    return {
        "record_identifier": "transaction_id",
        "event_time": "event_time",
        "features": [{"name": "transaction_id", "type": "String"}, {"name": "event_time", "type": "String"},
                     *({"name": n, "type": t} for n, t in features)],
        "online_store": {"enabled": online},
        "offline_store": True,
    }


MODEL_FEATURES = [("amount", "Fractional"), ("merchant_risk", "Fractional"), ("hour_of_day", "Integral"),
                  ("card_age_days", "Integral"), ("distance_from_home_km", "Fractional"), ("channel", "String")]
PATH = "endpoints.scoring.feature_lookup"


def test_lookup_defaults_are_the_groups_record_identifier_and_100_ms():
    config = fraud_dev({"feature_group": "transactions"})
    lookup = config.endpoints["scoring"].feature_lookup
    assert (lookup.feature_group, lookup.record_identifier_field, lookup.timeout_ms) == ("transactions", None, 100)
    assert rules.check(config) == []


def test_the_models_own_group_and_a_serving_group_holding_its_features_are_accepted():
    assert lookup_problems(fraud_dev({"feature_group": "transactions"})) == []
    config = fraud_dev({"feature_group": "serving", "record_identifier_field": "txn"}, groups={"serving": group(MODEL_FEATURES)})
    assert lookup_problems(config) == []


def test_endpoint_without_lookup_is_unchanged():
    assert fraud_dev(None).endpoints["scoring"].feature_lookup is None


def test_unknown_feature_group_is_named_with_the_defined_ones():
    assert lookup_problems(fraud_dev({"feature_group": "payments"})) == [
        (f"{PATH}.feature_group", "unknown feature group; defined: transactions", "payments"),
    ]


def test_group_without_online_store_is_refused():
    config = fraud_dev({"feature_group": "archive"}, groups={"archive": group(MODEL_FEATURES, online=False)})
    assert lookup_problems(config) == [(
        f"{PATH}.feature_group",
        "has no online store (feature_store.feature_groups.archive.online_store.enabled is false); "
        "the lookup reads the online store, so enable it or pick a group that has one",
        "archive",
    )]


def test_group_lacking_or_retyping_a_model_feature_is_refused_naming_them():
    features = [(n, "String" if n == "hour_of_day" else t) for n, t in MODEL_FEATURES if n != "channel"]
    config = fraud_dev({"feature_group": "serving"}, groups={"serving": group(features)})
    ((path, message, value),) = lookup_problems(config)
    assert (path, value) == (f"{PATH}.feature_group", "serving")
    assert message.startswith(
        "does not hold every feature of model 'fraud-detector': lacks channel; "
        "types differ: hour_of_day (String, the model takes Integral); the model takes amount (Fractional), "
    )


def test_record_identifier_field_that_is_a_model_feature_is_refused():
    assert lookup_problems(fraud_dev({"feature_group": "transactions", "record_identifier_field": "amount"})) == [(
        f"{PATH}.record_identifier_field",
        "is one of model 'fraud-detector''s features; the request field that holds the record id must be "
        "another name (set record_identifier_field)",
        "amount",
    )]


@pytest.mark.parametrize("timeout", [0, 10001])
def test_timeout_outside_1_to_10000_ms_is_refused(timeout):
    with pytest.raises(pydantic.ValidationError, match="timeout_ms"):
        fraud_dev({"feature_group": "transactions", "timeout_ms": timeout})


def test_mlops_plan_names_the_file_field_value_and_allowed_groups(cli, edit):
    edit("Pulumi.fraud-dev.yaml", lambda d: d["config"][OVR]["endpoints"]["scoring"].update(feature_lookup={"feature_group": "payments"}))
    result = cli("plan", "--stack", "fraud-dev")
    assert result.exit_code == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert "Pulumi.fraud-dev.yaml: endpoints.scoring.feature_lookup.feature_group:" in result.stderr
    assert "unknown feature group; defined: transactions" in result.stderr and "payments" in result.stderr
