"""Drift benchmark: the monitoring job's core against scipy and evidently on 1,000,000 x 30.

    .venv/bin/python benchmarks/drift/run.py --evidently-python /tmp/evidently-venv/bin/python

Method (details and results in README.md, which this script updates between its markers):
1. Data: a training frame (200,000 rows) and a current frame (1,000,000 rows) of 30 numeric
   features of five shapes (normal, lognormal, exponential, uniform, Poisson(3) with heavy ties and
   repeated deciles), every third one drifted; values rounded to 4 decimals so that JSON round-trips
   them exactly. `baseline.json` comes from the training container's `numeric_stats` (decile edges,
   bin shares, a 10,000-value sample per feature): the same bins for all three tools.
2. Each tool runs in its own process (peak RSS: its VmHWM; time of the computation only, after
   the data are loaded):
   - ours, core: `DriftAccumulator` fed 100,000-row chunks + `summarise` (bin counts, PSI, KS, moments);
   - ours, end to end: `mlops-monitor drift` on the same rows written as capture JSON lines;
   - scipy: `binned_statistic` counts on the baseline edges + `rel_entr` PSI, `ks_2samp` vs the sample;
   - evidently 0.7 `DataDriftPreset`: default, PSI on its own bins, PSI on the baseline's bins
     (custom stat test around evidently's `_psi`), KS against the baseline's samples.
3. Checks: per feature |ours - scipy| and |ours - evidently| <= 1e-9 for PSI and KS (evidently's KS
   test reports ks_2samp's p-value, compared with the p-value of our statistic), and ours at least
   10x faster than the default preset.

Must not import: `pulumi` or its providers, `components` or `policypack` (a benchmark measures code, it
deploys nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOLERANCE = 1e-9
MIN_SPEEDUP = 10.0
CHUNK = 100_000
EVIDENTLY_MODES = ("default", "psi-own-bins", "psi-baseline", "ks-sample")


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM: high-water mark since exec), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ data

def feature(kind: int, rng: np.random.Generator, n: int, *, drifted: bool) -> np.ndarray:
    """Column of one of five shapes; `drifted` moves it (some past PSI 0.2, some below)."""
    if kind == 0:
        x = rng.normal(10.0 + (1.2 if drifted else 0.0), 2.0, n)
    elif kind == 1:
        x = rng.lognormal(3.0 + (0.15 if drifted else 0.0), 0.8, n)
    elif kind == 2:
        x = rng.exponential(5.0 * (1.6 if drifted else 1.0), n)
    elif kind == 3:
        x = rng.uniform(5.0 if drifted else 0.0, 105.0 if drifted else 100.0, n)
    else:
        x = rng.poisson(4.0 if drifted else 3.0, n).astype(np.float64)
    return np.round(x, 4)


def prepare(workdir: Path, *, rows: int, ref_rows: int, features: int, seed: int) -> dict:
    from mlops_training.baseline import numeric_stats

    workdir.mkdir(parents=True, exist_ok=True)
    names = [f"f{j:02d}" for j in range(features)]
    ref_rng, cur_rng = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    reference = np.stack([feature(j % 5, ref_rng, ref_rows, drifted=False) for j in range(features)])
    current = np.stack([feature(j % 5, cur_rng, rows, drifted=j % 3 == 0) for j in range(features)])
    np.save(workdir / "reference.npy", reference)
    np.save(workdir / "current.npy", current)
    baseline = {
        "format_version": 1, "n_rows": ref_rows,
        "features": {n: numeric_stats(reference[j], type_name="Integral" if j % 5 == 4 else "Fractional", seed=seed + j)
                     for j, n in enumerate(names)},
    }
    (workdir / "baseline.json").write_text(json.dumps(baseline))
    write_captures(workdir / "captures", current, names)
    return {"names": names, "rows": rows, "ref_rows": ref_rows,
            "sample_sizes": {n: len(baseline["features"][n]["sample"]) for n in names}}


def write_captures(root: Path, current: np.ndarray, names: list[str], *, rows_per_request: int = 100,
                   records_per_file: int = 1000) -> None:
    """The current frame as SageMaker data capture, 100 rows per request (setup, not timed)."""
    import orjson

    directory = root / "bench" / "AllTraffic" / "2026" / "01" / "01" / "00"
    directory.mkdir(parents=True, exist_ok=True)
    n = current.shape[1]
    handle = None
    for k, start in enumerate(range(0, n, rows_per_request)):
        if k % records_per_file == 0:
            if handle:
                handle.close()
            handle = open(directory / f"part-{k // records_per_file:05d}.jsonl", "wb")
        rows = current[:, start:start + rows_per_request].T.tolist()
        record = {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                                    "data": orjson.dumps({"instances": rows}).decode(), "encoding": "JSON"}},
                  "eventMetadata": {"eventId": f"e-{k}", "inferenceId": f"i-{k}", "inferenceTime": "2026-01-01T00:00:00.000Z"},
                  "eventVersion": "0"}
        handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    if handle:
        handle.close()


# --------------------------------------------------------------------------------------- runners

def run_ours_core(workdir: Path, out: Path) -> None:
    from mlops_serving.monitor import baseline as baseline_mod
    from mlops_serving.monitor.drift import DriftAccumulator, summarise
    from mlops_serving.monitor.settings import DriftSettings

    base = baseline_mod.load(str(workdir / "baseline.json"))
    current = np.load(workdir / "current.npy")
    loaded = rss_mb()
    settings = DriftSettings(captures="-", baseline=str(workdir / "baseline.json"), out="-", endpoint="bench")
    started = time.perf_counter()
    acc = DriftAccumulator(base)
    for start in range(0, current.shape[1], CHUNK):
        acc.update_columns({name: current[j, start:start + CHUNK] for j, name in enumerate(base.names)})
    result = summarise(acc, settings=settings, counts={}, now=datetime.now(UTC))
    seconds = time.perf_counter() - started
    values = {n: {"psi": f["psi"], "ks": f["ks"]} for n, f in result.report["features"].items()}
    out.write_text(json.dumps({"seconds": seconds, "rss_loaded_mb": loaded, "peak_mb": rss_mb("VmHWM"),
                               "values": values}))


def run_ours_e2e(workdir: Path, out: Path) -> None:
    """The whole job, as `mlops-monitor drift` runs it, on the capture files (in this process)."""
    from mlops_serving.monitor.main import main as monitor

    loaded = rss_mb()
    started = time.perf_counter()
    status = monitor(["drift", "--captures", str(workdir / "captures"), "--baseline", str(workdir / "baseline.json"),
                      "--out", str(workdir / "e2e-out"), "--endpoint", "bench", "--no-html"],
                     environ={"MLOPS_LOG_LEVEL": "WARNING"})
    seconds = time.perf_counter() - started
    assert status == 0, status
    report = json.loads((workdir / "e2e-out" / "drift_report.json").read_text())
    assert report["rows"] == json.loads((workdir / "info.json").read_text())["rows"], report["capture"]
    values = {n: {"psi": f["psi"], "ks": f["ks"]} for n, f in report["features"].items()}
    out.write_text(json.dumps({"seconds": seconds, "rss_loaded_mb": loaded, "peak_mb": rss_mb("VmHWM"),
                               "values": values}))


def run_scipy(workdir: Path, out: Path) -> None:
    from scipy.special import rel_entr
    from scipy.stats import binned_statistic, ks_2samp

    baseline = json.loads((workdir / "baseline.json").read_text())
    current = np.load(workdir / "current.npy")
    loaded = rss_mb()
    started = time.perf_counter()
    values = {}
    for j, (name, base) in enumerate(baseline["features"].items()):
        x = current[j]
        edges = np.array(base["bin_edges"])
        # binned_statistic refuses zero-width bins (repeated deciles of an integer feature): bin on
        # the distinct edges; a zero-width bin of the baseline holds nothing. Clipping sends values
        # outside the edges to the first and last bin, as the contract says.
        distinct = np.unique(edges)
        counts = binned_statistic(np.clip(x, edges[0], edges[-1]), None, statistic="count", bins=distinct).statistic
        full = np.zeros(len(edges) - 1)
        full[np.flatnonzero(np.diff(edges) > 0)] = counts
        expected = _fill(np.array(base["bin_frequencies"]))
        actual = _fill(full / x.size)
        psi = float(np.sum(rel_entr(actual, expected) + rel_entr(expected, actual)))
        ks = ks_2samp(np.array(base["sample"]), x)
        values[name] = {"psi": psi, "ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue)}
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"seconds": seconds, "rss_loaded_mb": loaded, "peak_mb": rss_mb("VmHWM"),
                               "values": values}))


def _fill(shares: np.ndarray) -> np.ndarray:
    # The empty-bin rule (evidently's, which the job documents): 1e-4, or a millionth of the
    # smallest non-zero share when that is itself <= 1e-4.
    smallest = shares[shares > 0].min()
    return np.where(shares == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4, shares)


# -------------------------------------------------------------------------------------- harness

def spawn(command: list[str], *, env: dict | None = None) -> float:
    """Run a process to completion; its wall seconds. Each runner reports its own peak (VmHWM):
    ru_maxrss would also count the memory of the process it was forked from."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} exited {done.returncode}")
    return time.perf_counter() - started


def ks_pvalue(d: float, m: int, n: int) -> float:
    """scipy.stats.ks_2samp's two-sided p-value for statistic d in its asymptotic mode, the mode it
    uses when either sample has more than 10,000 values (here the current one always has)."""
    assert max(m, n) > 10_000, "ks_2samp would use its exact mode"
    from scipy.stats import kstwo

    big, small = sorted([float(m), float(n)], reverse=True)
    return float(np.clip(kstwo.sf(d, np.round(big * small / (big + small))), 0, 1))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import scipy

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", help=argparse.SUPPRESS)
    parser.add_argument("--evidently-python", default=os.environ.get("EVIDENTLY_PYTHON"),
                        help="python of a venv with evidently 0.7 (env EVIDENTLY_PYTHON)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlops-drift-bench"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ref-rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md")
    parser.add_argument("--prepare-only", action="store_true", help="only write the data to --workdir")
    parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runner:
        workdir, out = Path(args.args[0]), Path(args.args[1])
        {"ours-core": run_ours_core, "ours-e2e": run_ours_e2e, "scipy": run_scipy}[args.runner](workdir, out)
        return 0
    if args.prepare_only:
        info = prepare(args.workdir, rows=args.rows, ref_rows=args.ref_rows, features=args.features, seed=args.seed)
        (args.workdir / "info.json").write_text(json.dumps(info))
        return 0
    if not args.evidently_python:
        parser.error("--evidently-python (or EVIDENTLY_PYTHON) is required; see README.md")

    work = args.workdir
    me = [sys.executable, str(Path(__file__).resolve())]
    print(f"preparing {args.rows:,} x {args.features} (training {args.ref_rows:,} rows) in {work} ...", flush=True)
    # In its own process, so that no runner inherits the generator's memory.
    spawn([*me, "--prepare-only", "--workdir", str(work), "--rows", str(args.rows), "--ref-rows", str(args.ref_rows),
           "--features", str(args.features), "--seed", str(args.seed)])
    info = json.loads((work / "info.json").read_text())
    results: dict[str, dict] = {}
    commands = {name: [*me, "--runner", name, str(work), str(work / f"{name}.json")]
                for name in ("ours-core", "ours-e2e", "scipy")}
    commands.update({f"evidently-{mode}": [args.evidently_python, str(HERE / "evidently_runner.py"), str(work), mode,
                                           str(work / f"evidently-{mode}.json")] for mode in EVIDENTLY_MODES})
    for name, command in commands.items():
        wall = spawn(command)
        results[name] = {**json.loads((work / f"{name}.json").read_text()), "wall": wall}
        print(f"{name}: {results[name]['seconds']:.2f} s, peak {results[name]['peak_mb']:.0f} MiB", flush=True)

    checks, table = compare(results, info)
    timing = timing_table(results)
    probe = "import evidently, pandas; print(evidently.__version__, pandas.__version__)"
    versions = subprocess.run([args.evidently_python, "-c", probe],
                              capture_output=True, text=True, check=True).stdout.split()
    text = render(info=info, checks=checks, table=table, timing=timing, machine=machine(),
                  evidently=versions[0], pandas=versions[1])
    print(text)
    (HERE / "results.json").write_text(json.dumps({"info": info, "checks": checks, "results": results}, indent=1))
    if not args.no_readme:
        readme = HERE / "README.md"
        body = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        head, _, rest = body.partition(start)
        _, _, tail = rest.partition(end)
        readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")
    return 0 if all(c["ok"] for c in checks) else 1


def compare(results: dict, info: dict) -> tuple[list[dict], list[list[str]]]:
    ours, scipy_, e2e = results["ours-core"]["values"], results["scipy"]["values"], results["ours-e2e"]["values"]
    ev_psi, ev_ks = results["evidently-psi-baseline"]["values"], results["evidently-ks-sample"]["values"]
    n = info["rows"]
    rows, d = [], {k: 0.0 for k in ("psi_scipy", "psi_ev", "ks_scipy", "p_ev", "e2e")}
    for name in info["names"]:
        o = ours[name]
        p_ours = ks_pvalue(o["ks"], info["sample_sizes"][name], n)
        diffs = (abs(o["psi"] - scipy_[name]["psi"]), abs(o["psi"] - ev_psi[name]["score"]),
                 abs(o["ks"] - scipy_[name]["ks"]), abs(p_ours - ev_ks[name]["score"]),
                 max(abs(o["psi"] - e2e[name]["psi"]), abs(o["ks"] - e2e[name]["ks"])))
        for key, value in zip(d, diffs):
            d[key] = max(d[key], value)
        rows.append([name, f"{o['psi']:.6f}", f"{diffs[0]:.1e}", f"{diffs[1]:.1e}", f"{o['ks']:.6f}",
                     f"{diffs[2]:.1e}", f"{p_ours:.3g}", f"{diffs[3]:.1e}"])
    speedup = results["evidently-default"]["seconds"] / results["ours-core"]["seconds"]
    limits = [
        ("PSI: max abs(ours - scipy)", d["psi_scipy"]),
        ("PSI: max abs(ours - evidently on the baseline bins)", d["psi_ev"]),
        ("KS: max abs(ours - scipy ks_2samp statistic)", d["ks_scipy"]),
        ("KS: max abs(p-value of our statistic - evidently's KS p-value)", d["p_ev"]),
        ("PSI and KS: max abs(job core - whole job from captures)", d["e2e"]),
    ]
    checks = [{"check": name, "value": value, "ok": value <= TOLERANCE} for name, value in limits]
    checks.append({"check": f"speed-up over evidently's default DataDriftPreset (>= {MIN_SPEEDUP:g}x)",
                   "value": speedup, "ok": speedup >= MIN_SPEEDUP})
    return checks, rows


def timing_table(results: dict) -> list[list[str]]:
    ours = results["ours-core"]["seconds"]
    labels = {
        "ours-core": "ours: job core (bin counts, PSI, KS, moments; 100k-row chunks)",
        "ours-e2e": "ours: whole job from capture JSON lines (read, decode, report)",
        "scipy": "scipy reference (binned_statistic + rel_entr, ks_2samp)",
        "evidently-default": "evidently DataDriftPreset() default (Wasserstein)",
        "evidently-psi-own-bins": "evidently DataDriftPreset(method=\"psi\"), its own bins",
        "evidently-psi-baseline": "evidently DataDriftPreset, PSI on the baseline bins",
        "evidently-ks-sample": "evidently DataDriftPreset(method=\"ks\") vs the 10k samples",
    }
    rows = []
    for key, label in labels.items():
        r = results[key]
        loaded = f"{r['rss_loaded_mb']:.0f}" if r.get("rss_loaded_mb") is not None else "-"
        ratio = "1" if key == "ours-core" else f"{r['seconds'] / ours:.1f}"
        rows.append([label, f"{r['seconds']:.2f}", ratio, f"{r['peak_mb']:.0f}", loaded])
    return rows


def _md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render(*, info: dict, checks: list[dict], table: list[list[str]], timing: list[list[str]], machine: str,
           evidently: str, pandas: str) -> str:
    ok = all(c["ok"] for c in checks)
    return "\n\n".join([
        f"Measured on {machine}; evidently {evidently} with pandas {pandas}. "
        f"{info['rows']:,} current rows x {len(info['names'])} features, training frame {info['ref_rows']:,} rows.",
        "**Time** (seconds of computation after the data are in memory, except the whole-job row, which "
        "reads the capture files; peak RSS (VmHWM) of each tool's process in MiB, which includes the data):",
        _md(["what", "seconds", "x ours core", "peak RSS MiB", "RSS with data loaded MiB"], timing),
        "**Checks** " + ("(all passed):" if ok else "(FAILED):"),
        _md(["check", "value", "ok"], [[c["check"], f"{c['value']:.3g}", "yes" if c["ok"] else "NO"] for c in checks]),
        "**Per feature** (every third feature drifted):",
        _md(["feature", "PSI ours", "vs scipy", "vs evidently", "KS ours", "vs scipy", "KS p-value", "vs evidently"], table),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
