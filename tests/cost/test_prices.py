"""`mlops prices refresh` against a local HTTP server that answers pricing:GetProducts the way AWS's
Price List API does (awsJson1_1; each PriceList entry a JSON string; NextToken pages; a
ThrottlingException first), every request checked against botocore's model; then the estimate of a
shipped stack from a fixture price file, computed by hand.

The fixture products have the Price List's shape (productFamily beside the attributes, tiered price
dimensions with beginRange/endRange, units `Hrs`, `GB-Mo`, `Requests`); their attribute values are
the ones mlops/prices.py cites. The usage type of the processing-volume product is the fixture's own:
the code does not rely on it."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator
from typer.testing import CliRunner

from mlops.cli import app
from mlops.prices import UNIT_QUERIES, on_demand, pricing_client, refresh, unit_price, unit_prices
from specs import cost
from mlops.plan import plan_stack

MODEL = botocore.session.get_session().get_service_model("pricing").operation_model("GetProducts")


def product(service: str, attributes: dict[str, str], usd: str, *, published: str = "2026-11-20T18:43:40Z") -> dict:
    """A price item in the Price List's own shape (one on-demand term, one hourly dimension)."""
    sku = f"SKU{abs(hash(json.dumps(attributes, sort_keys=True))) % 10**8:08d}"
    return {"product": {"productFamily": attributes.get("productFamily", "Compute Instance"), "attributes": attributes, "sku": sku},
            "serviceCode": service, "publicationDate": published, "version": "20261120184340",
            "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {"offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z",
                                                        "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                                            "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [],
                                                            "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "description": "per hour",
                                                            "pricePerUnit": {"USD": usd}}}}}}}


def priced(service: str, family: str, attributes: dict[str, str], unit: str, tiers: list[tuple[str, str, str]]) -> dict:
    """A price item with productFamily beside its attributes and one dimension per (usd, beginRange, endRange) tier."""
    item = product(service, attributes, "0", published="2026-11-20T18:43:40Z")
    item["product"]["productFamily"] = family
    [term] = item["terms"]["OnDemand"].values()
    sku = item["product"]["sku"]
    term["priceDimensions"] = {f"{sku}.JRTCKXETXF.{i}": {"unit": unit, "beginRange": begin, "endRange": end, "appliesTo": [],
                                                         "rateCode": f"{sku}.JRTCKXETXF.{i}", "description": f"tier {i}", "pricePerUnit": {"USD": usd}}
                               for i, (usd, begin, end) in enumerate(tiers)}
    return item


S3_STORAGE = priced("AmazonS3", "Storage", {"regionCode": "us-east-1", "volumeType": "Standard", "storageClass": "General Purpose",
                                            "usagetype": "TimedStorage-ByteHrs", "operation": ""},
                    "GB-Mo", [("0.0210000000", "512000", "Inf"), ("0.0230000000", "0", "51200"), ("0.0220000000", "51200", "512000")])
S3_OVERHEAD = priced("AmazonS3", "Storage", {"regionCode": "us-east-1", "volumeType": "INTAAS3ObjectOverhead", "usagetype": "TimedStorage-ByteHrs"},
                     "GB-Mo", [("0.0230000000", "0", "Inf")])  # shares Standard's usage type: the volumeType filter keeps it out
S3_PUT = priced("AmazonS3", "API Request", {"regionCode": "us-east-1", "group": "S3-API-Tier1", "usagetype": "Requests-Tier1", "operation": ""},
                "Requests", [("0.0000050000", "0", "Inf")])
S3_GET = priced("AmazonS3", "API Request", {"regionCode": "us-east-1", "group": "S3-API-Tier2", "usagetype": "Requests-Tier2"},
                "Requests", [("0.0000004000", "0", "Inf")])


def ml_storage(region: str, classification: str, usage_type: str, usd: str, **extra: str) -> dict:
    return priced("AmazonSageMaker", "Storage", {"regionCode": region, "platoclassificationtype": classification, "usagetype": usage_type, **extra},
                  "GB-Mo", [(usd, "0", "Inf")])


PROCESSING_VOLUME = ml_storage("us-east-1", "Processing:VolumeUsage", "USE1-Processing:VolumeUsage.gp2", "0.1400000000")
HOSTING_VOLUME = ml_storage("us-east-1", "Host:VolumeUsage", "USE1-Host:VolumeUsage.gp2", "0.1400000000", volumeType="General Purpose-Hosting")


def sagemaker(region: str, instance: str, component: str, usd: str) -> dict:
    code = {"us-east-1": "USE1", "eu-west-1": "EU"}[region]
    short = {"Hosting": "Host", "Training": "Train", "Processing": "Processing"}[component]
    return product("AmazonSageMaker", {"productFamily": "ML Instance", "regionCode": region, "instanceName": instance,
                                        "component": component, "usagetype": f"{code}-{short}:{instance}"}, usd)


CATALOG = {
    "AmazonSageMaker": [sagemaker("us-east-1", "ml.m5.large", c, p) for c, p in (("Hosting", "0.1150000000"), ("Training", "0.1150000000"),
                                                                                     ("Processing", "0.1150000000"))]
    + [sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.0000000000")]  # a zero-priced duplicate is not a price
    + [PROCESSING_VOLUME, HOSTING_VOLUME,
       # two processing-volume prices in one region: which applies would be a guess, so neither is kept
       ml_storage("eu-west-1", "Processing:VolumeUsage", "EU-Processing:VolumeUsage.gp2", "0.1540000000"),
       ml_storage("eu-west-1", "Processing:VolumeUsage", "EU-Processing:VolumeUsage.gp3", "0.1200000000")],
    "AmazonS3": [S3_OVERHEAD, S3_STORAGE, S3_GET, S3_PUT],
    "AmazonEC2": [product("AmazonEC2", {"regionCode": "us-east-1", "instanceType": "g5.xlarge", "operatingSystem": "Linux", "tenancy": "Shared",
                                        "preInstalledSw": "NA", "capacitystatus": "Used", "usagetype": "BoxUsage:g5.xlarge"}, "1.0060000000")],
}


class PriceList:
    """The fake API: one product per page, a ThrottlingException before the first answer."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.throttled = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["X-Amz-Target"] == "AWSPriceListService.GetProducts"
                outer.requests.append(body)
                if outer.throttled == 0:
                    outer.throttled += 1
                    return self._send(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
                matching = [p for p in CATALOG[body["ServiceCode"]]
                            if all(p["product"]["attributes"].get(f["Field"], p["product"].get(f["Field"])) == f["Value"]
                                   for f in body.get("Filters", []))]
                start = int(body.get("NextToken") or 0)
                page = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in matching[start:start + 1]]}
                if start + 1 < len(matching):
                    page["NextToken"] = str(start + 1)
                self._send(200, page)

            def _send(self, status: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def price_list(monkeypatch: pytest.MonkeyPatch) -> Iterator[PriceList]:
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(key, value)
    api = PriceList()
    yield api
    api.server.shutdown()


def test_refresh_reads_every_page_after_throttling_and_writes_the_price_file(price_list, stacks: Path):
    result = CliRunner().invoke(app, ["prices", "refresh", "--region", "us-east-1", "--endpoint-url", price_list.url])
    assert result.exit_code == 0, result.output
    doc = json.loads((stacks / "prices.json").read_text())
    cost.check_prices(doc)
    assert price_list.throttled == 1 and doc["source"] == "AWS Price List API (pricing:GetProducts)"
    host = doc["sagemaker"]["us-east-1"]["ml.m5.large"]["Hosting"]
    assert host == {"usd_per_hour": 0.115, "usage_type": "USE1-Host:ml.m5.large", "publication_date": "2026-11-20T18:43:40Z"}
    assert set(doc["sagemaker"]["us-east-1"]["ml.m5.large"]) == {"Hosting", "Training", "Processing"}
    assert doc["ec2"]["us-east-1"]["g5.xlarge"]["usd_per_hour"] == 1.006
    units = doc["unit_prices"]["us-east-1"]
    assert units["s3-standard-storage"] == {"usd": 0.023, "unit": "GB-Mo", "usage_type": "TimedStorage-ByteHrs",
                                            "publication_date": "2026-11-20T18:43:40Z"}  # the first tier
    assert (units["s3-put-requests"]["usd"], units["s3-put-requests"]["unit"], units["s3-put-requests"]["usage_type"]) == (5e-06, "Requests", "Requests-Tier1")
    assert units["sagemaker-processing-volume"]["usage_type"] == "USE1-Processing:VolumeUsage.gp2"
    assert units["sagemaker-hosting-volume"]["usd"] == 0.14
    assert set(doc["unit_prices"]) == {"us-east-1"}
    assert "8 price(s) for 1 region(s)" in result.output  # 3 SageMaker, 1 EC2, 4 unit prices
    assert any(r.get("NextToken") for r in price_list.requests)  # pagination followed
    for request in price_list.requests:
        report = ParamValidator().validate(request, MODEL.input_shape)
        assert not report.has_errors(), report.generate_report()
    bad = CliRunner().invoke(app, ["prices", "refresh", "--region", "mars-1", "--endpoint-url", price_list.url])
    assert bad.exit_code == 64 and "no stack uses region(s) mars-1" in bad.output


def test_a_unit_price_is_taken_only_from_the_product_the_query_describes():
    query = {q.name: q for q in UNIT_QUERIES}
    assert unit_price(S3_STORAGE, query["s3-standard-storage"])["usd"] == 0.023
    assert unit_price(S3_OVERHEAD, query["s3-standard-storage"]) is None  # same usage type, another volumeType
    assert unit_price(S3_GET, query["s3-put-requests"]) is None
    assert unit_price(S3_PUT, query["s3-standard-storage"]) is None
    other_class = ml_storage("us-east-1", "Host:VolumeUsage", "USE1-Host:VolumeUsage.gp2", "0.14")
    assert unit_price(other_class, query["sagemaker-processing-volume"]) is None
    assert unit_price(other_class, query["sagemaker-hosting-volume"]) is None  # lacks volumeType General Purpose-Hosting
    gp3 = ml_storage("us-east-1", "Host:VolumeUsage", "USE1-Host:VolumeUsage.gp3", "0.14", volumeType="General Purpose-Hosting")
    assert unit_price(gp3, query["sagemaker-hosting-volume"]) is None
    hourly = priced("AmazonS3", "Storage", S3_STORAGE["product"]["attributes"], "Hrs", [("0.023", "0", "Inf")])
    assert unit_price(hourly, query["s3-standard-storage"]) is None  # not the unit the estimate multiplies by
    free = priced("AmazonS3", "Storage", S3_STORAGE["product"]["attributes"], "GB-Mo", [("0.0000000000", "0", "Inf")])
    assert unit_price(free, query["s3-standard-storage"]) is None


def test_unit_prices_are_queried_by_region_with_valid_requests(price_list):
    found = unit_prices(pricing_client(endpoint_url=price_list.url), "us-east-1")
    assert set(found) == {"s3-standard-storage", "s3-put-requests", "sagemaker-processing-volume", "sagemaker-hosting-volume"}
    asked = [(r["ServiceCode"], tuple(sorted((f["Field"], f["Value"]) for f in r["Filters"]))) for r in price_list.requests if not r.get("NextToken")]
    # S3 by region alone, once for both S3 prices (the first request was throttled and retried); its four products come one a page.
    assert asked.count(("AmazonS3", (("regionCode", "us-east-1"),))) == 1 + (asked[0][0] == "AmazonS3")
    assert sum(1 for r in price_list.requests if r["ServiceCode"] == "AmazonS3" and r.get("NextToken")) == 3
    assert ("AmazonSageMaker", (("platoclassificationtype", "Processing:VolumeUsage"), ("regionCode", "us-east-1"))) in asked
    # Two different processing-volume prices in one region: which applies would be a guess, so neither is kept.
    assert "sagemaker-processing-volume" not in unit_prices(pricing_client(endpoint_url=price_list.url), "eu-west-1")
    for request in price_list.requests:
        report = ParamValidator().validate(request, MODEL.input_shape)
        assert not report.has_errors(), report.generate_report()


def test_a_product_without_a_positive_hourly_price_gives_no_price():
    assert on_demand(sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.0000000000")) is None
    assert on_demand(sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.1150000000"))["usd_per_hour"] == 0.115


def _unit(usd: float, unit: str, usage_type: str) -> dict:
    return {"usd": usd, "unit": unit, "usage_type": usage_type, "publication_date": "x"}


PRICES = {"source": "test", "queried_at": "2026-12-01T00:00:00+00:00", "currency": "USD", "ec2": {},
          "sagemaker": {"us-east-1": {t: {c: {"usd_per_hour": 0.115, "usage_type": f"USE1-{c}", "publication_date": "x"} for c in cost.COMPONENTS}
                                      for t in ("ml.m5.large", "ml.m5.xlarge")}},
          "unit_prices": {"us-east-1": {"s3-standard-storage": _unit(0.023, "GB-Mo", "TimedStorage-ByteHrs"),
                                        "s3-put-requests": _unit(0.000005, "Requests", "Requests-Tier1"),
                                        "sagemaker-processing-volume": _unit(0.14, "GB-Mo", "USE1-Processing:VolumeUsage.gp2"),
                                        "sagemaker-hosting-volume": _unit(0.14, "GB-Mo", "USE1-Host:VolumeUsage.gp2")}}}


def test_the_estimate_of_a_shipped_stack_is_the_hand_computation_from_the_price_file():
    cost.check_prices(PRICES)
    plan = plan_stack("demo-local")
    est = cost.estimate("demo-local", "us-east-1", plan.resources, PRICES)
    by = {(ln.kind, ln.item): ln for ln in est.lines}
    # demo-local: two variants of 1 x ml.m5.large for 730 h; a pipeline run of Dataset (1 x ml.m5.xlarge),
    # Train (1 x ml.m5.large) and Evaluate (1 x ml.m5.xlarge), each at most 24 h with a 30 GB volume; two
    # hourly monitoring schedules on 1 x ml.m5.large with a 20 GB volume, at most 1 h a run; three buckets;
    # data capture of the endpoint; one feature group with an online store.
    champion = by["endpoint", "demo-local-scoring/champion"]
    assert (champion.low_usd, champion.high_usd) == (83.95, 83.95)  # 0.115 x 730
    run = by["training", "demo-local-fraud-detector-train"]
    assert (run.low_usd, run.per) == (8.28, "run")  # 0.115 x 24 x 3
    drift = by["monitoring", "demo-local-scoring-drift"]
    assert (drift.low_usd, drift.high_usd) == (0.0, 83.95)
    volume = by["volume", "demo-local-scoring-drift"]
    assert (volume.low_usd, volume.high_usd, volume.per) == (0.0, 2.8, "month")  # 730 runs x 20 GB x 1 h / 730 h = 20 GB-months x 0.14
    processing = by["volume", "demo-local-fraud-detector-train/processing"]
    assert (processing.low_usd, processing.per) == (0.28, "run")  # 2 steps x 30 GB x 24 h / 730 h = 1.9726 GB-months x 0.14 = 0.2762
    training = by["volume", "demo-local-fraud-detector-train/training"]
    assert training.low_usd is None and "training ML storage: its Price List attributes could not be confirmed" in training.unpriced
    online = by["feature-store", "demo-local-transactions"]
    assert online.low_usd is None and "Feature Store's online store: its Price List attributes could not be confirmed" in online.unpriced
    buckets = {ln.item: ln for ln in est.lines if ln.kind == "storage"}
    assert set(buckets) == {f"demo-local-{b}-123456789012" for b in ("artifacts", "capture", "features")}
    assert all(ln.rate == "$0.023 per GB-month" and ln.low_usd is None and not ln.unpriced for ln in buckets.values())
    assert buckets["demo-local-features-123456789012"].detail == "S3 Standard; offline store of demo-local-transactions"
    assert buckets["demo-local-capture-123456789012"].detail == "S3 Standard; data capture of demo-local-scoring"
    capture = by["capture", "demo-local-scoring"]
    assert (capture.rate, capture.low_usd) == ("$0.005 per 1,000 PUT requests", None)
    assert capture.detail == "100% of requests (Input+Output) to s3://demo-local-capture-123456789012/datacapture"
    # Monthly: 2 x 83.95 always; at most 4 x 83.95 + 2 x 2.80 = 341.40. Per-run and rate lines are not in it.
    assert (est.monthly_low, est.monthly_high) == (167.9, 341.4)
    tracking = by["tracking", "demo-local-mlflow"]
    assert tracking.low_usd is None and "MLflow tracking server: its Price List attributes could not be confirmed" in tracking.unpriced
    assert [ln.item for ln in est.unpriced] == ["demo-local-fraud-detector-train/training", "demo-local-transactions", "demo-local-mlflow"]
    assert len(est.undeclared) == 4
    text = cost.format_estimate(est)
    assert text[-1] == "  total         $167.90 - $341.40 per month for the priced lines only; 3 unpriced; 4 with usage not declared"
    assert any(line.endswith("$0.023 per GB-month (usage not declared)") and "demo-local-artifacts-123456789012" in line for line in text)
    assert est.to_json()["monthly_usd"] == {"low": 167.9, "high": 341.4, "covers_priced_lines_only": True,
                                           "unpriced_lines": 3, "usage_not_declared_lines": 4}


def test_a_declared_endpoint_volume_is_priced_as_hosting_ml_storage():
    plan = plan_stack("demo-local")
    config = next(r for r in plan.resources if r.type == cost.ENDPOINT_CONFIG)
    variants = [dict(v, volumeSizeInGb=50.0) for v in config.inputs["productionVariants"]]
    resized = [type(config)(**{**vars(config), "inputs": {**config.inputs, "productionVariants": variants}}) if r is config else r
               for r in plan.resources]
    est = cost.estimate("demo-local", "us-east-1", resized, PRICES)
    line = next(ln for ln in est.lines if (ln.kind, ln.item) == ("volume", "demo-local-scoring/champion"))
    assert (line.low_usd, line.high_usd, line.detail) == (7.0, 7.0, "1 x 50 GB ML storage")  # 50 GB-months x 0.14


def test_a_missing_price_is_an_unpriced_line_never_zero():
    plan = plan_stack("pricing-dev")
    est = cost.estimate("pricing-dev", "us-east-1", plan.resources, {"source": "t", "queried_at": "t", "sagemaker": {}, "ec2": {}})
    pool = next(ln for ln in est.lines if ln.kind == "gpu-pool")
    assert pool.low_usd is None and pool.high_usd is None and "no EC2 price for g5.xlarge in us-east-1" in pool.unpriced
    # A price file without unit prices (written before they existed): storage and volumes are unpriced, not zero.
    for line in (ln for ln in est.lines if ln.kind in ("storage", "capture", "volume")):
        assert line.low_usd is None and line.rate is None and "run `mlops prices refresh`" in line.unpriced, line
    assert any("has no S3 Standard storage, first tier price in us-east-1" in (ln.unpriced or "") for ln in est.lines)
    assert cost.format_estimate(est)[-1] == "  total         no figure: every monthly line is unpriced"
    storage_only = {"source": "t", "queried_at": "t", "sagemaker": {}, "ec2": {}, "unit_prices": {"us-east-1": {
        "s3-standard-storage": _unit(0.023, "GB-Mo", "TimedStorage-ByteHrs")}}}
    mixed = cost.estimate("pricing-dev", "us-east-1", plan.resources, storage_only)
    assert cost.format_estimate(mixed)[-1] == "  total         no figure: every monthly line is unpriced or its usage is not declared"
    none = cost.estimate("pricing-dev", "us-east-1", plan.resources, None)
    assert all(ln.unpriced == "no price file: run `mlops prices refresh`" for ln in none.lines)
    partial = {**PRICES, "unit_prices": {"us-east-1": {k: v for k, v in PRICES["unit_prices"]["us-east-1"].items() if k != "s3-put-requests"}}}
    demo = cost.estimate("demo-local", "us-east-1", plan_stack("demo-local").resources, partial)
    capture = next(ln for ln in demo.lines if ln.kind == "capture")
    assert capture.rate is None and "no S3 PUT, COPY, POST, LIST requests price" in capture.unpriced


def test_schedules_and_the_monitoring_runtime_the_estimate_assumes():
    from components._monitoring_job import MAX_RUNTIME_S

    assert cost.MONITORING_MAX_RUNTIME_HOURS * 3600 == MAX_RUNTIME_S
    assert cost.runs_per_month("cron(0 * ? * * *)") == 730 and cost.runs_per_month("cron(30 2 * * ? *)") == 30
    assert cost.runs_per_month("cron(0 */6 * * ? *)") is None


def test_a_price_file_that_is_not_what_refresh_writes_is_refused(tmp_path: Path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"source": "x", "queried_at": "x", "ec2": {}, "sagemaker": {"us-east-1": {"ml.m5.large": {"Hosting": {"usd_per_hour": 0}}}}}))
    with pytest.raises(cost.PriceFileError, match="sagemaker.us-east-1.ml.m5.large.Hosting needs a positive usd_per_hour"):
        cost.load_prices(path)
    base = {"source": "x", "queried_at": "x", "ec2": {}, "sagemaker": {}}
    wrong_unit = {**base, "unit_prices": {"us-east-1": {"s3-standard-storage": _unit(0.023, "Hrs", "TimedStorage-ByteHrs")}}}
    with pytest.raises(cost.PriceFileError, match="unit_prices.us-east-1.s3-standard-storage needs a positive usd, unit 'GB-Mo'"):
        cost.check_prices(wrong_unit)
    unknown = {**base, "unit_prices": {"us-east-1": {"s3-glacier": _unit(0.004, "GB-Mo", "TimedStorage-GlacierByteHrs")}}}
    with pytest.raises(cost.PriceFileError, match="s3-glacier is not a known unit price; allowed: s3-standard-storage, s3-put-requests"):
        cost.check_prices(unknown)
    with pytest.raises(cost.PriceFileError, match="unit_prices must map each region"):
        cost.check_prices({**base, "unit_prices": []})
    assert cost.load_prices(tmp_path / "absent.json") is None
