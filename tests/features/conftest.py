"""Fixtures for ingestion: moto (S3, DescribeFeatureGroup) plus the feature-store runtime stand-in,
the demo-local stack's `transactions` group created in both, and clients that record and validate
every request they send against botocore's models."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters

from specs.config import stack_files
from featurestore_standin import FeatureStoreStandIn
from mlops.features import ingest, online

STACK = "demo-local"
GROUP = "transactions"
BUCKET = "ingest-test-features"


@dataclass
class World:
    config: Any
    target: ingest.Target
    clients: ingest.Clients
    standin: FeatureStoreStandIn
    resolved_uri: str
    sent: list[tuple[str, str]] = field(default_factory=list)
    """(service, operation) of every request the clients sent, in order."""
    invalid: list[str] = field(default_factory=list)


@pytest.fixture
def standin(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStoreStandIn]:
    config = stack_files.load(STACK)
    spec = config.feature_store.feature_groups[GROUP]
    name = ingest.resolve_target(config, GROUP).name
    server = FeatureStoreStandIn(groups={name: (spec.record_identifier, spec.event_time)}).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME", server.url)
    try:
        yield server
    finally:
        server.stop()


def _record_and_validate(world: World) -> Any:
    def hook(params: Any, model: Any, **_: Any) -> None:
        world.sent.append((model.service_model.service_name, model.name))
        try:
            validate_parameters(params, model.input_shape)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on by the tests
            world.invalid.append(f"{model.name}: {exc}")

    return hook


@pytest.fixture
def world(standin: FeatureStoreStandIn) -> World:
    config = stack_files.load(STACK)
    target = ingest.resolve_target(config, GROUP)
    session = boto3.Session(region_name=config.aws.region)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    sagemaker = session.client("sagemaker")
    sagemaker.create_feature_group(
        FeatureGroupName=target.name,
        RecordIdentifierFeatureName=target.spec.record_identifier,
        EventTimeFeatureName=target.spec.event_time,
        FeatureDefinitions=[{"FeatureName": f.name, "FeatureType": f.type} for f in target.spec.features],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/offline-store"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store",
    )
    described = sagemaker.describe_feature_group(FeatureGroupName=target.name)
    resolved = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    # Fresh clients for the code under test, every request recorded and checked against the model.
    session = boto3.Session(region_name=config.aws.region)
    featurestore = session.client("sagemaker-featurestore-runtime", config=online.client_config(workers=4, total_attempts=2))
    w = World(config=config, target=target, standin=standin, resolved_uri=resolved,
              clients=ingest.Clients(s3=session.client("s3"), sagemaker=session.client("sagemaker"), featurestore=featurestore))
    for client in (w.clients.s3, w.clients.sagemaker, w.clients.featurestore):
        client.meta.events.register("before-parameter-build.*.*", _record_and_validate(w))
    return w
