"""Benchmark (not a test): plan N generated team stacks offline, report seconds per stack.

Each generated team is a copy of the shipped fraud team in prod (A/B endpoint, autoscaling, canary
guardrails, VPC: the largest shipped shape), under its own name and account. All stacks are planned
in one process, as `mlops plan --all` does, so the one-off import of pulumi_aws is reported apart.

    .venv/bin/python benchmarks/plan_stacks.py --sizes 10 100

Must not import: `pulumi` or its providers, `components` or `policypack` directly: it plans through
`mlops.plan`, as `mlops plan --all` does.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def generate(target: Path, count: int) -> list[str]:
    """Write `count` team stacks into `target` (a stacks directory); return their names."""
    (target / "teams").mkdir(parents=True)
    base = (ROOT / "stacks" / "teams" / "fraud.yaml").read_text()
    prod = yaml.safe_load((ROOT / "stacks" / "Pulumi.fraud-prod.yaml").read_text())
    names = []
    for i in range(count):
        team = f"team{i:03d}"
        account = f"{400000000000 + i}"
        (target / "teams" / f"{team}.yaml").write_text(base)
        doc = json.loads(json.dumps(prod).replace("fraud-prod-artifacts-333333333333", f"{team}-prod-artifacts-{account}"))
        doc["config"]["mlops:team"] = team
        doc["config"]["aws:allowedAccountIds"] = [account]
        (target / f"Pulumi.{team}-prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        names.append(f"{team}-prod")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()

    started = time.perf_counter()
    from mlops.plan import plan_stack  # imports pulumi and pulumi_aws

    import_seconds = time.perf_counter() - started
    print(f"import of the program's modules: {import_seconds:.2f} s (once per process)")
    print(f"{'stacks':>7} {'resources':>10} {'total s':>9} {'s/stack':>9} {'first s':>8} {'median s':>9}")
    for size in args.sizes:
        workdir = Path(tempfile.mkdtemp(prefix="plan-bench-"))
        try:
            names = generate(workdir / "stacks", size)
            os.environ["MLOPS_STACKS_DIR"] = str(workdir / "stacks")
            times, resources = [], 0
            t0 = time.perf_counter()
            for name in names:
                t = time.perf_counter()
                plan = plan_stack(name)
                times.append(time.perf_counter() - t)
                resources += len(plan.resources)
            total = time.perf_counter() - t0
            median = sorted(times)[len(times) // 2]
            print(f"{size:>7} {resources:>10} {total:>9.2f} {total / size:>9.3f} {times[0]:>8.2f} {median:>9.3f}")
        finally:
            shutil.rmtree(workdir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
