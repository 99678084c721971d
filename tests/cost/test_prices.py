"""`mlops prices refresh` against a local HTTP server that answers pricing:GetProducts the way AWS's
Price List API does (awsJson1_1; each PriceList entry a JSON string; NextToken pages; a
ThrottlingException first), every request checked against botocore's model; then the estimate of a
shipped stack from a fixture price file, computed by hand."""
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
from mlops.prices import on_demand, refresh
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


def sagemaker(region: str, instance: str, component: str, usd: str) -> dict:
    code = {"us-east-1": "USE1", "eu-west-1": "EU"}[region]
    short = {"Hosting": "Host", "Training": "Train", "Processing": "Processing"}[component]
    return product("AmazonSageMaker", {"productFamily": "ML Instance", "regionCode": region, "instanceName": instance,
                                        "component": component, "usagetype": f"{code}-{short}:{instance}"}, usd)


CATALOG = {
    "AmazonSageMaker": [sagemaker("us-east-1", "ml.m5.large", c, p) for c, p in (("Hosting", "0.1150000000"), ("Training", "0.1150000000"),
                                                                                     ("Processing", "0.1150000000"))]
    + [sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.0000000000")],  # a zero-priced duplicate is not a price
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
                            if all(p["product"]["attributes"].get(f["Field"]) == f["Value"] for f in body.get("Filters", []))]
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
    assert any(r.get("NextToken") for r in price_list.requests)  # pagination followed
    for request in price_list.requests:
        report = ParamValidator().validate(request, MODEL.input_shape)
        assert not report.has_errors(), report.generate_report()
    bad = CliRunner().invoke(app, ["prices", "refresh", "--region", "mars-1", "--endpoint-url", price_list.url])
    assert bad.exit_code == 64 and "no stack uses region(s) mars-1" in bad.output


def test_a_product_without_a_positive_hourly_price_gives_no_price():
    assert on_demand(sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.0000000000")) is None
    assert on_demand(sagemaker("us-east-1", "ml.m5.large", "Hosting", "0.1150000000"))["usd_per_hour"] == 0.115


def test_the_estimate_of_a_shipped_stack_is_the_hand_computation_from_the_price_file():
    entry = {c: {"usd_per_hour": 0.115, "usage_type": f"USE1-{c}", "publication_date": "x"} for c in ("Hosting", "Training", "Processing")}
    prices = {"source": "test", "queried_at": "2026-12-01T00:00:00+00:00", "currency": "USD", "ec2": {},
              "sagemaker": {"us-east-1": {"ml.m5.large": entry, "ml.m5.xlarge": entry}}}
    plan = plan_stack("demo-local")
    est = cost.estimate("demo-local", "us-east-1", plan.resources, prices)
    by = {(ln.kind, ln.item): ln for ln in est.lines}
    # demo-local: two variants of 1 x ml.m5.large for 730 h; a pipeline run of Dataset (1 x ml.m5.xlarge),
    # Train (1 x ml.m5.large) and Evaluate (1 x ml.m5.xlarge), each at most 24 h; two hourly monitoring
    # schedules on 1 x ml.m5.large, at most 1 h a run.
    champion = by["endpoint", "demo-local-scoring/champion"]
    assert (champion.low_usd, champion.high_usd) == (83.95, 83.95)  # 0.115 x 730
    run = by["training", "demo-local-fraud-detector-train"]
    assert (run.low_usd, run.per) == (8.28, "run")  # 0.115 x 24 x 3
    drift = by["monitoring", "demo-local-scoring-drift"]
    assert (drift.low_usd, drift.high_usd) == (0.0, 83.95)
    assert (est.monthly_low, est.monthly_high) == (167.9, 335.8)
    assert not est.unpriced


def test_a_missing_price_is_an_unpriced_line_never_zero():
    plan = plan_stack("pricing-dev")
    est = cost.estimate("pricing-dev", "us-east-1", plan.resources, {"source": "t", "queried_at": "t", "sagemaker": {}, "ec2": {}})
    pool = next(ln for ln in est.lines if ln.kind == "gpu-pool")
    assert pool.low_usd is None and pool.high_usd is None and "no EC2 price for g5.xlarge in us-east-1" in pool.unpriced
    assert cost.format_estimate(est)[-1] == "  total      no figure: every monthly line is unpriced"
    none = cost.estimate("pricing-dev", "us-east-1", plan.resources, None)
    assert all(ln.unpriced == "no price file: run `mlops prices refresh`" for ln in none.lines)


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
    assert cost.load_prices(tmp_path / "absent.json") is None
