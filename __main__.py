"""The Pulumi program: `pulumi up -s <team>-<env>` runs this.

It reads the stack's config into one validated StackConfig (stacks/teams/<team>.yaml merged with
this stack's `mlops:overrides`) and composes the components. `mlops plan` runs this same file under
Pulumi's mock runtime.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (the program only assembles components from
the validated config; `mlops plan` runs this file, never the reverse).
"""
import pulumi

from components import stack
from specs.config import stack_files

mlops = pulumi.Config(stack_files.PROJECT)
aws_config = pulumi.Config("aws")
pulumi_config = {
    f"{stack_files.PROJECT}:team": mlops.get("team"),
    f"{stack_files.PROJECT}:environment": mlops.get("environment"),
    f"{stack_files.PROJECT}:overrides": mlops.get_object("overrides") or {},
    "aws:region": aws_config.get("region"),
    "aws:allowedAccountIds": aws_config.get_object("allowedAccountIds"),
}
try:
    config = stack_files.validate(stack_files.source_from_pulumi_config(pulumi.get_stack(), pulumi_config))
except stack_files.ConfigError as exc:
    # RunError: Pulumi prints the message alone, without a Python traceback.
    raise pulumi.RunError(str(exc)) from None

secret_key = config.monitoring.notifications.https_endpoint_secret
webhook = mlops.require_secret(secret_key) if secret_key else None
platform = stack.build(config, https_endpoint=webhook)

pulumi.export("jobRoleArns", platform.foundation.role_arns)
pulumi.export("buckets", {purpose: b.name for purpose, b in platform.foundation.buckets.items()})
pulumi.export("repositoryUrls", {image: r.repository_url for image, r in platform.foundation.repositories.items()})
pulumi.export("groundTruthUris", stack.ground_truth_uris(config))
pulumi.export("modelPackageGroups", {key: g.model_package_group_name for key, g in platform.registry.groups.items()})
pulumi.export("endpoints", {key: e.endpoint_name for key, e in platform.endpoints.items()})
pulumi.export("alertTopicArn", platform.monitoring.topic_arn)
if platform.training_cluster is not None:
    cluster = platform.training_cluster
    pulumi.export("trainingNamespace", cluster.namespace)
    # The outputs a `mode: existing` stack reads through its StackReference (a created cluster can serve other teams).
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("oidcIssuer", cluster.oidc_issuer)
if platform.tracking is not None:
    # The server training runs log to (the stack's own, or `shared_stack`'s); a sharing stack reads this output.
    pulumi.export("mlflowTrackingServerArn", platform.tracking.tracking_server_arn)
