"""Hyperparameters: SageMaker's all-strings `hyperparameters.json` -> one frozen, typed object.

SageMaker passes every value as a string; local runs may pass JSON numbers and booleans. Both are
accepted. Unknown keys are an error (a typo must not silently train with a default), except the keys
SageMaker itself injects (`sagemaker_*`, `_tuning_objective_metric`, ...).

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIXED_PRECISION = ("auto", "bf16", "fp16", "off")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_S3_PREFIX_RE = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class HyperparameterError(ValueError):
    """One or more hyperparameters are invalid; the message names each one, its value and what is allowed."""


def _hp(default: Any, doc: str, *, trains: bool) -> Any:
    # `trains` marks values that change the trained weights; only those must match to resume a checkpoint.
    return field(default=default, metadata={"doc": doc, "trains": trains})


@dataclass(frozen=True)
class Hyperparameters:
    """Every knob of a training run, typed, with defaults."""

    epochs: int = _hp(10, "Passes over the training split (>= 1).", trains=True)
    batch_size: int = _hp(512, "Rows per optimizer step on each process (>= 1).", trains=True)
    learning_rate: float = _hp(1e-3, "AdamW learning rate (> 0).", trains=True)
    weight_decay: float = _hp(0.0, "AdamW weight decay (>= 0).", trains=True)
    hidden_units: tuple[int, ...] = _hp(
        (64, 32), "Hidden layer widths, '64,32' or '[64, 32]'; empty ('') is a linear model.", trains=True
    )
    hidden_width: int = _hp(
        0, "Tuning: units of every hidden layer; with hidden_layers (both >= 1) it replaces hidden_units. "
        "0 = use hidden_units.", trains=True,
    )
    hidden_layers: int = _hp(
        0, "Tuning: number of hidden layers of hidden_width units; 0 = use hidden_units.", trains=True
    )
    seed: int = _hp(0, "Seed for initialisation, the validation split and shuffling.", trains=True)
    validation_fraction: float = _hp(0.2, "Share of rows held out for evaluation, in (0, 1).", trains=True)
    max_categories: int = _hp(
        100, "Largest vocabulary kept per String feature (most frequent first); the rest encode as unknown.",
        trains=True,
    )
    feature_schema: str = _hp(
        "", "The feature schema as a JSON string, instead of the config channel's feature_schema.json.",
        trains=True,
    )
    shuffle_labels: bool = _hp(
        False, "Drill: permute the training split's labels (seeded) so the run learns noise; for checking that "
        "the evaluation gates refuse a bad candidate. Validation labels stay true.", trains=True,
    )
    checkpoint_every_steps: int = _hp(
        500, "Write a checkpoint every N optimizer steps and at the end of training; 0 disables checkpoints.",
        trains=False,
    )
    keep_checkpoints: int = _hp(2, "How many of the newest checkpoints to keep (>= 1).", trains=False)
    mixed_precision: str = _hp(
        "auto", "auto (bf16 or fp16 on CUDA, off on CPU), bf16, fp16 or off; CPU always runs fp32.", trains=False
    )
    num_threads: int = _hp(
        0, "torch intra-op threads per process; 0 = the CPUs available divided by the processes on this host.",
        trains=False,
    )
    min_label_fraction: float = _hp(
        0.001, "Binary classification: refuse data whose rarer class is below this share of rows, in [0, 0.5).",
        trains=False,
    )
    model_name: str = _hp("model", "Model name in metadata and in the artifact's S3 key.", trains=False)
    model_version: str = _hp("dev", "Model version in metadata and in the artifact's S3 key.", trains=False)
    artifact_s3_uri: str = _hp(
        "", "s3:// prefix; rank 0 uploads model.tar.gz, metrics.json and baseline.json under "
        "<prefix>/<model_name>/<model_version>/. Empty: no upload.", trains=False,
    )
    model_package_group_name: str = _hp(
        "", "Register a model package in this Model Package Group; empty: do not register.", trains=False
    )
    auto_approve: bool = _hp(
        False, "Register as Approved instead of PendingManualApproval (the environment's config decides).",
        trains=False,
    )
    image_uri: str = _hp("", "Serving image for the model package's inference specification.", trains=False)

    def layers(self) -> tuple[int, ...]:
        """The hidden layer widths: hidden_layers x hidden_width when a tuner set them, else hidden_units."""
        if self.hidden_width and self.hidden_layers:
            return (self.hidden_width,) * self.hidden_layers
        return self.hidden_units

    def training_dict(self) -> dict[str, Any]:
        """The values that determine the trained weights (a resumed run must match them)."""
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.metadata["trains"]
        }

    def to_dict(self) -> dict[str, Any]:
        """All values, JSON-serialisable (for metadata.json)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _is_reserved(key: str) -> bool:
    # SageMaker adds its own keys (framework estimators: sagemaker_program, sagemaker_region, ...;
    # automatic model tuning: _tuning_objective_metric). They are not the user's mistakes.
    return key.startswith("sagemaker_") or key.startswith("_")


def parse_hyperparameters(raw: dict[str, Any], *, source: str = "hyperparameters") -> Hyperparameters:
    """Convert a `hyperparameters.json` mapping into `Hyperparameters`, collecting every problem."""
    if not isinstance(raw, dict):
        raise HyperparameterError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(Hyperparameters)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if _is_reserved(key):
            continue
        if key not in fields:
            problems.append(f"{key}={value!r}: unknown hyperparameter; allowed: {', '.join(fields)}")
            continue
        try:
            values[key] = _convert(value, fields[key].type)
        except ValueError as exc:
            problems.append(f"{key}={value!r}: {exc}")
    if not problems:
        hp = Hyperparameters(**values)
        problems.extend(_check(hp))
    if problems:
        raise HyperparameterError(f"{source} are invalid:\n  - " + "\n  - ".join(problems))
    return hp


def _convert(value: Any, annotation: str) -> Any:
    if annotation == "int":
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ValueError("expected an integer")
    if annotation == "float":
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected a boolean: one of {', '.join(sorted(_TRUE | _FALSE))}")
    if annotation == "str":
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    if annotation == "tuple[int, ...]":
        return _int_list(value)
    raise AssertionError(f"no converter for {annotation}")  # internal: every field type is handled above


def _int_list(value: Any) -> tuple[int, ...]:
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("expected comma-separated integers such as '64,32' or a JSON list") from None
        else:
            items = [p for p in (s.strip() for s in text.split(",")) if p]
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected comma-separated integers such as '64,32' or a JSON list")
    out = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError("expected integers")
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, str) and re.fullmatch(r"[+-]?\d+", item):
            out.append(int(item))
        else:
            raise ValueError(f"{item!r} is not an integer")
    return tuple(out)


def _check(hp: Hyperparameters) -> list[str]:
    problems: list[str] = []

    def need(ok: bool, key: str, *, allowed: str) -> None:
        if not ok:
            problems.append(f"{key}={getattr(hp, key)!r}: allowed: {allowed}")

    need(hp.epochs >= 1, "epochs", allowed="an integer >= 1")
    need(hp.batch_size >= 1, "batch_size", allowed="an integer >= 1")
    need(hp.learning_rate > 0, "learning_rate", allowed="a number > 0")
    need(hp.weight_decay >= 0, "weight_decay", allowed="a number >= 0")
    need(all(u >= 1 for u in hp.hidden_units), "hidden_units", allowed="layer widths >= 1")
    need(hp.hidden_width >= 0, "hidden_width", allowed="an integer >= 0 (0 = use hidden_units)")
    need(hp.hidden_layers >= 0, "hidden_layers", allowed="an integer >= 0 (0 = use hidden_units)")
    if (hp.hidden_width == 0) != (hp.hidden_layers == 0):
        problems.append(
            f"hidden_width={hp.hidden_width!r}, hidden_layers={hp.hidden_layers!r}: set both (>= 1) or neither"
        )
    need(hp.seed >= 0, "seed", allowed="an integer >= 0")
    need(0 < hp.validation_fraction < 1, "validation_fraction", allowed="a number in (0, 1)")
    need(hp.max_categories >= 1, "max_categories", allowed="an integer >= 1")
    need(hp.checkpoint_every_steps >= 0, "checkpoint_every_steps", allowed="an integer >= 0 (0 disables)")
    need(hp.keep_checkpoints >= 1, "keep_checkpoints", allowed="an integer >= 1")
    need(hp.mixed_precision in MIXED_PRECISION, "mixed_precision", allowed=", ".join(MIXED_PRECISION))
    need(hp.num_threads >= 0, "num_threads", allowed="an integer >= 0 (0 = automatic)")
    need(0 <= hp.min_label_fraction < 0.5, "min_label_fraction", allowed="a number in [0, 0.5)")
    names = f"letters, digits, '.', '_', '-' ({_NAME_RE.pattern})"
    need(bool(_NAME_RE.match(hp.model_name)), "model_name", allowed=names)
    need(bool(_NAME_RE.match(hp.model_version)), "model_version", allowed=names)
    need(
        hp.artifact_s3_uri == "" or bool(_S3_PREFIX_RE.fullmatch(hp.artifact_s3_uri)),
        "artifact_s3_uri", allowed="empty or s3://bucket[/prefix]",
    )
    if hp.model_package_group_name:
        # A model package needs an image and model data that SageMaker can reach.
        if not hp.image_uri:
            problems.append(
                f"image_uri='': required when model_package_group_name={hp.model_package_group_name!r} is set"
            )
        if not hp.artifact_s3_uri:
            problems.append(
                f"artifact_s3_uri='': required when model_package_group_name={hp.model_package_group_name!r} "
                "is set (the model package points at the uploaded model.tar.gz)"
            )
    return problems


def load_hyperparameters(value: str | None, *, default_file: Path) -> Hyperparameters:
    """Hyperparameters from `--hyperparameters` (a JSON object or a file path) or SageMaker's file.

    With no value, `default_file` (SageMaker's `/opt/ml/input/config/hyperparameters.json`) is read
    when it exists; otherwise every default applies.
    """
    if value is None:
        if not default_file.exists():
            return Hyperparameters()
        return _from_file(default_file)
    if value.lstrip().startswith("{"):
        try:
            raw = json.loads(value)
        except json.JSONDecodeError as exc:
            raise HyperparameterError(f"--hyperparameters: not valid JSON ({exc})") from None
        return parse_hyperparameters(raw, source="--hyperparameters")
    return _from_file(Path(value))


def _from_file(path: Path) -> Hyperparameters:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HyperparameterError(f"hyperparameters file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"{path}: not valid JSON ({exc})") from None
    return parse_hyperparameters(raw, source=str(path))
