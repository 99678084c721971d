"""SageMaker instance types, read from botocore's SageMaker service model.

Endpoint (hosting) and training instance types are different AWS enums: `ml.t2.medium` hosts but
cannot train, `ml.p3dn.24xlarge` trains but cannot host. We validate against the enum that the
botocore release in use ships, so a type AWS has just added is accepted after a botocore upgrade,
and a typo gets a "did you mean" from the same list.
"""
from __future__ import annotations

import difflib
import functools

ENDPOINT_SHAPE = "ProductionVariantInstanceType"
TRAINING_SHAPE = "TrainingInstanceType"
PROCESSING_SHAPE = "ProcessingInstanceType"


@functools.cache
def allowed(shape: str) -> tuple[str, ...]:
    """The instance types botocore's SageMaker model allows for `shape` (one of the *_SHAPE names)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for(shape).enum)


def suggest(value: str, shape: str) -> list[str]:
    """Up to three allowed instance types closest to `value`."""
    return difflib.get_close_matches(value, allowed(shape), n=3, cutoff=0.6)


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
