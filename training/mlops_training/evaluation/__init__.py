"""The Evaluate step's core (`mlops-train evaluate`, issue #16): candidate and champions on one shared slice.

- `shared_slice`: the dataset's held-back, most recent split, its identity (rows, time range, hash) and
  the data validation of the whole dataset;
- `models`: finding and loading a model artifact (local or S3) and scoring the slice with it;
- `bootstrap`: metrics with paired bootstrap confidence intervals, and candidate - champion differences;
- `gates`: the thresholds, regression and validation gates;
- `cli`: the command line, evaluation.json and the model-quality documents.

Must not import: anything of the project but `mlops_contracts` and `mlops_training` (runs inside the container).
"""
