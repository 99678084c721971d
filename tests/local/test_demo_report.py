"""The demo report renders every version with its data fingerprint, evaluation and decision, and each
retraining run with its evidence (the refused drill's reason included)."""
from __future__ import annotations

import html
from typing import Any

from mlops.local.demo import render_report

RUN = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/demo-local-fraud-detector-train/execution/"


def _evaluation(candidate: float, champion: float, passed: bool) -> dict[str, Any]:
    return {
        "uri": "s3://a/evaluations/fraud-detector/x/evaluation.json", "metric": "auc",
        "slice": {"rows": 600, "from": "2026-12-03T10:00:00Z", "to": "2026-12-03T16:00:00Z"},
        "dataset_hash": "sha256:" + ("be" if passed else "ef") * 32, "dataset_manifest": "s3://a/datasets/m.json",
        "candidate": {"value": candidate, "ci_low": candidate - 0.02, "ci_high": candidate + 0.02},
        "champions": [{"name": "scoring/champion", "uri": "s3://a/models/1.tar.gz", "auc": {"value": champion, "ci_low": 0.7, "ci_high": 0.8},
                       "difference": {"value": candidate - champion, "ci_low": candidate - champion - 0.03, "ci_high": candidate - champion + 0.03}}],
        "passed": passed, "reason": "all gates passed" if passed else "thresholds gate failed: auc 0.512 < 0.8",
    }


def _summary() -> dict[str, Any]:
    return {
        "stack": "demo-local", "endpoint": "demo-local-scoring", "generated": "2026-12-03T16:00:00+00:00", "seconds": 1.0,
        "versions": [
            {"version": 1, "approval": "Approved", "url": "s3://a/models/1.tar.gz", "auc": 0.89, "data": "sha256:" + "aa" * 32,
             "pipeline_execution": None, "evaluation": None, "decision": "no evaluation: registered by the training container"},
            {"version": 5, "approval": "Approved", "url": "s3://a/pipelines/5.tar.gz", "auc": 0.91, "data": "sha256:" + "be" * 32,
             "pipeline_execution": RUN + "r1", "decision": "all gates passed: thresholds: auc 0.905 >= 0.8",
             "evaluation": {"uri": "s3://a/e.json", "metric": "auc", "rows": 600,
                            "candidate": {"value": 0.905, "ci_low": 0.88, "ci_high": 0.93}, "champions": {"scoring/champion": {"value": 0.761}}}},
        ],
        "features": {"ingestion": {"group": "g", "rows": 1, "written": 1, "online_records": 1, "offline_files": 1, "rejected": 0,
                                   "rows_per_second": 1, "seconds": 1}, "point_in_time": {"as_labelled": 1, "corrected": 1},
                     "datasets": [], "by_id": {"requests": 0, "of": 0, "share": 0.0, "phases": {}}, "lookup_check": {}},
        "phases": [], "alarms": [],
        "ab": {"report": "/state/experiments/scoring/ab.html", "recommendation": "keep", "reason": "not significant yet; 412 more labelled requests per variant",
               "variants": [{"name": "champion", "weight": 80.0, "labelled": 2400, "metrics": {"auc": {"value": 0.79, "ci_low": 0.77, "ci_high": 0.81}}},
                            {"name": "challenger", "weight": 20.0, "labelled": 600, "metrics": {"auc": {"value": 0.8, "ci_low": 0.76, "ci_high": 0.84}}}]},
        "rollout": {"stack_files": "/state/stacks", "audit": "/state/stacks/audit/demo.jsonl", "steps": [
            {"step": "shadow", "reason": "v5 in shadow beside the champion v1", "diff": "+          mode: shadow", "evidence": {}},
            {"step": "pinned", "reason": "v5 replaced v1 through the endpoint's blue/green update", "diff": "-      model_version: 1",
             "evidence": {"checks": [{"check": "agreement", "passed": True, "detail": "decisions at 0.5 agree on 0.9700"},
                                     {"check": "latency", "passed": None, "detail": "CloudWatch returned no p99"}]}},
        ]},
        "retrain": {
            "drifted_features": ["amount", "country"],
            "live_quality": {"champion": {"labeled_rows": 2400, "metrics": {"auc": 0.781, "accuracy": 0.8}, "degraded": ["auc 0.7810 is below 0.8"]}}, "ground_truth": "s3://f/ground-truth/fraud-detector/x.jsonl",
            "ingested": {"rows": 3000, "written": 3000}, "traffic": {"sent": 3000, "answered": {"champion": 2400}, "errors": {}},
            "deliveries": [
                {"alarm": "demo-local-scoring-drift-max-feature-psi", "rule": "r", "function": "f", "decision": "started", "execution": RUN + "r1"},
                {"alarm": "demo-local-scoring-drift-unseen-categories", "rule": "r", "function": "f", "decision": "coalesced", "execution": RUN + "r1"},
            ],
            "runs": [
                {"rule": "r", "alarm": "demo-local-scoring-drift-max-feature-psi", "parameters": {}, "execution": RUN + "r1", "status": "Succeeded",
                 "steps": ["Dataset Succeeded", "Register Succeeded"], "failure_reason": None, "version": 5, "approval": "Approved",
                 "evaluation": _evaluation(0.905, 0.761, True)},
                {"rule": None, "alarm": None, "parameters": {"ShuffleLabels": "true"}, "execution": RUN + "r2", "status": "Failed",
                 "steps": ["Dataset Succeeded", "Fail Failed"], "failure_reason": "Evaluation refused the candidate: thresholds gate failed: auc 0.512 < 0.8",
                 "version": None, "approval": None, "evaluation": _evaluation(0.512, 0.761, False)},
            ],
        },
    }


def test_the_report_lists_each_versions_data_fingerprint_evaluation_and_decision():
    page = " ".join(html.unescape(render_report(_summary())).split())
    assert "sha256:aaaaaaaaaaaa..." in page and "sha256:bebebebebebe..." in page
    assert "candidate auc 0.905 [0.880, 0.930]; scoring/champion 0.761" in page
    assert "no evaluation: registered by the training container" in page
    assert "all gates passed: thresholds: auc 0.905 >= 0.8" in page


def test_the_report_shows_one_started_run_per_drift_event_and_the_refused_drills_reason():
    page = " ".join(html.unescape(render_report(_summary())).split())
    assert page.count("<td>started</td>") == 1 and page.count("<td>coalesced</td>") == 1
    assert "registered v5 (Approved)" in page
    assert "ShuffleLabels=true" in page
    assert "refused</span>: Evaluation refused the candidate: thresholds gate failed: auc 0.512 < 0.8" in page
    assert "scoring/champion 0.761 (-0.249 [-0.279, -0.219])" in page
    assert 'champion: 2400 labelled rows, auc 0.781, accuracy 0.800 (<span class="ALARM">auc 0.7810 is below 0.8</span>).' in page


def test_the_report_shows_each_rollout_step_with_its_checks_and_its_stack_file_change():
    page = " ".join(html.unescape(render_report(_summary())).split())
    assert "<td>shadow</td><td>v5 in shadow beside the champion v1</td>" in page
    assert "agreement: pass (decisions at 0.5 agree on 0.9700); latency: not decided (CloudWatch returned no p99)" in page
    assert "stack file change: pinned</summary><pre>- model_version: 1</pre>" in page


def test_the_report_shows_the_ab_readouts_recommendation_and_each_variants_intervals():
    page = " ".join(html.unescape(render_report(_summary())).split())
    assert "<strong>keep</strong>. not significant yet; 412 more labelled requests per variant" in page
    assert "<td>challenger</td><td>20.0</td><td>600</td><td>0.800 [0.760, 0.840]</td>" in page


def test_the_report_shows_the_faulty_canarys_rollback_with_each_step_and_its_time():
    summary = _summary()
    summary["phases"] = [{
        "title": "4. faulty canary", "sent": 240, "answered": {"champion": 233}, "errors": {"ModelError 500": 7},
        "weights": {"champion": 50, "challenger": 50}, "shadow": None, "shadow_seen": 0, "shadow_copies": {},
        "expected_share": {"champion": 0.5, "challenger": 0.5}, "observed_share": {"champion": 0.97}, "p50_ms": {}, "p99_ms": {},
        "transitions": [],
        "rollout": {
            "EndpointStatus": "InService", "FailureReason": "Rolled back: alarm(s) demo-local-scoring-challenger-5xx-errors in ALARM during the baking period.",
            "LastDeploymentConfig": {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 3600,
                                                                                                 "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 20}}}},
            "Events": [{"kind": "started", "share": 0.0, "detail": "", "at_s": 0.0}, {"kind": "shifted", "share": 0.2, "detail": "", "at_s": 0.01},
                       {"kind": "alarm", "share": 0.2, "detail": "demo-local-scoring-challenger-5xx-errors", "at_s": 2.5},
                       {"kind": "rolled-back", "share": 0.0, "detail": "", "at_s": 2.51}],
        },
    }]
    page = html.unescape(render_report(summary))
    assert "Blue/green update: 4. faulty canary" in page
    assert "InService: Rolled back: alarm(s) demo-local-scoring-challenger-5xx-errors in ALARM during the baking period." in page
    assert "<td>2.50</td><td>alarm</td><td>20 %</td>" in page and "<td>2.51</td><td>rolled-back</td><td>0 %</td>" in page
