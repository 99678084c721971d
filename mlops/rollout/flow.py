"""One advance of an automatic rollout (`mlops rollout -s STACK --endpoint E`): observe, decide, edit the
stack file under its lock, apply, record.

Each call moves at most one step (mlops.rollout.state) and is safe to repeat: a scheduled job or the CI
calls it until the rollout settles. Every edit is validated by loading the stack again before it is
applied; an edit that does not validate is undone and refused. Each phase is one audit record in the
team's log (mlops.promote.audit), which is also where the rollout in flight is read from, so the stack
file and the log are the whole state, both in git.

Must not import: `pulumi` at module level (the cloud backend imports the Automation API when it applies),
nor `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from specs.config import stack_files
from specs.config.schema import ShadowTraffic, StackConfig
from mlops.promote.audit import actor, append_audit, read_audit
from mlops.promote.errors import PromotionError, PromotionUsageError
from mlops.promote.files import atomic_write, display_path, stack_lock
from mlops.promote.pins import Pin, PinTarget, pin_text, unified_diff
from mlops.rollout import edits, state
from mlops.rollout.state import Verdict, Version


@dataclass(frozen=True)
class Applied:
    """What applying the stack file did to the endpoint: in service as declared, or not (why)."""

    ok: bool
    reason: str = ""


class Backend(Protocol):
    """Where a rollout observes and applies: the local environment or AWS."""

    def approved(self, config: StackConfig, model: str) -> Version | None:
        """The newest Approved version of the model's package group in this environment."""

    def persist(self, path: Path, message: str) -> None:
        """Make the stack file's new content the desired state before it is applied (in CI: commit and push)."""

    def apply(self, stack: str, endpoint: str) -> Applied:
        """Deploy the stack file as it is now; for an endpoint update, wait until it settles."""

    def analyze(self, config: StackConfig, endpoint: str, *, since: str) -> Verdict:
        """The shadow analysis of the endpoint's champion and shadow since `since`."""


@dataclass(frozen=True, kw_only=True)
class RolloutRequest:
    stack: str
    endpoint: str
    dry_run: bool = False


@dataclass
class Outcome:
    """What one advance did: `step` is off, idle, shadow, waiting, refused, pinned or rolled_back."""

    stack: str
    endpoint: str
    step: str
    reason: str
    candidate: Version | None = None
    champion: Version | None = None
    diff: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "endpoint": self.endpoint, "step": self.step, "reason": self.reason, "dry_run": self.dry_run,
                "candidate": self.candidate.to_json() if self.candidate else None,
                "champion": self.champion.to_json() if self.champion else None, "diff": self.diff, "evidence": dict(self.evidence)}


def advance(request: RolloutRequest, backend: Backend, *, on_output: Callable[[str], Any] = print) -> Outcome:
    """Move the rollout on `request.endpoint` of `request.stack` by one step (see the module docstring)."""
    with stack_lock(request.stack):
        source = stack_files.load_source(request.stack)
        config = stack_files.validate(source)
        if request.endpoint not in config.endpoints:
            raise PromotionUsageError(f"stack {request.stack} has no endpoint {request.endpoint!r}; endpoints: "
                                      + (", ".join(sorted(config.endpoints)) or "none"))
        endpoint = config.endpoints[request.endpoint]
        records = read_audit(config.team)
        flight = state.in_flight(records, stack=request.stack, endpoint=request.endpoint)
        _, variant = endpoint.champion()
        champion = flight.champion if flight else Version(variant.model_version, variant.model_data_url)
        automatic = endpoint.automatic_rollout(config.environment)
        decision = state.next_step(
            automatic=automatic, environment=config.environment, champion=champion,
            approved=None if flight or not automatic else backend.approved(config, endpoint.model),
            settled_versions=state.settled(records, stack=request.stack, endpoint=request.endpoint), flight=flight,
        )
        if decision.step in ("off", "idle"):
            return Outcome(request.stack, request.endpoint, decision.step, decision.reason, champion=champion, dry_run=request.dry_run)
        step = _Step(request=request, backend=backend, source=source, config=config, champion=champion, on_output=on_output)
        if decision.step == "shadow":
            assert decision.candidate is not None
            return step.start_shadow(decision.candidate)
        assert flight is not None
        return step.conclude(flight)


@dataclass
class _Step:
    request: RolloutRequest
    backend: Backend
    source: stack_files.StackSource
    config: StackConfig
    champion: Version
    on_output: Callable[[str], Any]

    @property
    def path(self) -> Path:
        return self.source.stack_file

    def start_shadow(self, candidate: Version) -> Outcome:
        """Pin `candidate` as the endpoint's shadow beside its champion and deploy that."""
        endpoint = self.config.endpoints[self.request.endpoint]
        text = self.path.read_text(encoding="utf-8")
        previous = edits.traffic_override(text, self.request.endpoint)
        patch = edits.replace_patch(self._base_traffic(), edits.shadow_traffic(endpoint, candidate))
        new = edits.with_traffic_override(text, self.request.endpoint, patch)
        outcome = self._outcome("shadow", f"v{candidate.version} in shadow beside the champion v{self.champion.version}", candidate, text, new)
        if self.request.dry_run:
            return outcome
        self._write(new, f"v{candidate.version} into shadow")
        applied = self.backend.apply(self.request.stack, self.request.endpoint)
        if not applied.ok:
            self._write(text, f"v{candidate.version} shadow failed to deploy, champion restored")
            self.backend.apply(self.request.stack, self.request.endpoint)
            outcome.step, outcome.reason = state.REFUSED, f"the shadow deployment failed: {applied.reason}"
            self._record(state.REFUSED, candidate, text, reason=outcome.reason)
            return outcome
        self._record(state.SHADOW, candidate, new, reason=outcome.reason, previous_traffic=previous)
        return outcome

    def conclude(self, flight: state.InFlight) -> Outcome:
        """Analyse the shadow; wait, or end the rollout: refused, or the candidate pinned in the
        champion's place through the endpoint's blue/green update (rolled back on its alarms)."""
        verdict = self.backend.analyze(self.config, self.request.endpoint, since=flight.since)
        self.on_output(f"shadow analysis of v{flight.candidate.version}: {verdict.status}: {verdict.reason}")
        if verdict.status == "insufficient":
            return Outcome(self.request.stack, self.request.endpoint, "waiting", verdict.reason, flight.candidate, self.champion,
                           evidence=verdict.evidence, dry_run=self.request.dry_run)
        text = self.path.read_text(encoding="utf-8")
        restored = edits.with_traffic_override(text, self.request.endpoint, flight.previous_traffic)
        if verdict.status == "failed":
            return self._end(state.REFUSED, flight, text, restored, verdict, f"the shadow analysis refused v{flight.candidate.version}: {verdict.reason}")
        pinned = self._pinned_text(restored, flight.candidate)
        outcome = self._outcome(state.PINNED, f"v{flight.candidate.version} replaced v{self.champion.version} through the endpoint's "
                                f"blue/green update", flight.candidate, text, pinned, verdict)
        if self.request.dry_run:
            return outcome
        self._write(pinned, f"pin v{flight.candidate.version} (shadow analysis passed)")
        applied = self.backend.apply(self.request.stack, self.request.endpoint)
        if applied.ok:
            self._record(state.PINNED, flight.candidate, pinned, reason=outcome.reason, verdict=verdict, pinned=True)
            return outcome
        return self._end(state.ROLLED_BACK, flight, pinned, restored, verdict,
                         f"the blue/green update to v{flight.candidate.version} rolled back: {applied.reason}")

    def _end(self, phase: str, flight: state.InFlight, text: str, restored: str, verdict: Verdict, reason: str) -> Outcome:
        """Return the endpoint to its champion as declared before the rollout, and record why."""
        outcome = self._outcome(phase, reason, flight.candidate, text, restored, verdict)
        if self.request.dry_run:
            return outcome
        self._write(restored, f"v{flight.candidate.version} {phase}, champion v{self.champion.version} restored")
        applied = self.backend.apply(self.request.stack, self.request.endpoint)
        if not applied.ok:
            outcome.reason += f"; restoring the champion did not apply cleanly either: {applied.reason}"
        self._record(phase, flight.candidate, restored, reason=outcome.reason, verdict=verdict)
        return outcome

    def _base_traffic(self) -> Any:
        return ((self.source.base.get("endpoints") or {}).get(self.request.endpoint) or {}).get("traffic")

    def _pinned_text(self, restored: str, candidate: Version) -> str:
        """`restored` with `candidate` pinned in the champion variant's place."""
        endpoint = self._validated(restored).endpoints[self.request.endpoint]
        name, _ = endpoint.champion()
        section = "production" if isinstance(endpoint.traffic, ShadowTraffic) else "variants"
        return pin_text(restored, [PinTarget(self.request.endpoint, section, name)],
                        pin=Pin(candidate.version, candidate.model_data_url, candidate.package_arn))

    def _validated(self, text: str) -> StackConfig:
        """The stack as `text` would make it (the base file as it is), or PromotionError naming the problems."""
        import yaml

        try:
            return stack_files.validate(stack_files.source_from_pulumi_config(self.request.stack, yaml.safe_load(text)["config"]))
        except stack_files.ConfigError as exc:
            raise PromotionError(f"the rollout's edit of {display_path(self.path)} does not validate, so nothing was written:\n{exc}") from None

    def _write(self, after: str, message: str) -> None:
        """Write `after` to the stack file once it validates, and persist it (`Backend.persist`)."""
        self._validated(after)
        atomic_write(self.path, after)
        self.backend.persist(self.path, f"rollout {self.request.stack}/{self.request.endpoint}: {message}")

    def _outcome(self, step: str, reason: str, candidate: Version, before: str, after: str, verdict: Verdict | None = None) -> Outcome:
        return Outcome(self.request.stack, self.request.endpoint, step, reason, candidate, self.champion,
                       diff=unified_diff(before, after, path=display_path(self.path)),
                       evidence=verdict.evidence if verdict else {}, dry_run=self.request.dry_run)

    def _record(self, phase: str, candidate: Version, text: str, *, reason: str, previous_traffic: Any = None,
                verdict: Verdict | None = None, pinned: bool = False) -> None:
        record: dict[str, Any] = {
            "action": state.ACTION, "phase": phase, "team": self.config.team, "model": self.config.endpoints[self.request.endpoint].model,
            "to": self.config.environment, "stack": self.request.stack, "endpoint": self.request.endpoint, "who": actor(),
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "candidate": candidate.to_json(),
            "champion": self.champion.to_json(), "reason": reason, "file": display_path(self.path),
            "file_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
        if phase == state.SHADOW:
            record["previous_traffic"] = previous_traffic
        if verdict is not None:
            record["analysis"] = {"status": verdict.status, "reason": verdict.reason, "evidence": dict(verdict.evidence)}
        if pinned:  # what mlops.promote.audit.champion_history replays, so `mlops rollback` can undo it
            name, _ = self.config.endpoints[self.request.endpoint].champion()
            record.update({"variants": [f"{self.request.endpoint}/{name}"], "target_version": candidate.version,
                           "model_data_url": candidate.model_data_url, "target_package_arn": candidate.package_arn,
                           "previous": self.champion.to_json()})
        append_audit(self.config.team, record)
