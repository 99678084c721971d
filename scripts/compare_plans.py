#!/usr/bin/env python3
"""Compare two `mlops plan --all --json` files and say whether a refactor changed what gets built.

    python scripts/compare_plans.py BEFORE.json AFTER.json

Resources are matched by URN (registration order is not part of the plan's meaning) and policy
findings are compared as a sorted list. Exits 0 when the plans are identical, 1 with a readable
report of every difference when they are not, 2 when a file cannot be read as a plan.

Must not import: anything of the project (`specs`, `components`, `mlops`, `mlops_contracts`, the containers'
packages), nor `pulumi`: it compares plans made on two different commits, so it must not depend on the code
of either.
"""
from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

USAGE = "usage: compare_plans.py BEFORE.json AFTER.json"


class PlanFileError(ValueError):
    """A file that is not the JSON `mlops plan --json` writes."""


def load_plans(path: Path) -> dict[str, Any]:
    """The plan document at `path`, checked for the keys `mlops plan --json` writes."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PlanFileError(f"{path}: cannot read a JSON plan ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("plans"), list):
        raise PlanFileError(f"{path}: not an `mlops plan --json` file (expected an object with a 'plans' list)")
    for index, plan in enumerate(doc["plans"]):
        missing = [k for k in ("stack", "resources") if not isinstance(plan, dict) or k not in plan]
        if missing:
            raise PlanFileError(f"{path}: plans[{index}] has no {', '.join(missing)}")
    return doc


def _dump(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()


def _diff(label: str, before: Any, after: Any) -> list[str]:
    """One block: a unified diff of two JSON values headed by `label`; none when they are equal."""
    if before == after:
        return []
    lines = difflib.unified_diff(_dump(before), _dump(after), "before", "after", lineterm="", n=2)
    return ["\n".join([f"{label}:", *(f"    {line}" for line in lines)])]


def _sorted_findings(plan: dict[str, Any]) -> list[Any]:
    return sorted(plan.get("policyFindings") or [], key=lambda f: json.dumps(f, sort_keys=True))


def compare_stack(stack: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every difference between one stack's two plans, one readable block per difference."""
    old = {r["urn"]: r for r in before["resources"]}
    new = {r["urn"]: r for r in after["resources"]}
    report = [f"{stack}: resource only before: {urn}" for urn in sorted(old.keys() - new.keys())]
    report += [f"{stack}: resource only after: {urn}" for urn in sorted(new.keys() - old.keys())]
    for urn in sorted(old.keys() & new.keys()):
        report += _diff(f"{stack}: {urn} changed", old[urn], new[urn])
    for key in ("resourceCount", "countByType"):
        report += _diff(f"{stack}: {key} changed", before.get(key), after.get(key))
    report += _diff(f"{stack}: policy findings changed", _sorted_findings(before), _sorted_findings(after))
    return report


def compare(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every difference between two plan documents; an empty list means identical plans."""
    old = {p["stack"]: p for p in before["plans"]}
    new = {p["stack"]: p for p in after["plans"]}
    report = [f"stack only before: {s}" for s in sorted(old.keys() - new.keys())]
    report += [f"stack only after: {s}" for s in sorted(new.keys() - old.keys())]
    report += _diff("failed stacks changed", before.get("failed"), after.get("failed"))
    for stack in sorted(old.keys() & new.keys()):
        report += compare_stack(stack, old[stack], new[stack])
    return report


def main(argv: list[str]) -> int:
    """Entry point: prints the differences (or a one-line summary) and returns the exit status."""
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        before, after = (load_plans(Path(a)) for a in argv)
    except PlanFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    report = compare(before, after)
    if report:
        print("\n".join(report))
        print(f"plans differ ({len(report)} difference(s))", file=sys.stderr)
        return 1
    resources = sum(len(p["resources"]) for p in before["plans"])
    print(f"plans identical: {len(before['plans'])} stack(s), {resources} resource(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
