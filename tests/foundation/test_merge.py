"""Base + overrides: RFC 7386 JSON Merge Patch, and `mlops config show` prints the result."""
from __future__ import annotations

from specs.config.stack_files import load, merge_patch


def test_merge_patch_merges_objects_replaces_lists_and_deletes_on_null():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": True}
    patch = {"a": {"b": 2, "c": [3], "d": None, "new": "x"}}
    assert merge_patch(base, patch) == {"a": {"b": 2, "c": [3], "new": "x"}, "keep": True}
    assert base == {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": True}, "inputs must not be modified"


def test_merge_patch_rfc7386_examples():
    # From RFC 7386 appendix A.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], {"a": "c"}) == {"a": "c"}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_prod_override_changes_one_variant_and_keeps_the_base_elsewhere():
    dev, prod = load("fraud-dev"), load("fraud-prod")
    assert dev.endpoints["scoring"].traffic.mode == "single"
    assert prod.endpoints["scoring"].traffic.mode == "ab"
    assert prod.endpoints["scoring"].traffic.shares() == {"champion": 0.9, "challenger": 0.1}
    # the base's feature store reaches every environment unchanged
    assert prod.feature_store == dev.feature_store
    assert prod.aws.account_id == "333333333333" and dev.aws.account_id == "111111111111"


def test_config_show_prints_the_merged_result(cli):
    result = cli("config", "show", "--stack", "fraud-staging")
    assert result.exit_code == 0, result.stderr
    assert "mode: shadow" in result.stdout
    assert "shadow_sampling_percent: 50" in result.stdout
    assert "candidate:" in result.stdout


def test_config_show_validated_fills_in_documented_defaults(cli):
    result = cli("config", "show", "--stack", "pricing-dev", "--validated")
    assert result.exit_code == 0, result.stderr
    assert "drift_schedule: cron(0 * ? * * *)" in result.stdout
    assert "strategy: all_at_once" in result.stdout
