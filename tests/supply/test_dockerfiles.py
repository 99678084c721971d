"""The Dockerfiles keep SageMaker's contract (root, writable /opt/ml) while the EKS pods' non-root uid
can still write there, pin their bases by digest, install one torch version, and carry a HEALTHCHECK."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from specs.k8s.training_job import RUN_AS_USER, pod_security_context

ROOT = Path(__file__).resolve().parents[2]
DIGEST_FROM = re.compile(r"^FROM (?P<image>[\w./-]+):(?P<tag>[\w.-]+)@sha256:[0-9a-f]{64}$", re.MULTILINE)


def _dockerfile(image: str) -> str:
    return (ROOT / image / "Dockerfile").read_text()


def _instructions(text: str) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    return [l.strip() for l in joined.splitlines() if l.strip()]


@pytest.mark.parametrize("image", ["training", "serving"])
def test_images_run_as_root_for_sagemaker_and_pin_their_base_by_digest(image: str):
    text = _dockerfile(image)
    instructions = _instructions(text)
    assert not [i for i in instructions if i.startswith("USER")], "SageMaker expects root: no USER"
    assert [i for i in instructions if i.startswith("FROM")] == [m.group(0) for m in DIGEST_FROM.finditer(text)]
    assert len(DIGEST_FROM.findall(text)) == 1
    assert any(i.startswith("HEALTHCHECK") for i in instructions)
    assert any(i.startswith("ARG CODE_VERSION") for i in instructions)


def test_training_opt_ml_is_writable_by_the_pods_uid_and_group_zero():
    pod = pod_security_context()
    assert pod["runAsUser"] == pod["fsGroup"] == RUN_AS_USER
    run = " ".join(i for i in _instructions(_dockerfile("training")) if i.startswith("RUN"))
    assert f"useradd --create-home --uid {RUN_AS_USER} " in run
    assert f"chown -R {RUN_AS_USER}:0 /opt/ml" in run and "chmod -R g+rwX /opt/ml" in run
    for path in ("/opt/ml/model", "/opt/ml/output/data", "/opt/ml/input/data", "/opt/ml/input/config"):
        assert path in run


def test_serving_writable_paths_are_group_zero_writable():
    run = " ".join(i for i in _instructions(_dockerfile("serving")) if i.startswith("RUN"))
    assert "chown -R 10001:0 /var/lib/mlops-serving /opt/ml" in run and "chmod -R g+rwX /var/lib/mlops-serving /opt/ml" in run


def test_both_images_install_the_same_torch_version():
    training_base = DIGEST_FROM.search(_dockerfile("training"))
    assert training_base["image"] == "pytorch/pytorch"
    training_torch = training_base["tag"].split("-", 1)[0]
    [serving_torch] = re.findall(r"^ARG TORCH_VERSION=(\S+)$", _dockerfile("serving"), re.MULTILINE)
    assert training_torch == serving_torch
    import torch

    # the version the handoff test (test_model_handoff.py) runs both packages with
    assert torch.__version__.split("+")[0] == serving_torch


def test_the_training_image_installs_the_tracking_extra_the_pipelines_tracking_uri_needs():
    """With tracking on, the training job's MLFLOW_TRACKING_URI is a server ARN, which only the
    `sagemaker-mlflow` plugin of the `tracking` extra resolves and signs."""
    import tomllib

    [install] = [i for i in _instructions(_dockerfile("training")) if "pip install" in i]
    assert '"/opt/mlops-training[tracking]"' in install.split()
    extras = tomllib.loads((ROOT / "training" / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tracking"]
    assert any(req.startswith("sagemaker-mlflow") for req in extras)
