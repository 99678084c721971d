"""mlops-monitor: drift and live-quality monitoring of the serving container's prediction capture.

The serving image's second entry point (`mlops_serving.monitor.main:main`). It reads what serving
captured (docs/contracts.md §3) and what training baselined (§4); it follows SageMaker Model
Monitor's bring-your-own-container contract, so it runs as a MonitoringSchedule, and it runs as a
Kubernetes CronJob or by hand with flags. Modules:

- `stats`: streaming bin counts, PSI, exact KS, moments (pure NumPy)
- `baseline`: baseline.json / model.tar.gz and the model's column order
- `captures`: finding and decoding capture records, a batch at a time
- `drift`, `quality`: the two jobs; `publish`: CloudWatch or Model Monitor metric files
- `report`: the HTML report; `storage`: local paths and S3 behind one interface
- `settings`, `main`: configuration and the CLI

Nothing heavy is imported here, so `mlops-monitor --help` answers at once.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_training` (it runs inside the serving container, whose image installs only
`mlops_serving` and the contracts).
"""
