"""`mlops prices refresh`: on-demand hourly prices from AWS's Price List API into `stacks/prices.json`.

For each region the stacks use, `pricing:GetProducts` (paginated with NextToken) is asked for
AmazonSageMaker's `ML Instance` products of each instance type the stacks name (endpoints: Hosting;
training: Training; monitoring jobs: Processing) and for AmazonEC2's Linux, shared-tenancy, no
pre-installed software products of the EKS GPU pools' instance types. Each product's on-demand term
gives the hourly USD price; the file keeps with it the usage type and the offer's publication date,
plus when and from where it was queried (specs/cost.py describes the file). Throttling is retried
by botocore (standard mode, 8 attempts). Nothing is invented: a type the API does not price is left
out, and the plan then calls it unpriced.

The Price List API answers from us-east-1 (also ap-south-1 and eu-central-1), whatever region is priced.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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


def refresh(client: Any, want: dict[str, dict[str, set[str]]], *, now: datetime | None = None) -> dict[str, Any]:
    """The price file for `want` (see `wanted`), queried with the `pricing` client."""
    doc: dict[str, Any] = {"source": SOURCE, "queried_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
                           "currency": "USD", "sagemaker": {}, "ec2": {}}
    for region, types in sorted(want.items()):
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
