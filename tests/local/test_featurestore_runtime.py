"""The local AWS endpoint (`python -m mlops.local.aws_server`) serves SageMaker Feature Store's runtime
next to moto: real boto3 clients over HTTP against the server started as the local environment starts it."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pyarrow.parquet as pq
import pytest
import requests
from botocore.exceptions import ClientError

from mlops.local.environment import free_port, wait_http

REGION = "eu-west-1"
BUCKET = "features"
GROUP = "transactions"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The local AWS endpoint as a subprocess, started with the argv LocalEnvironment uses."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops.local.aws_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/moto-api/", timeout_s=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _client(service: str, url: str, **config: Any) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local",
        config=botocore.config.Config(**config) if config else None,
    )


@pytest.fixture
def aws(endpoint: str) -> dict[str, Any]:
    """A reset endpoint with the offline store's bucket; clients for S3, SageMaker and the runtime."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    clients = {name: _client(name, endpoint) for name in ("s3", "sagemaker", "sagemaker-featurestore-runtime")}
    clients["s3"].create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients["url"] = endpoint
    return clients


def create_group(
    sagemaker: Any, name: str = GROUP, *, online: bool = True, ttl: dict[str, Any] | None = None, event_time_type: str = "Fractional"
) -> None:
    online_config: dict[str, Any] = {"EnableOnlineStore": online}
    if ttl:
        online_config["TtlDuration"] = ttl
    sagemaker.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="transaction_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[
            {"FeatureName": "transaction_id", "FeatureType": "String"},
            {"FeatureName": "event_time", "FeatureType": event_time_type},
            {"FeatureName": "amount", "FeatureType": "Fractional"},
            {"FeatureName": "n_items", "FeatureType": "Integral"},
            {"FeatureName": "country", "FeatureType": "String"},
        ],
        OnlineStoreConfig=online_config,
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/offline"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store",
    )


def record(transaction_id: str, event_time: datetime, **features: Any) -> list[dict[str, str]]:
    values = {"transaction_id": transaction_id, "event_time": f"{event_time.timestamp():.3f}", **features}
    return [{"FeatureName": k, "ValueAsString": str(v)} for k, v in values.items()]


def ago(**delta: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(**delta)


def iso_ms(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds, the form AWS gives ExpiresAt in."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parquet_rows(s3: Any) -> list[tuple[str, dict[str, Any]]]:
    """(key, row) for every offline-store file in the bucket, oldest write first."""
    rows = []
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="offline/").get("Contents", []):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()))
        rows += [(obj["Key"], row) for row in table.to_pylist()]
    return sorted(rows, key=lambda kr: (kr[1]["write_time"], kr[0]))


def test_put_then_get_returns_the_exact_record_and_filters_feature_names(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    sent = record("t-1", ago(hours=1), amount=120.5, n_items=3, country="de")
    runtime.put_record(FeatureGroupName=GROUP, Record=sent)

    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")
    assert got["Record"] == sent
    assert "ExpiresAt" not in got
    some = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", FeatureNames=["amount", "country"])
    assert some["Record"] == [{"FeatureName": "amount", "ValueAsString": "120.5"}, {"FeatureName": "country", "ValueAsString": "de"}]
    absent = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-404")
    assert "Record" not in absent


def test_online_store_keeps_the_record_with_the_latest_event_time(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=2), amount=1.0))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1), amount=2.0))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=3), amount=3.0))

    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", FeatureNames=["amount"])
    assert got["Record"] == [{"FeatureName": "amount", "ValueAsString": "2.0"}]
    # the offline store is the history: every write, the older one included
    assert sorted(row["amount"] for _, row in parquet_rows(aws["s3"])) == [1.0, 2.0, 3.0]


def test_iso_8601_event_times_order_records_and_other_formats_are_refused(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"], event_time_type="String", ttl={"Unit": "Hours", "Value": 1})
    runtime = aws["sagemaker-featurestore-runtime"]
    newer, older = ago(minutes=10), ago(minutes=20)
    runtime.put_record(FeatureGroupName=GROUP, Record=[
        {"FeatureName": "transaction_id", "ValueAsString": "t-1"}, {"FeatureName": "event_time", "ValueAsString": iso_ms(newer)}])
    runtime.put_record(FeatureGroupName=GROUP, Record=[
        {"FeatureName": "transaction_id", "ValueAsString": "t-1"}, {"FeatureName": "event_time", "ValueAsString": f"{older:%Y-%m-%dT%H:%M:%SZ}"}])

    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", ExpirationTimeResponse="Enabled")
    assert got["Record"][1] == {"FeatureName": "event_time", "ValueAsString": iso_ms(newer)}
    assert got["ExpiresAt"] == iso_ms(newer + timedelta(hours=1))
    with pytest.raises(runtime.exceptions.ValidationError, match="is not ISO 8601 UTC"):
        runtime.put_record(FeatureGroupName=GROUP, Record=[
            {"FeatureName": "transaction_id", "ValueAsString": "t-2"}, {"FeatureName": "event_time", "ValueAsString": f"{newer:%Y-%m-%d %H:%M:%S}"}])


def test_expired_records_are_gone_and_expires_at_is_returned_only_when_enabled(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"], ttl={"Unit": "Days", "Value": 1})
    runtime = aws["sagemaker-featurestore-runtime"]
    live_time = ago(hours=1)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("live", live_time))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("expired", ago(days=2)))

    enabled = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="live", ExpirationTimeResponse="Enabled")
    expected = (live_time + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert enabled["ExpiresAt"] == expected
    disabled = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="live", ExpirationTimeResponse="Disabled")
    assert "ExpiresAt" not in disabled and disabled["Record"]
    for flag in ("Enabled", "Disabled"):
        gone = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="expired", ExpirationTimeResponse=flag)
        assert "Record" not in gone
    batch = runtime.batch_get_record(
        Identifiers=[{"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["live", "expired"]}], ExpirationTimeResponse="Enabled"
    )
    assert [(r["RecordIdentifierValueAsString"], r["ExpiresAt"]) for r in batch["Records"]] == [("live", expected)]


def test_record_ttl_supersedes_the_group_ttl(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"], ttl={"Unit": "Days", "Value": 1})
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("longer", ago(days=2)), TtlDuration={"Unit": "Weeks", "Value": 1})
    runtime.put_record(FeatureGroupName=GROUP, Record=record("shorter", ago(hours=2)), TtlDuration={"Unit": "Minutes", "Value": 30})

    assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="longer")["Record"]
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="shorter")


def test_batch_get_omits_unknown_ids_and_reports_unknown_groups_in_errors(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1), country="fr"))
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-2", ago(hours=1), country="it"))

    answer = runtime.batch_get_record(Identifiers=[
        {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": ["t-1", "t-missing", "t-2"], "FeatureNames": ["country"]},
        {"FeatureGroupName": "no-such-group", "RecordIdentifiersValueAsString": ["x"]},
    ])
    assert [(r["RecordIdentifierValueAsString"], r["Record"]) for r in answer["Records"]] == [
        ("t-1", [{"FeatureName": "country", "ValueAsString": "fr"}]),
        ("t-2", [{"FeatureName": "country", "ValueAsString": "it"}]),
    ]
    assert [(e["FeatureGroupName"], e["RecordIdentifierValueAsString"], e["ErrorCode"]) for e in answer["Errors"]] == [
        ("no-such-group", "x", "ResourceNotFound")
    ]
    assert answer["UnprocessedIdentifiers"] == []


def test_soft_delete_hides_the_record_until_a_newer_put(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=3), amount=1.0))
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", EventTime=f"{ago(hours=2).timestamp()}")
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")

    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=2, minutes=30), amount=2.0))
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1), amount=3.0))
    got = runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", FeatureNames=["amount"])
    assert got["Record"] == [{"FeatureName": "amount", "ValueAsString": "3.0"}]


def test_hard_delete_removes_the_record_and_refuses_an_event_time_not_later(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=2)))
    with pytest.raises(ClientError) as stale:
        runtime.delete_record(
            FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", EventTime=f"{ago(hours=3).timestamp()}", DeletionMode="HardDelete"
        )
    assert stale.value.response["Error"]["Code"] == "ValidationError"
    assert "not later than the stored record's" in stale.value.response["Error"]["Message"]
    assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")["Record"]
    assert not any(row["is_deleted"] for _, row in parquet_rows(aws["s3"]))  # a refused HardDelete writes no marker

    runtime.delete_record(
        FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", EventTime=f"{ago(hours=1).timestamp()}", DeletionMode="HardDelete"
    )
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")
    # hard-deleted means gone: an older record may take its place
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=5)))
    assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")["Record"]


def test_a_feature_not_in_the_group_is_a_validation_error_naming_it(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    with pytest.raises(ClientError) as caught:
        runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1), colour="red"))
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationError"
    assert "['colour']" in error["Message"] and GROUP in error["Message"]

    without_event_time = [fv for fv in record("t-1", ago(hours=1)) if fv["FeatureName"] != "event_time"]
    with pytest.raises(ClientError, match="event_time"):
        runtime.put_record(FeatureGroupName=GROUP, Record=without_event_time)
    with pytest.raises(ClientError, match="not an Integral value"):
        runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1), n_items="three"))
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")


def test_requests_are_validated_against_botocores_model(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    # the client-side check is off so that the server's own validation answers
    unchecked = _client("sagemaker-featurestore-runtime", aws["url"], parameter_validation=False)
    with pytest.raises(ClientError) as empty:
        unchecked.put_record(FeatureGroupName=GROUP, Record=[])
    assert empty.value.response["Error"]["Code"] == "ValidationError"
    assert "Invalid length for parameter Record, value: 0, valid min length: 1" in empty.value.response["Error"]["Message"]
    assert empty.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ValidationError"

    with pytest.raises(ClientError, match="DeletionMode='Sometimes' is not one of SoftDelete, HardDelete"):
        unchecked.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", EventTime="1", DeletionMode="Sometimes")
    with pytest.raises(ClientError, match="Invalid value for parameter TtlDuration.Value, value: 0, valid min value: 1"):
        unchecked.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1)), TtlDuration={"Unit": "Days", "Value": 0})
    with pytest.raises(ClientError, match="TtlDuration.Unit='Years' is not one of Seconds"):
        unchecked.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1)), TtlDuration={"Unit": "Years", "Value": 1})
    assert "Record" not in unchecked.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")


def test_an_unknown_feature_group_is_reported_as_aws_reports_it(aws: dict[str, Any]) -> None:
    runtime = aws["sagemaker-featurestore-runtime"]
    with pytest.raises(runtime.exceptions.ResourceNotFound) as get:
        runtime.get_record(FeatureGroupName="no-such-group", RecordIdentifierValueAsString="t-1")
    assert get.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "can't find a FeatureGroup with name no-such-group" in get.value.response["Error"]["Message"]
    # PutRecord's model has no ResourceNotFound: AWS answers a ValidationError with the same text
    with pytest.raises(runtime.exceptions.ValidationError, match="can't find a FeatureGroup with name no-such-group"):
        runtime.put_record(FeatureGroupName="no-such-group", Record=record("t-1", ago(hours=1)))


def test_offline_store_gets_parquet_in_sagemakers_layout_with_delete_markers(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    event_time = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", event_time, amount=9.5, n_items=2, country="de"))
    runtime.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1", EventTime=f"{event_time.timestamp() + 3600}")

    resolved = aws["sagemaker"].describe_feature_group(FeatureGroupName=GROUP)["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    prefix = resolved.removeprefix(f"s3://{BUCKET}/")
    (put_key, put_row), (delete_key, delete_row) = parquet_rows(aws["s3"])
    assert put_key.startswith(f"{prefix}/year=2026/month=03/day=04/hour=05/") and put_key.endswith(".parquet")
    assert delete_key.startswith(f"{prefix}/year=2026/month=03/day=04/hour=06/")
    stamp, _, rest = put_key.rsplit("/", 1)[1].partition("_")
    assert len(stamp) == len("20260304T050607Z") and stamp.endswith("Z") and len(rest) == len("0123456789abcdef.parquet")
    assert {k: put_row[k] for k in ("transaction_id", "event_time", "amount", "n_items", "country", "is_deleted")} == {
        "transaction_id": "t-1", "event_time": event_time.timestamp(), "amount": 9.5, "n_items": 2, "country": "de", "is_deleted": False,
    }
    assert isinstance(put_row["write_time"], datetime) and isinstance(put_row["api_invocation_time"], datetime)
    assert delete_row["is_deleted"] is True and delete_row["transaction_id"] == "t-1"
    assert delete_row["event_time"] == event_time.timestamp() + 3600
    assert delete_row["amount"] is None and delete_row["country"] is None


def test_target_stores_limit_where_a_record_goes(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("offline-only", ago(hours=1)), TargetStores=["OfflineStore"])
    runtime.put_record(FeatureGroupName=GROUP, Record=record("online-only", ago(hours=1)), TargetStores=["OnlineStore"])

    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="offline-only")
    assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="online-only")["Record"]
    assert [row["transaction_id"] for _, row in parquet_rows(aws["s3"])] == ["offline-only"]


def test_a_group_without_an_online_store_has_nothing_to_read(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"], name="history", online=False)
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName="history", Record=record("t-1", ago(hours=1)))
    assert [row["transaction_id"] for _, row in parquet_rows(aws["s3"])] == ["t-1"]
    with pytest.raises(runtime.exceptions.ValidationError, match="has no online store"):
        runtime.get_record(FeatureGroupName="history", RecordIdentifierValueAsString="t-1")
    with pytest.raises(runtime.exceptions.ValidationError, match="has only"):
        runtime.put_record(FeatureGroupName="history", Record=record("t-2", ago(hours=1)), TargetStores=["OnlineStore"])


def test_moto_apis_still_answer_on_the_same_port_and_a_group_created_anew_starts_empty(aws: dict[str, Any]) -> None:
    create_group(aws["sagemaker"])
    runtime = aws["sagemaker-featurestore-runtime"]
    runtime.put_record(FeatureGroupName=GROUP, Record=record("t-1", ago(hours=1)))
    assert [b["Name"] for b in aws["s3"].list_buckets()["Buckets"]] == [BUCKET]
    assert aws["sagemaker"].describe_feature_group(FeatureGroupName=GROUP)["RecordIdentifierFeatureName"] == "transaction_id"

    requests.post(f"{aws['url']}/moto-api/reset", timeout=10).raise_for_status()
    create_group(aws["sagemaker"])
    assert "Record" not in runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")


def test_the_local_environment_serves_the_runtime_on_its_aws_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.local.environment import STATE_ROOT_ENV, LocalEnvironment

    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env = LocalEnvironment("fs-runtime-test")
    try:
        env.start_moto()
        assert [p.role for p in env.processes()] == ["moto"]
        env.client("s3", REGION).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        create_group(env.client("sagemaker", REGION))
        runtime = env.client("sagemaker-featurestore-runtime", REGION)
        sent = record("t-1", ago(hours=1), amount=4.25)
        runtime.put_record(FeatureGroupName=GROUP, Record=sent)
        assert runtime.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString="t-1")["Record"] == sent
    finally:
        env.down()
