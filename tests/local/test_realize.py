"""Every planned resource's API calls (what `mlops local` sends) are valid requests by botocore's models."""
from __future__ import annotations

import boto3
import pytest
from botocore.validate import ParamValidator

from specs.config import stack_files
from mlops.local.realize import CONVERTERS, NOT_AWS, api_calls
from mlops.plan import plan_stack


@pytest.fixture(scope="module")
def plans():
    return {name: plan_stack(name) for name in stack_files.list_stacks()}


def test_every_planned_resource_type_has_a_converter(plans):
    types = {r.type for plan in plans.values() for r in plan.resources if r.custom and not r.type.startswith(NOT_AWS)}
    assert types - set(CONVERTERS) == set()
    assert {"aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup"} <= types  # the EKS training stacks are covered


def test_every_api_call_is_valid_for_botocores_service_model(plans):
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    clients, problems, checked = {}, [], 0
    for name, plan in plans.items():
        for resource in plan.resources:
            for call in api_calls(resource, plan.config.aws.region):
                client = clients.setdefault(call.service, session.client(call.service))
                operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[call.operation])
                report = ParamValidator().validate(call.params, operation.input_shape)
                if report.has_errors():
                    problems.append(f"{name} {resource.name} {call.operation}: {report.generate_report()}")
                checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 300


def test_components_make_no_api_calls(plans):
    components = [r for plan in plans.values() for r in plan.resources if not r.custom]
    assert components and all(api_calls(r, "us-east-1") == [] for r in components)
