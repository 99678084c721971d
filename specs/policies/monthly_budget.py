"""monthly-budget: a stack's estimated monthly maximum stays within its budget.

A stack that sets `cost.monthly_budget_usd` declares an AWS Budget of that amount (components/budget.py).
This rule estimates the plan's monthly maximum with specs/cost.py from the price file
(`stacks/prices.json`, from `mlops prices refresh`) and refuses the plan when it exceeds the budget,
naming the lines that dominate. It judges what it can price: unpriced lines (no price file, or a type
it lacks) add nothing, so a plan is refused only when its priced part alone exceeds the budget, and the
message says how much was unpriced.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: the same rule runs over `mlops plan`'s offline plans and inside
`pulumi_policy`, which policypack/__main__.py wraps around it).
"""
from __future__ import annotations

from pathlib import Path

from specs import cost
from specs.config import stack_files
from specs.policies.core import MANDATORY, ResourceLike, StackRule, of_type

BUDGET = "aws:budgets/budget:Budget"
DOMINANT = 3


def prices_path() -> Path:
    """The price file the rule reads (the stacks directory's prices.json)."""
    return stack_files.stacks_dir() / "prices.json"


def check(resources: list[ResourceLike]) -> list[tuple[str, str]]:
    """(budget resource, message) for each budget the plan's estimated monthly maximum exceeds."""
    budgets = of_type(resources, BUDGET)
    if not budgets:
        return []
    prices = cost.load_prices(prices_path())
    found = []
    for budget in budgets:
        limit = float(budget.inputs["limitAmount"])
        filters = {f["name"]: f["values"] for f in budget.inputs.get("costFilters") or []}
        region = (filters.get("Region") or [""])[0]
        estimate = cost.estimate(budget.inputs.get("name", budget.name), region, list(resources), prices)
        if estimate.monthly_high <= limit:
            continue
        monthly = sorted((ln for ln in estimate.lines if ln.per == "month" and ln.high_usd), key=lambda ln: -(ln.high_usd or 0))
        top = ", ".join(f"{ln.item} ({ln.detail}) up to ${ln.high_usd:,.2f}" for ln in monthly[:DOMINANT])
        unpriced = f"; {len(estimate.unpriced)} line(s) unpriced and not counted" if estimate.unpriced else ""
        found.append((budget.name, f"estimated maximum ${estimate.monthly_high:,.2f} a month exceeds the budget ${limit:,.2f} "
                                   f"(prices queried {estimate.prices_from}); mostly {top}{unpriced}"))
    return found


RULE = StackRule("monthly-budget", "The estimated monthly maximum stays within cost.monthly_budget_usd", MANDATORY, check)
