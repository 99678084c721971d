"""Server settings: one frozen object, built from environment variables, overridden by CLI flags.

Environment variables are the interface SageMaker and our Pulumi components use; the CLI flags in
`main.py` exist for running the same server by hand. Nothing here reads `sys.argv`.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: SageMaker's own request payload limit for real-time endpoints.
SAGEMAKER_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
DEFAULT_MODEL_DIR = Path("/opt/ml/model")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the server needs to start; validated on construction."""

    host: str = "0.0.0.0"
    """Address to bind. Default `0.0.0.0`, as SageMaker requires. Env `MLOPS_HOST`."""

    port: int = 8080
    """TCP port. Default 8080 (SageMaker's contract). Env `SAGEMAKER_BIND_TO_PORT`."""

    model_path: Path = DEFAULT_MODEL_DIR
    """Extracted model directory or a `model.tar.gz`. Default `/opt/ml/model`.
    Env `MLOPS_MODEL_PATH`, else `SM_MODEL_DIR`."""

    max_batch: int = 64
    """Most rows one model call takes; a single larger request still runs alone. Default 64.
    Env `MLOPS_MAX_BATCH`."""

    max_wait_us: int = 0
    """How long the batcher waits for more rows after the first request of a batch, in
    microseconds. Default 0: under load requests queue while the previous batch runs, so batches
    fill without adding latency at low load. Env `MLOPS_MAX_WAIT_US`."""

    max_body_bytes: int = SAGEMAKER_MAX_PAYLOAD_BYTES
    """Largest request body accepted; larger ones get 413 before the body is read. Default 6 MiB
    (SageMaker's limit). Env `MLOPS_MAX_BODY_BYTES`."""

    capture_dir: Path | None = None
    """Root directory of the prediction capture (JSON lines). Default: capture off.
    Env `MLOPS_CAPTURE_DIR`."""

    capture_sample: float = 1.0
    """Fraction of predictions captured, 0.0 to 1.0. Default 1.0 (all). Env `MLOPS_CAPTURE_SAMPLE`."""

    capture_queue_bytes: int = 64 * 1024 * 1024
    """Memory bound of the capture queue; records beyond it are dropped and counted. Default 64 MiB.
    Env `MLOPS_CAPTURE_QUEUE_BYTES`."""

    capture_rotate_bytes: int = 64 * 1024 * 1024
    """A capture file is closed once it reaches this size. Default 64 MiB.
    Env `MLOPS_CAPTURE_ROTATE_BYTES`."""

    capture_rotate_s: float = 60.0
    """A capture file is closed after this many seconds (and at every hour boundary). Default 60.
    Env `MLOPS_CAPTURE_ROTATE_S`."""

    endpoint_name: str = "local"
    """Endpoint name, the first level of the capture path. Default `local`. Env `MLOPS_ENDPOINT_NAME`."""

    variant: str = "AllTraffic"
    """Production variant name, recorded in every capture record and path. Default `AllTraffic`
    (SageMaker's default variant name). Env `MLOPS_VARIANT`."""

    access_log: bool = False
    """One log line per request. Default off: it costs about 20% throughput. Env `MLOPS_ACCESS_LOG`."""

    log_level: str = "INFO"
    """Python logging level. Default INFO. Env `MLOPS_LOG_LEVEL`."""

    torch_threads: int = 1
    """Intra-op threads of the model. Default 1: batches are small and the event loop needs a core.
    Env `MLOPS_TORCH_THREADS`."""

    keep_alive_s: float = 60.0
    """Idle keep-alive connections are closed after this many seconds. Default 60.
    Env `MLOPS_KEEP_ALIVE_S`."""

    shutdown_timeout_s: float = 30.0
    """On SIGTERM, the longest wait for in-flight requests before connections are cut. Default 30.
    Env `MLOPS_SHUTDOWN_TIMEOUT_S`."""

    drain_grace_s: float = 0.25
    """On SIGTERM, an idle keep-alive connection is kept open this long so that a request already
    on the wire is answered (with `Connection: close`) rather than reset. Default 0.25.
    Env `MLOPS_DRAIN_GRACE_S`."""

    feature_group: str | None = None
    """Feature group whose online store completes requests that carry a record id instead of (some
    of) the features (`BatchGetRecord`). Default: no lookup. Env `MLOPS_FEATURE_GROUP`."""

    record_id_field: str | None = None
    """The request field holding the record identifier; required with `feature_group`.
    Env `MLOPS_RECORD_ID_FIELD`."""

    feature_lookup_timeout_ms: int = 100
    """Longest wait for one batch's lookup; requests that wait longer get 504. Default 100.
    Env `MLOPS_FEATURE_LOOKUP_TIMEOUT_MS`."""

    gc_freeze: bool = True
    """Move the loaded model and everything imported out of the garbage collector's reach
    (`gc.freeze()`), which removes the long gen-2 pauses from the latency tail. Default on.
    Env `MLOPS_GC_FREEZE`."""

    def __post_init__(self) -> None:
        problems: list[str] = []

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                problems.append(f"{name}={getattr(self, name)!r}: allowed {allowed}")

        need(0 <= self.port <= 65535, "port", "0..65535 (0 picks a free port)")
        need(self.max_batch >= 1, "max_batch", "an integer >= 1")
        need(self.max_wait_us >= 0, "max_wait_us", "an integer >= 0")
        need(self.max_body_bytes >= 1, "max_body_bytes", "an integer >= 1")
        need(0.0 <= self.capture_sample <= 1.0, "capture_sample", "a fraction between 0.0 and 1.0")
        need(self.capture_queue_bytes >= 1, "capture_queue_bytes", "an integer >= 1")
        need(self.capture_rotate_bytes >= 1, "capture_rotate_bytes", "an integer >= 1")
        need(self.capture_rotate_s > 0, "capture_rotate_s", "seconds > 0")
        need(_is_path_segment(self.endpoint_name), "endpoint_name", "a non-empty name without '/'")
        need(_is_path_segment(self.variant), "variant", "a non-empty name without '/'")
        need(self.log_level.upper() in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"},
             "log_level", "DEBUG, INFO, WARNING, ERROR or CRITICAL")
        need(self.torch_threads >= 1, "torch_threads", "an integer >= 1")
        need(self.keep_alive_s > 0, "keep_alive_s", "seconds > 0")
        need(self.shutdown_timeout_s > 0, "shutdown_timeout_s", "seconds > 0")
        need(self.drain_grace_s >= 0, "drain_grace_s", "seconds >= 0")
        need(self.feature_group is None or bool(self.record_id_field), "record_id_field",
             "a request field name whenever feature_group is set")
        need(self.feature_group is not None or self.record_id_field is None, "record_id_field",
             "only with feature_group")
        need(1 <= self.feature_lookup_timeout_ms <= 10000, "feature_lookup_timeout_ms", "1..10000 milliseconds")
        if problems:
            raise ValueError("invalid server settings: " + "; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (default `os.environ`); unset ones keep defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for var, field, parse in _ENV_FIELDS:
            raw = env.get(var)
            if raw is None or (field in values):
                continue
            try:
                values[field] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"environment variable {var}={raw!r}: {exc}") from None
        return cls(**values)

    def replace(self, **changes: object) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _is_path_segment(value: str) -> bool:
    return bool(value) and "/" not in value and value not in {".", ".."}


def parse_bool(raw: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off` (any case)."""
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("allowed 1/true/yes/on or 0/false/no/off")


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("allowed an integer") from None


def _parse_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("allowed a number") from None
    if not math.isfinite(value):
        raise ValueError("allowed a finite number")
    return value


def _parse_optional_path(raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


def _parse_optional_str(raw: str) -> str | None:
    return raw.strip() or None


# (variable, field, parser); the first variable set for a field wins, so MLOPS_MODEL_PATH
# overrides SageMaker's SM_MODEL_DIR.
_ENV_FIELDS: tuple[tuple[str, str, object], ...] = (
    ("MLOPS_HOST", "host", str.strip),
    ("SAGEMAKER_BIND_TO_PORT", "port", _parse_int),
    ("MLOPS_MODEL_PATH", "model_path", Path),
    ("SM_MODEL_DIR", "model_path", Path),
    ("MLOPS_MAX_BATCH", "max_batch", _parse_int),
    ("MLOPS_MAX_WAIT_US", "max_wait_us", _parse_int),
    ("MLOPS_MAX_BODY_BYTES", "max_body_bytes", _parse_int),
    ("MLOPS_CAPTURE_DIR", "capture_dir", _parse_optional_path),
    ("MLOPS_CAPTURE_SAMPLE", "capture_sample", _parse_float),
    ("MLOPS_CAPTURE_QUEUE_BYTES", "capture_queue_bytes", _parse_int),
    ("MLOPS_CAPTURE_ROTATE_BYTES", "capture_rotate_bytes", _parse_int),
    ("MLOPS_CAPTURE_ROTATE_S", "capture_rotate_s", _parse_float),
    ("MLOPS_ENDPOINT_NAME", "endpoint_name", str.strip),
    ("MLOPS_VARIANT", "variant", str.strip),
    ("MLOPS_ACCESS_LOG", "access_log", parse_bool),
    ("MLOPS_LOG_LEVEL", "log_level", str.strip),
    ("MLOPS_TORCH_THREADS", "torch_threads", _parse_int),
    ("MLOPS_KEEP_ALIVE_S", "keep_alive_s", _parse_float),
    ("MLOPS_SHUTDOWN_TIMEOUT_S", "shutdown_timeout_s", _parse_float),
    ("MLOPS_DRAIN_GRACE_S", "drain_grace_s", _parse_float),
    ("MLOPS_GC_FREEZE", "gc_freeze", parse_bool),
    ("MLOPS_FEATURE_GROUP", "feature_group", _parse_optional_str),
    ("MLOPS_RECORD_ID_FIELD", "record_id_field", _parse_optional_str),
    ("MLOPS_FEATURE_LOOKUP_TIMEOUT_MS", "feature_lookup_timeout_ms", _parse_int),
)
