"""The local demo: the whole lifecycle of one stack on this machine, in two to three minutes.

1. features: a synthetic source (transactions over the past days, some corrected later) is ingested
   with `mlops features ingest`'s code into the feature group's online and offline stores; a
   point-in-time training set is built from the offline store and label events with
   `mlops-train dataset`; the versions the stack's variants pin are trained on it with the training
   container's entry point; each registers itself (its metadata carrying the dataset manifest), and
   is approved;
2. deploy the endpoint exactly as the stack declares it (A/B champion and challenger) and send traffic,
   a share of it by record id only (the endpoint's feature lookup completes those rows); check that
   by-id and inline predictions agree and that an unknown id is refused with 422;
3. train a candidate and run it in shadow next to the champion: it sees copies, callers never see it;
4. deploy a faulty challenger (a build whose exported graph rejects missing values) and watch its
   5XX alarm fire;
5. put the endpoint back as the stack declares it;
6. send drifted traffic: the monitoring job flags it, the drift alarm's rule starts the retraining
   pipeline; then write a summary and an HTML report.

Phases 3 and 4 change the stack the way a commit to its stack file would (overrides on top of
`Pulumi.<stack>.yaml`), and are planned and realized through the same program.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points), except `torch`, to build the faulty challenger (`faulty_artifact`:
the champion's exported graph wrapped so that it rejects missing values).
"""
from __future__ import annotations

import io
import json
import random
import shutil
import tarfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from mlops_contracts import capture
from specs import lineage, templates
from specs.config.schema import Variant
from mlops.local import demo_data, router
from mlops.local.alarm_eval import Transition, evaluate_all
from mlops.local.stack import LocalStack, Version

FAULT_NOTE = "faulty build: exported graph raises on missing values (the demo's deliberate fault)"


@dataclass
class Phase:
    """What one phase of traffic showed."""

    title: str
    sent: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    """Caller-visible answers by the variant that produced them (x-Amzn-Invoked-Production-Variant)."""
    errors: Counter[str] = field(default_factory=Counter)
    """Errors callers saw, by error code."""
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    by_id: int = 0
    """Requests that sent only the record id (their features were looked up)."""
    shadow: str | None = None
    shadow_seen: int = 0
    """Copies the shadow variant answered: never returned to callers."""
    shadow_copies: dict[str, int] = field(default_factory=dict)
    """What became of this phase's copies (the router's counts): mirrored, sent, dropped, failed."""
    transitions: list[Transition] = field(default_factory=list)
    rollout: dict[str, Any] = field(default_factory=dict)
    """A blue/green update's outcome (phase 4): EndpointStatus, FailureReason, LastDeploymentConfig, Events."""


INPUTS = ("amount", "n_items", "country", "hour", "account_age_days")
"""The demo model's inputs: what an inline request carries."""
BY_ID_SHARE = 0.3
"""Share of the requests in phases 2 and 3 that send only the record id (the endpoint looks the rest up)."""


def request_rows(data: Path, *, n: int, seed: int, null_share: float | None = None,
                 id_field: str = "transaction_id") -> list[dict[str, Any]]:
    """The first `n` rows of a feature source (a Parquet file, or the first file of a directory) as
    records keyed by feature name (what a caller sends), each with its record id under `id_field`."""
    import pyarrow.parquet as pq

    table = pq.read_table(data if data.is_file() else sorted(data.glob("*.parquet"))[0])
    rows = table.select([id_field, *INPUTS]).slice(0, n).to_pylist()
    rng = random.Random(seed)
    if null_share is not None:
        for row in rows:
            row["account_age_days"] = None if rng.random() < null_share else (row["account_age_days"] or 30.0)
    return rows


def send(stack: LocalStack, endpoint: str, rows: list[dict[str, Any]], phase: Phase, console: Console, *,
         by_id_share: float = 0.0, id_field: str = "transaction_id", seed: int = 0,
         inference_id: Callable[[dict[str, Any]], str] | None = None, callers: int = 1) -> None:
    """Send each row as one request: inline (its features), or, for a `by_id_share` of them, only its
    record id (the endpoint's feature lookup fetches the features). `inference_id` names each request
    (SageMaker's InferenceId, which the capture records and ground truth joins on). `callers` requests
    are in flight at once (latencies then include the wait behind the others)."""
    runtime = stack.runtime()
    choose = random.Random(seed)
    requests = [(row, choose.random() < by_id_share) for row in rows]  # drawn up front: the same whatever `callers`
    lock = threading.Lock()

    def one(row: dict[str, Any], by_id: bool) -> None:
        record = {id_field: row[id_field]} if by_id else {k: v for k, v in row.items() if k != id_field}
        started = time.perf_counter()
        answered, error = None, None
        try:
            named = {"InferenceId": inference_id(row)} if inference_id else {}
            response = runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps({"instances": [record]}),
                                               ContentType="application/json", **named)
            response["Body"].read()
            answered = response["InvokedProductionVariant"]
        except runtime.exceptions.ModelError as exc:
            error = f"ModelError {exc.response.get('OriginalStatusCode', '?')}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            if answered is not None:
                phase.answered[answered] += 1
                phase.latencies_ms.setdefault(answered, []).append(elapsed_ms)
            else:
                phase.errors[error] += 1
            phase.sent += 1
            phase.by_id += by_id
            progress.advance(task)

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{phase.title}: {len(rows)} requests", total=len(rows))
        if callers == 1:
            for row, by_id in requests:
                one(row, by_id)
            return
        with ThreadPoolExecutor(max_workers=callers) as pool:
            for done in [pool.submit(one, row, by_id) for row, by_id in requests]:
                done.result()


def lookup_check(stack: LocalStack, endpoint: str, variant: str, rows: list[dict[str, Any]], *,
                 id_field: str = "transaction_id", unknown_id: str = "t-unknown-000") -> dict[str, Any]:
    """Ask `variant` for each row inline and by record id and compare the predictions; then ask for an
    id the online store does not hold (the container answers 422 naming it)."""
    runtime = stack.runtime()

    def predict(record: dict[str, Any]) -> Any:
        response = runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps({"instances": [record]}),
                                           ContentType="application/json", TargetVariant=variant)
        return json.loads(response["Body"].read())["predictions"][0]

    equal = sum(predict({k: v for k, v in row.items() if k != id_field}) == predict({id_field: row[id_field]}) for row in rows)
    try:
        predict({id_field: unknown_id})
        unknown = {"id": unknown_id, "status": 200, "message": "answered: the lookup did not refuse an unknown id"}
    except runtime.exceptions.ModelError as exc:
        unknown = {"id": unknown_id, "status": exc.response.get("OriginalStatusCode"), "message": _container_error(exc.response["Error"]["Message"])}
    return {"variant": variant, "sample": len(rows), "equal": equal, "unknown": unknown}


def faulty_artifact(source: Path, target: Path) -> Path:
    """A copy of `source` whose model.pt rejects missing values: the kind of build that passes offline
    evaluation on clean data and fails in production."""
    import torch

    class RejectsMissing(torch.nn.Module):
        def __init__(self, inner):  # no annotation: TorchScript cannot resolve the function-local `torch` in one
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if bool(torch.isnan(x).any()):
                raise RuntimeError("input holds missing values and this build has no imputation")
            return self.inner(x)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name.lstrip("./") == "model.pt":
                inner = torch.jit.load(io.BytesIO(data))
                buffer = io.BytesIO()
                torch.jit.save(torch.jit.script(RejectsMissing(inner)), buffer)
                data = buffer.getvalue()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


SHADOW_COUNTS = ("mirrored", "sent", "dropped", "failed")
CAPTURE_CEILING_S = 120.0
"""How long the drift phase waits for the captures of its traffic (only a bug takes that long)."""
ISOLATED_ENDPOINT = "http://127.0.0.1:9"
"""The AWS endpoint the drift job is given locally: the discard port, where any call is refused at
once (its schedule runs network-isolated; the job must need no AWS API)."""


def _shadow_counts(status: dict[str, Any], endpoint: str, variant: str) -> dict[str, int]:
    """A shadow variant's copy counts in a router status (zeros before its first copy)."""
    counts = status["endpoints"].get(endpoint, {}).get("shadow", {}).get(variant, {})
    return {key: counts.get(key, 0) for key in SHADOW_COUNTS}


def wait_captured(root: Path, *, since: datetime, count: int, timeout_s: float = CAPTURE_CEILING_S) -> int:
    """Wait until no capture file under `root` (one endpoint's captures) is still being written and
    the completed ones hold at least `count` requests inferred at or after `since`; returns how many.
    Variants complete (rename) a capture file a few seconds after its last write."""
    deadline = time.monotonic() + timeout_s
    while True:
        partial = [p for p in root.rglob(f"*{capture.PARTIAL_SUFFIX}")] if root.exists() else []
        found = _captured_since(root, since) if not partial else 0
        if not partial and found >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{root}: {found} completed captures since {since.isoformat()} within {timeout_s:.0f} s, "
                               f"expected at least {count}; still being written: {len(partial)} file(s)")
        time.sleep(0.1)


def _captured_since(root: Path, since: datetime) -> int:
    stamp = since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    found = 0
    for path in root.rglob(f"*{capture.FILE_SUFFIX}"):
        for line in path.read_text().splitlines():
            # ISO-8601 UTC times with the same precision compare as text.
            if line.strip() and json.loads(line)[capture.EVENT_METADATA][capture.INFERENCE_TIME] >= stamp:
                found += 1
    return found


def _container_error(message: str) -> str:
    """The container's own `error` text out of the router's ModelError message, which quotes the
    container's JSON body (the whole message when it quotes none)."""
    start, end = message.find("{"), message.rfind("}")
    try:
        return str(json.loads(message[start:end + 1])["error"]) if start >= 0 else message
    except (ValueError, KeyError, TypeError):
        return message


def _variant(version: Version, *, instance_type: str, weight: float | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"model_version": version.version, "model_data_url": version.model_data_url, "instance_type": instance_type}
    if weight is not None:
        spec["weight"] = weight
    return spec


def served(stack: LocalStack, endpoint: str, variant: str) -> int:
    """Successful /invocations the variant's server has answered (its Prometheus counter)."""
    import re
    import urllib.request

    process = next(p for p in stack.env.processes() if p.role == "variant" and p.endpoint == endpoint and p.variant == variant)
    with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(r'^mlops_serving_requests_total\{route="invocations",code="200"\} (\d+)', text, re.M)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class DemoEndpoint:
    """The endpoint the demo drives: the stack's first, with the variants it declares."""

    key: str
    """Its key under `endpoints` in the stack file."""
    name: str
    """Its SageMaker endpoint name."""
    model: str
    instance_type: str
    """The instance type of its first variant; the demo's own variants use it too."""
    production: dict[str, Variant]
    """Its declared production variants, by name; the first is the champion."""
    pinned: list[int]
    """The model versions its variants pin, ascending."""

    @property
    def champion_name(self) -> str:
        """The first production variant's name."""
        return next(iter(self.production))

    @property
    def champion(self) -> Variant:
        """The first production variant, as declared."""
        return self.production[self.champion_name]


def run(stack: LocalStack, console: Console) -> dict[str, Any]:
    """The demo flow on a stack that is up (`LocalStack.up`). Returns the summary it also writes."""
    started = time.perf_counter()
    endpoint_key, endpoint = next(iter(stack.config.endpoints.items()))
    target = DemoEndpoint(
        key=endpoint_key, name=stack.namer.endpoint(endpoint_key), model=endpoint.model,
        instance_type=next(iter(endpoint.all_variants().values())).instance_type,
        production=endpoint.production_variants(),
        pinned=sorted({v.model_version for v in endpoint.all_variants().values()}),
    )
    timings: dict[str, float] = {}

    def timed(label: str, step: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        try:
            return step()
        finally:
            timings[label] = round(time.perf_counter() - began, 1)

    data = timed("1 features and training", lambda: data_and_training(stack, console, target))
    phases = [timed("2 A/B as declared", lambda: ab_as_declared(stack, console, target, data=data))]
    shadow, candidate, champion = timed("3 candidate in shadow", lambda: candidate_in_shadow(stack, console, target, data=data))
    phases.append(shadow)
    timed("4 declared state", lambda: restore(stack, console, target))
    retrain = timed("5 drift and retraining", lambda: drift_and_retrain(
        stack, console, endpoint_name=target.name, source=data.source, champion_version=target.champion.model_version, model=target.model))
    ab = timed("5b A/B readout", lambda: ab_readout(stack, console, target, since=datetime.fromisoformat(retrain["window_start"])))
    registered = next((run["version"] for run in retrain["runs"] if run["version"] is not None), None)
    rollout = timed("6 automatic rollout", lambda: automatic_rollout(stack, console, target, candidate=registered))
    # Last, a faulty canary on top of what the rollout left (its rollback alarm then stays in ALARM for
    # its period, which would roll back any guarded update that came after it).
    serving = {v.version: v for v in stack.versions(target.model)}
    pinned = registered if rollout["steps"] and rollout["steps"][-1]["step"] == "pinned" else champion.version
    phases.append(timed("7 faulty canary", lambda: faulty_challenger(stack, console, target, data=data, candidate=candidate,
                                                                     champion=serving[pinned])))
    summary = _summary(stack, phases, target.name, started)
    summary["retrain"] = retrain
    summary["rollout"] = rollout
    summary["ab"] = ab
    summary["features"] = _features_summary(stack, data, phases, model=target.model)
    summary["timings_s"] = timings
    _print_summary(console, summary)
    report = stack.env.dir / "report.html"
    report.write_text(render_report(summary))
    (stack.env.dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"report: {report}")
    return summary


DEMO_ROWS = 6000
"""Transactions in the demo's feature source (plus a tenth as many corrections)."""


@dataclass
class Features:
    """What phase 1 did with the feature data plane, and the source later phases draw requests from."""

    source: Path
    ingestion: dict[str, Any]
    """The ingestion's summary: rows, written, rejected, rows/s, ..."""
    dataset: Path
    """The point-in-time training set (train/, validation/, manifest.json)."""
    manifest: dict[str, Any]
    point_in_time: dict[str, int]
    """Corrected records, and how many of them the dataset holds at their pre-correction row."""
    lookup: dict[str, Any] = field(default_factory=dict)
    """The by-id check of phase 2 (see `lookup_check`)."""


def data_and_training(stack: LocalStack, console: Console, target: DemoEndpoint) -> Features:
    """Phase 1: ingest a synthetic source with `mlops features ingest`, build a point-in-time training
    set from the group's offline store and label events with `mlops-train dataset`, and train on it
    the versions the variants pin."""
    spec = stack.config.model_registry.models[target.model]
    directory = stack.env.dir / "data"
    data = demo_data.write(directory, rows=DEMO_ROWS, seed=1, label=spec.label, now=datetime.now(timezone.utc))
    console.print(f"[bold]1. features, dataset and training[/bold]: {data.records} transactions over the past days "
                  f"({data.corrected} corrected later), label events a while after each")
    console.print(f"   $ mlops features ingest -s {stack.name} --group {spec.feature_group} --source {data.source}")
    summary = stack.ingest(spec.feature_group, data.source, report=directory / "source.rejects.jsonl")
    ingestion = {
        "group": stack.namer.feature_group(spec.feature_group), "rows": summary.rows, "written": summary.written,
        "rejected": summary.rejected_rows, "batches": summary.batches, "online_records": summary.online_records,
        "offline_files": len(summary.offline_keys), "seconds": round(summary.seconds, 1), "rows_per_second": round(summary.rows_per_second),
    }
    console.print(f"   ingested into {ingestion['group']}: {summary.rows} rows, {summary.written} written, {summary.rejected_rows} rejected "
                  f"({summary.rejects} problems; {summary.refused_batches} of {summary.batches} batches refused), "
                  f"{summary.rows_per_second:,.0f} rows/s; rejects: {summary.report}", markup=False)
    out = stack.env.dir / "datasets" / target.model
    console.print(f"   $ mlops-train dataset --offline-store {stack.offline_store_uri(spec.feature_group)} --label-events {data.labels} --out {out}",
                  markup=False)
    manifest = stack.build_dataset(target.model, label_events=data.labels, out=out)
    counts = manifest["counts"]
    point_in_time = demo_data.point_in_time_rows(out, data.source, corrected=data.corrected, id_field=manifest["record_identifier"])
    console.print(f"   point-in-time training set: {counts['train']} train / {counts['validation']} validation rows, cutoff {manifest['cutoff']}, "
                  f"{manifest['content_hash'][:19]}...; {point_in_time['as_labelled']} of {point_in_time['corrected']} corrected records "
                  "at the row their label saw", markup=False)
    # Train every version the stack's variants pin that the registry does not hold yet; even
    # versions get a wider network, so champion and challenger differ.
    stack.train_pinned(target.model, data=out, report=console.print,
                       hyperparameters_for=lambda number: {"hidden_units": [64, 32]} if number % 2 == 0 else {})
    tracking_url = stack.tracking_environment().get("MLFLOW_TRACKING_URI")
    if tracking_url:
        console.print(f"   MLflow tracking server {stack.tracking_server_name()}: {tracking_url} (experiment {target.model}: "
                      "every training run, these and the retraining pipeline's)", markup=False)
    return Features(source=data.source, ingestion=ingestion, dataset=out, manifest=manifest, point_in_time=point_in_time)


def ab_as_declared(stack: LocalStack, console: Console, target: DemoEndpoint, *, data: Features) -> Phase:
    """Phase 2: the endpoint as the stack declares it (A/B), with traffic, a share of it by record id."""
    stack.deploy()
    production = target.production
    stack.wait_routed(target.name, set(production))
    ab = Phase("2. A/B as declared", weights={n: getattr(v, "weight", 1.0) for n, v in production.items()})
    console.print(f"[bold]{ab.title}[/bold]: {', '.join(f'{n} v{v.model_version}' for n, v in production.items())}")
    send(stack, target.name, request_rows(data.source, n=400, seed=2), ab, console, by_id_share=BY_ID_SHARE, seed=2)
    console.print(f"   {ab.by_id} of {ab.sent} requests sent only the record id; the endpoint looked their features up")
    data.lookup = lookup_check(stack, target.name, target.champion_name, request_rows(data.source, n=20, seed=7))
    check, unknown = data.lookup, data.lookup["unknown"]
    console.print(f"   by id = inline: {check['equal']} of {check['sample']} predictions of {check['variant']} equal; "
                  f"unknown id {unknown['id']}: {unknown['status']} {unknown['message']}", markup=False)
    return ab


def candidate_in_shadow(stack: LocalStack, console: Console, target: DemoEndpoint, *, data: Features) -> tuple[Phase, Version, Version]:
    """Phase 3: a candidate (trained unless an earlier run left one) in shadow next to the champion.
    Returns the phase, the candidate and the champion's registered version."""
    model, champion_name, champion = target.model, target.champion_name, target.champion
    versions = {v.version: v for v in stack.versions(model)}
    later = [v for v in stack.versions(model) if v.version > max(target.pinned)]
    candidate = next((v for v in later if v.description != FAULT_NOTE), None)
    if candidate is None:
        candidate = stack.train(model, seed=len(versions) + 1, data=data.dataset, hyperparameters={"hidden_units": [96, 48]})
        console.print(f"   trained candidate v{candidate.version}")
    shadow_overrides = {"endpoints": {target.key: {"traffic": {
        "mode": "shadow", "variants": None, "shadow_sampling_percent": 100,
        "production": {champion_name: _variant(versions[champion.model_version], instance_type=target.instance_type)},
        "shadow": {"candidate": _variant(candidate, instance_type=target.instance_type)},
    }}}}
    stack.deploy(shadow_overrides)
    stack.wait_routed(target.name, {champion_name}, {"candidate"})
    shadow = Phase("3. candidate in shadow", weights={champion_name: 1.0}, shadow="candidate")
    console.print(f"[bold]{shadow.title}[/bold]: {champion_name} v{champion.model_version} answers, candidate v{candidate.version} gets copies")
    before = _shadow_counts(router.read_status(stack.router_url()), target.name, "candidate")
    send(stack, target.name, request_rows(data.source, n=200, seed=3), shadow, console, by_id_share=BY_ID_SHARE, seed=3)
    # Copies go out in the background: wait until the router has settled every one of them.
    after = router.wait_shadow_settled(stack.router_url(), target.name, "candidate")
    shadow.shadow_copies = {key: after[key] - before[key] for key in SHADOW_COUNTS}
    shadow.shadow_seen = shadow.shadow_copies["sent"]
    console.print("   shadow copies: {mirrored} mirrored, {sent} sent, {dropped} dropped (queue full), {failed} failed".format(**shadow.shadow_copies))
    return shadow, candidate, versions[champion.model_version]


FAULT_ROLLOUT = {"strategy": "canary", "canary_percent": 20, "wait_minutes": 60}
"""Phase 7's deployment policy: 20 % of traffic to the new fleet, then a bake (60 minutes in SageMaker,
scaled locally by MLOPS_LOCAL_TIME_SCALE) that the faulty challenger's 5XX alarm cuts short."""


def faulty_challenger(stack: LocalStack, console: Console, target: DemoEndpoint, *, data: Features, candidate: Version, champion: Version) -> Phase:
    """Phase 7: a faulty build of the candidate as a 50% challenger beside `champion`, deployed through UpdateEndpoint with
    a canary policy while callers send traffic; its 5XX alarm fires during the bake and the endpoint
    rolls back by itself. Callers see errors only on the canary's share of the new fleet."""
    champion_name = target.champion_name
    faulty = next((v for v in stack.versions(target.model) if v.description == FAULT_NOTE), None)
    if faulty is None:
        source = stack.env.artifact_path(target.model, candidate.version)
        built = faulty_artifact(source, stack.env.dir / "build" / "faulty" / "model.tar.gz")
        faulty = stack.register_artifact(target.model, built, based_on=candidate, description=FAULT_NOTE)
    fault_overrides = {"endpoints": {target.key: {"rollout": FAULT_ROLLOUT, "traffic": {
        "mode": "ab", "production": None, "shadow": None, "shadow_sampling_percent": None,
        "variants": {
            champion_name: _variant(champion, instance_type=target.instance_type, weight=50),
            "challenger": _variant(faulty, instance_type=target.instance_type, weight=50),
        },
    }}}}
    fault = Phase("7. faulty canary", weights={champion_name: 50, "challenger": 50})
    console.print(f"[bold]{fault.title}[/bold]: challenger v{faulty.version} ({FAULT_NOTE}), canary {FAULT_ROLLOUT['canary_percent']} %")
    cloudwatch = stack.client("cloudwatch")
    evaluate_all(cloudwatch, prefix=target.name)  # baseline states before the fault's traffic
    failures: list[BaseException] = []
    done = threading.Event()
    rows = request_rows(data.source, n=400, seed=4, null_share=0.3)

    def traffic() -> None:  # callers keep sending until the update has ended (the event, not a timer)
        try:
            while not done.is_set():
                send(stack, target.name, rows[fault.sent % len(rows):][:20], fault, console)
        except BaseException as exc:  # re-raised on the demo's thread below
            failures.append(exc)

    # The deploy stays on this thread (planning needs its event loop); the callers get their own.
    caller = threading.Thread(target=traffic, name="faulty-canary-callers", daemon=True)
    caller.start()
    try:
        stack.deploy(fault_overrides, allow_rollback=True)
    finally:
        done.set()
        caller.join()
    if failures:
        raise failures[0]
    fault.rollout = stack.last_updates.get(target.name, {})
    fault.transitions = evaluate_all(cloudwatch, prefix=target.name)
    _print_rollout(console, fault)
    return fault


def _print_rollout(console: Console, fault: Phase) -> None:
    outcome = fault.rollout
    for event in outcome.get("Events", []):
        console.print(f"   {event['at_s']:7.2f} s  {event['kind']:<12} new fleet share {event['share']:.0%}  {event['detail']}")
    style = "green" if outcome.get("FailureReason") else "red"
    console.print(f"   [{style}]{outcome.get('EndpointStatus', '?')}: {outcome.get('FailureReason') or 'the faulty canary was NOT rolled back'}[/{style}]"
                  f"  callers saw {sum(fault.errors.values())} error(s) in {fault.sent} requests")


def restore(stack: LocalStack, console: Console, target: DemoEndpoint) -> None:
    """Phase 4: the endpoint back as the stack declares it (from phase 3's shadow shape), through a
    guarded blue/green update with the endpoint's own policy (no rollback alarm is in ALARM yet)."""
    stack.deploy()
    stack.wait_routed(target.name, set(target.production))
    console.print(f"[bold]4. declared state[/bold] {target.name} as the stack declares it")


DRIFT_ROWS = 3000
DRIFT_CALLERS = 4
"""Callers scoring the drifted batch at once (a batch of scoring requests, not a latency measurement)."""
"""New transactions after the drift: ingested, scored by id, labelled. The retraining run's training set
is these labelled captures (the endpoint's earlier traffic carries no ground truth)."""
DRILL_PARAMETERS = {"ShuffleLabels": "true"}
"""The second run: the same pipeline on the same data, trained on shuffled labels (a worse candidate)."""


def drift_and_retrain(stack: LocalStack, console: Console, *, endpoint_name: str, source: Path, champion_version: int, model: str) -> dict[str, Any]:
    """Phase 5: a drifted batch of transactions is ingested and scored by id (each request named by its
    record id, SageMaker's InferenceId), the captures reach S3 and ground truth arrives; the monitoring
    job flags the drift and its alarms fire; each alarm event goes to the retraining starter, which
    starts one run and coalesces the rest; the run (Dataset, Train, Evaluate, Condition, Register |
    Fail) trains on the new data and faces the champion. A second run beside it, trained on shuffled
    labels, is refused by its Condition. `source` (phase 1's feature source) is not read here."""
    console.print(f"[bold]5. drift and retraining[/bold]: {DRIFT_ROWS} new transactions, amounts x{demo_data.DRIFT_AMOUNT_FACTOR:g} "
                  f"and {demo_data.DRIFT_COUNTRY_SHARE:.0%} from an unseen country")
    window_start = datetime.now(timezone.utc)
    seconds: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(label: str) -> None:
        now = time.perf_counter()
        seconds[label], clock[0] = round(now - clock[0], 1), now

    traffic = drifted_traffic(stack, console, endpoint_name=endpoint_name, model=model, now=window_start)
    lap("ingest, score and upload")
    flagged = drift_job(stack, console, endpoint_name=endpoint_name, model=model, champion_version=champion_version, since=window_start)
    lap("drift job")
    live = live_quality(stack, console, endpoint_name=endpoint_name, since=window_start)
    lap("quality job")
    transitions = live["transitions"] + evaluate_all(stack.client("cloudwatch"), prefix=endpoint_name)
    decisions, started = deliver_alarms(stack, console, transitions)
    lap("alarms and starter")
    # The drill runs beside the retraining run (the same pipeline, its own execution and files).
    pipeline_arn = f"arn:aws:sagemaker:{stack.region}:{stack.namer.account_id}:pipeline/{stack.namer.pipeline(model)}"
    drill = stack.start_pipeline_execution(pipeline_arn, DRILL_PARAMETERS)
    runs = []
    for rule, alarm, arn in started:
        run = stack.follow_pipeline(arn)
        runs.append({"rule": rule, "alarm": alarm, "parameters": {}, **_run_evidence(stack, model, run)})
        _print_run(console, runs[-1])
    lap("retraining run")
    console.print(f"   drill: the same pipeline with {DRILL_PARAMETERS} (a candidate trained on shuffled labels), run beside it")
    runs.append({"rule": None, "alarm": None, "parameters": DRILL_PARAMETERS, **_run_evidence(stack, model, stack.follow_pipeline(drill))})
    _print_run(console, runs[-1])
    lap("drill run")
    console.print("   seconds: " + ", ".join(f"{k} {v:g}" for k, v in seconds.items()))
    return {"drifted_features": flagged, "alarms": [t.__dict__ for t in transitions], "deliveries": decisions, "runs": runs,
            "window_start": window_start.isoformat(), "live_quality": live["variants"], "seconds": seconds, **traffic}


def live_quality(stack: LocalStack, console: Console, *, endpoint_name: str, since: datetime) -> dict[str, Any]:
    """The endpoint's scheduled model-quality job, run once (mlops.local.quality): the drifted traffic's
    captures joined with its ground truth, live metrics per variant published to CloudWatch, and the
    live-quality alarms evaluated (a variant below its model's gates fires, and its alarm starts
    retraining through the same rule as drift)."""
    from mlops.local.quality import run_quality_job

    job = run_quality_job(stack, endpoint_name, since)
    variants = {name: {"labeled_rows": v["labeled_rows"], "metrics": v["metrics"], "degraded": [d["description"] for d in v["degraded"]]}
                for name, v in job["report"]["variants"].items()}
    for name, v in variants.items():
        figures = ", ".join(f"{k} {x:.3f}" for k, x in v["metrics"].items() if isinstance(x, float))
        console.print(f"   live quality of {name}: {v['labeled_rows']} labelled rows; {figures}", markup=False)
    return {"transitions": job["transitions"], "variants": variants}


def drifted_traffic(stack: LocalStack, console: Console, *, endpoint_name: str, model: str, now: datetime) -> dict[str, Any]:
    """Ingest `DRIFT_ROWS` drifted transactions (demo_data.drifted), score each by record id with the
    record id as InferenceId, then put the captures in S3 and the labels there as ground truth."""
    import pyarrow.parquet as pq

    spec = stack.config.model_registry.models[model]
    id_field = stack.config.feature_store.feature_groups[spec.feature_group].record_identifier
    features, labels = demo_data.drifted(rows=DRIFT_ROWS, seed=6, label=spec.label, now=now)
    directory = stack.env.dir / "data"
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(features, directory / "drifted.parquet")
    ingested = stack.ingest(spec.feature_group, directory / "drifted.parquet", report=directory / "drifted.rejects.jsonl")
    console.print(f"   ingested {ingested.written} of {ingested.rows} drifted rows into {stack.namer.feature_group(spec.feature_group)}")
    phase = Phase("5. drifted traffic")
    rows = [{id_field: record_id} for record_id in features.column(id_field).to_pylist()]
    send(stack, endpoint_name, rows, phase, console, by_id_share=1.0, id_field=id_field, inference_id=lambda row: row[id_field],
         callers=DRIFT_CALLERS)
    wait_captured(stack.env.dir / "captures" / endpoint_name, since=now, count=sum(phase.answered.values()))
    uploaded = stack.upload_captures(endpoint_name)
    truth = stack.put_ground_truth(model, {rid: [int(y)] for rid, y in zip(labels.column("record_id").to_pylist(), labels.column("label").to_pylist())},
                                   at=datetime.now(timezone.utc))
    console.print(f"   {sum(phase.answered.values())} answered by id; {uploaded} capture files to S3; ground truth for {labels.num_rows} requests: {truth}",
                  markup=False)
    return {"traffic": {"sent": phase.sent, "answered": dict(phase.answered), "errors": dict(phase.errors)},
            "ingested": {"rows": ingested.rows, "written": ingested.written}, "ground_truth": truth}


def isolated_job_environment(environ: dict[str, str], *, region: str) -> dict[str, str]:
    """`environ` without its AWS settings, standing in for network isolation: the only AWS endpoint
    refuses connections (`ISOLATED_ENDPOINT`) and the credentials reach nothing, so an AWS call fails at
    once instead of looking for credentials elsewhere (instance metadata lookups are off)."""
    return {**{k: v for k, v in environ.items() if not k.startswith("AWS_")}, "AWS_ENDPOINT_URL": ISOLATED_ENDPOINT,
            "AWS_ACCESS_KEY_ID": "isolated", "AWS_SECRET_ACCESS_KEY": "isolated", "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true"}


def drift_job(stack: LocalStack, console: Console, *, endpoint_name: str, model: str, champion_version: int, since: datetime) -> list[str]:
    """`mlops-monitor drift` over the endpoint's captures since `since` against the champion's baseline,
    run as its network-isolated schedule runs it: Model Monitor's file target, its schedule's name as a
    dimension, and no AWS endpoint it could reach (any AWS call would be refused). Then what SageMaker
    does after the job: its metric records go to the local CloudWatch in Model Monitor's namespace
    (mlops.local.monitor_metrics), where the drift alarms watch. Returns the drifted features."""
    import os
    import subprocess
    import sys

    from mlops.local.monitor_metrics import publish_metric_files

    key = next(k for k in stack.config.endpoints if stack.namer.endpoint(k) == endpoint_name)
    out = stack.env.dir / "monitoring" / since.strftime("%Y%m%dT%H%M%S")
    job = subprocess.run(
        [str(Path(sys.executable).parent / "mlops-monitor"), "drift", "--captures", str(stack.env.dir / "captures"),
         "--baseline", str(stack.env.artifact_path(model, champion_version)), "--out", str(out), "--endpoint", endpoint_name,
         "--monitoring-schedule", stack.namer.monitoring_schedule(key), "--start", since.isoformat(),
         "--publish", "file", "--metrics-dir", str(out / "metrics")],
        env=isolated_job_environment(dict(os.environ), region=stack.region), capture_output=True, text=True,
    )
    if job.returncode != 0:
        raise RuntimeError(f"the monitoring job failed (exit {job.returncode}):\n{job.stderr[-2000:]}")
    published = publish_metric_files(stack.client("cloudwatch"), out / "metrics")
    report = json.loads((out / "drift_report.json").read_text())
    flagged = sorted(name for name, f in report.get("features", {}).items() if f.get("drifted"))
    console.print(f"   drift job (no AWS endpoint, as isolated): {report.get('rows', '?')} rows, drifted features: {', '.join(flagged) or 'none'}; "
                  f"report {out / 'drift_report.html'}; {published} metric records published as SageMaker would")
    return flagged


def deliver_alarms(stack: LocalStack, console: Console, transitions: list[Transition]) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """Deliver each alarm's ALARM event to the realized rules and invoke the functions they target (the
    retraining starters; their log lines go to logs/lambda-<function>.log). Every event is delivered
    before any run is followed: while the first run is Executing the starter coalesces the others into it. Returns (each delivery's decision,
    (rule, alarm, execution ARN) of each run started)."""
    from mlops.local.events import alarm_state_change, deliveries, invoke

    events = stack.client("events")
    decisions, started = [], []
    for t in transitions:
        style = "red" if t.new == "ALARM" else "green"
        console.print(f"   [{style}]{t.alarm}: {t.old} -> {t.new}[/{style}]  {t.reason}")
        if t.new != "ALARM":
            continue
        event = alarm_state_change(alarm_name=t.alarm, old=t.old, new=t.new, reason=t.reason, region=stack.region, account=stack.namer.account_id)
        for delivery in deliveries(events, event):
            if delivery.function is None:
                continue
            log = stack.env.logs / f"lambda-{delivery.function}.log"  # its CloudWatch Logs group in AWS
            with log.open("a") as out:
                decision = invoke(delivery.function, event, client=stack.client, log=lambda line: print(line, file=out))
            run_arn = decision.get("execution") or decision.get("coalesced_into")
            console.print(f"   rule {delivery.rule} -> {delivery.function}: {decision['decision']} {run_arn}")
            decisions.append({"alarm": t.alarm, "rule": delivery.rule, "function": delivery.function,
                              "decision": decision["decision"], "execution": run_arn})
            if decision["decision"] == "started":
                started.append((delivery.rule, t.alarm, decision["execution"]))
    return decisions, started


def ab_readout(stack: LocalStack, console: Console, target: DemoEndpoint, *, since: datetime) -> dict[str, Any]:
    """Phase 5b: the A/B test the endpoint declares, read out (`mlops experiment ab`) from the drifted
    traffic's captures joined with its ground truth: each variant's metrics with intervals, the test of
    the primary metric, the labelled traffic still needed, and the recommendation."""
    from mlops.experiment import readouts, report

    readout, _ = readouts.ab_readout(stack.config, endpoint=target.key, since=since, client=stack.client)
    paths = report.write(readout, stack.env.dir / "experiments" / target.key)
    console.print(f"[bold]5b. A/B readout[/bold] (mlops experiment ab -s {stack.name} --endpoint {target.key}) on the drifted, labelled traffic")
    for v in readout.variants:
        figures = ", ".join(f"{name} {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" for name, m in v.metrics.items() if m.get("value") is not None)
        console.print(f"   {v.name}: {v.labelled} labelled; {figures}", markup=False)
    console.print(f"   recommendation: {readout.recommendation}: {readout.reason}; report {paths[1]}", markup=False)
    from mlops_contracts import experiment as contract

    return {**contract.to_dict(readout), "report": str(paths[1])}


ROLLOUT_REQUESTS = 400
"""Requests sent while the candidate shadows the champion (the demo team's experiment.shadow.min_requests is below it)."""


def automatic_rollout(stack: LocalStack, console: Console, target: DemoEndpoint, *, candidate: int | None) -> dict[str, Any]:
    """Phase 6: the version the retraining run registered rolls out by itself (`mlops rollout`): into
    shadow beside the champion, scored on drifted traffic named by InferenceId, the shadow analysis,
    then the blue/green update that pins it in the champion's place. Each step edits a copy of the
    stack files (the demo leaves the checkout's stacks/ as they are) and is recorded in its audit log."""
    import os

    from specs.config import stack_files
    from mlops.rollout import backends, flow

    console.print(f"[bold]6. automatic rollout[/bold] of v{candidate} on {target.name} (mlops rollout -s {stack.name} --endpoint {target.key})")
    stacks = stack.env.dir / "stacks"
    if stacks.exists():
        shutil.rmtree(stacks)
    shutil.copytree(stack_files.stacks_dir(), stacks, ignore=shutil.ignore_patterns("audit", ".locks"))
    previous = os.environ.get(stack_files.STACKS_ENV)
    os.environ[stack_files.STACKS_ENV] = str(stacks)
    try:
        config = stack_files.load(stack.name)
        backend = backends.LocalBackend(stack, backends.shadow_analyzer(config))
        request = flow.RolloutRequest(stack=stack.name, endpoint=target.key)
        steps = [_step(console, flow.advance(request, backend, on_output=lambda line: console.print(f"   {line}", markup=False)))]
        if steps[-1]["step"] == "shadow":
            spec = config.model_registry.models[target.model]
            ids = demo_data.drifted(rows=ROLLOUT_REQUESTS, seed=7, label=spec.label, now=datetime.now(timezone.utc))[0]
            id_field = config.endpoints[target.key].feature_lookup.record_identifier_field or "transaction_id"
            rows = [{id_field: rid} for rid in ids.column("transaction_id").to_pylist()]
            stack.ingest(spec.feature_group, _parquet(stack, ids, "rollout.parquet"),
                         report=stack.env.dir / "data" / "rollout.rejects.jsonl")
            phase = Phase("6. candidate in shadow (rollout)", weights={target.champion_name: 1.0}, shadow="candidate")
            send(stack, target.name, rows, phase, console, by_id_share=1.0, id_field=id_field, inference_id=lambda row: f"rollout-{row[id_field]}")
            router.wait_shadow_settled(stack.router_url(), target.name, "candidate")
            router.wait_published(stack.router_url())
            since = datetime.fromisoformat(flow.state.in_flight(_audit(config.team), stack=stack.name, endpoint=target.key).since.replace("Z", "+00:00"))
            for variant in (target.champion_name, "candidate"):  # the analysis reads completed capture files
                wait_captured(stack.env.dir / "captures" / target.name / variant, since=since, count=sum(phase.answered.values()))
            steps.append(_step(console, flow.advance(request, backend, on_output=lambda line: console.print(f"   {line}", markup=False))))
    finally:
        if previous is None:
            os.environ.pop(stack_files.STACKS_ENV, None)
        else:
            os.environ[stack_files.STACKS_ENV] = previous
    return {"steps": steps, "stack_files": str(stacks), "audit": str(stacks / "audit" / f"{config.team}.jsonl")}


def _audit(team: str) -> list[dict[str, Any]]:
    from mlops.promote.audit import read_audit

    return read_audit(team)


def _parquet(stack: LocalStack, table: Any, name: str) -> Path:
    import pyarrow.parquet as pq

    path = stack.env.dir / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _step(console: Console, outcome: Any) -> dict[str, Any]:
    style = {"pinned": "green", "shadow": "cyan", "refused": "red", "rolled_back": "red"}.get(outcome.step, "yellow")
    console.print(f"   [{style}]{outcome.step}[/{style}]: {escape(outcome.reason)}")
    if outcome.diff:
        console.print("   " + outcome.diff.replace("\n", "\n   ").rstrip(), markup=False)
    return outcome.to_json()


def _run_evidence(stack: LocalStack, model: str, run: Any) -> dict[str, Any]:
    """What the report shows of one pipeline run: its steps, outcome and, where its Evaluate step ran,
    the evaluation (slice and data fingerprint, candidate and champion figures, decision)."""
    evaluation = stack.run_evaluation(model, run.arn)
    evidence: dict[str, Any] = {
        "execution": run.arn, "status": run.status, "steps": [f"{name} {status}" for name, status in run.steps],
        "failure_reason": run.failure_reason,
        "version": run.version.version if run.version else None, "approval": run.version.approval if run.version else None,
        "evaluation": None,
        # The registered candidate's training run, found on the tracking server by the run id the version carries.
        "mlflow": stack.mlflow_run(model, run.version.version) if run.version else None,
    }
    if evaluation is not None:
        primary = evaluation.primary_metric
        evidence["evaluation"] = {
            "uri": stack.run_evaluation_uri(model, run.arn), "metric": primary,
            "slice": {"rows": evaluation.slice.rows, "from": evaluation.slice.start, "to": evaluation.slice.end},
            "dataset_hash": evaluation.slice.dataset_hash, "dataset_manifest": evaluation.slice.dataset_manifest,
            "candidate": _estimate(evaluation.candidate.metrics.get(primary)),
            "champions": [{"name": c.name, "uri": c.uri, primary: _estimate(c.metrics.get(primary)),
                           "difference": _estimate(c.difference.get(primary))} for c in evaluation.champions],
            "passed": evaluation.decision.passed, "reason": evaluation.decision.reason,
        }
    return evidence


def _estimate(value: Any) -> dict[str, float] | None:
    return None if value is None else {"value": round(value.value, 4), "ci_low": round(value.ci_low, 4), "ci_high": round(value.ci_high, 4)}


def _print_run(console: Console, run: dict[str, Any]) -> None:
    evaluation = run["evaluation"]
    console.print(f"   run {run['execution'].rsplit('/', 1)[1]} {run['parameters'] or ''}: {', '.join(run['steps'])}", markup=False)
    if evaluation:
        metric, candidate = evaluation["metric"], evaluation["candidate"]
        champions = "; ".join(f"champion {c['name']} {metric} {c[metric]['value']:.3f} (difference {c['difference']['value']:+.3f} "
                              f"[{c['difference']['ci_low']:+.3f}, {c['difference']['ci_high']:+.3f}])" for c in evaluation["champions"])
        console.print(f"     on {evaluation['slice']['rows']} most recent rows of dataset {evaluation['dataset_hash'][:19]}...: "
                      f"candidate {metric} {candidate['value']:.3f} [{candidate['ci_low']:.3f}, {candidate['ci_high']:.3f}]; {champions or 'no champion'}",
                      markup=False)
    if run["version"] is not None:
        console.print(f"     [green]registered v{run['version']} ({run['approval']})[/green]")
        if run.get("mlflow"):
            console.print(f"     its MLflow run {run['mlflow']['run_name']} ({run['mlflow']['status']}): {run['mlflow']['url']}", markup=False)
    else:
        console.print(f"     [red]refused[/red]: {escape(str(run['failure_reason']))}")


def _summary(stack: LocalStack, phases: list[Phase], endpoint: str, started: float) -> dict[str, Any]:
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=endpoint)["MetricAlarms"]
    return {
        "stack": stack.name,
        "endpoint": endpoint,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "versions": _versions(stack, next(iter(stack.config.endpoints.values())).model),
        "mlflow_url": stack.tracking_environment().get("MLFLOW_TRACKING_URI"),
        "phases": [
            {
                "title": p.title, "sent": p.sent, "answered": dict(p.answered), "errors": dict(p.errors),
                "weights": p.weights, "shadow": p.shadow, "shadow_seen": p.shadow_seen, "shadow_copies": p.shadow_copies,
                "expected_share": {k: w / sum(p.weights.values()) for k, w in p.weights.items()},
                "observed_share": {k: c / max(1, p.sent) for k, c in p.answered.items()},
                "p50_ms": {k: _percentile(v, 50) for k, v in p.latencies_ms.items()},
                "p99_ms": {k: _percentile(v, 99) for k, v in p.latencies_ms.items()},
                "transitions": [t.__dict__ for t in p.transitions],
                "rollout": p.rollout,
            }
            for p in phases
        ],
        "alarms": [{"name": a["AlarmName"], "state": a["StateValue"], "reason": a.get("StateReason", "")} for a in alarms],
    }


def _versions(stack: LocalStack, model: str) -> list[dict[str, Any]]:
    """Every registered version with its data fingerprint (the content hash of the training set its
    artifact records), its evaluation against the champion (where a pipeline run registered it) and the
    decision that registered it."""
    rows = []
    for v in stack.versions(model):
        metadata = stack.version_metadata(model, v.version)
        dataset = metadata.get("dataset") or {}
        properties = stack.version_properties(model, v.version)
        uri = properties.get(lineage.EVALUATION)
        found = stack.read_evaluation(uri) if uri else None
        rows.append({
            "version": v.version, "approval": v.approval, "url": v.model_data_url, "auc": v.metrics.get("metric_auc"),
            "data": dataset.get("content_hash"), "pipeline_execution": properties.get(lineage.PIPELINE_EXECUTION),
            "mlflow_run": properties.get(lineage.MLFLOW_RUN) or metadata.get("mlflow_run_id"),
            "evaluation": None if found is None else {
                "uri": uri, "metric": found.primary_metric, "rows": found.slice.rows,
                "candidate": _estimate(found.candidate.metrics.get(found.primary_metric)),
                "champions": {c.name: _estimate(c.metrics.get(found.primary_metric)) for c in found.champions},
            },
            "decision": found.decision.reason if found else f"no evaluation: registered by the training container ({v.description})",
        })
    return rows


def _features_summary(stack: LocalStack, data: Features, phases: list[Phase], *, model: str) -> dict[str, Any]:
    """The report's Features section: the ingestion, each version's training set, the by-id traffic."""
    datasets = []
    for version in stack.versions(model):
        manifest = stack.version_metadata(model, version.version).get("dataset")
        datasets.append({"version": version.version, "note": version.description, "dataset": None if manifest is None else {
            "source": f"{manifest['feature_group']} ({len(manifest['sources'])} offline-store files, {manifest['engine']})",
            "label_source": manifest["label_source"], "cutoff": manifest["cutoff"],
            "train": manifest["counts"]["train"], "validation": manifest["counts"]["validation"],
            "content_hash": manifest["content_hash"],
        }})
    by_id, sent = sum(p.by_id for p in phases), sum(p.sent for p in phases)
    return {
        "ingestion": data.ingestion,
        "point_in_time": data.point_in_time,
        "datasets": datasets,
        "by_id": {"requests": by_id, "of": sent, "share": by_id / max(1, sent),
                  "phases": {p.title: {"by_id": p.by_id, "sent": p.sent} for p in phases if p.by_id}},
        "lookup_check": data.lookup,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))], 2) if ordered else 0.0


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['stack']}: {summary['endpoint']}, {summary['seconds']} s")
    for column in ("phase", "variant", "weight share", "observed share", "p50 ms", "p99 ms", "caller errors"):
        table.add_column(column, justify="left" if column in ("phase", "variant") else "right")
    for phase in summary["phases"]:
        variants = sorted(set(phase["expected_share"]) | set(phase["answered"]))
        for i, name in enumerate(variants):
            table.add_row(
                phase["title"] if i == 0 else "", name,
                f"{phase['expected_share'].get(name, 0):.0%}", f"{phase['observed_share'].get(name, 0):.1%}",
                f"{phase['p50_ms'].get(name, 0):.1f}", f"{phase['p99_ms'].get(name, 0):.1f}",
                ", ".join(f"{k}: {v}" for k, v in phase["errors"].items()) if i == 0 else "",
            )
        if phase["shadow"]:
            table.add_row("", f"{phase['shadow']} (shadow)", "copies", f"{phase['shadow_seen']} copies", "-", "-", "never returned to callers")
    console.print(table)
    firing = [a for a in summary["alarms"] if a["state"] == "ALARM"]
    console.print(f"alarms in ALARM: {', '.join(a['name'] for a in firing) or 'none'}")
    if summary.get("timings_s"):
        console.print("seconds per phase: " + ", ".join(f"{label} {s:g}" for label, s in summary["timings_s"].items()))


def render_report(summary: dict[str, Any]) -> str:
    """The HTML report, with SVG bar charts (no plotting library needed)."""
    charts = []
    for phase in summary["phases"]:
        bars = []
        names = sorted(set(phase["expected_share"]) | set(phase["answered"]))
        for i, name in enumerate(names):
            bars.append({"label": name, "expected": phase["expected_share"].get(name, 0), "observed": phase["observed_share"].get(name, 0), "y": 20 + i * 34})
        charts.append({"title": phase["title"], "bars": bars, "height": 30 + 34 * len(bars)})
    return templates.render("local_report.html.j2", summary=summary, charts=charts)
