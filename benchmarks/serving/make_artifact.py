"""Wrap the shared harness's model in a contract-conformant `model.tar.gz` (contracts.md §2).

The harness serves `model/mlp_torchscript.pt` (32 floats -> Linear/ReLU x2 -> Linear -> sigmoid,
output `[N, 1]`). `model.pt` here is that same scripted module inside a wrapper that only flattens
the output to `[N]`, as the contract specifies, so every row of the table runs the same compute.
The schema declares 32 non-nullable `Fractional` features `f00`..`f31` in column order, so the
harness's `{"instances": [[32 floats]]}` bodies are valid requests unchanged.

Usage: python make_artifact.py HARNESS_DIR OUT_DIR   (writes OUT_DIR/model.tar.gz)

Must not import: `pulumi` or its providers, `components` or `policypack` (a benchmark measures code, it
deploys nothing).
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import torch

N_FEATURES = 32


class FlatOutput(torch.nn.Module):
    """Calls the harness's scripted MLP and returns `[N]` instead of `[N, 1]`."""

    def __init__(self, inner: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).reshape(-1)


def build(harness: Path, out_dir: Path) -> Path:
    """Write `out_dir/model.tar.gz`; return its path."""
    source = harness / "model" / "mlp_torchscript.pt"
    inner = torch.jit.load(str(source), map_location="cpu").eval()
    module = torch.jit.script(FlatOutput(inner)).eval()
    model_buf = io.BytesIO()
    torch.jit.save(module, model_buf)
    state_path = harness / "model" / "mlp_state_dict.pt"
    features = [{"name": f"f{j:02d}", "type": "Fractional", "nullable": False} for j in range(N_FEATURES)]
    schema = {
        "format_version": 1,
        "record_identifier": "id",
        "event_time": "event_time",
        "label": "label",
        "task": "binary_classification",
        "features": features,
    }
    metadata = {
        "model_name": "bench-mlp",
        "model_version": "1",
        "task": "binary_classification",
        "data_fingerprint": hashlib.sha256(source.read_bytes()).hexdigest(),
        "code_version": "benchmark",
        "hyperparameters": {"hidden": 256, "layers": 3},
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": {"task": "binary_classification", "split": "validation", "n_rows": 0},
    }
    # The server does not read the baseline; a minimal one keeps the archive complete.
    baseline = {
        "format_version": 1,
        "n_rows": 0,
        "features": {f["name"]: {"type": "Fractional", "null_rate": 0.0} for f in features},
        "prediction": {"type": "Fractional", "null_rate": 0.0},
    }
    members = {
        "model.pt": model_buf.getvalue(),
        "schema.json": json.dumps(schema, indent=1).encode(),
        "metadata.json": json.dumps(metadata, indent=1).encode(),
        "baseline.json": json.dumps(baseline).encode(),
        "state_dict.pt": state_path.read_bytes(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    # Same compute check: the wrapper must give the harness model's numbers exactly.
    x = torch.randn(64, N_FEATURES)
    with torch.inference_mode():
        if not torch.equal(module(x), inner(x).reshape(-1)):
            raise RuntimeError("the wrapped module does not reproduce the harness model's output")
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(build(Path(sys.argv[1]), Path(sys.argv[2])))
