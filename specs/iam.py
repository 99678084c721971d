"""IAM and resource policy documents: pure functions of ARNs, no Pulumi.

Least privilege: every Allow names its actions (no `*`, no `service:*`) and, wherever the action
supports resource-level permissions, the team's own resources. The few actions AWS only grants on
`Resource: "*"` (ecr:GetAuthorizationToken, cloudwatch:PutMetricData, VPC network interfaces) are
listed in WILDCARD_RESOURCE_ACTIONS and, where AWS offers one, carry a condition.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: computed without a Pulumi runtime; the layers above build on
specifications, never the reverse).
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

Document = dict[str, Any]

WILDCARD_RESOURCE_ACTIONS = frozenset({
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
})


def document(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(sid: str, actions: list[str], resources: list[str], condition: Document | None = None) -> Document:
    statement: Document = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def service_trust(service: str, account_id: str) -> Document:
    """Trust policy for an AWS service, limited to calls on behalf of this account (confused deputy)."""
    return document({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    })


def tls_only_bucket_policy(bucket_arn: str) -> Document:
    """Deny every request to the bucket that does not use TLS."""
    return document({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })


def kms_key_policy(*, account_id: str, region: str) -> Document:
    """Key policy: the account administers the key through IAM (AWS's default, which keeps the key
    manageable); CloudWatch and EventBridge may encrypt messages to the stack's encrypted SNS topic."""
    return document(
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "AlarmsAndEventsPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        {
            "Sid": "CloudWatchLogsEncryptsSageMakerLogs",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account_id}:*"}},
        },
    )


def _bucket_statements(sid: str, bucket_arns: list[str], *, write: bool) -> list[Document]:
    object_actions = ["s3:GetObject"] + (["s3:PutObject", "s3:AbortMultipartUpload"] if write else [])
    return [
        allow(f"{sid}List", ["s3:ListBucket", "s3:GetBucketLocation"], bucket_arns),
        allow(f"{sid}Objects", object_actions, [f"{arn}/*" for arn in bucket_arns]),
    ]


def _kms_statement(key_arn: str, *, grants: bool = True) -> Document:
    """The stack key; `grants` for services that hand it on (SageMaker's volumes), not for pods."""
    actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"] + (["kms:CreateGrant"] if grants else [])
    return allow("UseStackKey", actions, [key_arn])


def _ecr_pull_statements(repository_arns: list[str]) -> list[Document]:
    """Pull the team's images (and log in to ECR, which has no resource-level permission)."""
    return [
        allow("PullTeamImages", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"], repository_arns),
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
    ]


def model_packages_arn(group_arn: str) -> str:
    """The ARN pattern of every model package (version) in the Model Package Group `group_arn`."""
    return group_arn.replace(":model-package-group/", ":model-package/") + "/*"


def _register_models_statement(model_package_group_arns: list[str]) -> Document:
    return allow(
        "RegisterModels",
        ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"],
        [*model_package_group_arns, *(model_packages_arn(arn) for arn in model_package_group_arns)],
    )


@dataclass(frozen=True, kw_only=True)
class VpcScope:
    """The stack's VPC (specs.config.schema.Network): network interfaces are allowed only there."""

    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class JobScope:
    """What every SageMaker job role of one team shares: its account, region, key and network."""

    account_id: str
    region: str
    key_arn: str
    metric_namespaces: tuple[str, ...]
    vpc: VpcScope | None = None
    """None: jobs run outside a VPC, and no role gets a network-interface permission."""


JOB_ROLES = ("training", "hosting", "monitoring", "pipeline")
"""The SageMaker job kinds, each with its own role (Foundation creates them; specs.naming ROLE_PURPOSES)."""


def role_purpose(job: str) -> str:
    """The specs.naming role purpose of a job kind's role: `sagemaker-<job>`."""
    if job not in JOB_ROLES:
        raise ValueError(f"job role {job!r}; allowed: {', '.join(JOB_ROLES)}")
    return f"sagemaker-{job}"


def _ec2_arn(scope: JobScope, kind: str, ident: str) -> str:
    return f"arn:aws:ec2:{scope.region}:{scope.account_id}:{kind}/{ident}"


def vpc_statements(scope: JobScope) -> list[Document]:
    """The network interfaces SageMaker creates for a job in the stack's VPC: created only in its
    subnets with its security groups, managed only within its VPC (`ec2:Subnet` and `ec2:Vpc` apply to
    network-interface resources); the Describe calls support no resource scoping and write nothing.
    No VPC, no statement."""
    if scope.vpc is None:
        return []
    vpc = scope.vpc
    vpc_arn = _ec2_arn(scope, "vpc", vpc.vpc_id)
    interfaces = _ec2_arn(scope, "network-interface", "*")
    return [
        allow(
            "CreateInterfacesInStackSubnets", ["ec2:CreateNetworkInterface"], [interfaces],
            {"ArnEquals": {"ec2:Vpc": vpc_arn, "ec2:Subnet": [_ec2_arn(scope, "subnet", s) for s in vpc.subnet_ids]}},
        ),
        allow(
            "UseStackSubnetsAndGroups", ["ec2:CreateNetworkInterface"],
            [*(_ec2_arn(scope, "subnet", s) for s in vpc.subnet_ids), *(_ec2_arn(scope, "security-group", g) for g in vpc.security_group_ids)],
        ),
        allow(
            "ManageInterfacesInStackVpc",
            ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission"],
            [interfaces], {"ArnEquals": {"ec2:Vpc": vpc_arn}},
        ),
        allow("DescribeNetwork", sorted(a for a in WILDCARD_RESOURCE_ACTIONS if a.startswith("ec2:Describe")), ["*"]),
    ]


def _job_basics(scope: JobScope, repository_arns: list[str]) -> list[Document]:
    """Every job: the stack key, its image, its logs and its metrics (and its VPC, if any)."""
    return [
        _kms_statement(scope.key_arn),
        *_ecr_pull_statements(repository_arns),
        allow(
            "WriteLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            [f"arn:aws:logs:{scope.region}:{scope.account_id}:log-group:/aws/sagemaker/*"],
        ),
        allow("PublishMetrics", ["cloudwatch:PutMetricData"], ["*"], {"StringLike": {"cloudwatch:namespace": list(scope.metric_namespaces)}}),
        *vpc_statements(scope),
    ]


def _read(sid: str, bucket_arns: list[str], object_arns: list[str]) -> list[Document]:
    return [
        allow(f"{sid}List", ["s3:ListBucket", "s3:GetBucketLocation"], sorted(set(bucket_arns))),
        allow(f"{sid}Objects", ["s3:GetObject"], object_arns),
    ]


def _write(sid: str, object_arns: list[str]) -> Document:
    return allow(sid, ["s3:PutObject", "s3:AbortMultipartUpload"], object_arns)


TRAINING_JOB_WRITE_PREFIXES = ("models", "checkpoints", "training-output")
"""Where a SageMaker training job writes in the artifacts bucket: its model (and baseline), its spot
checkpoints and SageMaker's own output."""


def training_job_policy(*, scope: JobScope, features_bucket_arn: str, artifacts_bucket_arn: str, repository_arns: list[str]) -> Document:
    """SageMaker training jobs: read the features and the artifacts bucket (datasets, schemas), write
    its models, checkpoints and output; no captures, no registry, no other role."""
    return document(
        *_read("ReadFeaturesAndDatasets", [features_bucket_arn, artifacts_bucket_arn], [f"{features_bucket_arn}/*", f"{artifacts_bucket_arn}/*"]),
        _write("WriteOwnModelPrefixes", [f"{artifacts_bucket_arn}/{prefix}/*" for prefix in TRAINING_JOB_WRITE_PREFIXES]),
        *_job_basics(scope, repository_arns),
    )


CAPTURE_PREFIX = "datacapture"
"""Where endpoints' data capture writes in the capture bucket (specs.hosting's DestinationS3Uri)."""
MONITORING_WRITE_PREFIXES = ("monitoring", "monitoring-quality")
"""Where the drift and live-quality jobs write their reports in the capture bucket."""


def hosting_policy(*, scope: JobScope, artifacts_bucket_arn: str, capture_bucket_arn: str, repository_arns: list[str]) -> Document:
    """SageMaker endpoints: read the models, write the captures; nothing else."""
    return document(
        *_read("ReadModels", [artifacts_bucket_arn], [f"{artifacts_bucket_arn}/models/*"]),
        _write("WriteCaptures", [f"{capture_bucket_arn}/{CAPTURE_PREFIX}/*"]),
        *_job_basics(scope, repository_arns),
    )


def s3_object_arn(uri: str) -> str:
    """`s3://bucket[/prefix]` -> `arn:aws:s3:::bucket[/prefix]/*`: every object under it."""
    path = uri.removeprefix("s3://").strip("/")
    if not uri.startswith("s3://") or not path:
        raise ValueError(f"S3 URI {uri!r}; allowed: s3://<bucket>[/<prefix>]")
    return f"arn:aws:s3:::{path}/*"


def monitoring_policy(*, scope: JobScope, artifacts_bucket_arn: str, capture_bucket_arn: str, ground_truth_uris: list[str],
                      repository_arns: list[str]) -> Document:
    """Model Monitor jobs: read the captures, the ground truth and the baselines (beside the models),
    write their reports and metrics only. PutMetricData stays (scoped by namespace, `_job_basics`): the
    live-quality job calls it into `MLOps/ModelMonitor`, as it is not network-isolated
    (components/quality_monitor.py). The drift job calls no AWS API: SageMaker copies its inputs in and
    publishes its metric files (components/drift_monitor.py)."""
    truth = sorted({s3_object_arn(uri) for uri in ground_truth_uris})
    truth_buckets = sorted({arn.split("/", 1)[0] for arn in truth})
    return document(
        *_read("ReadCapturesTruthAndBaselines", [capture_bucket_arn, artifacts_bucket_arn, *truth_buckets],
               [f"{capture_bucket_arn}/*", f"{artifacts_bucket_arn}/models/*", *truth]),
        _write("WriteReports", [f"{capture_bucket_arn}/{prefix}/*" for prefix in MONITORING_WRITE_PREFIXES]),
        *_job_basics(scope, repository_arns),
    )


PIPELINE_WRITE_PREFIXES = ("datasets", "evaluations")
"""Where the pipeline's Dataset and Evaluate processing jobs (which run as the pipeline role) write."""


def pipeline_policy(*, scope: JobScope, features_bucket_arn: str, artifacts_bucket_arn: str, capture_bucket_arn: str,
                    repository_arns: list[str], model_package_group_arns: list[str], pipeline_role_arn: str,
                    training_role_arn: str) -> Document:
    """SageMaker Pipelines executions: start, watch and stop the pipeline's jobs, pass the training role
    (to its Train step) and itself (to its processing steps) to SageMaker only, and register versions.
    The Dataset and Evaluate steps run as this role: they read features, labels, captures and
    artifacts and write datasets/ and evaluations/."""
    jobs = f"arn:aws:sagemaker:{scope.region}:{scope.account_id}"
    return document(
        *_read("ReadPipelineInputs", [features_bucket_arn, artifacts_bucket_arn, capture_bucket_arn],
               [f"{features_bucket_arn}/*", f"{artifacts_bucket_arn}/*", f"{capture_bucket_arn}/{CAPTURE_PREFIX}/*"]),
        _write("WriteDatasetsAndEvaluations", [f"{artifacts_bucket_arn}/{prefix}/*" for prefix in PIPELINE_WRITE_PREFIXES]),
        *_job_basics(scope, repository_arns),
        _register_models_statement(model_package_group_arns),
        # Retraining pipelines name their jobs pipelines-<execution>-<step>-<hash>.
        allow(
            "RunRetrainingJobs",
            ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:AddTags"],
            [f"{jobs}:training-job/pipelines-*"],
        ),
        allow(
            "RunRetrainingProcessingJobs",
            ["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob", "sagemaker:AddTags"],
            [f"{jobs}:processing-job/pipelines-*"],
        ),
        allow(
            "PassJobRolesToSageMaker", ["iam:PassRole"], sorted({training_role_arn, pipeline_role_arn}),
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    )


def feature_store_policy(*, account_id: str, region: str, bucket_arn: str, key_arn: str, database: str) -> Document:
    """What SageMaker Feature Store needs to write the offline store and its Glue tables."""
    catalog = f"arn:aws:glue:{region}:{account_id}"
    return document(
        *_bucket_statements("OfflineStore", [bucket_arn], write=True),
        _kms_statement(key_arn),
        allow(
            "GlueTables",
            ["glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetDatabase", "glue:BatchCreatePartition"],
            [f"{catalog}:catalog", f"{catalog}:database/{database}", f"{catalog}:table/{database}/*"],
        ),
    )


FEATURE_LOOKUP_ACTIONS = ("sagemaker:BatchGetRecord", "sagemaker:GetRecord")
"""Read records from a feature group's online store (the serving container's feature lookup)."""


def feature_lookup_policy(*, feature_group_arn: str) -> Document:
    """What an endpoint's container needs to fetch features by record id: read one group's online
    store, nothing else (no PutRecord, no other group)."""
    return document(allow("ReadOnlineFeatures", list(FEATURE_LOOKUP_ACTIONS), [feature_group_arn]))


def model_package_group_policy(*, group_arn: str, reader_account_ids: list[str]) -> Document:
    """Let other accounts (staging, prod) read and deploy this group's packages."""
    package_arn = model_packages_arn(group_arn)
    principals = [f"arn:aws:iam::{account}:root" for account in reader_account_ids]
    return document(
        {
            "Sid": "ReadGroup",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackageGroup"],
            "Resource": group_arn,
        },
        {
            "Sid": "ReadPackages",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages", "sagemaker:CreateModel"],
            "Resource": package_arn,
        },
    )


def topic_policy(*, topic_arn: str, account_id: str) -> Document:
    """CloudWatch alarms and EventBridge rules of this account may publish to the alert topic."""
    return document({
        "Sid": "AlarmsAndEventsPublish",
        "Effect": "Allow",
        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    })


def wildcard_actions(doc: Document) -> list[str]:
    """Actions in Allow statements that are wildcards (`*`, `s3:*`, `s3:Get*`). An Allow with
    `NotAction` grants every action but the listed ones, so it counts as `NotAction:<listed>`."""
    found = []
    for statement in _statements(doc):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            excluded = statement["NotAction"]
            found.append(f"NotAction:{excluded if isinstance(excluded, str) else ','.join(excluded)}")
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if "*" in action:
                found.append(action)
    return found


def _statements(doc: Document) -> list[Document]:
    statements = doc.get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def plain_service_trust(service: str) -> Document:
    """Trust policy for a service that AWS documents without confused-deputy conditions (EKS, EC2)."""
    return document({
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    })


def irsa_trust(*, provider_arn: str, issuer: str, namespace: str, service_account: str) -> Document:
    """IAM Roles for Service Accounts: only pods of one service account in one namespace, presenting a
    token the cluster's OIDC issuer signed for STS, may assume the role."""
    host = issuer.removeprefix("https://")
    return document({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{host}:aud": "sts.amazonaws.com",
        }},
    })


TRAINING_WRITE_PREFIXES = ("models", "checkpoints")
"""Where training pods write in the artifacts bucket: model artifacts and their S3 checkpoints."""


def training_pod_policy(*, features_bucket_arn: str, artifacts_bucket_arn: str, key_arn: str, model_package_group_arns: list[str]) -> Document:
    """What the team's training pods on EKS may do: read the team's feature data, write its artifacts
    and checkpoints (and prune old checkpoints), and register the model versions they train."""
    writes = [f"{artifacts_bucket_arn}/{prefix}/*" for prefix in TRAINING_WRITE_PREFIXES]
    return document(
        allow("ListFeaturesAndArtifacts", ["s3:ListBucket", "s3:GetBucketLocation"], [features_bucket_arn, artifacts_bucket_arn]),
        allow("ReadFeatureData", ["s3:GetObject"], [f"{features_bucket_arn}/*"]),
        allow("WriteArtifacts", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], writes),
        allow("PruneCheckpoints", ["s3:DeleteObject"], [f"{artifacts_bucket_arn}/checkpoints/*"]),
        _kms_statement(key_arn, grants=False),
        _register_models_statement(model_package_group_arns),
    )


def eks_cluster_key_policy(*, key_arn: str) -> Document:
    """The EKS cluster role envelope-encrypts Kubernetes secrets with the stack's key."""
    return document(allow("EncryptKubernetesSecrets", ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"], [key_arn]))


def eks_node_image_policy(*, repository_arns: list[str]) -> Document:
    """Nodes pull the team's images and no other private ones (public add-on images need no IAM)."""
    return document(*_ecr_pull_statements(repository_arns))


def retrain_starter_policy(*, pipeline_arn: str, log_group_arn: str, queue_arn: str, key_arn: str) -> Document:
    """The retraining starter function (functions/retrain_starter.py): see and start this one pipeline's
    executions, write its own log group, hand failed events to its dead-letter queue (encrypted with
    the stack key)."""
    return document(
        allow("StartThisPipeline", ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"], [pipeline_arn]),
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group_arn, f"{log_group_arn}:*"]),
        allow("DeadLetterFailedEvents", ["sqs:SendMessage"], [queue_arn]),
        allow("UseStackKey", ["kms:Decrypt", "kms:GenerateDataKey"], [key_arn]),
    )


def scheduler_invoke_policy(*, function_arn: str) -> Document:
    """EventBridge Scheduler's role for the retraining schedule: invoke the starter function, nothing else."""
    return document(allow("InvokeRetrainStarter", ["lambda:InvokeFunction"], [function_arn, f"{function_arn}:*"]))


READ_VERBS = ("Get", "Describe", "List", "BatchGet", "BatchCheck")
"""Action names that start with these read and write nothing (s3:GetObject, ec2:DescribeSubnets...)."""


def is_write_action(action: str) -> bool:
    """Whether an IAM action may change something (anything but Get*, Describe*, List*, BatchGet*...)."""
    name = action.split(":", 1)[-1]
    return not name.startswith(READ_VERBS)


def unconditioned_wildcard_writes(doc: Document) -> list[str]:
    """`<Sid>:<action>` for each write action an Allow grants on Resource `*` without a Condition."""
    found = []
    for statement in _statements(doc):
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        resources = statement.get("Resource", [])
        if "*" not in ([resources] if isinstance(resources, str) else resources):
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if is_write_action(action):
                found.append(f"{statement.get('Sid', '?')}:{action}")
    return found


def allows(doc: Document, action: str, resource: str) -> bool:
    """Whether an Allow statement of `doc` matches `action` on `resource` (IAM's `*`/`?` wildcards).
    Conditions are ignored (counted as met), so this over-approximates: a False is a sure denial."""
    def matches(patterns: Any, value: str, *, case: bool) -> bool:
        values = [patterns] if isinstance(patterns, str) else list(patterns)
        return any(fnmatchcase(value if case else value.lower(), p if case else p.lower()) for p in values)

    return any(
        statement.get("Effect") == "Allow"
        and matches(statement.get("Action", []), action, case=False)
        and matches(statement.get("Resource", []), resource, case=True)
        for statement in _statements(doc)
    )
