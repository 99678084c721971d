"""Fixtures for the training container's tests: small synthetic exports, isolated process state."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from mlops_training.synthetic import write_dataset

from .helpers import N_ROWS, Export, clean_environment


@pytest.fixture(scope="session")
def binary_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    root = tmp_path_factory.mktemp("binary")
    write_dataset(root / "data", n_rows=N_ROWS, task="binary_classification", seed=7, n_files=2)
    return Export(data=root / "data", schema=root / "data" / "feature_schema.json")


@pytest.fixture(scope="session")
def regression_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    root = tmp_path_factory.mktemp("regression")
    write_dataset(root / "data", n_rows=N_ROWS, task="regression", seed=11, n_files=3)
    return Export(data=root / "data", schema=root / "data" / "feature_schema.json")


@pytest.fixture(autouse=True)
def _isolate_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """main() sets torch's thread count and determinism and reads SM_*/torchrun variables: undo and hide."""
    clean_environment(monkeypatch)
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


