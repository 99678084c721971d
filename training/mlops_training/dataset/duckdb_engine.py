"""The point-in-time SQL on DuckDB, over the offline store's Parquet files (local, or downloaded from S3).

The feature table is a view named like the Glue table (`feature_table`), over `read_parquet` of the
files, and the label events are registered under the labels table's name, so the SQL text DuckDB
runs is byte for byte the one Athena receives.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from mlops_training import s3
from mlops_training.data import PARQUET_SUFFIX
from mlops_training.dataset.query import quote

EVENT_TIME_TYPES = {"string": "String", "large_string": "String", "double": "Fractional", "float": "Fractional"}


def parquet_files(source: str, *, download_dir: Path | None = None) -> tuple[list[Path], list[str]]:
    """(local paths, source URIs) of every `*.parquet` under a directory or `s3://bucket/prefix`, path-ordered.

    S3 objects are downloaded into `download_dir` (DuckDB here has no network extension).
    """
    if not s3.is_s3_uri(source):
        root = Path(source)
        if not root.is_dir():
            raise ValueError(f"feature data directory {root} does not exist")
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIX))
        uris = [str(p) for p in paths]
    else:
        if download_dir is None:
            raise ValueError(f"{source}: reading S3 needs a download directory")
        bucket, prefix = s3.split_s3_uri(source)
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        client = s3.client()
        keys = sorted(k for k in s3.list_keys(bucket=bucket, prefix=prefix, s3=client)
                      if k.lower().endswith(PARQUET_SUFFIX))
        paths = []
        for index, key in enumerate(keys):
            path = download_dir / f"{index:06d}.parquet"
            path.write_bytes(s3.get_bytes(bucket=bucket, key=key, s3=client))
            paths.append(path)
        uris = [f"s3://{bucket}/{k}" for k in keys]
    if not paths:
        raise ValueError(f"no {PARQUET_SUFFIX} files under {source}; expected the offline store's Parquet there")
    return paths, uris


class DuckDBEngine:
    """Runs the SQL in an in-process DuckDB database."""

    name = "duckdb"

    def __init__(self, source: str, *, feature_table: str, threads: int | None = None,
                 memory_limit: str | None = None) -> None:
        self.feature_table = feature_table
        self._tmp = tempfile.TemporaryDirectory(prefix="pit-") if s3.is_s3_uri(source) else None
        self._paths, self._uris = parquet_files(source, download_dir=Path(self._tmp.name) if self._tmp else None)
        self._threads = threads
        self._memory_limit = memory_limit

    def sources(self) -> list[str]:
        """The Parquet files read."""
        return list(self._uris)

    def event_time_type(self, column: str) -> str:
        """`String` or `Fractional`, from the first file's Parquet schema."""
        import pyarrow.parquet as pq

        schema = pq.read_schema(self._paths[0])
        if column not in schema.names:
            raise ValueError(f"{self._uris[0]}: no event time column {column!r}; columns: {', '.join(schema.names)}")
        found = str(schema.field(column).type)
        if found not in EVENT_TIME_TYPES:
            raise ValueError(
                f"{self._uris[0]}: event time {column!r} has type {found}; allowed: string (ISO-8601) or double "
                "(epoch seconds)"
            )
        return EVENT_TIME_TYPES[found]

    def run(self, sql: str, *, labels: pa.Table, labels_table: str) -> pa.Table:
        """Register the label events and the feature view, run `sql`, return the result as Arrow."""
        import duckdb

        con = duckdb.connect(":memory:")
        try:
            if self._threads:
                con.execute(f"SET threads = {int(self._threads)}")
            if self._memory_limit:
                con.execute("SET memory_limit = ?", [self._memory_limit])
            # A view cannot take parameters: the file list goes in as string literals (quotes doubled).
            files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in self._paths)
            # hive_partitioning off: the year=/month=/day=/hour= folders must not add columns that could shadow
            # a feature called `hour`; union_by_name: files written before a feature was added lack it.
            con.execute(
                f"CREATE VIEW {quote(self.feature_table, what='feature table')} AS "
                f"SELECT * FROM read_parquet([{files}], hive_partitioning = false, union_by_name = true)"
            )
            con.register(labels_table, labels)
            return con.sql(sql).to_arrow_table()
        finally:
            con.close()

    def close(self) -> None:
        """Remove downloaded files."""
        if self._tmp is not None:
            self._tmp.cleanup()
