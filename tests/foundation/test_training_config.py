"""Training on EKS (`training.kind: eks`): what the config accepts, and the runs it refuses because
Kubernetes could never schedule them. Each error names the file, the field and what is allowed."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from specs.config.schema import TrainingConfig

OVR = "mlops:overrides"


def _eks(d):
    return d["training"]["eks"]


def test_shipped_eks_stacks_are_valid(cli):
    for env in ("dev", "staging", "prod"):
        result = cli("config", "validate", "--stack", f"pricing-{env}")
        assert result.exit_code == 0, result.stderr


def test_kind_eks_needs_its_section():
    with pytest.raises(ValidationError, match="kind 'eks' needs an `eks` section"):
        TrainingConfig(kind="eks")


def test_eks_section_without_kind_eks_is_refused():
    with pytest.raises(ValidationError, match="`eks` applies to kind 'eks' only"):
        TrainingConfig(eks={"cluster": {"mode": "create"}})


def test_sagemaker_only_fields_are_refused_with_kind_eks(edit, invalid):
    edit("teams/pricing.yaml", lambda d: d["training"].update(instance_type="ml.g5.xlarge", use_spot=True))
    invalid("pricing-dev", "teams/pricing.yaml: training:",
             "instance_type, use_spot apply to kind 'sagemaker' only", "eks.cluster.gpu_nodes")


def test_sagemaker_instance_type_in_the_gpu_pool_gets_the_ec2_spelling(edit, invalid):
    edit("teams/pricing.yaml", lambda d: _eks(d)["cluster"]["gpu_nodes"].update(instance_types=["ml.g5.xlarge"]))
    invalid("pricing-dev", "training.eks.cluster.create.gpu_nodes.instance_types.0:",
             "'ml.g5.xlarge' is a SageMaker instance type; EKS node groups take EC2 types such as 'g5.xlarge'")


def test_cpu_or_arm_instance_types_are_refused_for_the_gpu_pool(edit, invalid):
    edit("teams/pricing.yaml", lambda d: _eks(d)["cluster"]["gpu_nodes"].update(instance_types=["m6i.large", "g5g.xlarge"]))
    err = invalid("pricing-dev", "'m6i.large' has no NVIDIA GPU that EKS's NVIDIA AMI supports",
                   "'g5g.xlarge' has no NVIDIA GPU")
    assert "allowed families: g4dn, g5, g6" in err


def test_creating_a_cluster_without_a_network_is_refused(edit, invalid):
    edit("Pulumi.pricing-dev.yaml", lambda d: d["config"][OVR].pop("network"))
    invalid("pricing-dev", "training.eks.cluster.mode:", "creating an EKS cluster needs `network`")


def test_a_single_subnet_is_refused_for_a_cluster(edit, invalid):
    edit("Pulumi.pricing-dev.yaml", lambda d: d["config"][OVR]["network"].update(subnet_ids=["subnet-0d1e2f3a4b5c6d7e9"]))
    invalid("pricing-dev", "network.subnet_ids:", "EKS needs subnets in at least two Availability Zones")


def test_a_run_larger_than_the_team_quota_is_refused(edit, invalid):
    edit("Pulumi.pricing-prod.yaml", lambda d: d["config"][OVR]["training"]["eks"]["quota"].update(gpus=4))
    invalid("pricing-prod", "training.eks.quota.gpus:",
             "one run requests 8 GPUs (nodes x per-node) but the namespace quota allows 4")


def test_more_gpus_per_pod_than_an_instance_has_is_refused(edit, invalid):
    edit("Pulumi.pricing-prod.yaml", lambda d: d["config"][OVR]["training"]["eks"]["cluster"]["gpu_nodes"].update(instance_types=["g5.12xlarge", "g5.xlarge"]))
    invalid("pricing-prod", "training.eks.gpus_per_node:", "g5.xlarge has 1 GPU(s); a pod must fit on every instance type of the pool")


def test_more_nodes_than_the_pool_can_grow_to_is_refused(edit, invalid):
    edit("Pulumi.pricing-prod.yaml", lambda d: d["config"][OVR]["training"]["eks"]["cluster"]["gpu_nodes"].update(max_size=1))
    invalid("pricing-prod", "training.eks.nodes:", "a run needs 2 GPU nodes at once but gpu_nodes.max_size is 1")


def test_public_api_endpoint_needs_narrow_cidrs():
    with pytest.raises(ValidationError, match="endpoint_public_access needs public_access_cidrs"):
        TrainingConfig(kind="eks", eks={"cluster": {"mode": "create", "endpoint_public_access": True}})


def test_existing_cluster_takes_no_node_pools(edit, invalid):
    edit("Pulumi.pricing-staging.yaml", lambda d: d["config"][OVR]["training"]["eks"]["cluster"].pop("gpu_nodes"))
    invalid("pricing-staging", "training.eks.cluster.existing.gpu_nodes: unknown key")


def test_the_local_environment_cannot_train_on_eks(edit, invalid):
    edit("Pulumi.demo-local.yaml", lambda d: d["config"].setdefault(OVR, {}).update(training={
        "kind": "eks", "instance_type": None, "eks": {"cluster": {"mode": "existing", "stack": "o/p/s"}},
    }))
    invalid("demo-local", "training.kind:", "the local environment has no Kubernetes cluster; allowed here: sagemaker")


def test_a_schedule_kubernetes_cron_cannot_express_is_refused_for_kind_eks(edit, invalid):
    edit("teams/pricing.yaml", lambda d: d["training"].update(schedule="cron(0 4 L * ? *)"))
    invalid("pricing-dev", "teams/pricing.yaml: training.schedule:",
             "becomes a Kubernetes CronJob with kind eks:", "uses 'L' (last), which Kubernetes cron does not support")


def test_unsupported_kubernetes_version_lists_the_supported_ones():
    with pytest.raises(ValidationError, match=r"Kubernetes version '1.27' is not supported; allowed: 1.28, .*1.36"):
        TrainingConfig(kind="eks", eks={"cluster": {"mode": "create", "kubernetes_version": "1.27"}})
