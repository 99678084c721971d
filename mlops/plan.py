"""Offline plans: run the real Pulumi program (`__main__.py`) under Pulumi's mock runtime.

No Pulumi CLI, plugins or credentials are needed: the program registers its resources with a mock
monitor that records each registration (type, name, parent, inputs). What it records is what
`pulumi up` would ask the AWS provider to create, less the values only AWS knows (ids, generated ARNs,
which the mocks fill with realistic stand-ins).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
from __future__ import annotations

import hashlib
import json
import runpy
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from specs.config import stack_files
from specs.config.schema import StackConfig

PROGRAM = stack_files.ROOT / "__main__.py"
SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registers."""

    urn: str
    type: str
    name: str
    parent: str | None
    """The parent's URN; None for children of the stack."""
    custom: bool
    """False for component resources (our `mlops:*` types)."""
    inputs: dict[str, Any]
    """Inputs as the provider receives them (camelCase keys)."""
    id: str = ""
    """The id the mocks gave it (stands for the id AWS would assign)."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The mocks' outputs: the inputs plus stand-ins for computed values (arn, keyId...)."""

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent, "custom": self.custom, "inputs": self.inputs}


@dataclass
class Plan:
    """Everything one stack would create."""

    stack: str
    config: StackConfig
    resources: list[PlannedResource]
    seconds: float = 0.0
    findings: list[Any] = field(default_factory=list)
    """Policy pack results (specs.policies.Finding)."""

    def by_type(self) -> Counter[str]:
        return Counter(r.type for r in self.resources)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def to_json(self) -> dict[str, Any]:
        """The plan as data, resources by URN and findings sorted, so that the same stack always gives
        the same bytes (the mock engine registers children in no fixed order)."""
        findings = sorted((f.to_json() for f in self.findings), key=lambda f: (f["policy"], f["resource"], f["message"]))
        return {
            "stack": self.stack,
            "resourceCount": len(self.resources),
            "countByType": dict(sorted(self.by_type().items())),
            "resources": [r.to_json() for r in sorted(self.resources, key=lambda r: r.urn)],
            "policyFindings": findings,
        }


class PlanMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also keeps each registration's parent and inputs, in registration order."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.planned: list[PlannedResource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            registration = self.resources.get(response.urn)
            self.planned.append(PlannedResource(
                id=registration.id if registration else "",
                outputs=_plain(dict(registration.state)) if registration else {},
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent if request.parent and "::pulumi:pulumi:Stack::" not in request.parent else None,
                custom=bool(request.custom),
                inputs=_plain(inputs),
            ))
        return response


def _plain(value: Any) -> Any:
    """Drop Pulumi's wire markers so a plan serialises as plain JSON. Assets and archives (a Lambda
    function's code) become {"archive": {name: {"file": path from the repository root, "sha256": ...}}}:
    stable across checkouts, and enough for `mlops local` to build the zip."""
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _plain(asset) for name, asset in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        path = Path(value.path).resolve()
        shown = path.relative_to(stack_files.ROOT) if path.is_relative_to(stack_files.ROOT) else path
        return {"file": str(shown), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class PlanMocks(pulumi.runtime.Mocks):
    """Provider stand-ins: echo inputs and fill the computed outputs components read (ARNs, ids)."""

    def __init__(self, *, account_id: str, region: str):
        self.account_id = account_id
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.inputs.get("name"), "outputs": self._stack_outputs(str(args.inputs.get("name")))}
        outputs = dict(args.inputs)
        physical = _physical_name(args.typ, args.inputs) or args.name
        outputs.setdefault("arn", self._arn(args.typ, physical))
        if args.typ == "aws:kms/key:Key":
            outputs["keyId"] = f"mock-key-{args.name}"
        if args.typ == "aws:ecr/repository:Repository":
            outputs["repositoryUrl"] = f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{physical}"
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.setdefault("bucket", physical)
        if args.typ == "aws:eks/cluster:Cluster":
            # What EKS computes: the API endpoint, its CA and the cluster's OIDC issuer (for IRSA).
            outputs["endpoint"] = f"https://{physical}.mock.{self.region}.eks.amazonaws.com"
            outputs["certificateAuthority"] = {"data": "T0ZGTElORS1QTEFO"}
            outputs["identities"] = [{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{physical.upper()}"}]}]
        # Like AWS for most types (an S3 bucket's id is its name), so policies can join resources by id.
        return physical, outputs

    def _stack_outputs(self, stack: str) -> dict[str, Any]:
        """Another stack's outputs cannot be read offline: stand-ins of the right shape for the outputs a
        shared EKS cluster's stack exports (components.training_cluster.EXISTING_CLUSTER_OUTPUTS) and a
        shared MLflow tracking server's (components.tracking.ARN_OUTPUT)."""
        issuer = f"oidc.eks.{self.region}.amazonaws.com/id/OFFLINE-PLAN"
        cluster = stack.rsplit("/", 1)[-1]
        return {
            "mlflowTrackingServerArn": f"arn:aws:sagemaker:{self.region}:{self.account_id}:mlflow-tracking-server/{cluster}-mlflow",
            "clusterName": cluster,
            "kubeconfig": SECRET_PLACEHOLDER,
            "oidcProviderArn": f"arn:aws:iam::{self.account_id}:oidc-provider/{issuer}",
            "oidcIssuer": f"https://{issuer}",
        }

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:root", "userId": "mock"}, None
        raise NotImplementedError(f"the program calls {args.token}, which the offline plan cannot answer")

    def _arn(self, typ: str, name: str) -> str:
        service, _, kind = typ.partition("/")
        service = service.split(":")[1]
        kind = kind.split(":")[0]
        if service == "s3":
            return f"arn:aws:s3:::{name}"
        if service == "iam":
            return f"arn:aws:iam::{self.account_id}:{kind}/{name}"
        if service == "sns":
            return f"arn:aws:sns:{self.region}:{self.account_id}:{name}"
        if service == "sagemaker":
            kind = {"modelPackageGroup": "model-package-group", "featureGroup": "feature-group", "endpointConfiguration": "endpoint-config",
                    "mlflowTrackingServer": "mlflow-tracking-server"}.get(kind, kind)
        if service == "sqs":
            return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"
        if service == "lambda" and kind == "function":
            return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
        if service == "cloudwatch" and kind == "eventRule":
            return f"arn:aws:events:{self.region}:{self.account_id}:rule/{name}"
        if service == "cloudwatch" and kind == "logGroup":
            return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{name}"
        if service == "cloudwatch" and kind == "metricAlarm":
            return f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}"
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{kind.lower()}/{name}"


_NAME_INPUTS = ("bucket", "name", "featureGroupName", "modelPackageGroupName", "endpointConfigName", "dashboardName", "trackingServerName")


def _physical_name(typ: str, inputs: dict[str, Any]) -> str | None:
    for key in _NAME_INPUTS:
        value = inputs.get(key)
        if isinstance(value, str):
            return value
    return None


def _config_strings(pulumi_config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the Pulumi engine hands it to a program: strings, JSON for objects."""
    values, secrets = {}, []
    for key, value in pulumi_config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER  # ciphertext needs the stack's secrets provider; offline we keep a marker
            secrets.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    return values, secrets


def plan_stack(name: str) -> Plan:
    """Validate stack `name` and run the program for it offline. Raises ConfigError on bad config."""
    started = time.perf_counter()
    source = stack_files.load_source(name)
    config = stack_files.validate(source)  # fail with the config report before any resource exists
    mocks = PlanMocks(account_id=config.aws.account_id, region=config.aws.region)
    monitor = PlanMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=stack_files.PROJECT, stack=name, preview=False, monitor=monitor)
    values, secrets = _config_strings(source.pulumi_config)
    pulumi.runtime.set_all_config(values, secrets)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    return Plan(stack=name, config=config, resources=list(monitor.planned), seconds=time.perf_counter() - started)
