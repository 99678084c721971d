"""`mlops new-team`: a new team's base definition and one stack file per environment, from templates.

The scaffold holds what every team needs and nothing invented: tags, the alarm notification target
and the AWS target of each environment, plus commented next steps (features, model, endpoint). It is
written only if none of its files exists, then validated and planned like any stack; if any of the
three environments fails, everything written is removed again.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from specs.config import stack_files
from specs.config.schema import AccountId, AwsTarget, Email, Slug, Tags
from mlops import ci

ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
"""The environments a team gets a stack for."""


class ScaffoldError(ValueError):
    """A user mistake (bad name, account, region, e-mail, existing files): one line, exit 2."""


@dataclass(frozen=True, kw_only=True)
class TeamSpec:
    """`mlops new-team`'s arguments."""

    name: str
    accounts: dict[str, str]
    """AWS account id per environment (dev, staging, prod)."""
    region: str
    owner: str
    """E-mail of the owning team: the Owner tag and the alarm notification target."""
    cost_center: str


@dataclass
class Scaffolded:
    """What `new_team` wrote and what the plans found."""

    files: list[Path] = field(default_factory=list)
    resources: dict[str, int] = field(default_factory=dict)
    """Planned resource count per stack."""
    advisories: dict[str, int] = field(default_factory=dict)
    """Advisory (non-mandatory) policy findings per stack."""


def _first_error(exc: ValidationError) -> str:
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


def check(spec: TeamSpec) -> None:
    """Validate the arguments with the config schema's own types; raises ScaffoldError naming the flag."""
    checks: list[tuple[str, Any, Any]] = [("NAME", Slug, spec.name), ("--owner", Email, spec.owner)]
    checks += [(f"--account-{env}", AccountId, spec.accounts.get(env)) for env in ENVIRONMENTS]
    for flag, type_, value in checks:
        try:
            TypeAdapter(type_).validate_python(value)
        except ValidationError as exc:
            allowed = {"--owner": "an e-mail address", "NAME": "lowercase letters, digits and single hyphens, starting with a letter"}.get(
                flag, "12 digits, quoted in YAML")
            message = _first_error(exc)
            raise ScaffoldError(f"{flag} {value!r}: {message}" + ("" if "allowed" in message else f"; allowed: {allowed}")) from None
    try:
        AwsTarget(account_id=spec.accounts["dev"], region=spec.region)
    except ValidationError as exc:
        raise ScaffoldError(f"--region {spec.region!r} is not an AWS region name; allowed: e.g. eu-west-1, us-east-1, us-gov-west-1") from None
    try:
        TypeAdapter(Tags).validate_python({"CostCenter": spec.cost_center, "Owner": spec.owner})
    except ValidationError as exc:
        raise ScaffoldError(f"--cost-center {spec.cost_center!r}: {_first_error(exc)}") from None


def secrets_provider(team: str, environment: str, region: str) -> str:
    """The stack's Pulumi secrets provider: the KMS key `alias/<team>-<environment>-pulumi-secrets` in
    the stack's account and region (created before `pulumi stack init`, see README "Secrets"; not the
    stack's own `<prefix>-mlops` key, which the stack creates and so cannot encrypt its config first)."""
    return f"awskms://alias/{team}-{environment}-pulumi-secrets?region={region}"


def render(spec: TeamSpec) -> dict[Path, str]:
    """The files of the scaffold, relative to the stacks directory, and their content."""
    common = {"team": spec.name, "region": spec.region, "owner": spec.owner, "cost_center": spec.cost_center, "accounts": spec.accounts}
    files = {Path("teams") / f"{spec.name}.yaml": ci.render("team.yaml.j2", **common)}
    for env in ENVIRONMENTS:
        files[Path(f"Pulumi.{spec.name}-{env}.yaml")] = ci.render(
            "stack.yaml.j2", **common, environment=env, account=spec.accounts[env],
            secrets_provider=secrets_provider(spec.name, env, spec.region),
        )
    return files


def new_team(spec: TeamSpec) -> Scaffolded:
    """Write, validate and plan the team's stacks. Raises ScaffoldError (nothing written),
    ConfigError or PlanRefused (everything written removed again)."""
    from specs import policies
    from mlops import plan as planner

    check(spec)
    directory = stack_files.stacks_dir()
    files = {directory / rel: text for rel, text in render(spec).items()}
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise ScaffoldError(f"team {spec.name!r} already has {', '.join(existing)}; new-team never overwrites (remove them or pick another name)")
    result = Scaffolded()
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: a file that appeared since the check above is not ours to overwrite.
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(text)
            result.files.append(path)
        for env in ENVIRONMENTS:
            name = f"{spec.name}-{env}"
            plan = planner.plan_stack(name)  # validates first: ConfigError names file and field
            findings = policies.evaluate(plan.resources, environment=env)
            mandatory = [f for f in findings if f.mandatory]
            if mandatory:
                raise PlanRefused(name, [f"{f.policy}: {f.resource}: {f.message}" for f in mandatory])
            result.resources[name] = len(plan.resources)
            result.advisories[name] = len(findings)
    except BaseException:
        for path in result.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        raise
    return result


class PlanRefused(Exception):
    """The scaffolded stack plans with mandatory policy violations (a template bug: report it)."""

    def __init__(self, stack: str, violations: list[str]):
        self.stack = stack
        self.violations = violations
        super().__init__("\n".join([f"stack {stack}: {len(violations)} mandatory policy violation(s)", *(f"  - {v}" for v in violations)]))
