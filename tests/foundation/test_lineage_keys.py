"""specs.lineage: the config hash is stable, sensitive to what training depends on, blind to the rest."""
from __future__ import annotations

import re

import pytest

from specs import lineage
from specs.config.stack_files import list_stacks, load


def _stack_with_model() -> tuple[str, str]:
    for name in list_stacks():
        config = load(name)
        if config.model_registry.models:
            return name, next(iter(config.model_registry.models))
    pytest.skip("no shipped stack declares a model")


def test_config_hash_is_stable_and_shaped():
    name, model = _stack_with_model()
    first, second = lineage.config_hash(load(name), model), lineage.config_hash(load(name), model)
    assert first == second
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", first)


def test_config_hash_follows_training_inputs_not_tags():
    name, model = _stack_with_model()
    config = load(name)
    base = lineage.config_hash(config, model)
    retagged = config.model_copy(update={"tags": {**config.tags, "cost-centre": "elsewhere"}})
    assert lineage.config_hash(retagged, model) == base
    spec = config.model_registry.models[model]
    stricter = spec.model_copy(update={"max_regression": spec.max_regression / 2 + 0.001})
    registry = config.model_registry.model_copy(update={"models": {**config.model_registry.models, model: stricter}})
    assert lineage.config_hash(config.model_copy(update={"model_registry": registry}), model) != base


def test_unknown_model_is_a_key_error():
    name, _ = _stack_with_model()
    with pytest.raises(KeyError):
        lineage.config_hash(load(name), "no-such-model")


def test_keys_are_valid_customer_metadata_keys():
    # CreateModelPackage: CustomerMetadataProperties keys match ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, 1-128 chars.
    for key in lineage.KEYS:
        assert re.fullmatch(r"[\w\s.:/=+\-@]{1,128}", key), key
