"""`mlops-train evaluate`: the retraining pipeline's Evaluate step.

Scores the candidate and every champion on the dataset's held-back, most recent split, with paired
bootstrap intervals, runs the thresholds, regression and validation gates and writes
`evaluation.json` plus `model_quality/candidate.json` and `model_quality/champion-<N>.json`
(docs/contracts.md section 8) to a directory or an s3:// prefix.

Exit codes: 0 evaluated, whether or not the decision passed (the pipeline's Condition step decides);
2 bad input, the message naming the argument and what is allowed.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops_contracts import tracking as tracking_contract
from mlops_contracts import evaluation as contract

from mlops_training import s3
from mlops_training.evaluation import bootstrap as bs
from mlops_training.evaluation import gates as gate_checks
from mlops_training.evaluation.models import Model, load_model, score, workdir
from mlops_training.evaluation.shared_slice import SPLIT, SharedSlice, load_slice, now_iso
from mlops_training.hyperparameters import Hyperparameters
from mlops_training.schema import FeatureSchema, SchemaError, load_schema

log = logging.getLogger("mlops_training.evaluation")
EXIT_CONFIG = 2
DEFAULT_MAX_REGRESSION = 0.01
DEFAULT_BOOTSTRAP = 1000


def build_parser() -> argparse.ArgumentParser:
    """The `evaluate` subcommand's arguments."""
    parser = argparse.ArgumentParser(
        prog="mlops-train evaluate",
        description="Score a candidate model and the current champions on the same held-back, most recent "
        "slice of a dataset (its validation/ split), with paired bootstrap confidence intervals; run the "
        "thresholds, regression and validation gates; write evaluation.json and SageMaker model-quality "
        "JSON per model. Exit 0 whether or not the gates pass, 2 on bad input.",
    )
    parser.add_argument("--schema", required=True, help="feature_schema.json")
    parser.add_argument("--dataset", required=True,
                        help="directory or s3:// prefix written by `mlops-train dataset` (train/, validation/, "
                        "manifest.json)")
    parser.add_argument("--candidate", required=True,
                        help="the candidate's model.tar.gz: a local path, a directory holding it, or s3://")
    parser.add_argument("--champion", action="append", default=[], metavar="NAME=URI",
                        help="a champion to compare with, e.g. scoring/champion=s3://.../model.tar.gz (repeatable)")
    parser.add_argument("--gates", default="{}",
                        help='the model\'s gates as JSON, e.g. \'{"auc": 0.85}\': a minimum for higher-is-better '
                        "metrics, a maximum for log_loss, rmse, mae (default: none)")
    parser.add_argument("--max-regression", type=float, default=DEFAULT_MAX_REGRESSION,
                        help="how much worse than a champion the candidate may be, absolute (default 0.01)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP,
                        help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--min-label-fraction", type=float, default=Hyperparameters().min_label_fraction,
                        help="data check: the rarer class's smallest share of rows (default: training's, 0.001)")
    parser.add_argument("--lineage", action="append", default=[], metavar="KEY=VALUE",
                        help="recorded verbatim in evaluation.json's lineage (repeatable)")
    parser.add_argument("--out", required=True, help="output directory or s3:// prefix")
    return parser


def _pairs(values: list[str], *, flag: str, example: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ValueError(f"{flag} {value!r}: expected NAME=VALUE with both parts non-empty, e.g. {example}")
        if any(name == seen for seen, _ in out):
            raise ValueError(f"{flag} {name!r} is given twice; each name may appear once")
        out.append((name, rest))
    return out


def _gates(text: str, *, task: str) -> dict[str, float]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--gates {text!r} is not JSON ({exc}); expected an object such as '{{\"auc\": 0.85}}'") from None
    if not isinstance(doc, dict):
        raise ValueError(f"--gates {text!r}: expected a JSON object of metric -> threshold")
    gate_checks.check_gates(doc, task=task)
    return {k: float(v) for k, v in doc.items()}


def _check_numbers(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.max_regression) and 0.0 <= args.max_regression):
        raise ValueError(f"--max-regression {args.max_regression}; allowed: a number >= 0")
    if args.bootstrap < 1:
        raise ValueError(f"--bootstrap {args.bootstrap}; allowed: 1 or more resamples")
    if not 0.0 <= args.min_label_fraction < 0.5:
        raise ValueError(f"--min-label-fraction {args.min_label_fraction}; allowed: a number in [0, 0.5)")


def _champions(models: list[Model], result: dict[str, bs.Bootstrapped] | None) -> list[contract.Champion]:
    out = []
    for model in models[1:]:
        if result is None:
            out.append(contract.Champion(name=model.name, uri=model.uri, metrics={}, difference={}))
            continue
        out.append(contract.Champion(
            name=model.name, uri=model.uri, metrics=bs.estimates(result[model.name]),
            difference=bs.differences(result[models[0].name], result[model.name]),
        ))
    return out


def evaluate(*, schema: FeatureSchema, shared: SharedSlice, models: list[Model], gates: dict[str, float],
             max_regression: float, n_bootstrap: int, seed: int, lineage: dict[str, str]) -> contract.Evaluation:
    """Score `models` (the candidate first) on the slice and decide; pure apart from the models' forward passes."""
    task = schema.task
    result = None
    if shared.validation.ok:
        # Every model reads the very same table object: the slice is shared by construction.
        predictions = {m.name: score(m, shared.table) for m in models}
        result = bs.bootstrap(task, shared.labels, predictions, n=n_bootstrap, seed=seed)
    candidate_metrics = bs.estimates(result[models[0].name]) if result is not None else {}
    champions = _champions(models, result)
    verdicts = [gate_checks.validation_gate(shared.validation)]
    if result is not None:
        verdicts = [
            gate_checks.threshold_gate(candidate_metrics, gates),
            gate_checks.regression_gate(candidate_metrics, champions,
                                        compared=gate_checks.compared_metrics(gates, task=task),
                                        max_regression=max_regression),
            *verdicts,
        ]
    return contract.Evaluation(
        model=str(models[0].artifact.metadata.get("model_name", "")), task=task,
        primary_metric=contract.PRIMARY_METRIC[task],
        slice=contract.Slice(split=SPLIT, rows=len(shared.record_ids), start=shared.start, end=shared.end,
                             hash=shared.hash, dataset_manifest=shared.manifest_uri,
                             dataset_hash=shared.dataset_hash),
        candidate=contract.Scored(uri=models[0].uri, metrics=candidate_metrics), champions=tuple(champions),
        gates=tuple(verdicts), decision=contract.decide(verdicts), lineage=_with_run_id(lineage, models[0]),
        generated=now_iso(),
    )


def _with_run_id(lineage: dict[str, str], candidate: Model) -> dict[str, str]:
    """The lineage plus the candidate's MLflow run id, when its training run was tracked."""
    run_id = candidate.artifact.metadata.get(tracking_contract.RUN_ID_METADATA_KEY)
    return {**lineage, tracking_contract.LINEAGE_KEY: str(run_id)} if run_id else dict(lineage)


def write_outputs(evaluation: contract.Evaluation, out: str) -> list[str]:
    """Write evaluation.json and the model-quality documents to a directory or s3:// prefix; returns their locations."""
    docs: dict[str, Any] = {
        f"{contract.MODEL_QUALITY_DIR}/{contract.CANDIDATE_QUALITY_FILE}":
            contract.model_quality(evaluation.task, evaluation.candidate.metrics),
    }
    for index, champion in enumerate(evaluation.champions, start=1):
        docs[f"{contract.MODEL_QUALITY_DIR}/{contract.champion_quality_file(index)}"] = contract.model_quality(
            evaluation.task, champion.metrics)
    with tempfile.TemporaryDirectory(prefix="mlops-evaluation-") as tmp:
        root = Path(tmp) if s3.is_s3_uri(out) else Path(out)
        written = [contract.write(evaluation, root / contract.EVALUATION_FILE)]
        for name, doc in docs.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
            written.append(root / name)
        if not s3.is_s3_uri(out):
            return [str(p) for p in written]
        client = s3.client()
        prefix = out.rstrip("/")
        return [s3.upload_file(p, f"{prefix}/{p.relative_to(root).as_posix()}", s3=client) for p in written]


def main(argv: list[str]) -> int:
    """Run one evaluation; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr, force=True)
    try:
        schema = load_schema(Path(args.schema))
        _check_numbers(args)
        gates = _gates(args.gates, task=schema.task)
        champions = _pairs(args.champion, flag="--champion", example="scoring/champion=s3://bucket/model.tar.gz")
        if any(name == "candidate" for name, _ in champions):
            raise ValueError("--champion 'candidate=...': the name 'candidate' is reserved for the candidate")
        lineage = dict(_pairs(args.lineage, flag="--lineage", example="training_job=fraud-2026-03-01"))
        if not s3.is_s3_uri(args.dataset) and not Path(args.dataset).is_dir():
            raise ValueError(f"--dataset {args.dataset}: no such directory; expected the output of "
                             "`mlops-train dataset` (a directory or s3:// prefix)")
        shared = load_slice(args.dataset, schema=schema, min_label_fraction=args.min_label_fraction)
        with workdir() as tmp:
            models = [load_model("candidate", args.candidate, schema=schema, workdir=Path(tmp), what="--candidate")]
            models += [load_model(name, uri, schema=schema, workdir=Path(tmp), what=f"--champion {name}")
                       for name, uri in champions]
        evaluation = evaluate(schema=schema, shared=shared, models=models, gates=gates,
                              max_regression=args.max_regression, n_bootstrap=args.bootstrap, seed=args.seed,
                              lineage=lineage)
    except (SchemaError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    for location in write_outputs(evaluation, args.out):
        log.info("wrote %s", location)
    log.info("decision: %s", evaluation.decision.reason)
    print(contract.dumps(evaluation), end="")
    return 0
