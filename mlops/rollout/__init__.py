"""`mlops rollout`: an approved model version rolls itself out, one guarded step per call, each step a
pin change in the stack file (issue #17 item 1).

One module per job, lowest first; a module imports only those above it in this list:

- `state`: the rollout's phases and the next step, decided from plain data (pure);
- `edits`: the comment-preserving edits of `mlops:overrides.endpoints.<e>.traffic` in a stack file;
- `flow`: one advance: observe, decide, edit the stack file under its lock, apply, record in the audit log;
- `backends`: where a step is observed and applied: the running local environment, or AWS with
  `pulumi up` through the Automation API.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
