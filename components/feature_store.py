"""FeatureStore: SageMaker Feature Groups with an encrypted online store and an S3/Glue offline store.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from specs.config.schema import FeatureGroupConfig
from specs.naming import Namer

TOKEN = "mlops:feature_store:FeatureStore"


@dataclass(frozen=True, kw_only=True)
class FeatureStoreArgs:
    """Inputs of FeatureStore."""

    namer: Namer
    feature_groups: dict[str, FeatureGroupConfig]
    offline_bucket: pulumi.Input[str]
    """Bucket name of the offline store (Parquet under `s3://<bucket>/offline-store/`)."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts the online store and the offline store's objects."""
    role_arn: pulumi.Input[str]
    """Role Feature Store assumes to write the offline store and its Glue table."""
    tags: dict[str, str]


class FeatureStore(pulumi.ComponentResource):
    """One SageMaker Feature Group per configured group."""

    feature_groups: dict[str, aws.sagemaker.FeatureGroup]
    """By config key."""

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN, name, None, opts)
        self.feature_groups = {}
        for key, group in args.feature_groups.items():
            online = None
            if group.online_store.enabled:
                online = {"enable_online_store": True, "security_config": {"kms_key_id": args.kms_key_arn}}
                if group.online_store.ttl_hours is not None:
                    online["ttl_duration"] = {"unit": "Hours", "value": group.online_store.ttl_hours}
            offline = None
            if group.offline_store:
                offline = {
                    "s3_storage_config": {
                        "s3_uri": pulumi.Output.concat("s3://", args.offline_bucket, "/offline-store"),
                        "kms_key_id": args.kms_key_arn,
                    },
                    "disable_glue_table_creation": False,
                }
            self.feature_groups[key] = aws.sagemaker.FeatureGroup(
                f"{name}-{key}",
                feature_group_name=args.namer.feature_group(key),
                description=group.description or None,
                record_identifier_feature_name=group.record_identifier,
                event_time_feature_name=group.event_time,
                feature_definitions=[{"feature_name": f.name, "feature_type": f.type} for f in group.features],
                online_store_config=online,
                offline_store_config=offline,
                role_arn=args.role_arn,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"featureGroupNames": {k: g.feature_group_name for k, g in self.feature_groups.items()}})
