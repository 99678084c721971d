"""TrainingCluster: the team's GPU training capacity on EKS.

Kind `eks` of `training` (kind `sagemaker` is the Retraining component's SageMaker Pipeline). With
`cluster.mode: create` the stack owns an EKS cluster: a small system node group, a GPU managed node
group (NVIDIA AMI, `nvidia.com/gpu` taint, minimum 0), the NVIDIA device plugin and the cluster
autoscaler that scales the GPU group from and to zero. With `mode: existing` it reads a platform
cluster from another stack (StackReference). Either way it gives the team, through
pulumi-kubernetes, a namespace with a GPU ResourceQuota, a LimitRange, priority classes and a
service account bound to an IAM role (IRSA) that reads the team's feature data, writes its
artifacts and checkpoints and registers its models, and nothing else. Per model: the headless
Service that distributed runs rendezvous through, the feature schema as a ConfigMap and, when
`training.schedule` is set, a CronJob. `mlops train --stack S` submits one-off runs from the same
Job template (specs.k8s).

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from specs import iam, tracking
from components._validation import raise_input_problems, required_name
from specs.config.schema import CreatedCluster, EksTraining, ExistingCluster, Network
from specs.naming import Namer
from specs.k8s import cluster_autoscaler, device_plugin, gpu_pool, network_policy, team_namespace, training_job
from specs.pipelines import retraining as retraining_pipeline

TOKEN = "mlops:training_cluster:TrainingCluster"
SYSTEM_POOL_LABEL = {"mlops.dev/pool": "system"}
CLUSTER_LOG_TYPES = ["api", "audit", "authenticator"]
EXISTING_CLUSTER_OUTPUTS = ("kubeconfig", "clusterName", "oidcProviderArn", "oidcIssuer")
"""What a `mode: existing` cluster's stack must export (a `mode: create` stack exports them)."""
SERVICE_ACCOUNT = "training"
"""The service account training pods run as; the pod IAM role trusts only it."""


def kubeconfig(*, cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig for the cluster that authenticates with `aws eks get-token` (the caller's AWS
    credentials; the cluster creator is an admin through the API authentication mode)."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            "interactiveMode": "Never",
        }
    }
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}],
        "users": [{"name": cluster_name, "user": user}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
    }, sort_keys=True)


def team_namespace_spec(*, namer: Namer, eks: EksTraining, role_arn: pulumi.Input[str]) -> team_namespace.TeamNamespaceSpec:
    """The team's namespace, quota and identity on the cluster."""
    return team_namespace.TeamNamespaceSpec(
        namespace=namer.namespace(),
        team=namer.team,
        environment=namer.environment,
        labels={},
        gpu_quota=eks.quota.gpus,
        cpu_quota=str(eks.quota.cpu),
        memory_quota=f"{eks.quota.memory_gib}Gi",
        max_pods=eks.quota.pods,
        service_account=SERVICE_ACCOUNT,
        role_arn=role_arn,
    )


def gpu_node_labels(eks: EksTraining) -> dict[str, str]:
    """Labels of the GPU nodes training pods are scheduled on."""
    if isinstance(eks.cluster, ExistingCluster):
        return dict(eks.cluster.gpu_node_labels)
    return dict(gpu_pool.GPU_POOL_LABEL)


def job_spec(
    *,
    namer: Namer,
    region: str,
    eks: EksTraining,
    model: str,
    training_image: str,
    train_uri: pulumi.Input[str],
    hyperparameters: dict[str, pulumi.Input[str]],
    artifacts_bucket: str,
    max_runtime_seconds: int,
    tracking_uri: pulumi.Input[str] | None = None,
) -> training_job.TrainingJobSpec:
    """One model's run template. The stack declares its CronJob from it with Outputs for the values AWS
    assigns; `mlops train` renders a Job from it with those values read back as strings."""
    return training_job.TrainingJobSpec(
        namespace=namer.namespace(),
        model=model,
        service_account=SERVICE_ACCOUNT,
        image=training_image,
        nodes=eks.nodes,
        gpus_per_node=eks.gpus_per_node,
        cpu=str(eks.cpu_per_node),
        memory=f"{eks.memory_gib_per_node}Gi",
        priority_class=team_namespace.priority_class_name(namer.namespace(), eks.priority),
        region=region,
        train_uri=train_uri,
        schema_config_map=training_job.schema_config_map_name(model),
        hyperparameters=dict(hyperparameters),
        checkpoint_uri=retraining_pipeline.checkpoints_uri(artifacts_bucket, model),
        max_runtime_seconds=max_runtime_seconds,
        node_selector=gpu_node_labels(eks) if eks.gpus_per_node > 0 else {},
        tracking_uri=tracking_uri,
    )


@dataclass(frozen=True, kw_only=True)
class ModelTraining:
    """What one model's runs need."""

    feature_schema: dict
    """The model's feature_schema.json (specs.feature_schema)."""
    train_uri: pulumi.Input[str]
    """The feature group's offline store prefix."""
    hyperparameters: dict[str, pulumi.Input[str]]
    """Every hyperparameter as a string, registration settings included (model_version is added per run)."""
    schedule: str | None = None
    """Kubernetes cron (already converted from the config's EventBridge expression); None: no CronJob."""


@dataclass(frozen=True, kw_only=True)
class TrainingClusterArgs:
    """Inputs of TrainingCluster."""

    namer: Namer
    region: str
    config: EksTraining
    network: Network | None
    """Required to create a cluster: its subnets (two Availability Zones at least)."""
    training_image: str
    kms_key_arn: pulumi.Input[str]
    features_bucket_arn: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    artifacts_bucket: str
    """The artifacts bucket's name (Foundation sets it explicitly, so it is known before deployment)."""
    repository_arns: list[pulumi.Input[str]]
    """The team's ECR repositories, which the nodes of a created cluster may pull from."""
    model_package_group_arns: list[str]
    max_runtime_seconds: int
    models: dict[str, ModelTraining] = field(default_factory=dict)
    tracking_server_arn: pulumi.Input[str] | None = None
    """The MLflow tracking server the runs log to (issue #20): the pods get MLFLOW_TRACKING_URI and their
    role what a run does on that server (specs.tracking.client_policy). @default none."""
    cluster_autoscaler_digest: str | None = None
    """The digest the created cluster's autoscaler image tag resolved to (`Images.cluster_autoscaler_digest`). @default none: the tag."""
    tracking_artifacts_bucket_arn: pulumi.Input[str] | None = None
    """The server's artifact store bucket when this stack owns the server (the pods may upload there). @default none."""
    tags: dict[str, str]


class TrainingCluster(pulumi.ComponentResource):
    """An EKS GPU node pool (created or shared) and the team's namespace, identity and job templates."""

    cluster: aws.eks.Cluster | None
    """The created cluster (None with `mode: existing`)."""
    gpu_node_group: aws.eks.NodeGroup | None
    provider: k8s.Provider
    namespace: str
    pod_role: aws.iam.Role
    """Assumed by the team's training pods through IRSA."""
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret."""
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    job_templates: dict[str, training_job.TrainingJobSpec]
    """Per model: the spec `mlops train` renders a run from (resolved values are filled in at submit time)."""

    def __init__(self, name: str, args: TrainingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        _validate(args)
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namer = args.namer
        cluster = args.config.cluster
        self.cluster = None
        self.gpu_node_group = None
        if isinstance(cluster, CreatedCluster):
            assert args.network is not None  # _validate
            self._create_cluster(name, args, cluster, args.network, child)
        else:
            self._existing_cluster(name, cluster, child)
        # Kubernetes objects wait for the nodes of a cluster we create (an existing one has none to wait for).
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=self._node_groups)

        self.namespace = namer.namespace()
        self.pod_role = aws.iam.Role(
            f"{name}-pod-role",
            name=namer.role("training-pods"),
            description=f"Training pods of namespace {self.namespace} (IRSA, service account {SERVICE_ACCOUNT})",
            assume_role_policy=pulumi.Output.all(self.oidc_provider_arn, self.oidc_issuer).apply(
                lambda o: json.dumps(iam.irsa_trust(provider_arn=o[0], issuer=o[1], namespace=self.namespace, service_account=SERVICE_ACCOUNT))
            ),
            max_session_duration=3600 * 12,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-pod-policy",
            role=self.pod_role.id,
            policy=pulumi.Output.all(args.features_bucket_arn, args.artifacts_bucket_arn, args.kms_key_arn).apply(
                lambda o: json.dumps(iam.training_pod_policy(
                    features_bucket_arn=o[0], artifacts_bucket_arn=o[1], key_arn=o[2],
                    model_package_group_arns=list(args.model_package_group_arns),
                ))
            ),
            opts=child,
        )
        if args.tracking_server_arn is not None:
            aws.iam.RolePolicy(
                f"{name}-pod-tracking-access",
                role=self.pod_role.id,
                policy=pulumi.Output.all(args.tracking_server_arn, args.tracking_artifacts_bucket_arn).apply(
                    lambda v: json.dumps(tracking.client_policy(v[0], artifacts_bucket_arn=v[1]))),
                opts=child,
            )

        team = team_namespace_spec(namer=namer, eks=args.config, role_arn=self.pod_role.arn)
        ns = self._apply(f"{name}-namespace", team_namespace.namespace(team), k8s_opts)
        in_ns = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[ns]))
        self._apply(f"{name}-quota", team_namespace.resource_quota(team), in_ns)
        self._apply(f"{name}-limits", team_namespace.limit_range(team), in_ns)
        for obj in team_namespace.priority_classes(team):
            self._apply(f"{name}-{obj['metadata']['name'].removeprefix(self.namespace + '-')}", obj, k8s_opts)
        self._apply(f"{name}-service-account", team_namespace.service_account(team), in_ns)
        for obj in network_policy.network_policies(namespace=team.namespace, labels=team.common_labels()):
            self._apply(f"{name}-{obj['metadata']['name']}", obj, in_ns)

        self.job_templates = {}
        for model, spec in args.models.items():
            job = job_spec(
                namer=namer, region=args.region, eks=args.config, model=model, training_image=args.training_image,
                train_uri=spec.train_uri, hyperparameters=spec.hyperparameters, artifacts_bucket=args.artifacts_bucket,
                max_runtime_seconds=args.max_runtime_seconds, tracking_uri=args.tracking_server_arn,
            )
            self.job_templates[model] = job
            self._apply(f"{name}-{model}-schema", training_job.feature_schema_config_map(job, spec.feature_schema), in_ns)
            self._apply(f"{name}-{model}-rendezvous", training_job.headless_service(job), in_ns)
            if spec.schedule:
                self._apply(f"{name}-{model}-schedule", training_job.cron_job(job, schedule=spec.schedule), in_ns)

        self.register_outputs({
            "clusterName": self.cluster_name,
            "namespace": self.namespace,
            "podRoleArn": self.pod_role.arn,
            "oidcProviderArn": self.oidc_provider_arn,
        })

    # -- cluster ---------------------------------------------------------------------------

    def _create_cluster(self, name: str, args: TrainingClusterArgs, cluster: CreatedCluster, network: Network, child: pulumi.ResourceOptions) -> None:
        """`mode: create`: control plane, node groups, the Kubernetes provider and the cluster's add-ons, in that order."""
        oidc = self._control_plane(name, args, cluster, network, child)
        self._create_node_groups(name, args, cluster, network, child)
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority,
        ).apply(lambda o: kubeconfig(cluster_name=o[0], endpoint=o[1], certificate_authority=_ca_data(o[2]), region=args.region)))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=child)
        self._cluster_add_ons(name, args, cluster, oidc, child)

    def _control_plane(self, name: str, args: TrainingClusterArgs, cluster: CreatedCluster, network: Network,
                       child: pulumi.ResourceOptions) -> aws.iam.OpenIdConnectProvider:
        """The EKS cluster, its IAM role and its OIDC provider (which IRSA roles trust)."""
        namer = args.namer
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            name=namer.role("eks-cluster"),
            description="EKS control plane of the team's training cluster",
            assume_role_policy=json.dumps(iam.plain_service_trust("eks.amazonaws.com")),
            managed_policy_arns=["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"],
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-cluster-key-policy",
            role=cluster_role.id,
            policy=pulumi.Output.from_input(args.kms_key_arn).apply(lambda arn: json.dumps(iam.eks_cluster_key_policy(key_arn=arn))),
            opts=child,
        )
        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=namer.eks_cluster(),
            role_arn=cluster_role.arn,
            version=cluster.kubernetes_version,
            vpc_config={
                "subnet_ids": list(network.subnet_ids),
                "security_group_ids": list(network.security_group_ids),
                "endpoint_private_access": True,
                "endpoint_public_access": cluster.endpoint_public_access,
                **({"public_access_cidrs": list(cluster.public_access_cidrs)} if cluster.endpoint_public_access else {}),
            },
            encryption_config={"resources": ["secrets"], "provider": {"key_arn": args.kms_key_arn}},
            enabled_cluster_log_types=CLUSTER_LOG_TYPES,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            tags=args.tags,
            opts=child,
        )
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer),
            client_id_lists=["sts.amazonaws.com"],
            tags=args.tags,
            opts=child,
        )
        self.cluster_name = self.cluster.name
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer = oidc.url
        return oidc

    def _create_node_groups(self, name: str, args: TrainingClusterArgs, cluster: CreatedCluster, network: Network,
                            child: pulumi.ResourceOptions) -> None:
        """The nodes' IAM role and the system and GPU node groups."""
        node_role = aws.iam.Role(
            f"{name}-node-role",
            name=args.namer.role("eks-nodes"),
            description="Nodes of the team's training cluster",
            assume_role_policy=json.dumps(iam.plain_service_trust("ec2.amazonaws.com")),
            managed_policy_arns=[
                "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
            ],
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-node-images-policy",
            role=node_role.id,
            policy=pulumi.Output.all(*args.repository_arns).apply(
                lambda arns: json.dumps(iam.eks_node_image_policy(repository_arns=list(arns)))
            ),
            opts=child,
        )
        system = self._node_group(
            name, args, network, node_role, "system", ami_type="AL2023_x86_64_STANDARD",
            instance_types=[cluster.system_nodes.instance_type],
            min_size=cluster.system_nodes.min_size, max_size=cluster.system_nodes.max_size, labels=SYSTEM_POOL_LABEL,
        )
        pool = cluster.gpu_nodes
        self.gpu_node_group = self._node_group(
            name, args, network, node_role, "gpu", ami_type="AL2023_x86_64_NVIDIA", instance_types=list(pool.instance_types),
            min_size=pool.min_size, max_size=pool.max_size, labels=dict(gpu_pool.GPU_POOL_LABEL),
            capacity_type=pool.capacity_type, disk_size=pool.disk_size_gb, taints=[gpu_pool.eks_taint(gpu_pool.GPU_TAINT)],
        )
        self._node_groups = [system, self.gpu_node_group]

    def _node_group(self, name: str, args: TrainingClusterArgs, network: Network, node_role: aws.iam.Role, pool: str, *,
                    ami_type: str, instance_types: list[str], min_size: int, max_size: int, labels: dict[str, str],
                    **settings: Any) -> aws.eks.NodeGroup:
        assert self.cluster is not None  # _control_plane ran first
        return aws.eks.NodeGroup(
            f"{name}-{pool}-nodes",
            cluster_name=self.cluster.name,
            node_group_name=args.namer.node_group(pool),
            node_role_arn=node_role.arn,
            subnet_ids=list(network.subnet_ids),
            ami_type=ami_type,
            instance_types=instance_types,
            scaling_config={"min_size": min_size, "max_size": max_size, "desired_size": min_size},
            update_config={"max_unavailable": 1},
            labels=labels,
            tags=args.tags,
            # The autoscaler owns desired sizes once the groups exist; Pulumi must not reset them.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
            **settings,
        )

    def _cluster_add_ons(self, name: str, args: TrainingClusterArgs, cluster: CreatedCluster,
                         oidc: aws.iam.OpenIdConnectProvider, child: pulumi.ResourceOptions) -> None:
        """Add-ons of a cluster we own: GPUs become schedulable, and the GPU group scales from zero."""
        namer = args.namer
        system_opts = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=self._node_groups)
        self._apply(f"{name}-nvidia-device-plugin", device_plugin.nvidia_device_plugin(node_selector=dict(gpu_pool.GPU_POOL_LABEL)), system_opts)
        # The team namespace's NetworkPolicies are enforced only when the VPC CNI runs its network
        # policy agent: the managed add-on with enableNetworkPolicy (it replaces the self-managed CNI).
        aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=self.cluster_name,
            addon_name="vpc-cni",
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION, sort_keys=True),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        autoscaler_role = aws.iam.Role(
            f"{name}-autoscaler-role",
            name=namer.role("cluster-autoscaler"),
            description="Cluster autoscaler of the team's training cluster (IRSA)",
            assume_role_policy=pulumi.Output.all(oidc.arn, oidc.url).apply(lambda o: json.dumps(iam.irsa_trust(
                provider_arn=o[0], issuer=o[1], namespace="kube-system", service_account=cluster_autoscaler.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
            ))),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-autoscaler-policy",
            role=autoscaler_role.id,
            policy=json.dumps(cluster_autoscaler.cluster_autoscaler_policy(namer.eks_cluster())),
            opts=child,
        )
        for obj in cluster_autoscaler.cluster_autoscaler(
            cluster_name=namer.eks_cluster(), region=args.region, role_arn=autoscaler_role.arn,
            kubernetes_version=cluster.kubernetes_version, image_digest=args.cluster_autoscaler_digest,
        ):
            self._apply(f"{name}-autoscaler-{_snake(obj['kind'])}-{obj['metadata']['name']}", obj, system_opts)

    def _existing_cluster(self, name: str, cluster: ExistingCluster, child: pulumi.ResourceOptions) -> None:
        ref = pulumi.StackReference(f"{name}-platform", stack_name=cluster.stack, opts=child)
        self._node_groups = []
        self.cluster_name = ref.require_output("clusterName")
        self.oidc_provider_arn = ref.require_output("oidcProviderArn")
        self.oidc_issuer = ref.require_output("oidcIssuer")
        self.kubeconfig = pulumi.Output.secret(ref.require_output("kubeconfig"))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, opts=child)

    # -- Kubernetes objects ----------------------------------------------------------------

    def _apply(self, name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        """Declare a rendered object as its typed pulumi-kubernetes resource."""
        cls = _KINDS.get((obj["apiVersion"], obj["kind"]))
        if cls is None:
            raise ValueError(f"no pulumi-kubernetes resource for {obj['apiVersion']} {obj['kind']}")
        kwargs = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        return cls(name, **kwargs, opts=opts)


VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
"""The vpc-cni add-on's configuration: enforce Kubernetes NetworkPolicies (specs.k8s.network_policy)."""

_KINDS: dict[tuple[str, str], type[pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
    ("v1", "LimitRange"): k8s.core.v1.LimitRange,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("scheduling.k8s.io/v1", "PriorityClass"): k8s.scheduling.v1.PriorityClass,
    ("batch/v1", "CronJob"): k8s.batch.v1.CronJob,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
}


def _ca_data(certificate_authority: Any) -> str:
    """The cluster CA's base64 data, whether the provider hands a typed output or a plain dict."""
    if certificate_authority is None:
        return ""
    if isinstance(certificate_authority, dict):
        return certificate_authority.get("data") or ""
    return certificate_authority.data or ""


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _validate(args: TrainingClusterArgs) -> None:
    problems = required_name("artifacts_bucket", args.artifacts_bucket)
    if isinstance(args.config.cluster, CreatedCluster) and args.network is None:
        problems.append(("network", "creating an EKS cluster needs the team's network (subnets in two Availability Zones)"))
    for model, spec in args.models.items():
        if not spec.hyperparameters.get("model_package_group_name"):
            problems.append((f"models.{model}.hyperparameters", "runs must register into the model's Model Package Group"))
    if args.max_runtime_seconds < 1:
        problems.append(("max_runtime_seconds", f"must be at least 1, got {args.max_runtime_seconds}"))
    raise_input_problems("TrainingCluster", problems)
