"""The shadow analysis: pairs by InferenceId, agreement at the threshold, the difference's quantiles
and histogram (against numpy's), each check against its threshold, and `insufficient` before
`min_requests` pairs; then the readout of a stack's endpoint from S3 captures and CloudWatch on moto."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import numpy as np
import pytest

from mlops_contracts import capture as contract
from specs.config import stack_files
from specs.config.schema import ShadowAnalysis
from mlops.experiment import captures, readout, shadow
from mlops.experiment.captures import Captured

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FIGURES = {"champion": shadow.VariantFigures(1000, 2, 10.0, 30.0), "candidate": shadow.VariantFigures(1000, 3, 11.0, 35.0)}


def _pairs(n: int, seed: int, noise: float) -> tuple[dict[str, Captured], dict[str, Captured]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, n)
    other = np.clip(base + rng.normal(0, noise, n), 0, 1)
    champion = {f"r{i}": Captured(f"r{i}", "champion", NOW, (float(b),)) for i, b in enumerate(base)}
    candidate = {f"r{i}": Captured(f"r{i}", "candidate", NOW, (float(o),)) for i, o in enumerate(other)}
    return champion, candidate


def _analyze(champion, candidate, **thresholds) -> dict:
    return shadow.analyze(champion, candidate, task="binary_classification", thresholds=ShadowAnalysis(**thresholds),
                          figures=FIGURES, names=("champion", "candidate"))


def test_agreement_quantiles_and_histogram_match_numpy():
    champion, candidate = _pairs(1500, seed=1, noise=0.05)
    doc = _analyze(champion, candidate, min_requests=1000)
    c = np.array([champion[k].predictions[0] for k in sorted(champion)])
    s = np.array([candidate[k].predictions[0] for k in sorted(champion)])
    assert doc["agreement"] == pytest.approx(float(np.mean((c >= 0.5) == (s >= 0.5))))
    for q, value in doc["difference"]["quantiles"].items():
        assert value == pytest.approx(float(np.quantile(s - c, float(q))))
    counts, edges = np.histogram(s - c, bins=shadow.HISTOGRAM_BINS)
    assert doc["difference"]["histogram"]["counts"] == pytest.approx(counts.tolist())
    assert doc["difference"]["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert doc["verdict"] == "passed", doc["reason"]


def test_a_shadow_that_disagrees_fails_naming_the_check_and_its_figures():
    champion, candidate = _pairs(1200, seed=2, noise=0.4)
    doc = _analyze(champion, candidate, min_requests=1000, min_agreement=0.95, max_difference_p99=0.2)
    assert doc["verdict"] == "failed"
    failed = {c["check"] for c in doc["checks"] if c["passed"] is False}
    assert failed == {"agreement", "difference"}
    assert "decisions at 0.5 agree on" in doc["reason"] and "(at least 0.95)" in doc["reason"]


def test_too_few_pairs_is_insufficient_and_unpaired_requests_do_not_count():
    champion, candidate = _pairs(500, seed=3, noise=0.01)
    candidate = {f"x{k}": v for k, v in list(candidate.items())[:100]} | dict(list(candidate.items())[100:])
    doc = _analyze(champion, candidate, min_requests=450)
    assert doc["verdict"] == "insufficient"
    assert doc["requests"] == {"champion": 500, "shadow": 500, "paired": 400}
    assert doc["reason"].startswith("400 of 450 requests answered by both champion and candidate")


def test_latency_and_error_increases_beyond_the_thresholds_fail_and_missing_percentiles_do_not_decide():
    champion, candidate = _pairs(1000, seed=4, noise=0.0)
    slow = {"champion": shadow.VariantFigures(1000, 0, 10.0, 30.0), "candidate": shadow.VariantFigures(1000, 40, 12.0, 95.0)}
    doc = shadow.analyze(champion, candidate, task="binary_classification", thresholds=ShadowAnalysis(min_requests=1000),
                         figures=slow, names=("champion", "candidate"))
    assert {c["check"]: c["passed"] for c in doc["checks"]} == {"requests": True, "agreement": True, "latency": False, "errors": False}
    unknown = {"champion": shadow.VariantFigures(1000, 0), "candidate": shadow.VariantFigures(1000, 0)}
    doc = shadow.analyze(champion, candidate, task="binary_classification", thresholds=ShadowAnalysis(min_requests=1000),
                         figures=unknown, names=("champion", "candidate"))
    assert doc["verdict"] == "passed"
    assert [c["detail"] for c in doc["checks"] if c["check"] == "latency"] == ["CloudWatch returned no p99 ModelLatency for the window: not decided"]


def _capture_line(key: str, variant: str, prediction: float, when: datetime) -> str:
    return json.dumps({
        contract.CAPTURE_DATA: {
            contract.ENDPOINT_INPUT: {contract.OBSERVED_CONTENT_TYPE: "application/json", contract.MODE: contract.MODE_INPUT,
                                      contract.DATA: json.dumps({"instances": [{"amount": 1.0}]}), contract.ENCODING: contract.ENCODING_JSON},
            contract.ENDPOINT_OUTPUT: {contract.OBSERVED_CONTENT_TYPE: "application/json", contract.MODE: contract.MODE_OUTPUT,
                                       contract.DATA: json.dumps({"predictions": [prediction]}), contract.ENCODING: contract.ENCODING_JSON},
        },
        contract.EVENT_METADATA: {contract.EVENT_ID: f"{variant}-{key}", contract.INFERENCE_ID: key,
                                  contract.INFERENCE_TIME: when.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
        contract.EVENT_VERSION: contract.EVENT_VERSION_VALUE,
    })


def test_the_readout_reads_s3_captures_per_variant_and_cloudwatch_figures(aws, tmp_path, monkeypatch):
    """fraud-dev's scoring endpoint turned into shadow mode; its captures and metrics put on moto."""
    doc = stack_files.load("fraud-dev").model_dump(mode="json")
    endpoint = doc["endpoints"]["scoring"]
    variant = next(iter(endpoint["traffic"]["variants"].values()))
    endpoint["traffic"] = {"mode": "shadow", "production": {"champion": variant}, "shadow": {"candidate": variant}}
    endpoint["experiment"] = {"shadow": {"min_requests": 50}}
    from specs.config.schema import StackConfig

    config = StackConfig.model_validate(doc)
    from specs.naming import Namer
    from specs.pipelines.sources import capture_root

    namer = Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)
    session = boto3.Session(region_name=config.aws.region)
    s3, cloudwatch = session.client("s3"), session.client("cloudwatch")
    root = capture_root(namer, "scoring")
    bucket, prefix = root[5:].split("/", 1)
    s3.create_bucket(Bucket=bucket, **({} if config.aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": config.aws.region}}))
    now = datetime.now(UTC).replace(microsecond=0)
    for name, shift in (("champion", 0.0), ("candidate", 0.01)):
        body = "\n".join(_capture_line(f"r{i}", name, min(1.0, i / 80 + shift), now - timedelta(minutes=5)) for i in range(80))
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}/{now:%Y/%m/%d/%H}/00-00-000-x.jsonl", Body=body.encode())
        dims = [{"Name": "EndpointName", "Value": namer.endpoint("scoring")}, {"Name": "VariantName", "Value": name}]
        cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 80, "Unit": "Count", "Timestamp": now - timedelta(minutes=5)},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 0, "Unit": "Count", "Timestamp": now - timedelta(minutes=5)}])
    result = readout.shadow_readout(config, "scoring", client=session.client, since=now - timedelta(hours=1), now=now)
    assert result["requests"] == {"champion": 80, "shadow": 80, "paired": 80}
    assert result["captures"]["records"] == {"candidate": 80, "champion": 80}
    assert result["figures"]["candidate"]["invocations"] == 80
    assert result["verdict"] == "passed", result["reason"]
    json_path, html_path = readout.write_reports(result, tmp_path / "out")
    assert json.loads(json_path.read_text())["verdict"] == "passed"
    assert "<svg" in html_path.read_text() and "agreement" in html_path.read_text()


def test_an_endpoint_without_a_shadow_is_refused_naming_its_mode():
    config = stack_files.load("fraud-dev")
    with pytest.raises(readout.ExperimentError, match="has no shadow variant \\(traffic mode single\\)"):
        readout.shadow_readout(config, "scoring", client=lambda service: None)
    with pytest.raises(readout.ExperimentError, match="no endpoint 'nope'; endpoints: scoring"):
        readout.shadow_readout(config, "nope", client=lambda service: None)


def test_unreadable_records_are_counted_not_guessed(tmp_path):
    root = tmp_path / "ep" / "champion" / "2026" / "12" / "03" / "12"
    root.mkdir(parents=True)
    (root / "a.jsonl").write_text(_capture_line("r1", "champion", 0.3, NOW) + "\n{not json}\n" + json.dumps({"eventMetadata": {}}) + "\n")
    read = captures.read(captures.local_lines(tmp_path / "ep"))
    assert {v: len(r) for v, r in read.variants.items()} == {"champion": 1}
    assert len(read.problems) == 2
