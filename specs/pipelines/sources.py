"""What a model's retraining pipeline reads and compares with, derived from the stack configuration:
the label sources of its Dataset step and the champions of its Evaluate step.

Label sources. Every endpoint of the stack that serves the model with data capture on captures its requests under
`s3://<capture bucket>/datacapture/<endpoint name>/` (specs.hosting's DestinationS3Uri; SageMaker adds
the endpoint name); joined with the model's ground truth (`ModelConfig.ground_truth_uri`, default
`Namer.ground_truth_uri`) they are the label events. A model that no endpoint of the stack serves has no
captures, so it cannot have ground truth keyed by inference id either: its label events come from one
Parquet object, `s3://<features bucket>/labels/<model>/label_events.parquet`, with the columns
`record_id`, `label` and `label_time` (UTC timestamp), the format `mlops-train dataset --label-events` reads.

A processing job fails when an input prefix holds no object (SageMaker's rule, and the local executor's):
a run fails at its Dataset step until the endpoints have captured requests and ground truth has arrived
(or, without endpoints, until the label events object exists).

Champions. For each endpoint serving the model, the production variant with the highest weight (a shadow
endpoint's one production variant), named "<endpoint>/<variant>"; variants that pin the same artifact
are compared once.

Must not import: `pulumi`, `pulumi_aws`, `components`, `mlops` or the containers' packages (pure layer).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from specs import lineage
from specs.config.schema import StackConfig
from specs.naming import Namer

LABEL_EVENTS_FILE = "label_events.parquet"


class RetrainingSources(BaseModel):
    """What one model's pipeline reads besides its feature group's offline store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_group: str
    """The feature group's AWS name (`mlops-train dataset --feature-group`)."""
    captures: tuple[str, ...] = ()
    """Capture roots (s3://.../datacapture/<endpoint name>) of the endpoints serving the model, sorted."""
    ground_truth_uri: str | None = None
    """The model's ground-truth prefix; set exactly when `captures` is."""
    label_events_uri: str | None = None
    """The Parquet label events of a model no endpoint serves; set exactly when `captures` is not."""
    champions: tuple[tuple[str, str], ...] = ()
    """(name "<endpoint>/<variant>", model_data_url) of each champion, distinct URIs, sorted by name."""
    config_hash: str
    """specs.lineage.config_hash of the stack for this model."""


def label_events_uri(namer: Namer, model: str) -> str:
    """Where the label events of a model that no endpoint serves are read from."""
    return f"s3://{namer.bucket('features')}/labels/{model}/{LABEL_EVENTS_FILE}"


def capture_root(namer: Namer, endpoint: str) -> str:
    """Where SageMaker writes an endpoint's captures (DestinationS3Uri + the endpoint's name)."""
    return f"s3://{namer.bucket('capture')}/datacapture/{namer.endpoint(endpoint)}"


def _champions(config: StackConfig, model: str) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for name in sorted(config.endpoints):
        endpoint = config.endpoints[name]
        if endpoint.model != model:
            continue
        production = endpoint.production_variants()
        if not production:
            continue
        # The highest weight answers most traffic; ties go to the first variant by name.
        variant = max(sorted(production), key=lambda v: getattr(production[v], "weight", 1.0))
        uri = production[variant].model_data_url
        if uri not in seen.values():
            seen[f"{name}/{variant}"] = uri
    return tuple(sorted(seen.items()))


def retraining_sources(config: StackConfig, namer: Namer, model: str) -> RetrainingSources:
    """The sources of `model`'s pipeline in this stack (KeyError for a model the stack does not declare)."""
    spec = config.model_registry.models[model]
    serving = sorted(name for name, endpoint in config.endpoints.items()
                     if endpoint.model == model and endpoint.data_capture.enabled)
    captures = tuple(capture_root(namer, name) for name in serving)
    return RetrainingSources(
        feature_group=namer.feature_group(spec.feature_group),
        captures=captures,
        ground_truth_uri=(spec.ground_truth_uri or namer.ground_truth_uri(model)) if captures else None,
        label_events_uri=None if captures else label_events_uri(namer, model),
        champions=_champions(config, model),
        config_hash=lineage.config_hash(config, model),
    )
