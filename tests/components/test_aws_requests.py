"""The SageMaker and CloudWatch resources a shipped stack plans are valid AWS requests.

Each planned resource's pulumi-aws inputs (camelCase) are turned into the API request the AWS
provider sends (CreateEndpointConfig, CreateModel, CreateFeatureGroup, CreateModelPackageGroup,
PutMetricAlarm) by the explicit mappings below; every input must have a mapping, so a new input
fails here until someone says what it becomes. The request is then validated against botocore's
service model (ParamValidator, plus the patterns, lengths, ranges and enums ParamValidator skips),
created on moto's server and read back.

What moto (5.2.5) needs or lacks, and what these tests do about it:
- CreateEndpointConfig checks each variant's ModelName exists: the stack's Models are created first.
- CreateEndpointConfig checks InstanceType against moto's own, outdated list, which lacks the c6i
  family (ml.c6i.large, ml.c6i.xlarge) that botocore's enum and AWS allow. Only for the moto call,
  such a variant is given ml.m5.large; the unmodified request is what botocore validated, and the
  test asserts the type it replaced is in botocore's ProductionVariantInstanceType enum.
- moto ignores some members (see MOTO_IGNORES); the read-back compares every other member, and the
  tags through ListTags / ListTagsForResource, except a feature group's: moto's ListTags answers
  HTTP 500 for a feature-group ARN.
- Nothing else is cross-checked by moto (role ARNs, KMS key ARNs and aliases, SNS topic ARNs in
  other accounts are stored as given), so no account ids needed rewriting.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
import pytest
import regex  # botocore patterns are Java regexes (\p{L}...); `regex` reads them, `re` cannot
from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.validate import ParamValidator

STACKS = ["fraud-prod", "fraud-staging", "demo-local"]


# ---- pulumi-aws inputs -> API request ---------------------------------------------------------
# A spec maps each pulumi input key to the API member name, or to (member name, nested spec),
# (member name, [nested spec]) for lists of structures, or (member name, converter function).


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _dimensions(dimensions: dict[str, str]) -> list[dict[str, str]]:
    return [{"Name": k, "Value": v} for k, v in dimensions.items()]


def _verbatim(value: Any) -> Any:
    return value


def _metric_stat(metric: dict[str, Any]) -> dict[str, Any]:
    """pulumi-aws flattens MetricStat {Metric {Namespace, MetricName, Dimensions}, Period, Stat, Unit}."""
    unmapped = set(metric) - {"namespace", "metricName", "dimensions", "period", "stat", "unit"}
    assert not unmapped, f"metricQueries[].metric: no mapping for {sorted(unmapped)}"
    stat = {
        "Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"], "Dimensions": _dimensions(metric.get("dimensions", {}))},
        "Period": metric["period"],
        "Stat": metric["stat"],
    }
    if "unit" in metric:
        stat["Unit"] = metric["unit"]
    return stat


VARIANT = {
    "variantName": "VariantName",
    "modelName": "ModelName",
    "instanceType": "InstanceType",
    "initialInstanceCount": "InitialInstanceCount",
    "initialVariantWeight": "InitialVariantWeight",
}
ENDPOINT_CONFIG = {
    "name": "EndpointConfigName",
    "kmsKeyArn": "KmsKeyId",
    "productionVariants": ("ProductionVariants", [VARIANT]),
    "shadowProductionVariants": ("ShadowProductionVariants", [VARIANT]),
    "dataCaptureConfig": ("DataCaptureConfig", {
        "enableCapture": "EnableCapture",
        "initialSamplingPercentage": "InitialSamplingPercentage",
        "destinationS3Uri": "DestinationS3Uri",
        "kmsKeyId": "KmsKeyId",
        "captureOptions": ("CaptureOptions", [{"captureMode": "CaptureMode"}]),
        "captureContentTypeHeader": ("CaptureContentTypeHeader", {"csvContentTypes": "CsvContentTypes", "jsonContentTypes": "JsonContentTypes"}),
    }),
    "tags": ("Tags", _tags),
}
MODEL = {
    "name": "ModelName",
    "executionRoleArn": "ExecutionRoleArn",
    "enableNetworkIsolation": "EnableNetworkIsolation",
    "primaryContainer": ("PrimaryContainer", {"image": "Image", "modelDataUrl": "ModelDataUrl", "environment": ("Environment", _verbatim)}),
    "vpcConfig": ("VpcConfig", {"subnets": "Subnets", "securityGroupIds": "SecurityGroupIds"}),
    "tags": ("Tags", _tags),
}
FEATURE_GROUP = {
    "featureGroupName": "FeatureGroupName",
    "description": "Description",
    "recordIdentifierFeatureName": "RecordIdentifierFeatureName",
    "eventTimeFeatureName": "EventTimeFeatureName",
    "featureDefinitions": ("FeatureDefinitions", [{"featureName": "FeatureName", "featureType": "FeatureType"}]),
    "onlineStoreConfig": ("OnlineStoreConfig", {
        "enableOnlineStore": "EnableOnlineStore",
        "securityConfig": ("SecurityConfig", {"kmsKeyId": "KmsKeyId"}),
        "ttlDuration": ("TtlDuration", {"unit": "Unit", "value": "Value"}),
    }),
    "offlineStoreConfig": ("OfflineStoreConfig", {
        "s3StorageConfig": ("S3StorageConfig", {"s3Uri": "S3Uri", "kmsKeyId": "KmsKeyId"}),
        "disableGlueTableCreation": "DisableGlueTableCreation",
    }),
    "roleArn": "RoleArn",
    "tags": ("Tags", _tags),
}
MODEL_PACKAGE_GROUP = {
    "modelPackageGroupName": "ModelPackageGroupName",
    "modelPackageGroupDescription": "ModelPackageGroupDescription",
    "tags": ("Tags", _tags),
}
METRIC_ALARM = {
    "name": "AlarmName",
    "alarmDescription": "AlarmDescription",
    "alarmActions": "AlarmActions",
    "okActions": "OKActions",
    "comparisonOperator": "ComparisonOperator",
    "threshold": "Threshold",
    "evaluationPeriods": "EvaluationPeriods",
    "datapointsToAlarm": "DatapointsToAlarm",
    "treatMissingData": "TreatMissingData",
    "namespace": "Namespace",
    "metricName": "MetricName",
    "statistic": "Statistic",
    "extendedStatistic": "ExtendedStatistic",
    "period": "Period",
    "dimensions": ("Dimensions", _dimensions),
    "metricQueries": ("Metrics", [{
        "id": "Id",
        "returnData": "ReturnData",
        "expression": "Expression",
        "label": "Label",
        "metric": ("MetricStat", _metric_stat),
    }]),
    "tags": ("Tags", _tags),
}

# planned type -> (service, operation, spec)
REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("sagemaker", "CreateModelPackageGroup", MODEL_PACKAGE_GROUP),
    "aws:sagemaker/featureGroup:FeatureGroup": ("sagemaker", "CreateFeatureGroup", FEATURE_GROUP),
    "aws:sagemaker/model:Model": ("sagemaker", "CreateModel", MODEL),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("sagemaker", "CreateEndpointConfig", ENDPOINT_CONFIG),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "PutMetricAlarm", METRIC_ALARM),
}


def to_request(inputs: dict[str, Any], spec: dict[str, Any], path: str = "") -> dict[str, Any]:
    request: dict[str, Any] = {}
    for key, value in inputs.items():
        assert key in spec, f"{path}{key}: no mapping to the API; add one to this module"
        target = spec[key]
        if isinstance(target, str):
            request[target] = value
            continue
        member, nested = target
        if callable(nested):
            request[member] = nested(value)
        elif isinstance(nested, list):
            request[member] = [to_request(item, nested[0], f"{path}{key}[{i}].") for i, item in enumerate(value)]
        else:
            request[member] = to_request(value, nested, f"{path}{key}.")
    return request


def with_api_types(value: Any, shape: Shape) -> Any:
    """Pulumi's wire format has one number type: integral floats become ints where the API wants an integer."""
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: with_api_types(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [with_api_types(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: with_api_types(v, shape.value) for k, v in value.items()}
    if shape.type_name in ("integer", "long") and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def constraint_problems(value: Any, shape: Shape, path: str) -> list[str]:
    """Patterns, lengths, ranges and enums from the shape metadata (ParamValidator checks types,
    required members and minimums only)."""
    meta = shape.metadata
    problems = []
    if shape.type_name == "structure":
        for k, v in value.items():
            if k in shape.members:  # an unknown member is ParamValidator's finding
                problems += constraint_problems(v, shape.members[k], f"{path}.{k}")
    elif shape.type_name == "list":
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} items, allowed {meta.get('min', 0)}..{meta.get('max')}")
        for i, v in enumerate(value):
            problems += constraint_problems(v, shape.member, f"{path}[{i}]")
    elif shape.type_name == "map":
        for k, v in value.items():
            problems += constraint_problems(k, shape.key, f"{path} key")
            problems += constraint_problems(v, shape.value, f"{path}.{k}")
    elif shape.type_name == "string":
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(f"{path}: {value!r} has length {len(value)}, allowed {meta.get('min', 0)}..{meta.get('max')}")
        if "pattern" in meta and not regex.fullmatch(meta["pattern"], value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif shape.type_name in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"] or "max" in meta and value > meta["max"]:
            problems.append(f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}")
    return problems


_SESSION = botocore.session.get_session()


def operation(service: str, name: str):
    return _SESSION.get_service_model(service).operation_model(name)


def planned_requests(plan) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(planned resource name, service, operation, request) in dependency order (REQUESTS' order)."""
    out = []
    for type_, (service, op, spec) in REQUESTS.items():
        for resource in plan.of_type(type_):
            request = to_request(resource.inputs, spec)
            out.append((resource.name, service, op, with_api_types(request, operation(service, op).input_shape)))
    return out


# ---- the requests are valid --------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_planned_requests_cover_every_hosting_registry_feature_and_alarm_resource(stack, shipped_plan):
    plan = shipped_plan(stack)
    counts = {op: 0 for _, op, _ in REQUESTS.values()}
    for _, _, op, _ in planned_requests(plan):
        counts[op] += 1
    variants = len(plan.config.endpoints["scoring"].all_variants())
    assert counts == {
        "CreateModelPackageGroup": len(plan.config.model_registry.models),
        "CreateFeatureGroup": len(plan.config.feature_store.feature_groups),
        "CreateModel": variants,
        "CreateEndpointConfig": 1,
        "PutMetricAlarm": len(plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")),
    }
    assert counts["PutMetricAlarm"] >= 3 * variants + 2


@pytest.mark.parametrize("stack", STACKS)
def test_planned_requests_pass_botocores_parameter_validation(stack, shipped_plan):
    for name, service, op, request in planned_requests(shipped_plan(stack)):
        report = ParamValidator().validate(request, operation(service, op).input_shape)
        assert not report.has_errors(), f"{op} for {name}:\n{report.generate_report()}"


@pytest.mark.parametrize("stack", STACKS)
def test_planned_requests_satisfy_aws_patterns_lengths_ranges_and_enums(stack, shipped_plan):
    problems = []
    for name, service, op, request in planned_requests(shipped_plan(stack)):
        problems += [f"{op} {name}: {p}" for p in constraint_problems(request, operation(service, op).input_shape, op)]
    assert problems == []


def test_constraint_check_rejects_a_name_aws_would_reject():
    # The check above could pass by checking nothing: show that it catches a bad name and a bad range.
    shape = operation("sagemaker", "CreateEndpointConfig").input_shape
    assert constraint_problems({"EndpointConfigName": "bad_name", "DataCaptureConfig": {"InitialSamplingPercentage": 101}}, shape, "x") == [
        "x.EndpointConfigName: 'bad_name' does not match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        "x.DataCaptureConfig.InitialSamplingPercentage: 101 outside 0..100",
    ]


def test_mapping_refuses_an_input_it_does_not_know():
    with pytest.raises(AssertionError, match="productionVariants\\[0\\].volumeSizeInGb: no mapping"):
        to_request({"productionVariants": [{"variantName": "a", "volumeSizeInGb": 4}]}, ENDPOINT_CONFIG)


def test_shadow_stack_request_has_one_shadow_variant(shipped_plan):
    ((_, _, _, request),) = [r for r in planned_requests(shipped_plan("fraud-staging")) if r[2] == "CreateEndpointConfig"]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in request["ProductionVariants"]] == [("champion", 1.0)]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in request["ShadowProductionVariants"]] == [("candidate", 0.5)]


# ---- ... and moto accepts them --------------------------------------------------------------------

MOTO_IGNORES = {
    "CreateEndpointConfig": {"ShadowProductionVariants"},  # not read by moto's create_endpoint_config
    "CreateModel": {"EnableNetworkIsolation"},  # not read; moto always describes it as False
    "CreateFeatureGroup": {"OnlineStoreConfig", "Description"},  # not read by moto's create_feature_group
}
MOTO_INSTANCE_TYPE = "ml.m5.large"


def _for_moto(op: str, request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The request as moto can take it, and the instance types replaced (see the module docstring)."""
    if op != "CreateEndpointConfig":
        return request, []
    replaced = []
    variants = []
    for variant in request["ProductionVariants"]:
        if variant["InstanceType"].startswith("ml.c6i."):
            replaced.append(variant["InstanceType"])
            variant = {**variant, "InstanceType": MOTO_INSTANCE_TYPE}
        variants.append(variant)
    return {**request, "ProductionVariants": variants}, replaced


def _contains(described: Any, sent: Any, path: str) -> list[str]:
    """Where `described` differs from `sent`; extra keys AWS adds (ARNs, resolved URIs) are allowed."""
    if isinstance(sent, dict):
        if not isinstance(described, dict):
            return [f"{path}: got {described!r}"]
        return [p for k, v in sent.items() for p in (_contains(described[k], v, f"{path}.{k}") if k in described else [f"{path}.{k}: missing"])]
    if isinstance(sent, list):
        if not isinstance(described, list) or len(described) != len(sent):
            return [f"{path}: got {described!r}, sent {sent!r}"]
        return [p for i, (d, s) in enumerate(zip(described, sent)) for p in _contains(d, s, f"{path}[{i}]")]
    return [] if described == sent else [f"{path}: got {described!r}, sent {sent!r}"]


DESCRIBE: dict[str, Callable[[Any, dict[str, Any]], dict[str, Any]]] = {
    "CreateModelPackageGroup": lambda c, r: c.describe_model_package_group(ModelPackageGroupName=r["ModelPackageGroupName"]),
    "CreateFeatureGroup": lambda c, r: c.describe_feature_group(FeatureGroupName=r["FeatureGroupName"]),
    "CreateModel": lambda c, r: c.describe_model(ModelName=r["ModelName"]),
    "CreateEndpointConfig": lambda c, r: c.describe_endpoint_config(EndpointConfigName=r["EndpointConfigName"]),
    "PutMetricAlarm": lambda c, r: c.describe_alarms(AlarmNames=[r["AlarmName"]])["MetricAlarms"][0],
}


TAGS: dict[str, Callable[[Any, dict[str, Any]], list[dict[str, str]]] | None] = {
    "CreateModelPackageGroup": lambda c, d: c.list_tags(ResourceArn=d["ModelPackageGroupArn"])["Tags"],
    "CreateFeatureGroup": None,  # moto: ListTags on a feature-group ARN fails with HTTP 500
    "CreateModel": lambda c, d: c.list_tags(ResourceArn=d["ModelArn"])["Tags"],
    "CreateEndpointConfig": lambda c, d: c.list_tags(ResourceArn=d["EndpointConfigArn"])["Tags"],
    "PutMetricAlarm": lambda c, d: c.list_tags_for_resource(ResourceARN=d["AlarmArn"])["Tags"],
}


def _call(client, op: str, request: dict[str, Any]) -> None:
    method = {"CreateModelPackageGroup": "create_model_package_group", "CreateFeatureGroup": "create_feature_group",
              "CreateModel": "create_model", "CreateEndpointConfig": "create_endpoint_config", "PutMetricAlarm": "put_metric_alarm"}[op]
    getattr(client, method)(**request)


def _by_key(tags: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((t["Key"], t["Value"]) for t in tags)


@pytest.mark.parametrize("stack", STACKS)
def test_planned_requests_create_on_moto_and_read_back_unchanged(stack, shipped_plan, aws):
    plan = shipped_plan(stack)
    region = plan.config.aws.region
    clients = {s: boto3.client(s, region_name=region) for s in ("sagemaker", "cloudwatch")}
    endpoint_enum = _SESSION.get_service_model("sagemaker").shape_for("ProductionVariantInstanceType").enum
    differences = []
    for name, service, op, request in planned_requests(plan):
        sent, replaced = _for_moto(op, request)
        assert all(t in endpoint_enum for t in replaced), replaced
        _call(clients[service], op, sent)
        described = DESCRIBE[op](clients[service], sent)
        compared = {k: v for k, v in sent.items() if k != "Tags" and k not in MOTO_IGNORES.get(op, set())}
        differences += [f"{op} {name}: {d}" for d in _contains(described, compared, op)]
        read_tags = TAGS[op]
        if read_tags is not None and _by_key(read_tags(clients[service], described)) != _by_key(sent["Tags"]):
            differences.append(f"{op} {name}: tags {read_tags(clients[service], described)} != {sent['Tags']}")
    assert differences == []


def test_moto_rejects_an_endpoint_config_whose_models_do_not_exist(shipped_plan, aws):
    # The read-back above is only meaningful if moto checks something: it refuses unknown models.
    ((_, _, _, request),) = [r for r in planned_requests(shipped_plan("demo-local")) if r[2] == "CreateEndpointConfig"]
    with pytest.raises(ClientError, match="Could not find model"):
        boto3.client("sagemaker", region_name="us-east-1").create_endpoint_config(**request)
