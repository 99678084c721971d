"""Point-in-time builder: DuckDB (the builder's SQL) against pandas `merge_asof`, same output row for row.

    python benchmarks/point_in_time.py                       # 1,000,000 rows x 30 features, 200,000 labels
    python benchmarks/point_in_time.py --rows 100000 --labels 20000

Data: an offline store in SageMaker's layout (Fractional epoch event times, `write_time`,
`api_invocation_time`, `is_deleted`), 10 feature rows per record on average, 5% of rows re-written
for the same event time (dedup by write_time), 1% deletions; label events on random records (2% of
them unknown to the store) at random times. Each side runs in a fresh subprocess (`run` mode) that
reports its own wall time (data reading and output writing included) and peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss` at its end: the process's high-water mark, interpreter and
imports included). The parent then asserts that both outputs are identical, row for row.

Must not import: `pulumi` or its providers, `components` or `policypack` (a benchmark measures code, it
deploys nothing).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "training")]

START = 1_767_225_600  # 2026-01-01T00:00:00Z
SPAN = 90 * 86400
LABEL = "y"


def generate(directory: Path, *, rows: int, features: int, labels: int, seed: int) -> None:
    """Write the offline store (10 Parquet files) and the label events Parquet under `directory`."""
    rng = np.random.default_rng(seed)
    records = max(1, rows // 10)
    rid = rng.integers(0, records, size=rows)
    event_ms = START * 1000 + rng.integers(0, SPAN * 1000, size=rows)
    rewrite = rng.random(rows) < 0.05
    # A re-write repeats an earlier row's record and event time with a later write time.
    source = rng.integers(0, rows, size=rows)
    rid[rewrite] = rid[source[rewrite]]
    event_ms[rewrite] = event_ms[source[rewrite]]
    write_ms = event_ms + rng.integers(1_000, 3_600_000, size=rows) + np.arange(rows) % 997
    table = {
        "record_id": pa.array([f"r{i:07d}" for i in rid]),
        "event_time": pa.array(event_ms / 1000.0),
        **{f"f{j:02d}": pa.array(rng.normal(size=rows)) for j in range(features)},
        "write_time": pa.array(write_ms, pa.timestamp("ms", tz="UTC")),
        "api_invocation_time": pa.array(write_ms - 500, pa.timestamp("ms", tz="UTC")),
        "is_deleted": pa.array(rng.random(rows) < 0.01),
    }
    store = pa.table(table)
    (directory / "store").mkdir(parents=True)
    bounds = np.linspace(0, rows, 11).astype(int)
    for i in range(10):
        pq.write_table(store.slice(bounds[i], bounds[i + 1] - bounds[i]), directory / "store" / f"part-{i}.parquet")
    label_rid = rng.integers(0, int(records * 1.02) + 1, size=labels)
    label_ms = START * 1000 + rng.integers(0, SPAN * 1000, size=labels)
    pq.write_table(pa.table({
        "record_id": pa.array([f"r{i:07d}" for i in label_rid]),
        "label": pa.array(rng.integers(0, 2, size=labels).astype(np.float64)),
        "label_time": pa.array(label_ms, pa.timestamp("ms", tz="UTC")),
    }), directory / "labels.parquet")


def run_duckdb(data: Path, out: Path, features: tuple[str, ...]) -> dict[str, int]:
    from mlops_training.dataset import build
    from mlops_training.dataset.duckdb_engine import DuckDBEngine

    built = build.build(
        build.BuildRequest(feature_group="bench", record_identifier="record_id", event_time="event_time",
                           features=features, label=LABEL, label_source="bench"),
        engine=DuckDBEngine(str(data / "store"), feature_table="bench"),
        events=pq.read_table(data / "labels.parquet"), out=out,
    )
    return built.manifest.counts


def run_pandas(data: Path, out: Path, features: tuple[str, ...]) -> dict[str, int]:
    """The same semantics with pandas: dedup, merge_asof backward by record id, deletes out, time split."""
    import pandas as pd

    from mlops_training.dataset import build

    store = pq.read_table(data / "store").to_pandas()
    millis = np.round(store["event_time"].to_numpy() * 1000).astype(np.int64)  # as the SQL: whole milliseconds
    store["event_ts"] = pd.to_datetime(millis, unit="ms").astype("datetime64[ms]")
    # Dedup: per (record, event time) the greatest (write_time, api_invocation_time) wins.
    store = store.sort_values(["record_id", "event_ts", "write_time", "api_invocation_time"], kind="stable")
    store = store.drop_duplicates(["record_id", "event_ts"], keep="last")
    labels = build.prepare_labels(pq.read_table(data / "labels.parquet")).to_pandas()
    labels["label_ts"] = pd.to_datetime(labels["label_time"], format="%Y-%m-%dT%H:%M:%S.%fZ").astype("datetime64[ms]")
    cutoff = pd.Timestamp(build.default_cutoff(build.prepare_labels(pq.read_table(data / "labels.parquet"))))
    merged = pd.merge_asof(
        labels.sort_values("label_ts", kind="stable"), store.sort_values("event_ts", kind="stable"),
        left_on="label_ts", right_on="event_ts", left_by="record_id", right_by="record_id",
        direction="backward", allow_exact_matches=True,
    ).sort_values("label_id")
    matched = merged[merged["event_ts"].notna() & ~merged["is_deleted"].fillna(False).astype(bool)]
    out.mkdir(parents=True)
    split_of = np.where(matched["label_ts"] < cutoff.tz_convert(None), "train", "validation")
    columns = ["record_id", "event_time", *features, "label", "label_ts"]
    for split in ("train", "validation"):
        part = matched[split_of == split][columns].rename(columns={"label": LABEL, "label_ts": "pit_label_time"})
        (out / split).mkdir()
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), out / split / "part-00000.parquet")
    return {"matched": len(matched), "train": int((split_of == "train").sum()),
            "validation": int((split_of == "validation").sum()),
            "excluded_no_feature": int(merged["event_ts"].isna().sum()),
            "excluded_deleted": int(len(merged) - len(matched) - merged["event_ts"].isna().sum())}


def child(args: argparse.Namespace) -> None:
    features = tuple(f"f{j:02d}" for j in range(args.features))
    started = time.perf_counter()
    counts = (run_duckdb if args.mode == "duckdb" else run_pandas)(Path(args.data), Path(args.out), features)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "counts": counts}))


def measure(mode: str, *, data: Path, out: Path, features: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "run", "--mode", mode, "--data", str(data), "--out", str(out),
         "--features", str(features)], capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(duck: Path, pandas_out: Path) -> int:
    """Assert both outputs hold the same rows in the same order; returns the number of rows compared."""
    import pandas as pd

    total = 0
    for split in ("train", "validation"):
        a = pq.read_table(duck / split / "part-00000.parquet").to_pandas()
        b = pq.read_table(pandas_out / split / "part-00000.parquet").to_pandas()
        b["pit_label_time"] = b["pit_label_time"].astype(a["pit_label_time"].dtype)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b[a.columns].reset_index(drop=True), check_exact=True)
        total += len(a)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    run = sub.add_parser("run")
    run.add_argument("--mode", choices=["duckdb", "pandas"], required=True)
    run.add_argument("--data", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--features", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--labels", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cmd == "run":
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="pit-bench-") as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        generate(data, rows=args.rows, features=args.features, labels=args.labels, seed=args.seed)
        print(f"generated {args.rows} feature rows x {args.features} features, {args.labels} label events "
              f"in {time.perf_counter() - t:.1f}s")
        results = {}
        for mode in ("duckdb", "pandas"):
            results[mode] = measure(mode, data=data, out=data / f"out-{mode}", features=args.features)
        rows = compare(data / "out-duckdb", data / "out-pandas")
        for mode, r in results.items():
            print(f"{mode:7s} {r['seconds']:7.2f} s  peak RSS {r['peak_rss_mib']:8.0f} MiB  counts {r['counts']}")
        print(f"identical output: {rows} rows, row for row")


if __name__ == "__main__":
    main()
