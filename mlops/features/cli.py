"""`mlops features ...`: the typer sub-app (mounted by mlops/cli.py).

Exit codes: 0 done; 1 an AWS call or the target failed (re-running is safe); 2 rejects kept a batch
from being written, or the source / stack config is unusable (a data or config error); 64 usage
(unknown group, bad option values), as sysexits' EX_USAGE.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand

try:  # typer vendors its own click (typer._click) in recent releases; its UsageError is the one raised
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on the real click
    from click import UsageError

EX_USAGE = 64

out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _UsageIs64(TyperCommand):
    """Click reports a malformed command line with exit 2; here 2 means "data refused", so usage gets 64."""

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as exc:
            exc.exit_code = EX_USAGE
            raise


app = typer.Typer(no_args_is_help=True, help="Feature store: ingest data into a stack's feature groups.")


def _usage(message: str) -> None:
    err.print(message, markup=False)
    raise typer.Exit(EX_USAGE)


@app.command(cls=_UsageIs64)
def ingest(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    group: Annotated[str, typer.Option("--group", help="Feature group key under feature_store.feature_groups.")],
    source: Annotated[str, typer.Option("--source", help="CSV, JSON lines or Parquet file: a local path or s3://bucket/key.")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv, jsonl or parquet; default: from the extension.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Rows per batch; a batch with a reject writes nothing. Default: the whole source is one batch.")] = None,
    ignore_extra_columns: Annotated[bool, typer.Option("--ignore-extra-columns", help="Drop columns that are no feature of the group instead of refusing the source.")] = False,
    report: Annotated[Optional[Path], typer.Option("--report", help="Reject report (JSON lines; CSV if it ends in .csv). Default: <source name>.rejects.jsonl here.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Concurrent PutRecord calls.")] = 16,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and write the report only: nothing is written and no AWS request is sent (except reading an s3:// source).")] = False,
) -> None:
    """Validate a source against a feature group's definitions, then write the valid batches to its
    online store (PutRecord) and its offline store (Parquet in SageMaker's layout, under the group's
    resolved S3 URI, so the Glue table and Athena see the rows). Re-running the same ingestion adds no
    duplicates. Exits 2 when rejects kept a batch from being written, 64 on a usage error.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from specs.config import stack_files
    from mlops.features import ingest as ingestion
    from mlops.features import sources

    if batch_size is not None and batch_size < 1:
        _usage(f"--batch-size {batch_size}: give a positive number of rows")
    if workers < 1:
        _usage(f"--workers {workers}: give at least 1")
    report_path = report or Path(f"{Path(source.split('?')[0]).name or 'source'}.rejects.jsonl")
    try:
        config = stack_files.load(stack)
        target = ingestion.resolve_target(config, group)
        request = ingestion.IngestRequest(source=source, report=report_path, fmt=fmt, batch_size=batch_size,
                                          ignore_extra_columns=ignore_extra_columns, dry_run=dry_run, workers=workers)
        clients = None if dry_run else _clients(config, workers=workers)
        summary = _run_with_progress(request, target, clients)
    except stack_files.ConfigError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2)
    except ingestion.UsageError as exc:
        _usage(str(exc))
    except sources.SourceError as exc:
        err.print(f"source refused, nothing written: {exc}", markup=False)
        raise typer.Exit(2)
    except ingestion.IngestError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1)
    except (BotoCoreError, ClientError) as exc:
        err.print(f"AWS call failed: {exc}; re-running the same command is safe (no duplicates)", markup=False)
        raise typer.Exit(1)
    _print_summary(summary, target=target, dry_run=dry_run)
    if summary.refused_batches:
        raise typer.Exit(2)


def _clients(config: Any, *, workers: int) -> Any:
    from mlops import promote
    from mlops.features import ingest as ingestion
    from mlops.features import online

    session = promote.session_for(config.environment, config.aws.region)
    return ingestion.Clients(
        s3=session.client("s3"),
        sagemaker=session.client("sagemaker"),
        featurestore=session.client("sagemaker-featurestore-runtime", config=online.client_config(workers=workers)),
    )


def _run_with_progress(request: Any, target: Any, clients: Any) -> Any:
    from mlops.features import ingest as ingestion

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        tasks = {"validate": bar.add_task("validate", total=None), "write": bar.add_task("write", total=None, visible=not request.dry_run)}

        def on_total(total: int | None) -> None:
            for task in tasks.values():
                bar.update(task, total=total)

        return ingestion.ingest(request, target, clients=clients, progress=lambda stage, n: bar.advance(tasks[stage], n), on_total=on_total)


def _print_summary(summary: Any, *, target: Any, dry_run: bool) -> None:
    verb = "validated (dry run, nothing written)" if dry_run else f"ingested into {target.name}"
    out.print(
        f"{verb}: {summary.rows} rows, {summary.written} written, {summary.rejected_rows} rejected "
        f"({summary.rejects} problems; {summary.refused_batches} of {summary.batches} batches refused), "
        f"{summary.rows_per_second:,.0f} rows/s; rejects: {summary.report}",
        markup=False, soft_wrap=True,
    )
    if summary.refused_batches:
        out.print("a batch with any reject writes nothing: fix the rows in the report and re-run (written batches are not duplicated)", markup=False)
