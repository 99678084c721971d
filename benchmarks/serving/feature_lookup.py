"""Online feature lookup: latency a request by record id adds over the same request with its features inline.

Method. One serving process (`mlops-serve`, the container's entry point, capture off, defaults
otherwise) with `MLOPS_FEATURE_GROUP` set, on a 32-feature Fractional MLP (32 -> 256 -> 256 -> 1,
the shared serving harness's shape). A Feature Store stand-in (`tests/serving/lookup_store_standin.py`:
BatchGetRecord over REST-JSON on 127.0.0.1, every request validated against botocore's model) runs
in its own process and holds one record per id. One client on one keep-alive connection sends, in
interleaved rounds, four bodies: 1 row inline, 1 row by id, 64 rows inline, 64 rows by id (each
by-id body names distinct ids, so every request costs one BatchGetRecord of 1 or 64 ids). Latency is
client-side wall time per request; p50 and p99 per body, and the added latency (by id minus inline)
at each percentile. Both bodies get byte-identical predictions (checked before timing).

What it does not measure: the real online store's own latency (AWS documents single-digit
milliseconds within a Region), which adds to the by-id rows; the stand-in answers from memory.

Usage: python benchmarks/serving/feature_lookup.py [--requests 2000] [--rounds 5] [--json OUT]
(PYTHONPATH as for the tests: the checkout, serving/ and contracts/.)

Must not import: `pulumi` or its providers, `components` or `policypack` (a benchmark measures code, it
deploys nothing).
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "serving"))

from lookup_store_standin import FeatureStoreStandIn  # noqa: E402
from serving_support import build_artifact, free_port, spawn_server, wait_for_ping  # noqa: E402

GROUP = "bench-features"
FIELD = "id"
N_FEATURES = 32
NAMES = [f"f{j:02d}" for j in range(N_FEATURES)]
BATCH = 64


class FlatMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).reshape(-1)


def artifact(dest: Path) -> Path:
    torch.manual_seed(0)
    schema = {"format_version": 1, "record_identifier": FIELD, "event_time": "event_time", "label": "label",
              "task": "binary_classification",
              "features": [{"name": n, "type": "Fractional", "nullable": False} for n in NAMES]}
    return build_artifact(dest, module=torch.jit.script(FlatMLP().eval()), schema=schema)


def values(k: int) -> list[float]:
    """Row k's features; short decimals, as a JSON writer and the store both keep them."""
    return [round(((k * 31 + j * 17) % 1000) / 7.0, 4) for j in range(N_FEATURES)]


def run_standin(n_records: int, url_out: multiprocessing.connection.Connection) -> None:
    standin = FeatureStoreStandIn(check_answers=False)  # its self-check is not the store's latency
    for k in range(n_records):
        standin.put(GROUP, f"r{k}", **{n: repr(v) for n, v in zip(NAMES, values(k))})
    standin.start()
    url_out.send(standin.url)
    url_out.recv()  # until the parent says stop
    standin.stop()


def bodies(n_records: int, requests: int) -> dict[str, list[bytes]]:
    """Per kind, `requests` bodies (cycling over the records, distinct ids within a body)."""
    out: dict[str, list[bytes]] = {"1 row inline": [], "1 row by id": [], "64 rows inline": [], "64 rows by id": []}
    for i in range(requests):
        one = i % n_records
        many = [(i * BATCH + j) % n_records for j in range(BATCH)]
        out["1 row inline"].append(json.dumps({"instances": [dict(zip(NAMES, values(one)))]}).encode())
        out["1 row by id"].append(json.dumps({"instances": [{FIELD: f"r{one}"}]}).encode())
        out["64 rows inline"].append(json.dumps({"instances": [dict(zip(NAMES, values(k))) for k in many]}).encode())
        out["64 rows by id"].append(json.dumps({"instances": [{FIELD: f"r{k}"} for k in many]}).encode())
    return out


def post(conn: http.client.HTTPConnection, body: bytes) -> bytes:
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:300]!r}")
    return data


def measure(port: int, kinds: dict[str, list[bytes]], rounds: int) -> dict[str, list[float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    # Same predictions both ways, before any timing.
    for inline, by_id in (("1 row inline", "1 row by id"), ("64 rows inline", "64 rows by id")):
        for i in range(5):
            if post(conn, kinds[inline][i]) != post(conn, kinds[by_id][i]):
                raise RuntimeError(f"{by_id} and {inline} predictions differ (request {i})")
    for body in kinds["64 rows by id"][:200]:  # warm-up: connection pools, allocator, caches
        post(conn, body)
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    n = len(next(iter(kinds.values())))
    per_round = n // rounds
    for r in range(rounds):
        for kind, all_bodies in kinds.items():  # interleaved: drift in machine load hits every kind alike
            for body in all_bodies[r * per_round:(r + 1) * per_round]:
                started = time.perf_counter()
                post(conn, body)
                samples[kind].append((time.perf_counter() - started) * 1000)
    conn.close()
    return samples


def pct(values_ms: list[float], q: float) -> float:
    return statistics.quantiles(values_ms, n=100, method="inclusive")[int(q) - 1]


def report(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    table = {k: {"p50": pct(v, 50), "p99": pct(v, 99), "n": len(v)} for k, v in samples.items()}
    print("| body | requests | p50 ms | p99 ms | added p50 ms | added p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, row in table.items():
        added = ""
        if kind.endswith("by id"):
            inline = table[kind.replace("by id", "inline")]
            row["added_p50"], row["added_p99"] = row["p50"] - inline["p50"], row["p99"] - inline["p99"]
            added = f" {row['added_p50']:.2f} | {row['added_p99']:.2f} |"
        else:
            added = " | |"
        print(f"| {kind} | {row['n']} | {row['p50']:.2f} | {row['p99']:.2f} |{added}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per body kind [2000]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds [5]")
    parser.add_argument("--records", type=int, default=10_000, help="records in the stand-in [10000]")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    standin = multiprocessing.Process(target=run_standin, args=(args.records, theirs), daemon=True)
    standin.start()
    url = ours.recv()
    with tempfile.TemporaryDirectory() as tmp:
        model = artifact(Path(tmp))
        port = free_port()
        env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "eu-west-1", "MLOPS_FEATURE_GROUP": GROUP, "MLOPS_RECORD_ID_FIELD": FIELD,
               "MLOPS_FEATURE_LOOKUP_TIMEOUT_MS": "1000", "MLOPS_LOG_LEVEL": "WARNING"}
        server = spawn_server(["--host", "127.0.0.1", "--port", str(port), "--model-path", str(model)], env)
        try:
            wait_for_ping(port)
            samples = measure(port, bodies(args.records, args.requests), args.rounds)
        finally:
            server.terminate()
            server.wait(30)
    ours.send("stop")
    standin.join(10)
    print(f"# feature lookup, {os.cpu_count()} CPUs, {args.requests} requests per body in {args.rounds} rounds, c=1 keep-alive")
    table = report(samples)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
