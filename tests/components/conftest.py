"""Fixtures for the component and policy tests.

`mock_pulumi` runs components under Pulumi's mock runtime with a fresh `Mocks` and `MockMonitor`
for every build: `mlops.plan.PlanMocks` (realistic ARNs and ids) and a `PlanMonitor` that also keeps
each registration's dependencies. `shipped_plan` gives the offline plan of a shipped stack (the real
`__main__.py` under mocks), computed once per session.

There is deliberately no `tests/components/__init__.py`: with one, pytest's default import mode puts
`tests/` on `sys.path` and imports this directory as the package `components`, shadowing the code
under test (`import specs.hosting` then fails).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pulumi
import pytest

from specs.naming import Namer
from mlops import plan as planning

ACCOUNT = "111111111111"
REGION = "eu-west-1"
PROJECT = "mlops"
STACK = "t-dev"
TAGS = {"CostCenter": "cc-1", "Owner": "team@example.com", "mlops:team": "t", "mlops:environment": "dev", "mlops:managed-by": "pulumi"}

C = TypeVar("C")


class RecordingMonitor(planning.PlanMonitor):
    """PlanMonitor (type, name, parent, camelCase inputs) plus each registration's `depends_on` and
    explicit provider reference (`<provider urn>::<provider id>`, "" for the default provider)."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.dependencies: dict[str, list[str]] = {}
        self.providers: dict[str, str] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.dependencies[response.urn] = list(request.dependencies)
        self.providers[response.urn] = request.provider
        return response


@dataclass
class Run(Generic[C]):
    """What one build registered."""

    component: C
    monitor: RecordingMonitor
    resources: list[planning.PlannedResource] = field(default_factory=list)

    def of_type(self, type_: str) -> list[planning.PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def names(self, type_: str) -> list[str]:
        return sorted(r.name for r in self.of_type(type_))

    def one(self, type_: str, name: str) -> planning.PlannedResource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        assert len(found) == 1, f"expected one {type_} named {name!r}; registered: {self.names(type_)}"
        return found[0]

    def children(self, parent_urn: str) -> list[planning.PlannedResource]:
        return [r for r in self.resources if r.parent == parent_urn]

    def depends_on(self, resource: planning.PlannedResource) -> list[str]:
        return self.monitor.dependencies[resource.urn]


class MockPulumi:
    """Builds components under fresh mocks; each `run` gets its own Mocks and monitor.

    Also carries the constants the tests share (test modules cannot import this conftest)."""

    account_id = ACCOUNT
    region = REGION
    tags = TAGS
    monitor: RecordingMonitor | None = None
    """The monitor of the latest `run` (also when the build raised)."""

    @staticmethod
    def urn(parent_type: str, type_: str, name: str) -> str:
        """A mock URN: the type part is `parentType$childType` (the direct parent's type only)."""
        return f"urn:pulumi:{STACK}::{PROJECT}::{parent_type}${type_}::{name}"

    @staticmethod
    def top_urn(type_: str, name: str) -> str:
        """URN of a resource built directly under the stack."""
        return f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack${type_}::{name}"

    def run(self, build: Callable[[], C]) -> Run[C]:
        mocks = planning.PlanMocks(account_id=self.account_id, region=self.region)
        monitor = self.monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False, monitor=monitor)
        built: list[C] = []

        def body() -> pulumi.Output[str] | None:
            built.append(build())
            return built[0].urn if isinstance(built[0], pulumi.Resource) else None

        # run_pulumi_func inside `test` waits for every outstanding registration, children included.
        pulumi.runtime.test(body)()
        return Run(component=built[0], monitor=monitor, resources=list(monitor.planned))

    def refused(self, build: Callable[[], Any]) -> list[tuple[str, str]]:
        """Run `build`, which must refuse its inputs with one `pulumi.InputPropertiesError` before anything
        registers; return the reported problems as (property path, reason), in the order reported."""
        with pytest.raises(pulumi.InputPropertiesError) as raised:
            self.run(build)
        assert self.monitor is not None and self.monitor.planned == [], "registered resources before refusing its inputs"
        problems = [(e["property_path"], e["reason"]) for e in raised.value.errors or []]
        # The message repeats every problem, so a plain traceback says what was wrong too.
        for path, reason in problems:
            assert f"{path}: {reason}" in raised.value.message
        return problems


@pytest.fixture
def mock_pulumi() -> Iterator[MockPulumi]:
    yield MockPulumi()


@pytest.fixture
def namer() -> Namer:
    return Namer(team="t", environment="dev", account_id=ACCOUNT)


@functools.cache
def _plan(name: str) -> planning.Plan:
    return planning.plan_stack(name)


@pytest.fixture(scope="session")
def shipped_plan() -> Callable[[str], planning.Plan]:
    """plan_stack(name), once per stack per session. Do not mix with `mock_pulumi` in one test:
    both configure Pulumi's global mock runtime."""
    return _plan
