"""Pipeline executions on the local AWS endpoint: StartPipelineExecution runs the stored definition
(mlops.local.pipeline_exec) on the server's thread. A small definition whose Processing step is a tiny
python command exercises expression resolution (Get, Std:Join, Std:JsonGet with its property file), both
branches of a Condition, a Fail step's message as the execution's FailureReason, RegisterModel creating a
package on moto, ClientRequestToken idempotency and the Executing status while a step runs (the step
blocks on a FIFO the test writes to)."""
from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import requests
from botocore.exceptions import ClientError


REGION = "eu-west-1"
BUCKET = "pipeline-data"
GROUP = "t-dev-demo"
ROLE = "arn:aws:iam::123456789012:role/t-dev-sagemaker-execution"
CEILING_S = 120.0

# The Processing step: copies its input, writes evaluation.json with the decision the Gate parameter
# names, and, given a FIFO, first waits until the test writes to it.
SCRIPT = textwrap.dedent("""
    import json, pathlib, sys
    out, gate, execution_id, data, fifo = sys.argv[1:6]
    if fifo != "-":
        open(fifo).read()
    out = pathlib.Path(out)
    (out / "copy.txt").write_text(pathlib.Path(data, "x.txt").read_text())
    if gate == "crash":
        sys.exit(3)
    reason = f"gate said {gate} in {execution_id}"
    (out / "evaluation.json").write_text(json.dumps({"decision": {"passed": gate == "pass", "reason": reason}}))
""")
OUT_URI = {"Get": "Steps.Make.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"}
EVALUATION = {"Get": "Steps.Make.PropertyFiles.Evaluation"}


def _definition() -> dict[str, Any]:
    make = {
        "Name": "Make", "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}},
            "AppSpecification": {
                "ImageUri": "img:train", "ContainerEntrypoint": ["python", "-c", SCRIPT],
                "ContainerArguments": ["/opt/ml/processing/out", {"Get": "Parameters.Gate"}, {"Get": "Execution.PipelineExecutionId"},
                                       "/opt/ml/processing/input/data", {"Get": "Parameters.Fifo"}],
            },
            "RoleArn": ROLE,
            "ProcessingInputs": [{"InputName": "data", "S3Input": {
                "S3Uri": f"s3://{BUCKET}/in/", "LocalPath": "/opt/ml/processing/input/data", "S3DataType": "S3Prefix",
                "S3InputMode": "File"}}],
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": {"Std:Join": {"On": "/", "Values": [f"s3://{BUCKET}/out", {"Get": "Execution.PipelineExecutionId"}]}},
                "LocalPath": "/opt/ml/processing/out", "S3UploadMode": "EndOfJob"}}]},
        },
        "PropertyFiles": [{"PropertyFileName": "Evaluation", "OutputName": "out", "FilePath": "evaluation.json"}],
    }
    register = {"Name": "Register", "Type": "RegisterModel", "Arguments": {
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {
            "Containers": [{"Image": "img:serve", "ModelDataUrl": {"Std:Join": {"On": "", "Values": [OUT_URI, "/copy.txt"]}}}],
            "SupportedContentTypes": ["application/json"], "SupportedResponseMIMETypes": ["application/json"]},
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {
            "reason": {"Std:JsonGet": {"PropertyFile": EVALUATION, "Path": "decision.reason"}},
            "execution": {"Get": "Execution.PipelineExecutionArn"},
        },
    }}
    fail = {"Name": "Fail", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
        "refused:", {"Std:JsonGet": {"PropertyFile": EVALUATION, "Path": "decision.reason"}}]}}}}
    check = {"Name": "Check", "Type": "Condition", "Arguments": {
        "Conditions": [{"Type": "Equals", "LeftValue": {"Std:JsonGet": {"PropertyFile": EVALUATION, "Path": "decision.passed"}},
                        "RightValue": True}],
        "IfSteps": [register], "ElseSteps": [fail]}}
    return {"Version": "2020-12-01", "Parameters": [{"Name": "Gate", "Type": "String", "DefaultValue": "pass"},
                                                   {"Name": "Fifo", "Type": "String", "DefaultValue": "-"}],
            "Steps": [check, make]}  # out of order on purpose: Check reads Make's property file


@pytest.fixture
def aws(endpoint: tuple[str, Path]) -> dict[str, Any]:
    url, state = endpoint
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
    s3, sagemaker = session.client("s3", endpoint_url=url), session.client("sagemaker", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key="in/x.txt", Body=b"hello")
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    name = f"p-{uuid.uuid4().hex[:8]}"
    sagemaker.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(_definition()), RoleArn=ROLE,
                              ClientRequestToken=uuid.uuid4().hex)
    return {"s3": s3, "sagemaker": sagemaker, "pipeline": name, "state": state}


def _start(aws: dict[str, Any], **parameters: str) -> str:
    return aws["sagemaker"].start_pipeline_execution(
        PipelineName=aws["pipeline"], ClientRequestToken=uuid.uuid4().hex,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
    )["PipelineExecutionArn"]


def _wait(aws: dict[str, Any], arn: str) -> dict[str, Any]:
    """DescribePipelineExecution until it is no longer Executing (short polls, generous ceiling)."""
    deadline = time.monotonic() + CEILING_S
    while True:
        described = aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn)
        if described["PipelineExecutionStatus"] != "Executing":
            return described
        assert time.monotonic() < deadline, f"{arn} still Executing after {CEILING_S}s"
        time.sleep(0.2)


def _steps(aws: dict[str, Any], arn: str) -> dict[str, dict[str, Any]]:
    listed = aws["sagemaker"].list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")
    return {s["StepName"]: s for s in listed["PipelineExecutionSteps"]}


def _open_when_read(aws: dict[str, Any], arn: str, fifo: Path) -> int:
    """The FIFO's write end, once the step has opened its read end (the event this waits on); fails
    instead of hanging if the execution ends first or the ceiling passes."""
    deadline = time.monotonic() + CEILING_S
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader yet
            status = aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
            assert status == "Executing", f"the execution ended ({status}) before its step opened the FIFO"
            assert time.monotonic() < deadline, f"the step did not open the FIFO within {CEILING_S}s"
            time.sleep(0.1)


def test_a_passed_decision_takes_the_register_branch_with_every_expression_resolved(aws):
    arn = _start(aws)
    described = _wait(aws, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded", described.get("FailureReason")
    execution_id = arn.rsplit("/", 1)[1]
    steps = _steps(aws, arn)
    assert list(steps) == ["Make", "Check", "Register"]  # Make first although the document lists Check first
    assert all(s["StepStatus"] == "Succeeded" for s in steps.values())
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    # The output was uploaded under the joined, per-execution prefix.
    copied = aws["s3"].get_object(Bucket=BUCKET, Key=f"out/{execution_id}/copy.txt")["Body"].read()
    assert copied == b"hello"
    package = aws["sagemaker"].describe_model_package(ModelPackageName=steps["Register"]["Metadata"]["RegisterModel"]["Arn"])
    assert package["ModelPackageGroupName"] == GROUP and package["ModelApprovalStatus"] == "Approved"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == f"s3://{BUCKET}/out/{execution_id}/copy.txt"
    assert package["CustomerMetadataProperties"] == {"reason": f"gate said pass in {execution_id}", "execution": arn}
    assert (aws["state"] / "pipelines" / aws["pipeline"] / execution_id / "execution.json").exists()


def test_a_refused_decision_fails_the_execution_with_the_fail_steps_message(aws):
    arn = _start(aws, Gate="refuse")
    described = _wait(aws, arn)
    execution_id = arn.rsplit("/", 1)[1]
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == f"refused: gate said refuse in {execution_id}"
    steps = _steps(aws, arn)
    assert list(steps) == ["Make", "Check", "Fail"]
    assert steps["Check"]["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert steps["Fail"]["StepStatus"] == "Failed"
    assert steps["Fail"]["Metadata"] == {"Fail": {"ErrorMessage": described["FailureReason"]}}
    assert aws["sagemaker"].list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    (summary,) = aws["sagemaker"].list_pipeline_executions(PipelineName=aws["pipeline"])["PipelineExecutionSummaries"]
    assert (summary["PipelineExecutionStatus"], summary["PipelineExecutionFailureReason"]) == ("Failed", described["FailureReason"])


def test_a_failing_process_fails_its_step_and_runs_nothing_after_it(aws):
    arn = _start(aws, Gate="crash")
    described = _wait(aws, arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"].startswith("Step Make failed: ['python', '-c',") and "exited 3" in described["FailureReason"]
    assert list(_steps(aws, arn)) == ["Make"]


def test_the_same_client_request_token_returns_the_same_execution_and_starts_nothing_more(aws):
    token = uuid.uuid4().hex
    first = aws["sagemaker"].start_pipeline_execution(PipelineName=aws["pipeline"], ClientRequestToken=token)["PipelineExecutionArn"]
    again = aws["sagemaker"].start_pipeline_execution(PipelineName=aws["pipeline"], ClientRequestToken=token)["PipelineExecutionArn"]
    assert again == first
    _wait(aws, first)
    assert len(aws["sagemaker"].list_pipeline_executions(PipelineName=aws["pipeline"])["PipelineExecutionSummaries"]) == 1


def test_the_execution_is_executing_from_its_start_until_its_blocked_step_is_released(aws, tmp_path):
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    arn = _start(aws, Fifo=str(fifo))
    # Right after the start returns, and for as long as the step waits on the FIFO.
    assert aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    (summary,) = aws["sagemaker"].list_pipeline_executions(PipelineName=aws["pipeline"])["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Executing"
    with os.fdopen(_open_when_read(aws, arn, fifo), "w") as release:  # the step holds the other end: it is running
        assert _steps(aws, arn)["Make"]["StepStatus"] == "Executing"
        assert aws["sagemaker"].describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
        release.write("go")
    assert _wait(aws, arn)["PipelineExecutionStatus"] == "Succeeded"


def test_an_invalid_start_request_is_refused_as_aws_refuses_it(aws):
    unchecked = boto3.client("sagemaker", endpoint_url=aws["sagemaker"].meta.endpoint_url, region_name=REGION,
                             aws_access_key_id="local", aws_secret_access_key="local",
                             config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(ClientError) as refused:
        unchecked.start_pipeline_execution(PipelineName=aws["pipeline"], ClientRequestToken="short")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as missing:
        aws["sagemaker"].list_pipeline_execution_steps(
            PipelineExecutionArn=f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{aws['pipeline']}/execution/nope")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
