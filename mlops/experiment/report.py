"""HTML reports of the readouts, with inline SVG plots (no plotting library): geometry here, markup in
specs/templates/experiment_shadow.html.j2 and experiment_ab.html.j2.

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_contracts import experiment as contract
from specs import templates

WIDTH = 480
"""Plot area width in pixels (labels sit left of it)."""


def histogram_bars(histogram: dict[str, list[float]], *, height: int = 160) -> list[dict[str, float]]:
    """One bar per bin: x, width and height in pixels, with the bin's range and count."""
    counts, edges = histogram["counts"], histogram["edges"]
    if not counts:
        return []
    top = max(counts) or 1
    width = WIDTH / len(counts)
    return [{"x": round(i * width, 1), "width": round(width - 1, 1), "height": round(height * c / top, 1),
             "y": round(height - height * c / top, 1), "low": edges[i], "high": edges[i + 1], "count": c}
            for i, c in enumerate(counts)]


def latency_bars(latency: dict[str, Any]) -> list[dict[str, Any]]:
    """p50 and p99 bars per variant, scaled to the largest value."""
    rows = [(name, stat, figures.get(stat)) for name, figures in latency.items() if isinstance(figures, dict)
            for stat in ("p50_ms", "p99_ms")]
    top = max((v for _, _, v in rows if v is not None), default=0) or 1
    return [{"label": f"{name} {stat.removesuffix('_ms')}", "y": 10 + i * 22, "value": value,
             "width": round(WIDTH * (value or 0) / top, 1)} for i, (name, stat, value) in enumerate(rows)]


def interval_marks(variants: tuple[contract.VariantReadout, ...], metric: str) -> dict[str, Any] | None:
    """A metric's value and 95 % interval per variant on one shared axis (None when no variant has it)."""
    found = [(v.name, v.metrics[metric]) for v in variants if metric in v.metrics]
    if not found:
        return None
    low = min(e["ci_low"] if e["ci_low"] is not None else e["value"] for _, e in found)
    high = max(e["ci_high"] if e["ci_high"] is not None else e["value"] for _, e in found)
    span = (high - low) or 1.0

    def x(value: float | None) -> float:
        return round(WIDTH * ((value if value is not None else low) - low) / span, 1)

    marks = [{"label": name, "y": 14 + i * 24, "value": e["value"], "ci_low": e["ci_low"], "ci_high": e["ci_high"],
              "x": x(e["value"]), "x_low": x(e["ci_low"]), "x_high": x(e["ci_high"])} for i, (name, e) in enumerate(found)]
    return {"metric": metric, "low": low, "high": high, "marks": marks, "height": 24 + 24 * len(marks)}


def render_shadow(readout: contract.ShadowReadout) -> str:
    return templates.render("experiment_shadow.html.j2", r=readout, histogram=histogram_bars(readout.differences["histogram"]),
                            latency=latency_bars(readout.latency))


def render_ab(readout: contract.ABReadout) -> str:
    metrics = sorted({m for v in readout.variants for m in v.metrics})
    charts = [c for c in (interval_marks(readout.variants, m) for m in metrics) if c is not None]
    return templates.render("experiment_ab.html.j2", r=readout, charts=charts)


def write(readout: contract.ShadowReadout | contract.ABReadout, out: Path) -> tuple[Path, Path]:
    """Write `<kind>.json` and `<kind>.html` into `out`; returns both paths."""
    shadow = isinstance(readout, contract.ShadowReadout)
    json_path = contract.write(readout, out / (contract.SHADOW_FILE if shadow else contract.AB_FILE))
    html_path = json_path.with_suffix(".html")
    html_path.write_text(render_shadow(readout) if shadow else render_ab(readout), encoding="utf-8")
    return json_path, html_path
