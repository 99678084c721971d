"""A model the training package saves loads in the serving package and predicts identically: the
training entry point runs as a real process (as in its image), then the same rows go through the
training side (its encoder, the exported module) and the serving side (its request decoder and
model loader). Both images install the same torch (tests/supply/test_dockerfiles.py); this venv runs
that torch, so the comparison is exact (atol 0)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mlops_serving.codec import RequestDecoder
from mlops_serving.model import load_bundle
from mlops_training.artifact import load_artifact
from mlops_training.encode import encode_records
from mlops_training.synthetic import write_dataset

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
HYPERPARAMETERS = {"epochs": "2", "batch_size": "64", "learning_rate": "0.003", "num_threads": "1", "model_name": "fraud"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("handoff")
    _, schema = write_dataset(root / "data", n_rows=600, task="binary_classification", seed=3, n_files=1)
    archive = root / "model.tar.gz"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["MLOPS_CODE_VERSION"] = "0" * 40  # what the image build passes: the commit SHA
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_training.main", "train", "--train", str(root / "data"), "--schema", str(schema),
         "--model-dir", str(root / "model"), "--output-dir", str(root / "output"), "--checkpoint-dir", str(root / "ckpt"),
         "--archive", str(archive), "--hyperparameters", json.dumps(HYPERPARAMETERS)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return archive, root / "data"


def _records(data: Path, names: list[str], n: int) -> list[dict]:
    [part] = sorted(data.glob("*.parquet"))
    table = pq.read_table(part).slice(0, n).select(names)
    return table.to_pylist()


def test_a_model_saved_by_training_predicts_identically_in_serving(trained):
    archive, data = trained
    artifact = load_artifact(archive)
    assert artifact.metadata["code_version"] == "0" * 40
    names = [f.name for f in artifact.schema.features]
    records = _records(data, names, 64)

    x_training = encode_records(records, artifact.schema, categories=artifact.categories)
    with torch.inference_mode():
        y_training = artifact.module(torch.from_numpy(x_training)).reshape(-1).numpy()

    bundle = load_bundle(archive)
    n, packed = RequestDecoder(bundle.schema).decode_json(json.dumps({"instances": records}).encode())
    x_serving = np.frombuffer(packed, dtype=np.float32).reshape(n, -1)
    y_serving = bundle.predict(torch.from_numpy(x_serving.copy()))

    assert n == 64 and x_serving.shape == x_training.shape
    np.testing.assert_array_equal(x_serving, x_training)
    np.testing.assert_array_equal(y_serving, y_training)  # atol 0: bit-identical
    assert len(np.unique(y_serving)) > 10  # a trained model, not a constant
