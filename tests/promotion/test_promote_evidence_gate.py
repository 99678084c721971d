"""The regression gate on a shared evaluation, pure: the paired difference decides, in the metric's own
direction, and an evaluation whose data checks failed or that lacks a compared metric is no evidence."""
from __future__ import annotations

from mlops_contracts import evaluation as contract

from mlops.promote.gates import evaluation_metrics, evaluation_regression_gate, missing_evidence_gate
from promotion_support import Faced, evaluation_document

CHAMPION = {"auc": 0.88, "log_loss": 0.35}


def _evaluation(candidate: dict[str, float]) -> contract.Evaluation:
    return contract.loads(evaluation_document(candidate_url="s3://b/c.tar.gz", candidate=candidate, faced=[Faced("s3://b/k.tar.gz", CHAMPION)]))


def _gate(evaluation: contract.Evaluation, compared: list[str]):
    return evaluation_regression_gate(evaluation, "scoring/champion", compared=compared, margin=0.01, evidence="e.json", champion_label="champion v1")


def test_a_higher_log_loss_is_a_regression_and_a_lower_one_is_not():
    worse = _gate(_evaluation({"auc": 0.88, "log_loss": 0.37}), ["log_loss"])
    assert not worse.passed
    assert "log_loss candidate 0.3700" in worse.detail and "paired difference +0.0200" in worse.detail and "exceeds max_regression 0.01" in worse.detail
    assert _gate(_evaluation({"auc": 0.88, "log_loss": 0.30}), ["log_loss"]).passed


def test_auc_within_the_margin_passes_and_the_detail_names_the_evidence_and_the_slice():
    result = _gate(_evaluation({"auc": 0.875, "log_loss": 0.35}), ["auc"])
    assert result.passed, result.detail
    assert result.detail.startswith("against champion v1, evidence e.json (champion entry 'scoring/champion'; slice validation: 800 rows labelled")
    assert "worse by 0.0050 within max_regression 0.01" in result.detail


def test_a_compared_metric_the_evaluation_lacks_fails_the_gate():
    result = _gate(_evaluation({"auc": 0.95}), ["auc", "log_loss"])
    assert not result.passed
    assert "log_loss: not in the evaluation for both models" in result.detail


def test_an_evaluation_whose_data_checks_failed_is_no_evidence():
    doc = contract.to_dict(_evaluation({"auc": 0.95, "log_loss": 0.2}))
    doc["gates"] = [{"gate": "validation", "passed": False, "detail": "label: null (3 rows)"}]
    doc["decision"] = {"passed": False, "failed_gates": ["validation"], "reason": "validation gate failed: label: null (3 rows)"}
    result = _gate(contract.parse(doc), ["auc"])
    assert not result.passed
    assert "the evaluation's data checks failed, nothing was scored: label: null (3 rows)" in result.detail


def test_the_thresholds_gate_reads_the_candidates_point_figures_and_missing_evidence_names_the_flag():
    assert evaluation_metrics(_evaluation({"auc": 0.9, "log_loss": 0.3})) == {"auc": 0.9, "log_loss": 0.3}
    gate = missing_evidence_gate(champion_label="champion v1", tried=["no evaluation", "no data"], flag="--evaluation-data")
    assert not gate.passed
    assert gate.detail.startswith("no shared evaluation against champion v1: no evaluation; no data; supply labelled data with --evaluation-data")
