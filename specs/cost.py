"""What a stack will cost, from its validated config and a price file read from AWS's Price List API.

The price file (`stacks/prices.json`, written by `mlops prices refresh`; none ships with the project):

    {"source": "AWS Price List API (pricing:GetProducts)", "queried_at": ISO time, "currency": "USD",
     "sagemaker": {region: {instance type: {component: {"usd_per_hour", "usage_type", "publication_date"}}}},
     "ec2": {region: {instance type: {"usd_per_hour", "usage_type", "publication_date"}}}}

SageMaker's components are the Price List's own (`Hosting`, `Training`, `Processing`). The estimate
never invents a figure: a price the file lacks makes its line "unpriced" (no number, never zero), and
the totals then cover the priced lines only, which the estimate says.

The estimate reads the planned resources, so `mlops plan`, the budget policy and `mlops cost diff`
share it. Lines: each endpoint variant per month (instances x 730 h; with autoscaling, its minimum to
its maximum), one run of each retraining pipeline (its training and processing steps, each for at most
its runtime; spot shown as "up to" 90 % less, since spot prices move), the EKS GPU node pool up to its
maximum size per month, and each monitoring schedule per month (runs a month x its instance x its
maximum runtime).

Must not import: `pulumi`, `components`, `mlops` (pure layer).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


HOURS_PER_MONTH = 730
"""AWS's own convention for monthly figures (24 x 365 / 12)."""
SPOT_SAVING_UP_TO = 0.9
"""SageMaker managed spot training saves "up to 90 %" (AWS's figure); the real saving moves with spot prices."""
MONITORING_MAX_RUNTIME_HOURS = 1.0
"""A monitoring job's stopping condition (components/_monitoring_job.py MAX_RUNTIME_S, 3600 s): its
billed maximum; tests/cost checks the two agree."""
COMPONENTS = ("Hosting", "Training", "Processing")


def budget_cost_filters(region: str, team: str) -> dict[str, list[str]]:
    """The cost filters of a stack's AWS Budget: its region, and the team's cost allocation tag. The
    budget policy reads the region back from them."""
    return {"Region": [region], "TagKeyValue": [f"user:mlops:team${team}"]}


class PriceFileError(ValueError):
    """A price file that is not what `mlops prices refresh` writes."""


def load_prices(path: Path) -> dict[str, Any] | None:
    """The price file at `path`, checked; None when there is none."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise PriceFileError(f"{path}: not JSON ({exc}); rewrite it with `mlops prices refresh`") from None
    check_prices(doc, where=str(path))
    return doc


def check_prices(doc: Any, *, where: str = "price file") -> None:
    """PriceFileError naming the first entry that is not a positive hourly USD price with its usage type."""
    if not isinstance(doc, dict) or not {"source", "queried_at", "sagemaker", "ec2"} <= set(doc):
        raise PriceFileError(f"{where}: needs source, queried_at, sagemaker and ec2 (what `mlops prices refresh` writes)")
    entries = [(f"sagemaker.{r}.{t}.{c}", e) for r, types in doc["sagemaker"].items() for t, comps in types.items() for c, e in comps.items()]
    entries += [(f"ec2.{r}.{t}", e) for r, types in doc["ec2"].items() for t, e in types.items()]
    for name, entry in entries:
        price = entry.get("usd_per_hour") if isinstance(entry, dict) else None
        if not isinstance(price, (int, float)) or isinstance(price, bool) or price <= 0 or not entry.get("usage_type"):
            raise PriceFileError(f"{where}: {name} needs a positive usd_per_hour and its usage_type, got {entry!r}")


@dataclass(frozen=True)
class Line:
    """One priced (or unpriced) item of an estimate."""

    kind: str
    """endpoint, training, gpu-pool or monitoring."""
    item: str
    detail: str
    per: str
    """month or run."""
    low_usd: float | None = None
    high_usd: float | None = None
    unpriced: str | None = None
    """Why there is no figure (the price file lacks the price), else None."""
    note: str = ""


@dataclass
class Estimate:
    """A stack's estimate: its lines and the monthly range of the priced ones."""

    stack: str
    region: str
    lines: list[Line] = field(default_factory=list)
    prices_from: str | None = None
    """The price file's query time, None without a price file."""

    @property
    def monthly_low(self) -> float:
        return round(sum(ln.low_usd or 0.0 for ln in self.lines if ln.per == "month"), 2)

    @property
    def monthly_high(self) -> float:
        return round(sum(ln.high_usd or 0.0 for ln in self.lines if ln.per == "month"), 2)

    @property
    def unpriced(self) -> list[Line]:
        return [ln for ln in self.lines if ln.unpriced]

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "region": self.region, "prices_from": self.prices_from, "hours_per_month": HOURS_PER_MONTH,
                "monthly_usd": {"low": self.monthly_low, "high": self.monthly_high, "covers_priced_lines_only": bool(self.unpriced)},
                "lines": [asdict(ln) for ln in self.lines]}


def runs_per_month(cron: str) -> int | None:
    """Runs a month of an EventBridge-style `cron(min hour dom month dow year)` that fires every hour
    (minute fixed, hour `*`) or every day (minute and hour fixed); None for any other schedule."""
    found = re.fullmatch(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+)(?: (\S+))?\)", cron.strip())
    if not found:
        return None
    minute, hour, dom, month, dow = found.groups()[:5]
    if not minute.isdigit() or dom not in ("*", "?") or month != "*" or dow not in ("*", "?"):
        return None
    if hour == "*":
        return HOURS_PER_MONTH
    return round(HOURS_PER_MONTH / 24) if hour.isdigit() else None


class _Book:
    def __init__(self, prices: dict[str, Any] | None, region: str):
        self.prices, self.region = prices, region

    def sagemaker(self, instance: str, component: str) -> tuple[float | None, str | None]:
        if self.prices is None:
            return None, "no price file: run `mlops prices refresh`"
        entry = self.prices["sagemaker"].get(self.region, {}).get(instance, {}).get(component)
        if entry is None:
            return None, f"the price file has no SageMaker {component} price for {instance} in {self.region}: run `mlops prices refresh`"
        return float(entry["usd_per_hour"]), None

    def ec2(self, instance: str) -> tuple[float | None, str | None]:
        if self.prices is None:
            return None, "no price file: run `mlops prices refresh`"
        entry = self.prices["ec2"].get(self.region, {}).get(instance)
        if entry is None:
            return None, f"the price file has no EC2 price for {instance} in {self.region}: run `mlops prices refresh`"
        return float(entry["usd_per_hour"]), None


def _line(kind: str, item: str, detail: str, per: str, hourly: tuple[float | None, str | None],
          low_hours: float, high_hours: float, note: str = "") -> Line:
    price, missing = hourly
    if price is None:
        return Line(kind, item, detail, per, unpriced=missing, note=note)
    return Line(kind, item, detail, per, round(price * low_hours, 2), round(price * high_hours, 2), note=note)


ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"


def estimate(name: str, region: str, resources: list[Any], prices: dict[str, Any] | None) -> Estimate:
    """The estimate of stack `name` in `region` from its planned `resources` (anything with `type`,
    `name` and camelCase `inputs`: `mlops plan`'s resources, or what the policy pack sees) and `prices`
    (None: no price file). The same function serves the plan, the budget policy and `mlops cost diff`."""
    book = _Book(prices, region)
    out = Estimate(name, region, prices_from=None if prices is None else prices.get("queried_at"))
    out.lines += _endpoint_lines(resources, book)
    out.lines += [_pipeline_line(r, book) for r in resources if r.type == PIPELINE]
    for group in (r for r in resources if r.type == NODE_GROUP and r.inputs.get("amiType", "").find("NVIDIA") >= 0):
        scaling, instance = group.inputs.get("scalingConfig") or {}, (group.inputs.get("instanceTypes") or ["?"])[0]
        low, high = int(scaling.get("minSize", 0)), int(scaling.get("maxSize", 0))
        out.lines.append(_line("gpu-pool", group.name, f"{low}-{high} x {instance} ({group.inputs.get('capacityType', 'ON_DEMAND')})", "month",
                               book.ec2(instance), low * HOURS_PER_MONTH, high * HOURS_PER_MONTH, "up to its maximum size"))
    out.lines += [_schedule_line(r, book) for r in resources if r.type == SCHEDULE]
    return out


def _endpoint_lines(resources: list[Any], book: _Book) -> list[Line]:
    served = {r.inputs.get("endpointConfigName"): r.inputs.get("name") for r in resources if r.type == ENDPOINT}
    targets = {r.inputs.get("resourceId"): r.inputs for r in resources if r.type == SCALING_TARGET}
    lines = []
    for config in (r for r in resources if r.type == ENDPOINT_CONFIG):
        endpoint = served.get(config.inputs.get("name"), config.name)
        for variant in [*(config.inputs.get("productionVariants") or []), *(config.inputs.get("shadowProductionVariants") or [])]:
            count = int(variant.get("initialInstanceCount") or 1)
            target = targets.get(f"endpoint/{endpoint}/variant/{variant['variantName']}") or {}
            low, high = int(target.get("minCapacity", count)), int(target.get("maxCapacity", count))
            instance = variant.get("instanceType", "?")
            lines.append(_line("endpoint", f"{endpoint}/{variant['variantName']}", f"{low if low == high else f'{low}-{high}'} x {instance}",
                               "month", book.sagemaker(instance, "Hosting"), low * HOURS_PER_MONTH, high * HOURS_PER_MONTH))
    return lines


def _pipeline_line(pipeline: Any, book: _Book) -> Line:
    """One run of a retraining pipeline: each training and processing step for at most its runtime."""
    definition = json.loads(pipeline.inputs.get("pipelineDefinition") or "{}")
    usd, parts, missing, spot = 0.0, [], [], False
    for step in definition.get("Steps", []):
        args = step.get("Arguments") or {}
        if step.get("Type") == "Training":
            resources, component, spot = args.get("ResourceConfig") or {}, "Training", spot or bool(args.get("EnableManagedSpotTraining"))
        elif step.get("Type") == "Processing":
            resources, component = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {}, "Processing"
        else:
            continue
        hours = int((args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400)) / 3600
        instance, count = resources.get("InstanceType"), int(resources.get("InstanceCount", 1))
        if not isinstance(instance, str):  # a pipeline parameter: priced only when the definition names the type
            missing.append(f"step {step['Name']} takes its instance type from a parameter")
            continue
        price, why = book.sagemaker(instance, component)
        parts.append(f"{step['Name']} {count} x {instance} <= {hours:g} h")
        if price is None:
            missing.append(why or "")
        else:
            usd += price * count * hours
    note = f"spot training: up to {SPOT_SAVING_UP_TO:.0%} less on its step (spot prices move)" if spot else ""
    if missing:
        return Line("training", pipeline.inputs.get("pipelineName", pipeline.name), "; ".join(parts), "run", unpriced="; ".join(missing), note=note)
    return Line("training", pipeline.inputs.get("pipelineName", pipeline.name), "; ".join(parts), "run", round(usd, 2), round(usd, 2), note=note)


def _schedule_line(schedule: Any, book: _Book) -> Line:
    config = schedule.inputs.get("monitoringScheduleConfig") or {}
    cron = (config.get("scheduleConfig") or {}).get("scheduleExpression", "")
    cluster = ((config.get("monitoringJobDefinition") or {}).get("monitoringResources") or {}).get("clusterConfig") or {}
    instance, count = cluster.get("instanceType", "?"), int(cluster.get("instanceCount", 1))
    item = schedule.inputs.get("name", schedule.name)
    runs = runs_per_month(cron)
    if runs is None:
        return Line("monitoring", item, f"{cron} on {instance}", "month", unpriced=f"schedule {cron} is neither hourly nor daily: not estimated")
    hours = runs * count * MONITORING_MAX_RUNTIME_HOURS
    return _line("monitoring", item, f"{runs} runs x {count} x {instance}, <= {MONITORING_MAX_RUNTIME_HOURS:g} h each", "month",
                 book.sagemaker(instance, "Processing"), 0.0, hours, "from nothing to every run at its limit")


def format_estimate(est: Estimate) -> list[str]:
    """The estimate as `mlops plan` prints it, one line each."""
    head = f"cost of {est.stack} ({est.region}; {HOURS_PER_MONTH} h a month; prices "
    head += f"queried {est.prices_from})" if est.prices_from else "unknown: no price file, run `mlops prices refresh`)"
    lines = [head]
    for ln in est.lines:
        figure = ln.unpriced and f"unpriced: {ln.unpriced}" or (
            f"${ln.low_usd:,.2f}" if ln.low_usd == ln.high_usd else f"${ln.low_usd:,.2f} - ${ln.high_usd:,.2f}") + f" per {ln.per}"
        lines.append(f"  {ln.kind:<10} {ln.item:<28} {ln.detail:<44} {figure}{'  (' + ln.note + ')' if ln.note and not ln.unpriced else ''}")
    monthly = [ln for ln in est.lines if ln.per == "month"]
    if all(ln.unpriced for ln in monthly):
        lines.append("  total      no figure: every monthly line is unpriced")
    else:
        total = f"${est.monthly_low:,.2f} - ${est.monthly_high:,.2f} per month"
        lines.append(f"  total      {total}" + (f" for the priced lines only; {len(est.unpriced)} unpriced" if est.unpriced else ""))
    return lines


def diff_estimates(base: Estimate, new: Estimate) -> dict[str, Any]:
    """What changes between two estimates of a stack: per line (kind, item) the base and new monthly (or
    per-run) maximum, and the monthly range of each; a line unpriced on either side has no delta."""
    def key(ln: Line) -> tuple[str, str]:
        return ln.kind, ln.item

    old, now = {key(ln): ln for ln in base.lines}, {key(ln): ln for ln in new.lines}
    rows = []
    for k in sorted(set(old) | set(now)):
        a, b = old.get(k), now.get(k)
        if a is not None and b is not None and (a.detail, a.low_usd, a.high_usd, a.unpriced) == (b.detail, b.low_usd, b.high_usd, b.unpriced):
            continue
        priced = all(x is None or x.unpriced is None for x in (a, b))
        delta = round((b.high_usd if b else 0.0) - (a.high_usd if a else 0.0), 2) if priced else None
        rows.append({"kind": k[0], "item": k[1], "per": (b or a).per, "base": a and {"detail": a.detail, "high_usd": a.high_usd, "unpriced": a.unpriced},
                     "new": b and {"detail": b.detail, "high_usd": b.high_usd, "unpriced": b.unpriced}, "delta_high_usd": delta})
    return {"stack": new.stack, "monthly_usd": {"base": [base.monthly_low, base.monthly_high], "new": [new.monthly_low, new.monthly_high],
                                                  "delta_high": round(new.monthly_high - base.monthly_high, 2)},
            "unpriced": bool(base.unpriced or new.unpriced), "changes": rows}


def format_diff(diff: dict[str, Any]) -> list[str]:
    """`mlops cost diff` as text."""
    m = diff["monthly_usd"]
    lines = [f"cost diff of {diff['stack']}: ${m['base'][0]:,.2f} - ${m['base'][1]:,.2f} -> ${m['new'][0]:,.2f} - ${m['new'][1]:,.2f} "
             f"per month (maximum {m['delta_high']:+,.2f})" + (" for the priced lines only" if diff["unpriced"] else "")]
    for row in diff["changes"]:
        def side(x: dict[str, Any] | None) -> str:
            if x is None:
                return "(none)"
            return f"{x['detail']}: " + (f"unpriced ({x['unpriced']})" if x["unpriced"] else f"${x['high_usd']:,.2f}")
        delta = "unpriced" if row["delta_high_usd"] is None else f"{row['delta_high_usd']:+,.2f}"
        lines.append(f"  {row['kind']:<10} {row['item']}: {side(row['base'])} -> {side(row['new'])} per {row['per']} ({delta})")
    if not diff["changes"]:
        lines.append("  no change")
    return lines
