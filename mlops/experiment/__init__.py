"""Online-experiment readouts of a live endpoint: `mlops experiment shadow` and `mlops experiment ab`.

`stats` holds the statistics, `captures` reads captures and ground truth, `shadow` and `ab` build the
readouts, `report` renders their HTML.

Must not import: `pulumi` or its providers, `components`, `mlops_training`, `mlops_serving`.
"""
