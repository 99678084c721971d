"""CI workflows for GitHub Actions and GitLab CI, rendered from `mlops/templates/`, and the
changed-stack detection those workflows run.

What the workflows do:
- pull requests: the tests, then `mlops plan` and `pulumi preview` for each stack the change touches;
- main: the tests, then `pulumi up` for the dev stacks the push touched;
- promotion (started by hand with team, model and target): `mlops promote` into staging or prod in a
  job bound to that environment, whose required reviewers (GitHub environments, GitLab protected
  environments) approve it; the job commits the pin and the audit line, then deploys;
- automatic rollout (scheduled every 15 minutes, dev): `mlops rollout --environment dev --commit`, one
  step per opted-in endpoint, each committed and pushed before `pulumi up` applies it.
AWS access is OIDC web identity only: every job assumes a role; no access key exists anywhere.
Only the jobs that assume a role get `id-token: write`; pull requests assume a read-only preview role
and never one of prod. The dev deploy job builds both images with Buildx (tag: the commit SHA,
CODE_VERSION: the commit SHA), pushes them, waits for ECR's scan on push and fails on CRITICAL or HIGH
findings, then writes their digests into the stack file it applies (`mlops ci pin-images`).
Supply chain: every action is pinned by the full commit SHA of a release tag (ACTIONS), the Pulumi
CLI by version (PULUMI_VERSION, the SDK version of constraints.txt), GitLab's Pulumi image by tag.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import io
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from specs.config import stack_files
from specs.templates import ENV as COMPONENT_TEMPLATES

TEMPLATE_DIR = Path(__file__).parent / "templates"

# The one jinja2 environment (specs.templates.ENV: StrictUndefined, filters, escaping rules)
# overlaid with our template folder and other delimiters: GitHub Actions expressions are written
# `${{ ... }}`, which jinja2's default `{{ ... }}` would try to evaluate. `<%= x %>` never occurs in
# YAML or shell, so workflow templates read like the workflows they produce.
TEMPLATES = COMPONENT_TEMPLATES.overlay(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    variable_start_string="<%=",
    variable_end_string="%>",
    block_start_string="<%",
    block_end_string="%>",
    comment_start_string="<%#",
    comment_end_string="#%>",
    # A block tag on a line of its own leaves no blank line or indentation behind.
    trim_blocks=True,
    lstrip_blocks=True,
)


ACTIONS: dict[str, tuple[str, str]] = {
    # action: (commit of the release tag, the tag). Read from each action's own repository
    # (`git for-each-ref refs/tags`, annotated tags peeled); bump both together.
    "actions/checkout": ("34e114876b0b11c390a56381ad16ebd13914f8d5", "v4.3.1"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "aws-actions/configure-aws-credentials": ("7474bc4690e29a8392af63c5b98e7449536d5c3a", "v4.3.1"),
    "aws-actions/amazon-ecr-login": ("03f1aad4c6c7ffd436567f42f9384779290529bd", "v2.1.7"),
    "docker/setup-buildx-action": ("8d2750c68a42422c14e847fe6c8ac0403b4cbd6f", "v3.12.0"),
    "pulumi/actions": ("8582a9e8cc630786854029b4e09281acd6794b58", "v6.6.1"),
}
"""GitHub actions the workflows use, each pinned by the full SHA of a release (a tag can be moved)."""

PULUMI_VERSION = "3.272.0"
"""The Pulumi CLI the workflows install: the version of the `pulumi` SDK in constraints.txt."""
PULUMI_IMAGE = f"pulumi/pulumi-python:{PULUMI_VERSION}"
"""GitLab's job image for Pulumi: the CLI at PULUMI_VERSION with Python (instead of `curl | sh`)."""
DOCKER_IMAGE = "docker:27.5.1-dind@sha256:aa3df78ecf320f5fafdce71c659f1629e96e9de0968305fe1de670e0ca9176ce"
"""GitLab's image build job: Docker 27.5.1 with Buildx, as its image and its Docker-in-Docker service,
pinned by digest."""


def uses(action: str) -> str:
    """`owner/name@<sha> # <tag>` for a `uses:` line; an action not in ACTIONS is an error."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not pinned; pinned: {', '.join(ACTIONS)}")
    sha, tag = ACTIONS[action]
    return f"{action}@{sha} # {tag}"


def render(name: str, **context: object) -> str:
    """Render `mlops/templates/<name>`; a missing variable raises jinja2.UndefinedError."""
    return TEMPLATES.get_template(name).render(**context)


PROVIDERS: dict[str, dict[str, str]] = {
    "github": {
        ".github/workflows/pull-request.yml": "github-pull-request.yml.j2",
        ".github/workflows/main.yml": "github-main.yml.j2",
        ".github/workflows/promote.yml": "github-promote.yml.j2",
        ".github/workflows/rollout.yml": "github-rollout.yml.j2",
    },
    "gitlab": {".gitlab-ci.yml": "gitlab-ci.yml.j2"},
}
"""Files each provider gets, relative to the output directory, and the template of each."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the templates need to know about the project."""

    python_version: str = "3.11"
    promotions: tuple[tuple[str, str], ...] = (("dev", "staging"), ("staging", "prod"))
    """(from, to) pairs a promotion job exists for."""
    stacks_dir: str = "stacks"
    """The stacks directory relative to the repository root (Pulumi's stackConfigDir)."""

    def context(self) -> dict[str, Any]:
        return {
            "python_version": self.python_version,
            "promotions": [{"source": s, "target": t} for s, t in self.promotions],
            "stacks_dir": self.stacks_dir,
            "environments": ["dev", "staging", "prod"],
            "uses": uses,
            "pulumi_version": PULUMI_VERSION,
            "pulumi_image": PULUMI_IMAGE,
            "docker_image": DOCKER_IMAGE,
        }


def generate(provider: str, out_dir: Path, *, settings: Settings | None = None) -> list[Path]:
    """Write `provider`'s workflow files under `out_dir`; returns their paths. Overwrites: they are generated."""
    if provider not in PROVIDERS:
        raise ValueError(f"--provider {provider!r} is not allowed; allowed: {', '.join(PROVIDERS)}")
    context = (settings or Settings()).context()
    written = []
    for relative, template in PROVIDERS[provider].items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, **context), encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Changed stacks

_STACK_FILE = re.compile(r"^Pulumi\.(?P<name>[a-z0-9-]+)\.yaml$")
_TEAM_FILE = re.compile(r"^teams/(?P<team>[a-z0-9-]+)\.yaml$")
PROGRAM_PATHS = ("__main__.py", "Pulumi.yaml", "components/", "policypack/", "pyproject.toml", "constraints.txt")
"""Paths every stack runs: a change there plans every stack."""


def changed_stacks(paths: Iterable[str], stacks: Iterable[str], *, stacks_prefix: str = "stacks/") -> list[str]:
    """The stacks a change to `paths` (repository-relative) affects, in the order of `stacks`.

    A stack file changes its stack; a team file changes every stack of that team; the program, the
    components, the policy pack or the dependencies change every stack.
    """
    stacks = list(stacks)
    hit: set[str] = set()
    for path in paths:
        if path.startswith(PROGRAM_PATHS) or path in PROGRAM_PATHS:
            return stacks
        if not path.startswith(stacks_prefix):
            continue
        inner = path[len(stacks_prefix):]
        if m := _STACK_FILE.match(inner):
            hit.add(m["name"])
        elif m := _TEAM_FILE.match(inner):
            hit.update(s for s in stacks if s.rsplit("-", 1)[0] == m["team"])
    return [s for s in stacks if s in hit]


def diff_paths(base: str | None) -> list[str] | None:
    """Paths changed between `base` and HEAD (git), or None when there is no usable base (first push)."""
    if not base or set(base) == {"0"}:
        return None
    verify = subprocess.run(["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=stack_files.ROOT, capture_output=True, check=False)
    if verify.returncode != 0:
        return None
    out = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"], cwd=stack_files.ROOT, capture_output=True, text=True, check=True,
    )
    return [line for line in out.stdout.splitlines() if line]


def stack_matrix(names: Iterable[str]) -> list[dict[str, str]]:
    """One CI matrix entry per stack: its name, environment (and upper-cased, for variable names), region.

    Left out: a stack file that no longer exists (deleted by the change: nothing to plan), and
    `local` stacks, which name moto's account and run only under `mlops local`, never against AWS.
    """
    entries = []
    for name in names:
        path = stack_files.stack_file(name)
        if not path.exists():
            continue
        config = stack_files.read_pulumi_config(path)
        environment = str(config.get(f"{stack_files.PROJECT}:environment", ""))
        if environment == "local":
            continue
        entries.append({
            "stack": name,
            "environment": environment,
            "environment_upper": environment.upper(),
            "region": str(config.get("aws:region", "")),
        })
    return entries


def format_matrix(entries: list[dict[str, str]], fmt: str) -> str:
    """`json` (a GitHub matrix `include` list) or `tsv` (stack, environment, region per line, for shells)."""
    if fmt == "json":
        return json.dumps(entries, separators=(",", ":"))
    if fmt == "tsv":
        return "".join(f"{e['stack']}\t{e['environment']}\t{e['region']}\n" for e in entries)
    raise ValueError(f"--format {fmt!r} is not allowed; allowed: json, tsv")


# --------------------------------------------------------------------------------------------
# Image digests

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PINNED_IMAGES = ("training", "serving", "cluster_autoscaler")
"""The images CI pins by digest: the team's two (built, scanned and pushed by the job) and, for a stack
that creates its EKS cluster, the cluster-autoscaler release its Kubernetes minor pins by tag (resolved
in registry.k8s.io by `docker buildx imagetools inspect`)."""


def cluster_autoscaler_image(config: Any) -> str | None:
    """The cluster-autoscaler image (by tag) a stack's created EKS cluster runs, or None (no cluster of its own)."""
    from specs.config.schema import CreatedCluster
    from specs.k8s.cluster_autoscaler import cluster_autoscaler_image as image_for

    eks = config.training.eks
    if config.training.kind != "eks" or eks is None or not isinstance(eks.cluster, CreatedCluster):
        return None
    return image_for(eks.cluster.kubernetes_version)


def pin_images_text(text: str, digests: dict[str, str]) -> str:
    """The stack file `text` with `images.<image>_digest` set under `mlops:overrides` for each
    `digests` entry ("training", "serving" or "cluster_autoscaler" -> `sha256:<64 hex>`).

    A ruamel round trip: comments, key order and quoting stay as they were. CI runs it on the stack
    file it is about to apply, so `pulumi up` runs exactly the images it built, scanned and pushed.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    for image, digest in digests.items():
        if image not in PINNED_IMAGES:
            raise ValueError(f"image {image!r} is not allowed; allowed: {', '.join(PINNED_IMAGES)}")
        if not _DIGEST.match(digest):
            raise ValueError(f"{image} digest {digest!r} is not allowed; allowed: sha256: and 64 lowercase hex digits")
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    doc = y.load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ValueError("the stack file has no `config:` mapping")
    key = f"{stack_files.PROJECT}:overrides"
    if not isinstance(doc["config"].get(key), dict):
        doc["config"][key] = CommentedMap()
    overrides = doc["config"][key]
    if not isinstance(overrides.get("images"), dict):
        overrides["images"] = CommentedMap()
    for image, digest in digests.items():
        overrides["images"][f"{image}_digest"] = digest
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()
