"""The HTML drift report: one jinja2 environment (StrictUndefined, HTML autoescaped) and the
geometry of its inline SVG bar charts (baseline against current share of every bin); no plotting
library. The template is `templates/drift_report.html.j2` (package data of `mlops_serving`).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

from typing import Any

import jinja2

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mlops_serving.monitor", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=True,
    keep_trailing_newline=True,
)

CHART_WIDTH = 640
CHART_HEIGHT = 150
_LEFT = 40
_BOTTOM = 34
_TOP = 8


def render_drift(report: dict[str, Any]) -> str:
    """`drift_report.html` for a drift report (the `drift_report.json` document)."""
    charts = {name: chart(entry) for name, entry in report["features"].items()}
    prediction = chart(report["prediction"]) if report["prediction"] is not None else None
    return ENV.get_template("drift_report.html.j2").render(
        report=report, charts=charts, prediction_chart=prediction, width=CHART_WIDTH, height=CHART_HEIGHT,
    )


def bin_labels(entry: dict[str, Any]) -> list[str]:
    """Axis labels: the category names, or each numeric bin's lower edge."""
    bins = entry["bins"]
    if "labels" in bins:
        return list(bins["labels"])
    return [f"{edge:.3g}" for edge in bins["edges"][:-1]]


def chart(entry: dict[str, Any]) -> dict[str, Any] | None:
    """Bars of one feature: per bin a grey baseline bar and a blue current bar, heights scaled to
    the largest share; None when there is nothing to draw."""
    bins = entry["bins"]
    baseline = bins["baseline"]
    current = bins["current"] or [0.0] * len(baseline)
    if not baseline:
        return None
    labels = bin_labels(entry)
    edges = bins.get("edges")
    names = labels if not edges else [
        f"[{lo:.4g}, {hi:.4g}{']' if i == len(edges) - 2 else ')'}" for i, (lo, hi) in enumerate(zip(edges, edges[1:]))]
    top = max(max(baseline), max(current)) or 1.0
    plot_h = CHART_HEIGHT - _BOTTOM - _TOP
    slot = (CHART_WIDTH - _LEFT) / len(baseline)
    bar_w = max(slot * 0.38, 1.0)
    bars = []
    for i, (label, b, c) in enumerate(zip(names, baseline, current)):
        x = _LEFT + i * slot + slot * 0.1
        for kind, share, offset in (("baseline", b, 0.0), ("current", c, bar_w)):
            h = plot_h * share / top
            bars.append({"kind": kind, "x": round(x + offset, 1), "y": round(_TOP + plot_h - h, 1),
                         "w": round(bar_w, 1), "h": round(h, 1), "title": f"{label}: {kind} {share:.2%}"})
    ticks = [{"x": round(_LEFT + i * slot + slot / 2, 1), "label": label[:10]} for i, label in enumerate(labels)]
    return {"bars": bars, "ticks": ticks, "axis_y": CHART_HEIGHT - _BOTTOM, "top": top, "left": _LEFT}
