"""The evidently side of the drift benchmark; runs in its own venv (evidently is not a project
dependency) and imports nothing of ours: it reads the benchmark's arrays and baseline.json.

    EVIDENTLY_PYTHON runner.py WORKDIR MODE OUT.json

MODE:
  default       DataDriftPreset() on the training frame vs the current frame (what users run)
  psi-own-bins  DataDriftPreset(method="psi"): evidently's PSI on its own bins
  psi-baseline  DataDriftPreset with a per-column custom stat test: the training baseline's bins,
                then evidently's own PSI (`legacy.calculations.stattests.psi._psi`)
  ks-sample     DataDriftPreset(method="ks") with the baseline's 10,000-value samples as reference:
                evidently's KS test (scipy's ks_2samp p-value)

Must not import: anything of the project, nor `pulumi`: it runs in evidently's own venv, where the project
is not installed.
"""
from __future__ import annotations

import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    workdir, mode, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    warnings.filterwarnings("ignore")
    from evidently import Report
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType
    from evidently.presets import DataDriftPreset

    baseline = json.loads((workdir / "baseline.json").read_text())
    names = list(baseline["features"])
    current = pd.DataFrame(dict(zip(names, np.load(workdir / "current.npy"))))
    if mode == "ks-sample":
        reference = pd.DataFrame({n: np.array(baseline["features"][n]["sample"]) for n in names})
    else:
        reference = pd.DataFrame(dict(zip(names, np.load(workdir / "reference.npy"))))
    loaded = rss_mb()

    if mode == "default":
        preset = DataDriftPreset()
    elif mode == "psi-own-bins":
        preset = DataDriftPreset(method="psi")
    elif mode == "ks-sample":
        preset = DataDriftPreset(method="ks")
    elif mode == "psi-baseline":
        tests = {}
        for name in names:
            interior = np.array(baseline["features"][name]["bin_edges"])[1:-1]

            def on_baseline_bins(reference_data, current_data, feature_type, threshold, interior=interior):
                # The contract's rule (number of interior edges <= v), then evidently's PSI on those bins.
                ref_bins = pd.Series(np.searchsorted(interior, reference_data.to_numpy(), side="right"))
                cur_bins = pd.Series(np.searchsorted(interior, current_data.to_numpy(), side="right"))
                return _psi(ref_bins, cur_bins, ColumnType.Categorical, threshold)

            test = StatTest(name=f"psi_baseline_bins_{name}", display_name="PSI on baseline bins",
                            allowed_feature_types=[ColumnType.Numerical], default_threshold=0.2)
            register_stattest(test, on_baseline_bins)
            tests[name] = test
        preset = DataDriftPreset(per_column_method=tests)
    else:
        raise SystemExit(f"unknown mode {mode!r}")

    started = time.perf_counter()
    snapshot = Report([preset]).run(current_data=current, reference_data=reference)
    seconds = time.perf_counter() - started
    values = {}
    for metric in snapshot.dict()["metrics"]:
        match = re.match(r"ValueDrift\(column=([^,]+),method=([^,]+)", metric["metric_name"])
        if match:
            values[match.group(1)] = {"score": float(metric["value"]), "method": match.group(2)}
    out.write_text(json.dumps({"seconds": seconds, "rss_loaded_mb": loaded, "peak_mb": rss_mb("VmHWM"),
                               "values": values}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
