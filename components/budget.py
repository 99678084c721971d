"""MonthlyBudget: an AWS Budget for the stack's monthly spend, the figure the `monthly-budget` policy
checks the plan's estimate against.

The budget covers the cost of the team's tagged resources (`mlops:team`, activated as a cost allocation
tag) in the stack's region; AWS mails `emails` when the actual spend passes 80 % of it and when the
forecast passes 100 %.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from specs.cost import budget_cost_filters

TOKEN = "mlops:budget:MonthlyBudget"
ALERTS = (("ACTUAL", 80.0), ("FORECASTED", 100.0))
"""(notification type, percentage of the budget) of each mail."""


@dataclass(frozen=True, kw_only=True)
class MonthlyBudgetArgs:
    """Inputs of MonthlyBudget."""

    name: str
    account_id: str
    region: str
    team: str
    limit_usd: float
    emails: list[str]
    tags: dict[str, str]


class MonthlyBudget(pulumi.ComponentResource):
    """One monthly COST budget."""

    def __init__(self, name: str, args: MonthlyBudgetArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        notifications = [aws.budgets.BudgetNotificationArgs(
            comparison_operator="GREATER_THAN", notification_type=kind, threshold=percent, threshold_type="PERCENTAGE",
            subscriber_email_addresses=args.emails) for kind, percent in ALERTS] if args.emails else None
        self.budget = aws.budgets.Budget(
            f"{name}-budget", name=args.name, account_id=args.account_id, budget_type="COST", time_unit="MONTHLY",
            limit_amount=f"{args.limit_usd:.2f}", limit_unit="USD",
            cost_filters=[aws.budgets.BudgetCostFilterArgs(name=k, values=v) for k, v in budget_cost_filters(args.region, args.team).items()],
            notifications=notifications, tags=args.tags, opts=child,
        )
        self.register_outputs({"budgetName": self.budget.name})
