"""What a stack will cost, from its validated config and a price file read from AWS's Price List API.

The price file (`stacks/prices.json`, written by `mlops prices refresh`; none ships with the project):

    {"source": "AWS Price List API (pricing:GetProducts)", "queried_at": ISO time, "currency": "USD",
     "sagemaker": {region: {instance type: {component: {"usd_per_hour", "usage_type", "publication_date"}}}},
     "ec2": {region: {instance type: {"usd_per_hour", "usage_type", "publication_date"}}},
     "unit_prices": {region: {name: {"usd", "unit", "usage_type", "publication_date"}}}}

SageMaker's components are the Price List's own (`Hosting`, `Training`, `Processing`). `unit_prices`
holds the prices that are not hourly, by the names of `UNIT_PRICES` (each with the Price List's own
unit: `GB-Mo`, `Requests`); a file written before it existed has none, and its lines are unpriced.
The estimate never invents a figure: a price the file lacks makes its line "unpriced" (no number,
never zero), and the totals then cover the priced lines only, which the estimate says.

Nor does it invent a volume: what the stack does not declare (how much its buckets hold, how many
objects data capture writes, how much a feature group stores or serves) is a line with the unit
price and "usage not declared", not in the totals. What it declares is priced: the ML storage
volumes of monitoring and processing jobs (GB x the hours the job may run, as a fraction of a
730-hour month) and of endpoint variants that set a volume size. Feature Store's online store and
training jobs' ML storage are always unpriced lines: their Price List attributes could not be
confirmed from a public source (mlops/prices.py says which were, and where from).

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
UNIT_PRICES = {
    "s3-standard-storage": ("GB-Mo", "S3 Standard storage, first tier"),
    "s3-put-requests": ("Requests", "S3 PUT, COPY, POST, LIST requests"),
    "sagemaker-processing-volume": ("GB-Mo", "SageMaker ML storage of processing jobs"),
    "sagemaker-hosting-volume": ("GB-Mo", "SageMaker ML storage of endpoint instances"),
}
"""The unit prices `mlops prices refresh` writes under `unit_prices`: name -> (Price List unit, what)."""
UNCONFIRMED = "its Price List attributes could not be confirmed from a public source, so `mlops prices refresh` does not query it"


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
        if not _positive(price) or not entry.get("usage_type"):
            raise PriceFileError(f"{where}: {name} needs a positive usd_per_hour and its usage_type, got {entry!r}")
    _check_unit_prices(doc.get("unit_prices", {}), where)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _check_unit_prices(regions: Any, where: str) -> None:
    if not isinstance(regions, dict) or not all(isinstance(v, dict) for v in regions.values()):
        raise PriceFileError(f"{where}: unit_prices must map each region to its unit prices, got {regions!r}")
    for region, entries in regions.items():
        for name, entry in entries.items():
            if name not in UNIT_PRICES:
                raise PriceFileError(f"{where}: unit_prices.{region}.{name} is not a known unit price; allowed: {', '.join(UNIT_PRICES)}")
            unit = UNIT_PRICES[name][0]
            if not isinstance(entry, dict) or not _positive(entry.get("usd")) or entry.get("unit") != unit or not entry.get("usage_type"):
                raise PriceFileError(f"{where}: unit_prices.{region}.{name} needs a positive usd, unit {unit!r} and its usage_type, got {entry!r}")


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
    rate: str | None = None
    """The unit price(s) of a line whose usage the stack does not declare (no figure, not in the totals), else None."""


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

    @property
    def undeclared(self) -> list[Line]:
        """Lines with a unit price but no declared usage."""
        return [ln for ln in self.lines if ln.rate]

    def to_json(self) -> dict[str, Any]:
        monthly = {"low": self.monthly_low, "high": self.monthly_high, "covers_priced_lines_only": bool(self.unpriced or self.undeclared),
                   "unpriced_lines": len(self.unpriced), "usage_not_declared_lines": len(self.undeclared)}
        return {"stack": self.stack, "region": self.region, "prices_from": self.prices_from, "hours_per_month": HOURS_PER_MONTH,
                "monthly_usd": monthly, "lines": [asdict(ln) for ln in self.lines]}


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

    def unit(self, name: str) -> tuple[float | None, str | None]:
        """A unit price of `UNIT_PRICES` (USD per its unit), or why there is none."""
        if self.prices is None:
            return None, "no price file: run `mlops prices refresh`"
        entry = self.prices.get("unit_prices", {}).get(self.region, {}).get(name)
        if entry is None:
            return None, f"the price file has no {UNIT_PRICES[name][1]} price in {self.region}: run `mlops prices refresh`"
        return float(entry["usd"]), None

    def unconfirmed(self, what: str) -> str:
        """Why `what`, whose Price List attributes are unconfirmed, has no figure."""
        return "no price file: run `mlops prices refresh`" if self.prices is None else f"{what}: {UNCONFIRMED}"


def _line(kind: str, item: str, detail: str, per: str, price: tuple[float | None, str | None],
          low: float, high: float, note: str = "") -> Line:
    """A line of `low` to `high` units (hours of an hourly price, GB-months of a GB-month one) at `price`
    (USD per unit, or None and why not)."""
    usd, missing = price
    if usd is None:
        return Line(kind, item, detail, per, unpriced=missing, note=note)
    return Line(kind, item, detail, per, round(usd * low, 2), round(usd * high, 2), note=note)


ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
SCALING_TARGET = "aws:appautoscaling/target:Target"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
BUCKET = "aws:s3/bucket:Bucket"
TRACKING_SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"


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
    out.lines += [line for r in resources if r.type == SCHEDULE for line in _schedule_volume_line(r, book)]
    out.lines += [line for r in resources if r.type == PIPELINE for line in _pipeline_volume_lines(r, book)]
    out.lines += _bucket_lines(resources, book) + _capture_lines(resources, book) + _feature_store_lines(resources, book)
    out.lines += _tracking_lines(resources, book)
    return out


def _endpoint_names(resources: list[Any]) -> dict[str, str]:
    """Endpoint configuration name -> the name of the endpoint that serves it."""
    return {r.inputs.get("endpointConfigName"): r.inputs.get("name") for r in resources if r.type == ENDPOINT}


def _endpoint_lines(resources: list[Any], book: _Book) -> list[Line]:
    served = _endpoint_names(resources)
    targets = {r.inputs.get("resourceId"): r.inputs for r in resources if r.type == SCALING_TARGET}
    lines = []
    for config in (r for r in resources if r.type == ENDPOINT_CONFIG):
        endpoint = served.get(config.inputs.get("name"), config.name)
        for variant in [*(config.inputs.get("productionVariants") or []), *(config.inputs.get("shadowProductionVariants") or [])]:
            count = int(variant.get("initialInstanceCount") or 1)
            target = targets.get(f"endpoint/{endpoint}/variant/{variant['variantName']}") or {}
            low, high = int(target.get("minCapacity", count)), int(target.get("maxCapacity", count))
            instance = variant.get("instanceType", "?")
            count_text = f"{low if low == high else f'{low}-{high}'} x"
            lines.append(_line("endpoint", f"{endpoint}/{variant['variantName']}", f"{count_text} {instance}",
                               "month", book.sagemaker(instance, "Hosting"), low * HOURS_PER_MONTH, high * HOURS_PER_MONTH))
            if variant.get("volumeSizeInGb"):  # declared: each instance's ML storage, the whole month
                gb = float(variant["volumeSizeInGb"])
                lines.append(_line("volume", f"{endpoint}/{variant['variantName']}", f"{count_text} {gb:g} GB ML storage", "month",
                                   book.unit("sagemaker-hosting-volume"), low * gb, high * gb))
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


def _schedule_parts(schedule: Any) -> tuple[str, str, dict[str, Any], int | None, int]:
    """A monitoring schedule's name, cron, job cluster config, runs a month (None: not hourly or daily) and instance count."""
    config = schedule.inputs.get("monitoringScheduleConfig") or {}
    cron = (config.get("scheduleConfig") or {}).get("scheduleExpression", "")
    cluster = ((config.get("monitoringJobDefinition") or {}).get("monitoringResources") or {}).get("clusterConfig") or {}
    return schedule.inputs.get("name", schedule.name), cron, cluster, runs_per_month(cron), int(cluster.get("instanceCount", 1))


def _schedule_line(schedule: Any, book: _Book) -> Line:
    item, cron, cluster, runs, count = _schedule_parts(schedule)
    instance = cluster.get("instanceType", "?")
    if runs is None:
        return Line("monitoring", item, f"{cron} on {instance}", "month", unpriced=f"schedule {cron} is neither hourly nor daily: not estimated")
    hours = runs * count * MONITORING_MAX_RUNTIME_HOURS
    return _line("monitoring", item, f"{runs} runs x {count} x {instance}, <= {MONITORING_MAX_RUNTIME_HOURS:g} h each", "month",
                 book.sagemaker(instance, "Processing"), 0.0, hours, "from nothing to every run at its limit")


def _schedule_volume_line(schedule: Any, book: _Book) -> list[Line]:
    """A monitoring schedule's ML storage: each run's volume for at most the run's limit (none if it declares no volume)."""
    item, cron, cluster, runs, count = _schedule_parts(schedule)
    gb = float(cluster.get("volumeSizeInGb") or 0)
    if not gb:
        return []
    if runs is None:
        return [Line("volume", item, f"{cron}, {count} x {gb:g} GB", "month", unpriced=f"schedule {cron} is neither hourly nor daily: not estimated")]
    gb_months = runs * count * gb * MONITORING_MAX_RUNTIME_HOURS / HOURS_PER_MONTH
    return [_line("volume", item, f"{runs} runs x {count} x {gb:g} GB ML storage, <= {MONITORING_MAX_RUNTIME_HOURS:g} h each", "month",
                  book.unit("sagemaker-processing-volume"), 0.0, gb_months, "from nothing to every run at its limit")]


def _pipeline_volume_lines(pipeline: Any, book: _Book) -> list[Line]:
    """One run's ML storage: the processing steps' volumes for at most each step's runtime (priced), and
    the training step's volume (unpriced: its Price List attributes are unconfirmed)."""
    definition = json.loads(pipeline.inputs.get("pipelineDefinition") or "{}")
    name = pipeline.inputs.get("pipelineName", pipeline.name)
    processing, parts, training = 0.0, [], []
    for step in definition.get("Steps", []):
        args = step.get("Arguments") or {}
        hours = int((args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", 86400)) / 3600
        cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {} if step.get("Type") == "Processing" else {}
        if cluster.get("VolumeSizeInGB"):
            gb, count = float(cluster["VolumeSizeInGB"]), int(cluster.get("InstanceCount", 1))
            processing += count * gb * hours / HOURS_PER_MONTH
            parts.append(f"{step['Name']} {count} x {gb:g} GB <= {hours:g} h")
        config = args.get("ResourceConfig") or {} if step.get("Type") == "Training" else {}
        if config.get("VolumeSizeInGB"):
            training.append(f"{step['Name']} {int(config.get('InstanceCount', 1))} x {float(config['VolumeSizeInGB']):g} GB <= {hours:g} h")
    lines = []
    if parts:
        lines.append(_line("volume", f"{name}/processing", "; ".join(parts), "run", book.unit("sagemaker-processing-volume"), processing, processing))
    if training:
        lines.append(Line("volume", f"{name}/training", "; ".join(training), "run", unpriced=book.unconfirmed("SageMaker training ML storage")))
    return lines


def _captures(resources: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(endpoint name, data capture config) of each endpoint configuration that captures."""
    served = _endpoint_names(resources)
    return [(served.get(c.inputs.get("name"), c.name), c.inputs["dataCaptureConfig"]) for c in resources
            if c.type == ENDPOINT_CONFIG and (c.inputs.get("dataCaptureConfig") or {}).get("enableCapture")]


def _bucket_of(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[0]


def _bucket_lines(resources: list[Any], book: _Book) -> list[Line]:
    """Each bucket's S3 Standard storage: a unit price, since no stack declares how much a bucket holds."""
    uses: dict[str, list[str]] = {}
    for group in (r for r in resources if r.type == FEATURE_GROUP):
        uri = ((group.inputs.get("offlineStoreConfig") or {}).get("s3StorageConfig") or {}).get("s3Uri", "")
        uses.setdefault(_bucket_of(uri), []).append(f"offline store of {group.inputs.get('featureGroupName', group.name)}")
    for endpoint, capture in _captures(resources):
        uses.setdefault(_bucket_of(capture.get("destinationS3Uri", "")), []).append(f"data capture of {endpoint}")
    price, missing = book.unit("s3-standard-storage")
    lines = []
    for bucket in (r for r in resources if r.type == BUCKET):
        name = bucket.inputs.get("bucket", bucket.name)
        detail = "; ".join(["S3 Standard", *uses.get(name, [])])
        lines.append(Line("storage", name, detail, "month", unpriced=missing, rate=price and f"${price:.6g} per GB-month"))
    return lines


def _capture_lines(resources: list[Any], book: _Book) -> list[Line]:
    """Each endpoint's data capture: the S3 PUT requests it makes (one object per batch of captured
    requests; how many depends on traffic, which no stack declares). Its objects' storage is the
    capture bucket's line."""
    (price, missing), lines = book.unit("s3-put-requests"), []
    for endpoint, capture in _captures(resources):
        modes = "+".join(o.get("captureMode", "?") for o in capture.get("captureOptions") or [])
        detail = f"{float(capture.get('initialSamplingPercentage', 100)):g}% of requests ({modes}) to {capture.get('destinationS3Uri', '?')}"
        lines.append(Line("capture", endpoint, detail, "month", unpriced=missing,
                          rate=price and f"${price * 1000:.6g} per 1,000 PUT requests"))
    return lines


def _feature_store_lines(resources: list[Any], book: _Book) -> list[Line]:
    """Each feature group's online store (unpriced: unconfirmed attributes). Its offline store is S3
    storage in its bucket's line."""
    lines = []
    for group in (r for r in resources if r.type == FEATURE_GROUP):
        online = group.inputs.get("onlineStoreConfig") or {}
        if online.get("enableOnlineStore"):
            mode = (group.inputs.get("throughputConfig") or {}).get("throughputMode", "OnDemand")
            detail = f"online store ({online.get('storageType', 'Standard')}, {mode}): writes, reads, storage"
            lines.append(Line("feature-store", group.inputs.get("featureGroupName", group.name), detail, "month",
                              unpriced=book.unconfirmed("SageMaker Feature Store's online store")))
    return lines


def _tracking_lines(resources: list[Any], book: _Book) -> list[Line]:
    """Each MLflow tracking server the stack creates, billed while it runs (unpriced: its Price List
    attributes are not confirmed, so `mlops prices refresh` does not ask for them)."""
    return [Line("tracking", r.inputs.get("trackingServerName", r.name), f"MLflow tracking server ({r.inputs.get('trackingServerSize', 'Small')}), "
                 "running all month", "month", unpriced=book.unconfirmed("SageMaker's MLflow tracking server"))
            for r in resources if r.type == TRACKING_SERVER]


def format_estimate(est: Estimate) -> list[str]:
    """The estimate as `mlops plan` prints it, one line each."""
    head = f"cost of {est.stack} ({est.region}; {HOURS_PER_MONTH} h a month; prices "
    head += f"queried {est.prices_from})" if est.prices_from else "unknown: no price file, run `mlops prices refresh`)"
    lines = [head]
    for ln in est.lines:
        lines.append(f"  {ln.kind:<13} {ln.item:<33} {ln.detail:<44} {_figure(ln)}{'  (' + ln.note + ')' if ln.note and not ln.unpriced else ''}")
    monthly = [ln for ln in est.lines if ln.per == "month"]
    if all(ln.unpriced or ln.rate for ln in monthly):
        why = "unpriced" if all(ln.unpriced for ln in monthly) else "unpriced or its usage is not declared"
        lines.append(f"  total         no figure: every monthly line is {why}")
    else:
        left = [f"{len(est.unpriced)} unpriced"] * bool(est.unpriced) + [f"{len(est.undeclared)} with usage not declared"] * bool(est.undeclared)
        total = f"${est.monthly_low:,.2f} - ${est.monthly_high:,.2f} per month"
        lines.append(f"  total         {total}" + (f" for the priced lines only; {'; '.join(left)}" if left else ""))
    return lines


def _figure(ln: Line) -> str:
    if ln.unpriced:
        return f"unpriced: {ln.unpriced}"
    if ln.rate:
        return f"{ln.rate} (usage not declared)"
    return (f"${ln.low_usd:,.2f}" if ln.low_usd == ln.high_usd else f"${ln.low_usd:,.2f} - ${ln.high_usd:,.2f}") + f" per {ln.per}"


def diff_estimates(base: Estimate, new: Estimate) -> dict[str, Any]:
    """What changes between two estimates of a stack: per line (kind, item) the base and new monthly (or
    per-run) maximum, and the monthly range of each; a line unpriced on either side has no delta."""
    def key(ln: Line) -> tuple[str, str]:
        return ln.kind, ln.item

    old, now = {key(ln): ln for ln in base.lines}, {key(ln): ln for ln in new.lines}
    rows = []
    for k in sorted(set(old) | set(now)):
        a, b = old.get(k), now.get(k)
        if a is not None and b is not None and (a.detail, a.low_usd, a.high_usd, a.unpriced, a.rate) == (b.detail, b.low_usd, b.high_usd, b.unpriced, b.rate):
            continue
        priced = all(x is None or (x.unpriced is None and x.rate is None) for x in (a, b))
        delta = round((b.high_usd if b else 0.0) - (a.high_usd if a else 0.0), 2) if priced else None
        rows.append({"kind": k[0], "item": k[1], "per": (b or a).per, "base": a and _diff_side(a), "new": b and _diff_side(b), "delta_high_usd": delta})
    return {"stack": new.stack, "monthly_usd": {"base": [base.monthly_low, base.monthly_high], "new": [new.monthly_low, new.monthly_high],
                                                  "delta_high": round(new.monthly_high - base.monthly_high, 2)},
            "unpriced": bool(base.unpriced or new.unpriced or base.undeclared or new.undeclared), "changes": rows}


def _diff_side(ln: Line) -> dict[str, Any]:
    return {"detail": ln.detail, "high_usd": ln.high_usd, "unpriced": ln.unpriced, "rate": ln.rate}


def _diff_text(x: dict[str, Any] | None) -> str:
    if x is None:
        return "(none)"
    if x["unpriced"]:
        return f"{x['detail']}: unpriced ({x['unpriced']})"
    return f"{x['detail']}: " + (x["rate"] if x.get("rate") else f"${x['high_usd']:,.2f}")


def format_diff(diff: dict[str, Any]) -> list[str]:
    """`mlops cost diff` as text."""
    m = diff["monthly_usd"]
    lines = [f"cost diff of {diff['stack']}: ${m['base'][0]:,.2f} - ${m['base'][1]:,.2f} -> ${m['new'][0]:,.2f} - ${m['new'][1]:,.2f} "
             f"per month (maximum {m['delta_high']:+,.2f})" + (" for the priced lines only" if diff["unpriced"] else "")]
    for row in diff["changes"]:
        sides = [x for x in (row["base"], row["new"]) if x]
        rated = any(x.get("rate") for x in sides)
        delta = f"{row['delta_high_usd']:+,.2f}" if row["delta_high_usd"] is not None else (
            "unpriced" if any(x["unpriced"] for x in sides) else "usage not declared")
        per = "" if rated else f" per {row['per']}"  # a unit price names its own unit
        lines.append(f"  {row['kind']:<10} {row['item']}: {_diff_text(row['base'])} -> {_diff_text(row['new'])}{per} ({delta})")
    if not diff["changes"]:
        lines.append("  no change")
    return lines
