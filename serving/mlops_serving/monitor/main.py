"""`mlops-monitor`: the serving image's second entry point (also `python -m mlops_serving.monitor`).

    mlops-monitor drift   --captures DIR|s3://... --baseline FILE|s3://... --out DIR --endpoint NAME
                          [--publish cloudwatch|file|none] [--monitoring-schedule NAME] [--psi-threshold 0.2]
                          [--start T] [--end T]
    mlops-monitor quality --captures DIR|s3://... --labels FILE|DIR|s3://... --out DIR --endpoint NAME
                          [--window-hours 24] [--min-auc 0.8] [--publish cloudwatch] ...

Without a command it runs `drift` from the environment alone, which is how a SageMaker
MonitoringSchedule starts it (Model Monitor's bring-your-own-container contract: `dataset_source`,
`output_path`, `baseline_statistics`, `sagemaker_endpoint_name`, `start_time`, `end_time`,
`publish_cloudwatch_metrics`, ...; read from `/opt/ml/config/processingjobconfig.json` when they
are not in the environment). A Kubernetes CronJob sets `MLOPS_MONITOR_*` variables or flags.
Precedence: flag, then `MLOPS_MONITOR_*`, then the Model Monitor variable, then the default.

Exit status: 0 done (drift violations are reported, not failures: SageMaker shows them from
`/opt/ml/output/message`); 2 bad settings or inputs; 3 `quality` found a metric past its threshold.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import storage
from .baseline import BaselineError
from .settings import (
    SAGEMAKER_MESSAGE_FILE,
    TASKS,
    DriftSettings,
    MetricNames,
    QualitySettings,
    parse_publish,
    parse_time,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DEGRADED = 3
PROCESSING_JOB_CONFIG = ("/opt/ml/config/processingjobconfig.json", "/opt/ml/processing/processingjobconfig.json")

log = logging.getLogger("mlops_serving.monitor")


def _contract_publish(raw: str) -> tuple[str, ...]:
    # Model Monitor's switch: Enabled means "write metric files for SageMaker to publish".
    if raw.strip().lower() == "enabled":
        return ("file",)
    if raw.strip().lower() == "disabled":
        return ()
    raise ValueError("allowed Enabled or Disabled")


def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("allowed an integer") from None


def _float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError("allowed a number") from None


def _text(raw: str) -> str:
    return raw.strip()


Parser = Callable[[str], Any]
_COMMON_ENV: tuple[tuple[str, str, Parser], ...] = (
    ("MLOPS_MONITOR_CAPTURES", "captures", _text),
    ("dataset_source", "captures", _text),
    ("MLOPS_MONITOR_OUT", "out", _text),
    ("output_path", "out", _text),
    ("MLOPS_MONITOR_ENDPOINT", "endpoint", _text),
    ("sagemaker_endpoint_name", "endpoint", _text),
    ("MLOPS_MONITOR_START", "start", parse_time),
    ("start_time", "start", parse_time),
    ("MLOPS_MONITOR_END", "end", parse_time),
    ("end_time", "end", parse_time),
    ("MLOPS_MONITOR_PUBLISH", "publish", parse_publish),
    ("MLOPS_MONITOR_METRICS_DIR", "metrics_dir", _text),
    ("MLOPS_MONITOR_BATCH_RECORDS", "batch_records", _int),
)
DRIFT_ENV: tuple[tuple[str, str, Parser], ...] = (
    *_COMMON_ENV,
    ("publish_cloudwatch_metrics", "publish", _contract_publish),
    ("MLOPS_MONITOR_BASELINE", "baseline", _text),
    ("baseline_statistics", "baseline", _text),
    ("MLOPS_MONITOR_SCHEMA", "schema", _text),
    ("MLOPS_MONITOR_MESSAGE_FILE", "message_file", _text),
    ("sagemaker_monitoring_schedule_name", "monitoring_schedule", _text),
    ("MLOPS_MONITOR_PSI_THRESHOLD", "psi_threshold", _float),
    ("MLOPS_MONITOR_NULL_RATE_TOLERANCE", "null_rate_tolerance", _float),
    ("MLOPS_MONITOR_NEW_CATEGORY_TOLERANCE", "new_category_tolerance", _float),
)
QUALITY_ENV: tuple[tuple[str, str, Parser], ...] = (
    # Not Model Monitor's start_time: that is the hour of captures it copies for a data job, and labels
    # arrive later; the quality window is window_hours before end_time (or MLOPS_MONITOR_START).
    *(entry for entry in _COMMON_ENV if entry[0] != "start_time"),
    ("MLOPS_MONITOR_LABELS", "labels", _text),
    ("MLOPS_MONITOR_WINDOW_HOURS", "window_hours", _float),
    ("MLOPS_MONITOR_TASK", "task", _text),
    ("MLOPS_MONITOR_MIN_AUC", "min_auc", _float),
    ("MLOPS_MONITOR_MIN_ACCURACY", "min_accuracy", _float),
    ("MLOPS_MONITOR_MAX_LOG_LOSS", "max_log_loss", _float),
    ("MLOPS_MONITOR_MAX_RMSE", "max_rmse", _float),
    ("MLOPS_MONITOR_MAX_MAE", "max_mae", _float),
    ("MLOPS_MONITOR_MIN_LABELED", "min_labeled", _int),
)


def contract_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment, completed from SageMaker's processing job config where it has more."""
    env = dict(environ)
    if "dataset_source" in env:
        return env
    for path in PROCESSING_JOB_CONFIG:
        if Path(path).is_file():
            config = json.loads(Path(path).read_text(encoding="utf-8"))
            for key, value in (config.get("Environment") or {}).items():
                env.setdefault(key, str(value))
            break
    return env


def _from_env(table: tuple[tuple[str, str, Parser], ...], env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var, name, parse in table:
        raw = env.get(var)
        if raw is None or raw.strip() == "" or name in values:
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ValueError(f"environment variable {var}={raw!r}: {exc}") from None
    return values


def _flag(parse: Parser) -> Parser:
    """A parser for argparse: ValueError's message becomes the usage error."""
    def run(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    run.__name__ = parse.__name__.strip("_")
    return run


def _common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--captures", help="capture root: DIR or s3://bucket/prefix holding "
                   "{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl [MLOPS_MONITOR_CAPTURES, dataset_source]")
    p.add_argument("--out", help="report directory, DIR or s3://... [MLOPS_MONITOR_OUT, output_path]")
    p.add_argument("--endpoint", help="endpoint name [MLOPS_MONITOR_ENDPOINT, sagemaker_endpoint_name]")
    p.add_argument("--start", type=_flag(parse_time), help="window start, ISO 8601 (inclusive) [start_time]")
    p.add_argument("--end", type=_flag(parse_time), help="window end, ISO 8601 (exclusive) [end_time]")
    p.add_argument("--publish", type=_flag(parse_publish), metavar="cloudwatch|file|none",
                   help="metric targets, comma-separated: cloudwatch (PutMetricData), file (Model Monitor's "
                        "metric files) [MLOPS_MONITOR_PUBLISH; default none, file under Model Monitor]")
    p.add_argument("--metrics-dir", help="directory of the file target [default /opt/ml/output/metrics/cloudwatch]")
    p.add_argument("--batch-records", type=int, help="capture records decoded at a time [default 2000]")


def build_parser() -> argparse.ArgumentParser:
    """The CLI; every flag defaults to None, meaning "keep the environment's value"."""
    parser = argparse.ArgumentParser(
        prog="mlops-monitor",
        description="Drift and live-quality monitoring of captured predictions (SageMaker Model Monitor "
                    "bring-your-own-container contract, or a CronJob). No command: drift, from the environment.",
    )
    commands = parser.add_subparsers(dest="command")
    drift = commands.add_parser("drift", help="compare captured inputs and predictions with the training baseline",
                                description="Compare captured inputs and predictions with the training baseline: "
                                            "PSI, KS, null rates, categories; reports and metrics.")
    _common_flags(drift)
    drift.add_argument("--baseline", help="baseline.json or model.tar.gz, local or s3:// "
                                          "[MLOPS_MONITOR_BASELINE, baseline_statistics]")
    drift.add_argument("--schema", help="the model's schema.json (column order) [MLOPS_MONITOR_SCHEMA]")
    drift.add_argument("--monitoring-schedule", help="the MonitoringSchedule running the job: a dimension of every "
                                                      "metric [sagemaker_monitoring_schedule_name; default none]")
    drift.add_argument("--psi-threshold", type=float, help="PSI above which a feature has drifted [default 0.2]")
    drift.add_argument("--null-rate-tolerance", type=float, help="allowed null-rate increase [default 0.05]")
    drift.add_argument("--new-category-tolerance", type=float, help="allowed share of unseen categories [default 0.01]")
    drift.add_argument("--message-file", help="status line for SageMaker [default /opt/ml/output/message "
                                              "under Model Monitor, else none]")
    drift.add_argument("--no-html", dest="html", action="store_false", default=None, help="skip drift_report.html")

    quality = commands.add_parser("quality", help="join ground truth to predictions; live metrics per variant",
                                  description="Join delayed ground-truth labels to captured predictions by inference "
                                              "id; metrics per variant over a window; exit 3 when degraded.")
    _common_flags(quality)
    quality.add_argument("--labels", help="ground truth JSON lines: FILE, DIR or s3://... [MLOPS_MONITOR_LABELS]")
    quality.add_argument("--window-hours", type=float, help="window length before --end [default 24]")
    quality.add_argument("--task", choices=TASKS, help="model task [default binary_classification]")
    for flag, what in (("--min-auc", "LiveAUC below it"), ("--min-accuracy", "LiveAccuracy below it"),
                       ("--max-log-loss", "LiveLogLoss above it"), ("--max-rmse", "LiveRMSE above it"),
                       ("--max-mae", "LiveMAE above it")):
        quality.add_argument(flag, type=float, help=f"degraded (exit 3) when {what}")
    quality.add_argument("--min-labeled", type=int, help="labelled rows a variant needs to be judged [default 100]")
    return parser


def drift_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> DriftSettings:
    """Environment (Model Monitor's contract and MLOPS_MONITOR_*), then the flags given."""
    env = contract_environment(environ)
    values = _from_env(DRIFT_ENV, env)
    if "dataset_source" in env:
        values.setdefault("message_file", SAGEMAKER_MESSAGE_FILE)
    values.update({k: v for k, v in vars(args).items() if k != "command" and v is not None})
    return DriftSettings(**values, names=MetricNames.from_env(env))


def quality_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> QualitySettings:
    """Environment (Model Monitor's contract, completed from its job config, and MLOPS_MONITOR_*),
    then the flags given."""
    env = contract_environment(environ)
    values = _from_env(QUALITY_ENV, env)
    values.update({k: v for k, v in vars(args).items() if k != "command" and v is not None})
    return QualitySettings(**values, names=MetricNames.from_env(env))


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse flags, run one job, return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    if not argv or argv[0] not in ("drift", "quality", "-h", "--help"):
        argv = ["drift", *argv]  # no command: drift (how a MonitoringSchedule starts the image)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=environ.get("MLOPS_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    try:
        settings: DriftSettings | QualitySettings = (
            drift_settings(args, environ) if args.command == "drift" else quality_settings(args, environ))
    except ValueError as exc:
        print(f"mlops-monitor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    message_file = settings.message_file if isinstance(settings, DriftSettings) else None
    try:
        if isinstance(settings, DriftSettings):
            from . import drift  # the job's modules load only once the settings are valid

            result = drift.run(settings)
            print(json.dumps({"out": settings.out, "rows": result.report["rows"],
                              "max_feature_psi": result.report["max_feature_psi"],
                              "drifted_features": result.report["drifted_features"],
                              "violations": len(result.violations)}))
            return EXIT_OK
        from . import quality

        outcome = quality.run(settings)
        print(json.dumps({"out": settings.out, "degraded": outcome.degraded,
                          "variants": {k: v["metrics"] for k, v in outcome.report["variants"].items()}}))
        return EXIT_DEGRADED if outcome.degraded else EXIT_OK
    except (BaselineError, FileNotFoundError) as exc:
        # Wrong inputs, not bugs: anything else propagates with its traceback.
        print(f"mlops-monitor: {exc}", file=sys.stderr)
        if message_file:
            # SageMaker shows a processing job's /opt/ml/output/failure as its FailureReason.
            storage.write_bytes(str(Path(message_file).with_name("failure")), str(exc)[:1024].encode())
        return EXIT_USAGE

if __name__ == "__main__":
    sys.exit(main())
