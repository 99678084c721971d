"""Promotion's pure parts: gates, schema compatibility, the round-trip pin edit, the audit history,
atomic writes. No AWS, no Pulumi runtime."""
from __future__ import annotations

import os
import threading

import pytest
import yaml

from specs.config import stack_files
from mlops import promote
from mlops.promote import GateResult, Pin, PinTarget

STACKS = stack_files.ROOT / "stacks"


# -- metric gates -------------------------------------------------------------------------------


def test_threshold_gate_treats_log_loss_as_a_maximum_and_auc_as_a_minimum():
    ok = promote.threshold_gate({"auc": 0.9, "log_loss": 0.4}, {"auc": 0.85, "log_loss": 0.45}, where="fraud-staging gates")
    assert ok.passed, ok.detail
    bad = promote.threshold_gate({"auc": 0.9, "log_loss": 0.5}, {"auc": 0.85, "log_loss": 0.45}, where="fraud-staging gates")
    assert not bad.passed
    assert "log_loss 0.5 misses <= 0.45" in bad.detail


def test_threshold_gate_fails_a_gated_metric_the_package_does_not_carry():
    result = promote.threshold_gate({"auc": 0.9}, {"auc": 0.85, "log_loss": 0.45}, where="w")
    assert not result.passed
    assert "log_loss missing from the package" in result.detail


def test_regression_gate_allows_the_margin_and_refuses_beyond_it():
    champion = {"auc": 0.90, "rmse": 10.0}
    within = promote.regression_gate({"auc": 0.891, "rmse": 10.009}, champion, compared=["auc", "rmse"], margin=0.01, champion_label="c")
    assert within.passed, within.detail
    worse_auc = promote.regression_gate({"auc": 0.88, "rmse": 10.0}, champion, compared=["auc", "rmse"], margin=0.01, champion_label="c")
    assert not worse_auc.passed and "auc 0.88 is 0.02 worse" in worse_auc.detail
    worse_rmse = promote.regression_gate({"auc": 0.9, "rmse": 10.5}, champion, compared=["auc", "rmse"], margin=0.01, champion_label="c")
    assert not worse_rmse.passed and "rmse 10.5 is 0.5 worse" in worse_rmse.detail


def test_regression_gate_passes_when_the_target_has_no_champion_package():
    result = promote.regression_gate({"auc": 0.5}, None, compared=["auc"], margin=0.0, champion_label="version 1 is not in the registry")
    assert result.passed and "no champion" in result.detail


def test_package_metrics_reads_the_keys_training_writes():
    from mlops_training.register import Registration, customer_metadata

    registration = Registration(
        group_name="g", image_uri="i", model_data_url="s3://b/k", metrics_s3_uri="s3://b/m", metrics={"auc": 0.91, "log_loss": 0.3},
        properties={"model_name": "fraud-detector", "task": "binary_classification"}, approve=True, description="d",
    )
    package = {"CustomerMetadataProperties": customer_metadata(registration)}
    assert promote.package_metrics(package) == {"auc": 0.91, "log_loss": 0.3}


# -- schema compatibility -----------------------------------------------------------------------


def _schemas():
    from specs.feature_schema import feature_schema

    target = feature_schema(stack_files.load("fraud-staging"), "fraud-detector")
    model = {**target, "features": [dict(f) for f in target["features"]]}
    return model, target


def test_a_schema_identical_to_the_target_is_compatible():
    model, target = _schemas()
    assert promote.schema_mismatches(model, target, group="transactions") == []


def test_schema_reports_every_missing_input_type_change_and_looser_nullability():
    model, target = _schemas()
    model["features"].append({"name": "device_id", "type": "String", "nullable": False})
    next(f for f in model["features"] if f["name"] == "hour_of_day")["type"] = "Fractional"
    next(f for f in model["features"] if f["name"] == "card_age_days")["nullable"] = False  # target allows nulls
    problems = promote.schema_mismatches(model, target, group="transactions")
    assert problems == [
        "input 'hour_of_day' is Fractional in the model, Integral in the target",
        "input 'card_age_days' may be null in the target but the model was trained without nulls",
        "input 'device_id' is not a feature of the target's feature group 'transactions'",
    ]


def test_a_model_accepting_nulls_the_target_never_sends_is_compatible():
    model, target = _schemas()
    next(f for f in model["features"] if f["name"] == "amount")["nullable"] = True
    assert promote.schema_mismatches(model, target, group="transactions") == []


def test_schema_of_an_unknown_format_version_is_refused():
    model, target = _schemas()
    model["format_version"] = 2
    assert promote.schema_mismatches(model, target, group="g") == ["schema.json format_version 2; this reader knows 1"]


# -- the pin edit -------------------------------------------------------------------------------


def test_pin_edit_changes_only_the_champion_lines_and_keeps_comments_and_null():
    before = (STACKS / "Pulumi.fraud-staging.yaml").read_text()
    targets = promote.pin_targets(stack_files.load("fraud-staging"), "fraud-detector", None)
    assert targets == [PinTarget("scoring", "production", "champion")]
    after = promote.pin_text(before, targets, pin=Pin(7, "s3://fraud-staging-artifacts-222222222222/models/fraud-detector/7/model.tar.gz"))
    diff = [line for line in promote.unified_diff(before, after, path="p").splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert diff == [
        "-              model_version: 1",
        "-              model_data_url: s3://fraud-staging-artifacts-222222222222/models/fraud-detector/1/model.tar.gz",
        "+              model_version: 7",
        "+              model_data_url: s3://fraud-staging-artifacts-222222222222/models/fraud-detector/7/model.tar.gz",
    ]
    assert "variants: null" in after and after.startswith("# Team fraud, environment staging")


def test_pin_edit_adds_the_version_before_the_url_in_a_flow_mapping():
    # pricing-staging overrides only the URL, in flow style; the version comes from the base file.
    before = (STACKS / "Pulumi.pricing-staging.yaml").read_text()
    targets = promote.pin_targets(stack_files.load("pricing-staging"), "basket-price", None)
    after = promote.pin_text(before, targets, pin=Pin(4, "s3://pricing-staging-artifacts-222222222222/models/basket-price/4/model.tar.gz"))
    assert "main: {model_version: 4, model_data_url: s3://pricing-staging-artifacts-222222222222/models/basket-price/4/model.tar.gz}" in after
    overrides = yaml.safe_load(after)["config"]["mlops:overrides"]
    assert overrides["model_registry"] == {"models": {"basket-price": {"approval": "manual"}}}


def test_pin_edit_creates_the_overrides_of_a_stack_file_without_any(tmp_path, monkeypatch):
    monkeypatch.setenv(stack_files.STACKS_ENV, str(tmp_path))
    (tmp_path / "teams").mkdir()
    team = yaml.safe_load((STACKS / "teams" / "pricing.yaml").read_text())
    team.pop("training")  # the shipped team trains on a cluster it creates, which needs a network this bare stack lacks
    (tmp_path / "teams" / "pricing.yaml").write_text(yaml.safe_dump(team))
    text = "# pricing staging, no overrides yet\nconfig:\n  aws:region: us-east-1\n  aws:allowedAccountIds: [\"222222222222\"]\n  mlops:team: pricing\n  mlops:environment: staging\n"
    after = promote.pin_text(text, [PinTarget("quotes", "variants", "main")], pin=Pin(1, "s3://pricing-staging-artifacts-222222222222/models/basket-price/1/model.tar.gz"))
    (tmp_path / "Pulumi.pricing-staging.yaml").write_text(after)
    config = stack_files.load("pricing-staging")  # validates: the URL now sits in staging's bucket
    assert config.endpoints["quotes"].production_variants()["main"].model_version == 1
    assert after.startswith("# pricing staging, no overrides yet\n")


def test_pin_targets_name_the_variants_there_are_when_the_variant_is_unknown():
    config = stack_files.load("fraud-prod")
    assert promote.pin_targets(config, "fraud-detector", "challenger") == [PinTarget("scoring", "variants", "challenger")]
    with pytest.raises(promote.PromotionError, match="has a variant 'blue'; variants: challenger, champion"):
        promote.pin_targets(config, "fraud-detector", "blue")


def test_shadow_variant_can_be_pinned_by_name():
    assert promote.pin_targets(stack_files.load("fraud-staging"), "fraud-detector", "candidate") == [PinTarget("scoring", "shadow", "candidate")]


# -- history, environments, files ---------------------------------------------------------------


def _record(action, version, previous=None):
    return {
        "action": action, "team": "fraud", "to": "prod", "model": "m", "variants": ["scoring/champion"],
        "target_version": version, "model_data_url": f"s3://b/{version}", "target_package_arn": f"arn/{version}",
        "previous": previous,
    }


def test_champion_history_pushes_promotions_and_pops_rollbacks():
    records = [
        _record("promote", 3, {"version": 1, "model_data_url": "s3://b/1", "package_arn": None}),
        _record("promote", 4),
        _record("rollback", 3),
        {**_record("promote", 9), "to": "staging"},  # another environment: ignored
    ]
    history = promote.champion_history(records, team="fraud", environment="prod", model="m", refs={"scoring/champion"})
    assert [h["version"] for h in history] == [1, 3]


@pytest.mark.parametrize(("source", "target", "message"), [
    ("staging", "dev", "promotion moves forward"),
    ("prod", "prod", "promotion moves forward"),
    ("dev", "qa", "--to 'qa' is not allowed; allowed: dev, staging, prod"),
])
def test_environments_must_be_known_and_move_forward(source, target, message):
    with pytest.raises(promote.PromotionError, match=message):
        promote.check_environments(source, target)


def test_atomic_write_never_shows_a_reader_a_partial_file(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    small, large = "a: 1\n", "b: " + "x" * 2_000_000 + "\n"
    path.write_text(small)
    seen: set[int] = set()
    stop = threading.Event()
    reading = threading.Event()

    def read() -> None:
        while not stop.is_set():
            text = path.read_text()
            seen.add(len(text) if text in (small, large) else -len(text))
            reading.set()

    reader = threading.Thread(target=read)
    reader.start()
    # The writes start once the reader is reading (on a loaded machine the thread may start late).
    assert reading.wait(120)
    for i in range(30):
        promote.atomic_write(path, large if i % 2 == 0 else small)
    stop.set()
    reader.join()
    assert seen and seen <= {len(small), len(large)}, "a reader saw a torn file"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_gate_result_serialises_for_the_audit_record():
    assert GateResult("schema", False, "why").to_json() == {"name": "schema", "passed": False, "detail": "why"}


def test_audit_line_that_is_not_json_is_reported_with_its_line_number(tmp_path, monkeypatch):
    monkeypatch.setenv(stack_files.STACKS_ENV, str(tmp_path))
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "fraud.jsonl").write_text('{"action": "promote"}\n{broken\n')
    with pytest.raises(promote.PromotionError, match=r"fraud.jsonl:2: not a JSON audit record"):
        promote.read_audit("fraud")


def test_stack_lock_excludes_a_second_holder_until_the_first_releases(tmp_path, monkeypatch):
    monkeypatch.setenv(stack_files.STACKS_ENV, str(tmp_path))
    order: list[str] = []
    first_holds = threading.Event()

    def second() -> None:
        first_holds.wait()
        with promote.stack_lock("fraud-prod"):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with promote.stack_lock("fraud-prod"):
        first_holds.set()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second holder got the lock while the first held it"
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
    assert (tmp_path / ".locks" / "fraud-prod.lock").exists()


def test_policy_gate_plans_the_candidate_from_a_copy_and_refuses_an_invalid_one():
    text = (STACKS / "Pulumi.fraud-prod.yaml").read_text()
    ok = promote.policy_gate(stack="fraud-prod", candidate_text=text, team="fraud")
    assert ok.passed and "0 mandatory violations" in ok.detail
    broken = text.replace("instance_count: 2\n              weight: 10", "instance_count: 1\n              weight: 10")
    assert broken != text
    refused = promote.policy_gate(stack="fraud-prod", candidate_text=broken, team="fraud")
    assert not refused.passed
    assert "prod needs at least 2 instances per production variant" in refused.detail
    assert str(STACKS / "Pulumi.fraud-prod.yaml") in refused.detail  # the real file, not the temporary copy
    assert os.environ.get(stack_files.STACKS_ENV) is None or "mlops-promote-" not in os.environ[stack_files.STACKS_ENV]
