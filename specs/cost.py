"""What a stack will cost, from its validated config and a price file read from AWS's Price List API.

The price file (`stacks/prices.json`, written by `mlops prices refresh`; none ships with the project):

    {"source": "AWS Price List API (pricing:GetProducts)", "queried_at": ISO time, "currency": "USD",
     "sagemaker": {region: {instance type: {component: {"usd_per_hour", "usage_type", "publication_date"}}}},
     "ec2": {region: {instance type: {"usd_per_hour", "usage_type", "publication_date"}}}}

SageMaker's components are the Price List's own (`Hosting`, `Training`, `Processing`). The estimate
never invents a figure: a price the file lacks makes its line "unpriced" (no number, never zero), and
the totals then cover the priced lines only, which the estimate says.

Lines: each endpoint variant per month (instances x 730 h; with autoscaling, min to max instances),
the training cost per run (instances x max runtime; spot shown as "up to" 90 % less, since spot prices
move), the GPU node pool at its maximum size per month, and each monitoring schedule per month
(runs a month x its instance x its maximum runtime).

Must not import: `pulumi`, `components`, `mlops` (pure layer).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from specs.config.schema import StackConfig

HOURS_PER_MONTH = 730
"""AWS's own convention for monthly figures (24 x 365 / 12)."""
SPOT_SAVING_UP_TO = 0.9
"""SageMaker managed spot training saves "up to 90 %" (AWS's figure); the real saving moves with spot prices."""
MONITORING_MAX_RUNTIME_HOURS = 1.0
"""A monitoring job's stopping condition (components/_monitoring_job.py MAX_RUNTIME_S, 3600 s): its
billed maximum; tests/cost checks the two agree."""
COMPONENTS = ("Hosting", "Training", "Processing")


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


def estimate(name: str, config: StackConfig, prices: dict[str, Any] | None) -> Estimate:
    """The estimate of stack `name` (its validated `config`) from `prices` (None: no price file)."""
    region = config.aws.region
    book = _Book(prices, region)
    out = Estimate(name, region, prices_from=None if prices is None else prices.get("queried_at"))
    for key, endpoint in config.endpoints.items():
        scaling, production = endpoint.autoscaling, endpoint.production_variants()
        for variant_name, variant in endpoint.all_variants().items():
            scaled = scaling is not None and variant_name in production  # autoscaling covers production variants
            low = scaling.min_capacity if scaled else variant.instance_count
            high = scaling.max_capacity if scaled else variant.instance_count
            count = f"{low}-{high}" if low != high else f"{low}"
            out.lines.append(_line("endpoint", f"{key}/{variant_name}", f"{count} x {variant.instance_type}", "month",
                                   book.sagemaker(variant.instance_type, "Hosting"), low * HOURS_PER_MONTH, high * HOURS_PER_MONTH))
    training = config.training
    hours = training.instance_count * training.max_runtime_hours
    note = f"spot: up to {SPOT_SAVING_UP_TO:.0%} less (spot prices move)" if training.use_spot else ""
    for model in config.model_registry.models if training.kind == "sagemaker" else ():
        out.lines.append(_line("training", model, f"{training.instance_count} x {training.instance_type}, at most "
                               f"{training.max_runtime_hours} h", "run", book.sagemaker(training.instance_type, "Training"), hours, hours, note))
    cluster = training.eks.cluster if training.kind == "eks" and training.eks is not None else None
    pool = getattr(cluster, "gpu_nodes", None)  # a cluster the stack creates (an existing one is priced elsewhere)
    if pool is not None:
        instance = pool.instance_types[0]
        out.lines.append(_line("gpu-pool", "eks", f"{pool.min_size}-{pool.max_size} x {instance} ({pool.capacity_type})", "month",
                               book.ec2(instance), pool.min_size * HOURS_PER_MONTH, pool.max_size * HOURS_PER_MONTH,
                               "at its maximum size; spot capacity costs less" if pool.capacity_type == "SPOT" else "at its maximum size"))
    for key in config.endpoints:
        for job, cron in (("drift", config.monitoring.drift_schedule), ("quality", config.monitoring.quality_schedule)):
            runs = runs_per_month(cron)
            instance = config.monitoring.drift_instance_type
            if runs is None:
                out.lines.append(Line("monitoring", f"{key}/{job}", f"{cron} on {instance}", "month",
                                      unpriced=f"schedule {cron} is neither hourly nor daily: not estimated"))
                continue
            hours = runs * MONITORING_MAX_RUNTIME_HOURS
            out.lines.append(_line("monitoring", f"{key}/{job}", f"{runs} runs x {instance}, at most {MONITORING_MAX_RUNTIME_HOURS:g} h each",
                                   "month", book.sagemaker(instance, "Processing"), 0.0, hours, "from nothing (jobs end early) to every run at its limit"))
    return out


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
