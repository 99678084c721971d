"""SageMaker's MLflow tracking server API through the local AWS endpoint (mlops.local.tracking_servers):
boto3 against the real aws_server process; a created server is a real `mlflow server` that a training
job's MLFLOW_TRACKING_URI (the server's ARN) resolves to, and that takes a run; the requests AWS refuses
are refused with its errors; a deleted server's process is gone."""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mlops.local.tracking_servers import resolve_environment, server_name_of

NAME = "t-dev-mlflow"
ROLE = "arn:aws:iam::123456789012:role/t-dev-mlflow"
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/{NAME}"


@pytest.fixture(scope="module")
def sagemaker(endpoint) -> Iterator:
    url, _ = endpoint
    client = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local", config=Config(retries={"total_max_attempts": 1}))
    created = client.create_mlflow_tracking_server(TrackingServerName=NAME, ArtifactStoreUri="s3://t-dev-artifacts/mlflow",
                                                   RoleArn=ROLE, TrackingServerSize="Small", MlflowVersion="3.0")
    assert created["TrackingServerArn"] == ARN
    yield client
    try:
        client.delete_mlflow_tracking_server(TrackingServerName=NAME)
    except ClientError:
        pass


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_a_jobs_tracking_arn_resolves_to_a_running_server_that_keeps_a_run(sagemaker):
    env = resolve_environment({"MLFLOW_TRACKING_URI": ARN, "OTHER": "kept"}, sagemaker)
    url = env["MLFLOW_TRACKING_URI"]
    assert url.startswith("http://127.0.0.1:") and env["OTHER"] == "kept"
    described = sagemaker.describe_mlflow_tracking_server(TrackingServerName=NAME)
    assert (described["TrackingServerStatus"], described["IsActive"], described["TrackingServerUrl"]) == ("Created", "Active", url)
    assert (described["RoleArn"], described["MlflowVersion"], described["ArtifactStoreUri"]) == (ROLE, "3.0", "s3://t-dev-artifacts/mlflow")
    experiment = _post(url, "experiments/create", {"name": "fraud-detector"})["experiment_id"]
    run = _post(url, "runs/create", {"experiment_id": experiment, "run_name": "job-1"})["run"]["info"]["run_id"]
    _post(url, "runs/log-metric", {"run_id": run, "key": "validation_auc", "value": 0.91, "timestamp": 0, "step": 1})
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/runs/get?run_id={run}", timeout=30) as answer:
        metrics = json.loads(answer.read())["run"]["data"]["metrics"]
    assert metrics == [{"key": "validation_auc", "value": 0.91, "timestamp": 0, "step": 1}]


def test_listed_and_refused_as_aws_refuses(sagemaker):
    [summary] = sagemaker.list_mlflow_tracking_servers()["TrackingServerSummaries"]
    assert (summary["TrackingServerName"], summary["TrackingServerArn"]) == (NAME, ARN)
    with pytest.raises(ClientError, match="ResourceNotFound.*no-such-server"):
        sagemaker.describe_mlflow_tracking_server(TrackingServerName="no-such-server")
    with pytest.raises(ClientError, match="ValidationException.*already exists"):
        sagemaker.create_mlflow_tracking_server(TrackingServerName=NAME, ArtifactStoreUri="s3://b/mlflow", RoleArn=ROLE)


def test_a_request_botocore_would_refuse_is_refused_by_the_endpoint(endpoint):
    """Validation happens in the endpoint too (a client that skips boto3's own validation)."""
    url, _ = endpoint
    client = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local", config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError, match="ValidationException.*TrackingServerSize"):
        client.create_mlflow_tracking_server(TrackingServerName="t-dev-other", ArtifactStoreUri="s3://b/mlflow", RoleArn=ROLE,
                                             TrackingServerSize="Huge")


def test_only_sagemaker_tracking_server_arns_are_resolved(sagemaker):
    assert server_name_of(ARN) == NAME
    assert server_name_of("http://127.0.0.1:5000") is None
    assert resolve_environment({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}, sagemaker) == {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    missing = ARN.replace(NAME, "t-dev-missing")
    with pytest.raises(RuntimeError, match="t-dev-missing.*ResourceNotFound"):
        resolve_environment({"MLFLOW_TRACKING_URI": missing}, sagemaker)


def test_a_deleted_server_is_gone_with_its_process(sagemaker):
    url = resolve_environment({"MLFLOW_TRACKING_URI": ARN}, sagemaker)["MLFLOW_TRACKING_URI"]
    assert sagemaker.delete_mlflow_tracking_server(TrackingServerName=NAME)["TrackingServerArn"] == ARN
    with pytest.raises(ClientError, match="ResourceNotFound"):
        sagemaker.describe_mlflow_tracking_server(TrackingServerName=NAME)
    with pytest.raises(OSError):  # nothing listens there any more: the delete waited for the process to exit
        urllib.request.urlopen(f"{url}/health", timeout=5)


def test_a_local_stack_that_shares_another_stacks_server_is_refused_naming_the_fix(stacks):
    import yaml

    from mlops.local.stack import LocalStack, LocalStackError

    team = stacks / "teams" / "demo.yaml"
    doc = yaml.safe_load(team.read_text())
    doc["tracking"] = {"enabled": True, "shared_stack": "acme/mlops/platform-prod"}
    team.write_text(yaml.safe_dump(doc))
    with pytest.raises(LocalStackError, match="acme/mlops/platform-prod.*does not run on this machine.*remove tracking.shared_stack"):
        LocalStack("demo-local")
