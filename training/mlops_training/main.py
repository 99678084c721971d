"""`mlops-train`: the container's entry point.

SageMaker runs the image as `docker run IMAGE train`, torchrun as `python -m mlops_training.main`,
a developer as `mlops-train --train DIR --model-dir DIR ...`; all three reach `main()`.

Exit codes: 0 trained; 2 invalid hyperparameters, schema or environment; 3 data refused by
validation (nothing trained). Any other failure raises, after writing SageMaker's failure file.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as torch_dist
from mlops_contracts.artifact import ARCHIVE, BASELINE_FILE, METRICS_FILE

from mlops_training import artifact, s3
from mlops_training.tracking import RUN_ID_KEY, Tracking
from mlops_training.baseline import compute_baseline
from mlops_training.checkpoint import open_store
from mlops_training.data import read_parquet_source, split_rows
from mlops_training.dataset import manifest as dataset_manifest
from mlops_training.encode import encode_table, learn_categories
from mlops_training.env import (
    Distributed,
    Paths,
    default_num_threads,
    resolve_distributed,
    resolve_failure_file,
    resolve_paths,
    torchrun_argv,
)
from mlops_training.evaluate import compute_metrics, metric_values
from mlops_training.hyperparameters import Hyperparameters, HyperparameterError, load_hyperparameters
from mlops_training.model import Predictor, TabularNet, build_model
from mlops_training.register import Registration, register_model_package
from mlops_training.schema import FeatureSchema, SchemaError, load_schema, schema_from_json
from mlops_training.train import LoopConfig, fit, predict, resolve_precision, run_key
from mlops_training.validate import DataValidationError, validate

log = logging.getLogger("mlops_training")

EXIT_CONFIG = 2
EXIT_BAD_DATA = 3
FAILURE_LIMIT = 1024


def build_parser() -> argparse.ArgumentParser:
    """The command line; every location defaults to SageMaker's variables, then to /opt/ml."""
    parser = argparse.ArgumentParser(
        prog="mlops-train",
        description="Train a tabular PyTorch model on a feature store export, evaluate it, write the "
        "model artifact and optionally register it. Flags override SM_* variables, which override /opt/ml.",
    )
    parser.add_argument(
        "command", nargs="?", choices=["train", "dataset", "evaluate"],
        help="SageMaker passes 'train' (optional); 'dataset' builds a point-in-time training set "
        "(see 'mlops-train dataset --help'); 'evaluate' scores a candidate against the champions "
        "(see 'mlops-train evaluate --help')",
    )
    parser.add_argument("--train", help="Parquet directory or s3://bucket/prefix (SM_CHANNEL_TRAIN)")
    parser.add_argument("--schema", help="feature_schema.json (default: SM_CHANNEL_CONFIG/feature_schema.json)")
    parser.add_argument("--model-dir", help="artifact members are written here (SM_MODEL_DIR)")
    parser.add_argument("--output-dir", help="metrics, baseline and validation report (SM_OUTPUT_DATA_DIR)")
    parser.add_argument(
        "--checkpoint-dir",
        help="checkpoints: a local directory or s3://bucket/prefix (SM_CHECKPOINT_DIR, else /opt/ml/checkpoints "
        "if it exists)",
    )
    parser.add_argument("--hyperparameters", help="a JSON object or a JSON file (default: SageMaker's file)")
    parser.add_argument("--archive", help="also pack the artifact into this model.tar.gz path")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one training job; returns the process exit code."""
    raw_args = sys.argv[1:] if argv is None else argv
    if raw_args[:1] == ["dataset"]:
        from mlops_training.dataset.cli import main as dataset_main

        return dataset_main(raw_args[1:])
    if raw_args[:1] == ["evaluate"]:
        from mlops_training.evaluation.cli import main as evaluate_main

        return evaluate_main(raw_args[1:])
    args = build_parser().parse_args(raw_args)
    env = os.environ
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    try:
        paths = resolve_paths(
            env=env, train=args.train, schema_file=args.schema, model_dir=args.model_dir,
            output_dir=args.output_dir, checkpoint_dir=args.checkpoint_dir,
        )
        hp = load_hyperparameters(args.hyperparameters, default_file=paths.hyperparameters_file)
        schema = _load_schema(hp, paths)
        dist = resolve_distributed(env=env)
    except (HyperparameterError, SchemaError, ValueError) as exc:
        log.error("%s", exc)
        _write_failure(resolve_failure_file(env=env), f"Invalid configuration: {exc}", local_rank=0)
        return EXIT_CONFIG

    if dist.source != "torchrun" and torch.cuda.device_count() > 1:
        # One container process per host on SageMaker: become one process per GPU.
        command = torchrun_argv(
            dist=dist, nproc_per_node=torch.cuda.device_count(), module="mlops_training.main",
            args=raw_args, python=sys.executable,
        )
        log.info("relaunching under torchrun: %s", " ".join(command))
        os.execv(sys.executable, command)

    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(f"%(asctime)s rank{dist.rank} %(levelname)s %(name)s: %(message)s"))
    try:
        return _run(paths=paths, hp=hp, schema=schema, dist=dist, archive=Path(args.archive) if args.archive else None)
    except Exception as exc:
        _write_failure(paths.failure_file, f"{type(exc).__name__}: {exc}", local_rank=dist.local_rank)
        raise
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _load_schema(hp: Hyperparameters, paths: Paths) -> FeatureSchema:
    if hp.feature_schema:
        if paths.schema_file.exists():
            raise SchemaError(
                f"the feature schema is given twice: the feature_schema hyperparameter and {paths.schema_file}; "
                "give exactly one"
            )
        return schema_from_json(hp.feature_schema, source="hyperparameter feature_schema")
    return load_schema(paths.schema_file)


def _write_failure(failure_file: Path | None, reason: str, *, local_rank: int) -> None:
    # SageMaker shows this file's content as the job's FailureReason (at most 1024 characters).
    if failure_file is None or local_rank != 0:
        return
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(reason[:FAILURE_LIMIT], encoding="utf-8")


def _write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _init_distributed(dist: Distributed, *, device: torch.device) -> None:
    backend = "nccl" if device.type == "cuda" else "gloo"
    init_method = "env://" if dist.source == "torchrun" else f"tcp://{dist.master_addr}:{dist.master_port}"
    torch_dist.init_process_group(
        backend=backend, init_method=init_method, rank=dist.rank, world_size=dist.world_size,
        timeout=timedelta(minutes=30),
    )
    log.info("process group up: backend=%s rank=%d world_size=%d", backend, dist.rank, dist.world_size)


@dataclass(frozen=True, kw_only=True)
class _Prepared:
    """The split, vocabularies and encoded tensors one run trains and evaluates on."""

    train_table: pa.Table
    categories: dict[str, list[str]]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: np.ndarray


def _run(*, paths: Paths, hp: Hyperparameters, schema: FeatureSchema, dist: Distributed, archive: Path | None) -> int:
    threads = default_num_threads(requested=hp.num_threads, local_world_size=dist.local_world_size)
    torch.set_num_threads(threads)
    if torch.cuda.is_available():
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        # cuBLAS needs a fixed workspace for reproducible results; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    else:
        device = torch.device("cpu")
    torch.use_deterministic_algorithms(True, warn_only=True)
    if dist.is_distributed:
        _init_distributed(dist, device=device)
    log.info("device=%s threads=%d world_size=%d (%s)", device, threads, dist.world_size, dist.source)

    tracking = Tracking()
    tracking.start(hyperparameters=hp.to_dict(), model_name=hp.model_name, is_main=dist.is_main)
    started = time.perf_counter()
    raw = read_parquet_source(paths.train)
    manifest = dataset_manifest.find(paths.train)
    # A point-in-time dataset carries its own split: train before the cutoff, validation after it.
    time_split = dataset_manifest.time_split(raw, manifest) if manifest is not None else None
    try:
        data = validate(raw, schema, min_label_fraction=hp.min_label_fraction)
    except DataValidationError as exc:
        if dist.is_main:
            print(exc.report.format(), file=sys.stderr)
            _write_json(paths.output_data_dir / "validation_report.json", exc.report.to_dict())
        _write_failure(paths.failure_file, exc.report.summary(limit=FAILURE_LIMIT), local_rank=dist.local_rank)
        return EXIT_BAD_DATA
    log.info("%s (%s) in %.2fs", data.report.format(), data.fingerprint, time.perf_counter() - started)

    if time_split is not None:
        log.info("time split of %s at %s: %d train, %d validation rows (validation_fraction unused)",
                 paths.train, manifest.doc["cutoff"], len(time_split[0]), len(time_split[1]))
    prepared = _prepare(data.table, schema=schema, hp=hp, split=time_split)
    model = build_model(
        schema=schema, categories=prepared.categories, hidden_units=hp.layers(), seed=hp.seed
    )
    model.fit_statistics(
        features=prepared.x_train, target=prepared.y_train, standardize_target=schema.task == "regression"
    )
    store = None
    if paths.checkpoint_dir is not None and hp.checkpoint_every_steps > 0:
        store = open_store(paths.checkpoint_dir, keep=hp.keep_checkpoints)
        log.info("checkpoints: %s (every %d steps, keep %d)", paths.checkpoint_dir, hp.checkpoint_every_steps,
                 hp.keep_checkpoints)
    key = run_key(
        fingerprint=data.fingerprint, training=hp.training_dict() | {"schema": schema.to_dict()},
        world_size=dist.world_size,
    )
    config = LoopConfig(
        epochs=hp.epochs, batch_size=hp.batch_size, learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay, seed=hp.seed, checkpoint_every_steps=hp.checkpoint_every_steps,
        precision=resolve_precision(hp.mixed_precision, device=device),
    )
    result = fit(
        model=model, features=prepared.x_train, target=prepared.y_train, task=schema.task, config=config,
        device=device, dist=dist, checkpoints=store, key=key,
    )
    log.info(
        "trained: global_step=%d (this process %d, resumed from %s) samples_per_s=%.0f",
        result.global_step, result.steps_this_process, result.resumed_from_step, result.samples_per_second,
    )
    if dist.is_main:
        _finish(paths=paths, hp=hp, schema=schema, prepared=prepared, model=model,
                fingerprint=data.fingerprint, validation_report=data.report.to_dict(), archive=archive,
                dataset=manifest.doc if manifest is not None else None, tracking=tracking)
    if dist.is_distributed:
        torch_dist.barrier()
    return 0


def _prepare(
    table: pa.Table, *, schema: FeatureSchema, hp: Hyperparameters, split: tuple[np.ndarray, np.ndarray] | None
) -> _Prepared:
    labels = table.column(schema.label).to_numpy()
    train_idx, val_idx = split if split is not None else split_rows(
        table.num_rows, labels=labels if schema.task == "binary_classification" else None,
        fraction=hp.validation_fraction, seed=hp.seed,
    )
    train_table, val_table = table.take(train_idx), table.take(val_idx)
    y_train = labels[train_idx]
    if hp.shuffle_labels:
        # The drill of `shuffle_labels`: the features keep their rows, the labels lose them.
        log.warning("shuffle_labels=true: training on permuted labels (a deliberately bad model)")
        y_train = np.random.default_rng(hp.seed).permutation(y_train)
    # The vocabulary comes from the training split only: validation must see unknown values as serving will.
    categories = learn_categories(train_table, schema, max_categories=hp.max_categories)
    return _Prepared(
        train_table=train_table,
        categories=categories,
        x_train=torch.from_numpy(encode_table(train_table, schema, categories=categories)),
        y_train=torch.from_numpy(y_train.astype(np.float32)),
        x_val=torch.from_numpy(encode_table(val_table, schema, categories=categories)),
        y_val=labels[val_idx],
    )


def _finish(
    *,
    paths: Paths,
    hp: Hyperparameters,
    schema: FeatureSchema,
    prepared: _Prepared,
    model: TabularNet,
    fingerprint: str,
    validation_report: dict[str, Any],
    archive: Path | None,
    dataset: dict[str, Any] | None,
    tracking: Tracking,
) -> None:
    predictor = Predictor(model, binary=schema.task == "binary_classification")
    metrics = compute_metrics(task=schema.task, y_true=prepared.y_val, predictions=predict(predictor, prepared.x_val))
    log.info("validation %s", " ".join(f"{k}={v:.6f}" for k, v in metric_values(metrics).items()))
    baseline = compute_baseline(
        prepared.train_table, schema, predictions=predict(predictor, prepared.x_train), seed=hp.seed
    )
    metadata = artifact.build_metadata(
        model_name=hp.model_name, model_version=hp.model_version, task=schema.task, data_fingerprint=fingerprint,
        hyperparameters=hp.to_dict(), metrics=metrics, dataset=dataset,
    )
    if tracking.enabled:
        metadata[RUN_ID_KEY] = tracking.run_id
    artifact.write_model_dir(
        paths.model_dir, predictor=predictor, schema=schema, categories=prepared.categories,
        metadata=metadata, baseline=baseline,
    )
    out = paths.output_data_dir
    _write_json(out / METRICS_FILE, metrics)
    _write_json(out / BASELINE_FILE, baseline)
    _write_json(out / "validation_report.json", validation_report)
    tracking.finish(out_dir=out, model_dir=paths.model_dir, dataset=dataset,
                    files=[METRICS_FILE, "validation_report.json"])
    if archive is not None:
        artifact.pack(paths.model_dir, archive)
        log.info("wrote %s", archive)
    if not hp.artifact_s3_uri:
        return
    prefix = f"{hp.artifact_s3_uri.rstrip('/')}/{hp.model_name}/{hp.model_version}"
    client = s3.client()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = archive or artifact.pack(paths.model_dir, Path(tmp) / ARCHIVE)
        model_data_url = s3.upload_file(tarball, f"{prefix}/{ARCHIVE}", s3=client)
    metrics_uri = s3.upload_file(out / METRICS_FILE, f"{prefix}/{METRICS_FILE}", s3=client)
    s3.upload_file(out / BASELINE_FILE, f"{prefix}/{BASELINE_FILE}", s3=client)
    log.info("uploaded the artifact to %s", model_data_url)
    if not hp.model_package_group_name:
        # The retraining pipeline: its Evaluate step compares this artifact with the champions and its
        # Register step registers it; the trainer decides no approval there.
        log.info("no model_package_group_name: nothing registered")
        return
    arn = register_model_package(Registration(
        group_name=hp.model_package_group_name, image_uri=hp.image_uri, model_data_url=model_data_url,
        metrics_s3_uri=metrics_uri, metrics=metric_values(metrics),
        properties={
            "model_name": hp.model_name, "model_version": hp.model_version, "task": schema.task,
            "data_fingerprint": fingerprint, "code_version": metadata["code_version"],
            **({RUN_ID_KEY: tracking.run_id} if tracking.enabled else {}),
        },
        approve=hp.auto_approve,
        description=f"{hp.model_name} {hp.model_version}, {schema.task}, data {fingerprint}",
    ))
    log.info("registered %s (%s)", arn, "Approved" if hp.auto_approve else "PendingManualApproval")


if __name__ == "__main__":
    raise SystemExit(main())
