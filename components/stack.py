"""Compose one team's platform in one environment from its validated StackConfig.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from specs.config.schema import StackConfig
from components.budget import MonthlyBudget, MonthlyBudgetArgs
from components.endpoint import Endpoint, EndpointArgs
from components.feature_store import FeatureStore, FeatureStoreArgs
from components.foundation import Foundation, FoundationArgs, image_uri
from components.model_registry import ModelRegistry, ModelRegistryArgs
from components.tracking import MlflowTracking, MlflowTrackingArgs, SharedMlflowTracking, SharedMlflowTrackingArgs
from components.monitoring import Monitoring, MonitoringArgs
from specs.naming import Namer
from specs import alarms
from specs.feature_schema import feature_schema
from components.drift_monitor import DriftMonitor, DriftMonitorArgs
from components.quality_monitor import QualityMonitor, QualityMonitorArgs
from components.retraining import Retraining, RetrainingArgs
from components.training_cluster import ModelTraining, TrainingCluster, TrainingClusterArgs
from specs.k8s import cron
from specs.pipelines import retraining as retraining_pipeline
from specs.pipelines.sources import capture_root, retraining_sources


@dataclass
class Platform:
    """The components of one stack, for the program's exports and for tests."""

    foundation: Foundation
    feature_store: FeatureStore
    registry: ModelRegistry
    monitoring: Monitoring
    endpoints: dict[str, Endpoint]
    retraining: dict[str, Retraining]
    drift_monitors: dict[str, DriftMonitor]
    quality_monitors: dict[str, QualityMonitor]
    """A live-quality job per endpoint that captures data and serves a registered model."""
    training_cluster: TrainingCluster | None = None
    """Kind "eks" only."""
    tracking: MlflowTracking | SharedMlflowTracking | None = None
    """With `tracking.enabled`: the stack's own MLflow tracking server, or its access to another stack's
    (`shared_stack`). Training runs log to it (the pipelines' training jobs and tuning trials, the EKS Jobs)."""


def namer_for(config: StackConfig) -> Namer:
    return Namer(team=config.team, environment=config.environment, account_id=config.aws.account_id)


def stack_image(config: StackConfig, image: str) -> str:
    """The URI of the team's `image` ("training" or "serving") at the digest, else the tag, the stack pins."""
    tags = {"training": config.images.training_tag, "serving": config.images.serving_tag}
    digests = {"training": config.images.training_digest, "serving": config.images.serving_digest}
    if image not in tags:
        raise ValueError(f"image {image!r}; allowed: {', '.join(tags)}")
    namer = namer_for(config)
    return image_uri(account_id=namer.account_id, region=config.aws.region, repository=namer.ecr_repository(image),
                     tag=tags[image], digest=digests[image])


def ground_truth_uris(config: StackConfig) -> dict[str, str]:
    """Where each model's ground-truth labels are to be written (the configured location, else the
    default in the features bucket): exported so that a labelling job knows where to put them."""
    namer = namer_for(config)
    return {key: model.ground_truth_uri or namer.ground_truth_uri(key) for key, model in config.model_registry.models.items()}


def training_hyperparameters(config: StackConfig, model: str) -> dict[str, str]:
    """The hyperparameters every run of `model` gets (retraining_pipeline.run_hyperparameters), as the
    stack's EKS job templates and `mlops train` both render them."""
    namer = namer_for(config)
    return retraining_pipeline.run_hyperparameters(
        model=model, spec=config.model_registry.models[model], training=config.training,
        artifacts_bucket=namer.bucket("artifacts"), model_package_group=namer.model_package_group(model),
        serving_image=stack_image(config, "serving"),
    )


def build(config: StackConfig, *, https_endpoint: pulumi.Input[str] | None = None) -> Platform:
    """Declare every resource of the stack. `https_endpoint` is the alert webhook secret, if configured."""
    namer = namer_for(config)
    foundation = _foundation(config, namer)
    feature_store = _feature_store(config, namer, foundation)
    monitoring = _monitoring(config, namer, foundation, https_endpoint)
    _budget(config)
    registry = _model_registry(config, namer, monitoring)
    serving_image = stack_image(config, "serving")
    endpoints = _endpoints(config, namer, foundation, monitoring, serving_image)
    drift_monitors = _drift_monitors(config, namer, foundation, endpoints, serving_image)
    quality_monitors = _quality_monitors(config, namer, foundation, endpoints, serving_image)
    training_image = stack_image(config, "training")
    tracking = _tracking(config, namer, foundation)
    tracking_arn = tracking.tracking_server_arn if tracking is not None else None
    retraining: dict[str, Retraining] = {}
    if config.training.kind == "eks":
        cluster = _training_cluster(config, namer=namer, foundation=foundation, feature_store=feature_store,
                                    training_image=training_image, tracking_server_arn=tracking_arn)
        return Platform(foundation=foundation, feature_store=feature_store, registry=registry, monitoring=monitoring,
                        endpoints=endpoints, retraining=retraining, drift_monitors=drift_monitors, quality_monitors=quality_monitors,
                        training_cluster=cluster, tracking=tracking)
    retraining = _retraining(config, namer, foundation, feature_store, monitoring,
                             training_image=training_image, serving_image=serving_image, tracking_server_arn=tracking_arn)
    return Platform(foundation=foundation, feature_store=feature_store, registry=registry, monitoring=monitoring,
                    endpoints=endpoints, retraining=retraining, drift_monitors=drift_monitors,
                    quality_monitors=quality_monitors, tracking=tracking)


def _tracking(config: StackConfig, namer: Namer, foundation: Foundation) -> MlflowTracking | SharedMlflowTracking | None:
    """Experiment tracking (issue #20), when the stack opts in: its own MLflow tracking server, or the
    server of `shared_stack`. The training role (training jobs and tuning trials) may log to it; an
    EKS cluster's pod role is given the same access by the TrainingCluster."""
    if not config.tracking.enabled:
        return None
    clients = {"training": foundation.job_roles["training"].name}
    if config.tracking.shared_stack is not None:
        return SharedMlflowTracking(f"{config.stack_name}-tracking", SharedMlflowTrackingArgs(
            stack=config.tracking.shared_stack, client_role_names=clients))
    return MlflowTracking(f"{config.stack_name}-tracking", MlflowTrackingArgs(
        namer=namer, config=config.tracking,
        artifacts_bucket_name=foundation.buckets["artifacts"].name, artifacts_bucket_arn=foundation.buckets["artifacts"].arn,
        kms_key_arn=foundation.key_arn,
        model_package_group_arns=[namer.model_package_group_arn(m, region=config.aws.region) for m in config.model_registry.models],
        client_role_names=clients,
        tags=config.all_tags(),
    ))


def _budget(config: StackConfig) -> MonthlyBudget | None:
    if config.cost.monthly_budget_usd is None:
        return None
    return MonthlyBudget(f"{config.stack_name}-cost", MonthlyBudgetArgs(
        name=f"{config.stack_name}-monthly", account_id=config.aws.account_id, region=config.aws.region, team=config.team,
        limit_usd=config.cost.monthly_budget_usd, emails=list(config.monitoring.notifications.emails), tags=config.all_tags(),
    ))


def _foundation(config: StackConfig, namer: Namer) -> Foundation:
    return Foundation(config.stack_name, FoundationArgs(
        namer=namer,
        region=config.aws.region,
        models=list(config.model_registry.models),
        network=config.network,
        ground_truth_uris=sorted(set(ground_truth_uris(config).values())),
        tags=config.all_tags(),
        force_destroy_buckets=config.environment in ("local", "dev"),
    ))


def _feature_store(config: StackConfig, namer: Namer, foundation: Foundation) -> FeatureStore:
    return FeatureStore(f"{config.stack_name}-features", FeatureStoreArgs(
        namer=namer,
        feature_groups=dict(config.feature_store.feature_groups),
        offline_bucket=foundation.buckets["features"].name,
        kms_key_arn=foundation.key_arn,
        role_arn=foundation.feature_store_role.arn,
        tags=config.all_tags(),
    ))


def _monitoring(config: StackConfig, namer: Namer, foundation: Foundation, https_endpoint: pulumi.Input[str] | None) -> Monitoring:
    return Monitoring(f"{config.stack_name}-monitoring", MonitoringArgs(
        namer=namer,
        region=config.aws.region,
        config=config.monitoring,
        endpoints=dict(config.endpoints),
        kms_key_arn=foundation.key_arn,
        model_gates={key: dict(config.model_registry.models[ep.model].gates) for key, ep in config.endpoints.items()
                     if ep.model in config.model_registry.models},
        https_endpoint=https_endpoint,
        tags=config.all_tags(),
    ))


def _model_registry(config: StackConfig, namer: Namer, monitoring: Monitoring) -> ModelRegistry:
    return ModelRegistry(f"{config.stack_name}-registry", ModelRegistryArgs(
        namer=namer,
        region=config.aws.region,
        models=dict(config.model_registry.models),
        notification_topic_arn=monitoring.topic_arn,
        cross_account_readers=list(config.model_registry.cross_account_readers),
        tags=config.all_tags(),
    ))


def _endpoints(config: StackConfig, namer: Namer, foundation: Foundation, monitoring: Monitoring,
               serving_image: str) -> dict[str, Endpoint]:
    """One Endpoint per configured endpoint, rolled back by its own alarms."""
    endpoints = {}
    for key, endpoint in config.endpoints.items():
        specs = [s for s in monitoring.specs if s.endpoint == key]
        endpoints[key] = Endpoint(f"{config.stack_name}-{key}", EndpointArgs(
            namer=namer,
            region=config.aws.region,
            key=key,
            config=endpoint,
            image=serving_image,
            network=config.network,
            rollback_alarms=alarms.rollback_alarm_names(specs),
            depends_on=[foundation, *(monitoring.alarms[s.name] for s in specs)],
            feature_group=config.feature_store.feature_groups[endpoint.feature_lookup.feature_group] if endpoint.feature_lookup else None,
            tags=config.all_tags(),
        ))
    return endpoints


def _drift_monitors(config: StackConfig, namer: Namer, foundation: Foundation, endpoints: dict[str, Endpoint],
                    serving_image: str) -> dict[str, DriftMonitor]:
    """A drift job per endpoint that captures data, comparing traffic with the champion's training baseline."""
    drift_monitors = {}
    for key, endpoint in config.endpoints.items():
        if not endpoint.data_capture.enabled:
            continue  # nothing captured, nothing to compare
        champion = next(iter(endpoint.production_variants().values()))
        drift_monitors[key] = DriftMonitor(f"{config.stack_name}-{key}-drift", DriftMonitorArgs(
            namer=namer,
            key=key,
            endpoint_name=endpoints[key].endpoint_name,
            baseline_model_data_url=champion.model_data_url,
            image=serving_image,
            schedule=config.monitoring.drift_schedule,
            instance_type=config.monitoring.drift_instance_type,
            psi_threshold=config.monitoring.thresholds.drift_psi,
            role_arn=foundation.role_arns["monitoring"],
            kms_key_arn=foundation.key_arn,
            capture_bucket=foundation.buckets["capture"].name,
            network=config.network,
            tags=config.all_tags(),
        ))
    return drift_monitors


def _quality_monitors(config: StackConfig, namer: Namer, foundation: Foundation, endpoints: dict[str, Endpoint],
                      serving_image: str) -> dict[str, QualityMonitor]:
    """A live-quality job per endpoint that captures data and serves a registered model: it joins the
    model's ground truth with the captures and feeds the live-quality alarms."""
    quality_monitors = {}
    truth = ground_truth_uris(config)
    for key, endpoint in config.endpoints.items():
        if not endpoint.data_capture.enabled or endpoint.model not in config.model_registry.models:
            continue  # no captures or no labels: nothing to join
        quality_monitors[key] = QualityMonitor(f"{config.stack_name}-{key}-quality", QualityMonitorArgs(
            namer=namer,
            key=key,
            endpoint_name=endpoints[key].endpoint_name,
            captures_root=capture_root(namer, key).rsplit("/", 1)[0],
            ground_truth_uri=truth[endpoint.model],
            task=config.model_registry.models[endpoint.model].task,
            image=serving_image,
            schedule=config.monitoring.quality_schedule,
            instance_type=config.monitoring.drift_instance_type,
            role_arn=foundation.role_arns["monitoring"],
            kms_key_arn=foundation.key_arn,
            report_bucket=foundation.buckets["capture"].name,
            network=config.network,
            tags=config.all_tags(),
        ))
    return quality_monitors


def _retraining(config: StackConfig, namer: Namer, foundation: Foundation, feature_store: FeatureStore, monitoring: Monitoring,
                *, training_image: str, serving_image: str,
                tracking_server_arn: pulumi.Output[str] | None = None) -> dict[str, Retraining]:
    """Kind "sagemaker": a retraining pipeline per trainable model that has a trigger."""
    retraining: dict[str, Retraining] = {}
    for model in _trainable(config):  # training reads the offline store; without one there is nothing to retrain on
        spec = config.model_registry.models[model]
        group = feature_store.feature_groups[spec.feature_group]
        # The drift and live-quality alarms of every endpoint serving this model start a retrain.
        triggers = [
            s.name for s in monitoring.specs
            if config.endpoints[s.endpoint].model == model and alarms.watches_the_model(s)
        ]
        if not triggers and not config.training.schedule:
            continue
        retraining[model] = Retraining(f"{config.stack_name}-{model}-retraining", RetrainingArgs(
            namer=namer,
            region=config.aws.region,
            model=model,
            spec=spec,
            training=config.training,
            feature_schema=feature_schema(config, model),
            training_image=training_image,
            serving_image=serving_image,
            pipeline_role_arn=foundation.role_arns["pipeline"],
            training_role_arn=foundation.role_arns["training"],
            kms_key_arn=foundation.key_arn,
            artifacts_bucket=foundation.buckets["artifacts"].name,
            features_uri=group.offline_store_config.apply(_offline_uri),
            sources=retraining_sources(config, namer, model),
            trigger_alarms=triggers,
            network=config.network,
            tracking_server_arn=tracking_server_arn,
            tags=config.all_tags(),
        ), opts=pulumi.ResourceOptions(depends_on=list(monitoring.alarms.values())))
    return retraining


def _trainable(config: StackConfig) -> list[str]:
    """Models whose feature group exports an offline store (what training reads)."""
    return [
        model for model, spec in config.model_registry.models.items()
        if spec.feature_group in config.feature_store.feature_groups
        and config.feature_store.feature_groups[spec.feature_group].offline_store
    ]


def _training_cluster(config: StackConfig, *, namer: Namer, foundation: Foundation, feature_store: FeatureStore,
                      training_image: str, tracking_server_arn: pulumi.Output[str] | None = None) -> TrainingCluster:
    """Kind "eks": the GPU cluster (or the team's slice of a shared one) and a job template per model.
    A schedule becomes a CronJob per model; drift and quality alarms notify (they start SageMaker
    Pipelines only with kind "sagemaker")."""
    eks = config.training.eks
    assert eks is not None  # the config model requires it with kind "eks"
    artifacts = namer.bucket("artifacts")  # the name Foundation gives the bucket: plain, so job templates are plain data
    schedule = cron.cron_for_kubernetes(config.training.schedule) if config.training.schedule else None
    models = {}
    for model in _trainable(config):
        spec = config.model_registry.models[model]
        models[model] = ModelTraining(
            feature_schema=feature_schema(config, model),
            train_uri=feature_store.feature_groups[spec.feature_group].offline_store_config.apply(_offline_uri),
            hyperparameters=training_hyperparameters(config, model),
            schedule=schedule,
        )
    return TrainingCluster(f"{config.stack_name}-training", TrainingClusterArgs(
        namer=namer,
        region=config.aws.region,
        config=eks,
        network=config.network,
        training_image=training_image,
        kms_key_arn=foundation.key_arn,
        features_bucket_arn=foundation.buckets["features"].arn,
        artifacts_bucket_arn=foundation.buckets["artifacts"].arn,
        artifacts_bucket=artifacts,
        repository_arns=[r.arn for r in foundation.repositories.values()],
        model_package_group_arns=[namer.model_package_group_arn(m, region=config.aws.region) for m in config.model_registry.models],
        max_runtime_seconds=config.training.max_runtime_hours * 3600,
        models=models,
        tracking_server_arn=tracking_server_arn,
        cluster_autoscaler_digest=config.images.cluster_autoscaler_digest,
        tracking_artifacts_bucket_arn=foundation.buckets["artifacts"].arn if config.tracking.shared_stack is None else None,
        tags=config.all_tags(),
    ))


def _offline_uri(offline) -> str:
    """Where Feature Store writes the group's Parquet (resolved once the group exists)."""
    storage = offline.s3_storage_config
    return storage.resolved_output_s3_uri or storage.s3_uri
