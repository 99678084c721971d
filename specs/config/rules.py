"""Rules across fields of a validated `StackConfig`: references, environment policy, AWS names.

Pure functions, no Pulumi: each returns `Problem`s naming the config path, the value and what is
allowed. `specs.config.stack_files` reports them with the file they came from.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: only the program entry point reads `pulumi.Config`; this package
validates what it read).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specs.config import instance_types
from specs import naming
from specs.feature_schema import feature_schema
from specs.config.schema import LOWER_IS_BETTER, TASK_METRICS, CreatedCluster, NoRollout, StackConfig, region_problem
from specs.alarms import DRIFT_ALARM_METRICS
from specs.k8s import cron

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack config."""

    path: Path
    message: str
    value: Any = None

    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path) or "(top level)"


def check(config: StackConfig) -> list[Problem]:
    """Every cross-field problem in `config`, in a stable order."""
    return [*_references(config), *_feature_lookups(config), *_training(config), *_environment(config), *_names(config)]


def _references(config: StackConfig) -> list[Problem]:
    problems = []
    groups = config.feature_store.feature_groups
    models = config.model_registry.models
    for name, model in models.items():
        path: Path = ("model_registry", "models", name)
        group = groups.get(model.feature_group)
        if group is None:
            problems.append(Problem(
                (*path, "feature_group"),
                f"unknown feature group; defined: {', '.join(groups) or 'none'}",
                model.feature_group,
            ))
        else:
            names = [f.name for f in group.features]
            identity = {group.record_identifier, group.event_time}
            if model.label not in names:
                problems.append(Problem((*path, "label"), f"not a feature of {model.feature_group!r}; features: {', '.join(names)}", model.label))
            elif model.label in identity:
                problems.append(Problem((*path, "label"), "the record identifier and event time cannot be the label", model.label))
            elif len(names) - len(identity) - 1 < 1:
                problems.append(Problem((*path, "label"), f"{model.feature_group!r} has no feature left to train on besides the label", model.label))
        problems += _ground_truth(config, name, model.ground_truth_uri)
        for metric in model.gates:
            if metric not in TASK_METRICS[model.task]:
                problems.append(Problem(
                    (*path, "gates", metric),
                    f"not a {model.task} metric; allowed: {', '.join(sorted(TASK_METRICS[model.task]))}",
                    metric,
                ))
            elif metric not in LOWER_IS_BETTER and metric in ("auc", "accuracy") and not 0 < model.gates[metric] <= 1:
                problems.append(Problem((*path, "gates", metric), "must be in (0, 1]", model.gates[metric]))
    for name, endpoint in config.endpoints.items():
        if endpoint.model not in models:
            problems.append(Problem(
                ("endpoints", name, "model"),
                f"unknown model; defined under model_registry.models: {', '.join(models) or 'none'}",
                endpoint.model,
            ))
        own_bucket = naming.Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id).bucket("artifacts")
        for variant_name, variant in endpoint.all_variants().items():
            bucket = variant.model_data_url.removeprefix("s3://").split("/", 1)[0]
            if bucket != own_bucket:
                where = ("production" if variant_name in endpoint.production_variants() else "shadow") if endpoint.shadow_variants() else "variants"
                problems.append(Problem(
                    ("endpoints", name, "traffic", where, variant_name, "model_data_url"),
                    f"must be in this stack's artifacts bucket s3://{own_bucket}/ (the execution role reads no other bucket; "
                    f"`mlops promote` copies a version's artifact into the target environment)",
                    variant.model_data_url,
                ))
        guarded = not isinstance(endpoint.rollout, NoRollout) and config.monitoring.alarms
        rollback = 2 * len(endpoint.production_variants())
        if guarded and rollback > 10:
            problems.append(Problem(
                ("endpoints", name, "traffic", "variants"),
                f"{len(endpoint.production_variants())} production variants need {rollback} rollback alarms; "
                "SageMaker's auto-rollback takes at most 10 (5 variants with a guarded rollout)",
            ))
        if endpoint.autoscaling is not None:
            for variant_name, variant in endpoint.production_variants().items():
                lo, hi = endpoint.autoscaling.min_capacity, endpoint.autoscaling.max_capacity
                if not lo <= variant.instance_count <= hi:
                    problems.append(Problem(
                        ("endpoints", name, "traffic", "variants", variant_name, "instance_count"),
                        f"outside the autoscaling range {lo}..{hi}",
                        variant.instance_count,
                    ))
    return problems


def _ground_truth(config: StackConfig, model: str, uri: str | None) -> list[Problem]:
    """A model's ground-truth location must be in the stack's features bucket: training reads that
    bucket and no other."""
    if uri is None:
        return []
    features = naming.Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id).bucket("features")
    if uri.removeprefix("s3://").split("/", 1)[0] == features:
        return []
    return [Problem(
        ("model_registry", "models", model, "ground_truth_uri"),
        f"must be in this stack's features bucket s3://{features}/ (training reads no other bucket); "
        f"the default is s3://{features}/ground-truth/{model}/",
        uri,
    )]


def _feature_lookups(config: StackConfig) -> list[Problem]:
    """An endpoint's online lookup must read a group with an online store that holds every feature
    its model takes, typed as the model was trained (the container types fetched values that way)."""
    problems = []
    groups = config.feature_store.feature_groups
    for name, endpoint in config.endpoints.items():
        lookup = endpoint.feature_lookup
        if lookup is None:
            continue
        path: Path = ("endpoints", name, "feature_lookup")
        group = groups.get(lookup.feature_group)
        if group is None:
            problems.append(Problem(
                (*path, "feature_group"), f"unknown feature group; defined: {', '.join(groups) or 'none'}", lookup.feature_group,
            ))
            continue
        if not group.online_store.enabled:
            problems.append(Problem(
                (*path, "feature_group"),
                f"has no online store (feature_store.feature_groups.{lookup.feature_group}.online_store.enabled is false); "
                "the lookup reads the online store, so enable it or pick a group that has one",
                lookup.feature_group,
            ))
        model = config.model_registry.models.get(endpoint.model)
        if model is None or model.feature_group not in groups:
            continue  # reported by _references
        inputs = feature_schema(config, endpoint.model)["features"]
        have = {f.name: f.type for f in group.features}
        missing = [f["name"] for f in inputs if f["name"] not in have]
        retyped = [f"{f['name']} ({have[f['name']]}, the model takes {f['type']})" for f in inputs
                   if f["name"] in have and have[f["name"]] != f["type"]]
        if missing or retyped:
            wrong = ([f"lacks {', '.join(missing)}"] if missing else []) + ([f"types differ: {', '.join(retyped)}"] if retyped else [])
            problems.append(Problem(
                (*path, "feature_group"),
                f"does not hold every feature of model {endpoint.model!r}: {'; '.join(wrong)}; "
                f"the model takes {', '.join(f['name'] + ' (' + f['type'] + ')' for f in inputs)}",
                lookup.feature_group,
            ))
        field = lookup.record_identifier_field or group.record_identifier
        if field in {f["name"] for f in inputs}:
            problems.append(Problem(
                (*path, "record_identifier_field"),
                f"is one of model {endpoint.model!r}'s features; the request field that holds the record id must be "
                "another name (set record_identifier_field)",
                field,
            ))
    return problems


def _training(config: StackConfig) -> list[Problem]:
    """An EKS training run must fit the cluster and the team's quota, or it would wait forever."""
    eks = config.training.eks
    if config.training.kind != "eks" or eks is None:
        return []
    path: Path = ("training", "eks")
    problems = []
    if config.environment == "local":
        problems.append(Problem(
            ("training", "kind"), "the local environment has no Kubernetes cluster; allowed here: sagemaker", "eks",
        ))
    region = region_problem(config.aws.region, service="eks", purpose="EKS")
    if region is not None:
        problems.append(Problem(("aws", "region"), f"training.kind eks runs on EKS: {region}"))
    if isinstance(eks.cluster, CreatedCluster):
        if config.network is None:
            problems.append(Problem(
                (*path, "cluster", "mode"),
                "creating an EKS cluster needs `network` (its VPC and at least two subnets in different Availability Zones)",
                "create",
            ))
        elif len(config.network.subnet_ids) < 2:
            problems.append(Problem(
                ("network", "subnet_ids"), "EKS needs subnets in at least two Availability Zones", list(config.network.subnet_ids),
            ))
        pool = eks.cluster.gpu_nodes
        if eks.gpus_per_node > 0:
            smallest = min(pool.instance_types, key=instance_types.nvidia_gpus)
            if eks.gpus_per_node > instance_types.nvidia_gpus(smallest):
                problems.append(Problem(
                    (*path, "gpus_per_node"),
                    f"{smallest} has {instance_types.nvidia_gpus(smallest)} GPU(s); a pod must fit on every instance type of the pool",
                    eks.gpus_per_node,
                ))
            if pool.max_size < eks.nodes:
                problems.append(Problem(
                    (*path, "nodes"),
                    f"a run needs {eks.nodes} GPU nodes at once but gpu_nodes.max_size is {pool.max_size}",
                    eks.nodes,
                ))
    if config.training.schedule:
        try:
            cron.cron_for_kubernetes(config.training.schedule)
        except ValueError as exc:
            problems.append(Problem(("training", "schedule"), f"becomes a Kubernetes CronJob with kind eks: {exc}", config.training.schedule))
    demands = (
        ("gpus", eks.nodes * eks.gpus_per_node, eks.quota.gpus, "GPUs"),
        ("cpu", eks.nodes * eks.cpu_per_node, eks.quota.cpu, "CPU cores"),
        ("memory_gib", eks.nodes * eks.memory_gib_per_node, eks.quota.memory_gib, "GiB of memory"),
    )
    for field, need, quota, unit in demands:
        if need > quota:
            problems.append(Problem(
                (*path, "quota", field),
                f"one run requests {need} {unit} (nodes x per-node) but the namespace quota allows {quota}; "
                "Kubernetes would never admit its pods",
                quota,
            ))
    return problems


def _environment(config: StackConfig) -> list[Problem]:
    """Environment policy: what prod demands beyond the defaults."""
    if config.environment != "prod":
        return []
    problems = []
    for name, endpoint in config.endpoints.items():
        where = "production" if endpoint.shadow_variants() else "variants"
        for variant_name, variant in endpoint.production_variants().items():
            if variant.instance_count < 2:
                problems.append(Problem(
                    ("endpoints", name, "traffic", where, variant_name, "instance_count"),
                    "prod needs at least 2 instances per production variant (one Availability Zone failure must not take the endpoint down)",
                    variant.instance_count,
                ))
        if isinstance(endpoint.rollout, NoRollout):
            problems.append(Problem(
                ("endpoints", name, "rollout", "strategy"),
                "prod needs a guarded rollout; allowed: all_at_once, canary, linear (blue/green with auto-rollback on alarms)",
                "none",
            ))
        if endpoint.autoscaling is not None and endpoint.autoscaling.min_capacity < 2:
            problems.append(Problem(
                ("endpoints", name, "autoscaling", "min_capacity"),
                "prod needs at least 2 (scale-in must not drop below two instances)",
                endpoint.autoscaling.min_capacity,
            ))
        if not endpoint.data_capture.enabled:
            problems.append(Problem(
                ("endpoints", name, "data_capture", "enabled"),
                "prod endpoints must capture data (drift monitoring and live quality depend on it)",
                False,
            ))
    if config.endpoints:
        if not config.monitoring.alarms:
            problems.append(Problem(("monitoring", "alarms"), "prod needs alarms on every endpoint", False))
        if not config.monitoring.notifications.has_target():
            problems.append(Problem(
                ("monitoring", "notifications"),
                "prod needs a notification target for its alarms: at least one of emails, https_endpoint_secret",
                config.monitoring.notifications.model_dump(),
            ))
    return problems


def _names(config: StackConfig) -> list[Problem]:
    """Derived names AWS would refuse (too long, bad pattern) and names two config keys both derive."""
    derived = derived_names(config)
    problems = _invalid_names(config, derived)
    for collision in naming.collisions(derived):
        first = ".".join(str(p) for p in collision.first)
        second = ".".join(str(p) for p in collision.second)
        example = next((n for n in collision.names if not n.note), collision.names[0])  # a name without hash placeholder reads better
        kinds = sorted({n.kind for n in collision.names})
        problems.append(Problem(
            collision.second,
            f"{first} and {second} both derive the {example.kind} name {naming.shorten(example.value)}"
            f"{f' (and the same {len(kinds) - 1} other kind(s) of name: ' + ', '.join(k for k in kinds if k != example.kind) + ')' if len(kinds) > 1 else ''}; "
            "AWS and Pulumi need each to be unique in the stack: rename one of the keys",
        ))
    return problems


def derived_names(config: StackConfig) -> list[naming.DerivedName]:
    """Every name the stack derives (naming.derived_names with this config's keys)."""
    namer = naming.Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)
    endpoints = {}
    for name, endpoint in config.endpoints.items():
        shadow = endpoint.shadow_variants()
        sections = {v: ("production" if shadow else "variants") for v in endpoint.production_variants()}
        sections.update({v: "shadow" for v in shadow})
        endpoints[name] = naming.EndpointKeys(
            variants=sections, autoscaled=endpoint.autoscaling is not None, drift_monitor=endpoint.data_capture.enabled,
        )
    return naming.derived_names(
        namer=namer,
        endpoints=endpoints,
        models=list(config.model_registry.models),
        feature_groups=list(config.feature_store.feature_groups),
        drift_metrics=list(DRIFT_ALARM_METRICS) if config.endpoints else [],
        eks=config.training.eks.cluster.mode if config.training.kind == "eks" and config.training.eks else None,
    )


def _invalid_names(config: StackConfig, derived: list[naming.DerivedName]) -> list[Problem]:
    """One problem per kind of AWS name and culprit: the team when the name is too long even with
    one-character keys (a long team name breaks many names the same way), else the key's own path,
    so that the report names the file that holds the key."""
    worst: dict[tuple[str, Path], tuple[naming.DerivedName, str]] = {}
    for name in derived:
        reason = name.problem()
        if reason is None:
            continue
        blame: Path = name.source if name.keys and name.fits_with_short_keys() else ("team",)
        key = (name.kind, blame)
        if key not in worst or len(name.value) > len(worst[key][0].value):
            worst[key] = (name, reason)
    problems = []
    for (_, blame), (name, reason) in worst.items():
        keys = ", ".join(naming.shorten(k, 60) for k in name.keys)
        if blame == ("team",):
            component = f" or the key(s) {keys}" if name.keys else ""
            problems.append(Problem(("team",), f"{reason}; shorten the team name ({len(config.team)} characters){component}", config.team))
        else:
            problems.append(Problem(blame, f"{reason}; shorten the key(s) {keys} (or the team name, {len(config.team)} characters)"))
    return problems
