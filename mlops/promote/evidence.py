"""The evidence the regression gate of a promotion decides on: one evaluation (docs/contracts.md section 8)
that scored the candidate and the target's champion on the same rows.

In order of preference:

1. the candidate's own evaluation, the evaluation.json its package names in CustomerMetadataProperties
   `mlops:evaluation` (specs.lineage.EVALUATION), read with the source environment's session. It counts
   when it evaluated this candidate's artifact and one of its champions is the target's champion: that
   champion's `uri` is the target champion's model data URL or the URL of the package the champion was
   promoted from;
2. a fresh shared evaluation: `mlops-train evaluate` run as a process on labelled data of the target,
   either the directory the user gives (`--evaluation-data`, output of `mlops-train dataset`) or one
   built by `mlops-train dataset` from the target's offline store, its endpoint's captures and the
   model's ground truth over the last `DEFAULT_WINDOW_DAYS` days.

When neither is possible and the target has a champion, the regression gate fails naming what is
missing (gates.missing_evidence_gate). The processes are the training container's console scripts next
to `sys.executable`; they get the target environment's credentials in their environment.

Must not import: boto3 (sessions come from the aws module), pulumi or ruamel, nor the package's pins,
files, audit, policy or flow modules (tests/promotion/test_promote_layout.py checks it), nor
`mlops_training`, `mlops_serving` or `torch` (the containers run as processes).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_contracts import evaluation as contract
from specs import lineage
from mlops.promote.aws import SOURCE_ARN_KEY, split_s3

EVALUATION_DATA_FLAG = "--evaluation-data"
"""The promote option that gives labelled data for a fresh shared evaluation."""
DEFAULT_WINDOW_DAYS = 30.0
"""Days of label events a fresh evaluation's dataset covers (the model declares no training window today)."""
CANDIDATE_EVALUATION = "candidate evaluation"
SHARED_EVALUATION = "shared evaluation"
PROMOTION_EVALUATION = "promotion-evaluation.json"
"""A shared evaluation run by a promotion, kept beside the promoted artifact in the target's bucket."""
PROCESS_TIMEOUT_S = 3600


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """The evaluation a regression gate used, where it lies, and which of its champions is the target's."""

    kind: str
    """`candidate evaluation` (registered with the candidate) or `shared evaluation` (run by this promotion)."""
    location: str
    """s3:// URI or local path of the evaluation.json."""
    evaluation: contract.Evaluation
    champion: str
    """The name of the evaluation's champion entry that is the target's champion."""
    data: str = ""
    """For a shared evaluation: the labelled dataset it scored."""

    @property
    def label(self) -> str:
        if self.kind == SHARED_EVALUATION:
            return (f"{self.kind} {self.location} (the promotion's temporary workdir: kept beside the promoted artifact as "
                    f"{PROMOTION_EVALUATION}, and written whole by --json)")
        return f"{self.kind} {self.location}"

    def to_json(self) -> dict[str, Any]:
        s = self.evaluation.slice
        return {
            "kind": self.kind, "evaluation": self.location, "champion": self.champion, "data": self.data or None,
            "slice": {"rows": s.rows, "from": s.start, "to": s.end, "hash": s.hash, "dataset_manifest": s.dataset_manifest},
            "decision": {"passed": self.evaluation.decision.passed, "failed_gates": list(self.evaluation.decision.failed_gates),
                         "reason": self.evaluation.decision.reason},
        }


def model_data_url(package: dict[str, Any]) -> str | None:
    """The one ModelDataUrl of a package (None when it has none)."""
    urls = [c["ModelDataUrl"] for c in package.get("InferenceSpecification", {}).get("Containers", []) if c.get("ModelDataUrl")]
    return urls[0] if len(urls) == 1 else None


def champion_urls(champion: dict[str, Any], *, source_sagemaker: Any) -> tuple[set[str], list[str]]:
    """The URLs under which an evaluation may name the target's champion: its own model data URL and, when
    it was promoted, the URL of the package it was promoted from (read with the source environment's client).
    Returns the URLs and notes on what could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    urls, notes = set(), []
    own = model_data_url(champion)
    if own:
        urls.add(own)
    source_arn = (champion.get("CustomerMetadataProperties") or {}).get(SOURCE_ARN_KEY)
    if source_arn:
        try:
            source_url = model_data_url(source_sagemaker.describe_model_package(ModelPackageName=source_arn))
        except (ClientError, BotoCoreError) as exc:
            notes.append(f"the champion's source package {source_arn} is not readable from the source environment ({exc})")
        else:
            if source_url:
                urls.add(source_url)
    return urls, notes


def candidate_evaluation(package: dict[str, Any], *, session: Any, urls: set[str], workdir: Path) -> tuple[Evidence | None, str]:
    """The candidate's own evaluation when it compared this artifact with the target's champion (one of `urls`);
    else None and why not."""
    from botocore.exceptions import BotoCoreError, ClientError

    uri = (package.get("CustomerMetadataProperties") or {}).get(lineage.EVALUATION)
    if not uri:
        return None, f"the candidate package carries no evaluation ({lineage.EVALUATION} is not in its CustomerMetadataProperties)"
    local = workdir / "candidate-evaluation.json"
    try:
        bucket, key = split_s3(uri)
        session.client("s3").download_file(bucket, key, str(local))
        evaluation = contract.read(local)
    except (ClientError, BotoCoreError, ValueError, OSError) as exc:
        return None, f"the candidate's evaluation {uri} is not readable ({exc})"
    candidate_url = model_data_url(package)
    if evaluation.candidate.uri != candidate_url:
        return None, f"the candidate's evaluation {uri} scored {evaluation.candidate.uri}, not this package's artifact {candidate_url}"
    match = next((c for c in evaluation.champions if c.uri in urls), None)
    if match is None:
        named = ", ".join(f"{c.name}={c.uri}" for c in evaluation.champions) or "none"
        return None, f"the candidate's evaluation {uri} compared it with {named}, not with the target's champion ({', '.join(sorted(urls))})"
    return Evidence(kind=CANDIDATE_EVALUATION, location=uri, evaluation=evaluation, champion=match.name), ""


@dataclass(frozen=True, kw_only=True)
class DatasetSources:
    """Where the target's labelled data lies, for `mlops-train dataset`."""

    feature_group: str
    offline_store: str
    captures: str
    ground_truth: str
    window_days: float = DEFAULT_WINDOW_DAYS

    def argv(self, *, schema: Path, out: Path) -> list[str]:
        return [
            "dataset", "--schema", str(schema), "--out", str(out), "--feature-group", self.feature_group,
            "--engine", "duckdb", "--offline-store", self.offline_store, "--captures", self.captures,
            "--ground-truth", self.ground_truth, "--window-days", f"{self.window_days:g}",
        ]


def offline_store_uri(sagemaker: Any, feature_group: str) -> str:
    """The feature group's offline store location (DescribeFeatureGroup); ValueError naming what is missing."""
    from botocore.exceptions import ClientError

    try:
        described = sagemaker.describe_feature_group(FeatureGroupName=feature_group)
    except ClientError as exc:
        raise ValueError(f"feature group {feature_group} is not readable in the target ({exc})") from None
    s3 = (described.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}
    uri = s3.get("ResolvedOutputS3Uri") or s3.get("S3Uri")
    if not uri:
        raise ValueError(f"feature group {feature_group} has no offline store")
    return uri


def script(name: str) -> str:
    """A console script of this environment (the training container's entry point)."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise ValueError(f"{candidate} not found: install the training container's package (make bootstrap)")
    return str(candidate)


def process_env(session: Any) -> dict[str, str]:
    """This process's environment with `session`'s credentials and region, for a container process."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")}
    creds = session.get_credentials()
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        env |= {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
        env.pop("AWS_SESSION_TOKEN", None)
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
    if session.region_name:
        env["AWS_DEFAULT_REGION"] = env["AWS_REGION"] = session.region_name
    return env


def _run(argv: list[str], *, env: dict[str, str], what: str) -> str:
    """Run `mlops-train <argv>`; ValueError with the last lines of its log when it fails."""
    done = subprocess.run([script("mlops-train"), *argv], env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        tail = re.sub(r"^\S+ \S+ ERROR \S+: ", "", lines[-1].strip()) if lines else "(no output)"  # its error, or a traceback's last line
        raise ValueError(f"`mlops-train {argv[0]}` ({what}) exited {done.returncode}: {tail}")
    return done.stdout


@dataclass(frozen=True, kw_only=True)
class SharedRun:
    """A fresh shared evaluation's inputs: local artifacts, the champion's name, the gates."""

    schema: dict[str, Any]
    candidate: Path
    champion_name: str
    champion: Path
    gates: dict[str, float]
    max_regression: float


def shared_evaluation(run: SharedRun, *, data: str | None, sources: DatasetSources | None, session: Any, workdir: Path) -> Evidence:
    """Build the dataset (unless `data` names one), run `mlops-train evaluate` on it and read its evaluation.json.
    ValueError saying what failed."""
    env = process_env(session)
    schema = workdir / "feature_schema.json"
    schema.write_text(json.dumps(run.schema), encoding="utf-8")
    if data is None:
        assert sources is not None, "no --evaluation-data, so the caller found the target's sources"
        dataset = workdir / "dataset"
        _run(sources.argv(schema=schema, out=dataset), env=env, what=f"labelled data of the last {sources.window_days:g} days")
        data_label = (f"{sources.offline_store} + captures {sources.captures} + ground truth {sources.ground_truth}, "
                      f"last {sources.window_days:g} days")
        data = str(dataset)
    else:
        data_label = data
    out = workdir / "evaluation"
    _run([
        "evaluate", "--schema", str(schema), "--dataset", data, "--candidate", str(run.candidate),
        "--champion", f"{run.champion_name}={run.champion}", "--gates", json.dumps(run.gates),
        "--max-regression", repr(run.max_regression), "--out", str(out),
    ], env=env, what=f"on {data_label}")
    location = out / contract.EVALUATION_FILE
    return Evidence(kind=SHARED_EVALUATION, location=str(location), evaluation=contract.read(location), champion=run.champion_name, data=data_label)
