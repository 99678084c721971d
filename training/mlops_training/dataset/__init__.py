"""Point-in-time training sets from the offline feature store and label events (issue #15, items 3 and 4).

- `query`: the one SQL text both engines run;
- `build`: label events in, dataset (`train/`, `validation/` Parquet) and manifest out;
- `duckdb_engine` / `athena_engine`: where the SQL runs;
- `manifest`: the manifest and the time split training reads from it;
- `labels`: captured requests + SageMaker ground truth -> label events;
- `cli`: `mlops-train dataset ...`.

Must not import: anything of the project but `mlops_contracts`: no `pulumi` or its providers, `components`,
`specs`, `mlops` or `mlops_serving` (it runs inside the training container, whose image installs only
`mlops_training` and the contracts).
"""
