"""Where a rollout observes and applies its steps (mlops.rollout.flow.Backend).

- `LocalBackend`: the running local environment of a local stack (`mlops local up`): the journaled
  registry, and `LocalStack.deploy`, which updates an endpoint the way UpdateEndpoint does.
- `CloudBackend`: the environment's AWS account: its Model Package Group (mlops.promote.aws), and
  `pulumi up` through the Automation API with the policy pack (mlops.promote.policy).

Both then read DescribeEndpoint (`served`): a step is applied only when the endpoint is InService on the
configuration the plan names. `pulumi up` alone cannot tell: when SageMaker rolls a blue/green update
back, the endpoint returns to InService on its old configuration and the AWS provider's waiter accepts
that as success (hashicorp/terraform-provider-aws#46663 and #48997, which pulumi-aws bridges).

The shadow analysis is passed in (`analyze`): both read the captures of the champion and the shadow.

Must not import: `pulumi` at module level (the Automation API is imported when a cloud step applies),
nor `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.config.schema import StackConfig
from specs.naming import Namer
from mlops.promote.audit import audit_path
from mlops.rollout.flow import Applied
from mlops.rollout.state import Verdict, Version

Analyze = Callable[[StackConfig, str, str], Verdict]
"""(config, endpoint key, since ISO time) -> the shadow analysis's verdict."""


@dataclass
class LocalBackend:
    """A local stack whose environment is up."""

    stack: Any
    """mlops.local.stack.LocalStack."""
    analyzer: Analyze

    def approved(self, config: StackConfig, model: str) -> Version | None:
        approved = [v for v in self.stack.versions(model) if v.approval == "Approved"]
        if not approved:
            return None
        newest = max(approved, key=lambda v: v.version)
        arn = f"arn:aws:sagemaker:{self.stack.region}:{self.stack.namer.account_id}:model-package/{newest.group}/{newest.version}"
        return Version(newest.version, newest.model_data_url, arn)

    def persist(self, path: Path, message: str) -> None:
        """Nothing to do: the local environment deploys the file as it is (the demo works on a copy of stacks/)."""

    def apply(self, stack: str, endpoint: str) -> Applied:
        """`LocalStack.deploy`: an existing endpoint moves through UpdateEndpoint with its planned
        DeploymentConfig (mlops.local.bluegreen), rolling back by itself when a rollback alarm fires."""
        from specs.config import stack_files

        plan = self.stack.deploy(allow_rollback=True)
        name = self.stack.namer.endpoint(endpoint)
        applied = served(self.stack.client("sagemaker").describe_endpoint(EndpointName=name), planned_config(plan, name))
        if not applied.ok:
            return applied
        declared = stack_files.load(stack).endpoints[endpoint]
        self.stack.wait_routed(name, set(declared.production_variants()), set(declared.shadow_variants()))
        return Applied(True)

    def analyze(self, config: StackConfig, endpoint: str, *, since: str) -> Verdict:
        """Upload the endpoint's completed capture files first (what SageMaker's data capture does), then analyse."""
        self.stack.upload_captures(self.stack.namer.endpoint(endpoint))
        return self.analyzer(config, endpoint, since)


@dataclass
class CloudBackend:
    """A stack in its AWS account (access: MLOPS_AWS_PROFILE_<ENV> / MLOPS_AWS_ROLE_ARN_<ENV> / ambient)."""

    analyzer: Analyze
    team: str
    commit: bool = False
    """Commit and push each step (the scheduled CI job does; by hand, review and commit yourself)."""
    branch: str = "main"
    on_output: Callable[[str], Any] = print

    def approved(self, config: StackConfig, model: str) -> Version | None:
        from mlops.promote.aws import Registry, session_for

        namer = Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)
        registry = Registry(session=session_for(config.environment, config.aws.region), group=namer.model_package_group(model),
                            environment=config.environment)
        registry.require_group()
        number = registry.latest_approved()
        package = registry.describe(number) if number is not None else None
        if package is None:
            return None
        url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        return Version(number, url, package["ModelPackageArn"])

    def persist(self, path: Path, message: str) -> None:
        """With `commit`, commit the stack file and the audit log and push them (three attempts, rebasing
        on what others pushed), so git holds each step before `pulumi up` deploys it."""
        if self.commit:
            commit_and_push([path, audit_path(self.team)], message=message, branch=self.branch)

    def apply(self, stack: str, endpoint: str) -> Applied:
        from mlops.promote.policy import check_apply_possible, pulumi_up

        from specs.config import stack_files
        from mlops.plan import plan_stack
        from mlops.promote.aws import session_for

        check_apply_possible()
        config = stack_files.load(stack)
        name = Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id).endpoint(endpoint)
        planned = planned_config(plan_stack(stack), name)
        try:
            pulumi_up(stack, on_output=self.on_output)
        except Exception as exc:  # the Automation API raises CommandError (and others) with Pulumi's output
            return Applied(False, f"pulumi up failed: {str(exc)[-2000:]}")
        sagemaker = session_for(config.environment, config.aws.region).client("sagemaker")
        return served(sagemaker.describe_endpoint(EndpointName=name), planned)

    def analyze(self, config: StackConfig, endpoint: str, *, since: str) -> Verdict:
        return self.analyzer(config, endpoint, since)


def planned_config(plan: Any, endpoint_name: str) -> str:
    """The EndpointConfigName the plan (mlops.plan.Plan) gives endpoint `endpoint_name`."""
    found = [r.inputs["endpointConfigName"] for r in plan.resources
             if r.type == "aws:sagemaker/endpoint:Endpoint" and r.inputs.get("name") == endpoint_name]
    if not found:
        raise ValueError(f"the plan has no endpoint named {endpoint_name}")
    return found[0]


def served(described: dict[str, Any], planned: str) -> Applied:
    """Applied when DescribeEndpoint shows the endpoint InService on `planned`; otherwise not, with the
    reason SageMaker gives (the rollback's FailureReason) or what it shows instead."""
    name, status, current = described["EndpointName"], described["EndpointStatus"], described["EndpointConfigName"]
    if status == "InService" and current == planned:
        return Applied(True)
    reason = described.get("FailureReason")
    shown = f"{name} is {status} on {current}, not InService on {planned}"
    return Applied(False, f"{shown}: {reason}" if reason else shown)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def commit_and_push(paths: list[Path], *, message: str, branch: str, attempts: int = 3) -> bool:
    """`git add` the `paths` that exist, commit them (nothing to commit: False) and push to `branch` of
    origin, rebasing on what others pushed meanwhile. RuntimeError with git's message when every attempt fails."""
    cwd = paths[0].parent
    present = [str(p) for p in paths if p.exists()]
    for command in (["add", "--", *present], ["diff", "--cached", "--quiet"]):
        done = _git(command, cwd)
        if command[0] == "add" and done.returncode != 0:
            raise RuntimeError(f"git add failed: {done.stderr.strip()}")
    if done.returncode == 0:
        return False
    committed = _git(["commit", "-m", message], cwd)
    if committed.returncode != 0:
        raise RuntimeError(f"git commit failed: {committed.stderr.strip() or committed.stdout.strip()}")
    last = ""
    for _ in range(attempts):
        pulled = _git(["pull", "--rebase", "origin", branch], cwd)
        pushed = _git(["push", "origin", f"HEAD:{branch}"], cwd) if pulled.returncode == 0 else pulled
        if pushed.returncode == 0:
            return True
        last = pushed.stderr.strip()
    raise RuntimeError(f"git push to origin {branch} failed {attempts} times: {last}")


def shadow_analyzer(config: StackConfig) -> Analyze:
    """The rollout's shadow analysis (mlops.experiment.readouts.shadow_readout) with the stack's access:
    a local stack's running environment, else the environment's AWS account."""
    from datetime import datetime

    from mlops.experiment import readouts

    def analyze(config: StackConfig, endpoint: str, since: str) -> Verdict:
        readout, _ = readouts.shadow_readout(config, endpoint=endpoint, variant=None, client=stack_access(config),
                                             since=datetime.fromisoformat(since.replace("Z", "+00:00")))
        evidence = {"requests": readout.requests, "latency": readout.latency, "errors": readout.errors,
                    "checks": [{"check": c.name, "passed": c.passed, "detail": c.detail} for c in readout.checks]}
        return Verdict(readout.verdict, readout.reason, evidence)

    return analyze


def stack_access(config: StackConfig) -> Callable[[str], Any]:
    """A boto3 client factory for a stack: a local stack's running environment (RuntimeError naming
    `mlops local up` when it is not running), else the environment's AWS account."""
    if config.environment == "local":
        from mlops.local.environment import LocalEnvironment

        env = LocalEnvironment(config.stack_name)
        env.moto_url()
        return lambda service: env.client(service, config.aws.region)
    from mlops.promote.aws import session_for

    return session_for(config.environment, config.aws.region).client
