"""`mlops-train dataset`: build a point-in-time training set (the retraining pipeline's Dataset step).

Exit codes: 0 built; 2 invalid arguments, schema, label events or data. Prints the manifest.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlops_training.dataset import build, labels
from mlops_training.schema import SchemaError, load_schema

log = logging.getLogger("mlops_training.dataset")
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    """The `dataset` subcommand's arguments."""
    parser = argparse.ArgumentParser(
        prog="mlops-train dataset",
        description="Join label events to the latest feature row at or before each label's time (point in "
        "time), split by time, and write train/ and validation/ Parquet plus manifest.json.",
    )
    parser.add_argument("--schema", required=True, help="feature_schema.json: record id, event time, label, features")
    parser.add_argument("--out", required=True, help="output directory (train/, validation/, manifest.json)")
    parser.add_argument("--feature-group", required=True, help="the feature group's name")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=["duckdb", "athena"], default="duckdb")
    engine.add_argument("--offline-store", help="duckdb: directory or s3:// prefix of the offline store's Parquet")
    engine.add_argument("--athena-output", help="athena: s3:// prefix for query results")
    engine.add_argument("--labels-prefix", help="athena: s3:// prefix the label events table is uploaded under")
    engine.add_argument("--workgroup", default="primary", help="athena: work group (default primary)")
    source = parser.add_argument_group("label events (one or both sources; their events are united)")
    source.add_argument("--label-events", help="Parquet file with record_id, label, label_time (UTC timestamp)")
    source.add_argument("--captures", help="capture root (directory or s3:// prefix) of one endpoint")
    source.add_argument("--ground-truth", help="ground truth (directory or s3:// prefix), with --captures")
    window = parser.add_argument_group("training window")
    window.add_argument("--window-days", type=float,
                        help="use only label events with label_time in (as_of - N days, as_of] (default: all)")
    window.add_argument("--as-of", help="ISO-8601 end of the window, inclusive (default: now, when --window-days "
                        "is given; without it, all events up to --as-of)")
    split = parser.add_argument_group("split")
    split.add_argument("--cutoff", help="ISO-8601 time; label events before it train, the others validate")
    split.add_argument("--validation-fraction", type=float, default=build.DEFAULT_VALIDATION_FRACTION,
                       help="without --cutoff: the most recent share of label events held out (default 0.2)")
    parser.add_argument("--event-time-type", choices=["String", "Fractional"],
                        help="the event time's feature type (default: read from the data or the feature group)")
    return parser


def _engine(args: argparse.Namespace, *, table: str) -> build.Engine:
    if args.engine == "duckdb":
        if not args.offline_store:
            raise ValueError("--engine duckdb needs --offline-store (a directory or s3:// prefix)")
        from mlops_training.dataset.duckdb_engine import DuckDBEngine

        return DuckDBEngine(args.offline_store, feature_table=table)
    if not args.athena_output or not args.labels_prefix:
        raise ValueError("--engine athena needs --athena-output and --labels-prefix (s3:// prefixes)")
    from mlops_training.dataset.athena_engine import AthenaEngine

    return AthenaEngine(args.feature_group, output_location=args.athena_output, labels_prefix=args.labels_prefix,
                        workgroup=args.workgroup)


def _events(args: argparse.Namespace, *, record_identifier: str) -> tuple[pa.Table, str]:
    """The label events of every source given, united; and a description of the sources."""
    if bool(args.captures) != bool(args.ground_truth):
        raise ValueError("--captures and --ground-truth go together: give either --label-events, or --captures "
                         "with --ground-truth, or all three")
    if not args.label_events and not args.captures:
        raise ValueError("no label events: give either --label-events, or --captures with --ground-truth, "
                         "or all three")
    tables, sources = [], []
    if args.label_events:
        if not Path(args.label_events).is_file():
            raise ValueError(f"--label-events {args.label_events}: no such file; expected a Parquet file")
        tables.append(build.prepare_labels_input(pq.read_table(args.label_events)))
        sources.append(args.label_events)
    if args.captures:
        table, counts = labels.label_events(
            captures=args.captures, ground_truth=args.ground_truth, record_identifier=record_identifier
        )
        log.info("label events from captures: %s", json.dumps(counts.as_dict()))
        tables.append(build.prepare_labels_input(table))
        sources.append(f"captures {args.captures} + ground truth {args.ground_truth}")
    return pa.concat_tables(tables), " + ".join(sources)


def _window(args: argparse.Namespace) -> build.LabelWindow | None:
    if args.window_days is None and args.as_of is None:
        return None
    if args.window_days is not None and not args.window_days > 0:
        raise ValueError(f"--window-days {args.window_days}; allowed: a number of days > 0")
    as_of = _time(args.as_of, flag="--as-of") if args.as_of else datetime.now(UTC)
    return build.LabelWindow(as_of=as_of, days=args.window_days)


def _time(value: str, *, flag: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not ISO-8601 (e.g. 2026-03-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cutoff(value: str | None) -> datetime | None:
    return None if value is None else _time(value, flag="--cutoff")


def main(argv: list[str]) -> int:
    """Build one dataset; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    try:
        schema = load_schema(Path(args.schema))
        cutoff = _cutoff(args.cutoff)
        events, label_source = _events(args, record_identifier=schema.record_identifier)
        engine = _engine(args, table=args.feature_group.replace("-", "_"))
        request = build.BuildRequest(
            feature_group=args.feature_group, record_identifier=schema.record_identifier,
            event_time=schema.event_time, features=schema.feature_names, label=schema.label,
            label_source=label_source, cutoff=cutoff, validation_fraction=args.validation_fraction,
            event_time_type=args.event_time_type, window=_window(args),
        )
        built = build.build(request, engine=engine, events=events, out=Path(args.out))
    except (SchemaError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    print(json.dumps(built.manifest.doc, indent=2, sort_keys=True))
    return 0
