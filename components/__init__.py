"""Pulumi ComponentResources, one module per concept (`foundation`, `bucket`, `feature_store`,
`model_registry`, `endpoint`, `monitoring`, `drift_monitor`, `retraining`, `training_cluster`), composed
into one team's platform by `stack`; `_validation` holds the input checks they share.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy).
"""
