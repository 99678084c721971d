"""The phases of an automatic rollout and the next step, decided from plain data.

A rollout of model version N on one endpoint moves through

    (idle) --shadow--> shadow --analysis passed--> blue/green update --> pinned
                          |                               |
                          +--analysis failed--> refused    +--alarm during the bake--> rolled_back

`shadow`: the stack file pins N as the endpoint's shadow variant beside its champion (the production
variant with the highest weight; SageMaker allows one production variant beside a shadow, so an A/B
endpoint's other variants pause until the rollout ends). The endpoint's traffic block as it was is
kept in the rollout's audit record and written back when the rollout ends, with N pinned in the
champion's place (`pinned`) or not (`refused`, `rolled_back`). A refused or rolled-back version is
never tried again by the automatic rollout; a newer approved version is.

The audit records of rollouts (`action: "rollout"`) carry `stack`, `endpoint`, `phase`, `candidate`
and, for the first phase, `previous_traffic`.

Must not import: boto3, botocore, pulumi or ruamel, nor the package's other modules, nor
`mlops_training`, `mlops_serving` or `torch` (pure: plain data in, a decision out).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ACTION = "rollout"
SHADOW, PINNED, REFUSED, ROLLED_BACK = "shadow", "pinned", "refused", "rolled_back"
PHASES = (SHADOW, PINNED, REFUSED, ROLLED_BACK)
"""Phases an audit record may name; `shadow` is the only one in flight."""
CANDIDATE_VARIANT = "candidate"
"""The name of the shadow variant a rollout adds (a variant name is the endpoint config's, not the version's)."""


@dataclass(frozen=True)
class Version:
    """A registered version: its number in the environment's group, its artifact and its package."""

    version: int
    model_data_url: str
    package_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "model_data_url": self.model_data_url, "package_arn": self.package_arn}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Version:
        return cls(int(doc["version"]), str(doc["model_data_url"]), doc.get("package_arn"))


@dataclass(frozen=True)
class InFlight:
    """A rollout in its shadow phase, as its audit record says."""

    candidate: Version
    champion: Version
    previous_traffic: Any
    """The endpoint's `mlops:overrides` traffic block before the rollout (None: there was none)."""
    since: str
    """When the shadow phase began (ISO 8601 UTC): the analysis reads captures from then on."""


def _ours(records: Iterable[Mapping[str, Any]], stack: str, endpoint: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("action") == ACTION and r.get("stack") == stack and r.get("endpoint") == endpoint]


def in_flight(records: Iterable[Mapping[str, Any]], *, stack: str, endpoint: str) -> InFlight | None:
    """The rollout in flight on `endpoint` of `stack`: its latest record, when that is a shadow phase."""
    ours = _ours(records, stack, endpoint)
    if not ours or ours[-1].get("phase") != SHADOW:
        return None
    last = ours[-1]
    return InFlight(Version.from_json(last["candidate"]), Version.from_json(last["champion"]), last.get("previous_traffic"), str(last["when"]))


def settled(records: Iterable[Mapping[str, Any]], *, stack: str, endpoint: str) -> dict[int, str]:
    """Versions whose rollout on this endpoint ended, with the phase it ended in."""
    return {int(r["candidate"]["version"]): str(r["phase"]) for r in _ours(records, stack, endpoint) if r.get("phase") != SHADOW}


@dataclass(frozen=True)
class Decision:
    """What one advance does next."""

    step: Literal["off", "idle", "shadow", "analyze"]
    reason: str
    candidate: Version | None = None


def next_step(*, automatic: bool, environment: str, champion: Version, approved: Version | None,
              settled_versions: Mapping[int, str], flight: InFlight | None) -> Decision:
    """The next step on one endpoint: `analyze` while a rollout is in flight; else `shadow` for the newest
    approved version that is newer than the champion and has not been rolled out here before; else
    `idle` (saying why), or `off` when the endpoint does not roll out automatically."""
    if flight is not None:
        return Decision("analyze", f"v{flight.candidate.version} is in shadow beside v{flight.champion.version} since {flight.since}", flight.candidate)
    if not automatic:
        return Decision("off", f"automatic rollout is off here (rollout.automatic; default on in dev only, this is {environment})")
    if approved is None:
        return Decision("idle", "the model's package group has no Approved version")
    if approved.version <= champion.version or approved.model_data_url == champion.model_data_url:
        return Decision("idle", f"the newest Approved version, v{approved.version}, is not newer than the champion v{champion.version}")
    if approved.version in settled_versions:
        return Decision("idle", f"v{approved.version} was already rolled out here and ended {settled_versions[approved.version]}")
    return Decision("shadow", f"v{approved.version} is Approved and newer than the champion v{champion.version}", approved)


@dataclass(frozen=True)
class Verdict:
    """A shadow analysis's outcome: `passed`, `failed` or `insufficient` (too few mirrored requests yet)."""

    status: Literal["passed", "failed", "insufficient"]
    reason: str
    evidence: Mapping[str, Any]
    """The analysis document (or where it is kept), recorded with the phase it decided."""
