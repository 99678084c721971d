"""`mlops local`: one stack on this machine, against an embedded AWS: `aws_server` (moto's server
plus the Feature Store runtime of `featurestore`), `realize` (the plan as API calls), `environment`
(processes and state), `router` (InvokeEndpoint), `alarm_eval`, `events` (EventBridge and pipelines),
`stack` (the lifecycle) and `demo` / `demo_data`.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
