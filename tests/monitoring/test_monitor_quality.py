"""Live quality: ground truth joined to captured predictions by inference id, per variant."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pytest
from monitor_support import TASK, Request, ground_truth_lines, rows_of, score, write_captures

from mlops_contracts import metrics
from mlops_serving.monitor.main import main
from mlops_serving.monitor.quality import LabelCounts, LabelIndex, roc_auc
from mlops_training import synthetic
from mlops_training.evaluate import compute_metrics, roc_auc as training_roc_auc


class Scenario:
    """Captures of a champion and a shadow variant (same inference ids) and their ground truth.

    - 300 single-row requests in the window; 240 of them labelled (60 never are);
    - 10 of the labelled ids are labelled twice: first wrongly, then rightly (the later wins);
    - 2 three-row requests labelled "a,b,c"; 1 two-row request with a single label (shape mismatch);
    - 40 labelled requests from 30 hours ago (outside the 24 h window);
    - 25 labels for ids no capture has, and an old label file (hour directory before the window)
      labelling 20 of the otherwise unlabelled ids, which must not be read.
    """

    def __init__(self, root: Path) -> None:
        table = synthetic.generate(400, task=TASK, seed=77)
        rows = rows_of(table)
        p = score(table).tolist()
        y = table.column("is_fraud").to_pylist()
        now = time.time()
        self.now = now
        self.requests: list[Request] = []
        self.truth: dict[str, list[int]] = {}
        for i in range(300):
            self.requests.append(Request(f"in-{i}", [rows[i]], [p[i]], now - 600 + i))
        for i in range(300, 340):
            self.requests.append(Request(f"old-{i}", [rows[i]], [p[i]], now - 30 * 3600 + i))
        self.requests.append(Request("multi-0", rows[340:343], p[340:343], now - 100))
        self.requests.append(Request("multi-1", rows[343:346], p[343:346], now - 99))
        self.requests.append(Request("mismatch", rows[346:348], p[346:348], now - 98))
        labelled = [f"in-{i}" for i in range(240)] + [f"old-{i}" for i in range(300, 340)]
        labels = {rid: [y[int(rid.split("-")[1])]] for rid in labelled}
        labels["multi-0"] = y[340:343]
        labels["multi-1"] = y[343:346]
        labels["mismatch"] = [y[346]]
        wrong_first = {f"in-{i}": [1 - y[i]] for i in range(10)}
        strangers = {f"nobody-{i}": [1] for i in range(25)}
        hour_dir = datetime.fromtimestamp(now, UTC).strftime("%Y/%m/%d/%H")
        old_dir = datetime.fromtimestamp(now - 30 * 3600, UTC).strftime("%Y/%m/%d/%H")
        self.labels = root / "labels"
        self._write(self.labels / hour_dir / "a.jsonl", {**wrong_first, **strangers})
        self._write(self.labels / hour_dir / "b.jsonl", labels)
        self._write(self.labels / old_dir / "old.jsonl", {f"in-{i}": [y[i]] for i in range(240, 260)})
        self.captures = root / "captures"
        write_captures(self.captures, self.requests, variant="champion")
        shadow = [Request(r.inference_id, r.rows, [1.0 - v for v in r.predictions], r.when) for r in self.requests]
        write_captures(self.captures, shadow, variant="shadow")
        # What a correct join gives: the window's requests with a (latest) label of the right length.
        self.expected_y: list[int] = []
        self.expected_p: list[float] = []
        for r in self.requests:
            if r.when < now - 24 * 3600 or r.inference_id not in labels or len(labels[r.inference_id]) != len(r.rows):
                continue
            self.expected_y += labels[r.inference_id]
            self.expected_p += r.predictions

    @staticmethod
    def _write(path: Path, labels: dict[str, list[int]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(ground_truth_lines(labels)) + "\n")

    def run(self, out: Path, *extra: str, environ: dict | None = None) -> tuple[int, dict]:
        status = main(["quality", "--captures", str(self.captures), "--labels", str(self.labels), "--out", str(out),
                       "--endpoint", "fraud", "--window-hours", "24", *extra], environ=environ or {})
        return status, json.loads((out / "quality_report.json").read_text())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    return Scenario(tmp_path_factory.mktemp("quality"))


def test_labels_join_predictions_by_inference_id_per_variant_with_unmatched_counted(scenario, tmp_path):
    status, report = scenario.run(tmp_path)
    assert status == 0 and report["degraded"] is False
    champion = report["variants"]["champion"]
    assert champion["records"] == 303  # the 40 old ones are outside the window
    assert champion["matched_records"] == 240 + 2
    assert champion["unmatched_records"] == 60
    assert champion["shape_mismatch"] == 1
    assert champion["labeled_rows"] == len(scenario.expected_y) == 246
    expected = compute_metrics(task=TASK, y_true=np.array(scenario.expected_y), predictions=np.array(scenario.expected_p))
    for key in ("auc", "accuracy", "log_loss"):
        assert champion["metrics"][key] == pytest.approx(expected[key], rel=1e-12)
    shadow = report["variants"]["shadow"]
    assert shadow["matched_records"] == champion["matched_records"]
    assert shadow["metrics"]["auc"] == pytest.approx(1 - expected["auc"], rel=1e-12)
    assert report["capture"]["outside_window"] == 80
    labels = report["labels"]
    assert labels["files"] == 2  # the file in an hour directory before the window is not read
    assert labels["records"] == 10 + 25 + 283 and labels["duplicates"] == 10
    # 25 strangers and the 40 labels of requests outside the window matched nothing in it.
    assert labels["without_capture_in_window"] == 65


def test_a_metric_past_its_threshold_exits_3_and_names_the_variant(scenario, tmp_path):
    status, report = scenario.run(tmp_path, "--min-auc", "0.7", "--max-log-loss", "50")
    assert status == 3
    degraded = [(d["variant"], d["metric"]) for d in report["variants"]["shadow"]["degraded"]]
    assert degraded == [("shadow", "auc")]
    assert report["variants"]["champion"]["degraded"] == []
    status, _ = scenario.run(tmp_path, "--min-auc", "0.7", "--min-labeled", "1000")
    assert status == 0, "too few labels to judge"


def test_live_metrics_reach_cloudwatch_per_endpoint_and_variant_with_labels_read_from_s3(aws, scenario, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="labels", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for path in scenario.labels.rglob("*.jsonl"):
        s3.upload_file(str(path), "labels", f"ground-truth/fraud/{path.relative_to(scenario.labels).as_posix()}")
    status, report = scenario.run(tmp_path, "--publish", "cloudwatch", "--labels", "s3://labels/ground-truth/fraud")
    assert status == 0
    local_status, local = scenario.run(tmp_path / "local")
    assert report["variants"] == local["variants"] and report["labels"]["files"] == 2
    cloudwatch = boto3.client("cloudwatch")
    now = datetime.now(UTC)
    for variant in ("champion", "shadow"):
        for suffix, key in (("AUC", "auc"), ("Accuracy", "accuracy"), ("LogLoss", "log_loss")):
            points = cloudwatch.get_metric_statistics(
                Namespace=metrics.NAMESPACE, MetricName=f"{metrics.LIVE_METRIC_PREFIX}{suffix}",
                Dimensions=[{"Name": metrics.ENDPOINT_DIMENSION, "Value": "fraud"},
                            {"Name": metrics.VARIANT_DIMENSION, "Value": variant}],
                StartTime=now - timedelta(hours=2), EndTime=now + timedelta(hours=2), Period=60, Statistics=["Average"],
            )["Datapoints"]
            assert [p["Average"] for p in points] == [pytest.approx(report["variants"][variant]["metrics"][key])]


def test_label_index_keeps_the_latest_label_and_never_matches_a_longer_id_by_prefix():
    counts = LabelCounts()
    ids = [np.array([b"a", b"bb", b"a"], dtype="S2"), np.array([b"ccc"], dtype="S3")]
    index = LabelIndex.build(ids, [np.array([1, 1, 2]), np.array([1])], [np.array([0.0, 1.0, 1.0, 0.0, 1.0])], counts)
    assert counts.duplicates == 1
    found = index.lookup(["a", "bb", "ccc", "cccc", "bbx", "", "zz"])
    assert (found >= 0).tolist() == [True, True, True, False, False, False, False]
    a = found[0]
    assert index.values[index.starts[a]:index.starts[a] + index.lengths[a]].tolist() == [1.0, 0.0]


def test_auc_is_the_training_containers_definition_ties_included():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    p = np.round(rng.random(500), 1)  # many ties
    assert roc_auc(y, p) == training_roc_auc(y, p)
    assert roc_auc(np.ones(5), p[:5]) is None
