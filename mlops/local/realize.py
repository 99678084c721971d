"""Realize a plan against an AWS API endpoint: each planned resource becomes the API call(s) the AWS
provider would make for it (CreateBucket, CreateEndpointConfig, PutMetricAlarm, ...).

`api_calls(resource)` is pure (pulumi-aws inputs, camelCase -> the API's own request shape) and is
what the tests validate against botocore's service models. `realize(plan, clients)` executes the
calls in plan order against a local emulator, replacing the plan's stand-in ids and ARNs with the
ones the emulator returns, so references between resources hold.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.plan import PlannedResource
from specs.config import stack_files


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call: service (boto3 client name), operation (boto3 method), parameters."""

    service: str
    operation: str
    params: dict[str, Any]
    returns: dict[str, str] = field(default_factory=dict)
    """Plan output name -> dotted path in the response holding the real value (e.g. arn -> TopicArn)."""


def _tags_list(tags: dict[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in (tags or {}).items()]


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def _bucket(r: PlannedResource, region: str) -> list[ApiCall]:
    params: dict[str, Any] = {"Bucket": r.inputs["bucket"]}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    calls = [ApiCall("s3", "create_bucket", params)]
    if r.inputs.get("tags"):
        calls.append(ApiCall("s3", "put_bucket_tagging", {"Bucket": r.inputs["bucket"], "Tagging": {"TagSet": _tags_list(r.inputs["tags"])}}))
    return calls


def _bucket_encryption(r: PlannedResource, region: str) -> list[ApiCall]:
    rules = []
    for rule in r.inputs["rules"]:
        default = rule["applyServerSideEncryptionByDefault"]
        rules.append(_drop_none({
            "ApplyServerSideEncryptionByDefault": _drop_none({"SSEAlgorithm": default["sseAlgorithm"], "KMSMasterKeyID": default.get("kmsMasterKeyId")}),
            "BucketKeyEnabled": rule.get("bucketKeyEnabled"),
        }))
    return [ApiCall("s3", "put_bucket_encryption", {"Bucket": r.inputs["bucket"], "ServerSideEncryptionConfiguration": {"Rules": rules}})]


def _bucket_lifecycle(r: PlannedResource, region: str) -> list[ApiCall]:
    rules = []
    for rule in r.inputs["rules"]:
        out: dict[str, Any] = {"ID": rule["id"], "Status": rule["status"], "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")}}
        if rule.get("noncurrentVersionExpiration"):
            out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["noncurrentVersionExpiration"]["noncurrentDays"])}
        if rule.get("abortIncompleteMultipartUpload"):
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"])}
        rules.append(out)
    return [ApiCall("s3", "put_bucket_lifecycle_configuration", {"Bucket": r.inputs["bucket"], "LifecycleConfiguration": {"Rules": rules}})]


def _kms_key(r: PlannedResource, region: str) -> list[ApiCall]:
    create = ApiCall(
        "kms", "create_key",
        _drop_none({"Description": r.inputs.get("description"), "Policy": r.inputs.get("policy"), "Tags": _tags_list(r.inputs.get("tags"), "TagKey", "TagValue")}),
        returns={"keyId": "KeyMetadata.KeyId", "arn": "KeyMetadata.Arn", "id": "KeyMetadata.KeyId"},
    )
    calls = [create]
    if r.inputs.get("enableKeyRotation"):
        calls.append(ApiCall("kms", "enable_key_rotation", {"KeyId": r.outputs.get("keyId", r.id)}))
    return calls


def _role(r: PlannedResource, region: str) -> list[ApiCall]:
    return [ApiCall("iam", "create_role", _drop_none({
        "RoleName": r.inputs["name"],
        "AssumeRolePolicyDocument": r.inputs["assumeRolePolicy"],
        "Description": r.inputs.get("description"),
        "MaxSessionDuration": int(r.inputs["maxSessionDuration"]) if r.inputs.get("maxSessionDuration") else None,
        "Tags": _tags_list(r.inputs.get("tags")),
    }), returns={"arn": "Role.Arn"}), *(
        ApiCall("iam", "attach_role_policy", {"RoleName": r.inputs["name"], "PolicyArn": arn})
        for arn in r.inputs.get("managedPolicyArns") or []
    )]


def _eks_cluster(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    vpc = i["vpcConfig"]
    encryption = i.get("encryptionConfig")
    return [ApiCall("eks", "create_cluster", _drop_none({
        "name": i["name"],
        "version": i.get("version"),
        "roleArn": i["roleArn"],
        "resourcesVpcConfig": _drop_none({
            "subnetIds": vpc["subnetIds"], "securityGroupIds": vpc.get("securityGroupIds"),
            "endpointPublicAccess": vpc.get("endpointPublicAccess"), "endpointPrivateAccess": vpc.get("endpointPrivateAccess"),
            "publicAccessCidrs": vpc.get("publicAccessCidrs"),
        }),
        "logging": {"clusterLogging": [{"types": i["enabledClusterLogTypes"], "enabled": True}]} if i.get("enabledClusterLogTypes") else None,
        "encryptionConfig": [{"resources": encryption["resources"], "provider": {"keyArn": encryption["provider"]["keyArn"]}}] if encryption else None,
        "accessConfig": i.get("accessConfig"),
        "tags": i.get("tags"),
    }), returns={"arn": "cluster.arn"})]


def _eks_node_group(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    return [ApiCall("eks", "create_nodegroup", _drop_none({
        "clusterName": i["clusterName"],
        "nodegroupName": i["nodeGroupName"],
        "scalingConfig": {k: int(v) for k, v in i["scalingConfig"].items()},
        "diskSize": int(i["diskSize"]) if i.get("diskSize") else None,
        "subnets": i["subnetIds"],
        "instanceTypes": i.get("instanceTypes"),
        "amiType": i.get("amiType"),
        "nodeRole": i["nodeRoleArn"],
        "labels": i.get("labels"),
        "taints": i.get("taints"),
        "capacityType": i.get("capacityType"),
        "updateConfig": {k: int(v) for k, v in i["updateConfig"].items()} if i.get("updateConfig") else None,
        "tags": i.get("tags"),
    }), returns={"arn": "nodegroup.nodegroupArn"})]


def _metric_alarm(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    params: dict[str, Any] = _drop_none({
        "AlarmName": i["name"],
        "AlarmDescription": i.get("alarmDescription"),
        "ComparisonOperator": i["comparisonOperator"],
        "Threshold": float(i["threshold"]),
        "EvaluationPeriods": int(i["evaluationPeriods"]),
        "DatapointsToAlarm": int(i["datapointsToAlarm"]) if i.get("datapointsToAlarm") else None,
        "TreatMissingData": i.get("treatMissingData"),
        "AlarmActions": i.get("alarmActions"),
        "OKActions": i.get("okActions"),
        "Namespace": i.get("namespace"),
        "MetricName": i.get("metricName"),
        "Statistic": i.get("statistic"),
        "ExtendedStatistic": i.get("extendedStatistic"),
        "Period": int(i["period"]) if i.get("period") else None,
        "Dimensions": [{"Name": k, "Value": v} for k, v in (i.get("dimensions") or {}).items()],
        "Tags": _tags_list(i.get("tags")),
    })
    if i.get("metricQueries"):
        metrics = []
        for q in i["metricQueries"]:
            query: dict[str, Any] = {"Id": q["id"], "ReturnData": bool(q.get("returnData"))}
            if q.get("expression"):
                query.update(Expression=q["expression"], Label=q.get("label", q["id"]))
            else:
                m = q["metric"]
                query["MetricStat"] = {
                    "Metric": {"Namespace": m["namespace"], "MetricName": m["metricName"], "Dimensions": [{"Name": k, "Value": v} for k, v in (m.get("dimensions") or {}).items()]},
                    "Period": int(m["period"]),
                    "Stat": m["stat"],
                }
            metrics.append(query)
        params["Metrics"] = metrics
    return [ApiCall("cloudwatch", "put_metric_alarm", params)]


def _sagemaker_variant(v: dict[str, Any]) -> dict[str, Any]:
    return _drop_none({
        "VariantName": v["variantName"],
        "ModelName": v["modelName"],
        "InstanceType": v.get("instanceType"),
        "InitialInstanceCount": int(v["initialInstanceCount"]) if v.get("initialInstanceCount") is not None else None,
        "InitialVariantWeight": float(v["initialVariantWeight"]) if v.get("initialVariantWeight") is not None else None,
    })


def _endpoint_config(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    params: dict[str, Any] = {
        "EndpointConfigName": i["name"],
        "ProductionVariants": [_sagemaker_variant(v) for v in i["productionVariants"]],
    }
    if i.get("shadowProductionVariants"):
        params["ShadowProductionVariants"] = [_sagemaker_variant(v) for v in i["shadowProductionVariants"]]
    if i.get("dataCaptureConfig"):
        c = i["dataCaptureConfig"]
        header = c.get("captureContentTypeHeader") or {}
        params["DataCaptureConfig"] = _drop_none({
            "EnableCapture": c.get("enableCapture"),
            "InitialSamplingPercentage": int(c["initialSamplingPercentage"]),
            "DestinationS3Uri": c["destinationS3Uri"],
            "KmsKeyId": c.get("kmsKeyId"),
            "CaptureOptions": [{"CaptureMode": o["captureMode"]} for o in c["captureOptions"]],
            "CaptureContentTypeHeader": _drop_none({"JsonContentTypes": header.get("jsonContentTypes"), "CsvContentTypes": header.get("csvContentTypes")}),
        })
    if i.get("kmsKeyArn"):
        params["KmsKeyId"] = i["kmsKeyArn"]
    params["Tags"] = _tags_list(i.get("tags"))
    return [ApiCall("sagemaker", "create_endpoint_config", _drop_none(params), returns={"arn": "EndpointConfigArn"})]


def _model(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    container = i["primaryContainer"]
    params = _drop_none({
        "ModelName": i["name"],
        "PrimaryContainer": _drop_none({"Image": container["image"], "ModelDataUrl": container.get("modelDataUrl"), "Environment": container.get("environment")}),
        "ExecutionRoleArn": i["executionRoleArn"],
        "EnableNetworkIsolation": i.get("enableNetworkIsolation"),
        "VpcConfig": _drop_none({"SecurityGroupIds": (i.get("vpcConfig") or {}).get("securityGroupIds"), "Subnets": (i.get("vpcConfig") or {}).get("subnets")}),
        "Tags": _tags_list(i.get("tags")),
    })
    return [ApiCall("sagemaker", "create_model", params, returns={"arn": "ModelArn"})]


def _endpoint(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    params: dict[str, Any] = {"EndpointName": i["name"], "EndpointConfigName": i["endpointConfigName"], "Tags": _tags_list(i.get("tags"))}
    deployment = i.get("deploymentConfig")
    if deployment:
        params["DeploymentConfig"] = _pascal(deployment)
    return [ApiCall("sagemaker", "create_endpoint", _drop_none(params), returns={"arn": "EndpointArn"})]


def deployment_package(code: dict[str, Any]) -> bytes:
    """The zip of a planned archive (mlops.plan records {"archive": {name: {"file", "sha256"}}}): each
    file at its name, with fixed timestamps, so the same code is the same bytes. ValueError when a
    file changed since the plan was made."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, asset in sorted(code["archive"].items()):
            path = Path(asset["file"])
            content = (path if path.is_absolute() else stack_files.ROOT / path).read_bytes()
            if hashlib.sha256(content).hexdigest() != asset["sha256"]:
                raise ValueError(f"{asset['file']} changed since the plan was made (planned sha256 {asset['sha256']}); plan again")
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def _lambda_function(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    calls = [ApiCall("lambda", "create_function", _drop_none({
        "FunctionName": i["name"], "Runtime": i.get("runtime"), "Role": i["role"], "Handler": i.get("handler"),
        "Code": {"ZipFile": deployment_package(i["code"])}, "Description": i.get("description"),
        "Timeout": int(i["timeout"]) if i.get("timeout") else None, "MemorySize": int(i["memorySize"]) if i.get("memorySize") else None,
        "Environment": {"Variables": i["environment"]["variables"]} if i.get("environment") else None,
        "KMSKeyArn": i.get("kmsKeyArn"), "Tags": i.get("tags"),
    }), returns={"arn": "FunctionArn"})]
    if i.get("reservedConcurrentExecutions") is not None:
        calls.append(ApiCall("lambda", "put_function_concurrency", {
            "FunctionName": i["name"], "ReservedConcurrentExecutions": int(i["reservedConcurrentExecutions"])}))
    return calls


def _lambda_invoke_config(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    return [ApiCall("lambda", "put_function_event_invoke_config", _drop_none({
        "FunctionName": i["functionName"],
        "MaximumRetryAttempts": int(i["maximumRetryAttempts"]) if i.get("maximumRetryAttempts") is not None else None,
        "MaximumEventAgeInSeconds": int(i["maximumEventAgeInSeconds"]) if i.get("maximumEventAgeInSeconds") else None,
        "DestinationConfig": _pascal(i["destinationConfig"]) if i.get("destinationConfig") else None,
    }))]


def _log_group(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    calls = [ApiCall("logs", "create_log_group", _drop_none({"logGroupName": i["name"], "kmsKeyId": i.get("kmsKeyId"), "tags": i.get("tags")}))]
    if i.get("retentionInDays"):
        calls.append(ApiCall("logs", "put_retention_policy", {"logGroupName": i["name"], "retentionInDays": int(i["retentionInDays"])}))
    return calls


def _queue(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    attributes = _drop_none({
        "KmsMasterKeyId": i.get("kmsMasterKeyId"),
        "MessageRetentionPeriod": str(int(i["messageRetentionSeconds"])) if i.get("messageRetentionSeconds") else None,
    })
    return [ApiCall("sqs", "create_queue", _drop_none({"QueueName": i["name"], "Attributes": attributes, "tags": i.get("tags")}))]


# Member names whose API spelling is not the camelCase name capitalised.
_API_NAMES = {
    "VolumeSizeInGb": "VolumeSizeInGB",
    # EventBridge Scheduler's target (pulumi-aws: sagemakerPipelineParameters.pipelineParameters)
    "SagemakerPipelineParameters": "SageMakerPipelineParameters",
    "PipelineParameters": "PipelineParameterList",
}


def _pascal(value: Any) -> Any:
    """camelCase keys -> PascalCase (the shapes where pulumi-aws mirrors the API member names)."""
    if isinstance(value, dict):
        return {_API_NAMES.get(k[:1].upper() + k[1:], k[:1].upper() + k[1:]): _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _feature_group(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    params: dict[str, Any] = {
        "FeatureGroupName": i["featureGroupName"],
        "RecordIdentifierFeatureName": i["recordIdentifierFeatureName"],
        "EventTimeFeatureName": i["eventTimeFeatureName"],
        "FeatureDefinitions": [{"FeatureName": f["featureName"], "FeatureType": f["featureType"]} for f in i["featureDefinitions"]],
        "RoleArn": i.get("roleArn"),
        "Description": i.get("description"),
        "Tags": _tags_list(i.get("tags")),
    }
    if i.get("onlineStoreConfig"):
        params["OnlineStoreConfig"] = _pascal(i["onlineStoreConfig"])
    if i.get("offlineStoreConfig"):
        params["OfflineStoreConfig"] = _pascal(i["offlineStoreConfig"])
    return [ApiCall("sagemaker", "create_feature_group", _drop_none(params), returns={"arn": "FeatureGroupArn"})]


def _budget(r: PlannedResource, region: str) -> list[ApiCall]:
    i = r.inputs
    notifications = [{"Notification": {"NotificationType": n["notificationType"], "ComparisonOperator": n["comparisonOperator"],
                                       "Threshold": float(n["threshold"]), "ThresholdType": n["thresholdType"]},
                      "Subscribers": [{"SubscriptionType": "EMAIL", "Address": a} for a in n.get("subscriberEmailAddresses") or []]}
                     for n in i.get("notifications") or []]
    return [ApiCall("budgets", "create_budget", _drop_none({
        "AccountId": i["accountId"],
        "Budget": {"BudgetName": i["name"], "BudgetLimit": {"Amount": i["limitAmount"], "Unit": i["limitUnit"]},
                   "CostFilters": {f["name"]: f["values"] for f in i.get("costFilters") or []},
                   "TimeUnit": i["timeUnit"], "BudgetType": i["budgetType"]},
        "NotificationsWithSubscribers": notifications or None,
    }))]


def _monitoring_schedule(r: PlannedResource, region: str) -> list[ApiCall]:
    config = r.inputs["monitoringScheduleConfig"]
    job = config["monitoringJobDefinition"]
    app = job["monitoringAppSpecification"]
    network = job.get("networkConfig") or {}
    definition = _drop_none({
        # pulumi-aws holds one input and one output; the API takes lists
        "MonitoringInputs": [_pascal(job["monitoringInputs"])],
        "MonitoringOutputConfig": _drop_none({
            "MonitoringOutputs": [_pascal(job["monitoringOutputConfig"]["monitoringOutputs"])],
            "KmsKeyId": job["monitoringOutputConfig"].get("kmsKeyId"),
        }),
        "MonitoringResources": _pascal(job["monitoringResources"]),
        "MonitoringAppSpecification": _drop_none({"ImageUri": app["imageUri"], "ContainerEntrypoint": app.get("containerEntrypoints"),
                                                  "ContainerArguments": app.get("containerArguments")}),
        "BaselineConfig": _pascal(job["baseline"]) if job.get("baseline") else None,
        "StoppingCondition": _pascal(job["stoppingConditions"][0]) if job.get("stoppingConditions") else None,
        "Environment": job.get("environment"),
        "NetworkConfig": _drop_none({
            "EnableNetworkIsolation": network.get("enableNetworkIsolation"),
            "EnableInterContainerTrafficEncryption": network.get("enableInterContainerTrafficEncryption"),
            "VpcConfig": _drop_none({"SecurityGroupIds": (network.get("vpcConfig") or {}).get("securityGroupIds"),
                                     "Subnets": (network.get("vpcConfig") or {}).get("subnets")}),
        }),
        "RoleArn": job["roleArn"],
    })
    return [ApiCall("sagemaker", "create_monitoring_schedule", {
        "MonitoringScheduleName": r.inputs["name"],
        "MonitoringScheduleConfig": _drop_none({
            "ScheduleConfig": _pascal(config["scheduleConfig"]),
            "MonitoringJobDefinition": definition,
            "MonitoringType": config.get("monitoringType"),
        }),
        "Tags": _tags_list(r.inputs.get("tags")),
    }, returns={"arn": "MonitoringScheduleArn"})]


CONVERTERS: dict[str, Callable[[PlannedResource, str], list[ApiCall]]] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _bucket_encryption,
    "aws:s3/bucketVersioning:BucketVersioning": lambda r, _: [ApiCall("s3", "put_bucket_versioning", {"Bucket": r.inputs["bucket"], "VersioningConfiguration": {"Status": r.inputs["versioningConfiguration"]["status"]}})],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": lambda r, _: [ApiCall("s3", "put_public_access_block", {"Bucket": r.inputs["bucket"], "PublicAccessBlockConfiguration": {k[:1].upper() + k[1:].replace("Acls", "Acls"): bool(r.inputs[k]) for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")}})],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": lambda r, _: [ApiCall("s3", "put_bucket_ownership_controls", {"Bucket": r.inputs["bucket"], "OwnershipControls": {"Rules": [{"ObjectOwnership": r.inputs["rule"]["objectOwnership"]}]}})],
    "aws:s3/bucketPolicy:BucketPolicy": lambda r, _: [ApiCall("s3", "put_bucket_policy", {"Bucket": r.inputs["bucket"], "Policy": r.inputs["policy"]})],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_lifecycle,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": lambda r, _: [ApiCall("kms", "create_alias", {"AliasName": r.inputs["name"], "TargetKeyId": r.inputs["targetKeyId"]})],
    "aws:ecr/repository:Repository": lambda r, _: [ApiCall("ecr", "create_repository", _drop_none({
        "repositoryName": r.inputs["name"],
        "imageTagMutability": r.inputs.get("imageTagMutability"),
        "imageScanningConfiguration": {"scanOnPush": bool((r.inputs.get("imageScanningConfiguration") or {}).get("scanOnPush"))},
        "encryptionConfiguration": _drop_none({"encryptionType": (r.inputs.get("encryptionConfigurations") or [{}])[0].get("encryptionType"), "kmsKey": (r.inputs.get("encryptionConfigurations") or [{}])[0].get("kmsKey")}),
        "tags": _tags_list(r.inputs.get("tags")),
    }), returns={"arn": "repository.repositoryArn", "repositoryUrl": "repository.repositoryUri"})],
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": lambda r, _: [ApiCall("ecr", "put_lifecycle_policy", {"repositoryName": r.inputs["repository"], "lifecyclePolicyText": r.inputs["policy"]})],
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": lambda r, _: [ApiCall("iam", "put_role_policy", {"RoleName": r.inputs["role"], "PolicyName": r.inputs.get("name") or r.name, "PolicyDocument": r.inputs["policy"]})],
    "aws:sagemaker/featureGroup:FeatureGroup": _feature_group,
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": lambda r, _: [ApiCall("sagemaker", "create_model_package_group", _drop_none({
        "ModelPackageGroupName": r.inputs["modelPackageGroupName"],
        "ModelPackageGroupDescription": r.inputs.get("modelPackageGroupDescription"),
        "Tags": _tags_list(r.inputs.get("tags")),
    }), returns={"arn": "ModelPackageGroupArn"})],
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": lambda r, _: [ApiCall("sagemaker", "put_model_package_group_policy", {"ModelPackageGroupName": r.inputs["modelPackageGroupName"], "ResourcePolicy": r.inputs["resourcePolicy"]})],
    "aws:sagemaker/model:Model": _model,
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": _endpoint_config,
    "aws:sagemaker/endpoint:Endpoint": _endpoint,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": lambda r, _: [ApiCall("cloudwatch", "put_dashboard", {"DashboardName": r.inputs["dashboardName"], "DashboardBody": r.inputs["dashboardBody"]})],
    "aws:cloudwatch/eventRule:EventRule": lambda r, _: [ApiCall("events", "put_rule", _drop_none({"Name": r.inputs["name"], "Description": r.inputs.get("description"), "EventPattern": r.inputs.get("eventPattern"), "Tags": _tags_list(r.inputs.get("tags"))}), returns={"arn": "RuleArn"})],
    "aws:cloudwatch/eventTarget:EventTarget": lambda r, _: [ApiCall("events", "put_targets", {"Rule": r.inputs["rule"], "Targets": [_drop_none({
        "Id": r.name[-64:], "Arn": r.inputs["arn"], "RetryPolicy": _pascal(r.inputs["retryPolicy"]) if r.inputs.get("retryPolicy") else None})]})],
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:sqs/queue:Queue": _queue,
    "aws:lambda/function:Function": _lambda_function,
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": _lambda_invoke_config,
    # The statement id is the resource's name (100 characters of [a-zA-Z0-9-_.] at most).
    "aws:lambda/permission:Permission": lambda r, _: [ApiCall("lambda", "add_permission", _drop_none({
        "FunctionName": r.inputs["function"], "StatementId": r.name[-100:], "Action": r.inputs["action"],
        "Principal": r.inputs["principal"], "SourceArn": r.inputs.get("sourceArn")}))],
    "aws:sns/topic:Topic": lambda r, _: [ApiCall("sns", "create_topic", _drop_none({"Name": r.inputs["name"], "Attributes": _drop_none({"KmsMasterKeyId": r.inputs.get("kmsMasterKeyId")}), "Tags": _tags_list(r.inputs.get("tags"))}), returns={"arn": "TopicArn", "id": "TopicArn"})],
    "aws:sns/topicPolicy:TopicPolicy": lambda r, _: [ApiCall("sns", "set_topic_attributes", {"TopicArn": r.inputs["arn"], "AttributeName": "Policy", "AttributeValue": r.inputs["policy"]})],
    "aws:sns/topicSubscription:TopicSubscription": lambda r, _: [ApiCall("sns", "subscribe", {"TopicArn": r.inputs["topic"], "Protocol": r.inputs["protocol"], "Endpoint": r.inputs["endpoint"]}, returns={"arn": "SubscriptionArn"})],
    "aws:appautoscaling/target:Target": lambda r, _: [ApiCall("application-autoscaling", "register_scalable_target", {
        "ServiceNamespace": r.inputs["serviceNamespace"], "ResourceId": r.inputs["resourceId"], "ScalableDimension": r.inputs["scalableDimension"],
        "MinCapacity": int(r.inputs["minCapacity"]), "MaxCapacity": int(r.inputs["maxCapacity"]),
    })],
    "aws:appautoscaling/policy:Policy": lambda r, _: [ApiCall("application-autoscaling", "put_scaling_policy", {
        "PolicyName": r.inputs["name"], "ServiceNamespace": r.inputs["serviceNamespace"], "ResourceId": r.inputs["resourceId"],
        "ScalableDimension": r.inputs["scalableDimension"], "PolicyType": r.inputs["policyType"],
        "TargetTrackingScalingPolicyConfiguration": _pascal(r.inputs["targetTrackingScalingPolicyConfiguration"]),
    })],
    "aws:s3/bucketObjectv2:BucketObjectv2": lambda r, _: [ApiCall("s3", "put_object", _drop_none({
        "Bucket": r.inputs["bucket"], "Key": r.inputs["key"], "Body": r.inputs.get("content", "").encode(),
        "ContentType": r.inputs.get("contentType"), "ServerSideEncryption": r.inputs.get("serverSideEncryption"),
        "SSEKMSKeyId": r.inputs.get("kmsKeyId"),
        "Tagging": "&".join(f"{k}={v}" for k, v in (r.inputs.get("tags") or {}).items()) or None,
    }))],
    "aws:sagemaker/pipeline:Pipeline": lambda r, _: [ApiCall("sagemaker", "create_pipeline", _drop_none({
        "PipelineName": r.inputs["pipelineName"], "PipelineDisplayName": r.inputs.get("pipelineDisplayName"),
        "PipelineDescription": r.inputs.get("pipelineDescription"), "PipelineDefinition": r.inputs["pipelineDefinition"],
        "RoleArn": r.inputs["roleArn"], "Tags": _tags_list(r.inputs.get("tags")),
        # Required idempotency token; derived from the name so a retried create is the same request.
        "ClientRequestToken": hashlib.sha256(r.inputs["pipelineName"].encode()).hexdigest(),
    }), returns={"arn": "PipelineArn"})],
    "aws:scheduler/schedule:Schedule": lambda r, _: [ApiCall("scheduler", "create_schedule", _drop_none({
        "Name": r.inputs["name"], "Description": r.inputs.get("description"), "ScheduleExpression": r.inputs["scheduleExpression"],
        "FlexibleTimeWindow": _pascal(r.inputs["flexibleTimeWindow"]), "KmsKeyArn": r.inputs.get("kmsKeyArn"),
        "Target": _pascal(r.inputs["target"]),
    }))],
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": _monitoring_schedule,
    "aws:budgets/budget:Budget": _budget,
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": lambda r, _: [ApiCall("sagemaker", "create_mlflow_tracking_server", _drop_none({
        "TrackingServerName": r.inputs["trackingServerName"], "ArtifactStoreUri": r.inputs["artifactStoreUri"], "RoleArn": r.inputs["roleArn"],
        "TrackingServerSize": r.inputs.get("trackingServerSize"), "MlflowVersion": r.inputs.get("mlflowVersion"),
        "AutomaticModelRegistration": r.inputs.get("automaticModelRegistration"),
        "WeeklyMaintenanceWindowStart": r.inputs.get("weeklyMaintenanceWindowStart"), "Tags": _tags_list(r.inputs.get("tags")) or None,
    }), returns={"arn": "TrackingServerArn"})],
    "aws:eks/addon:Addon": lambda r, _: [ApiCall("eks", "create_addon", _drop_none({
        "clusterName": r.inputs["clusterName"], "addonName": r.inputs["addonName"], "addonVersion": r.inputs.get("addonVersion"),
        "configurationValues": r.inputs.get("configurationValues"), "resolveConflicts": r.inputs.get("resolveConflictsOnCreate"),
        "tags": r.inputs.get("tags"),
    }))],
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _eks_node_group,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda r, _: [ApiCall("iam", "create_open_id_connect_provider", _drop_none({
        "Url": r.inputs["url"], "ClientIDList": r.inputs.get("clientIdLists"), "ThumbprintList": r.inputs.get("thumbprintLists"),
        "Tags": _tags_list(r.inputs.get("tags")),
    }), returns={"arn": "OpenIDConnectProviderArn"})],
}

NOT_AWS = ("kubernetes:", "pulumi:providers:")
"""Type prefixes of planned resources that are no AWS API call: Kubernetes objects (the API server
validates them; tests check them against Kubernetes' schemas) and provider instances."""


LOCAL_LIMITATIONS: dict[str, str] = {
    "aws:s3/bucketPolicy:BucketPolicy": (
        "moto evaluates bucket-policy conditions without request context, so the TLS-only Deny "
        "(aws:SecureTransport) would deny every request; the policy is checked by the policy pack instead"
    ),
    "aws:eks/addon:Addon": (
        "moto does not implement CreateAddon; locally no Kubernetes cluster runs the add-on (the NetworkPolicies "
        "are checked against Kubernetes' schemas and by checkov instead)"
    ),
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": (
        "moto does not implement CreateMonitoringSchedule; locally the jobs run directly as processes: the drift "
        "job (mlops-monitor drift) with no AWS endpoint it could reach and Model Monitor's metric files, which are "
        "then published into the local CloudWatch's /aws/sagemaker/Endpoint/data-metrics as SageMaker would "
        "(mlops.local.monitor_metrics); the quality job (mlops-monitor quality) reads the local S3 and calls "
        "PutMetricData itself"
    ),
}
"""Resource types the local emulator cannot hold faithfully, and why (shown by `mlops local up`)."""


def api_calls(resource: PlannedResource, region: str) -> list[ApiCall]:
    """The API calls that create `resource`; [] for component resources. KeyError if unknown."""
    if not resource.custom or resource.type.startswith(NOT_AWS):
        return []
    return CONVERTERS[resource.type](resource, region)


@dataclass
class Realized:
    """What `realize` did."""

    created: list[tuple[str, str]] = field(default_factory=list)
    """(resource name, operation) in order."""
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    """(resource name, operation, why): calls the emulator does not implement."""


def _dig(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def _substitute(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in mapping:
            return mapping[value]
        # ARNs embedded in policy documents and URIs. One pass, longest stand-in first: a topic's
        # id (its name) maps to its ARN, which contains the name, so replacing stand-ins one after
        # another rewrote the ARN a second time (arn:...:arn:...:alerts).
        embedded = sorted((mock for mock in mapping if len(mock) > 12), key=len, reverse=True)
        if embedded:
            value = re.sub("|".join(map(re.escape, embedded)), lambda m: mapping[m.group(0)], value)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    return value


def realize(resources: list[PlannedResource], *, region: str, client: Callable[[str], Any], local: bool = True) -> Realized:
    """Make every call for `resources`, in plan order. `client(service)` returns a boto3 client.
    `local`: skip what the local emulator cannot hold faithfully (LOCAL_LIMITATIONS), saying why."""
    done = Realized()
    mapping: dict[str, str] = {}
    for resource in resources:
        if local and resource.type in LOCAL_LIMITATIONS:
            done.skipped.append((resource.name, resource.type, LOCAL_LIMITATIONS[resource.type]))
            continue
        for call in api_calls(resource, region):
            params = _substitute(call.params, mapping)
            api = client(call.service)
            method = getattr(api, call.operation)
            try:
                response = method(**params)
            except NotImplementedError as exc:
                done.skipped.append((resource.name, call.operation, str(exc) or "not implemented by the emulator"))
                continue
            except Exception as exc:  # botocore ClientError for 'not yet implemented' answers
                if "not yet implemented" in str(exc) or "NotImplemented" in type(exc).__name__ or "NotImplemented" in str(exc):
                    done.skipped.append((resource.name, call.operation, "not implemented by the emulator"))
                    continue
                raise
            done.created.append((resource.name, call.operation))
            for output, path in call.returns.items():
                mock_value = resource.outputs.get(output) if output != "id" else resource.id
                if isinstance(mock_value, str) and mock_value:
                    mapping[mock_value] = str(_dig(response, path))
    return done
