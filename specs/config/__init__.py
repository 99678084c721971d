"""Stack configuration: the strict schema (`schema`), loading and merging the stack files
(`stack_files`), the cross-field rules (`rules`) and AWS instance types (`instance_types`).

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: only the program entry point reads `pulumi.Config`; this package
validates what it read)."""
