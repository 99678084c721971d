"""What `mlops local` sends for each kind of planned resource, and what realizing a plan leaves in moto.

Part one builds one planned resource per kind (pulumi-aws inputs, camelCase, numbers as the floats
Pulumi's wire format carries) and asserts the exact API calls `realize.api_calls` makes for it, each
valid by botocore's service model. Part two realizes the demo-local plan on moto's server and reads
every created resource back.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops.local.realize import CONVERTERS, LOCAL_LIMITATIONS, ApiCall, Realized, api_calls, deployment_package, realize
from mlops.plan import PlannedResource
from specs.config import stack_files

REGION = "eu-west-1"
TAGS = {"Owner": "team@example.com", "mlops:team": "t"}
TAG_LIST = [{"Key": "Owner", "Value": "team@example.com"}, {"Key": "mlops:team", "Value": "t"}]
KEY_ARN = "arn:aws:kms:eu-west-1:111111111111:key/t-dev-key"
ROLE_ARN = "arn:aws:iam::111111111111:role/t-dev-sagemaker-execution"
TOPIC_ARN = "arn:aws:sns:eu-west-1:111111111111:t-dev-alerts"
POLICY = '{"Version": "2012-10-17", "Statement": []}'
ECR_LIFECYCLE = ('{"rules": [{"rulePriority": 1, "description": "Drop untagged layers after 7 days", "selection": {"tagStatus": "untagged", '
                 '"countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}, "action": {"type": "expire"}}]}')
STARTER_CODE = {"archive": {"retrain_starter.py": {
    "file": "functions/retrain_starter.py",
    "sha256": hashlib.sha256((stack_files.ROOT / "functions" / "retrain_starter.py").read_bytes()).hexdigest(),
}}}


def planned(type_: str, inputs: dict[str, Any], *, name: str = "t-dev-thing", id_: str = "",
            outputs: dict[str, Any] | None = None) -> PlannedResource:
    """A custom planned resource as `mlops.plan` records it."""
    return PlannedResource(urn=f"urn:pulumi:t-dev::mlops::{type_}::{name}", type=type_, name=name, parent=None,
                           custom=True, inputs=inputs, id=id_ or name, outputs={**inputs, **(outputs or {})})


def _variant(name: str, model: str, weight: float) -> dict[str, Any]:
    return {"variantName": name, "modelName": model, "instanceType": "ml.m5.large", "initialInstanceCount": 1.0, "initialVariantWeight": weight}


def _api_variant(name: str, model: str, weight: float) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": weight}


BUCKET = "t-dev-data-111111111111"
ENCRYPTION_CONFIG = planned("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", {
    "bucket": BUCKET,
    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}, "bucketKeyEnabled": True}],
})
AB_ENDPOINT_CONFIG = planned("aws:sagemaker/endpointConfiguration:EndpointConfiguration", {
    "name": "t-dev-scoring-1a2b3c4d",
    "productionVariants": [_variant("champion", "t-dev-scoring-champion", 80.0), _variant("challenger", "t-dev-scoring-challenger", 20.0)],
    "dataCaptureConfig": {
        "enableCapture": True, "initialSamplingPercentage": 100.0, "destinationS3Uri": "s3://t-dev-capture-111111111111/datacapture",
        "kmsKeyId": KEY_ARN, "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {"csvContentTypes": ["text/csv"], "jsonContentTypes": ["application/json"]},
    },
    "kmsKeyArn": KEY_ARN,
    "tags": TAGS,
})
SHADOW_ENDPOINT_CONFIG = planned("aws:sagemaker/endpointConfiguration:EndpointConfiguration", {
    "name": "t-dev-scoring-5e6f7a8b",
    "productionVariants": [_variant("champion", "t-dev-scoring-champion", 1.0)],
    "shadowProductionVariants": [_variant("candidate", "t-dev-scoring-candidate", 0.5)],
})
P99_ALARM = planned("aws:cloudwatch/metricAlarm:MetricAlarm", {
    "name": "t-dev-scoring-champion-p99-latency", "alarmDescription": "p99 ModelLatency above 200 ms",
    "comparisonOperator": "GreaterThanThreshold", "threshold": 200000.0, "evaluationPeriods": 5.0, "datapointsToAlarm": 3.0,
    "treatMissingData": "notBreaching", "alarmActions": [TOPIC_ARN], "okActions": [TOPIC_ARN],
    "namespace": "AWS/SageMaker", "metricName": "ModelLatency", "extendedStatistic": "p99", "period": 60.0,
    "dimensions": {"EndpointName": "t-dev-scoring", "VariantName": "champion"}, "tags": TAGS,
})
MATH_ALARM = planned("aws:cloudwatch/metricAlarm:MetricAlarm", {
    "name": "t-dev-scoring-champion-4xx-rate", "comparisonOperator": "GreaterThanThreshold", "threshold": 5.0,
    "evaluationPeriods": 1.0, "datapointsToAlarm": 1.0, "treatMissingData": "notBreaching",
    "metricQueries": [
        {"id": "errors", "returnData": False, "metric": {"namespace": "AWS/SageMaker", "metricName": "Invocation4XXErrors",
                                                         "dimensions": {"EndpointName": "t-dev-scoring"}, "period": 300.0, "stat": "Sum"}},
        {"id": "rate", "returnData": True, "expression": "IF(errors > 0, 100, 0)", "label": "4XX %"},
    ],
})

# planned resource -> the exact calls; one entry (at least) per converter, checked below.
CASES: dict[str, tuple[PlannedResource, list[ApiCall]]] = {
    "bucket": (planned("aws:s3/bucket:Bucket", {"bucket": BUCKET, "forceDestroy": True, "tags": TAGS}), [
        ApiCall("s3", "create_bucket", {"Bucket": BUCKET, "CreateBucketConfiguration": {"LocationConstraint": REGION}}),
        ApiCall("s3", "put_bucket_tagging", {"Bucket": BUCKET, "Tagging": {"TagSet": TAG_LIST}}),
    ]),
    "bucket encryption": (ENCRYPTION_CONFIG, [ApiCall("s3", "put_bucket_encryption", {"Bucket": BUCKET, "ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}, "BucketKeyEnabled": True},
    ]}})]),
    "bucket versioning": (planned("aws:s3/bucketVersioning:BucketVersioning", {"bucket": BUCKET, "versioningConfiguration": {"status": "Enabled"}}), [
        ApiCall("s3", "put_bucket_versioning", {"Bucket": BUCKET, "VersioningConfiguration": {"Status": "Enabled"}}),
    ]),
    "public access block": (planned("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", {
        "bucket": BUCKET, "blockPublicAcls": True, "ignorePublicAcls": True, "blockPublicPolicy": True, "restrictPublicBuckets": False,
    }), [ApiCall("s3", "put_public_access_block", {"Bucket": BUCKET, "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": False,
    }})]),
    "ownership controls": (planned("aws:s3/bucketOwnershipControls:BucketOwnershipControls", {"bucket": BUCKET, "rule": {"objectOwnership": "BucketOwnerEnforced"}}), [
        ApiCall("s3", "put_bucket_ownership_controls", {"Bucket": BUCKET, "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}),
    ]),
    "bucket policy": (planned("aws:s3/bucketPolicy:BucketPolicy", {"bucket": BUCKET, "policy": POLICY}), [
        ApiCall("s3", "put_bucket_policy", {"Bucket": BUCKET, "Policy": POLICY}),
    ]),
    "bucket lifecycle": (planned("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", {"bucket": BUCKET, "rules": [
        {"id": "expire-noncurrent", "status": "Enabled", "filter": {}, "noncurrentVersionExpiration": {"noncurrentDays": 90.0},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0}},
        {"id": "captures", "status": "Disabled", "filter": {"prefix": "datacapture/"}},
    ]}), [ApiCall("s3", "put_bucket_lifecycle_configuration", {"Bucket": BUCKET, "LifecycleConfiguration": {"Rules": [
        {"ID": "expire-noncurrent", "Status": "Enabled", "Filter": {"Prefix": ""}, "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "captures", "Status": "Disabled", "Filter": {"Prefix": "datacapture/"}},
    ]}})]),
    "bucket object": (planned("aws:s3/bucketObjectv2:BucketObjectv2", {
        "bucket": BUCKET, "key": "config/schema.json", "content": '{"a": 1}', "contentType": "application/json",
        "serverSideEncryption": "aws:kms", "kmsKeyId": KEY_ARN, "tags": TAGS,
    }), [ApiCall("s3", "put_object", {
        "Bucket": BUCKET, "Key": "config/schema.json", "Body": b'{"a": 1}', "ContentType": "application/json",
        "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY_ARN, "Tagging": "Owner=team@example.com&mlops:team=t",
    })]),
    "kms key": (planned("aws:kms/key:Key", {"description": "t-dev data", "policy": POLICY, "enableKeyRotation": True,
                                            "deletionWindowInDays": 30.0, "tags": TAGS},
                        id_="t-dev-key", outputs={"keyId": "mock-key-t-dev-key", "arn": KEY_ARN}), [
        ApiCall("kms", "create_key", {"Description": "t-dev data", "Policy": POLICY, "Tags": [
            {"TagKey": "Owner", "TagValue": "team@example.com"}, {"TagKey": "mlops:team", "TagValue": "t"}]},
            returns={"keyId": "KeyMetadata.KeyId", "arn": "KeyMetadata.Arn", "id": "KeyMetadata.KeyId"}),
        ApiCall("kms", "enable_key_rotation", {"KeyId": "mock-key-t-dev-key"}),
    ]),
    "kms alias": (planned("aws:kms/alias:Alias", {"name": "alias/t-dev-mlops", "targetKeyId": "mock-key-t-dev-key"}), [
        ApiCall("kms", "create_alias", {"AliasName": "alias/t-dev-mlops", "TargetKeyId": "mock-key-t-dev-key"}),
    ]),
    "ecr repository": (planned("aws:ecr/repository:Repository", {
        "name": "t/dev/serving", "imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}], "tags": TAGS,
    }), [ApiCall("ecr", "create_repository", {
        "repositoryName": "t/dev/serving", "imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": KEY_ARN}, "tags": TAG_LIST,
    }, returns={"arn": "repository.repositoryArn", "repositoryUrl": "repository.repositoryUri"})]),
    "ecr lifecycle policy": (planned("aws:ecr/lifecyclePolicy:LifecyclePolicy", {"repository": "t/dev/serving", "policy": ECR_LIFECYCLE}), [
        ApiCall("ecr", "put_lifecycle_policy", {"repositoryName": "t/dev/serving", "lifecyclePolicyText": ECR_LIFECYCLE}),
    ]),
    "iam role": (planned("aws:iam/role:Role", {
        "name": "t-dev-sagemaker-execution", "assumeRolePolicy": POLICY, "description": "SageMaker", "maxSessionDuration": 43200.0,
        "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"], "tags": TAGS,
    }), [
        ApiCall("iam", "create_role", {"RoleName": "t-dev-sagemaker-execution", "AssumeRolePolicyDocument": POLICY, "Description": "SageMaker",
                                       "MaxSessionDuration": 43200, "Tags": TAG_LIST}, returns={"arn": "Role.Arn"}),
        ApiCall("iam", "attach_role_policy", {"RoleName": "t-dev-sagemaker-execution", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
    ]),
    "iam role policy": (planned("aws:iam/rolePolicy:RolePolicy", {"role": "t-dev-sagemaker-execution", "policy": POLICY}, name="t-dev-execution-policy"), [
        ApiCall("iam", "put_role_policy", {"RoleName": "t-dev-sagemaker-execution", "PolicyName": "t-dev-execution-policy", "PolicyDocument": POLICY}),
    ]),
    "oidc provider": (planned("aws:iam/openIdConnectProvider:OpenIdConnectProvider", {
        "url": "https://oidc.eks.eu-west-1.amazonaws.com/id/T-DEV", "clientIdLists": ["sts.amazonaws.com"],
        "thumbprintLists": ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"], "tags": TAGS,
    }), [ApiCall("iam", "create_open_id_connect_provider", {
        "Url": "https://oidc.eks.eu-west-1.amazonaws.com/id/T-DEV", "ClientIDList": ["sts.amazonaws.com"],
        "ThumbprintList": ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"], "Tags": TAG_LIST,
    }, returns={"arn": "OpenIDConnectProviderArn"})]),
    "eks cluster": (planned("aws:eks/cluster:Cluster", {
        "name": "t-dev-training", "version": "1.33", "roleArn": "arn:aws:iam::111111111111:role/t-dev-eks-cluster",
        "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"], "endpointPublicAccess": False, "endpointPrivateAccess": True},
        "enabledClusterLogTypes": ["api", "audit"], "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}, "tags": TAGS,
    }), [ApiCall("eks", "create_cluster", {
        "name": "t-dev-training", "version": "1.33", "roleArn": "arn:aws:iam::111111111111:role/t-dev-eks-cluster",
        "resourcesVpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "securityGroupIds": ["sg-1"], "endpointPublicAccess": False, "endpointPrivateAccess": True},
        "logging": {"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]},
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}}],
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}, "tags": TAGS,
    }, returns={"arn": "cluster.arn"})]),
    "eks node group": (planned("aws:eks/nodeGroup:NodeGroup", {
        "clusterName": "t-dev-training", "nodeGroupName": "t-dev-gpu", "scalingConfig": {"minSize": 0.0, "maxSize": 4.0, "desiredSize": 1.0},
        "diskSize": 100.0, "subnetIds": ["subnet-1"], "instanceTypes": ["g5.xlarge"], "amiType": "AL2023_x86_64_NVIDIA",
        "nodeRoleArn": "arn:aws:iam::111111111111:role/t-dev-eks-nodes", "labels": {"mlops.dev/pool": "gpu"},
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}], "capacityType": "SPOT",
        "updateConfig": {"maxUnavailable": 1.0}, "tags": TAGS,
    }), [ApiCall("eks", "create_nodegroup", {
        "clusterName": "t-dev-training", "nodegroupName": "t-dev-gpu", "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 1},
        "diskSize": 100, "subnets": ["subnet-1"], "instanceTypes": ["g5.xlarge"], "amiType": "AL2023_x86_64_NVIDIA",
        "nodeRole": "arn:aws:iam::111111111111:role/t-dev-eks-nodes", "labels": {"mlops.dev/pool": "gpu"},
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}], "capacityType": "SPOT",
        "updateConfig": {"maxUnavailable": 1}, "tags": TAGS,
    }, returns={"arn": "nodegroup.nodegroupArn"})]),
    "metric alarm (p99)": (P99_ALARM, [ApiCall("cloudwatch", "put_metric_alarm", {
        "AlarmName": "t-dev-scoring-champion-p99-latency", "AlarmDescription": "p99 ModelLatency above 200 ms",
        "ComparisonOperator": "GreaterThanThreshold", "Threshold": 200000.0, "EvaluationPeriods": 5, "DatapointsToAlarm": 3,
        "TreatMissingData": "notBreaching", "AlarmActions": [TOPIC_ARN], "OKActions": [TOPIC_ARN],
        "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "ExtendedStatistic": "p99", "Period": 60,
        "Dimensions": [{"Name": "EndpointName", "Value": "t-dev-scoring"}, {"Name": "VariantName", "Value": "champion"}], "Tags": TAG_LIST,
    })]),
    "metric alarm (metric math)": (MATH_ALARM, [ApiCall("cloudwatch", "put_metric_alarm", {
        "AlarmName": "t-dev-scoring-champion-4xx-rate", "ComparisonOperator": "GreaterThanThreshold", "Threshold": 5.0,
        "EvaluationPeriods": 1, "DatapointsToAlarm": 1, "TreatMissingData": "notBreaching",
        "Metrics": [
            {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocation4XXErrors",
                                                                          "Dimensions": [{"Name": "EndpointName", "Value": "t-dev-scoring"}]},
                                                               "Period": 300, "Stat": "Sum"}},
            {"Id": "rate", "ReturnData": True, "Expression": "IF(errors > 0, 100, 0)", "Label": "4XX %"},
        ],
    })]),
    "dashboard": (planned("aws:cloudwatch/dashboard:Dashboard", {"dashboardName": "t-dev-mlops", "dashboardBody": '{"widgets": []}'}), [
        ApiCall("cloudwatch", "put_dashboard", {"DashboardName": "t-dev-mlops", "DashboardBody": '{"widgets": []}'}),
    ]),
    "event rule": (planned("aws:cloudwatch/eventRule:EventRule", {
        "name": "t-dev-retrain-on-alarm", "description": "drift alarms", "eventPattern": '{"source": ["aws.cloudwatch"]}', "tags": TAGS,
    }), [ApiCall("events", "put_rule", {"Name": "t-dev-retrain-on-alarm", "Description": "drift alarms",
                                        "EventPattern": '{"source": ["aws.cloudwatch"]}', "Tags": TAG_LIST}, returns={"arn": "RuleArn"})]),
    "event target": (planned("aws:cloudwatch/eventTarget:EventTarget", {"rule": "t-dev-retrain-on-alarm", "arn": TOPIC_ARN},
                             name="t-dev-" + "x" * 70 + "-start"), [
        ApiCall("events", "put_targets", {"Rule": "t-dev-retrain-on-alarm", "Targets": [{"Id": "x" * 58 + "-start", "Arn": TOPIC_ARN}]}),
    ]),
    "sns topic": (planned("aws:sns/topic:Topic", {"name": "t-dev-alerts", "kmsMasterKeyId": KEY_ARN, "tags": TAGS}, id_="t-dev-alerts"), [
        ApiCall("sns", "create_topic", {"Name": "t-dev-alerts", "Attributes": {"KmsMasterKeyId": KEY_ARN}, "Tags": TAG_LIST},
                returns={"arn": "TopicArn", "id": "TopicArn"}),
    ]),
    "sns topic policy": (planned("aws:sns/topicPolicy:TopicPolicy", {"arn": TOPIC_ARN, "policy": POLICY}), [
        ApiCall("sns", "set_topic_attributes", {"TopicArn": TOPIC_ARN, "AttributeName": "Policy", "AttributeValue": POLICY}),
    ]),
    "sns subscription": (planned("aws:sns/topicSubscription:TopicSubscription", {"topic": TOPIC_ARN, "protocol": "email", "endpoint": "team@example.com"}), [
        ApiCall("sns", "subscribe", {"TopicArn": TOPIC_ARN, "Protocol": "email", "Endpoint": "team@example.com"}, returns={"arn": "SubscriptionArn"}),
    ]),
    "model package group": (planned("aws:sagemaker/modelPackageGroup:ModelPackageGroup", {
        "modelPackageGroupName": "t-dev-fraud-detector", "modelPackageGroupDescription": "fraud-detector", "tags": TAGS,
    }), [ApiCall("sagemaker", "create_model_package_group", {
        "ModelPackageGroupName": "t-dev-fraud-detector", "ModelPackageGroupDescription": "fraud-detector", "Tags": TAG_LIST,
    }, returns={"arn": "ModelPackageGroupArn"})]),
    "model package group policy": (planned("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy", {
        "modelPackageGroupName": "t-dev-fraud-detector", "resourcePolicy": POLICY,
    }), [ApiCall("sagemaker", "put_model_package_group_policy", {"ModelPackageGroupName": "t-dev-fraud-detector", "ResourcePolicy": POLICY})]),
    "feature group": (planned("aws:sagemaker/featureGroup:FeatureGroup", {
        "featureGroupName": "t-dev-transactions", "recordIdentifierFeatureName": "transaction_id", "eventTimeFeatureName": "event_time",
        "featureDefinitions": [{"featureName": "transaction_id", "featureType": "String"}, {"featureName": "event_time", "featureType": "String"},
                               {"featureName": "amount", "featureType": "Fractional"}],
        "roleArn": ROLE_ARN, "description": "transactions",
        "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY_ARN}},
        "offlineStoreConfig": {"disableGlueTableCreation": False, "s3StorageConfig": {"s3Uri": "s3://t-dev-features-111111111111/offline", "kmsKeyId": KEY_ARN}},
        "tags": TAGS,
    }), [ApiCall("sagemaker", "create_feature_group", {
        "FeatureGroupName": "t-dev-transactions", "RecordIdentifierFeatureName": "transaction_id", "EventTimeFeatureName": "event_time",
        "FeatureDefinitions": [{"FeatureName": "transaction_id", "FeatureType": "String"}, {"FeatureName": "event_time", "FeatureType": "String"},
                               {"FeatureName": "amount", "FeatureType": "Fractional"}],
        "RoleArn": ROLE_ARN, "Description": "transactions", "Tags": TAG_LIST,
        "OnlineStoreConfig": {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": KEY_ARN}},
        "OfflineStoreConfig": {"DisableGlueTableCreation": False, "S3StorageConfig": {"S3Uri": "s3://t-dev-features-111111111111/offline", "KmsKeyId": KEY_ARN}},
    }, returns={"arn": "FeatureGroupArn"})]),
    "model": (planned("aws:sagemaker/model:Model", {
        "name": "t-dev-scoring-champion", "executionRoleArn": ROLE_ARN, "enableNetworkIsolation": True,
        "primaryContainer": {"image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
                             "modelDataUrl": "s3://t-dev-artifacts-111111111111/models/m/1/model.tar.gz", "environment": {"MLOPS_VARIANT": "champion"}},
        "vpcConfig": {"securityGroupIds": ["sg-1"], "subnets": ["subnet-1"]}, "tags": TAGS,
    }), [ApiCall("sagemaker", "create_model", {
        "ModelName": "t-dev-scoring-champion",
        "PrimaryContainer": {"Image": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
                             "ModelDataUrl": "s3://t-dev-artifacts-111111111111/models/m/1/model.tar.gz", "Environment": {"MLOPS_VARIANT": "champion"}},
        "ExecutionRoleArn": ROLE_ARN, "EnableNetworkIsolation": True, "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}, "Tags": TAG_LIST,
    }, returns={"arn": "ModelArn"})]),
    "endpoint config (A/B)": (AB_ENDPOINT_CONFIG, [ApiCall("sagemaker", "create_endpoint_config", {
        "EndpointConfigName": "t-dev-scoring-1a2b3c4d",
        "ProductionVariants": [_api_variant("champion", "t-dev-scoring-champion", 80.0), _api_variant("challenger", "t-dev-scoring-challenger", 20.0)],
        "DataCaptureConfig": {
            "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://t-dev-capture-111111111111/datacapture",
            "KmsKeyId": KEY_ARN, "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
        },
        "KmsKeyId": KEY_ARN, "Tags": TAG_LIST,
    }, returns={"arn": "EndpointConfigArn"})]),
    "endpoint config (shadow)": (SHADOW_ENDPOINT_CONFIG, [ApiCall("sagemaker", "create_endpoint_config", {
        "EndpointConfigName": "t-dev-scoring-5e6f7a8b",
        "ProductionVariants": [_api_variant("champion", "t-dev-scoring-champion", 1.0)],
        "ShadowProductionVariants": [_api_variant("candidate", "t-dev-scoring-candidate", 0.5)],
    }, returns={"arn": "EndpointConfigArn"})]),
    "endpoint": (planned("aws:sagemaker/endpoint:Endpoint", {"name": "t-dev-scoring", "endpointConfigName": "t-dev-scoring-1a2b3c4d", "tags": TAGS, "deploymentConfig": {
        "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "CANARY", "waitIntervalInSeconds": 60.0, "canarySize": {"type": "CAPACITY_PERCENT", "value": 50.0}},
                                  "maximumExecutionTimeoutInSeconds": 7200.0, "terminationWaitInSeconds": 300.0},
        "autoRollbackConfiguration": {"alarms": [{"alarmName": "t-dev-scoring-champion-p99-latency"}]},
    }}), [ApiCall("sagemaker", "create_endpoint", {"EndpointName": "t-dev-scoring", "EndpointConfigName": "t-dev-scoring-1a2b3c4d", "Tags": TAG_LIST, "DeploymentConfig": {
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 60, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
                                  "MaximumExecutionTimeoutInSeconds": 7200, "TerminationWaitInSeconds": 300},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "t-dev-scoring-champion-p99-latency"}]},
    }}, returns={"arn": "EndpointArn"})]),
    "monitoring schedule": (planned("aws:sagemaker/monitoringSchedule:MonitoringSchedule", {"name": "t-dev-scoring-drift", "tags": TAGS, "monitoringScheduleConfig": {
        "scheduleConfig": {"scheduleExpression": "cron(0 * ? * * *)"},
        "monitoringType": "DataQuality",
        "monitoringJobDefinition": {
            "roleArn": ROLE_ARN,
            "monitoringInputs": {"endpointInput": {"endpointName": "t-dev-scoring", "localPath": "/opt/ml/processing/input/endpoint"}},
            "monitoringOutputConfig": {"kmsKeyId": KEY_ARN, "monitoringOutputs": {"s3Output": {
                "s3Uri": "s3://t-dev-capture-111111111111/monitoring", "localPath": "/opt/ml/processing/resultdata", "s3UploadMode": "EndOfJob"}}},
            "monitoringResources": {"clusterConfig": {"instanceCount": 1.0, "instanceType": "ml.m5.large", "volumeSizeInGb": 20.0, "volumeKmsKeyId": KEY_ARN}},
            "monitoringAppSpecification": {"imageUri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
                                           "containerEntrypoints": ["mlops-monitor"], "containerArguments": ["drift"]},
            "baseline": {"statisticsResource": {"s3Uri": "s3://t-dev-artifacts-111111111111/baseline.json"}},
            "stoppingConditions": [{"maxRuntimeInSeconds": 3600.0}],
            "environment": {"MLOPS_MONITOR_PSI_THRESHOLD": "0.2"},
            "networkConfig": {"enableNetworkIsolation": False, "enableInterContainerTrafficEncryption": True,
                              "vpcConfig": {"securityGroupIds": ["sg-1"], "subnets": ["subnet-1"]}},
        },
    }}), [ApiCall("sagemaker", "create_monitoring_schedule", {"MonitoringScheduleName": "t-dev-scoring-drift", "Tags": TAG_LIST, "MonitoringScheduleConfig": {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
        "MonitoringType": "DataQuality",
        "MonitoringJobDefinition": {
            "RoleArn": ROLE_ARN,
            "MonitoringInputs": [{"EndpointInput": {"EndpointName": "t-dev-scoring", "LocalPath": "/opt/ml/processing/input/endpoint"}}],
            "MonitoringOutputConfig": {"KmsKeyId": KEY_ARN, "MonitoringOutputs": [{"S3Output": {
                "S3Uri": "s3://t-dev-capture-111111111111/monitoring", "LocalPath": "/opt/ml/processing/resultdata", "S3UploadMode": "EndOfJob"}}]},
            "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20, "VolumeKmsKeyId": KEY_ARN}},
            "MonitoringAppSpecification": {"ImageUri": "111111111111.dkr.ecr.eu-west-1.amazonaws.com/t/dev/serving:0.1.0",
                                           "ContainerEntrypoint": ["mlops-monitor"], "ContainerArguments": ["drift"]},
            "BaselineConfig": {"StatisticsResource": {"S3Uri": "s3://t-dev-artifacts-111111111111/baseline.json"}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "Environment": {"MLOPS_MONITOR_PSI_THRESHOLD": "0.2"},
            "NetworkConfig": {"EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True,
                              "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}},
        },
    }}, returns={"arn": "MonitoringScheduleArn"})]),
    "scalable target": (planned("aws:appautoscaling/target:Target", {
        "serviceNamespace": "sagemaker", "resourceId": "endpoint/t-dev-scoring/variant/champion",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount", "minCapacity": 2.0, "maxCapacity": 8.0,
    }), [ApiCall("application-autoscaling", "register_scalable_target", {
        "ServiceNamespace": "sagemaker", "ResourceId": "endpoint/t-dev-scoring/variant/champion",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 2, "MaxCapacity": 8,
    })]),
    "scaling policy": (planned("aws:appautoscaling/policy:Policy", {
        "name": "t-dev-scoring-champion-invocations", "serviceNamespace": "sagemaker", "resourceId": "endpoint/t-dev-scoring/variant/champion",
        "scalableDimension": "sagemaker:variant:DesiredInstanceCount", "policyType": "TargetTrackingScaling",
        "targetTrackingScalingPolicyConfiguration": {"targetValue": 2000.0, "scaleInCooldown": 300.0, "scaleOutCooldown": 60.0,
                                                     "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    }), [ApiCall("application-autoscaling", "put_scaling_policy", {
        "PolicyName": "t-dev-scoring-champion-invocations", "ServiceNamespace": "sagemaker", "ResourceId": "endpoint/t-dev-scoring/variant/champion",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 2000, "ScaleInCooldown": 300, "ScaleOutCooldown": 60,
                                                     "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    })]),
    "eks add-on": (planned("aws:eks/addon:Addon", {
        "clusterName": "t-dev-training", "addonName": "vpc-cni", "configurationValues": '{"enableNetworkPolicy": "true"}',
        "resolveConflictsOnCreate": "OVERWRITE", "resolveConflictsOnUpdate": "OVERWRITE", "tags": TAGS,
    }), [ApiCall("eks", "create_addon", {
        "clusterName": "t-dev-training", "addonName": "vpc-cni", "configurationValues": '{"enableNetworkPolicy": "true"}',
        "resolveConflicts": "OVERWRITE", "tags": TAGS,
    })]),
    "budget": (planned("aws:budgets/budget:Budget", {
        "name": "t-dev-monthly", "accountId": "123456789012", "budgetType": "COST", "timeUnit": "MONTHLY", "limitAmount": "500.00",
        "limitUnit": "USD", "costFilters": [{"name": "Region", "values": [REGION]}, {"name": "TagKeyValue", "values": ["user:mlops:team$t"]}],
        "notifications": [{"comparisonOperator": "GREATER_THAN", "notificationType": "ACTUAL", "threshold": 80.0, "thresholdType": "PERCENTAGE",
                           "subscriberEmailAddresses": ["team@example.com"]}], "tags": TAGS,
    }), [ApiCall("budgets", "create_budget", {
        "AccountId": "123456789012",
        "Budget": {"BudgetName": "t-dev-monthly", "BudgetLimit": {"Amount": "500.00", "Unit": "USD"}, "TimeUnit": "MONTHLY", "BudgetType": "COST",
                   "CostFilters": {"Region": [REGION], "TagKeyValue": ["user:mlops:team$t"]}},
        "NotificationsWithSubscribers": [{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0,
                                                           "ThresholdType": "PERCENTAGE"},
                                          "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "team@example.com"}]}],
    })]),
    "mlflow tracking server": (planned("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer", {
        "trackingServerName": "t-dev-mlflow", "artifactStoreUri": "s3://t-dev-artifacts-111111111111/mlflow", "roleArn": ROLE_ARN,
        "trackingServerSize": "Small", "mlflowVersion": "3.0", "automaticModelRegistration": True,
        "weeklyMaintenanceWindowStart": "Sun:03:00", "tags": TAGS,
    }), [ApiCall("sagemaker", "create_mlflow_tracking_server", {
        "TrackingServerName": "t-dev-mlflow", "ArtifactStoreUri": "s3://t-dev-artifacts-111111111111/mlflow", "RoleArn": ROLE_ARN,
        "TrackingServerSize": "Small", "MlflowVersion": "3.0", "AutomaticModelRegistration": True,
        "WeeklyMaintenanceWindowStart": "Sun:03:00", "Tags": TAG_LIST,
    }, returns={"arn": "TrackingServerArn"})]),
    "pipeline": (planned("aws:sagemaker/pipeline:Pipeline", {
        "pipelineName": "t-dev-fraud-detector-train", "pipelineDisplayName": "t-dev-fraud-detector-train", "pipelineDescription": "retrain",
        "pipelineDefinition": '{"Version": "2020-12-01", "Steps": []}', "roleArn": ROLE_ARN, "tags": TAGS,
    }), [ApiCall("sagemaker", "create_pipeline", {
        "PipelineName": "t-dev-fraud-detector-train", "PipelineDisplayName": "t-dev-fraud-detector-train", "PipelineDescription": "retrain",
        "PipelineDefinition": '{"Version": "2020-12-01", "Steps": []}', "RoleArn": ROLE_ARN, "Tags": TAG_LIST,
        # sha256("t-dev-fraud-detector-train"): the token is the name's, so a retried create is the same request
        "ClientRequestToken": "63808ec7a467b558a0d7ac75b4ee9d9e25c71e5733506b337a7245c697dffa6a",
    }, returns={"arn": "PipelineArn"})]),
    "schedule": (planned("aws:scheduler/schedule:Schedule", {
        "name": "t-dev-nightly-train", "description": "nightly", "scheduleExpression": "cron(0 2 * * ? *)",
        "flexibleTimeWindow": {"mode": "OFF"}, "kmsKeyArn": KEY_ARN,
        "target": {"arn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-detector-train", "roleArn": ROLE_ARN,
                   "sagemakerPipelineParameters": {"pipelineParameters": [{"name": "Trigger", "value": "schedule"}]}},
    }), [ApiCall("scheduler", "create_schedule", {
        "Name": "t-dev-nightly-train", "Description": "nightly", "ScheduleExpression": "cron(0 2 * * ? *)",
        "FlexibleTimeWindow": {"Mode": "OFF"}, "KmsKeyArn": KEY_ARN,
        "Target": {"Arn": "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/t-dev-fraud-detector-train", "RoleArn": ROLE_ARN,
                   "SageMakerPipelineParameters": {"PipelineParameterList": [{"Name": "Trigger", "Value": "schedule"}]}},
    })]),
    "log group": (planned("aws:cloudwatch/logGroup:LogGroup", {
        "name": "/aws/lambda/t-dev-fraud-retrain-starter", "retentionInDays": 90.0, "kmsKeyId": KEY_ARN, "tags": TAGS,
    }), [ApiCall("logs", "create_log_group", {"logGroupName": "/aws/lambda/t-dev-fraud-retrain-starter", "kmsKeyId": KEY_ARN, "tags": TAGS}),
         ApiCall("logs", "put_retention_policy", {"logGroupName": "/aws/lambda/t-dev-fraud-retrain-starter", "retentionInDays": 90})]),
    "queue": (planned("aws:sqs/queue:Queue", {
        "name": "t-dev-fraud-retrain-failed", "kmsMasterKeyId": KEY_ARN, "messageRetentionSeconds": 1209600.0, "tags": TAGS,
    }), [ApiCall("sqs", "create_queue", {"QueueName": "t-dev-fraud-retrain-failed",
                                          "Attributes": {"KmsMasterKeyId": KEY_ARN, "MessageRetentionPeriod": "1209600"}, "tags": TAGS})]),
    "lambda function": (planned("aws:lambda/function:Function", {
        "name": "t-dev-fraud-retrain-starter", "runtime": "python3.12", "role": ROLE_ARN, "handler": "retrain_starter.handler",
        "code": STARTER_CODE, "timeout": 30.0, "memorySize": 128.0, "reservedConcurrentExecutions": 1.0,
        "environment": {"variables": {"PIPELINE_NAME": "t-dev-fraud-train"}}, "kmsKeyArn": KEY_ARN, "tags": TAGS,
    }), [ApiCall("lambda", "create_function", {
        "FunctionName": "t-dev-fraud-retrain-starter", "Runtime": "python3.12", "Role": ROLE_ARN, "Handler": "retrain_starter.handler",
        "Code": {"ZipFile": deployment_package(STARTER_CODE)}, "Timeout": 30, "MemorySize": 128,
        "Environment": {"Variables": {"PIPELINE_NAME": "t-dev-fraud-train"}}, "KMSKeyArn": KEY_ARN, "Tags": TAGS,
    }, returns={"arn": "FunctionArn"}), ApiCall("lambda", "put_function_concurrency", {
        "FunctionName": "t-dev-fraud-retrain-starter", "ReservedConcurrentExecutions": 1})]),
    "lambda async config": (planned("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", {
        "functionName": "t-dev-fraud-retrain-starter", "maximumRetryAttempts": 2.0, "maximumEventAgeInSeconds": 3600.0,
        "destinationConfig": {"onFailure": {"destination": "arn:aws:sqs:eu-west-1:111111111111:t-dev-fraud-retrain-failed"}},
    }), [ApiCall("lambda", "put_function_event_invoke_config", {
        "FunctionName": "t-dev-fraud-retrain-starter", "MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:eu-west-1:111111111111:t-dev-fraud-retrain-failed"}},
    })]),
    "lambda permission": (planned("aws:lambda/permission:Permission", {
        "function": "t-dev-fraud-retrain-starter", "action": "lambda:InvokeFunction", "principal": "events.amazonaws.com",
        "sourceArn": "arn:aws:events:eu-west-1:111111111111:rule/t-dev-fraud-retrain",
    }, name="t-dev-fraud-retraining-on-alarm-invoke"), [ApiCall("lambda", "add_permission", {
        "FunctionName": "t-dev-fraud-retrain-starter", "StatementId": "t-dev-fraud-retraining-on-alarm-invoke",
        "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
        "SourceArn": "arn:aws:events:eu-west-1:111111111111:rule/t-dev-fraud-retrain",
    })]),
}


def test_every_converter_has_an_exact_request_case():
    assert {resource.type for resource, _ in CASES.values()} == set(CONVERTERS)


@pytest.mark.parametrize("case", CASES)
def test_planned_resource_becomes_exactly_these_api_calls(case):
    resource, expected = CASES[case]
    assert api_calls(resource, REGION) == expected


@pytest.mark.parametrize("case", CASES)
def test_api_calls_are_valid_by_botocores_service_model(case, request_problems):
    resource, _ = CASES[case]
    assert {call.operation: request_problems(call) for call in api_calls(resource, REGION)} == {
        call.operation: [] for call in api_calls(resource, REGION)}


def test_bucket_in_us_east_1_has_no_location_constraint_and_untagged_bucket_no_tagging_call():
    resource = planned("aws:s3/bucket:Bucket", {"bucket": BUCKET})
    assert api_calls(resource, "us-east-1") == [ApiCall("s3", "create_bucket", {"Bucket": BUCKET})]


def test_kms_key_without_rotation_is_one_create_key_call():
    resource = planned("aws:kms/key:Key", {"description": "d"}, outputs={"keyId": "mock-key"})
    assert [c.operation for c in api_calls(resource, REGION)] == ["create_key"]


def test_metric_alarm_without_datapoints_to_alarm_leaves_it_to_aws():
    inputs = {k: v for k, v in P99_ALARM.inputs.items() if k != "datapointsToAlarm"}
    (call,) = api_calls(planned("aws:cloudwatch/metricAlarm:MetricAlarm", inputs), REGION)
    assert "DatapointsToAlarm" not in call.params and call.params["EvaluationPeriods"] == 5


def test_component_and_kubernetes_resources_make_no_api_call():
    component = PlannedResource(urn="urn:c", type="mlops:endpoint:Endpoint", name="t-dev-scoring", parent=None, custom=False, inputs={})
    namespace = planned("kubernetes:core/v1:Namespace", {"metadata": {"name": "training"}})
    provider = planned("pulumi:providers:kubernetes", {"kubeconfig": "[secret]"})
    assert [api_calls(r, REGION) for r in (component, namespace, provider)] == [[], [], []]


def test_unknown_aws_type_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="aws:dynamodb/table:Table"):
        api_calls(planned("aws:dynamodb/table:Table", {"name": "q"}), REGION)


# ---- realizing the demo-local plan on moto's server ---------------------------------------------


@pytest.fixture(scope="module")
def demo_plan():
    """The demo-local plan, less the kinds moto lacks that mlops.local.aws_server serves itself
    (SERVED_BY_THE_LOCAL_ENDPOINT): these tests run on moto's server alone."""
    from mlops.plan import plan_stack

    plan = plan_stack("demo-local")
    assert {r.type for r in plan.resources} >= set(SERVED_BY_THE_LOCAL_ENDPOINT)
    plan.resources = [r for r in plan.resources if r.type not in SERVED_BY_THE_LOCAL_ENDPOINT]
    return plan


SERVED_BY_THE_LOCAL_ENDPOINT = ("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",)
"""Kinds moto lacks that the local AWS endpoint serves itself (tests/local/test_tracking_servers.py)."""


def _clients(region: str):
    import boto3

    made: dict[str, Any] = {}
    return lambda service: made.setdefault(service, boto3.client(service, region_name=region))


def _stand_ins(plan, client) -> dict[str, str]:
    """The plan's stand-in values -> what moto assigned, for the resources whose real ids differ."""
    real = {}
    for key in plan.of_type("aws:kms/key:Key"):
        (listed,) = client("kms").list_keys()["Keys"]
        real.update({key.outputs["arn"]: listed["KeyArn"], key.outputs["keyId"]: listed["KeyId"]})
    for pipeline in plan.of_type("aws:sagemaker/pipeline:Pipeline"):
        real[pipeline.outputs["arn"]] = client("sagemaker").describe_pipeline(PipelineName=pipeline.inputs["pipelineName"])["PipelineArn"]
    return real


def _swap(text: str, real: dict[str, str]) -> str:
    for stand_in, value in sorted(real.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(stand_in, value)
    return text


def _tags(tags: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(tags.items())


def _read_s3(c, i: dict[str, Any], op: str, real: dict[str, str]) -> tuple[Any, Any]:
    s3, bucket = c("s3"), i["bucket"]
    if op == "create_bucket":
        return s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"], 200
    if op == "put_bucket_tagging":
        return sorted((t["Key"], t["Value"]) for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]), _tags(i["tags"])
    if op == "put_bucket_encryption":
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        planned = i["rules"][0]["applyServerSideEncryptionByDefault"]
        return rule["ApplyServerSideEncryptionByDefault"], {"SSEAlgorithm": planned["sseAlgorithm"], "KMSMasterKeyID": _swap(planned["kmsMasterKeyId"], real)}
    if op == "put_bucket_versioning":
        return s3.get_bucket_versioning(Bucket=bucket)["Status"], i["versioningConfiguration"]["status"]
    if op == "put_public_access_block":
        got = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        return got, {k[:1].upper() + k[1:]: i[k] for k in ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")}
    if op == "put_bucket_ownership_controls":
        return s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"], [{"ObjectOwnership": i["rule"]["objectOwnership"]}]
    if op == "put_bucket_lifecycle_configuration":
        return [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]], [r["id"] for r in i["rules"]]
    if op == "put_object":
        return s3.get_object(Bucket=bucket, Key=i["key"])["Body"].read().decode(), i["content"]
    raise AssertionError(f"no read-back for s3 {op}")


def _json(text: str, real: dict[str, str]) -> Any:
    return json.loads(_swap(text, real))


# operation -> (client factory, planned resource, stand-in -> real) -> (read from moto, expected from the plan)
READ_BACK: dict[str, Any] = {
    "create_key": lambda c, r, real: (c("kms").describe_key(KeyId=real[r.outputs["keyId"]])["KeyMetadata"]["Description"], r.inputs["description"]),
    "enable_key_rotation": lambda c, r, real: (c("kms").get_key_rotation_status(KeyId=real[r.outputs["keyId"]])["KeyRotationEnabled"], True),
    "create_alias": lambda c, r, real: (
        [a["TargetKeyId"] for a in c("kms").list_aliases()["Aliases"] if a["AliasName"] == r.inputs["name"]], [real[r.inputs["targetKeyId"]]]),
    "create_repository": lambda c, r, real: (
        c("ecr").describe_repositories(repositoryNames=[r.inputs["name"]])["repositories"][0]["imageTagMutability"], r.inputs["imageTagMutability"]),
    "put_lifecycle_policy": lambda c, r, real: (
        json.loads(c("ecr").get_lifecycle_policy(repositoryName=r.inputs["repository"])["lifecyclePolicyText"]), json.loads(r.inputs["policy"])),
    "create_role": lambda c, r, real: (
        c("iam").get_role(RoleName=r.inputs["name"])["Role"]["AssumeRolePolicyDocument"], _json(r.inputs["assumeRolePolicy"], real)),
    "put_role_policy": lambda c, r, real: (
        c("iam").get_role_policy(RoleName=r.inputs["role"], PolicyName=r.inputs.get("name") or r.name)["PolicyDocument"], _json(r.inputs["policy"], real)),
    "create_topic": lambda c, r, real: (
        c("sns").get_topic_attributes(TopicArn=r.outputs["arn"])["Attributes"]["KmsMasterKeyId"], _swap(r.inputs["kmsMasterKeyId"], real)),
    "set_topic_attributes": lambda c, r, real: (
        json.loads(c("sns").get_topic_attributes(TopicArn=r.inputs["arn"])["Attributes"]["Policy"]), _json(r.inputs["policy"], real)),
    "subscribe": lambda c, r, real: (
        [(s["Protocol"], s["Endpoint"]) for s in c("sns").list_subscriptions_by_topic(TopicArn=r.inputs["topic"])["Subscriptions"]],
        [(r.inputs["protocol"], r.inputs["endpoint"])]),
    "put_metric_alarm": lambda c, r, real: (
        [(a["ComparisonOperator"], a["Threshold"]) for a in c("cloudwatch").describe_alarms(AlarmNames=[r.inputs["name"]])["MetricAlarms"]],
        [(r.inputs["comparisonOperator"], r.inputs["threshold"])]),
    "put_dashboard": lambda c, r, real: (
        c("cloudwatch").get_dashboard(DashboardName=r.inputs["dashboardName"])["DashboardBody"], r.inputs["dashboardBody"]),
    "put_rule": lambda c, r, real: (json.loads(c("events").describe_rule(Name=r.inputs["name"])["EventPattern"]), json.loads(r.inputs["eventPattern"])),
    "put_targets": lambda c, r, real: (
        [t["Arn"] for t in c("events").list_targets_by_rule(Rule=r.inputs["rule"])["Targets"]], [_swap(r.inputs["arn"], real)]),
    "create_model_package_group": lambda c, r, real: (
        c("sagemaker").describe_model_package_group(ModelPackageGroupName=r.inputs["modelPackageGroupName"])["ModelPackageGroupDescription"],
        r.inputs["modelPackageGroupDescription"]),
    "create_feature_group": lambda c, r, real: (
        [f["FeatureName"] for f in c("sagemaker").describe_feature_group(FeatureGroupName=r.inputs["featureGroupName"])["FeatureDefinitions"]],
        [f["featureName"] for f in r.inputs["featureDefinitions"]]),
    "create_model": lambda c, r, real: (
        c("sagemaker").describe_model(ModelName=r.inputs["name"])["PrimaryContainer"]["Environment"], r.inputs["primaryContainer"]["environment"]),
    "create_endpoint_config": lambda c, r, real: (
        [(v["VariantName"], v["InitialVariantWeight"]) for v in c("sagemaker").describe_endpoint_config(EndpointConfigName=r.inputs["name"])["ProductionVariants"]],
        [(v["variantName"], v["initialVariantWeight"]) for v in r.inputs["productionVariants"]]),
    "create_endpoint": lambda c, r, real: (
        c("sagemaker").describe_endpoint(EndpointName=r.inputs["name"])["EndpointConfigName"], r.inputs["endpointConfigName"]),
    "create_log_group": lambda c, r, real: (
        [(g["logGroupName"], g.get("kmsKeyId")) for g in c("logs").describe_log_groups(logGroupNamePrefix=r.inputs["name"])["logGroups"]],
        [(r.inputs["name"], _swap(r.inputs["kmsKeyId"], real))]),
    "put_retention_policy": lambda c, r, real: (
        c("logs").describe_log_groups(logGroupNamePrefix=r.inputs["name"])["logGroups"][0]["retentionInDays"], r.inputs["retentionInDays"]),
    "create_queue": lambda c, r, real: (
        c("sqs").get_queue_attributes(QueueUrl=c("sqs").get_queue_url(QueueName=r.inputs["name"])["QueueUrl"], AttributeNames=["QueueArn", "KmsMasterKeyId"])["Attributes"],
        {"QueueArn": r.outputs["arn"], "KmsMasterKeyId": _swap(r.inputs["kmsMasterKeyId"], real)}),
    "create_function": lambda c, r, real: (
        _function_read_back(c("lambda").get_function(FunctionName=r.inputs["name"])),
        (r.outputs["arn"], r.inputs["handler"], r.inputs["environment"]["variables"], _code_sha256(r.inputs["code"]))),
    "put_function_concurrency": lambda c, r, real: (
        c("lambda").get_function_concurrency(FunctionName=r.inputs["name"])["ReservedConcurrentExecutions"], r.inputs["reservedConcurrentExecutions"]),
    "put_function_event_invoke_config": lambda c, r, real: (
        {k: v for k, v in c("lambda").get_function_event_invoke_config(FunctionName=r.inputs["functionName"]).items()
         if k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")},
        {"MaximumRetryAttempts": r.inputs["maximumRetryAttempts"], "MaximumEventAgeInSeconds": r.inputs["maximumEventAgeInSeconds"],
         "DestinationConfig": {"OnFailure": {"Destination": r.inputs["destinationConfig"]["onFailure"]["destination"]}}}),
    "add_permission": lambda c, r, real: (
        [(s["Sid"], s["Principal"], s["Condition"]["ArnLike"]["AWS:SourceArn"])
         for s in json.loads(c("lambda").get_policy(FunctionName=r.inputs["function"])["Policy"])["Statement"] if s["Sid"] == r.name],
        [(r.name, {"Service": r.inputs["principal"]}, _swap(r.inputs["sourceArn"], real))]),
    "create_pipeline": lambda c, r, real: (
        json.loads(c("sagemaker").describe_pipeline(PipelineName=r.inputs["pipelineName"])["PipelineDefinition"]), _json(r.inputs["pipelineDefinition"], real)),
}


def _function_read_back(got: dict[str, Any]) -> tuple[Any, ...]:
    """A created function's ARN, handler, environment and its package's CodeSha256 (base64 sha256)."""
    config = got["Configuration"]
    return config["FunctionArn"], config["Handler"], config["Environment"]["Variables"], config["CodeSha256"]


def _code_sha256(code: dict[str, Any]) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(deployment_package(code)).digest()).decode()


def test_every_realized_resource_reads_back_from_moto_as_planned(demo_plan, aws):
    region = demo_plan.config.aws.region
    client = _clients(region)
    done = realize(demo_plan.resources, region=region, client=client)
    real = _stand_ins(demo_plan, client)
    by_name = {r.name: r for r in demo_plan.resources}
    differences = []
    for name, operation in done.created:
        resource = by_name[name]
        if operation in READ_BACK:
            got, expected = READ_BACK[operation](client, resource, real)
        else:
            got, expected = _read_s3(client, resource.inputs, operation, real)
        if got != expected:
            differences.append(f"{name} {operation}: moto has {got!r}, planned {expected!r}")
    assert differences == []
    # every planned AWS resource was created or deliberately skipped, nothing was dropped silently
    made = {name for name, _ in done.created} | {name for name, _, _ in done.skipped}
    assert made == {r.name for r in demo_plan.resources if api_calls(r, region)}


def test_not_realized_are_exactly_the_kinds_without_a_local_counterpart_with_the_reason(demo_plan, aws):
    region = demo_plan.config.aws.region
    client = _clients(region)
    done = realize(demo_plan.resources, region=region, client=client)
    assert done.skipped == [(r.name, r.type, LOCAL_LIMITATIONS[r.type]) for r in demo_plan.resources if r.type in LOCAL_LIMITATIONS]
    assert {kind for _, kind, _ in done.skipped} == {"aws:s3/bucketPolicy:BucketPolicy", "aws:sagemaker/monitoringSchedule:MonitoringSchedule"}
    assert not {name for name, _ in done.created} & {name for name, _, _ in done.skipped}
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        client("s3").get_bucket_policy(Bucket=demo_plan.of_type("aws:s3/bucketPolicy:BucketPolicy")[0].inputs["bucket"])


def test_outside_the_emulator_a_bucket_policy_is_put(demo_plan, aws):
    region = demo_plan.config.aws.region
    client = _clients(region)
    policy = demo_plan.of_type("aws:s3/bucketPolicy:BucketPolicy")[0]
    bucket = planned("aws:s3/bucket:Bucket", {"bucket": policy.inputs["bucket"]})
    done = realize([bucket, policy], region=region, client=client, local=False)
    assert done == Realized(created=[(bucket.name, "create_bucket"), (policy.name, "put_bucket_policy")], skipped=[])


def test_realizing_twice_stops_at_the_first_name_that_exists_with_awss_error(demo_plan, aws):
    """`realize` creates, it does not reconcile: `mlops local up` starts a fresh emulator every time."""
    region = demo_plan.config.aws.region
    client = _clients(region)
    realize(demo_plan.resources, region=region, client=client)
    first_role = demo_plan.of_type("aws:iam/role:Role")[0].inputs["name"]
    with pytest.raises(ClientError, match=f"EntityAlreadyExists.*Role with name {first_role} already exists"):
        realize(demo_plan.resources, region=region, client=client)
