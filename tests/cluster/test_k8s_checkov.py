"""checkov's Kubernetes checks over every object the stack renders: none fails, and each check that
does not apply is skipped on the object itself with its reason (`checkov.io/skipN` annotations)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from checkov_tool import checkov_binary, run_checkov
from test_k8s_manifests import NOW, everything, training

from specs.k8s import training_job

DIGEST = "sha256:" + "ab" * 32


def rendered() -> list[dict[str, Any]]:
    """Every object kind the stack renders (NetworkPolicies included): CPU and GPU runs, single and
    multi-node, scheduled, and a Job whose image is pinned by digest."""
    objects = everything(gpus=8, nodes=4, schedule="0 3 * * 1") + everything(gpus=0, nodes=1, schedule=None)
    pinned = training(image=f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/t-dev-training@{DIGEST}")
    objects.append(training_job.job(pinned, name=training_job.job_name("pinned", now=NOW)))
    return objects


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory):
    if checkov_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed (scripts/bootstrap installs it into .venv-tools/checkov); CI must run it")
        pytest.skip("checkov is not installed: run scripts/bootstrap (it installs .venv-tools/checkov)")
    directory: Path = tmp_path_factory.mktemp("manifests")
    for i, obj in enumerate(rendered()):
        (directory / f"{i:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    return run_checkov(directory, "kubernetes")


def test_checkov_reports_no_failed_check_on_any_rendered_object(findings):
    assert [(f.check_id, f.file) for f in findings.failed] == []


def test_a_job_pinned_by_digest_carries_no_digest_skip_and_one_by_tag_does():
    by_tag = training_job.job(training(), name="by-tag")
    by_digest = training_job.job(training(image=f"r.example/t@{DIGEST}"), name="by-digest")
    assert any(v.startswith("CKV_K8S_43=") for v in by_tag["metadata"]["annotations"].values())
    assert not any(v.startswith("CKV_K8S_43=") for v in by_digest["metadata"]["annotations"].values())


def test_checkov_does_fail_the_objects_once_their_skips_and_hardening_are_removed(tmp_path):
    """The zero above is not checkov finding nothing: without the annotations and the hardening, the
    same objects fail the checks the annotations name."""
    if checkov_binary() is None:
        pytest.skip("checkov is not installed")
    for i, obj in enumerate(rendered()):
        obj["metadata"].pop("annotations", None)
        for c in _containers(obj):
            c.pop("securityContext", None)
            c.pop("resources", None)
        (tmp_path / f"{i:03d}.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    failed = {f.check_id for f in run_checkov(tmp_path, "kubernetes").failed}
    assert {"CKV_K8S_10", "CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_38", "CKV_K8S_40", "CKV_K8S_43"} <= failed


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template") or {}
    return (template.get("spec") or {}).get("containers", [])
