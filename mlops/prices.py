"""`mlops prices refresh`: on-demand prices from AWS's Price List API into `stacks/prices.json`.

For each region the stacks use, `pricing:GetProducts` (paginated with NextToken) is asked for
AmazonSageMaker's `ML Instance` products of each instance type the stacks name (endpoints: Hosting;
training: Training; monitoring jobs: Processing) and for AmazonEC2's Linux, shared-tenancy, no
pre-installed software products of the EKS GPU pools' instance types. Each product's on-demand term
gives the hourly USD price; the file keeps with it the usage type and the offer's publication date,
plus when and from where it was queried (specs/cost.py describes the file). Throttling is retried
by botocore (standard mode, 8 attempts). Nothing is invented: a type the API does not price is left
out, and the plan then calls it unpriced.

Per region it also asks for the unit prices of `UNIT_QUERIES` (storage per GB-month, requests),
filtered and recognised only by Price List attributes seen in real sources:

- S3 Standard storage: AmazonS3, `volumeType` `Standard`, usage type `[<region>-]TimedStorage-ByteHrs`,
  unit `GB-Mo`, tiered (the first tier, `beginRange` 0, is kept). infracost/infracost
  internal/resources/aws/s3_standard_storage_class.go (usagetype `TimedStorage-ByteHrs`, volumeType
  `Standard`); a real response: https://github.com/aws/aws-sdk-java/issues/2190 (S3 attributes,
  region-prefixed usage types, `GB-Mo`).
- S3 PUT, COPY, POST, LIST requests (what data capture and the offline store write): AmazonS3, usage
  type `[<region>-]Requests-Tier1`: the same infracost file, which prices it per request (its unit
  `1k requests` multiplies the price by 1,000). The unit string `Requests` is what Cost and Usage
  Reports show for these products (`pricing/unit`); were the Price List's another, the product would
  be refused (unit mismatch) and the line unpriced, never mispriced.
  S3 is asked for by region alone (one paginated query serves both S3 prices) and each product is
  recognised by those attributes, so no filter rests on an unconfirmed attribute value.
- SageMaker ML storage of processing (and monitoring) jobs: AmazonSageMaker, `platoclassificationtype`
  `Processing:VolumeUsage` (a sample value of that attribute in AWS's Cost and Usage Report data
  dictionary, https://docs.aws.amazon.com/cur/latest/userguide/product-columns.html), unit `GB-Mo`
  (aws-samples/sagemaker-ssh-helper Sample_Costs.md: "per GB-Mo of Processing ML storage").
- SageMaker ML storage of endpoint instances: AmazonSageMaker, `productFamily` `Storage`,
  `volumeType` `General Purpose-Hosting`, `platoclassificationtype` `Host:VolumeUsage`, usage type
  `[<region>-]Host:VolumeUsage.gp2` (infracost/infracost
  internal/resources/aws/sagemaker_endpoint_configuration.go), unit `GB-Mo` (the same Sample_Costs.md:
  "per GB-Mo of Endpoint ML storage").

Not queried, because no real source confirmed their Price List attributes: SageMaker Feature Store's
online store (write and read request units, storage) and SageMaker training jobs' ML storage. The
plan shows them as unpriced lines that say so (README, Cost).

The Price List API answers from us-east-1 (also ap-south-1 and eu-central-1), whatever region is priced.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from specs import cost
from specs.config.schema import StackConfig

SOURCE = "AWS Price List API (pricing:GetProducts)"
API_REGION = "us-east-1"
SAGEMAKER_COMPONENTS = {"Hosting", "Training", "Processing"}


def wanted(configs: Iterable[StackConfig]) -> dict[str, dict[str, set[str]]]:
    """Per region: the SageMaker instance types (`sagemaker`) and EC2 instance types (`ec2`) the stacks use."""
    out: dict[str, dict[str, set[str]]] = {}
    for config in configs:
        region = out.setdefault(config.aws.region, {"sagemaker": set(), "ec2": set()})
        for endpoint in config.endpoints.values():
            region["sagemaker"] |= {v.instance_type for v in endpoint.all_variants().values()}
        if config.training.kind == "sagemaker":
            region["sagemaker"].add(config.training.instance_type)
        region["sagemaker"].add(config.monitoring.drift_instance_type)
        eks = config.training.eks
        pool = getattr(eks.cluster, "gpu_nodes", None) if config.training.kind == "eks" and eks is not None else None
        if pool is not None:
            region["ec2"] |= set(pool.instance_types)
    return out


def _filters(**terms: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def _products(client: Any, service: str, filters: list[dict[str, str]]) -> Iterable[dict[str, Any]]:
    """Every product of the query, each PriceList entry (a JSON string in the response) parsed."""
    for page in client.get_paginator("get_products").paginate(ServiceCode=service, Filters=filters, FormatVersion="aws_v1"):
        for item in page["PriceList"]:
            yield json.loads(item) if isinstance(item, str) else item


def on_demand(product: dict[str, Any]) -> dict[str, Any] | None:
    """{usd_per_hour, usage_type, publication_date} from a product's on-demand term; None when it has
    no positive hourly USD price."""
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            if usd is not None and dimension.get("unit", "").lower() in ("hrs", "hours", "hour") and float(usd) > 0:
                return {"usd_per_hour": float(usd), "usage_type": product["product"]["attributes"].get("usagetype", ""),
                        "publication_date": product.get("publicationDate", "")}
    return None


@dataclass(frozen=True)
class UnitQuery:
    """How one unit price of `specs.cost.UNIT_PRICES` is asked for and recognised (module docstring: sources)."""

    name: str
    service: str
    filters: dict[str, str]
    """TERM_MATCH filters sent besides the region."""
    checks: dict[str, str]
    """Attributes the product must have (the filters are checked again with them)."""
    usage_type: str | None
    """A pattern the product's usage type must match in full (region prefixes vary: `EUC1-`, none in us-east-1)."""


UNIT_QUERIES = (
    UnitQuery("s3-standard-storage", "AmazonS3", {}, {"volumeType": "Standard"}, r"([A-Z0-9]+-)?TimedStorage-ByteHrs"),
    UnitQuery("s3-put-requests", "AmazonS3", {}, {}, r"([A-Z0-9]+-)?Requests-Tier1"),
    UnitQuery("sagemaker-processing-volume", "AmazonSageMaker", {"platoclassificationtype": "Processing:VolumeUsage"}, {}, None),
    UnitQuery("sagemaker-hosting-volume", "AmazonSageMaker",
              {"productFamily": "Storage", "volumeType": "General Purpose-Hosting", "platoclassificationtype": "Host:VolumeUsage"}, {},
              r"([A-Z0-9]+-)?Host:VolumeUsage\.gp2"),
)
assert {q.name for q in UNIT_QUERIES} == set(cost.UNIT_PRICES)


def unit_price(product: dict[str, Any], query: UnitQuery) -> dict[str, Any] | None:
    """{usd, unit, usage_type, publication_date} of a product that is what `query` asks for: its
    attributes match the filters and the usage type, and its on-demand term has a positive USD price
    in the unit `specs.cost.UNIT_PRICES` names, for the first tier (`beginRange` 0) where tiered.
    None otherwise."""
    described = product.get("product") or {}
    attributes = described.get("attributes") or {}
    usage_type = attributes.get("usagetype", "")
    # productFamily sits beside the attributes in a price item, yet GetProducts filters on it like one.
    if any(attributes.get(k, described.get(k)) != v for k, v in {**query.filters, **query.checks}.items()) or not usage_type:
        return None
    if query.usage_type is not None and not re.fullmatch(query.usage_type, usage_type):
        return None
    unit = cost.UNIT_PRICES[query.name][0]
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            usd = (dimension.get("pricePerUnit") or {}).get("USD")
            first = str(dimension.get("beginRange", "0")) in ("0", "0.0")
            if usd is not None and dimension.get("unit") == unit and first and float(usd) > 0:
                return {"usd": float(usd), "unit": unit, "usage_type": usage_type, "publication_date": product.get("publicationDate", "")}
    return None


def unit_prices(client: Any, region: str) -> dict[str, dict[str, Any]]:
    """The unit prices of `UNIT_QUERIES` in `region`. One the API does not answer, or answers with
    several different prices (which one applies would be a guess), is left out: the plan calls it
    unpriced."""
    found: dict[str, dict[str, Any]] = {}
    answers: dict[tuple[str, str], list[dict[str, Any]]] = {}  # queries that send the same filters share one answer
    for query in UNIT_QUERIES:
        filters = _filters(regionCode=region, **query.filters)
        key = (query.service, json.dumps(filters, sort_keys=True))
        if key not in answers:
            answers[key] = list(_products(client, query.service, filters))
        candidates = [p for p in (unit_price(item, query) for item in answers[key]) if p is not None]
        if candidates and len({c["usd"] for c in candidates}) == 1:
            found[query.name] = candidates[0]
    return found


def count(doc: dict[str, Any]) -> int:
    """How many prices a price file holds."""
    return (sum(len(c) for types in doc["sagemaker"].values() for c in types.values()) + sum(len(t) for t in doc["ec2"].values())
            + sum(len(u) for u in doc.get("unit_prices", {}).values()))


def refresh(client: Any, want: dict[str, dict[str, set[str]]], *, now: datetime | None = None) -> dict[str, Any]:
    """The price file for `want` (see `wanted`), queried with the `pricing` client."""
    doc: dict[str, Any] = {"source": SOURCE, "queried_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                           "currency": "USD", "sagemaker": {}, "ec2": {}, "unit_prices": {}}
    for region, types in sorted(want.items()):
        doc["unit_prices"][region] = unit_prices(client, region)
        for instance in sorted(types["sagemaker"]):
            found = doc["sagemaker"].setdefault(region, {}).setdefault(instance, {})
            for product in _products(client, "AmazonSageMaker", _filters(regionCode=region, instanceName=instance, productFamily="ML Instance")):
                component = product["product"]["attributes"].get("component")
                price = on_demand(product)
                if component in SAGEMAKER_COMPONENTS and price is not None and component not in found:
                    found[component] = price
        for instance in sorted(types["ec2"]):
            products = _products(client, "AmazonEC2", _filters(regionCode=region, instanceType=instance, operatingSystem="Linux",
                                                                tenancy="Shared", preInstalledSw="NA", capacitystatus="Used"))
            price = next((p for p in map(on_demand, products) if p is not None), None)
            if price is not None:
                doc["ec2"].setdefault(region, {})[instance] = price
    return doc


def pricing_client(session: Any | None = None, *, endpoint_url: str | None = None) -> Any:
    """A `pricing` client in the API's region, retrying throttling (standard mode, 8 attempts)."""
    import boto3
    from botocore.config import Config

    session = session or boto3.Session()
    return session.client("pricing", region_name=API_REGION, endpoint_url=endpoint_url,
                          config=Config(retries={"mode": "standard", "total_max_attempts": 8}))
