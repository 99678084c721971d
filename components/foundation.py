"""Foundation: the KMS key, buckets, image repositories and IAM roles every other component uses.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlops_contracts import metrics
from specs import hosting, iam
from components._validation import Problem, raise_input_problems, required_name
from components.bucket import SecureBucket, SecureBucketArgs
from specs.config.schema import Network
from specs.naming import Namer

TOKEN = "mlops:foundation:Foundation"
IMAGES = ("training", "serving")
FEATURE_STORE_DATABASE = "sagemaker_featurestore"
"""Feature Store creates each offline store's Glue table in this database (AWS refuses a custom
DataCatalogConfig while it auto-creates the table)."""
ECR_LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "Drop untagged layers after 7 days",
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "Keep the 50 newest tagged images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
            "action": {"type": "expire"},
        },
    ]
}


def image_uri(*, account_id: str, region: str, repository: str, tag: str, digest: str | None = None) -> str:
    """The ECR image URI: `<repository>@<digest>` when a digest is given, else `<repository>:<tag>`;
    computed, not read from the repository, so content hashes are stable."""
    base = f"{account_id}.dkr.ecr.{region}.amazonaws.com/{repository}"
    return f"{base}@{digest}" if digest else f"{base}:{tag}"


@dataclass(frozen=True, kw_only=True)
class FoundationArgs:
    """Inputs of Foundation."""

    namer: Namer
    region: str
    models: list[str]
    """The team's model keys; the pipeline role may register into their Model Package Groups."""
    network: Network | None = None
    """The team's VPC, where jobs and endpoints run: the job roles may create network interfaces only in
    its subnets and manage them only in it. @default none (no network-interface permission at all)."""
    ground_truth_uris: list[str] = field(default_factory=list)
    """Where the models' ground truth is (s3:// prefixes): the monitoring role reads them. @default none."""
    tags: dict[str, str]
    force_destroy_buckets: bool = False
    """Let `pulumi destroy` remove buckets that still hold data. @default false; true only for local and dev."""


class Foundation(pulumi.ComponentResource):
    """KMS key, the features/artifacts/capture buckets, ECR repositories and least-privilege roles."""

    key: aws.kms.Key
    buckets: dict[str, SecureBucket]
    """By purpose: features, artifacts, capture."""
    repositories: dict[str, aws.ecr.Repository]
    """By image: training, serving."""
    job_roles: dict[str, aws.iam.Role]
    """By job kind (specs.iam.JOB_ROLES): training, hosting, monitoring, pipeline; one role each,
    assumed by SageMaker for that kind of job only."""
    feature_store_role: aws.iam.Role
    """Assumed by SageMaker Feature Store to write the offline store."""
    key_arn: pulumi.Output[str]
    role_arns: dict[str, pulumi.Output[str]]
    """By job kind: the ARN of its role."""

    def __init__(self, name: str, args: FoundationArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("Foundation", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._create_key(name, args, child)
        self.buckets = {
            purpose: SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(bucket=args.namer.bucket(purpose), kms_key_arn=self.key.arn, tags=args.tags, force_destroy=args.force_destroy_buckets),
                opts=child,
            )
            for purpose in ("features", "artifacts", "capture")
        }
        self._create_repositories(name, args, child)
        self._create_job_roles(name, args, child)
        self._create_feature_store_role(name, args, child)
        self.register_outputs({
            "keyArn": self.key.arn,
            "jobRoleArns": dict(self.role_arns),
            "featureStoreRoleArn": self.feature_store_role.arn,
            "buckets": {purpose: b.name for purpose, b in self.buckets.items()},
            "repositoryUrls": {image: r.repository_url for image, r in self.repositories.items()},
        })

    def _create_key(self, name: str, args: FoundationArgs, child: pulumi.ResourceOptions) -> None:
        """The stack's customer-managed KMS key and its alias."""
        namer = args.namer
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"mlops {namer.prefix}: data, artifacts, captures, feature store, alerts",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(iam.kms_key_policy(account_id=namer.account_id, region=args.region)),
            tags=args.tags,
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=namer.kms_alias(), target_key_id=self.key.key_id, opts=child)
        self.key_arn = self.key.arn

    def _create_repositories(self, name: str, args: FoundationArgs, child: pulumi.ResourceOptions) -> None:
        """One immutable, scanned, KMS-encrypted ECR repository per image, with its lifecycle policy."""
        self.repositories = {}
        for image in IMAGES:
            repo = aws.ecr.Repository(
                f"{name}-{image}-repo",
                name=args.namer.ecr_repository(image),
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration={"scan_on_push": True},
                encryption_configurations=[{"encryption_type": "KMS", "kms_key": self.key.arn}],
                tags=args.tags,
                opts=child,
            )
            aws.ecr.LifecyclePolicy(f"{name}-{image}-lifecycle", repository=repo.name, policy=json.dumps(ECR_LIFECYCLE), opts=child)
            self.repositories[image] = repo

    def _create_job_roles(self, name: str, args: FoundationArgs, child: pulumi.ResourceOptions) -> None:
        """One SageMaker role per job kind, each with its own least-privilege policy (specs.iam)."""
        namer, account = args.namer, args.namer.account_id
        self.job_roles, self.role_arns = {}, {}
        arns = {job: hosting.role_arn(namer, iam.role_purpose(job)) for job in iam.JOB_ROLES}
        for job in iam.JOB_ROLES:
            role = aws.iam.Role(
                f"{name}-{job}-role",
                name=namer.role(iam.role_purpose(job)),
                description=f"SageMaker {job} for this team and environment ({job} jobs only)",
                assume_role_policy=json.dumps(iam.service_trust("sagemaker.amazonaws.com", account)),
                max_session_duration=3600 * 12,
                tags=args.tags,
                opts=child,
            )
            policy = pulumi.Output.all(
                features=self.buckets["features"].arn,
                artifacts=self.buckets["artifacts"].arn,
                capture=self.buckets["capture"].arn,
                key=self.key.arn,
                training_repo=self.repositories["training"].arn,
                serving_repo=self.repositories["serving"].arn,
            ).apply(lambda o, job=job: json.dumps(_job_policy(job, o, args=args, arns=arns)))
            aws.iam.RolePolicy(f"{name}-{job}-policy", role=role.id, policy=policy, opts=child)
            self.job_roles[job] = role
            self.role_arns[job] = role.arn

    def _create_feature_store_role(self, name: str, args: FoundationArgs, child: pulumi.ResourceOptions) -> None:
        """The role Feature Store assumes to write the offline store, and its policy."""
        namer, account = args.namer, args.namer.account_id
        self.feature_store_role = aws.iam.Role(
            f"{name}-feature-store-role",
            name=namer.role("feature-store"),
            description="SageMaker Feature Store offline store writes for this team and environment",
            assume_role_policy=json.dumps(iam.service_trust("sagemaker.amazonaws.com", account)),
            tags=args.tags,
            opts=child,
        )
        feature_policy = pulumi.Output.all(self.buckets["features"].arn, self.key.arn).apply(
            lambda o: json.dumps(iam.feature_store_policy(
                account_id=account, region=args.region, bucket_arn=o[0], key_arn=o[1], database=FEATURE_STORE_DATABASE
            ))
        )
        aws.iam.RolePolicy(f"{name}-feature-store-policy", role=self.feature_store_role.id, policy=feature_policy, opts=child)


def _job_policy(job: str, o: dict[str, str], *, args: FoundationArgs, arns: dict[str, str]) -> iam.Document:
    """The policy document of one job kind's role, once the buckets, key and repositories are known."""
    namer = args.namer
    network = args.network
    scope = iam.JobScope(
        account_id=namer.account_id, region=args.region, key_arn=o["key"],
        metric_namespaces=("/aws/sagemaker/*", metrics.NAMESPACE),
        vpc=iam.VpcScope(vpc_id=network.vpc_id, subnet_ids=tuple(network.subnet_ids), security_group_ids=tuple(network.security_group_ids))
        if network is not None else None,
    )
    if job == "training":
        return iam.training_job_policy(scope=scope, features_bucket_arn=o["features"], artifacts_bucket_arn=o["artifacts"],
                                       repository_arns=[o["training_repo"]])
    if job == "hosting":
        return iam.hosting_policy(scope=scope, artifacts_bucket_arn=o["artifacts"], capture_bucket_arn=o["capture"],
                                  repository_arns=[o["serving_repo"]])
    if job == "monitoring":
        return iam.monitoring_policy(scope=scope, artifacts_bucket_arn=o["artifacts"], capture_bucket_arn=o["capture"],
                                     ground_truth_uris=list(args.ground_truth_uris), repository_arns=[o["serving_repo"]])
    return iam.pipeline_policy(
        scope=scope, features_bucket_arn=o["features"], artifacts_bucket_arn=o["artifacts"], capture_bucket_arn=o["capture"],
        repository_arns=[o["training_repo"]],
        model_package_group_arns=[namer.model_package_group_arn(model, region=args.region) for model in args.models],
        pipeline_role_arn=arns["pipeline"], training_role_arn=arns["training"],
    )


def _problems(args: FoundationArgs) -> list[Problem]:
    problems = required_name("region", args.region)
    for i, model in enumerate(args.models):
        problems += required_name(f"models[{i}]", model)
    return problems
