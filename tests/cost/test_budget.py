"""Budgets: `cost.monthly_budget_usd` declares an AWS Budget (its request valid for botocore's model)
and the mandatory `monthly-budget` policy refuses a plan whose estimated maximum exceeds it, naming the
dominant lines; `mlops cost diff` shows what a stack-file change does to the estimate."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import botocore.session
from botocore.validate import ParamValidator
from typer.testing import CliRunner

from mlops.cli import app
from mlops.local.realize import api_calls
from mlops.plan import plan_stack
from specs import cost
from specs.policies import evaluate, monthly_budget

PRICE = 0.115  # USD an hour for every SageMaker component of the two types demo-local uses


def _prices(stacks: Path) -> None:
    entry = {c: {"usd_per_hour": PRICE, "usage_type": f"USE1-{c}", "publication_date": "2026-11-20T18:43:40Z"} for c in cost.COMPONENTS}
    (stacks / "prices.json").write_text(json.dumps({"source": "test", "queried_at": "2026-12-01T00:00:00+00:00", "currency": "USD", "ec2": {},
                                                    "sagemaker": {"us-east-1": {"ml.m5.large": entry, "ml.m5.xlarge": entry}}}))


def _budget(stacks: Path, usd: float) -> None:
    path = stacks / "teams" / "demo.yaml"
    path.write_text(path.read_text() + f"\ncost:\n  monthly_budget_usd: {usd}\n")


def test_a_budget_is_an_aws_budget_whose_request_is_valid(stacks: Path):
    _budget(stacks, 500)
    budget = next(r for r in plan_stack("demo-local").resources if r.type == monthly_budget.BUDGET)
    assert (budget.inputs["limitAmount"], budget.inputs["timeUnit"], budget.inputs["budgetType"]) == ("500.00", "MONTHLY", "COST")
    [call] = api_calls(budget, "us-east-1")
    model = botocore.session.get_session().get_service_model("budgets").operation_model("CreateBudget")
    report = ParamValidator().validate(call.params, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    assert call.params["Budget"]["CostFilters"] == {"Region": ["us-east-1"], "TagKeyValue": ["user:mlops:team$demo"]}


def test_the_budget_policy_passes_within_the_budget_and_refuses_above_it_naming_what_dominates(stacks: Path):
    _prices(stacks)
    # demo-local's maximum: 2 variants x 730 h + 2 hourly monitoring schedules x 730 h, all at 0.115 = 335.80 a month.
    _budget(stacks, 400)
    within = plan_stack("demo-local")
    assert [f for f in evaluate(within.resources) if f.policy == "monthly-budget"] == []
    _budget(stacks, 300)
    above = plan_stack("demo-local")
    [finding] = [f for f in evaluate(above.resources) if f.policy == "monthly-budget"]
    assert finding.mandatory and finding.resource == "demo-local-cost-budget"
    assert finding.message.startswith("estimated maximum $335.80 a month exceeds the budget $300.00")
    assert "demo-local-scoring/champion (1 x ml.m5.large) up to $83.95" in finding.message


def test_without_prices_the_budget_policy_refuses_nothing_it_cannot_price(stacks: Path):
    _budget(stacks, 1)
    assert [f for f in evaluate(plan_stack("demo-local").resources) if f.policy == "monthly-budget"] == []


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_cost_diff_shows_each_changed_line_and_the_monthly_delta(stacks: Path, tmp_path: Path):
    _prices(stacks)
    base = tmp_path / "base"
    shutil.copytree(stacks, base)
    _git("init", "-q", cwd=tmp_path)
    _git("add", "stacks", cwd=tmp_path)
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base", cwd=tmp_path)
    path = stacks / "teams" / "demo.yaml"
    path.write_text(path.read_text().replace("scoring:\n", "scoring:\n    autoscaling: {min_capacity: 1, max_capacity: 3}\n", 1))
    result = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-dir", str(base), "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.output)
    # Autoscaling covers the two production variants: each goes from 1 to 1-3 instances, up to +2 x 83.95.
    assert diff["monthly_usd"]["delta_high"] == round(4 * PRICE * 730, 2)
    assert {row["item"] for row in diff["changes"]} == {"demo-local-scoring/champion", "demo-local-scoring/challenger"}
    text = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-dir", str(base)])
    assert "1 x ml.m5.large: $83.95 -> 1-3 x ml.m5.large: $251.85 per month (+167.90)" in text.output
    from_git = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-ref", "HEAD", "--json"])
    assert from_git.exit_code == 0, from_git.output
    assert json.loads(from_git.output)["monthly_usd"] == diff["monthly_usd"]
    unknown = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-ref", "no-such-ref"])
    assert unknown.exit_code == 2 and "git cannot read revision 'no-such-ref'" in unknown.output


def _diff_as_new_stack(tmp_path: Path) -> dict:
    """`mlops cost diff --json` of demo-local against an empty stacks directory (a new stack)."""
    empty = tmp_path / "empty"
    (empty / "teams").mkdir(parents=True)
    result = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-dir", str(empty), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_new_stack_is_all_change_and_the_pull_request_jobs_print_the_diff(stacks: Path, tmp_path: Path):
    from mlops import ci

    _prices(stacks)
    diff = _diff_as_new_stack(tmp_path)
    assert diff["monthly_usd"]["base"] == [0.0, 0.0] and diff["monthly_usd"]["new"] == [167.9, 335.8]
    assert all(row["base"] is None for row in diff["changes"])
    out = tmp_path / "ci"
    for provider in ("github", "gitlab"):
        ci.generate(provider, out / provider)
    github = (out / "github" / ".github" / "workflows" / "pull-request.yml").read_text()
    assert '.venv/bin/mlops cost diff --stack "$STACK" --base-ref "$BASE_SHA"' in github
    gitlab = (out / "gitlab" / ".gitlab-ci.yml").read_text()
    assert '.venv/bin/mlops cost diff --stack "$stack" --base-ref "$CI_MERGE_REQUEST_DIFF_BASE_SHA"' in gitlab
    # Promotion prints what the pin changes before it commits it.
    assert '.venv/bin/mlops cost diff --stack "$TEAM-prod" --base-ref HEAD' in gitlab
    assert '.venv/bin/mlops cost diff --stack "$TEAM-prod" --base-ref HEAD' in (out / "github" / ".github" / "workflows" / "promote.yml").read_text()


def _unit_prices(stacks: Path) -> None:
    """demo-local's instance prices (as `_prices`) plus the storage and request unit prices."""
    _prices(stacks)
    doc = json.loads((stacks / "prices.json").read_text())
    doc["unit_prices"] = {"us-east-1": {
        "s3-standard-storage": {"usd": 0.023, "unit": "GB-Mo", "usage_type": "TimedStorage-ByteHrs", "publication_date": "x"},
        "s3-put-requests": {"usd": 0.000005, "unit": "Requests", "usage_type": "Requests-Tier1", "publication_date": "x"},
        "sagemaker-processing-volume": {"usd": 0.14, "unit": "GB-Mo", "usage_type": "USE1-Processing:VolumeUsage.gp2", "publication_date": "x"}}}
    (stacks / "prices.json").write_text(json.dumps(doc))


def test_plan_text_and_json_show_volumes_unit_prices_and_what_is_unpriced(stacks: Path, tmp_path: Path):
    _unit_prices(stacks)
    result = CliRunner().invoke(app, ["plan", "-s", "demo-local", "--quiet", "--json", str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    text = result.output.splitlines()
    assert any(line.split() == ["storage", "demo-local-artifacts-123456789012", "S3", "Standard", "$0.023", "per", "GB-month", "(usage", "not",
                                "declared)"] for line in text), result.output
    assert any("capture" in line and "$0.005 per 1,000 PUT requests (usage not declared)" in line for line in text)
    assert any("feature-store" in line and "unpriced: SageMaker Feature Store's online store" in line for line in text)
    assert any(line.split()[:2] == ["tracking", "demo-local-mlflow"] and "unpriced: SageMaker's MLflow tracking server" in line for line in text)
    assert "total         $167.90 - $341.40 per month for the priced lines only; 3 unpriced; 4 with usage not declared" in result.output
    [estimate] = json.loads((tmp_path / "plan.json").read_text())["cost"]
    assert estimate["monthly_usd"]["high"] == 341.4 and estimate["monthly_usd"]["usage_not_declared_lines"] == 4
    volume = next(ln for ln in estimate["lines"] if (ln["kind"], ln["item"]) == ("volume", "demo-local-scoring-quality"))
    assert (volume["low_usd"], volume["high_usd"], volume["rate"]) == (0.0, 2.8, None)
    capture = next(ln for ln in estimate["lines"] if ln["kind"] == "capture")
    assert (capture["rate"], capture["low_usd"], capture["unpriced"]) == ("$0.005 per 1,000 PUT requests", None, None)


def test_cost_diff_shows_a_new_stacks_unit_priced_lines_without_a_delta(stacks: Path, tmp_path: Path):
    _unit_prices(stacks)
    diff = _diff_as_new_stack(tmp_path)
    assert diff["monthly_usd"]["new"] == [167.9, 341.4] and diff["unpriced"]
    rows = {(row["kind"], row["item"]): row for row in diff["changes"]}
    bucket = rows["storage", "demo-local-artifacts-123456789012"]
    assert bucket["delta_high_usd"] is None and bucket["new"]["rate"] == "$0.023 per GB-month"
    assert rows["volume", "demo-local-scoring-drift"]["delta_high_usd"] == 2.8
    text = CliRunner().invoke(app, ["cost", "diff", "-s", "demo-local", "--base-dir", str(tmp_path / "empty")]).output
    assert "storage    demo-local-artifacts-123456789012: (none) -> S3 Standard: $0.023 per GB-month (usage not declared)" in text
    assert "volume     demo-local-scoring-drift: (none) -> 730 runs x 1 x 20 GB ML storage, <= 1 h each: $2.80 per month (+2.80)" in text
    assert "feature-store demo-local-transactions: (none) -> online store (Standard, OnDemand): writes, reads, storage: unpriced" in text
