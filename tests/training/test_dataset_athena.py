"""The Athena engine against moto's server: the exact SQL text DuckDB runs goes to Athena.

moto does not execute SQL: a SELECT returns the rows queued through its `/moto-api/static/athena/query-results`
endpoint. The test queues the rows DuckDB computed (in Athena's text form), so what is exercised is
the request sequence, the text sent, the labels upload and DDL, and the typing of the result pages
back into the same dataset; Trino's acceptance of the text is not.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from botocore.validate import ParamValidator

from mlops_training.dataset import build
from mlops_training.dataset.athena_engine import AthenaEngine
from mlops_training.dataset.duckdb_engine import DuckDBEngine

from .dataset_helpers import at, events, feature_row, request, write_offline_store

REGION = "eu-west-1"
BUCKET = "feature-store"
GROUP = "transactions"

_ATHENA_TYPES = {pa.string(): "varchar", pa.float64(): "double", pa.int64(): "bigint", pa.bool_(): "boolean"}


def _athena_rows(table: pa.Table) -> dict[str, Any]:
    """A result table in GetQueryResults' form: a header row, then every value as text."""
    column_info, header = [], {"Data": [{"VarCharValue": name} for name in table.column_names]}
    for field in table.schema:
        kind = "timestamp" if pa.types.is_timestamp(field.type) else _ATHENA_TYPES[field.type]
        column_info.append({"Name": field.name, "Label": field.name, "Type": kind, "Nullable": "UNKNOWN",
                            "CatalogName": "hive", "SchemaName": "", "TableName": "", "Precision": 0, "Scale": 0,
                            "CaseSensitive": kind == "varchar"})

    def text(value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if isinstance(value, bool):
            return {"VarCharValue": "true" if value else "false"}
        if isinstance(value, float):
            assert math.isfinite(value)
            return {"VarCharValue": repr(value)}
        if hasattr(value, "strftime"):
            return {"VarCharValue": value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}
        return {"VarCharValue": str(value)}

    rows = [header] + [{"Data": [text(v) for v in row.values()]} for row in table.to_pylist()]
    return {"rows": rows, "column_info": column_info}


def _queue(moto: str, *results: dict[str, Any]) -> None:
    requests.post(f"{moto}/moto-api/static/athena/query-results",
                  json={"account_id": "123456789012", "region": REGION, "results": list(results)},
                  timeout=10).raise_for_status()


def _validated_client(service: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """A client that checks every request against botocore's model of the service and records it."""
    client = boto3.client(service, region_name=REGION)
    validator = ParamValidator()

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        report = validator.validate(params, model.input_shape)
        assert not report.has_errors(), report.generate_report()
        calls.append((model.name, params))

    client.meta.events.register(f"provide-client-params.{service}.*", lambda params, model, **kw: check(params, model))
    return client


def _feature_group(sagemaker: Any) -> None:
    sagemaker.create_feature_group(
        FeatureGroupName=GROUP, RecordIdentifierFeatureName="transaction_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": "transaction_id", "FeatureType": "String"},
                            {"FeatureName": "event_time", "FeatureType": "String"},
                            {"FeatureName": "amount", "FeatureType": "Fractional"}],
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/offline"}},
        RoleArn="arn:aws:iam::123456789012:role/feature-store",
    )


def test_athena_receives_the_exact_sql_duckdb_runs_and_builds_the_same_dataset(aws: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    calls: list[tuple[str, dict[str, Any]]] = []
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _feature_group(sagemaker)
    athena = AthenaEngine(
        GROUP, output_location=f"s3://{BUCKET}/athena-results/", labels_prefix=f"s3://{BUCKET}/labels",
        poll_seconds=0.01, sagemaker=sagemaker, athena=_validated_client("athena", calls), s3_client=s3,
    )
    rows = [feature_row("t1", event=0, value=10.0), feature_row("t1", event=5, value=50.0),
            feature_row("t2", event=1, value=20.0), feature_row("t2", event=2, value=0.0, deleted=True)]
    label_events = events(("t1", 1, 2), ("t1", 0, 6), ("t2", 1, 3), ("t3", 0, 4), ("t1", 1, 7))
    store = write_offline_store(tmp_path / "store", rows)
    local = DuckDBEngine(str(store), feature_table=athena.feature_table)

    prepared = build.prepare_labels(label_events)
    duck_sql, labels_table, _ = build.render_for(request(cutoff=at(6.5)), engine=local, labels=prepared)
    duck_result = local.run(duck_sql, labels=prepared, labels_table=labels_table)
    empty = {"rows": [], "column_info": []}
    _queue(aws, empty, _athena_rows(duck_result), empty)  # CREATE EXTERNAL TABLE, the SELECT, DROP TABLE

    from_duckdb = build.build(request(cutoff=at(6.5)), engine=local, events=label_events, out=tmp_path / "duckdb")
    from_athena = build.build(request(cutoff=at(6.5)), engine=athena, events=label_events, out=tmp_path / "athena")

    sent = [athena._athena.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"]
            for i in athena.executions]
    assert sent[1] == from_duckdb.sql == from_athena.sql == duck_sql
    assert sent[0] == (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS `{labels_table}` (label_id bigint, record_id string, label double, "
        f"label_time string) STORED AS PARQUET LOCATION 's3://{BUCKET}/labels/{labels_table}/'"
    )
    assert sent[2] == f"DROP TABLE IF EXISTS `{labels_table}`"
    assert [name for name, _ in calls].count("StartQueryExecution") == 3
    context = next(p for name, p in calls if name == "StartQueryExecution")["QueryExecutionContext"]
    assert context == {"Database": "sagemaker_featurestore", "Catalog": "AwsDataCatalog"}

    uploaded = s3.get_object(Bucket=BUCKET, Key=f"labels/{labels_table}/labels.parquet")["Body"].read()
    assert pq.read_table(pa.BufferReader(uploaded)).equals(prepared)
    assert from_athena.manifest.content_hash == from_duckdb.manifest.content_hash
    assert from_athena.manifest.counts == from_duckdb.manifest.counts == {
        "labels_in": 5, "matched": 3, "excluded_no_feature": 1, "excluded_deleted": 1, "train": 2, "validation": 1,
    }
    glue = f"glue://AwsDataCatalog/sagemaker_featurestore/{athena.feature_table}"
    assert from_athena.manifest.doc["sources"] == [glue]


def test_athena_engine_reads_the_event_time_type_from_the_feature_group_and_refuses_bad_locations(aws: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    _feature_group(sagemaker)
    engine = AthenaEngine(GROUP, output_location=f"s3://{BUCKET}/r/", labels_prefix=f"s3://{BUCKET}/labels",
                          poll_seconds=0.01, sagemaker=sagemaker, s3_client=s3)
    assert engine.event_time_type("event_time") == "String"
    assert engine.event_time_type("amount") == "Fractional"
    with pytest.raises(ValueError, match="event time 'missing' has type None; allowed: String or Fractional"):
        engine.event_time_type("missing")
    with pytest.raises(ValueError, match="output_location='athena-results'; expected s3://bucket/prefix"):
        AthenaEngine(GROUP, output_location="athena-results", labels_prefix=f"s3://{BUCKET}/l", sagemaker=sagemaker)
