"""The point-in-time SQL on Athena, over the feature group's Glue table (the offline store).

The Glue table and its database come from DescribeFeatureGroup's
`OfflineStoreConfig.DataCatalogConfig`; the event time type from its `FeatureDefinitions`.

Label events become a table of their own: the builder's labels table is written as one Parquet
file to `<labels_prefix>/<labels table name>/labels.parquet` and declared with
`CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION ...` in the feature group's Glue database
(an external table scales to any number of events, where a VALUES list is capped by Athena's
262 144-byte query length). The table name is a hash of the events, so a rerun reuses it; it is
dropped when the query has finished (the Parquet object stays, for audit).

The point-in-time query itself is the exact text `query.render` returns, the one DuckDB runs; it is
sent with the Glue database as the query's default database, so the unqualified table names resolve.
Results are read with GetQueryResults (1 000 rows a page) and typed from the result's column
metadata.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_training import s3

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
LABELS_FILE = "labels.parquet"
_TYPES: dict[str, tuple[pa.DataType, Callable[[str], Any]]] = {
    "varchar": (pa.string(), str),
    "char": (pa.string(), str),
    "string": (pa.string(), str),
    "bigint": (pa.int64(), int),
    "integer": (pa.int32(), int),
    "int": (pa.int32(), int),
    "smallint": (pa.int16(), int),
    "tinyint": (pa.int8(), int),
    "double": (pa.float64(), float),
    "float": (pa.float32(), float),
    "real": (pa.float32(), float),
    "boolean": (pa.bool_(), lambda v: v == "true"),
    "timestamp": (pa.timestamp("ms"), lambda v: datetime.fromisoformat(v)),
}
_EVENT_TIME_TYPES = {"String": "String", "Fractional": "Fractional"}


def _client(service: str) -> Any:
    import boto3

    # As mlops_training.s3.client: botocore reads only AWS_DEFAULT_REGION, EKS sets AWS_REGION.
    region = None if os.environ.get("AWS_DEFAULT_REGION") else os.environ.get("AWS_REGION") or None
    return boto3.client(service, region_name=region)


class AthenaEngine:
    """Runs the SQL in Athena against the feature group's offline store table."""

    name = "athena"

    def __init__(
        self,
        feature_group: str,
        *,
        output_location: str,
        labels_prefix: str,
        workgroup: str = "primary",
        poll_seconds: float = 1.0,
        timeout_seconds: float = 3600.0,
        sagemaker: Any = None,
        athena: Any = None,
        s3_client: Any = None,
    ) -> None:
        for name, value in (("output_location", output_location), ("labels_prefix", labels_prefix)):
            if not s3.is_s3_uri(value):
                raise ValueError(f"{name}={value!r}; expected s3://bucket/prefix")
        self._athena = athena or _client("athena")
        self._s3 = s3_client or s3.client()
        described = (sagemaker or _client("sagemaker")).describe_feature_group(FeatureGroupName=feature_group)
        catalog = described.get("OfflineStoreConfig", {}).get("DataCatalogConfig")
        if not catalog:
            raise ValueError(f"feature group {feature_group!r} has no offline store Glue table (DataCatalogConfig)")
        self.feature_table: str = catalog["TableName"]
        self.database: str = catalog["Database"]
        self.catalog: str = catalog.get("Catalog", "AwsDataCatalog")
        self._definitions = {d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]}
        self._output = output_location.rstrip("/") + "/"
        self._labels_prefix = labels_prefix.rstrip("/")
        self._workgroup = workgroup
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self.executions: list[str] = []
        """Query execution ids, in the order they were started."""

    def sources(self) -> list[str]:
        """The Glue table read."""
        return [f"glue://{self.catalog}/{self.database}/{self.feature_table}"]

    def event_time_type(self, column: str) -> str:
        """`String` or `Fractional`, from the feature group's definitions."""
        found = self._definitions.get(column)
        if found not in _EVENT_TIME_TYPES:
            raise ValueError(
                f"feature group event time {column!r} has type {found!r}; allowed: String or Fractional"
            )
        return _EVENT_TIME_TYPES[found]

    def run(self, sql: str, *, labels: pa.Table, labels_table: str) -> pa.Table:
        """Upload and declare the label events, run `sql`, drop the labels table, return the result."""
        location = f"{self._labels_prefix}/{labels_table}/"
        sink = io.BytesIO()
        pq.write_table(labels, sink)
        bucket, key = s3.split_s3_uri(location + LABELS_FILE)
        self._s3.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
        self._execute(
            f"CREATE EXTERNAL TABLE IF NOT EXISTS `{labels_table}` "
            "(label_id bigint, record_id string, label double, label_time string) "
            f"STORED AS PARQUET LOCATION '{location}'"
        )
        try:
            return self._results(self._execute(sql))
        finally:
            self._execute(f"DROP TABLE IF EXISTS `{labels_table}`")

    def _execute(self, text: str) -> str:
        started = self._athena.start_query_execution(
            QueryString=text,
            QueryExecutionContext={"Database": self.database, "Catalog": self.catalog},
            ResultConfiguration={"OutputLocation": self._output},
            WorkGroup=self._workgroup,
        )
        execution_id = started["QueryExecutionId"]
        self.executions.append(execution_id)
        deadline = time.monotonic() + self._timeout
        while True:
            status = self._athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            if status["State"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Athena query {execution_id} still {status['State']} after {self._timeout}s")
            time.sleep(self._poll)
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason", "no reason given")
            raise RuntimeError(f"Athena query {execution_id} {status['State']}: {reason}")
        return execution_id

    def _results(self, execution_id: str) -> pa.Table:
        columns: list[dict[str, Any]] = []
        values: list[list[Any]] = []
        first = True
        paginator = self._athena.get_paginator("get_query_results")
        for page in paginator.paginate(QueryExecutionId=execution_id):
            if not columns:
                columns = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
                values = [[] for _ in columns]
            rows = page["ResultSet"]["Rows"]
            if first:
                rows = rows[1:]  # a SELECT's first row repeats the column names
                first = False
            for row in rows:
                for index, cell in enumerate(row["Data"]):
                    values[index].append(cell.get("VarCharValue"))
        return pa.table({c["Name"]: _typed(c, v) for c, v in zip(columns, values)})


def _typed(column: dict[str, Any], values: list[str | None]) -> pa.Array:
    kind = column["Type"].split("(")[0].lower()
    if kind not in _TYPES:
        raise ValueError(f"Athena result column {column['Name']!r} has type {column['Type']!r}; "
                         f"this reader knows {', '.join(sorted(_TYPES))}")
    arrow_type, convert = _TYPES[kind]
    return pa.array([None if v is None else convert(v) for v in values], type=arrow_type)
