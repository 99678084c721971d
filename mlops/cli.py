"""`mlops`: the operator CLI. Every command works offline unless it says otherwise.

Exit codes, the same for every command (a CI gate branches on them):

- 0  success;
- 1  refused by a policy or a gate: a mandatory policy violation (`plan`, `new-team`) or a failing
     promotion gate (`promote`, `rollback`);
- 2  configuration error: a stack file, the environment's AWS or Kubernetes access, or the state a
     command needs (a registry group, the audit log) does not allow the command;
- 3  not enough data to decide: `experiment shadow` joined fewer mirrored requests than
     `experiment.shadow.min_requests` (verdict `insufficient`; a failed shadow analysis exits 1);
- 64 usage error (EX_USAGE): an unknown option, a missing or disallowed argument;
- 70 internal error (EX_SOFTWARE): a bug; one line on stderr names the log file holding the traceback
     (`.mlops/logs/` under the project, or $MLOPS_LOG_DIR).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
import typer.core
import yaml
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from specs.config import stack_files

try:  # typer >= 0.20 vendors click: its usage errors are typer's own classes, not click's
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover (older typer on real click)
    from click.exceptions import ClickException, UsageError

EXIT_OK = 0
EXIT_REFUSED = 1
"""A mandatory policy violation, or a promotion or rollback gate that refused."""
EXIT_CONFIG = 2
EXIT_INSUFFICIENT = 3
"""Not enough data to decide (a shadow analysis with fewer joined requests than its min_requests)."""
EXIT_USAGE = 64
"""sysexits.h EX_USAGE."""
EXIT_INTERNAL = 70
"""sysexits.h EX_SOFTWARE."""
LOG_DIR_ENV = "MLOPS_LOG_DIR"
"""Where internal-error tracebacks go; default `.mlops/logs/` under the project root."""

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 refused by a policy or a gate (mandatory policy violation, failing promotion gate); "
    "2 configuration error; 64 usage error; 70 internal error (the traceback is written to a log file under "
    f".mlops/logs/ or ${LOG_DIR_ENV}, and one line on stderr names it). `experiment shadow` also exits 3 when it has "
    "too few joined requests to decide."
)


def log_dir() -> Path:
    """Where an internal error's traceback is written: $MLOPS_LOG_DIR, else `.mlops/logs/` in the project."""
    return Path(os.environ.get(LOG_DIR_ENV) or stack_files.ROOT / ".mlops" / "logs")


def _write_crash_log(exc: BaseException, args: Sequence[str]) -> Path:
    """Write `exc`'s traceback to a new file in log_dir() (the system temp dir if that is not writable)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    text = (
        f"mlops {' '.join(args)}\n"
        f"at {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}, pid {os.getpid()}, python {sys.version.split()[0]}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    for directory in (log_dir(), Path(tempfile.gettempdir()) / "mlops-logs"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"mlops-error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    raise OSError("no writable log directory")


def _internal_error(exc: Exception, args: Sequence[str]) -> NoReturn:
    """Exit 70 with one line naming the log file that holds the traceback."""
    summary = (str(exc).strip().splitlines() or [""])[0][:300]
    what = f"{type(exc).__name__}: {summary}" if summary else type(exc).__name__
    try:
        path = _write_crash_log(exc, args)
    except OSError:
        # Nowhere to write it: the traceback goes to stderr rather than being lost.
        traceback.print_exception(exc, file=sys.stderr)
        print(f"mlops: internal error ({what}); the traceback is above (no writable log directory); please report it", file=sys.stderr)
    else:
        print(f"mlops: internal error ({what}); traceback in {path}; please report it with that file", file=sys.stderr)
    sys.exit(EXIT_INTERNAL)


def _show_click_error(exc: ClickException) -> None:
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except ImportError:  # typer without rich
        exc.show()


class MlopsGroup(typer.core.TyperGroup):
    """The root command: maps every way a command can end to the documented exit codes.

    click exits 2 on a usage error, which this project reserves for configuration errors, and an
    unexpected exception would print a traceback and exit 1, the code of a policy refusal.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except UsageError as exc:
            _show_click_error(exc)
            sys.exit(EXIT_USAGE)
        except ClickException as exc:
            _show_click_error(exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 (the one place every unexpected error ends up)
            _internal_error(exc, argv)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(
    cls=MlopsGroup, no_args_is_help=True, add_completion=False,
    help="MLOps stacks as code: plan, run locally, promote.", epilog=EXIT_CODES_HELP,
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect stack configuration.")
app.add_typer(config_app, name="config")
local_app = typer.Typer(no_args_is_help=True, help="Run a stack on this machine: embedded AWS, training, serving, routing.")
app.add_typer(local_app, name="local")
# Piped output (CI logs, files) gets a wide console so resource types are not cut.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line per problem, never wrapped

# Properties worth a glance in the tree, by resource type (the JSON plan has them all).
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:kms/key:Key": ("enableKeyRotation",),
    "aws:kms/alias:Alias": ("name",),
    "aws:ecr/repository:Repository": ("name", "imageTagMutability"),
    "aws:iam/role:Role": ("name",),
    "aws:sagemaker/featureGroup:FeatureGroup": ("featureGroupName",),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName",),
    "aws:sagemaker/model:Model": ("name",),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": ("name",),
    "aws:sagemaker/endpoint:Endpoint": ("name", "endpointConfigName"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", "threshold"),
    "aws:cloudwatch/eventRule:EventRule": ("name",),
    "aws:sns/topic:Topic": ("name",),
    "aws:sns/topicSubscription:TopicSubscription": ("protocol",),
    "aws:appautoscaling/target:Target": ("minCapacity", "maxCapacity"),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
}


@app.callback()
def _global(
    stacks_dir: Annotated[Optional[Path], typer.Option("--stacks-dir", help="Where the Pulumi.<team>-<env>.yaml files and teams/ live.", envvar=stack_files.STACKS_ENV)] = None,
) -> None:
    if stacks_dir is not None:
        # The Pulumi program reads the same variable, so a plan sees the same files.
        os.environ[stack_files.STACKS_ENV] = str(stacks_dir.resolve())


def _fail(exc: stack_files.ConfigError) -> NoReturn:
    err.print(str(exc), markup=False)
    raise typer.Exit(EXIT_CONFIG)


def _usage(message: str) -> NoReturn:
    """A usage mistake the parser could not catch (a disallowed value, exclusive options): exit 64."""
    err.print(message, markup=False)
    raise typer.Exit(EXIT_USAGE)


def _stacks(stack: Optional[str], all_: bool) -> list[str]:
    if all_ == bool(stack):
        _usage("give exactly one of --stack NAME or --all")
    return stack_files.list_stacks() if all_ else [stack]  # type: ignore[list-item]


@app.command()
def plan(
    stack: Annotated[Optional[str], typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Plan every stack in stacks/.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the machine-readable plan here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Counts only, no resource tree.")] = False,
) -> None:
    """Run the Pulumi program offline under Pulumi's mock runtime and show what `pulumi up` would build.

    Exits 2 on configuration errors, 1 on mandatory policy violations, 0 otherwise (64 on a usage error).
    """
    from mlops import plan as planner
    from specs import cost, policies

    prices = cost.load_prices(stack_files.stacks_dir() / "prices.json")
    plans, failed, estimates = [], [], {}
    for name in _stacks(stack, all_):
        try:
            result = planner.plan_stack(name)
        except stack_files.ConfigError as exc:
            err.print(str(exc), markup=False)
            failed.append(name)
            continue
        result.findings = policies.evaluate(result.resources, environment=result.config.environment)
        plans.append(result)
        if not quiet:
            out.print(_tree(result))
        out.print(_counts(result))
        for finding in result.findings:
            style = "red" if finding.mandatory else "yellow"
            out.print(f"[{style}]{finding.level}[/{style}] {finding.policy}: {finding.resource}: {finding.message}")
        estimates[name] = cost.estimate(name, result.config.aws.region, result.resources, prices)
        for line in cost.format_estimate(estimates[name]):
            out.print(line, markup=False)
        out.print()
    if json_path is not None:
        doc = {"plans": [p.to_json() for p in plans], "failed": failed, "cost": [e.to_json() for e in estimates.values()]}
        json_path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str))
        out.print(f"plan written to {json_path}")
    violations = sum(1 for p in plans for f in p.findings if f.mandatory)
    out.print(f"{len(plans)} stack(s) planned, {len(failed)} with configuration errors, {violations} mandatory policy violation(s)")
    if failed:
        raise typer.Exit(EXIT_CONFIG)
    if violations:
        raise typer.Exit(EXIT_REFUSED)


def _tree(result) -> Tree:
    tree = Tree(f"[bold]{result.stack}[/bold] ({len(result.resources)} resources, planned in {result.seconds:.2f} s)")
    nodes = {}
    for resource in result.resources:
        props = [f"{k}={resource.inputs[k]}" for k in KEY_PROPERTIES.get(resource.type, ()) if k in resource.inputs]
        label = f"[cyan]{resource.type}[/cyan] {resource.name}" + (f"  [dim]{', '.join(props)}[/dim]" if props else "")
        parent = nodes.get(resource.parent, tree)
        nodes[resource.urn] = parent.add(label)
    return tree


def _counts(result) -> Table:
    table = Table(title=f"{result.stack}: resources by type", show_edge=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(result.by_type().items()):
        table.add_row(type_, str(count))
    table.add_row("[bold]total[/bold]", f"[bold]{len(result.resources)}[/bold]")
    return table


@config_app.command("show")
def config_show(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    validated: Annotated[bool, typer.Option("--validated/--merged", help="Show the validated model with every default filled in, or the merged YAML as written.")] = False,
) -> None:
    """Print a stack's configuration: the team's base definition merged with the stack's overrides."""
    try:
        source = stack_files.load_source(stack)
        config = stack_files.validate(source)
    except stack_files.ConfigError as exc:
        _fail(exc)
    doc = config.model_dump(mode="json") if validated else source.merged
    out.print(f"# {stack}: {source.base_file} + overrides from {source.stack_file}")
    out.print(yaml.safe_dump(doc, sort_keys=False), markup=False)


@config_app.command("validate")
def config_validate(
    stack: Annotated[Optional[str], typer.Option("--stack", "-s")] = None,
    all_: Annotated[bool, typer.Option("--all")] = False,
) -> None:
    """Validate stack configuration without planning. Exits 2 if any stack is invalid."""
    bad = 0
    for name in _stacks(stack, all_):
        try:
            stack_files.load(name)
            out.print(f"{name}: valid")
        except stack_files.ConfigError as exc:
            err.print(str(exc), markup=False)
            bad += 1
    if bad:
        raise typer.Exit(EXIT_CONFIG)


@app.command("stacks")
def list_stacks() -> None:
    """List the stacks in stacks/."""
    for name in stack_files.list_stacks():
        out.print(name)


@local_app.command("up")
def local_up(
    stack: Annotated[str, typer.Option("--stack", "-s", help="A local stack (its aws:allowedAccountIds names 123456789012).")] = "demo-local",
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Run the lifecycle demo after bringing the stack up.")] = True,
) -> None:
    """Bring a stack up on this machine and (by default) run the demo: train, register, approve, A/B,
    shadow, a faulty challenger tripping its alarm, a summary and an HTML report.

    Everything keeps running afterwards (the endpoint answers boto3's sagemaker-runtime client at the
    router's URL); `mlops local down` stops it. State persists in .mlops/local/<stack>/. On a cold
    machine the versions the stack pins are trained first. If anything fails, every process this run
    started is stopped. Exits 2 when the stack cannot run locally (its pins say why).
    """
    from mlops.local.stack import LocalStack, LocalStackError

    try:
        local = LocalStack(stack)
        local.check_pins()  # refuse before starting anything
    except stack_files.ConfigError as exc:
        _fail(exc)
    except ValueError as exc:  # LocalStackError included: not a local stack, pins it cannot produce
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    try:
        try:
            _local_up(local, demo=demo)
        except BaseException:  # a failure, Ctrl-C included, leaves nothing running
            stopped = local.env.down()
            if stopped:
                err.print(f"mlops local up failed; stopped the {len(stopped)} process(es) it started: "
                          + ", ".join(f"{p.role} (pid {p.pid}, port {p.port})" for p in stopped), markup=False)
            raise
    except stack_files.ConfigError as exc:
        _fail(exc)
    except LocalStackError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    running = ", ".join(f"{p.role} {p.variant}:{p.port}" if p.variant else f"{p.role}:{p.port}" for p in local.env.processes())
    out.print(f"running: {running}")
    tracking_url = local.tracking_environment().get("MLFLOW_TRACKING_URI")
    if tracking_url:
        out.print(f"MLflow: {tracking_url} (tracking server {local.tracking_server_name()}; every training run of the stack)")
    out.print(f"try: aws sagemaker-runtime invoke-endpoint --endpoint-url {local.router_url()} ...   stop: mlops local down -s {stack}")


def _local_up(local, *, demo: bool) -> None:
    """Start the emulator and router, then either the demo or: train the missing pinned versions and deploy."""
    from mlops.local import demo as local_demo

    out.print(f"[bold]{local.name}[/bold]: starting the embedded AWS and realizing the plan")
    realized = local.up()
    out.print(f"   {len(realized.created)} API calls made; router at {local.router_url()}")
    for name, kind, why in realized.skipped:
        out.print(f"   [yellow]not realized locally[/yellow] {name} ({kind}): {why}")
    if demo:
        local_demo.run(local, out)
        return
    for model in local.pinned():
        local.train_pinned(model, data=local.offline_store(model), report=lambda line: out.print(line, markup=False))
    local.deploy()


@local_app.command("tune")
def local_tune(
    model: Annotated[str, typer.Option("--model", "-m", help="A model of the stack.")],
    stack: Annotated[str, typer.Option("--stack", "-s")] = "demo-local",
    trials: Annotated[int, typer.Option("--trials", help="Trials in all (one at a time).")] = 4,
    rows: Annotated[int, typer.Option("--rows", help="Rows of the synthetic offline store the trials train on.")] = 2000,
) -> None:
    """Tune a model locally: Optuna over its `tuning` search space (or learning rate and epochs), each trial
    a real `mlops-train` run logged to the stack's MLflow server, which keeps running (`mlops local down`
    stops it). Prints every trial and the best one."""
    from mlops.local.stack import LocalStack
    from mlops.local.tuning import tune_stack_model

    try:
        result, url = tune_stack_model(LocalStack(stack), model, trials=trials, rows=rows,
                                       report=lambda line: out.print(line, markup=False))
    except stack_files.ConfigError as exc:
        _fail(exc)
    except (ValueError, RuntimeError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    best = result.best
    out.print(f"best: {best.name} objective={best.objective} ({result.direction}); model {best.archive}", markup=False)
    out.print(f"runs: {url}", markup=False)


@local_app.command("down")
def local_down(stack: Annotated[str, typer.Option("--stack", "-s")] = "demo-local") -> None:
    """Stop every process `mlops local up` started for the stack. Registry, artifacts and captures stay."""
    from mlops.local.environment import LocalEnvironment

    stopped = LocalEnvironment(stack).down()
    out.print(f"stopped {len(stopped)} process(es)" + (": " + ", ".join(f"{p.role} {p.pid}" for p in stopped) if stopped else ""))


@local_app.command("status")
def local_status(stack: Annotated[str, typer.Option("--stack", "-s")] = "demo-local") -> None:
    """Show what runs for the stack locally, and its registered model versions."""
    from mlops.local.environment import LocalEnvironment, _alive

    env = LocalEnvironment(stack)
    table = Table(title=f"{stack}: local processes")
    for column in ("role", "variant", "pid", "port", "alive", "log"):
        table.add_column(column)
    for p in env.processes():
        table.add_row(p.role, p.variant, str(p.pid), str(p.port), "yes" if _alive(p.pid) else "no", p.log)
    out.print(table)
    for entry in env.journal():
        out.print(f"{entry['group']} v{entry['version']}: {entry['approval']}  {entry['model_data_url']}")


# --------------------------------------------------------------------------------------------
# Lineage


def _stack_clients(config) -> Any:
    """boto3 clients of the stack's AWS: the local environment's endpoint for a local stack (it must be
    up), else the environment's access (MLOPS_AWS_PROFILE_<ENV> / MLOPS_AWS_ROLE_ARN_<ENV> / ambient)."""
    from mlops.rollout.backends import stack_access

    return stack_access(config)


def _lineage_table(doc: dict[str, Any]) -> Table:
    from mlops.lineage import NOT_RECORDED

    table = Table(title=f"{doc['stack']} {doc['endpoint']}/{doc['variant']['name']}: lineage")
    table.add_column("link")
    table.add_column("value", overflow="fold")

    def row(link: str, value: Any) -> None:
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        table.add_row(link, f"[yellow]{shown}[/yellow]" if value == NOT_RECORDED else shown.replace("[", "\\["))

    v, p = doc["variant"], doc["model_package"]
    row("variant", f"{v['model']} version {v['model_version']} at {v['model_data_url']}")
    row("model package", f"{p['group']} v{p['version']} {p['approval']}, created {p['created']} (matched by {p['matched_by']}) {p['arn']}")
    row("registered by", doc["registered_by"])
    for link in ("pipeline_execution", "training_job", "mlflow_run", "image", "code_version", "data_fingerprint"):
        row(link.replace("_", " "), doc[link])
    ev = doc["evaluation"]
    if isinstance(ev, dict) and "decision" in ev:
        d = ev["decision"]
        row("evaluation", f"{'passed' if d['passed'] else 'failed ' + ', '.join(d['failed_gates'])}: {d['reason']} ({ev['uri']})")
        row("  candidate", ev["candidate"])
        for champion in ev["champions"]:
            diff = {n: f"{x['value']:+.4f} [{x['ci_low']:+.4f}, {x['ci_high']:+.4f}]" for n, x in champion["difference"].items()}
            row(f"  champion {champion['name']}", {"metrics": champion["metrics"], "difference": diff})
    else:
        row("evaluation", ev)
    ds = doc["dataset"]
    if isinstance(ds, dict) and "content_hash" in ds:
        row("dataset", f"{ds['uri']}: cutoff {ds['cutoff']}, rows {json.dumps(ds['rows'], sort_keys=True)}, {ds['content_hash']}")
        row("  sources", ds["sources"])
    else:
        row("dataset", ds)
    c = doc["config"]
    same = {True: "the current config hashes the same", False: "the current config hashes differently", NOT_RECORDED: NOT_RECORDED}[c["matches"]]
    row("stack config hash", f"{c['recorded']} ({same}; current {c['current']})")
    return table


@app.command()
def lineage(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint key under endpoints.")],
    variant: Annotated[Optional[str], typer.Option("--variant", help="Variant; default: the endpoint's first production variant (the champion).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the chain as JSON (sorted keys).")] = False,
) -> None:
    """Trace a live variant back to its data and config: model package, pipeline execution, training
    job, image and code version, evaluation (decision, champions faced), dataset manifest, stack config
    hash. Links a version does not record read "not recorded". A local stack is read from its running
    local environment. Exits 2 on a configuration error (unknown endpoint or variant, a pinned version
    the registry lacks) or a failed AWS call."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops import lineage as chain
    from mlops.promote.errors import PromotionError

    try:
        config = stack_files.load(stack)
        clients = _stack_clients(config)
    except stack_files.ConfigError as exc:
        _fail(exc)
    except (RuntimeError, PromotionError) as exc:  # the local environment is not running; conflicting access settings
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    try:
        doc = chain.lineage(config, endpoint=endpoint, variant=variant, client=clients)
    except chain.LineageError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    except (BotoCoreError, ClientError) as exc:
        _aws_failed(exc)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    out.print(_lineage_table(doc))
    if doc["pipeline_execution"] != chain.NOT_RECORDED:
        out.print(f"SageMaker lineage of this run: open pipeline execution {doc['pipeline_execution']} (Studio, or "
                  "`aws sagemaker list-pipeline-execution-steps`)", markup=False)


# --------------------------------------------------------------------------------------------
# Promotion, rollback, new teams, CI

ci_app = typer.Typer(no_args_is_help=True, help="CI workflows: generate them; list the stacks a change touches.")
app.add_typer(ci_app, name="ci")
from mlops.features.cli import app as features_app  # noqa: E402 - mounted here, beside the other sub-apps
app.add_typer(features_app, name="features")


def _print_outcome(outcome, *, header: str, diff: bool = True) -> None:
    out.print(header, markup=False)
    for gate in outcome.gates:
        mark = "[green]pass[/green]" if gate.passed else "[red]FAIL[/red]"
        out.print(f"  {mark} {gate.name}: ", end="")
        out.print(gate.detail, markup=False)
    for note in outcome.notes:
        out.print(f"  note: {note}", markup=False)
    if diff and outcome.diff:
        out.print(outcome.diff, markup=False, end="")


def _refused(exc) -> NoReturn:
    err.print(str(exc), markup=False)
    raise typer.Exit(EXIT_REFUSED)


def _aws_failed(exc: Exception, *, hint: str = "") -> NoReturn:
    """A failed AWS call (credentials, permissions, a missing resource): a configuration error."""
    err.print(f"AWS call failed: {exc}" + (f"; {hint}" if hint else ""), markup=False)
    raise typer.Exit(EXIT_CONFIG)


def _run_pin_change(run, *, refused_header: str,
                    hint: str = "rerun the same command once that is fixed (a promotion reuses a package it registered before the failure)"):
    """Run a promotion, a rollback or their dry runs, mapping failures to exit codes: 64 for a usage
    error, 2 for a configuration error or a failed AWS call, 1 for a refusing gate (its gate table is printed)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops import promote as promotion

    try:
        return run()
    except stack_files.ConfigError as exc:
        _fail(exc)
    except promotion.PromotionUsageError as exc:
        _usage(str(exc))
    except promotion.PromotionError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    except promotion.Refused as exc:
        _print_outcome(exc.outcome, header=refused_header, diff=False)
        _refused(exc)
    except (BotoCoreError, ClientError) as exc:
        _aws_failed(exc, hint=hint)


def _write_outcome(path: Optional[Path], outcome) -> None:
    """`--json`: the outcome of a promotion, refused or not, as JSON."""
    if path is not None:
        path.write_text(json.dumps(outcome.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _exclusive(**flags: bool) -> None:
    given = [f"--{name.replace('_', '-')}" for name, on in flags.items() if on]
    if len(given) > 1:
        _usage(f"{' and '.join(given)} exclude each other: --dry-run sends nothing, --check only reads AWS, --apply deploys")


@app.command()
def promote(
    team: Annotated[str, typer.Option("--team", help="Team name (stacks/teams/<team>.yaml).")],
    model: Annotated[str, typer.Option("--model", help="Model key under model_registry.models.")],
    source: Annotated[str, typer.Option("--from", help="Source environment: dev or staging.")],
    target: Annotated[str, typer.Option("--to", help="Target environment, after --from: staging or prod.")],
    version: Annotated[Optional[int], typer.Option("--version", help="Source version; default: the newest Approved one.", min=1)] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Variant to pin; default: each serving endpoint's first production variant (the champion).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Offline: print the AWS requests, gates and stack file diff; no network, no credentials, placeholders for what only AWS knows.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Run every gate against AWS (read-only) and show the diff; change nothing.")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="After pinning, run `pulumi up` for the target (needs the Pulumi CLI).")] = False,
    evaluation_data: Annotated[Optional[str], typer.Option("--evaluation-data", help="Labelled data for the regression gate's shared evaluation: a directory or s3:// prefix (target account) written by `mlops-train dataset`. Default: the candidate's own evaluation if it faced the target's champion, else a dataset built from the target's last 30 days.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the outcome (status, gates, pin, the regression gate's evidence) as JSON here, refused or not.")] = None,
) -> None:
    """Promote a registered model version from one environment to the next.

    Gates first (Approved at the source; metrics meet the target's gates; no regression against its
    champion on one shared evaluation: the candidate's own evaluation when it faced that champion, else
    `mlops-train evaluate` of both on the target's recent labelled data or --evaluation-data, and a
    refusal when there is none; schema compatible with its feature store; the pinned stack plans with no
    mandatory policy violation). Then the artifact is copied into the target's bucket, registered Approved in the
    target's group, pinned in stacks/Pulumi.<team>-<to>.yaml and recorded in stacks/audit/<team>.jsonl.
    Promoting the version already pinned changes nothing. Exits 1 when a gate refuses, 2 on a
    configuration error or a failed AWS call, 64 on a usage error.
    """
    from mlops import dry_run as dry
    from mlops import promote as promotion

    _exclusive(dry_run=dry_run, check=check, apply=apply)
    request = promotion.PromoteRequest(
        team=team, model=model, source=source, target=target, version=version, variant=variant, check=check, apply=apply,
        evaluation_data=evaluation_data,
    )
    header = f"{team}/{model}: {source} -> {target}"
    if dry_run:
        sys.stdout.write(_run_pin_change(lambda: dry.promote_dry_run(request), refused_header=header).render())  # never re-wrapped
        return

    def attempt():
        try:
            return promotion.promote(request, on_output=print)
        except promotion.Refused as exc:
            _write_outcome(json_path, exc.outcome)
            raise

    outcome = _run_pin_change(attempt, refused_header=header)
    _write_outcome(json_path, outcome)
    pin = outcome.pin
    _print_outcome(outcome, header=f"{header} ({outcome.stack}, version {pin.version if pin else '?'})")
    if outcome.status == "checked":
        out.print(f"check: the gates pass; nothing was changed (would pin version {pin.version} at {pin.model_data_url})", markup=False)
    elif outcome.status == "no-op":
        out.print(f"{outcome.stack} already pins version {pin.version}; nothing changed" + (", `pulumi up` ran" if outcome.applied else ""), markup=False)
    else:
        out.print(
            f"promoted: {outcome.stack} pins {model} version {pin.version} ({', '.join(t.ref for t in outcome.targets)}); "
            f"audit: {promotion.audit_path(team)}" + ("; `pulumi up` ran" if outcome.applied else "; deploy with `pulumi up` or --apply"),
            markup=False,
        )


def _rollout_backend(config, *, commit: bool, branch: str):
    """The local environment for a local stack (it must be up), else the stack's AWS with `pulumi up`."""
    from mlops.rollout import backends

    analyzer = backends.shadow_analyzer(config)
    if config.environment == "local":
        from mlops.local.stack import LocalStack

        local = LocalStack(config.stack_name)
        local.env.moto_url()  # RuntimeError naming `mlops local up` when it is not running
        return backends.LocalBackend(local, analyzer)
    return backends.CloudBackend(analyzer, team=config.team, commit=commit, branch=branch)


def _rollout_stacks(stack: Optional[str], environment: Optional[str]) -> list[str]:
    if (stack is None) == (environment is None):
        _usage("give --stack NAME, or --environment ENV for every stack of that environment")
    if stack is not None:
        return [stack]
    names = [s for s in stack_files.list_stacks() if stack_files.load_source(s).merged.get("environment") == environment]
    if not names:
        _usage(f"no stack has environment {environment!r}; stacks: {', '.join(stack_files.list_stacks())}")
    return names


@app.command()
def rollout(
    stack: Annotated[Optional[str], typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")] = None,
    environment: Annotated[Optional[str], typer.Option("--environment", help="Every stack of this environment instead of one (the scheduled CI job: dev).")] = None,
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="Endpoint key; default: every endpoint of the stack.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and show the step and its stack-file diff; write, deploy and record nothing.")] = False,
    commit: Annotated[bool, typer.Option("--commit", help="Commit and push each step (stack file and audit log) before it deploys: what the scheduled CI job does.")] = False,
    branch: Annotated[str, typer.Option("--branch", help="With --commit: the branch to push to.")] = "main",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write every endpoint's outcome (step, reason, versions, diff, the analysis's evidence) as JSON here.")] = None,
) -> None:
    """Move each opted-in endpoint's automatic rollout one step: a newer Approved version goes into
    shadow beside the champion; once enough requests were mirrored, the shadow analysis decides; a
    candidate that passes replaces the champion through the endpoint's blue/green update (auto-rollback
    on its alarms). Each step is a pin change in the stack file and a record in the team's audit log.
    A local stack is advanced in its running local environment; other stacks deploy with `pulumi up`
    (Automation API, policy pack). Exits 1 when a rollout ended refused or rolled back, 2 on a
    configuration error or a failed AWS call, 64 on a usage error."""
    from mlops.promote.policy import check_apply_possible
    from mlops.rollout import flow

    if commit and dry_run:
        _usage("--commit and --dry-run exclude each other: a dry run writes nothing to commit")
    outcomes = []
    for name in _rollout_stacks(stack, environment):
        try:
            config = stack_files.load(name)
            backend = _rollout_backend(config, commit=commit, branch=branch)
        except stack_files.ConfigError as exc:
            _fail(exc)
        except RuntimeError as exc:  # the local environment is not running
            err.print(str(exc), markup=False)
            raise typer.Exit(EXIT_CONFIG)
        if config.environment != "local" and not dry_run:
            _run_pin_change(check_apply_possible, refused_header=name)
        for key in [endpoint] if endpoint else sorted(config.endpoints):
            request = flow.RolloutRequest(stack=name, endpoint=key, dry_run=dry_run)
            outcome = _run_pin_change(lambda: flow.advance(request, backend, on_output=lambda line: out.print(f"  {line}", markup=False)),
                                      refused_header=f"rollout {name}/{key}",
                                      hint="rerun once that is fixed: a rollout reads where it stands from the stack file and the audit log")
            outcomes.append(outcome)
            out.print(f"{name}/{key}: {outcome.step}{' (dry run)' if dry_run else ''}: {outcome.reason}", markup=False)
            if outcome.diff:
                out.print(outcome.diff, markup=False, end="")
    if json_path is not None:
        json_path.write_text(json.dumps([o.to_json() for o in outcomes], indent=2) + "\n", encoding="utf-8")
    if any(o.step in ("refused", "rolled_back") for o in outcomes):
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def rollback(
    team: Annotated[str, typer.Option("--team", help="Team name.")],
    env: Annotated[str, typer.Option("--env", help="Environment to roll back: dev, staging or prod.")],
    model: Annotated[Optional[str], typer.Option("--model", help="Model; default: the one model the environment's endpoints serve.")] = None,
    variant: Annotated[Optional[str], typer.Option("--variant", help="Variant; default: the champion (first production variant).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Offline: print the AWS requests, gates and stack file diff; no network, no credentials.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Run every gate against AWS (read-only) and show the diff; change nothing.")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="After pinning, run `pulumi up` (needs the Pulumi CLI).")] = False,
) -> None:
    """Pin the previous champion (the pin before the current one in the team's audit log).

    Same gates as promote except regression, same audit record with action "rollback".
    Exits 1 when a gate refuses, 2 on a configuration error (including no previous champion) or a
    failed AWS call, 64 on a usage error.
    """
    from mlops import dry_run as dry
    from mlops import promote as promotion

    _exclusive(dry_run=dry_run, check=check, apply=apply)
    request = promotion.RollbackRequest(team=team, environment=env, model=model, variant=variant, check=check, apply=apply)
    if dry_run:
        sys.stdout.write(_run_pin_change(lambda: dry.rollback_dry_run(request), refused_header=f"rollback {team}-{env}").render())
        return
    outcome = _run_pin_change(lambda: promotion.rollback(request, on_output=print), refused_header=f"rollback {team}-{env}")
    pin, previous = outcome.pin, outcome.previous
    _print_outcome(outcome, header=f"rollback {outcome.stack}: version {previous.version} -> {pin.version}")
    if outcome.status == "checked":
        out.print(f"check: the gates pass; nothing was changed (would pin version {pin.version})", markup=False)
    else:
        out.print(
            f"rolled back: {outcome.stack} pins version {pin.version} again; audit: {promotion.audit_path(team)}"
            + ("; `pulumi up` ran" if outcome.applied else "; deploy with `pulumi up` or --apply"),
            markup=False,
        )


@app.command()
def train(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    model: Annotated[Optional[str], typer.Option("--model", help="Model key; default: the stack's only model.")] = None,
    train_uri: Annotated[Optional[str], typer.Option("--train-uri", help="Train on this s3:// prefix instead of the feature group's offline store (EKS).")] = None,
    kubeconfig: Annotated[Optional[Path], typer.Option("--kubeconfig", help="Kubeconfig file (EKS); default: $KUBECONFIG or ~/.kube/config.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="Kubeconfig context (EKS); default: the current one.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Offline: print the Job (EKS) or the StartPipelineExecution request (SageMaker) as YAML; no network, no credentials, placeholders for what only AWS knows.")] = False,
) -> None:
    """Start one training run of a model where the stack trains (needs AWS credentials, and cluster access for EKS).

    Kind eks: submits the model's Indexed Job (torchrun on `nodes` x `gpus_per_node`) with the Kubernetes
    client, the same template as the stack's CronJob. Kind sagemaker: starts the model's retraining
    pipeline. The run registers a new version in the model's group. Exits 2 if the run cannot start
    (configuration, access, a missing resource), 64 on a usage error.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops import promote as promotion
    from mlops import train as training

    try:
        config = stack_files.validate(stack_files.load_source(stack))
        name = training.pick_model(config, model)
        if dry_run:
            _train_dry_run(config, name, train_uri=train_uri)
            return
        session = promotion.session_for(config.environment, config.aws.region)
        sagemaker = session.client("sagemaker")
        if config.training.kind == "sagemaker":
            started = training.start_pipeline(config, name, sagemaker=sagemaker)
            out.print(f"started {started.name}", markup=False)
            return
        uri = train_uri or training.offline_store_uri(config, name, sagemaker=sagemaker)
        job = training.render_job(config, name, train_uri=uri)
        submitted = training.submit_job(job, api_client=training.kube_client(config_file=kubeconfig, context=context))
    except stack_files.ConfigError as exc:
        _fail(exc)
    except training.TrainUsageError as exc:
        _usage(str(exc))
    except (training.TrainError, promotion.PromotionError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    except (BotoCoreError, ClientError) as exc:
        _aws_failed(exc)
    out.print(
        f"submitted Job {submitted.namespace}/{submitted.name}; follow it with "
        f"`kubectl -n {submitted.namespace} logs -f -l job-name={submitted.name} --max-log-requests 16`",
        markup=False,
    )


def _train_dry_run(config, model: str, *, train_uri: Optional[str]) -> None:
    """Print, as one YAML document, what `mlops train` would send; comments say where and what is unresolved."""
    from mlops import promote as promotion
    from mlops import train as training

    unresolved: dict[str, str] = {}
    if config.training.kind == "sagemaker":
        profile, role = promotion.access_for(config.environment)
        creds = f"profile {profile}" if profile else f"role {role}" if role else "ambient credentials"
        to = f"sagemaker:StartPipelineExecution -> {config.environment} account {config.aws.account_id} ({creds})"
        document = training.pipeline_request(config, model)
    else:
        if train_uri is None:
            train_uri = training.offline_store_placeholder(config, model)
            unresolved["MLOPS_TRAIN_URI"] = train_uri
        document = training.render_job(config, model, train_uri=train_uri)
        namespace = document["metadata"]["namespace"]
        to = f"POST /apis/batch/v1/namespaces/{namespace}/jobs -> the Kubernetes API server of --kubeconfig/--context"
    lines = [f"# dry run: nothing was sent; would send {to}", yaml.safe_dump(document, sort_keys=False).rstrip("\n")]
    if unresolved:
        lines.append(f"# unresolved ({len(unresolved)}): values only the cloud knows, shown as placeholders")
        lines += [f"#   - {name}: {value}" for name, value in unresolved.items()]
    else:
        lines.append("# unresolved: none")
    sys.stdout.write("\n".join(lines) + "\n")  # plain: a console would re-wrap the YAML


@app.command("new-team")
def new_team(
    name: Annotated[str, typer.Argument(help="Team name: lowercase letters, digits and single hyphens.")],
    account_dev: Annotated[str, typer.Option("--account-dev", help="12-digit AWS account id of dev.")],
    account_staging: Annotated[str, typer.Option("--account-staging", help="12-digit AWS account id of staging.")],
    account_prod: Annotated[str, typer.Option("--account-prod", help="12-digit AWS account id of prod.")],
    region: Annotated[str, typer.Option("--region", help="AWS region of all three stacks, e.g. eu-west-1.")],
    owner: Annotated[str, typer.Option("--owner", help="Owning team's e-mail: Owner tag and alarm notifications.")],
    cost_center: Annotated[str, typer.Option("--cost-center", help="CostCenter tag.")],
) -> None:
    """Scaffold a team: stacks/teams/NAME.yaml and stacks/Pulumi.NAME-{dev,staging,prod}.yaml.

    Never overwrites; validates and plans all three stacks (zero mandatory policy violations) before
    reporting success, and removes what it wrote if any of them fails.
    """
    from mlops import scaffold

    spec = scaffold.TeamSpec(
        name=name, accounts={"dev": account_dev, "staging": account_staging, "prod": account_prod},
        region=region, owner=owner, cost_center=cost_center,
    )
    try:
        result = scaffold.new_team(spec)
    except scaffold.ScaffoldError as exc:
        _usage(str(exc))
    except stack_files.ConfigError as exc:
        err.print("the scaffold did not validate; nothing was kept", markup=False)
        _fail(exc)
    except scaffold.PlanRefused as exc:
        err.print(f"{exc}\nthe scaffold did not plan cleanly; nothing was kept", markup=False)
        raise typer.Exit(EXIT_REFUSED)
    for path in result.files:
        out.print(f"wrote {path}", markup=False)
    for stack, count in result.resources.items():
        out.print(f"{stack}: valid, plans {count} resources, 0 mandatory policy violations", markup=False)
    out.print(f"next: describe features, models and endpoints in stacks/teams/{name}.yaml, then `mlops plan -s {name}-dev`", markup=False)


@ci_app.command("generate")
def ci_generate(
    provider: Annotated[str, typer.Option("--provider", help="github or gitlab.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Repository root to write the workflow files under.")] = Path("."),
) -> None:
    """Write CI workflows: GitHub .github/workflows/{pull-request,main,promote}.yml or GitLab .gitlab-ci.yml.

    Pull requests: tests, `mlops plan` and `pulumi preview` per changed stack; main: `pulumi up` for dev;
    promotion to staging and prod behind environment approvals; AWS access through OIDC only.
    """
    from mlops import ci

    if provider not in ci.PROVIDERS:
        _usage(f"--provider {provider!r} is not allowed; allowed: {', '.join(ci.PROVIDERS)}")
    for path in ci.generate(provider, out_dir):
        out.print(f"wrote {path}", markup=False)


@ci_app.command("changed-stacks")
def ci_changed_stacks(
    base: Annotated[Optional[str], typer.Option("--base", help="Commit to diff HEAD against; none or unknown: every stack.")] = None,
    environment: Annotated[Optional[str], typer.Option("--environment", help="Only stacks of this environment.")] = None,
    exclude_environment: Annotated[Optional[str], typer.Option("--exclude-environment", help="Leave out the stacks of this environment (pull requests: prod).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json (a GitHub matrix include list) or tsv (stack, environment, region).")] = "json",
) -> None:
    """Print the stacks a change touches: its stack files, its teams' base files, or (program,
    components, policy pack, dependencies) every stack."""
    from mlops import ci

    if fmt not in ("json", "tsv"):
        _usage(f"--format {fmt!r} is not allowed; allowed: json, tsv")
    stacks = stack_files.list_stacks()
    paths = ci.diff_paths(base)
    names = stacks if paths is None else ci.changed_stacks(paths, stacks)
    entries = [e for e in ci.stack_matrix(names)
               if (environment is None or e["environment"] == environment) and e["environment"] != exclude_environment]
    sys.stdout.write(ci.format_matrix(entries, fmt) + ("\n" if fmt == "json" else ""))


@ci_app.command("pin-images")
def ci_pin_images(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack whose file gets the digests.")],
    training: Annotated[Optional[str], typer.Option("--training", help="Digest of the training image: sha256:<64 hex>.")] = None,
    serving: Annotated[Optional[str], typer.Option("--serving", help="Digest of the serving image: sha256:<64 hex>.")] = None,
    cluster_autoscaler: Annotated[Optional[str], typer.Option(
        "--cluster-autoscaler", help="Digest of the created EKS cluster's cluster-autoscaler image (`mlops ci cluster-autoscaler-image`).")] = None,
) -> None:
    """Write image digests into stacks/Pulumi.<stack>.yaml (`images.<image>_digest` under
    `mlops:overrides`), so that the stack runs `<repository>@<digest>`; the file must still validate."""
    from mlops import ci

    digests = {k: v for k, v in (("training", training), ("serving", serving), ("cluster_autoscaler", cluster_autoscaler)) if v is not None}
    if not digests:
        _usage("give --training, --serving and/or --cluster-autoscaler")
    path = stack_files.stack_file(stack)
    if not path.exists():
        _usage(f"no stack file {path}; stacks: {', '.join(stack_files.list_stacks())}")
    before = path.read_text(encoding="utf-8")
    try:
        path.write_text(ci.pin_images_text(before, digests), encoding="utf-8")
        stack_files.load(stack)
    except (ValueError, stack_files.ConfigError) as exc:
        path.write_text(before, encoding="utf-8")
        _usage(str(exc))
    out.print(f"{stack}: " + ", ".join(f"{k} @ {v}" for k, v in digests.items()), markup=False)


@ci_app.command("cluster-autoscaler-image")
def ci_cluster_autoscaler_image(
    stack: Annotated[str, typer.Option("--stack", "-s", help="A stack.")],
) -> None:
    """Print the cluster-autoscaler image (by tag) the stack's created EKS cluster runs, for CI to resolve
    to a digest (`docker buildx imagetools inspect`) and pin with `mlops ci pin-images --cluster-autoscaler`;
    print nothing for a stack that creates no cluster."""
    from mlops import ci

    try:
        image = ci.cluster_autoscaler_image(stack_files.load(stack))
    except stack_files.ConfigError as exc:
        _fail(exc)
    if image:
        sys.stdout.write(image + "\n")


@ci_app.command("resolve-digest")
def ci_resolve_digest(
    image: Annotated[str, typer.Argument(help="A public image by tag: <registry host>/<repository>:<tag>.")],
) -> None:
    """Print the digest the tag points at now, read from its registry (OCI distribution API, anonymous
    token if the registry asks for one). CI pins a created cluster's cluster-autoscaler with it."""
    from mlops import registry

    try:
        sys.stdout.write(registry.manifest_digest(image) + "\n")
    except ValueError as exc:
        _usage(str(exc))
    except (registry.RegistryError, OSError) as exc:
        err.print(f"mlops ci resolve-digest: {exc}", markup=False)
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# Online experiments

cost_app = typer.Typer(no_args_is_help=True, help="Cost estimates: what a change to a stack does to its cost.")
app.add_typer(cost_app, name="cost")


@cost_app.command("diff")
def cost_diff(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    base_ref: Annotated[Optional[str], typer.Option("--base-ref", help="The git revision to compare with (default HEAD).")] = None,
    base_dir: Annotated[Optional[Path], typer.Option("--base-dir", help="Compare with this stacks directory instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The stack's estimated cost before and after the change in the working tree (its stack files against
    --base-ref, default HEAD, or --base-dir), line by line, with the price file of the working tree."""
    from mlops import cost_diff as differ
    from specs import cost

    if base_ref and base_dir:
        _usage("give at most one of --base-ref and --base-dir")
    try:
        result = differ.diff(stack, base_ref=base_ref, base_dir=base_dir)
    except (differ.BaseError, stack_files.ConfigError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG) from None
    if as_json:
        out.print_json(json.dumps(result))
        return
    for line in cost.format_diff(result):
        out.print(line, markup=False)


prices_app = typer.Typer(no_args_is_help=True, help="Prices from AWS's Price List API, for the cost estimates of `mlops plan`.")
app.add_typer(prices_app, name="prices")


@prices_app.command("refresh")
def prices_refresh(
    region: Annotated[Optional[list[str]], typer.Option("--region", help="Only this region (repeatable); default: every region the stacks use.")] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Where to write it (default stacks/prices.json).")] = None,
    endpoint_url: Annotated[Optional[str], typer.Option("--endpoint-url", help="Another Price List endpoint (tests).")] = None,
) -> None:
    """Query the AWS Price List API (pricing:GetProducts, your credentials) for the on-demand hourly price
    of every instance type the stacks use and the storage and request unit prices their estimates use,
    per region, and write stacks/prices.json (commit it: the
    plans' cost estimates read it; no prices ship with the project)."""
    from mlops import prices

    want = prices.wanted(stack_files.load(name) for name in stack_files.list_stacks())
    if region:
        unknown = sorted(set(region) - set(want))
        if unknown:
            err.print(f"no stack uses region(s) {', '.join(unknown)}; the stacks use: {', '.join(sorted(want))}")
            raise typer.Exit(EXIT_USAGE)
        want = {r: want[r] for r in region}
    doc = prices.refresh(prices.pricing_client(endpoint_url=endpoint_url), want)
    target = out_path or stack_files.stacks_dir() / "prices.json"
    target.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    priced = prices.count(doc)
    out.print(f"{priced} price(s) for {len(want)} region(s) written to {target} (queried {doc['queried_at']})")


experiment_app = typer.Typer(no_args_is_help=True, help="Online experiment readouts of a live endpoint: shadow analysis, A/B test.")
app.add_typer(experiment_app, name="experiment")

_SINCE_HELP = "Only captures at or after this ISO 8601 time (UTC if no zone), e.g. 2026-12-01T00:00Z; default: all."
_OUT_HELP = "Folder for <kind>.json and <kind>.html; default .mlops/experiments/<stack>/<endpoint>/."
_JSON_HELP = "Also write the JSON document to PATH ('-': standard output)."


def _since(raw: Optional[str]) -> Optional[dt.datetime]:
    from mlops_contracts.capture import parse_time

    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        _usage(f"--since: {exc}")


def _experiment(stack: str, endpoint: str, read, out_dir: Optional[Path], json_path: Optional[str]):
    """Load the stack, run `read(config, clients)`, write JSON + HTML; exit 2 on config or AWS errors."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops.experiment import report
    from mlops.experiment.readouts import ExperimentError
    from mlops.promote.errors import PromotionError
    from mlops_contracts import experiment as contract

    try:
        config = stack_files.load(stack)
        clients = _stack_clients(config)
        doc, problems = read(config, clients)
    except stack_files.ConfigError as exc:
        _fail(exc)
    except (RuntimeError, PromotionError, ExperimentError) as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(EXIT_CONFIG)
    except (BotoCoreError, ClientError) as exc:
        _aws_failed(exc)
    for problem in problems[:5]:
        err.print(f"skipped: {problem}", markup=False)
    if len(problems) > 5:
        err.print(f"skipped {len(problems) - 5} more lines", markup=False)
    written = report.write(doc, out_dir or Path(".mlops") / "experiments" / stack / endpoint)
    if json_path == "-":
        sys.stdout.write(contract.dumps(doc))
    elif json_path:
        contract.write(doc, json_path)
    if json_path != "-":
        out.print(f"wrote {written[0]} and {written[1]}", markup=False)
    return doc


@experiment_app.command("shadow")
def experiment_shadow(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint key under endpoints (traffic.mode: shadow).")],
    variant: Annotated[Optional[str], typer.Option("--variant", help="Shadow variant; default: the endpoint's shadow variant.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help=_SINCE_HELP)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help=_OUT_HELP)] = None,
    json_path: Annotated[Optional[str], typer.Option("--json", help=_JSON_HELP)] = None,
) -> None:
    """Compare a shadow variant with its champion on the same mirrored requests (joined by inference
    id): decision agreement, prediction differences, p50/p99 latency and error-rate deltas, each against
    endpoints.<e>.experiment.shadow. Exits 0 passed, 1 failed, 3 insufficient (too few joined requests),
    2 on a configuration error or a failed AWS call."""
    from mlops.experiment.readouts import shadow_readout

    start = _since(since)
    doc = _experiment(stack, endpoint, lambda config, clients: shadow_readout(config, endpoint=endpoint, variant=variant, since=start, client=clients),
                      out_dir, json_path)
    if json_path != "-":
        for check in doc.checks:
            out.print(f"  {'pass' if check.passed else 'FAIL'} {check.name}: {check.detail}", markup=False)
        out.print(f"verdict: {doc.verdict}: {doc.reason}", markup=False)
    raise typer.Exit({"passed": EXIT_OK, "failed": EXIT_REFUSED}.get(doc.verdict, EXIT_INSUFFICIENT))


@experiment_app.command("ab")
def experiment_ab(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name, <team>-<env>.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint key under endpoints (traffic.mode: ab).")],
    since: Annotated[Optional[str], typer.Option("--since", help=_SINCE_HELP)] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help=_OUT_HELP)] = None,
    json_path: Annotated[Optional[str], typer.Option("--json", help=_JSON_HELP)] = None,
) -> None:
    """Read out an A/B test: per production variant, live metrics with 95 % intervals from captures
    joined with ground truth, the test of the primary metric (challenger against champion), the
    labelled traffic still needed for experiment.ab.min_detectable_effect, and a recommendation (keep,
    promote, stop). Exits 0 with any recommendation, 2 on a configuration error or a failed AWS call."""
    from mlops.experiment.readouts import ab_readout

    start = _since(since)
    doc = _experiment(stack, endpoint, lambda config, clients: ab_readout(config, endpoint=endpoint, since=start, client=clients),
                      out_dir, json_path)
    if json_path != "-":
        for v in doc.variants:
            figures = ", ".join(f"{m} {e['value']:.4f} [{e['ci_low']:.4f}, {e['ci_high']:.4f}]" for m, e in sorted(v.metrics.items()))
            out.print(f"  {v.name} (weight {v.weight:g}): {v.labelled} labelled of {v.captured} rows; {figures or 'no metrics'}", markup=False)
        out.print(f"recommendation: {doc.recommendation}: {doc.reason}", markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
