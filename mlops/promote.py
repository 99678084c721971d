"""`mlops promote` and `mlops rollback`: move a registered model version into the next environment.

Each environment has its own Model Package Group (`<team>-<env>-<model>`) and artifacts bucket,
usually in its own AWS account. Promoting source version N into a target environment:

1. gates, every one evaluated and reported: the package is Approved in the source registry; its
   metrics meet the target's thresholds and do not regress against the target's champion by more
   than `max_regression`; its schema.json is compatible with the target's feature store; the target
   stack, with the candidate pin written into a temporary copy of `stacks/`, still plans with zero
   mandatory policy findings;
2. the artifact (and metrics.json) is copied to `s3://<team>-<to>-artifacts-<account>/models/<model>/<V>/`;
3. a model package V is created Approved in the target group (the promotion is the approval and the
   audit record says who gave it), with `source_package_arn` in its CustomerMetadataProperties;
4. the endpoint variants serving the model (the first production variant, "the champion", or
   `--variant`) get `model_version: V` and `model_data_url` in the stack file's `mlops:overrides`,
   a round-trip YAML edit that keeps comments and key order, so the change is a reviewable diff;
5. one JSON line is appended to `stacks/audit/<team>.jsonl`.

Steps 1-5 run under an exclusive `flock` per target stack, and every file write is atomic (temp file
in the same directory, fsync, `os.replace`), so concurrent promotions serialize and never leave a
torn file.

Idempotency: promoting the version the target already pins (its pinned package's
`source_package_arn` is the source package) changes nothing: no package, no file change and no audit
line, so a retried CI job leaves the repository byte-identical. A package left by an interrupted
earlier run (same `source_package_arn`) is reused rather than registered twice.

`rollback` pins the previous champion: the pin before the current one in the audit log's history
for that team, environment and model (promotions push, rollbacks pop). Same gates except regression.

Access per environment: `MLOPS_AWS_PROFILE_<ENV>` (a named profile) or `MLOPS_AWS_ROLE_ARN_<ENV>` (a
role assumed from the ambient credentials); neither means the ambient credentials.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import fcntl
import getpass
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specs.config import stack_files
from specs import naming
from specs.config.schema import LOWER_IS_BETTER, TASK_METRICS, ShadowTraffic, StackConfig
from specs.feature_schema import feature_schema

PROMOTION_ORDER: tuple[str, ...] = ("dev", "staging", "prod")
"""Environments a model moves through, in order; promotion only moves forward."""
APPROVED = "Approved"
SOURCE_ARN_KEY = "source_package_arn"
METRIC_PREFIX = "metric_"
SCHEMA_MEMBER = "schema.json"
SCHEMA_FORMAT_VERSION = 1
PROFILE_ENV = "MLOPS_AWS_PROFILE_{env}"
ROLE_ENV = "MLOPS_AWS_ROLE_ARN_{env}"
# Regression and threshold comparisons forgive float noise from repr() round trips, nothing more.
_EPSILON = 1e-9


class PromotionError(ValueError):
    """The environment or its state does not allow the change (no registry group, no Approved
    version, no previous champion, an unreadable audit log, a missing tool): the CLI prints it as one
    line and exits 2, a configuration error. Nothing has been changed when it is raised."""


class PromotionUsageError(PromotionError):
    """An argument that names nothing or is not allowed (unknown team, model, version or variant, a
    backwards promotion, exclusive options): the CLI prints it as one line and exits 64, a usage error."""


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


class Refused(Exception):
    """At least one gate failed; nothing was changed. `str()` lists every failed gate."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        failed = [g for g in outcome.gates if not g.passed]
        super().__init__("\n".join([f"{outcome.action} refused: {len(failed)} gate(s) failed", *(f"  - {g.name}: {g.detail}" for g in failed)]))


@dataclass(frozen=True)
class PinTarget:
    """A variant the promotion pins: `endpoints.<endpoint>.traffic.<section>.<variant>`."""

    endpoint: str
    section: str
    """`variants` (single, ab), `production` or `shadow` (shadow mode)."""
    variant: str

    @property
    def ref(self) -> str:
        return f"{self.endpoint}/{self.variant}"

    @property
    def path(self) -> tuple[str, ...]:
        return ("endpoints", self.endpoint, "traffic", self.section, self.variant)


@dataclass(frozen=True)
class Pin:
    """What a variant serves: a version of the environment's model package group and its artifact."""

    version: int
    model_data_url: str
    package_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "model_data_url": self.model_data_url, "package_arn": self.package_arn}


@dataclass
class Outcome:
    """What a promotion or rollback did (or, refused or checked, would have done)."""

    action: str
    """`promote` or `rollback`."""
    status: str = "pending"
    """`promoted`, `rolled-back`, `no-op`, `checked` (read-only `--check`) or `refused`."""
    stack: str = ""
    gates: list[GateResult] = field(default_factory=list)
    diff: str = ""
    """Unified diff of the target stack file (empty for a no-op)."""
    pin: Pin | None = None
    previous: Pin | None = None
    targets: list[PinTarget] = field(default_factory=list)
    record: dict[str, Any] | None = None
    """The audit record appended (None for checks, no-ops and refusals)."""
    notes: list[str] = field(default_factory=list)
    applied: bool = False


# --------------------------------------------------------------------------------------------
# AWS access per environment


def access_for(environment: str) -> tuple[str | None, str | None]:
    """The profile name and the role ARN set for `environment` (at most one; neither: ambient credentials)."""
    profile = os.environ.get(PROFILE_ENV.format(env=environment.upper()))
    role = os.environ.get(ROLE_ENV.format(env=environment.upper()))
    if profile and role:
        raise PromotionError(
            f"both {PROFILE_ENV.format(env=environment.upper())} and {ROLE_ENV.format(env=environment.upper())} are set; "
            f"set one: a profile name or a role ARN to assume for {environment}"
        )
    return profile, role


def session_for(environment: str, region: str) -> Any:
    """A boto3 session for `environment`: its profile, a role assumed for it, or the ambient credentials."""
    import boto3

    profile, role = access_for(environment)
    if profile:
        return boto3.Session(profile_name=profile, region_name=region)
    if role:
        sts = boto3.Session(region_name=region).client("sts")
        creds = sts.assume_role(RoleArn=role, RoleSessionName=f"mlops-promote-{environment}")["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"], region_name=region,
        )
    return boto3.Session(region_name=region)


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


class Registry:
    """One environment's Model Package Group for one model."""

    def __init__(self, *, session: Any, group: str, environment: str):
        self.session = session
        """The environment's boto3 session (its S3 reads the environment's artifacts)."""
        self.sagemaker = session.client("sagemaker")
        self.group = group
        self.environment = environment

    def require_group(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=self.group)
        except ClientError as exc:
            raise PromotionError(
                f"model package group {self.group!r} not found in the {self.environment} registry "
                f"({_client_error_code(exc)}); deploy that stack first (`pulumi up`) so the group exists"
            ) from None

    def summaries(self) -> list[dict[str, Any]]:
        """Every version in the group, oldest first."""
        pages = self.sagemaker.get_paginator("list_model_packages").paginate(ModelPackageGroupName=self.group)
        found = [s for page in pages for s in page["ModelPackageSummaryList"]]
        return sorted(found, key=lambda s: s["ModelPackageVersion"])

    def describe(self, version: int) -> dict[str, Any] | None:
        """The package of `version`, or None when the group has no such version."""
        for summary in self.summaries():
            if summary["ModelPackageVersion"] == version:
                return self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        return None

    def latest_approved(self) -> int | None:
        approved = [s["ModelPackageVersion"] for s in self.summaries() if s.get("ModelApprovalStatus") == APPROVED]
        return max(approved) if approved else None

    def promoted_from(self, source_arn: str) -> dict[str, Any] | None:
        """The package an earlier promotion of `source_arn` registered here, newest first."""
        for summary in reversed(self.summaries()):
            package = self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if (package.get("CustomerMetadataProperties") or {}).get(SOURCE_ARN_KEY) == source_arn:
                return package
        return None


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"{url!r} is not an s3://bucket/key URL")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


# --------------------------------------------------------------------------------------------
# Gates (pure functions over plain data)


def package_metrics(package: Mapping[str, Any]) -> dict[str, float]:
    """Metrics a package carries as CustomerMetadataProperties `metric_<name>` (training's register.py)."""
    metrics = {}
    for key, value in (package.get("CustomerMetadataProperties") or {}).items():
        if key.startswith(METRIC_PREFIX):
            try:
                metrics[key[len(METRIC_PREFIX):]] = float(value)
            except ValueError:
                continue  # not a number: no gate can use it, and a gate on it reports it as missing
    return metrics


def _meets(metric: str, value: float, threshold: float) -> bool:
    return value <= threshold + _EPSILON if metric in LOWER_IS_BETTER else value >= threshold - _EPSILON


def threshold_gate(metrics: Mapping[str, float], gates: Mapping[str, float], *, where: str) -> GateResult:
    """Every gated metric present and on the right side of its threshold (a maximum for LOWER_IS_BETTER)."""
    if not gates:
        return GateResult("metrics", True, f"no metric gates configured in {where}")
    parts, ok = [], True
    for metric, threshold in gates.items():
        op = "<=" if metric in LOWER_IS_BETTER else ">="
        if metric not in metrics:
            ok = False
            parts.append(f"{metric} missing from the package (needs {op} {threshold:g})")
        elif not _meets(metric, metrics[metric], threshold):
            ok = False
            parts.append(f"{metric} {metrics[metric]:.4g} misses {op} {threshold:g}")
        else:
            parts.append(f"{metric} {metrics[metric]:.4g} {op} {threshold:g}")
    return GateResult("metrics", ok, f"{where}: " + "; ".join(parts))


def regression_gate(
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    compared: list[str],
    margin: float,
    champion_label: str,
) -> GateResult:
    """No compared metric worse than the champion's by more than `margin` (absolute)."""
    if champion is None:
        return GateResult("regression", True, f"no champion to compare with ({champion_label})")
    parts, ok = [], True
    for metric in compared:
        if metric not in champion:
            parts.append(f"{metric}: champion has none, not compared")
            continue
        if metric not in metrics:
            ok = False
            parts.append(f"{metric} missing from the package")
            continue
        worse_by = metrics[metric] - champion[metric] if metric in LOWER_IS_BETTER else champion[metric] - metrics[metric]
        if worse_by > margin + _EPSILON:
            ok = False
            parts.append(f"{metric} {metrics[metric]:.4g} is {worse_by:.4g} worse than the champion's {champion[metric]:.4g} (allowed {margin:g})")
        else:
            parts.append(f"{metric} {metrics[metric]:.4g} vs champion {champion[metric]:.4g}")
    if not parts:
        parts.append("no metric to compare")
    return GateResult("regression", ok, f"against {champion_label}: " + "; ".join(parts))


def compared_metrics(gates: Mapping[str, float], task: str) -> list[str]:
    """The metrics regression compares: the gated ones, else every metric of the task."""
    return list(gates) if gates else sorted(TASK_METRICS[task])


def schema_mismatches(model_schema: Mapping[str, Any], target_schema: Mapping[str, Any], *, group: str) -> list[str]:
    """Why a model trained on `model_schema` cannot be served from the target's feature group.

    Every model input must exist in the target with the same type, and the target must not allow
    nulls where the model was trained without them. Extra target features are fine (not inputs).
    """
    problems = []
    if model_schema.get("format_version") != SCHEMA_FORMAT_VERSION:
        return [f"schema.json format_version {model_schema.get('format_version')!r}; this reader knows {SCHEMA_FORMAT_VERSION}"]
    if model_schema.get("task") != target_schema["task"]:
        problems.append(f"task {model_schema.get('task')!r} in the model, {target_schema['task']!r} in the target")
    target = {f["name"]: f for f in target_schema["features"]}
    for feature in model_schema.get("features") or []:
        name = feature.get("name")
        mine = target.get(name)
        if mine is None:
            problems.append(f"input {name!r} is not a feature of the target's feature group {group!r}")
            continue
        if feature.get("type") != mine["type"]:
            problems.append(f"input {name!r} is {feature.get('type')} in the model, {mine['type']} in the target")
        if mine["nullable"] and not feature.get("nullable", False):
            problems.append(f"input {name!r} may be null in the target but the model was trained without nulls")
    return problems


def read_schema(archive: Path) -> dict[str, Any]:
    """schema.json from a model.tar.gz (docs/contracts.md section 2)."""
    with tarfile.open(archive, mode="r:gz") as tar:
        try:
            member = tar.getmember(SCHEMA_MEMBER)
        except KeyError:
            raise ValueError(f"the artifact has no {SCHEMA_MEMBER} (members: {', '.join(tar.getnames()) or 'none'})") from None
        fh = tar.extractfile(member)
        if fh is None:
            raise ValueError(f"{SCHEMA_MEMBER} in the artifact is not a regular file")
        return json.loads(fh.read())


# --------------------------------------------------------------------------------------------
# Pins in the stack file


def pin_targets(config: StackConfig, model: str, variant: str | None) -> list[PinTarget]:
    """The variants that serve `model`: each endpoint's first production variant, or `variant`."""
    endpoints = {name: ep for name, ep in config.endpoints.items() if ep.model == model}
    if not endpoints:
        raise PromotionError(
            f"no endpoint in stack {config.stack_name} serves model {model!r}; "
            f"endpoints: {', '.join(f'{n} (model {e.model})' for n, e in config.endpoints.items()) or 'none'}"
        )
    targets = []
    for name, endpoint in endpoints.items():
        shadow = isinstance(endpoint.traffic, ShadowTraffic)
        production = list(endpoint.production_variants())
        if variant is None:
            targets.append(PinTarget(name, "production" if shadow else "variants", production[0]))
        elif variant in production:
            targets.append(PinTarget(name, "production" if shadow else "variants", variant))
        elif variant in endpoint.shadow_variants():
            targets.append(PinTarget(name, "shadow", variant))
    if not targets:
        known = sorted({v for e in endpoints.values() for v in e.all_variants()})
        raise PromotionUsageError(f"no endpoint serving {model!r} in {config.stack_name} has a variant {variant!r}; variants: {', '.join(known)}")
    return targets


def current_pin(config: StackConfig, target: PinTarget) -> Pin:
    v = config.endpoints[target.endpoint].all_variants()[target.variant]
    return Pin(version=v.model_version, model_data_url=v.model_data_url)


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line: the diff must show only what changed
    y.indent(mapping=2, sequence=4, offset=2)
    # Merge patches use null to delete a key; ruamel would write an empty value, which reads the same
    # but hides the intent from a reviewer.
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def pin_text(text: str, targets: list[PinTarget], *, pin: Pin) -> str:
    """The stack file `text` with `pin` written under `mlops:overrides` for each target.

    A round-trip edit: comments, key order, quoting and flow style stay as they were, and
    `model_version` goes before `model_data_url` when it is new.
    """
    from ruamel.yaml.comments import CommentedMap

    y = _yaml()
    doc = y.load(text)
    assert isinstance(doc, Mapping) and isinstance(doc.get("config"), Mapping), "the stack file validated before pinning"
    config = doc["config"]
    if not isinstance(config.get(f"{stack_files.PROJECT}:overrides"), Mapping):
        config[f"{stack_files.PROJECT}:overrides"] = CommentedMap()
    for target in targets:
        node = config[f"{stack_files.PROJECT}:overrides"]
        for key in target.path:
            child = node.get(key)
            if child is None:
                child = CommentedMap()
                node[key] = child
            assert isinstance(child, Mapping), f"{key} is a mapping in a stack file that validated"
            node = child
        if "model_version" not in node and "model_data_url" in node:
            node.insert(list(node).index("model_data_url"), "model_version", pin.version)
        else:
            node["model_version"] = pin.version
        node["model_data_url"] = pin.model_data_url
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def unified_diff(before: str, after: str, *, path: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), fromfile=f"a/{path}", tofile=f"b/{path}"))


# --------------------------------------------------------------------------------------------
# Files: locks, atomic writes, the audit log


@contextlib.contextmanager
def stack_lock(stack: str) -> Iterator[None]:
    """Exclusive lock on one stack's read-modify-write (a lock file beside the stack files).

    flock locks an open file description, so two processes, or two threads opening it separately,
    exclude each other; the kernel drops the lock if the holder dies.
    """
    directory = stack_files.stacks_dir() / ".locks"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{stack}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so readers see the old or the new content, never a mix."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)


def audit_path(team: str) -> Path:
    return stack_files.stacks_dir() / "audit" / f"{team}.jsonl"


def append_audit(team: str, record: Mapping[str, Any]) -> Path:
    """Append one JSON line to the team's audit log, under a lock (other environments' promotions
    of the same team append to the same file under their own stack locks)."""
    path = audit_path(team)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=False, separators=(",", ":"), allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return path


def read_audit(team: str) -> list[dict[str, Any]]:
    """The team's audit records, oldest first. A line that is not JSON is an error naming it."""
    path = audit_path(team)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise PromotionError(f"{path}:{number}: not a JSON audit record ({exc.msg}); fix or remove that line") from None
    return records


def actor() -> str:
    """Who is promoting: the CI's user, else git's user.email, else the login name."""
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if os.environ.get(var):
            return os.environ[var]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        email = subprocess.run(
            ["git", "config", "user.email"], cwd=stack_files.ROOT, capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        if email:
            return email
    return os.environ.get("USER") or getpass.getuser()


def champion_history(records: list[dict[str, Any]], *, team: str, environment: str, model: str, refs: set[str]) -> list[dict[str, Any]]:
    """The champions of (team, environment, model), oldest first, replayed from the audit log:
    a promotion pushes its pin (after the pin it replaced, for the first one), a rollback pops."""
    history: list[dict[str, Any]] = []
    for r in records:
        if (r.get("team"), r.get("to"), r.get("model")) != (team, environment, model) or not refs & set(r.get("variants", [])):
            continue
        pinned = {"version": r["target_version"], "model_data_url": r["model_data_url"], "package_arn": r.get("target_package_arn")}
        if r.get("action") == "promote":
            if not history and r.get("previous"):
                history.append(r["previous"])
            history.append(pinned)
        elif r.get("action") == "rollback":
            if history:
                history.pop()
            if not history or history[-1]["version"] != pinned["version"]:
                history.append(pinned)
    return history


# --------------------------------------------------------------------------------------------
# The policy gate and `pulumi up`

# The Pulumi runtime (mocks, config, settings) is process-global and the plan reads the stacks
# directory from the environment, so one plan at a time per process.
_PLAN_LOCK = threading.Lock()


def policy_gate(*, stack: str, candidate_text: str, team: str) -> GateResult:
    """Plan the target stack with the candidate pin from a temporary copy of the stacks directory."""
    from specs import policies
    from mlops import plan as planner

    real = stack_files.stacks_dir()
    with tempfile.TemporaryDirectory(prefix="mlops-promote-") as tmp, _PLAN_LOCK:
        copy_dir = Path(tmp) / "stacks"
        (copy_dir / "teams").mkdir(parents=True)
        shutil.copy2(real / "teams" / f"{team}.yaml", copy_dir / "teams" / f"{team}.yaml")
        (copy_dir / f"Pulumi.{stack}.yaml").write_text(candidate_text, encoding="utf-8")
        previous = os.environ.get(stack_files.STACKS_ENV)
        os.environ[stack_files.STACKS_ENV] = str(copy_dir)
        try:
            result = planner.plan_stack(stack)
        except stack_files.ConfigError as exc:
            return GateResult("policy", False, "the pinned stack does not validate: " + "; ".join(p.replace(str(copy_dir), str(real)) for p in exc.problems))
        finally:
            if previous is None:
                os.environ.pop(stack_files.STACKS_ENV, None)
            else:
                os.environ[stack_files.STACKS_ENV] = previous
    findings = policies.evaluate(result.resources, environment=result.config.environment)
    mandatory = [f for f in findings if f.mandatory]
    if mandatory:
        return GateResult("policy", False, f"{len(mandatory)} mandatory policy violation(s): " + "; ".join(f"{f.policy}: {f.resource}: {f.message}" for f in mandatory))
    advisory = len(findings) - len(mandatory)
    return GateResult("policy", True, f"{stack} plans {len(result.resources)} resources with 0 mandatory violations ({advisory} advisory)")


def check_apply_possible() -> str:
    """The Pulumi CLI's path, or PromotionError; called before anything changes."""
    cli = shutil.which("pulumi")
    if cli is None:
        raise PromotionError(
            "--apply needs the Pulumi CLI, which is not on PATH (https://www.pulumi.com/docs/install/); "
            "nothing was changed: install it, or run without --apply and deploy with `pulumi up` later"
        )
    if stack_files.stacks_dir().resolve() != (stack_files.ROOT / "stacks").resolve():
        raise PromotionError(
            f"--apply deploys with Pulumi, which reads stack files from the project's stacks/ (stackConfigDir), "
            f"not {stack_files.stacks_dir()}; unset {stack_files.STACKS_ENV} or drop --apply; nothing was changed"
        )
    return cli


def pulumi_up(stack: str, *, on_output: Callable[[str], Any] = print) -> Any:
    """`pulumi up` for `stack` through the Automation API, with the project's policy pack enforced."""
    from pulumi import automation as auto

    workspace_stack = auto.select_stack(stack_name=stack, work_dir=str(stack_files.ROOT))
    return workspace_stack.up(on_output=on_output, policy_packs=[str(stack_files.ROOT / "policypack")])


# --------------------------------------------------------------------------------------------
# Promotion


@dataclass(frozen=True, kw_only=True)
class PromoteRequest:
    """`mlops promote`'s arguments."""

    team: str
    model: str
    source: str
    target: str
    version: int | None = None
    """Source version; default: the newest Approved one."""
    variant: str | None = None
    """Variant to pin; default: each serving endpoint's first production variant (the champion)."""
    check: bool = False
    """Run every gate against AWS, read-only, and show the diff; change nothing."""
    apply: bool = False


def promote_preflight(request: PromoteRequest) -> tuple[StackConfig, StackConfig]:
    """The checks that need no AWS call: environments, exclusive options, both stacks, the model and
    the variant. Returns the source and target stacks' configs."""
    _check_environments(request.source, request.target)
    if request.check and request.apply:
        raise PromotionUsageError("--check and --apply exclude each other: a check changes nothing, --apply deploys")
    _, source_config = _load(request.team, request.source)
    _, target_config = _load(request.team, request.target)
    for config in (source_config, target_config):
        if request.model not in config.model_registry.models:
            raise PromotionUsageError(f"model {request.model!r} is not defined in {config.stack_name}; models: {', '.join(config.model_registry.models) or 'none'}")
    pin_targets(target_config, request.model, request.variant)  # a wrong --variant fails before any AWS call
    return source_config, target_config


def _check_environments(source: str, target: str) -> None:
    for flag, env in (("--from", source), ("--to", target)):
        if env not in PROMOTION_ORDER:
            raise PromotionUsageError(f"{flag} {env!r} is not allowed; allowed: {', '.join(PROMOTION_ORDER)}")
    if PROMOTION_ORDER.index(target) <= PROMOTION_ORDER.index(source):
        raise PromotionUsageError(f"cannot promote from {source} to {target}: promotion moves forward ({' -> '.join(PROMOTION_ORDER)})")


def _load(team: str, environment: str) -> tuple[stack_files.StackSource, StackConfig]:
    name = f"{team}-{environment}"
    if not stack_files.stack_file(name).exists():
        teams = sorted({s.rsplit("-", 1)[0] for s in stack_files.list_stacks()})
        raise PromotionUsageError(f"no stack {name} ({stack_files.stack_file(name)} not found); teams: {', '.join(teams) or 'none'}")
    source = stack_files.load_source(name)
    return source, stack_files.validate(source)


def _namer(config: StackConfig) -> naming.Namer:
    return naming.Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)


def _rel(path: Path) -> str:
    """`stacks/...` as a reviewer sees it, wherever the stacks directory is."""
    try:
        return str(path.resolve().relative_to(stack_files.stacks_dir().resolve().parent))
    except ValueError:
        return str(path)


def _artifact_gate(package: Mapping[str, Any], *, session: Any, target_config: StackConfig, model: str, workdir: Path) -> tuple[GateResult, Path | None]:
    """Download the package's model.tar.gz and check its schema.json against the target's feature store."""
    from botocore.exceptions import BotoCoreError, ClientError

    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    urls = [c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")]
    if len(urls) != 1:
        return GateResult("schema", False, f"the package has {len(urls)} containers with model data; promotion handles exactly one"), None
    url = urls[0]
    archive = workdir / "model.tar.gz"
    try:
        bucket, key = _split_s3(url)
        session.client("s3").download_file(bucket, key, str(archive))
        model_schema = read_schema(archive)
    except (ClientError, BotoCoreError, ValueError, OSError, tarfile.TarError) as exc:
        return GateResult("schema", False, f"cannot read {SCHEMA_MEMBER} from {url}: {exc}"), None
    spec = target_config.model_registry.models[model]
    target_schema = feature_schema(target_config, model)
    problems = schema_mismatches(model_schema, target_schema, group=spec.feature_group)
    if problems:
        return GateResult("schema", False, f"incompatible with {target_config.stack_name}'s feature group {spec.feature_group!r}: " + "; ".join(problems)), archive
    n = len(model_schema.get("features") or [])
    return GateResult("schema", True, f"{n} model input(s) match {target_config.stack_name}'s feature group {spec.feature_group!r}"), archive


def _gated_pin(
    outcome: Outcome, gates: list[GateResult], *, stack: str, stack_file: Path, targets: list[PinTarget], pin: Pin,
    request: PromoteRequest | RollbackRequest,
) -> str | None:
    """The tail both promotion and rollback share: pin the candidate in the stack file's text, add the
    policy gate on the pinned stack, record gates and diff on `outcome`, refuse if any gate failed.
    Returns the new stack file text to write, or None on a dry run (nothing is to be written)."""
    before = stack_file.read_text(encoding="utf-8")
    after = pin_text(before, targets, pin=pin)
    gates.append(policy_gate(stack=stack, candidate_text=after, team=request.team))
    outcome.gates = gates
    outcome.diff = unified_diff(before, after, path=_rel(stack_file))
    if not all(g.passed for g in gates):
        outcome.status = "refused"
        raise Refused(outcome)
    if request.check:
        outcome.status = "checked"
        return None
    return after


def promote(request: PromoteRequest, *, on_output: Callable[[str], Any] = print) -> Outcome:
    """Run the gates, then (unless a check) copy, register, pin and audit. Raises Refused or PromotionError."""
    source_config, target_config = promote_preflight(request)
    if request.apply:
        check_apply_possible()
    stack = target_config.stack_name

    source_registry = Registry(
        session=session_for(request.source, source_config.aws.region),
        group=_namer(source_config).model_package_group(request.model), environment=request.source,
    )
    source_registry.require_group()
    version = request.version
    if version is None:
        version = source_registry.latest_approved()
        if version is None:
            raise PromotionError(f"no Approved version in {source_registry.group}; approve one or give --version N")
    package = source_registry.describe(version)
    if package is None:
        known = [str(s["ModelPackageVersion"]) for s in source_registry.summaries()]
        raise PromotionUsageError(f"version {version} is not in {source_registry.group}; versions: {', '.join(known) or 'none'}")
    target_registry = Registry(session=session_for(request.target, target_config.aws.region), group=_namer(target_config).model_package_group(request.model), environment=request.target)
    target_registry.require_group()

    lock = contextlib.nullcontext() if request.check else stack_lock(stack)
    with lock, tempfile.TemporaryDirectory(prefix="mlops-promote-") as tmp:
        outcome = _promote_locked(
            request, package=package, version=version, source_registry=source_registry,
            target_registry=target_registry, workdir=Path(tmp),
        )
    if request.apply and outcome.status in ("promoted", "no-op"):
        # A no-op still deploys: the pin may be in the file from an earlier run without --apply.
        pulumi_up(stack, on_output=on_output)
        outcome.applied = True
    return outcome


def _promote_locked(
    request: PromoteRequest, *, package: Mapping[str, Any], version: int, source_registry: Registry,
    target_registry: Registry, workdir: Path,
) -> Outcome:
    """Gates, then copy, register, pin and audit; the caller holds the target stack's lock."""
    # Read the target under the lock: another promotion may have pinned since the caller looked.
    target_source, target_config = _load(request.team, request.target)
    targets = pin_targets(target_config, request.model, request.variant)
    stack = target_config.stack_name
    source_arn = package["ModelPackageArn"]
    outcome = Outcome(action="promote", stack=stack, targets=targets, previous=current_pin(target_config, targets[0]))
    assert outcome.previous is not None
    existing = target_registry.promoted_from(source_arn)
    if existing is not None:
        pin = Pin(existing["ModelPackageVersion"], existing["InferenceSpecification"]["Containers"][0]["ModelDataUrl"], existing["ModelPackageArn"])
        if all(current_pin(target_config, t) == Pin(pin.version, pin.model_data_url) for t in targets):
            outcome.status, outcome.pin = "no-op", pin
            outcome.notes.append(f"{stack} already pins {request.model} version {pin.version} (promoted from {source_arn}); nothing changed")
            return outcome
        outcome.notes.append(f"reusing {pin.package_arn}, registered by an earlier promotion of {source_arn}")
    else:
        next_version = max((s["ModelPackageVersion"] for s in target_registry.summaries()), default=0) + 1
        bucket = _namer(target_config).bucket("artifacts")
        pin = Pin(next_version, f"s3://{bucket}/models/{request.model}/{next_version}/model.tar.gz", None)
    outcome.pin = pin

    spec = target_config.model_registry.models[request.model]
    metrics = package_metrics(package)
    status = package.get("ModelApprovalStatus")
    gates = [GateResult(
        "approved", status == APPROVED,
        f"{source_arn} is {status}" + ("" if status == APPROVED else f"; approve it in {source_registry.group} first"),
    )]
    gates.append(threshold_gate(metrics, spec.gates, where=f"{stack} gates"))
    champion = target_registry.describe(outcome.previous.version)
    if champion is not None:
        outcome.previous = dataclasses.replace(outcome.previous, package_arn=champion["ModelPackageArn"])
    gates.append(regression_gate(
        metrics, package_metrics(champion) if champion else None,
        compared=compared_metrics(spec.gates, spec.task), margin=spec.max_regression,
        champion_label=(f"champion {target_registry.group} version {outcome.previous.version}" if champion
                        else f"version {outcome.previous.version} pinned in {stack} is not in {target_registry.group}"),
    ))
    schema_result, archive = _artifact_gate(package, session=source_registry.session, target_config=target_config, model=request.model, workdir=workdir)
    gates.append(schema_result)
    after = _gated_pin(outcome, gates, stack=stack, stack_file=target_source.stack_file, targets=targets, pin=pin, request=request)
    if after is None:
        return outcome

    assert archive is not None, "the schema gate passed, so the artifact was downloaded"
    if existing is None:
        created = _register(
            package=package, archive=archive, pin=pin, source_session=source_registry.session,
            target_registry=target_registry, source_env=request.source,
        )
        if created.version != pin.version:
            # Someone registered into the target group outside this checkout's lock. The artifact is
            # where the package says; only its folder name differs from the version.
            outcome.notes.append(f"registered as version {created.version}, not {pin.version} as expected; the artifact stays at {created.model_data_url}")
            before = target_source.stack_file.read_text(encoding="utf-8")
            after = pin_text(before, targets, pin=created)
            outcome.diff = unified_diff(before, after, path=_rel(target_source.stack_file))
        outcome.pin = pin = created
    atomic_write(target_source.stack_file, after)
    outcome.record = _record(
        action="promote", team=request.team, model=request.model, source=request.source, target=request.target,
        stack=stack, source_arn=source_arn, source_version=version, pin=pin, previous=outcome.previous,
        targets=targets, metrics=metrics, gates=gates, stack_file=target_source.stack_file, text=after,
    )
    append_audit(request.team, outcome.record)
    outcome.status = "promoted"
    return outcome


def _register(
    *, package: Mapping[str, Any], archive: Path, pin: Pin, source_session: Any, target_registry: Registry, source_env: str,
) -> Pin:
    """Copy the artifact and metrics into the target bucket and register an Approved package there."""
    s3_target = target_registry.session.client("s3")
    bucket, key = _split_s3(pin.model_data_url)
    s3_target.upload_file(str(archive), bucket, key)
    metrics_doc = None
    statistics = (package.get("ModelMetrics") or {}).get("ModelQuality", {}).get("Statistics")
    if statistics and statistics.get("S3Uri"):
        src_bucket, src_key = _split_s3(statistics["S3Uri"])
        body = source_session.client("s3").get_object(Bucket=src_bucket, Key=src_key)["Body"].read()
        metrics_key = key.rsplit("/", 1)[0] + "/metrics.json"
        s3_target.put_object(Bucket=bucket, Key=metrics_key, Body=body, ContentType=statistics.get("ContentType", "application/json"))
        metrics_doc = {"ModelQuality": {"Statistics": {"ContentType": statistics.get("ContentType", "application/json"), "S3Uri": f"s3://{bucket}/{metrics_key}"}}}
    spec = copy.deepcopy(package["InferenceSpecification"])
    for container in spec["Containers"]:
        if container.get("ModelDataUrl"):
            container["ModelDataUrl"] = pin.model_data_url
    props = dict(package.get("CustomerMetadataProperties") or {})
    props[SOURCE_ARN_KEY] = package["ModelPackageArn"]
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": target_registry.group,
        # Approved on creation: the promotion is the approval; the team's audit log says who gave it.
        "ModelPackageDescription": f"promoted from {source_env} (mlops promote, approved by promotion): {package['ModelPackageArn']}"[:1024],
        "InferenceSpecification": spec,
        "ModelApprovalStatus": APPROVED,
        "CustomerMetadataProperties": props,
        # SageMaker returns the first package for a retried token instead of registering a second.
        "ClientToken": hashlib.sha256(f"{target_registry.group}\0{package['ModelPackageArn']}".encode()).hexdigest()[:36],
    }
    if metrics_doc:
        kwargs["ModelMetrics"] = metrics_doc
    arn = target_registry.sagemaker.create_model_package(**kwargs)["ModelPackageArn"]
    created = target_registry.sagemaker.describe_model_package(ModelPackageName=arn)
    return Pin(created["ModelPackageVersion"], created["InferenceSpecification"]["Containers"][0]["ModelDataUrl"], arn)


def _record(
    *, action: str, team: str, model: str, source: str, target: str, stack: str, source_arn: str | None,
    source_version: int, pin: Pin, previous: Pin, targets: list[PinTarget], metrics: Mapping[str, float],
    gates: list[GateResult], stack_file: Path, text: str,
) -> dict[str, Any]:
    return {
        "action": action,
        "team": team,
        "model": model,
        "who": actor(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "from": source,
        "to": target,
        "stack": stack,
        "source_package_arn": source_arn,
        "source_version": source_version,
        "target_package_arn": pin.package_arn,
        "target_version": pin.version,
        "model_data_url": pin.model_data_url,
        "previous": {"version": previous.version, "model_data_url": previous.model_data_url, "package_arn": previous.package_arn},
        "variants": [t.ref for t in targets],
        "metrics": dict(metrics),
        "gates": [g.to_json() for g in gates],
        "file": _rel(stack_file),
        "file_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


# --------------------------------------------------------------------------------------------
# Rollback


@dataclass(frozen=True, kw_only=True)
class RollbackRequest:
    """`mlops rollback`'s arguments."""

    team: str
    environment: str
    model: str | None = None
    """Default: the one model the environment's endpoints serve."""
    variant: str | None = None
    check: bool = False
    """Run every gate against AWS, read-only, and show the diff; change nothing."""
    apply: bool = False


def rollback_preflight(request: RollbackRequest) -> tuple[StackConfig, str, list[PinTarget]]:
    """The checks that need no AWS call: environment, exclusive options, model and variant.
    Returns the stack's config, the model and the variants to pin."""
    if request.environment not in PROMOTION_ORDER:
        raise PromotionUsageError(f"--env {request.environment!r} is not allowed; allowed: {', '.join(PROMOTION_ORDER)}")
    if request.check and request.apply:
        raise PromotionUsageError("--check and --apply exclude each other: a check changes nothing, --apply deploys")
    _, config = _load(request.team, request.environment)
    served = list(dict.fromkeys(e.model for e in config.endpoints.values()))
    model = request.model
    if model is None:
        if len(served) != 1:
            raise PromotionUsageError(f"{config.stack_name} serves {len(served)} models ({', '.join(served) or 'none'}); give --model NAME")
        model = served[0]
    elif model not in config.model_registry.models:
        raise PromotionUsageError(f"model {model!r} is not defined in {config.stack_name}; models: {', '.join(config.model_registry.models) or 'none'}")
    return config, model, pin_targets(config, model, request.variant)


def previous_champion(request: RollbackRequest, config: StackConfig, *, model: str, targets: list[PinTarget]) -> tuple[Pin, dict[str, Any]]:
    """The current pin and the champion before it, replayed from the audit log (no AWS call).
    Raises PromotionError when the log has no previous champion or disagrees with the stack file."""
    stack = config.stack_name
    current = current_pin(config, targets[0])
    history = champion_history(read_audit(request.team), team=request.team, environment=request.environment, model=model, refs={t.ref for t in targets})
    if not history:
        raise PromotionError(f"the audit log {_rel(audit_path(request.team))} records no promotion of {model} into {stack}; nothing to roll back to")
    top = history[-1]
    if (top["version"], top["model_data_url"]) != (current.version, current.model_data_url):
        raise PromotionError(
            f"{stack} pins {model} version {current.version} ({current.model_data_url}) but the audit log's last champion is "
            f"version {top['version']} ({top['model_data_url']}); the file was changed outside promote/rollback, so the previous champion is unknown"
        )
    if len(history) < 2:
        raise PromotionError(f"{model} version {current.version} is the first champion of {stack} in the audit log; there is no previous one")
    return current, history[-2]


def rollback(request: RollbackRequest, *, on_output: Callable[[str], Any] = print) -> Outcome:
    """Pin the previous champion from the audit log. Gates: approved, metrics, schema, policy."""
    preflight_config, model, targets = rollback_preflight(request)
    if request.apply:
        check_apply_possible()

    lock = contextlib.nullcontext() if request.check else stack_lock(preflight_config.stack_name)
    with lock, tempfile.TemporaryDirectory(prefix="mlops-rollback-") as tmp:
        # Read the stack file under the lock: a promotion may have pinned since the preflight.
        target_source, config = _load(request.team, request.environment)
        stack = config.stack_name
        current, previous = previous_champion(request, config, model=model, targets=targets)
        session = session_for(request.environment, config.aws.region)
        registry = Registry(session=session, group=_namer(config).model_package_group(model), environment=request.environment)
        registry.require_group()
        package = registry.describe(previous["version"])
        pin = Pin(previous["version"], previous["model_data_url"], package["ModelPackageArn"] if package else None)
        outcome = Outcome(action="rollback", stack=stack, targets=targets, pin=pin, previous=current)
        spec = config.model_registry.models[model]
        if package is None:
            gates = [GateResult("approved", False, f"version {pin.version} is not in {registry.group}")]
            metrics: dict[str, float] = {}
        else:
            metrics = package_metrics(package)
            status = package.get("ModelApprovalStatus")
            gates = [GateResult("approved", status == APPROVED, f"{package['ModelPackageArn']} is {status}")]
            gates.append(threshold_gate(metrics, spec.gates, where=f"{stack} gates"))
            package_url = package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
            if package_url != pin.model_data_url:
                gates.append(GateResult("schema", False, f"the audit log pins {pin.model_data_url} but {package['ModelPackageArn']} holds {package_url}"))
            else:
                gates.append(_artifact_gate(package, session=session, target_config=config, model=model, workdir=Path(tmp))[0])
        after = _gated_pin(outcome, gates, stack=stack, stack_file=target_source.stack_file, targets=targets, pin=pin, request=request)
        if after is None:
            return outcome
        atomic_write(target_source.stack_file, after)
        outcome.record = _record(
            action="rollback", team=request.team, model=model, source=request.environment, target=request.environment,
            stack=stack, source_arn=pin.package_arn, source_version=pin.version, pin=pin, previous=current, targets=targets,
            metrics=metrics, gates=gates, stack_file=target_source.stack_file, text=after,
        )
        append_audit(request.team, outcome.record)
        outcome.status = "rolled-back"
    if request.apply:
        pulumi_up(stack, on_output=on_output)
        outcome.applied = True
    return outcome
