"""Feature schema and hyperparameter parsing: types, defaults and errors that name what is wrong."""
from __future__ import annotations

import json

import pytest

from mlops_training.hyperparameters import Hyperparameters, HyperparameterError, parse_hyperparameters
from mlops_training.schema import SchemaError, parse_schema
from mlops_training.synthetic import schema_document


def _schema(**changes: object) -> dict:
    doc = schema_document("binary_classification")
    doc.update(changes)
    return doc


def test_schema_parses_the_contract_example_with_defaults() -> None:
    doc = {
        "format_version": 1, "record_identifier": "transaction_id", "event_time": "event_time",
        "label": "is_fraud", "task": "binary_classification",
        "features": [
            {"name": "amount", "type": "Fractional", "nullable": False, "min": 0.0, "max": 100000.0},
            {"name": "n_items", "type": "Integral", "nullable": True},
            {"name": "country", "type": "String"},
        ],
    }
    schema = parse_schema(doc)
    assert schema.feature_names == ("amount", "n_items", "country")
    assert schema.features[2].nullable is False  # the contract's default
    assert schema.features[0].max == 100000.0
    assert schema.to_dict() == doc | {"features": [
        doc["features"][0], doc["features"][1], {"name": "country", "type": "String", "nullable": False},
    ]}


def test_schema_refuses_an_unknown_format_version() -> None:
    with pytest.raises(SchemaError, match=r"format_version is 2; this trainer reads format_version 1"):
        parse_schema(_schema(format_version=2))


def test_schema_collects_every_problem_with_path_value_and_allowed() -> None:
    doc = _schema(task="ranking", features=[
        {"name": "amount", "type": "Float"},
        {"name": "country", "type": "String", "min": 1},
        {"name": "is_fraud", "type": "Integral"},
        {"name": "hour", "type": "Integral", "min": 5, "max": 1},
        {"name": "hour", "type": "Integral"},
    ])
    with pytest.raises(SchemaError) as info:
        parse_schema(doc, source="feature_schema.json")
    message = str(info.value)
    assert "task: got 'ranking'; allowed: binary_classification, regression" in message
    assert "features[0].type: got 'Float'; allowed: Integral, Fractional, String" in message
    assert "features[1].min: got 1; ranges apply to Integral and Fractional features only" in message
    assert "features: 'is_fraud' is the label; it cannot also be a model input" in message
    assert "features[3]: min 5 is greater than max 1" in message
    assert message.startswith("feature_schema.json is invalid")


def test_hyperparameters_parse_sagemaker_strings_into_types() -> None:
    hp = parse_hyperparameters({
        "epochs": "3", "learning_rate": "0.01", "hidden_units": "128,64,32", "auto_approve": "True",
        "validation_fraction": "0.25", "model_version": "7",
    })
    assert hp.epochs == 3 and hp.learning_rate == 0.01 and hp.hidden_units == (128, 64, 32)
    assert hp.auto_approve is True and hp.validation_fraction == 0.25 and hp.model_version == "7"
    assert hp.batch_size == Hyperparameters().batch_size  # untouched values keep their defaults


def test_hyperparameters_accept_json_lists_native_values_and_ignore_sagemaker_keys() -> None:
    hp = parse_hyperparameters({
        "hidden_units": "[16, 8]", "epochs": 2, "auto_approve": False,
        "sagemaker_region": "\"eu-west-1\"", "_tuning_objective_metric": "validation:auc",
    })
    assert hp.hidden_units == (16, 8) and hp.epochs == 2 and hp.auto_approve is False
    assert parse_hyperparameters({"hidden_units": ""}).hidden_units == ()


def test_unknown_hyperparameter_is_an_error_naming_the_allowed_keys() -> None:
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({"epoch": "3"})
    assert "epoch='3': unknown hyperparameter; allowed: epochs, batch_size," in str(info.value)


def test_bad_hyperparameter_values_are_all_reported_with_value_and_allowed() -> None:
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({
            "epochs": "ten", "batch_size": "0", "validation_fraction": "1.5", "auto_approve": "maybe",
            "mixed_precision": "fp8",
        })
    message = str(info.value)
    assert "epochs='ten': expected an integer" in message
    assert "auto_approve='maybe': expected a boolean" in message
    # Range checks run once every value has its type.
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({"batch_size": "0", "validation_fraction": "1.5", "mixed_precision": "fp8"})
    message = str(info.value)
    assert "batch_size=0: allowed: an integer >= 1" in message
    assert "validation_fraction=1.5: allowed: a number in (0, 1)" in message
    assert "mixed_precision='fp8': allowed: auto, bf16, fp16, off" in message


def test_registration_needs_an_image_and_an_artifact_location() -> None:
    with pytest.raises(HyperparameterError) as info:
        parse_hyperparameters({"model_package_group_name": "fraud"})
    assert "image_uri='': required when model_package_group_name='fraud' is set" in str(info.value)
    assert "artifact_s3_uri='': required when" in str(info.value)


def test_training_dict_holds_only_values_that_change_the_weights() -> None:
    hp = parse_hyperparameters({"model_version": "9", "epochs": "4"})
    training = hp.training_dict()
    assert training["epochs"] == 4 and "model_version" not in training and "checkpoint_every_steps" not in training
    json.dumps(hp.to_dict())  # metadata.json must be able to hold every value
