"""Evaluate CloudWatch metric alarms against a CloudWatch endpoint that stores but does not evaluate.

moto keeps alarms and datapoints but never moves an alarm between states, so the local environment
does what CloudWatch does: for each alarm read the last `EvaluationPeriods` periods of its metric (or
metric math), count breaching datapoints, apply `TreatMissingData`, and set the state when it changes.

Known difference: moto computes no percentiles, so an ExtendedStatistic (p99) is evaluated on the
Maximum of the period. That never misses an alarm CloudWatch would raise (max >= p99); it can raise
one CloudWatch would not. `Transition.note` says so wherever it applies.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import ast
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

COMPARE = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class Transition:
    alarm: str
    old: str
    new: str
    reason: str
    note: str = ""


def evaluate_expression(expression: str, values: dict[str, float]) -> float:
    """CloudWatch metric math for the subset our alarms use: + - * /, comparisons, IF(c, a, b)."""
    tree = ast.parse(expression.replace("IF(", "IF_(" ), mode="eval")
    binary = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: lambda a, b: a / b if b else 0.0}
    compare = {ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Eq: operator.eq}

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in binary:
            return binary[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in compare:
            return float(compare[type(node.ops[0])](ev(node.left), ev(node.comparators[0])))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "IF_" and len(node.args) == 3:
            return ev(node.args[1]) if ev(node.args[0]) else ev(node.args[2])
        raise ValueError(f"metric math {expression!r}: unsupported element {ast.dump(node)[:60]}")

    return ev(tree)


def _series(cloudwatch: Any, *, namespace: str, metric: str, dimensions: list[dict[str, str]], stat: str,
            period: int, start: datetime, end: datetime) -> dict[datetime, float]:
    stat_name = "Maximum" if stat.startswith("p") else stat
    response = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=metric, Dimensions=dimensions,
        StartTime=start, EndTime=end, Period=period, Statistics=[stat_name],
    )
    return {point["Timestamp"]: float(point[stat_name]) for point in response["Datapoints"]}


def datapoints(cloudwatch: Any, alarm: dict[str, Any], now: datetime) -> tuple[list[float], str]:
    """The alarm's values over its evaluation window, oldest first, and a note on approximations."""
    period = int(alarm.get("Period") or alarm["Metrics"][0]["MetricStat"]["Period"])
    start = now - timedelta(seconds=period * int(alarm["EvaluationPeriods"]))
    # GetMetricStatistics' EndTime is exclusive and the emulator drops its fraction of a second, so
    # `now` itself would miss a datapoint published earlier in the same second: ask up to the next one.
    now = now.replace(microsecond=0) + timedelta(seconds=1)
    note = ""
    if alarm.get("Metrics"):
        series: dict[str, dict[datetime, float]] = {}
        expression = None
        for query in alarm["Metrics"]:
            if "MetricStat" in query:
                stat = query["MetricStat"]
                series[query["Id"]] = _series(
                    cloudwatch, namespace=stat["Metric"]["Namespace"], metric=stat["Metric"]["MetricName"],
                    dimensions=stat["Metric"].get("Dimensions", []), stat=stat["Stat"], period=stat["Period"], start=start, end=now,
                )
            elif query.get("ReturnData"):
                expression = query["Expression"]
        if expression is None:
            raise ValueError(f"alarm {alarm['AlarmName']}: metric math without a returned expression")
        stamps = sorted({t for s in series.values() for t in s})
        return [evaluate_expression(expression, {k: s.get(t, 0.0) for k, s in series.items()}) for t in stamps], note
    stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
    if stat.startswith("p"):
        note = f"{stat} evaluated as Maximum (the local CloudWatch computes no percentiles)"
    values = _series(
        cloudwatch, namespace=alarm["Namespace"], metric=alarm["MetricName"], dimensions=alarm.get("Dimensions", []),
        stat=stat, period=period, start=start, end=now,
    )
    return [values[t] for t in sorted(values)], note


def decide(alarm: dict[str, Any], values: list[float]) -> tuple[str, str]:
    """New state and reason for `values` (newest last), CloudWatch's M-out-of-N rule."""
    periods = int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm") or periods)
    compare = COMPARE[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    window = values[-periods:]
    missing = periods - len(window)
    treat = alarm.get("TreatMissingData", "missing")
    breaching = sum(1 for v in window if compare(v, threshold))
    if treat == "breaching":
        breaching += missing
    if not window and treat == "missing":
        return "INSUFFICIENT_DATA", "no datapoints in the evaluation window"
    if not window and treat == "ignore":  # CloudWatch: the current alarm state is maintained
        return alarm.get("StateValue", "INSUFFICIENT_DATA"), "no datapoints in the evaluation window; TreatMissingData=ignore keeps the state"
    shown = ", ".join(f"{v:g}" for v in window) or "none"
    if breaching >= needed:
        return "ALARM", f"{breaching} of the last {periods} datapoint(s) breached {alarm['ComparisonOperator']} {threshold:g} [{shown}]"
    return "OK", f"{breaching} of the last {periods} datapoint(s) breached the threshold {threshold:g} (needs {needed}) [{shown}]"


def evaluate(cloudwatch: Any, alarms: Iterable[dict[str, Any]], *, now: datetime) -> list[Transition]:
    """Evaluate `alarms` (DescribeAlarms' MetricAlarms) at `now`; set and return the state changes."""
    transitions = []
    for alarm in alarms:
        values, note = datapoints(cloudwatch, alarm, now)
        state, reason = decide(alarm, values)
        if state != alarm["StateValue"]:
            cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason[:1023])
            transitions.append(Transition(alarm["AlarmName"], alarm["StateValue"], state, reason, note))
    return transitions


def evaluate_all(cloudwatch: Any, *, now: datetime | None = None, prefix: str = "") -> list[Transition]:
    """Evaluate every alarm whose name starts with `prefix`; set and return the state changes."""
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])
    return evaluate(cloudwatch, [a for page in pages for a in page["MetricAlarms"]], now=now or datetime.now(timezone.utc))
