"""`tracking.enabled` in a stack: the offline plan of the real program gets the MLflow server, and a
stack that shares another's server (or leaves tracking off) gets none."""
from __future__ import annotations

from mlops.plan import plan_stack

SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"


def test_a_stack_that_opts_in_plans_its_tracking_server_and_the_training_roles_access(edit):
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True}))
    plan = plan_stack("fraud-dev")
    [server] = plan.of_type(SERVER)
    assert server.name == "fraud-dev-tracking-server"
    assert server.inputs["trackingServerName"] == "fraud-dev-mlflow"
    assert server.inputs["artifactStoreUri"].startswith("s3://fraud-dev-artifacts-") and server.inputs["artifactStoreUri"].endswith("/mlflow")
    access = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "fraud-dev-tracking-training-access"]
    assert len(access) == 1


def test_off_by_default_and_none_when_shared(edit):
    assert plan_stack("fraud-dev").of_type(SERVER) == []
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True, "shared_stack": "acme/mlops/platform-prod"}))
    assert plan_stack("fraud-dev").of_type(SERVER) == []


def _train_environment(plan, model: str = "fraud-detector") -> dict | None:
    import json

    from specs.pipelines import retraining as pd

    [pipeline] = [r for r in plan.of_type("aws:sagemaker/pipeline:Pipeline") if model in r.name]
    return pd.training_step_arguments(json.loads(pipeline.inputs["pipelineDefinition"])).get("Environment")


def _register_properties(plan, model: str = "fraud-detector") -> dict:
    import json

    from specs.pipelines import retraining as pd

    [pipeline] = [r for r in plan.of_type("aws:sagemaker/pipeline:Pipeline") if model in r.name]
    return pd.step_arguments(json.loads(pipeline.inputs["pipelineDefinition"]), "Register")["CustomerMetadataProperties"]


def _access(plan, name: str) -> list[str]:
    import json

    [policy] = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == name]
    return [s["Resource"] for s in json.loads(policy.inputs["policy"])["Statement"]]


def test_the_pipelines_training_job_logs_to_the_stacks_own_server(edit):
    off = plan_stack("fraud-dev")
    assert _train_environment(off) is None  # off: the definition carries no Environment
    assert "mlops:mlflow_run" not in _register_properties(off)
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True}))
    plan = plan_stack("fraud-dev")
    [server] = plan.of_type(SERVER)
    arn = server.outputs["arn"]
    assert _train_environment(plan) == {"MLFLOW_TRACKING_URI": arn}
    # The registered version carries the run id, read from the evaluation's lineage when Register runs.
    assert _register_properties(plan)["mlops:mlflow_run"] == {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}, "Path": "lineage['mlops:mlflow_run']"}}
    assert _access(plan, "fraud-dev-tracking-training-access") == [[arn], [arn], ["arn:aws:s3:::fraud-dev-artifacts-111111111111/mlflow/*"]]


def test_a_sharing_stack_reads_the_owners_server_and_gives_its_training_role_access_to_it(edit):
    edit("teams/fraud.yaml", lambda d: d.update(tracking={"enabled": True, "shared_stack": "acme/mlops/platform-prod"}))
    plan = plan_stack("fraud-dev")
    # The StackReference is a read, not a registration; mlops.plan's stand-in for the owner's
    # mlflowTrackingServerArn output flows in.
    shared = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/platform-prod-mlflow"
    assert _train_environment(plan) == {"MLFLOW_TRACKING_URI": shared}
    assert _access(plan, "fraud-dev-tracking-training-access") == [[shared], [shared]]  # not the owner's bucket
    assert [r.type for r in plan.resources if r.name == "fraud-dev-tracking"] == ["mlops:tracking:SharedMlflowTracking"]


def test_eks_runs_log_to_the_server_with_the_pods_role(edit):
    from mlops import train

    edit("teams/pricing.yaml", lambda d: d.update(tracking={"enabled": True}))
    plan = plan_stack("pricing-prod")
    [server] = plan.of_type(SERVER)
    arn = server.outputs["arn"]
    [cron] = plan.of_type("kubernetes:batch/v1:CronJob")
    [container] = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "MLFLOW_TRACKING_URI", "value": arn} in container["env"]
    assert _access(plan, "pricing-prod-training-pod-tracking-access")[:2] == [[arn], [arn]]
    # `mlops train` renders the same Job: it knows the stack's own server's ARN from its name
    assert train.tracking_server_arn(plan.config) == arn
