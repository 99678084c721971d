"""`mlops features`: feature-store operations on a stack's feature groups (ingestion).

The rules (validation, the offline-store layout) are pure and live in `specs/features`; this package
does the I/O: reading sources, PutRecord to the online store, Parquet to the offline store.

Must not import: `mlops_training`, `mlops_serving` or `torch` (the operator CLI runs the containers as
processes, through their entry points).
"""
