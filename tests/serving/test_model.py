"""Reading the training container's model.tar.gz (contracts.md §2) from every place it can be."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch
from serving_support import CATEGORIES, MODEL_VERSION, build_artifact

from mlops_serving.errors import ModelLoadError
from mlops_serving.model import load_bundle
from mlops_serving.schema import FeatureSchema


def test_loads_the_archive_itself(model_tar: Path) -> None:
    bundle = load_bundle(model_tar)
    assert bundle.model_version == MODEL_VERSION
    assert bundle.schema.names == ("amount", "n_items", "country")
    assert bundle.schema.features[2].categories == tuple(CATEGORIES)
    assert bundle.schema.features[1].nullable is True
    out = bundle.predict(torch.tensor([[10.0, float("nan"), 0.0]]))
    assert out.shape == (1,) and 0.0 < float(out[0]) < 1.0


def test_loads_an_extracted_directory_like_opt_ml_model(model_tar: Path, tmp_path: Path) -> None:
    with tarfile.open(model_tar) as tar:
        tar.extractall(tmp_path, filter="data")
    assert load_bundle(tmp_path).model_version == MODEL_VERSION


def test_loads_a_directory_holding_only_the_archive(model_tar: Path, tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(model_tar.read_bytes())
    assert load_bundle(tmp_path).model_version == MODEL_VERSION


def test_refuses_an_archive_member_that_escapes_the_directory(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ModelLoadError, match="cannot extract"):
        load_bundle(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_categories_may_also_come_as_a_top_level_map(tmp_path: Path) -> None:
    schema = {
        "format_version": 1, "task": "binary_classification",
        "features": [{"name": "amount", "type": "Fractional"}, {"name": "n_items", "type": "Integral", "nullable": True},
                     {"name": "country", "type": "String"}],
        "categories": {"country": CATEGORIES},
    }
    bundle = load_bundle(build_artifact(tmp_path, schema=schema))
    assert bundle.schema.features[2].categories == tuple(CATEGORIES)


def test_schema_without_a_format_version_is_refused() -> None:
    with pytest.raises(ModelLoadError, match=r"format_version=None is not supported; allowed \[1\]"):
        FeatureSchema.from_dict({"features": [{"name": "a", "type": "Fractional"}]})
