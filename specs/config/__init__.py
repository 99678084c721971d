"""Stack configuration: the strict schema (`schema`), loading and merging the stack files
(`stack_files`), the cross-field rules (`rules`) and AWS instance types (`instance_types`).

Must not import: `pulumi`, its providers, or `components`."""
