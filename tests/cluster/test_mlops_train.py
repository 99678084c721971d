"""`mlops train --stack S`: one run where the stack trains.

Kind eks: the Job it submits is the stack's CronJob template with the offline store's resolved URI,
valid for Kubernetes, and it reaches the API server as the Kubernetes client's POST (a recording
HTTP server stands in for the API server: no cluster here). AWS lookups run against moto's server.
Kind sagemaker: it starts the model's pipeline on moto.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from specs.config import stack_files
from mlops import train as training
from mlops.cli import app
from mlops.plan import plan_stack

NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone.utc)
URI = "s3://pricing-prod-features-333333333333/333333333333/sagemaker/us-east-1/offline-store/pricing-prod-baskets-1763800000/data"


def config(stack: str):
    return stack_files.validate(stack_files.load_source(stack))


def test_the_submitted_job_is_the_stacks_cronjob_template_with_the_resolved_offline_store():
    job = training.render_job(config("pricing-prod"), "basket-price", train_uri=URI, now=NOW)
    [cron] = plan_stack("pricing-prod").of_type("kubernetes:batch/v1:CronJob")
    template = cron.inputs["spec"]["jobTemplate"]["spec"]
    assert job["metadata"] == {
        "name": "basket-price-20261122-093000", "namespace": "pricing-prod", "labels": cron.inputs["metadata"]["labels"],
        "annotations": cron.inputs["metadata"]["annotations"],
    }

    def without_train_uri(spec: dict[str, Any]) -> dict[str, Any]:
        spec = json.loads(json.dumps(spec))
        [container] = spec["template"]["spec"]["containers"]
        container["env"] = [e for e in container["env"] if e["name"] != "MLOPS_TRAIN_URI"]
        return spec

    # The plan's train URI is the mocks' stand-in; everything else is the same template.
    assert without_train_uri(job["spec"]) == without_train_uri(template)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert {"name": "MLOPS_TRAIN_URI", "value": URI} in container["env"]
    assert job["spec"]["completions"] == 2 and container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert container["image"] == "333333333333.dkr.ecr.us-east-1.amazonaws.com/pricing/prod/training:0.1.0"
    kubernetes_validate.validate(job, "1.33", strict=True)


def test_runs_register_into_the_models_group_with_the_job_name_as_version():
    job = training.render_job(config("pricing-dev"), "basket-price", train_uri=URI, now=NOW)
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MLOPS_HP_MODEL_PACKAGE_GROUP_NAME"] == "pricing-dev-basket-price"
    assert env["MLOPS_HP_ARTIFACT_S3_URI"] == "s3://pricing-dev-artifacts-111111111111/models"
    assert env["MLOPS_HP_AUTO_APPROVE"] == "true"
    hyperparameters = json.loads(container["args"][container["args"].index("--hyperparameters") + 1])
    assert hyperparameters["model_version"] == "$(JOB_NAME)"


def test_a_sagemaker_stack_has_no_job_to_render():
    with pytest.raises(training.TrainError, match="trains with kind 'sagemaker', not on EKS"):
        training.job_spec(config("fraud-dev"), "fraud-detector", train_uri=URI)


def test_model_is_required_when_the_stack_has_several_and_must_exist():
    assert training.pick_model(config("pricing-dev"), None) == "basket-price"
    with pytest.raises(training.TrainError, match="unknown model 'nope' in pricing-dev; defined: basket-price"):
        training.pick_model(config("pricing-dev"), "nope")


def test_offline_store_uri_is_read_from_the_feature_group(aws):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    cfg = config("pricing-dev")
    # (A missing group: AWS answers ResourceNotFound, which becomes "run `pulumi up` first"; moto answers 500.)
    sagemaker.create_feature_group(
        FeatureGroupName="pricing-dev-baskets", RecordIdentifierFeatureName="basket_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": "basket_id", "FeatureType": "Integral"}, {"FeatureName": "event_time", "FeatureType": "Fractional"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://pricing-dev-features-111111111111"}},
        RoleArn="arn:aws:iam::123456789012:role/pricing-dev-feature-store",
    )
    uri = training.offline_store_uri(cfg, "basket-price", sagemaker=sagemaker)
    assert uri.startswith("s3://pricing-dev-features-111111111111")


class _ApiServer(BaseHTTPRequestHandler):
    """Answers POST .../jobs as the API server does (201 and the created object), recording requests."""

    requests: list[tuple[str, str, dict[str, Any]]] = []
    status = 201

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, self.headers.get("Authorization", ""), body))
        payload = body if self.status == 201 else {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": self.status}
        data = json.dumps(payload).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server(tmp_path) -> Iterator[tuple[type[_ApiServer], str]]:
    handler = type("Handler", (_ApiServer,), {"requests": [], "status": 201})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u"}}],
    }))
    try:
        yield handler, str(kubeconfig)
    finally:
        server.shutdown()


def test_submit_posts_the_job_to_the_teams_namespace_with_the_kubeconfigs_credentials(api_server):
    handler, kubeconfig = api_server
    job = training.render_job(config("pricing-dev"), "basket-price", train_uri=URI, now=NOW)
    submitted = training.submit_job(job, api_client=training.kube_client(config_file=kubeconfig))
    assert (submitted.namespace, submitted.name) == ("pricing-dev", "basket-price-20261122-093000")
    [(path, auth, body)] = handler.requests
    assert path == "/apis/batch/v1/namespaces/pricing-dev/jobs"
    assert auth == "Bearer t0ken"
    assert body == job


def test_a_refused_submission_says_why(api_server):
    handler, kubeconfig = api_server
    handler.status = 403
    job = training.render_job(config("pricing-dev"), "basket-price", train_uri=URI, now=NOW)
    with pytest.raises(training.TrainError, match="refused the Job: 403 .*may not create Jobs there"):
        training.submit_job(job, api_client=training.kube_client(config_file=kubeconfig))


def test_cli_submits_with_an_explicit_train_uri_and_prints_how_to_follow(api_server, aws):
    handler, kubeconfig = api_server
    result = CliRunner().invoke(app, ["train", "-s", "pricing-dev", "--train-uri", URI, "--kubeconfig", kubeconfig], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "submitted Job pricing-dev/basket-price-" in result.stdout
    assert "kubectl -n pricing-dev logs -f -l job-name=basket-price-" in result.stdout
    [(path, _, body)] = handler.requests
    assert body["kind"] == "Job" and body["metadata"]["namespace"] == "pricing-dev"


def test_cli_dry_run_prints_the_job_and_submits_nothing(aws):
    result = CliRunner().invoke(app, ["train", "-s", "pricing-staging", "--train-uri", URI, "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    job = yaml.safe_load(result.stdout)
    assert job["kind"] == "Job" and job["metadata"]["namespace"] == "pricing-staging"
    kubernetes_validate.validate(job, "1.33", strict=True)


def test_cli_without_a_kubeconfig_exits_2_saying_how_to_get_one(aws, tmp_path):
    result = CliRunner().invoke(app, ["train", "-s", "pricing-dev", "--train-uri", URI, "--kubeconfig", str(tmp_path / "none")], catch_exceptions=False)
    assert result.exit_code == 2
    assert "no usable kubeconfig" in result.stderr and "aws eks update-kubeconfig" in result.stderr


def test_cli_starts_the_sagemaker_pipeline_for_a_sagemaker_stack(aws):
    sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
    result = CliRunner().invoke(app, ["train", "-s", "fraud-dev"], catch_exceptions=False)
    assert result.exit_code == 2
    assert "could not start pipeline fraud-dev-fraud-detector-train" in result.stderr
    assert "`pulumi up -s fraud-dev` creates it" in result.stderr
    sagemaker.create_pipeline(
        PipelineName="fraud-dev-fraud-detector-train", RoleArn="arn:aws:iam::123456789012:role/r",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [{"Name": "Trigger", "Type": "String", "DefaultValue": "manual"}], "Steps": []}),
        ClientRequestToken="t" * 32,
    )
    result = CliRunner().invoke(app, ["train", "-s", "fraud-dev"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "started arn:aws:sagemaker:eu-west-1:" in result.stdout and ":pipeline/fraud-dev-fraud-detector-train/execution/" in result.stdout
