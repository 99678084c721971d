"""SageMaker instance types, read from botocore's SageMaker service model.

Endpoint (hosting) and training instance types are different AWS enums: `ml.t2.medium` hosts but
cannot train, `ml.p3dn.24xlarge` trains but cannot host. We validate against the enum that the
botocore release in use ships, so a type AWS has just added is accepted after a botocore upgrade,
and a typo gets a "did you mean" from the same list.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: only the program entry point reads `pulumi.Config`; this package
validates what it read).
"""
from __future__ import annotations

import difflib
import functools

ENDPOINT_SHAPE = "ProductionVariantInstanceType"
TRAINING_SHAPE = "TrainingInstanceType"
PROCESSING_SHAPE = "ProcessingInstanceType"
EC2_SHAPE = "InstanceType"
"""In botocore's EC2 model (service "ec2"): the types of EKS node groups."""


@functools.cache
def allowed(shape: str, service: str = "sagemaker") -> tuple[str, ...]:
    """The instance types botocore's `service` model allows for `shape` (one of the *_SHAPE names)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    return tuple(model.shape_for(shape).enum)


def suggest(value: str, shape: str, service: str = "sagemaker") -> list[str]:
    """Up to three allowed instance types closest to `value`."""
    return difflib.get_close_matches(value, allowed(shape, service), n=3, cutoff=0.6)


def check(value: str, shape: str, *, purpose: str) -> str:
    """Return `value` if AWS allows it for `shape`, else raise ValueError with suggestions.

    `purpose` names the use in the message ("endpoint", "training", "processing").
    """
    if value in allowed(shape):
        return value
    hint = suggest(value, shape)
    family = value.rsplit(".", 1)[0] if value.count(".") >= 2 else ""
    same_family = [t for t in allowed(shape) if family and t.startswith(family + ".")]
    message = f"{value!r} is not a SageMaker {purpose} instance type"
    if hint:
        message += f"; did you mean {' or '.join(repr(h) for h in hint)}?"
    elif same_family:
        message += f"; {family} offers {', '.join(same_family[:8])}"
    else:
        message += f" (AWS enum {shape} has {len(allowed(shape))} values, e.g. 'ml.m5.xlarge')"
    raise ValueError(message)


def is_gpu(instance_type: str) -> bool:
    """True for NVIDIA GPU families (g*, p*), which need the CUDA image and GPU quotas."""
    family = instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""
    return family[:1] in {"g", "p"} and not family.startswith("gr")


# EC2 instance types for EKS GPU node groups. Families with NVIDIA GPUs on x86_64, which EKS's
# AL2023_x86_64_NVIDIA AMI supports (g5g is Arm, g4ad has AMD GPUs, g2/g3/p2 are past driver support).
EKS_GPU_FAMILIES = frozenset({
    "g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300",
})
# GPUs per instance where it is not 1 (AWS's accelerated-computing instance tables).
_MULTI_GPU = {
    "g4dn.12xlarge": 4, "g4dn.metal": 8,
    "g5.12xlarge": 4, "g5.24xlarge": 4, "g5.48xlarge": 8,
    "g6.12xlarge": 4, "g6.24xlarge": 4, "g6.48xlarge": 8,
    "g6e.12xlarge": 4, "g6e.24xlarge": 4, "g6e.48xlarge": 8,
    "p3.8xlarge": 4, "p3.16xlarge": 8, "p3dn.24xlarge": 8,
}
_EIGHT_GPU_FAMILIES = frozenset({"p4d", "p4de", "p5e", "p5en", "p6-b200", "p6-b300"})


def check_eks_gpu(value: str) -> str:
    """Return `value` if it is an EC2 instance type with NVIDIA GPUs for an EKS GPU node group."""
    if value.startswith("ml."):
        raise ValueError(f"{value!r} is a SageMaker instance type; EKS node groups take EC2 types such as {value[3:]!r}")
    family = check_ec2(value).split(".", 1)[0]
    if family not in EKS_GPU_FAMILIES:
        raise ValueError(
            f"{value!r} has no NVIDIA GPU that EKS's NVIDIA AMI supports; allowed families: {', '.join(sorted(EKS_GPU_FAMILIES))}"
        )
    return value


def check_ec2(value: str) -> str:
    """Return `value` if it is an EC2 instance type (the system node group)."""
    if value not in allowed(EC2_SHAPE, "ec2"):
        hint = suggest(value, EC2_SHAPE, "ec2")
        raise ValueError(f"{value!r} is not an EC2 instance type" + (f"; did you mean {' or '.join(map(repr, hint))}?" if hint else ""))
    return value


def nvidia_gpus(ec2_type: str) -> int:
    """GPUs on one instance of an EKS GPU type."""
    family = ec2_type.split(".", 1)[0]
    if family in _EIGHT_GPU_FAMILIES or ec2_type == "p5.48xlarge":
        return 8
    return _MULTI_GPU.get(ec2_type, 1)
