"""The two readouts of a stack's endpoint, from its AWS: which variants, where their data is, read, compute.

`shadow_readout` and `ab_readout` take the validated stack config and `client` (service -> boto3
client of the stack's AWS; for a local stack, the running local environment's endpoint, as
`mlops lineage` does). The champion is the production variant with the highest weight (ties by name),
as the retraining pipeline's champion is (specs.pipelines.sources).

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving`.
"""
from __future__ import annotations

from datetime import UTC, datetime

from mlops_contracts import experiment as contract
from specs.config.schema import EndpointConfig, StackConfig
from specs.naming import Namer
from specs.pipelines.sources import capture_root

from . import ab, captures, shadow
from .captures import Client


class ExperimentError(ValueError):
    """The stack does not allow the readout asked for (unknown endpoint, no shadow, one production variant)."""


def _endpoint(config: StackConfig, endpoint: str) -> EndpointConfig:
    if endpoint not in config.endpoints:
        raise ExperimentError(f"endpoint {endpoint!r} is not in stack {config.stack_name}; endpoints: {', '.join(sorted(config.endpoints)) or 'none'}")
    return config.endpoints[endpoint]


def ranked(spec: EndpointConfig) -> list[tuple[str, float]]:
    """Production variants (name, weight), the champion first: highest weight, ties by name."""
    production = spec.production_variants()
    return sorted(((name, float(getattr(v, "weight", 1.0))) for name, v in production.items()), key=lambda nv: (-nv[1], nv[0]))


def _namer(config: StackConfig) -> Namer:
    return Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)


def shadow_readout(config: StackConfig, *, endpoint: str, variant: str | None, since: datetime | None, client: Client,
                   now: datetime | None = None) -> tuple[contract.ShadowReadout, list[str]]:
    """Compare `endpoint`'s shadow `variant` (default: its only shadow variant) with its champion; also
    the capture lines skipped."""
    spec = _endpoint(config, endpoint)
    shadows = spec.shadow_variants()
    if not shadows:
        raise ExperimentError(f"endpoint {endpoint!r} has no shadow variant (traffic mode {spec.traffic.mode}); "
                              "a shadow analysis needs traffic.mode: shadow")
    name = variant or next(iter(shadows))
    if name not in shadows:
        raise ExperimentError(f"endpoint {endpoint!r} has no shadow variant {name!r}; shadow variants: {', '.join(shadows)}")
    champion = ranked(spec)[0][0]
    namer, now = _namer(config), now or datetime.now(UTC)
    root, s3, cloudwatch = capture_root(namer, endpoint), client("s3"), client("cloudwatch")
    read = {v: captures.read_variant(s3, root=root, variant=v, since=since) for v in (champion, name)}
    serving = {v: captures.serving_figures(cloudwatch, endpoint=namer.endpoint(endpoint), variant=v, since=since, until=now)
               for v in (champion, name)}
    doc = shadow.analyse(
        stack=config.stack_name, endpoint=endpoint, task=config.model_registry.models[spec.model].task,
        settings=spec.experiment.shadow, champion=champion, shadow=name,
        champion_captures={k: r.predictions for k, r in read[champion].requests.items()},
        shadow_captures={k: r.predictions for k, r in read[name].requests.items()},
        serving=serving, since=since, now=now,
    )
    return doc, [p for found in read.values() for p in found.problems]


def ab_readout(config: StackConfig, *, endpoint: str, since: datetime | None, client: Client,
               now: datetime | None = None) -> tuple[contract.ABReadout, list[str]]:
    """The A/B readout of `endpoint`'s production variants, and the ground-truth and capture lines skipped."""
    spec = _endpoint(config, endpoint)
    variants = ranked(spec)
    if len(variants) < 2:
        raise ExperimentError(f"endpoint {endpoint!r} has one production variant ({variants[0][0]}); an A/B readout needs "
                              "traffic.mode: ab with at least two")
    namer, s3 = _namer(config), client("s3")
    model = config.model_registry.models[spec.model]
    problems: list[str] = []
    labels = captures.read_labels(s3, uri=model.ground_truth_uri or namer.ground_truth_uri(spec.model), since=since, problem=problems.append)
    read = {name: captures.read_variant(s3, root=capture_root(namer, endpoint), variant=name, since=since) for name, _ in variants}
    for found in read.values():
        problems.extend(found.problems)
    doc = ab.readout(
        stack=config.stack_name, endpoint=endpoint, task=model.task, settings=spec.experiment.ab,
        threshold=spec.experiment.shadow.decision_threshold, variants=variants,
        captures={name: {k: r.predictions for k, r in found.requests.items()} for name, found in read.items()},
        labels=labels, since=since, now=now,
    )
    return doc, problems
