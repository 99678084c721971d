"""TrainingCluster (kind eks) under Pulumi's mock runtime: a created cluster scales its GPU pool to zero,
GPU nodes are tainted and training pods tolerate exactly that taint, the team's namespace has a GPU
quota, and the pods' IAM role trusts only the team's service account in the team's namespace."""
from __future__ import annotations

import json

import pytest

from specs.config.schema import EksTraining, Network
from components.training_cluster import TOKEN, ModelTraining, TrainingCluster, TrainingClusterArgs, kubeconfig
from specs.k8s import cluster_autoscaler

NAME = "t-dev-training"
KEY = "arn:aws:kms:eu-west-1:111111111111:key/k"
NETWORK = Network(vpc_id="vpc-0123456789abcdef0", subnet_ids=["subnet-0123456789abcdef1", "subnet-0123456789abcdef2"],
                  security_group_ids=["sg-0123456789abcdef3"])
SCHEMA = {"format_version": 1, "label": "y", "task": "regression", "features": [{"name": "x", "type": "Fractional", "nullable": False}]}
HP = {"model_package_group_name": "t-dev-price", "artifact_s3_uri": "s3://t-dev-artifacts-111111111111/models", "epochs": "3"}
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE = "aws:iam/role:Role"


def eks_config(**overrides) -> EksTraining:
    base = {
        "cluster": {"mode": "create", "gpu_nodes": {"instance_types": ["g5.12xlarge"], "max_size": 3}},
        "nodes": 2, "gpus_per_node": 4, "cpu_per_node": 40, "memory_gib_per_node": 160,
        "quota": {"gpus": 8, "cpu": 96, "memory_gib": 400, "pods": 20},
    }
    return EksTraining.model_validate({**base, **overrides})


def build(mock_pulumi, namer, *, config: EksTraining, network: Network | None = NETWORK, schedule: str | None = "0 4 * * 0",
          hyperparameters: dict[str, str] = HP, max_runtime_seconds: int = 7200, refused: bool = False):
    run = mock_pulumi.refused if refused else mock_pulumi.run
    return run(lambda: TrainingCluster(NAME, TrainingClusterArgs(
        namer=namer, region="eu-west-1", config=config, network=network, training_image="img:train",
        kms_key_arn=KEY, features_bucket_arn="arn:aws:s3:::t-dev-features-111111111111",
        artifacts_bucket_arn="arn:aws:s3:::t-dev-artifacts-111111111111", artifacts_bucket="t-dev-artifacts-111111111111",
        repository_arns=["arn:aws:ecr:eu-west-1:111111111111:repository/t/dev/training"],
        model_package_group_arns=["arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/t-dev-price"],
        max_runtime_seconds=max_runtime_seconds,
        models={"price": ModelTraining(feature_schema=SCHEMA, train_uri="s3://t-dev-features-111111111111/offline/price",
                                       hyperparameters=hyperparameters, schedule=schedule)},
        tags=mock_pulumi.tags,
    )))


@pytest.fixture
def created(mock_pulumi, namer):
    return build(mock_pulumi, namer, config=eks_config())


def test_created_cluster_has_tainted_gpu_pool_that_scales_to_zero_and_a_system_pool(created, mock_pulumi):
    gpu = created.one(EKS_NODE_GROUP, f"{NAME}-gpu-nodes")
    system = created.one(EKS_NODE_GROUP, f"{NAME}-system-nodes")
    assert gpu.parent == system.parent == mock_pulumi.top_urn(TOKEN, NAME)
    assert gpu.inputs["nodeGroupName"] == "t-dev-gpu"
    assert gpu.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["instanceTypes"] == ["g5.12xlarge"]
    assert gpu.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 3}
    assert gpu.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu.inputs["labels"] == {"mlops.dev/pool": "gpu"}
    assert system.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert "taints" not in system.inputs
    assert system.inputs["scalingConfig"]["minSize"] == 2
    assert gpu.inputs["tags"] == mock_pulumi.tags


def test_cluster_is_private_encrypts_secrets_and_logs_the_api(created):
    cluster = created.one("aws:eks/cluster:Cluster", f"{NAME}-cluster")
    assert cluster.inputs["name"] == "t-dev-training"
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert cluster.inputs["vpcConfig"]["subnetIds"] == list(NETWORK.subnet_ids)
    assert cluster.inputs["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": KEY}}
    assert set(cluster.inputs["enabledClusterLogTypes"]) >= {"api", "audit"}


def test_training_pods_tolerate_exactly_the_gpu_taint_and_request_their_gpus(created):
    [cron] = created.of_type("kubernetes:batch/v1:CronJob")
    pod = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [taint] = created.one(EKS_NODE_GROUP, f"{NAME}-gpu-nodes").inputs["taints"]
    assert pod["tolerations"] == [{"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {"mlops.dev/pool": "gpu"}
    [container] = pod["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert cron.inputs["spec"]["schedule"] == "0 4 * * 0"
    assert cron.inputs["spec"]["jobTemplate"]["spec"]["completions"] == 2
    assert "--nnodes=2" in container["args"] and "--nproc-per-node=4" in container["args"]


def test_device_plugin_runs_on_the_tainted_gpu_nodes(created):
    [plugin] = created.of_type("kubernetes:apps/v1:DaemonSet")
    pod = plugin.inputs["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"mlops.dev/pool": "gpu"}
    assert plugin.inputs["metadata"]["namespace"] == "kube-system"


def test_created_cluster_enforces_network_policies_and_the_team_namespace_denies_by_default(created):
    addon = created.one("aws:eks/addon:Addon", f"{NAME}-vpc-cni")
    assert addon.inputs["addonName"] == "vpc-cni"
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    policies = {p.inputs["metadata"]["name"]: p for p in created.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    assert set(policies) == {"default-deny", "allow-training-egress"}
    assert {p.inputs["metadata"]["namespace"] for p in policies.values()} == {"t-dev"}
    assert policies["default-deny"].inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_team_namespace_has_a_gpu_quota_limits_and_priority_classes(created):
    [ns] = created.of_type("kubernetes:core/v1:Namespace")
    assert ns.inputs["metadata"]["name"] == "t-dev"
    assert ns.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    [quota] = created.of_type("kubernetes:core/v1:ResourceQuota")
    assert quota.inputs["metadata"]["namespace"] == "t-dev"
    assert quota.inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    assert quota.inputs["spec"]["hard"]["requests.cpu"] == "96"
    assert len(created.of_type("kubernetes:core/v1:LimitRange")) == 1
    classes = sorted(p.inputs["metadata"]["name"] for p in created.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass"))
    assert classes == ["t-dev-training-high", "t-dev-training-low", "t-dev-training-normal"]
    [cron] = created.of_type("kubernetes:batch/v1:CronJob")
    assert cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["priorityClassName"] == "t-dev-training-normal"


def test_pod_role_trusts_only_the_teams_service_account_through_the_clusters_oidc_provider(created):
    role = created.one(ROLE, f"{NAME}-pod-role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    oidc = created.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider", f"{NAME}-oidc")
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert statement["Principal"] == {"Federated": oidc.outputs["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    [(sub_key, sub), (aud_key, aud)] = sorted(statement["Condition"]["StringEquals"].items(), reverse=True)
    assert sub_key.endswith(":sub") and sub == "system:serviceaccount:t-dev:training"
    assert aud_key.endswith(":aud") and aud == "sts.amazonaws.com"
    [sa] = [a for a in created.of_type("kubernetes:core/v1:ServiceAccount") if a.inputs["metadata"]["namespace"] == "t-dev"]
    assert sa.inputs["metadata"]["name"] == "training"
    assert sa.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == role.outputs["arn"]


def test_pod_policy_reads_features_and_writes_only_artifacts(created):
    policy = json.loads(created.one("aws:iam/rolePolicy:RolePolicy", f"{NAME}-pod-policy").inputs["policy"])
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["ReadFeatureData"] == ["arn:aws:s3:::t-dev-features-111111111111/*"]
    assert resources["WriteArtifacts"] == [
        "arn:aws:s3:::t-dev-artifacts-111111111111/models/*", "arn:aws:s3:::t-dev-artifacts-111111111111/checkpoints/*",
    ]


def test_autoscaler_gets_its_own_irsa_role_in_kube_system(created):
    role = created.one(ROLE, f"{NAME}-autoscaler-role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subjects = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == [f"system:serviceaccount:kube-system:{cluster_autoscaler.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}"]
    [deployment] = created.of_type("kubernetes:apps/v1:Deployment")
    args = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["command"] + deployment.inputs["spec"]["template"]["spec"]["containers"][0].get("args", [])
    assert any("k8s.io/cluster-autoscaler/t-dev-training" in a for a in args)


def test_every_kubernetes_object_goes_through_the_clusters_provider(created):
    provider = created.one("pulumi:providers:kubernetes", f"{NAME}-k8s")
    k8s_objects = [r for r in created.resources if r.type.startswith("kubernetes:")]
    assert len(k8s_objects) >= 12
    for r in k8s_objects:
        assert r.parent is not None and TOKEN in r.parent
        # Not the ambient kubeconfig's cluster: each object names the provider built from this cluster.
        assert created.monitor.providers[r.urn].startswith(provider.urn + "::"), (r.name, created.monitor.providers[r.urn])
    assert not any(created.monitor.providers[r.urn] for r in created.resources if r.type.startswith("aws:"))
    assert provider.inputs["kubeconfig"] == "[secret]"


def test_no_schedule_no_cronjob_but_the_rendezvous_service_and_schema_exist(mock_pulumi, namer):
    run = build(mock_pulumi, namer, config=eks_config(), schedule=None)
    assert run.of_type("kubernetes:batch/v1:CronJob") == []
    [service] = run.of_type("kubernetes:core/v1:Service")
    assert service.inputs["spec"]["clusterIP"] == "None"
    [schema] = run.of_type("kubernetes:core/v1:ConfigMap")
    assert json.loads(schema.inputs["data"]["feature_schema.json"]) == SCHEMA


def test_existing_cluster_is_read_from_the_platform_stack_and_creates_no_cluster(mock_pulumi, namer):
    config = eks_config(cluster={"mode": "existing", "stack": "acme/eks-platform/dev", "gpu_node_labels": {"pool": "a100"}})
    run = build(mock_pulumi, namer, config=config, network=None)
    assert run.of_type("aws:eks/cluster:Cluster") == [] and run.of_type(EKS_NODE_GROUP) == []
    assert run.of_type("kubernetes:apps/v1:DaemonSet") == []  # the platform owns its add-ons
    # The StackReference is a read, not a registration; its stand-in outputs (mlops.plan.PlanMocks) flow in.
    assert run.one("pulumi:providers:kubernetes", f"{NAME}-k8s").inputs["kubeconfig"] == "[secret]"
    [statement] = json.loads(run.one(ROLE, f"{NAME}-pod-role").inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OFFLINE-PLAN")
    [cron] = run.of_type("kubernetes:batch/v1:CronJob")
    assert cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "a100"}


NO_NETWORK = ("network", "creating an EKS cluster needs the team's network (subnets in two Availability Zones)")


def test_creating_without_a_network_is_an_input_error(mock_pulumi, namer):
    problems = build(mock_pulumi, namer, config=eks_config(), network=None, refused=True)
    assert problems == [NO_NETWORK]


def test_missing_network_unregistered_runs_and_a_negative_runtime_are_reported_together(mock_pulumi, namer):
    hyperparameters = {k: v for k, v in HP.items() if k != "model_package_group_name"}
    problems = build(mock_pulumi, namer, config=eks_config(), network=None, hyperparameters=hyperparameters,
                     max_runtime_seconds=-1, refused=True)
    assert problems == [
        NO_NETWORK,
        ("models.price.hyperparameters", "runs must register into the model's Model Package Group"),
        ("max_runtime_seconds", "must be at least 1, got -1"),
    ]


def test_kubeconfig_authenticates_with_aws_eks_get_token():
    config = json.loads(kubeconfig(cluster_name="c", endpoint="https://x.eks.amazonaws.com", certificate_authority="Q0E=", region="eu-west-1"))
    [user] = config["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"] == ["eks", "get-token", "--cluster-name", "c", "--region", "eu-west-1", "--output", "json"]
    assert config["clusters"][0]["cluster"] == {"server": "https://x.eks.amazonaws.com", "certificate-authority-data": "Q0E="}
