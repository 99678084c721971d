"""The operator CLI, `mlops` (`cli`), and what its commands do: offline plans (`plan`), dry runs (`dry_run`),
CI workflows (`ci`), new teams (`scaffold`), training runs (`train`), promotion and rollback (`promote/`),
feature ingestion (`features/`) and the local environment (`local/`).

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
