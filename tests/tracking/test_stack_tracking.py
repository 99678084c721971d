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
