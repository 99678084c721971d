"""`mlops experiment shadow` end to end on moto: captures joined by inference id, checks against the
endpoint's thresholds, verdicts passed / failed / insufficient with their exit codes, JSON + HTML."""
from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from experiment_world import SHADOW_TRAFFIC
from mlops.cli import app
from mlops.experiment.readouts import ExperimentError, shadow_readout
from mlops_contracts import experiment as contract


def _traffic(world, *, n: int, shadow_shift: float = 0.0, shadow_latency_ms: float = 12.0, seed: int = 1) -> dict:
    rng = random.Random(seed)
    champion = {f"req-{i}": [round(rng.random(), 4)] for i in range(n)}
    shadow = {k: [min(1.0, max(0.0, round(v[0] + rng.gauss(shadow_shift, 0.01), 4)))] for k, v in champion.items()}
    shadow["shadow-only"] = [0.5]  # a request the champion never captured is not joined
    now = time.time()
    world.capture("champion", champion, when=now)
    world.capture("candidate", shadow, when=now)
    world.serving("champion", requests=n, errors=0, latencies_ms=[10.0] * n)
    world.serving("candidate", requests=n, errors=0, latencies_ms=[shadow_latency_ms] * n)
    return {"champion": champion, "shadow": shadow}


def test_a_close_shadow_passes_with_its_agreement_and_differences(stacks, world):
    config = stacks({"traffic": SHADOW_TRAFFIC, "experiment": {"shadow": {"min_requests": 200, "max_difference_p99": 0.05}}})
    sent = _traffic(world, n=300)
    doc, problems = shadow_readout(config, endpoint="scoring", variant=None, since=None, client=world.client)
    assert problems == []
    assert doc.verdict == "passed", doc.reason
    assert doc.requests == {"champion": 300, "shadow": 301, "joined": 300, "min_requests": 200}
    keys = sorted(sent["champion"])
    c = np.array([sent["champion"][k][0] for k in keys])
    s = np.array([sent["shadow"][k][0] for k in keys])
    checks = {check.name: check for check in doc.checks}
    assert checks["agreement"].value == pytest.approx(np.mean((c >= 0.5) == (s >= 0.5)))
    assert checks["difference_p99"].value == pytest.approx(np.quantile(np.abs(s - c), 0.99))
    assert doc.differences["quantiles"]["p50"] == pytest.approx(np.quantile(s - c, 0.5))
    counts, edges = np.histogram(s - c, bins=20)
    assert doc.differences["histogram"]["counts"] == counts.tolist()
    assert doc.differences["histogram"]["edges"] == pytest.approx(edges.tolist())
    # moto has no percentiles: the fallback says so, and p99 is the maximum (12 ms vs 10 ms)
    assert checks["latency_p99"].value == pytest.approx(2.0)
    assert "no percentiles" in doc.latency["source"]
    assert checks["error_rate"].value == 0.0


def test_a_slow_and_disagreeing_shadow_fails_naming_each_check(stacks, world):
    config = stacks({"traffic": SHADOW_TRAFFIC, "experiment": {"shadow": {"min_requests": 100}}})
    _traffic(world, n=150, shadow_shift=0.3, shadow_latency_ms=90.0)
    doc, _ = shadow_readout(config, endpoint="scoring", variant=None, since=None, client=world.client)
    assert doc.verdict == "failed"
    failed = [c.name for c in doc.checks if not c.passed]
    assert failed == ["agreement", "latency_p99"]
    assert "shadow p99 latency increase 80 ms > 50 ms" in doc.reason


def test_too_few_joined_requests_is_insufficient_not_a_verdict_and_exits_3(stacks, world, tmp_path):
    stacks({"traffic": SHADOW_TRAFFIC})  # min_requests defaults to 1000
    _traffic(world, n=120)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["experiment", "shadow", "-s", "fraud-dev", "--endpoint", "scoring", "--out", str(out)])
    assert result.exit_code == 3, result.output
    doc = contract.read(out / "shadow.json")
    assert doc.verdict == "insufficient"
    assert doc.reason.startswith("120 joined requests of the 1000 needed")
    html = (out / "shadow.html").read_text()
    assert "<svg" in html and "insufficient" in html


def test_the_cli_exits_0_on_pass_and_1_on_failure_with_the_json_on_stdout(stacks, world):
    stacks({"traffic": SHADOW_TRAFFIC, "experiment": {"shadow": {"min_requests": 100}}})
    _traffic(world, n=150, shadow_latency_ms=200.0)
    result = CliRunner().invoke(app, ["experiment", "shadow", "-s", "fraud-dev", "--endpoint", "scoring", "--json", "-",
                                      "--out", str(world.local.parent / "r")])
    assert result.exit_code == 1, result.output
    doc = contract.parse(json.loads(result.stdout))
    assert doc.verdict == "failed" and [c.name for c in doc.checks if not c.passed] == ["latency_p99"]


def test_since_leaves_out_older_captures(stacks, world):
    config = stacks({"traffic": SHADOW_TRAFFIC, "experiment": {"shadow": {"min_requests": 10}}})
    _traffic(world, n=40)
    later = datetime.now(UTC) + timedelta(minutes=5)
    doc, _ = shadow_readout(config, endpoint="scoring", variant=None, since=later, client=world.client)
    assert doc.requests["joined"] == 0 and doc.verdict == "insufficient"


def test_an_endpoint_without_a_shadow_is_a_configuration_error(stacks, world):
    config = stacks({})
    with pytest.raises(ExperimentError, match="has no shadow variant .*traffic.mode: shadow"):
        shadow_readout(config, endpoint="scoring", variant=None, since=None, client=world.client)
    result = CliRunner().invoke(app, ["experiment", "shadow", "-s", "fraud-dev", "--endpoint", "nope"])
    assert result.exit_code == 2 and "endpoints: scoring" in result.output


def test_a_bad_since_is_a_usage_error(stacks, world):
    stacks({"traffic": SHADOW_TRAFFIC})
    result = CliRunner().invoke(app, ["experiment", "shadow", "-s", "fraud-dev", "--endpoint", "scoring", "--since", "yesterday"])
    assert result.exit_code == 64 and "--since" in result.output
