"""`mlops experiment`: readouts of an endpoint's online experiments from what it captured.

- `captures`: the endpoint's capture records, per variant, from S3 (SageMaker's data capture) or a
  local environment's capture directory;
- `shadow`: the shadow analysis: champion and shadow on the same requests (pure);
- `readout`: the analysis for a stack's endpoint: captures, CloudWatch's latency and error figures,
  thresholds from the stack config, and the JSON and HTML reports.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the CLI runs the containers as processes).
"""
