"""`mlops-serve`: the container's entry point (also `python -m mlops_serving`).

SageMaker starts the image as `docker run IMAGE serve`, so a leading `serve` is accepted and
ignored. Settings come from the environment (see `settings.py`); flags override them.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .settings import Settings, parse_bool


def _bool_flag(raw: str) -> bool:
    try:
        return parse_bool(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The CLI; every flag defaults to None, meaning "keep the environment's value"."""
    p = argparse.ArgumentParser(
        prog="mlops-serve",
        description="Serve a model.tar.gz over the SageMaker inference contract "
                    "(GET /ping, POST /invocations, GET /metrics).",
    )
    p.add_argument("command", nargs="?", choices=["serve"],
                   help="ignored; SageMaker runs the image as `IMAGE serve`")
    p.add_argument("--host", help="bind address [MLOPS_HOST, default 0.0.0.0]")
    p.add_argument("--port", type=int, help="TCP port [SAGEMAKER_BIND_TO_PORT, default 8080]")
    p.add_argument("--model-path", type=Path,
                   help="model directory or model.tar.gz [MLOPS_MODEL_PATH / SM_MODEL_DIR, default /opt/ml/model]")
    p.add_argument("--max-batch", type=int, help="rows per model call [MLOPS_MAX_BATCH, default 64]")
    p.add_argument("--max-wait-us", type=int,
                   help="wait for more rows after a batch's first request [MLOPS_MAX_WAIT_US, default 0]")
    p.add_argument("--max-body-bytes", type=int,
                   help="413 above this body size [MLOPS_MAX_BODY_BYTES, default 6 MiB]")
    p.add_argument("--capture-dir", type=Path, help="prediction capture root [MLOPS_CAPTURE_DIR, default off]")
    p.add_argument("--capture-sample", type=float,
                   help="fraction of predictions captured [MLOPS_CAPTURE_SAMPLE, default 1.0]")
    p.add_argument("--endpoint-name", help="capture path's endpoint level [MLOPS_ENDPOINT_NAME, default local]")
    p.add_argument("--variant", help="variant name in capture records [MLOPS_VARIANT, default AllTraffic]")
    p.add_argument("--access-log", type=_bool_flag, metavar="BOOL",
                   help="log every request [MLOPS_ACCESS_LOG, default 0]")
    p.add_argument("--log-level", help="logging level [MLOPS_LOG_LEVEL, default INFO]")
    p.add_argument("--torch-threads", type=int, help="intra-op threads [MLOPS_TORCH_THREADS, default 1]")
    p.add_argument("--keep-alive-s", type=float, help="idle connection timeout [MLOPS_KEEP_ALIVE_S, default 60]")
    p.add_argument("--shutdown-timeout-s", type=float,
                   help="longest drain on SIGTERM [MLOPS_SHUTDOWN_TIMEOUT_S, default 30]")
    return p


def settings_from(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Environment first, then the flags that were given."""
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    return Settings.from_env(environ).replace(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, configure logging, serve until SIGTERM; return the exit status."""
    try:
        settings = settings_from(argv)
    except ValueError as exc:
        print(f"mlops-serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    from .server import run  # imports torch; keep `--help` and setting errors fast

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
