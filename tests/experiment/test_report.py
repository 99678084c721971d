"""The HTML reports render every state of a readout, the empty ones included (StrictUndefined: a
missing variable fails), with their SVG plots."""
from __future__ import annotations

from mlops.experiment import ab, report, shadow
from mlops.experiment.captures import Serving
from specs.config.schema import ABTest, ShadowAnalysis


def test_a_shadow_readout_with_nothing_joined_and_no_metrics_renders_as_insufficient(tmp_path):
    doc = shadow.analyse(stack="s", endpoint="e", task="regression", settings=ShadowAnalysis(), champion="a", shadow="b",
                         champion_captures={}, shadow_captures={}, serving={"a": Serving(0, 0, None, None, True), "b": Serving(0, 0, None, None, True)},
                         since=None)
    assert doc.verdict == "insufficient"
    assert [c.passed for c in doc.checks] == [False, False]  # no figures is never a pass
    json_path, html_path = report.write(doc, tmp_path)
    html = html_path.read_text()
    assert json_path.name == "shadow.json" and "insufficient" in html and "no data" in html


def test_a_shadow_readout_draws_one_bar_per_histogram_bin():
    champion = {f"k{i}": [i / 100] for i in range(100)}
    candidate = {k: [v[0] + (0.01 if i % 2 else -0.02)] for i, (k, v) in enumerate(champion.items())}
    serving = {"a": Serving(100, 0, 5.0, 9.0, True), "b": Serving(100, 1, 6.0, 11.0, True)}
    doc = shadow.analyse(stack="s", endpoint="e", task="binary_classification", settings=ShadowAnalysis(min_requests=50),
                         champion="a", shadow="b", champion_captures=champion, shadow_captures=candidate, serving=serving, since=None)
    html = report.render_shadow(doc)
    assert html.count("<rect") == 20 + 4  # 20 bins, p50 and p99 of two variants
    assert doc.latency["source"] == "CloudWatch ModelLatency percentiles"
    assert doc.errors["b"]["rate"] == 0.01


def test_an_ab_readout_without_labels_renders_with_the_test_not_computed(tmp_path):
    doc = ab.readout(stack="s", endpoint="e", task="binary_classification", settings=ABTest(), threshold=0.5,
                     variants=[("a", 1.0), ("b", 1.0)], captures={"a": {"x": [0.2]}, "b": {}}, labels={}, since=None)
    assert doc.recommendation == "keep" and doc.test["p_value"] is None and doc.sample_size["more_needed"] == 200
    _, html_path = report.write(doc, tmp_path)
    assert "Not computed" in html_path.read_text()
