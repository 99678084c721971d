"""`mlops experiment ab` on moto: captures joined with ground truth per variant, metrics and intervals
against scikit-learn and scipy on the same rows, the primary test, the sample still needed and the
recommendation (keep, promote, stop)."""
from __future__ import annotations

import json
import math
import random
import time
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats as sp
from sklearn.metrics import accuracy_score, log_loss, mean_absolute_error, roc_auc_score
from typer.testing import CliRunner

from experiment_world import AB_TRAFFIC
from mlops.cli import app
from mlops.experiment import ab, stats
from mlops.experiment.readouts import ExperimentError, ab_readout
from mlops_contracts import experiment as contract
from specs.config.schema import ABTest


def _scored(rng: random.Random, n: int, signal: float, prefix: str) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    captures, labels = {}, {}
    for i in range(n):
        y = int(rng.random() < 0.4)
        captures[f"{prefix}-{i}"] = [round(1 / (1 + math.exp(-(rng.gauss(0, 1) + signal * (2 * y - 1)))), 4)]
        labels[f"{prefix}-{i}"] = [y]
    return captures, labels


def _publish(world, *, champion_signal: float, challenger_signal: float, n: int, labelled: float = 1.0, seed: int = 3):
    rng = random.Random(seed)
    champion, champion_labels = _scored(rng, n, champion_signal, "a")
    challenger, challenger_labels = _scored(rng, n, challenger_signal, "b")
    world.capture("champion", champion, when=time.time())
    world.capture("challenger", challenger, when=time.time())
    truth = {k: v for k, v in {**champion_labels, **challenger_labels}.items() if rng.random() < labelled}
    world.ground_truth(truth, at=datetime.now(UTC))
    return {"champion": (champion, truth), "challenger": (challenger, truth)}


def _rows(captures, truth):
    keys = sorted(k for k in captures if k in truth)
    return np.array([truth[k][0] for k in keys]), np.array([captures[k][0] for k in keys])


def test_a_better_challenger_is_promoted_with_metrics_as_sklearn_computes_them(stacks, world):
    config = stacks({"traffic": AB_TRAFFIC})
    sent = _publish(world, champion_signal=0.6, challenger_signal=1.2, n=1200)
    doc, problems = ab_readout(config, endpoint="scoring", since=None, client=world.client)
    assert problems == []
    assert (doc.champion, doc.challenger, doc.primary_metric) == ("champion", "challenger", "auc")
    for variant in doc.variants:
        y, p = _rows(*sent[variant.name])
        assert variant.labelled == len(y) == 1200 and variant.captured == 1200
        assert variant.metrics["auc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert variant.metrics["accuracy"]["value"] == pytest.approx(accuracy_score(y, p >= 0.5))
        assert variant.metrics["log_loss"]["value"] == pytest.approx(log_loss(y, p), rel=1e-9)
        ci = sp.binomtest(int(accuracy_score(y, p >= 0.5, normalize=False)), len(y)).proportion_ci(method="wilson")
        assert (variant.metrics["accuracy"]["ci_low"], variant.metrics["accuracy"]["ci_high"]) == pytest.approx((ci.low, ci.high))
        a = variant.metrics["auc"]
        assert a["ci_low"] < a["value"] < a["ci_high"]
    aucs = [v.metrics["auc"] for v in doc.variants]
    half_widths = [(m["ci_high"] - m["ci_low"]) / 2 / sp.norm.ppf(0.975) for m in aucs]
    z = (aucs[1]["value"] - aucs[0]["value"]) / math.hypot(*half_widths)
    assert doc.test["p_value"] == pytest.approx(2 * sp.norm.sf(abs(z)), rel=1e-6)
    accuracies = [int(round(v.metrics["accuracy"]["value"] * v.labelled)) for v in doc.variants]
    _, p_chi, _, _ = sp.chi2_contingency([[accuracies[0], 1200 - accuracies[0]], [accuracies[1], 1200 - accuracies[1]]], correction=False)
    assert doc.test["secondary"]["p_value"] == pytest.approx(p_chi, rel=1e-9)
    assert doc.test["significant"] and doc.test["better"] and doc.recommendation == "promote"


def test_a_worse_challenger_is_stopped(stacks, world):
    config = stacks({"traffic": AB_TRAFFIC})
    _publish(world, champion_signal=1.2, challenger_signal=0.4, n=800)
    doc, _ = ab_readout(config, endpoint="scoring", since=None, client=world.client)
    assert doc.recommendation == "stop" and "significantly worse" in doc.reason
    assert doc.test["difference"] < 0


def test_too_few_labels_keeps_the_test_running_and_says_how_many_more(stacks, world):
    config = stacks({"traffic": AB_TRAFFIC})
    _publish(world, champion_signal=0.8, challenger_signal=0.8, n=300, labelled=0.3)
    doc, _ = ab_readout(config, endpoint="scoring", since=None, client=world.client)
    assert doc.recommendation == "keep"
    least = min(v.labelled for v in doc.variants)
    assert least < 200
    per_variant = doc.sample_size["per_variant"]
    assert doc.sample_size["more_needed"] == max(per_variant, 200) - least
    assert f"{doc.sample_size['more_needed']} more" in doc.reason


def test_the_cli_writes_json_and_html_and_refuses_an_endpoint_with_one_variant(stacks, world, tmp_path):
    stacks({"traffic": AB_TRAFFIC})
    _publish(world, champion_signal=0.6, challenger_signal=1.2, n=400)
    result = CliRunner().invoke(app, ["experiment", "ab", "-s", "fraud-dev", "--endpoint", "scoring", "--out", str(tmp_path / "r"),
                                      "--json", str(tmp_path / "copy.json")])
    assert result.exit_code == 0, result.output
    doc = contract.read(tmp_path / "r" / "ab.json")
    assert json.loads((tmp_path / "copy.json").read_text()) == contract.to_dict(doc)
    assert f"recommendation: {doc.recommendation}" in result.output
    html = (tmp_path / "r" / "ab.html").read_text()
    assert html.count("<svg") == 3  # auc, accuracy, log_loss with intervals
    config = stacks({"traffic": {"mode": "single", "variants": {"champion": AB_TRAFFIC["variants"]["champion"] | {"weight": None}}}})
    with pytest.raises(ExperimentError, match="one production variant .*traffic.mode: ab"):
        ab_readout(config, endpoint="scoring", since=None, client=world.client)
    result = CliRunner().invoke(app, ["experiment", "ab", "-s", "fraud-dev", "--endpoint", "scoring"])
    assert result.exit_code == 2


def _regression(seed: int, n: int, noise: float, prefix: str):
    rng = random.Random(seed)
    captures = {f"{prefix}-{i}": [round(rng.gauss(50, 10), 3)] for i in range(n)}
    labels = {k: [round(v[0] + rng.gauss(0, noise), 3)] for k, v in captures.items()}
    return captures, labels


def test_regression_readout_matches_sklearn_and_welch_from_scipy():
    a, la = _regression(1, 400, 5.0, "a")
    b, lb = _regression(2, 400, 4.0, "b")
    settings = ABTest(min_detectable_effect=0.2)
    doc = ab.readout(stack="s", endpoint="e", task="regression", settings=settings, threshold=0.5,
                     variants=[("main", 50.0), ("new", 50.0)], captures={"main": a, "new": b}, labels={**la, **lb}, since=None)
    for variant, (caps, labels) in zip(doc.variants, ((a, la), (b, lb))):
        y, p = _rows(caps, labels)
        assert variant.metrics["rmse"]["value"] == pytest.approx(math.sqrt(np.mean((p - y) ** 2)))
        assert variant.metrics["mae"]["value"] == pytest.approx(mean_absolute_error(y, p))
        errors = np.abs(p - y)
        low, high = sp.t.interval(0.95, len(errors) - 1, loc=errors.mean(), scale=sp.sem(errors))
        assert (variant.metrics["mae"]["ci_low"], variant.metrics["mae"]["ci_high"]) == pytest.approx((low, high))
    (ya, pa), (yb, pb) = _rows(a, la), _rows(b, lb)
    expected = sp.ttest_ind((pb - yb) ** 2, (pa - ya) ** 2, equal_var=False)
    assert doc.test["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert doc.test["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert doc.test["better"] and doc.test["difference"] < 0
    # the sample size is the two-sided z-test's for the effect on the MSE (2 x rmse x effect)
    rmse = math.sqrt(np.mean((pa - ya) ** 2))
    va, vb = np.var((pa - ya) ** 2, ddof=1), np.var((pb - yb) ** 2, ddof=1)
    n = doc.sample_size["per_variant"]
    shift = 2 * rmse * 0.2 / math.sqrt((va + vb) / n)
    assert sp.norm.sf(sp.norm.ppf(0.975) - shift) == pytest.approx(0.8, abs=0.01)
    assert n == stats.sample_size(unit_variance_a=va, unit_variance_b=vb, effect=2 * rmse * 0.2, alpha=0.05, power=0.8)


def test_no_difference_after_the_needed_sample_stops_the_test():
    a, la = _regression(1, 3000, 5.0, "a")
    b, lb = _regression(2, 3000, 5.0, "b")
    doc = ab.readout(stack="s", endpoint="e", task="regression", settings=ABTest(min_detectable_effect=1.0), threshold=0.5,
                     variants=[("main", 1.0), ("new", 1.0)], captures={"main": a, "new": b}, labels={**la, **lb}, since=None)
    assert not doc.test["significant"]
    assert doc.sample_size["per_variant"] <= 3000 and doc.sample_size["more_needed"] == 0
    assert doc.recommendation == "stop" and "does not beat the champion" in doc.reason


def test_the_contract_refuses_an_unknown_recommendation_naming_the_allowed_ones():
    a, la = _regression(1, 50, 5.0, "a")
    doc = ab.readout(stack="s", endpoint="e", task="regression", settings=ABTest(), threshold=0.5,
                     variants=[("main", 1.0), ("new", 1.0)], captures={"main": a, "new": a}, labels=la, since=None)
    raw = contract.to_dict(doc)
    assert contract.parse(json.loads(json.dumps(raw))) == contract.parse(raw)
    with pytest.raises(contract.ReadoutFormatError, match="recommendation: 'ship'; allowed keep, promote, stop"):
        contract.parse(raw | {"recommendation": "ship"})
    with pytest.raises(contract.ReadoutFormatError, match="kind 'x'; allowed shadow, ab"):
        contract.parse(raw | {"kind": "x"})
