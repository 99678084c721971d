"""evaluation.json (docs/contracts.md section 8): wire names, round trip, and a reader that names what is wrong."""
from __future__ import annotations

import copy
import re
import json
from pathlib import Path

import pytest
from mlops_contracts import evaluation as contract

DOC = {
    "format_version": 1, "model": "fraud", "task": "binary_classification", "primary_metric": "auc",
    "slice": {"split": "validation", "rows": 400, "from": "2026-03-01T00:00:00.000Z", "to": "2026-03-02T00:00:00.000Z",
              "hash": "sha256:ab", "dataset_manifest": "s3://b/ds/manifest.json", "dataset_hash": "sha256:cd"},
    "candidate": {"uri": "s3://b/m/2/model.tar.gz",
                  "metrics": {"auc": {"value": 0.9, "ci_low": 0.88, "ci_high": 0.92, "standard_deviation": 0.01}}},
    "champions": [{"name": "scoring/champion", "uri": "s3://b/m/1/model.tar.gz",
                   "metrics": {"auc": {"value": 0.85, "ci_low": 0.83, "ci_high": 0.87, "standard_deviation": 0.01}},
                   "difference": {"auc": {"value": 0.05, "ci_low": 0.03, "ci_high": 0.07}}}],
    "gates": [{"gate": "thresholds", "passed": True, "detail": "no metric gates declared"},
              {"gate": "regression", "passed": False, "detail": "auc worse by 0.05"},
              {"gate": "validation", "passed": True, "detail": "data checks passed"}],
    "decision": {"passed": False, "failed_gates": ["regression"], "reason": "regression gate failed: auc worse by 0.05"},
    "lineage": {"pipeline_execution": "arn:aws:sagemaker:eu-west-1:1:pipeline/p/execution/x"},
    "generated": "2026-03-02T01:00:00Z",
}


def test_wire_names() -> None:
    assert (contract.FORMAT_VERSION, contract.EVALUATION_FILE, contract.MODEL_QUALITY_DIR) == (
        1, "evaluation.json", "model_quality")
    assert contract.GATES == ("thresholds", "regression", "validation")
    assert contract.PRIMARY_METRIC == {"binary_classification": "auc", "regression": "rmse"}
    assert contract.QUALITY_SECTIONS == {"binary_classification": "binary_classification_metrics",
                                         "regression": "regression_metrics"}
    assert (contract.CANDIDATE_QUALITY_FILE, contract.champion_quality_file(2)) == ("candidate.json", "champion-2.json")


def test_a_document_round_trips_through_read_and_write(tmp_path: Path) -> None:
    evaluation = contract.parse(DOC)
    assert evaluation.decision.failed_gates == ("regression",)
    assert evaluation.champion("scoring/champion").difference["auc"].value == 0.05
    path = contract.write(evaluation, tmp_path / "out" / "evaluation.json")
    assert json.loads(path.read_text()) == DOC
    assert contract.read(path) == evaluation


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format_version=2), "format_version is 2; expected 1"),
    (lambda d: d["decision"].update(passed="false"), "decision.passed is 'false'; expected bool"),
    (lambda d: d["decision"].update(passed=True), "passed true with no failed_gates, or false with at least one"),
    (lambda d: d["slice"].update(rows=True), "slice.rows is True; expected int"),
    (lambda d: d["gates"][0].update(gate="speed"), "gates[0].gate is 'speed'; expected thresholds or regression"),
    (lambda d: d["champions"][0]["difference"]["auc"].pop("ci_low"),
     "champions[0].difference.auc.ci_low is None; expected int or float"),
    (lambda d: d.update(task="ranking"), "task is 'ranking'; expected binary_classification or regression"),
])
def test_the_reader_names_the_field_that_is_wrong(edit, message: str) -> None:
    doc = copy.deepcopy(DOC)
    edit(doc)
    with pytest.raises(contract.EvaluationFormatError, match=re.escape(message)):
        contract.parse(doc, source="x.json")


def test_decide_names_every_failed_gate() -> None:
    gates = [contract.Gate(gate="thresholds", passed=False, detail="auc 0.80 misses >= 0.85"),
             contract.Gate(gate="regression", passed=True, detail="no champion to compare with"),
             contract.Gate(gate="validation", passed=False, detail="amount: out_of_range")]
    decision = contract.decide(gates)
    assert decision == contract.Decision(
        passed=False, failed_gates=("thresholds", "validation"),
        reason="thresholds gate failed: auc 0.80 misses >= 0.85; validation gate failed: amount: out_of_range")
    assert contract.decide(gates[1:2]).reason == "all gates passed: regression: no champion to compare with"


def test_model_quality_uses_sagemakers_section_and_metric_names() -> None:
    e = contract.Estimate(value=1.5, ci_low=1.0, ci_high=2.0, standard_deviation=0.2)
    doc = contract.model_quality("regression", {"rmse": e, "mse": e, "mae": e, "r2": e})
    assert doc == {"regression_metrics": {m: {"value": 1.5, "standard_deviation": 0.2} for m in ("mae", "mse", "rmse", "r2")}}
    with pytest.raises(ValueError, match="task 'ranking'; allowed: binary_classification, regression"):
        contract.model_quality("ranking", {})
