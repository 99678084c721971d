"""Prometheus metrics, kept in plain Python numbers and rendered in the text exposition format.

Written by hand rather than with `prometheus_client` because every request touches it: one
labelled counter increment plus one histogram observation measured 6.1 us per request with
prometheus_client (a `labels()` lookup and a lock per call) against 0.5 us here, on a budget of
~90 us per request. The tests parse `/metrics` with prometheus_client's own parser.
All updates happen on the event-loop thread, except the capture counters, each of which has
exactly one writing thread, so no locks are needed.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative-on-render histogram with fixed upper bounds (`le`)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        # bisect_left puts a value equal to a bound into that bound's bucket (`le` is inclusive).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def render(self, name: str, labels: str = "") -> list[str]:
        """Exposition lines `_bucket`, `_sum`, `_count` for this histogram."""
        sep = "," if labels else ""
        lines = []
        running = 0
        for bound, count in zip(self.bounds, self.counts):
            running += count
            lines.append(f'{name}_bucket{{{labels}{sep}le="{_fmt(bound)}"}} {running}')
        running += self.counts[-1]
        lines.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {running}')
        suffix = f"{{{labels}}}" if labels else ""
        lines.append(f"{name}_sum{suffix} {_fmt(self.sum)}")
        lines.append(f"{name}_count{suffix} {running}")
        return lines


class Metrics:
    """The server's metrics; `render()` produces the `/metrics` body."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.predicted_rows = 0
        self.model_loaded = 0
        self.model_labels = ""
        self.open_connections = 0
        # Read at render time from the capture writer, which owns those counters.
        self.capture_stats: Callable[[], dict[str, int]] | None = None

    def count_request(self, route: str, status: int) -> None:
        """One finished request on `route` (a fixed route name, never the raw path)."""
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def observe_batch(self, rows: int, seconds: float) -> None:
        """One model call over `rows` rows that took `seconds`."""
        self.batch_rows.observe(rows)
        self.batch_seconds.observe(seconds)
        self.predicted_rows += rows

    def render(self) -> bytes:
        """The whole exposition, text format 0.0.4."""
        out: list[str] = []

        def header(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        header("mlops_serving_requests_total", "counter", "HTTP requests answered, by route and status code.")
        for (route, status), count in sorted(self.requests.items()):
            out.append(f'mlops_serving_requests_total{{route="{route}",code="{status}"}} {count}')
        header("mlops_serving_request_duration_seconds", "histogram",
               "Time from the first byte of an /invocations request to its response being written.")
        out.extend(self.latency.render("mlops_serving_request_duration_seconds"))
        header("mlops_serving_batch_rows", "histogram", "Rows per model call (dynamic batch size).")
        out.extend(self.batch_rows.render("mlops_serving_batch_rows"))
        header("mlops_serving_batch_duration_seconds", "histogram", "Duration of one model call.")
        out.extend(self.batch_seconds.render("mlops_serving_batch_duration_seconds"))
        header("mlops_serving_predicted_rows_total", "counter", "Rows the model has scored.")
        out.append(f"mlops_serving_predicted_rows_total {self.predicted_rows}")
        header("mlops_serving_model_loaded", "gauge", "1 once the model is loaded and warmed up.")
        out.append(f"mlops_serving_model_loaded {self.model_loaded}")
        if self.model_labels:
            header("mlops_serving_model_info", "gauge", "The loaded model (value is always 1).")
            out.append(f"mlops_serving_model_info{{{self.model_labels}}} 1")
        header("mlops_serving_open_connections", "gauge", "Open client connections.")
        out.append(f"mlops_serving_open_connections {self.open_connections}")
        stats = self.capture_stats() if self.capture_stats else {}
        for key, help_text in (
            ("records", "Capture records queued for writing."),
            ("written", "Capture records written to files."),
            ("dropped", "Capture records dropped because the queue was full or the writer had stopped."),
            ("sampled_out", "Predictions not captured because of MLOPS_CAPTURE_SAMPLE."),
            ("write_errors", "Capture records lost to file-system errors."),
        ):
            name = f"mlops_serving_capture_{key}_total"
            header(name, "counter", help_text)
            out.append(f"{name} {stats.get(key, 0)}")
        out.append("")
        return "\n".join(out).encode()


def label_value(text: str) -> str:
    """Escape a label value for the exposition format."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
