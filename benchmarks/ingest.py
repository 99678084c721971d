"""Feature ingestion: `mlops features ingest` against a naive one-PutRecord-per-row loop and against the
SageMaker SDK's own helper (`sagemaker.mlops.feature_store.feature_utils.ingest_dataframe`, which
drives `IngestionManagerPandas`), into local stores on this machine.

Local stores: moto's server (S3 for the offline store, DescribeFeatureGroup) and, for the online
store, the PutRecord stand-in of tests/features (moto does not serve sagemaker-featurestore-runtime);
the stand-in validates every request against botocore's model, so it costs server CPU on the same
cores. Data: N rows x 30 features (record id String, event time String over 48 hours, 14 Fractional,
14 Integral) in one Parquet file.

Ours runs in phases that are timed apart: validation plus the offline store on all rows (the
whole pipeline minus PutRecord), and the online store on the first --online-rows rows. The naive loop
and the SDK run on the first --naive-rows / --sdk-rows rows. rows/s of a subset is extrapolated to N
only where the output says "extrapolated".

    python benchmarks/ingest.py --rows 1000000 --online-rows 20000 --naive-rows 2000 --sdk-rows 2000

Must not import: `pulumi` or its providers, `components` or `policypack` (a benchmark measures code, it
deploys nothing).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import boto3  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from mlops.features import ingest, online  # noqa: E402
from specs.features.validate import FeatureSpec, GroupSpec  # noqa: E402

GROUP_NAME = "bench-features"
REGION = "us-east-1"
BUCKET = "bench-offline"
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


def group_spec() -> GroupSpec:
    features = [FeatureSpec(name="id", type="String"), FeatureSpec(name="event_time", type="String")]
    features += [FeatureSpec(name=f"f{i:02d}", type="Fractional", min=-10, max=10) for i in range(14)]
    features += [FeatureSpec(name=f"i{i:02d}", type="Integral", min=0, max=1000) for i in range(14)]
    return GroupSpec(record_identifier="id", event_time="event_time", features=tuple(features))


def make_source(path: Path, rows: int, spec: GroupSpec) -> Path:
    rng = np.random.default_rng(0)
    start = NOW - dt.timedelta(hours=48)
    seconds = np.sort(rng.integers(0, 48 * 3600, rows))
    columns: dict[str, Any] = {
        "id": [f"r{i:08d}" for i in range(rows)],
        "event_time": [(start + dt.timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds],
    }
    for f in spec.features[2:]:
        columns[f.name] = rng.normal(0, 2, rows).clip(-10, 10) if f.type == "Fractional" else rng.integers(0, 1001, rows)
    pq.write_table(pa.table(columns), path)
    return path


def start_stores(spec: GroupSpec) -> tuple[Any, Any, str]:
    """moto in this process (a few S3 calls per batch); the PutRecord stand-in in a process of its own."""
    import subprocess

    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    standin = subprocess.Popen([sys.executable, str(ROOT / "tests" / "features" / "featurestore_standin.py"), f"{GROUP_NAME}:id:event_time"],
                               stdout=subprocess.PIPE, text=True)
    url = standin.stdout.readline().strip()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION=REGION,
                      AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME=url)
    session = boto3.Session(region_name=REGION)
    session.client("s3").create_bucket(Bucket=BUCKET)
    session.client("sagemaker").create_feature_group(
        FeatureGroupName=GROUP_NAME, RecordIdentifierFeatureName="id", EventTimeFeatureName="event_time",
        FeatureDefinitions=[{"FeatureName": f.name, "FeatureType": f.type} for f in spec.features],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/offline-store"}},
        RoleArn="arn:aws:iam::123456789012:role/bench",
    )
    return moto, standin, f"http://{host}:{port}"


def run_ours(source: Path, spec: GroupSpec, *, online_rows: int, workers: int, batch_size: int) -> dict[str, Any]:
    session = boto3.Session(region_name=REGION)
    clients = ingest.Clients(s3=session.client("s3"), sagemaker=session.client("sagemaker"),
                             featurestore=session.client("sagemaker-featurestore-runtime", config=online.client_config(workers=workers)))
    request = ingest.IngestRequest(source=str(source), report=source.with_suffix(".rejects.jsonl"), batch_size=batch_size, workers=workers)
    offline_only = ingest.Target(key="bench", name=GROUP_NAME, spec=spec, online=False, offline=True)
    started = time.perf_counter()
    summary = ingest.ingest(request, offline_only, clients=clients)
    offline_s = time.perf_counter() - started
    assert summary.written == summary.rows and summary.rejects == 0, summary
    subset = source.with_name("online-subset.parquet")
    pq.write_table(pq.read_table(source).slice(0, online_rows), subset)
    online_only = ingest.Target(key="bench", name=GROUP_NAME, spec=spec, online=True, offline=False)
    started = time.perf_counter()
    sub = ingest.ingest(ingest.IngestRequest(source=str(subset), report=subset.with_suffix(".rejects.jsonl"), workers=workers),
                        online_only, clients=clients)
    online_s = time.perf_counter() - started
    online_rps = sub.rows / online_s
    return {
        "rows": summary.rows, "offline_files": len(summary.offline_keys),
        "validate_and_offline_s": round(offline_s, 2), "validate_and_offline_rows_per_s": round(summary.rows / offline_s),
        "online_rows": sub.rows, "online_s": round(online_s, 2), "online_rows_per_s": round(online_rps),
        "both_stores_rows_per_s_extrapolated": round(summary.rows / (offline_s + summary.rows / online_rps)),
    }


def run_naive(source: Path, rows: int) -> dict[str, Any]:
    """One PutRecord per row, one thread, values as text: what a first script does."""
    client = boto3.Session(region_name=REGION).client("sagemaker-featurestore-runtime")
    table = pq.read_table(source).slice(0, rows).to_pylist()
    started = time.perf_counter()
    for row in table:
        record = [{"FeatureName": k, "ValueAsString": str(v)} for k, v in row.items()]
        client.put_record(FeatureGroupName=GROUP_NAME, Record=record)
    seconds = time.perf_counter() - started
    return {"rows": rows, "s": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def run_sdk(source: Path, rows: int, workers: int) -> dict[str, Any]:
    frame = pq.read_table(source).slice(0, rows).to_pandas()
    try:
        from sagemaker.mlops.feature_store.feature_utils import ingest_dataframe
    except ImportError as exc:
        return {"ran": False, "why": f"cannot import the SDK helper: {exc}"}
    started = time.perf_counter()
    try:
        ingest_dataframe(GROUP_NAME, frame, max_workers=workers, max_processes=1, wait=True, region=REGION)
    except Exception as exc:  # noqa: BLE001 - the benchmark reports why the SDK did not run
        return {"ran": False, "why": f"{type(exc).__name__}: {str(exc)[:500]}"}
    seconds = time.perf_counter() - started
    return {"ran": True, "rows": rows, "s": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # the SDK logs every chunk it ingests; urllib3 its pool
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--online-rows", type=int, default=20_000)
    parser.add_argument("--naive-rows", type=int, default=2_000)
    parser.add_argument("--sdk-rows", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=100_000)
    args = parser.parse_args()
    spec = group_spec()
    moto, standin, _ = start_stores(spec)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            source = make_source(Path(tmp) / "source.parquet", args.rows, spec)
            print(f"generated {args.rows} x {len(spec.features)} in {time.perf_counter() - started:.1f} s", flush=True)
            results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "args": vars(args)}
            results["ours"] = run_ours(source, spec, online_rows=args.online_rows, workers=args.workers, batch_size=args.batch_size)
            print(json.dumps(results["ours"]), flush=True)
            results["naive_put_record_loop"] = run_naive(source, args.naive_rows)
            print(json.dumps(results["naive_put_record_loop"]), flush=True)
            results["sagemaker_sdk_ingest_dataframe"] = run_sdk(source, args.sdk_rows, args.workers)
            print(json.dumps(results, indent=2))
    finally:
        standin.terminate()
        standin.wait(timeout=30)
        moto.stop()


if __name__ == "__main__":
    main()
