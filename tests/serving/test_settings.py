"""Settings from the environment, CLI overrides, and the entry point's argument handling."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from serving_support import entry_point

from mlops_serving.main import main, settings_from
from mlops_serving.settings import SAGEMAKER_MAX_PAYLOAD_BYTES, Settings


def test_defaults_follow_the_sagemaker_contract() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.model_path) == ("0.0.0.0", 8080, Path("/opt/ml/model"))
    assert s.max_body_bytes == SAGEMAKER_MAX_PAYLOAD_BYTES == 6 * 1024 * 1024
    assert s.capture_dir is None
    assert s.access_log is False
    assert s.variant == "AllTraffic"


def test_environment_variables_set_every_documented_field() -> None:
    s = Settings.from_env({
        "SAGEMAKER_BIND_TO_PORT": "9090", "SM_MODEL_DIR": "/sm/model", "MLOPS_MAX_BATCH": "128",
        "MLOPS_MAX_WAIT_US": "500", "MLOPS_MAX_BODY_BYTES": "1024", "MLOPS_CAPTURE_DIR": "/cap",
        "MLOPS_CAPTURE_SAMPLE": "0.1", "MLOPS_VARIANT": "challenger", "MLOPS_ACCESS_LOG": "1",
        "MLOPS_ENDPOINT_NAME": "fraud", "MLOPS_TORCH_THREADS": "2", "MLOPS_GC_FREEZE": "off",
    })
    assert (s.port, s.model_path, s.max_batch, s.max_wait_us, s.max_body_bytes) == (
        9090, Path("/sm/model"), 128, 500, 1024)
    assert (s.capture_dir, s.capture_sample, s.variant, s.access_log) == (Path("/cap"), 0.1, "challenger", True)
    assert (s.endpoint_name, s.torch_threads, s.gc_freeze) == ("fraud", 2, False)


def test_mlops_model_path_wins_over_sm_model_dir() -> None:
    s = Settings.from_env({"SM_MODEL_DIR": "/sm", "MLOPS_MODEL_PATH": "/tmp/model.tar.gz"})
    assert s.model_path == Path("/tmp/model.tar.gz")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGEMAKER_BIND_TO_PORT": "eighty"}, "environment variable SAGEMAKER_BIND_TO_PORT='eighty': allowed an integer"),
        ({"MLOPS_ACCESS_LOG": "maybe"}, "environment variable MLOPS_ACCESS_LOG='maybe': allowed 1/true/yes/on or 0/false/no/off"),
        ({"MLOPS_CAPTURE_SAMPLE": "1.5"}, "capture_sample=1.5: allowed a fraction between 0.0 and 1.0"),
        ({"MLOPS_MAX_BATCH": "0"}, "max_batch=0: allowed an integer >= 1"),
        ({"MLOPS_VARIANT": "a/b"}, "variant='a/b': allowed a non-empty name without '/'"),
    ],
)
def test_invalid_values_name_the_variable_value_and_what_is_allowed(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env(env)
    assert message in str(info.value)


def test_flags_override_the_environment_and_a_leading_serve_is_accepted() -> None:
    s = settings_from(["serve", "--port", "9999", "--max-batch", "8", "--access-log", "true"],
                      {"SAGEMAKER_BIND_TO_PORT": "9090", "MLOPS_MAX_BATCH": "128", "MLOPS_VARIANT": "blue"})
    assert (s.port, s.max_batch, s.access_log, s.variant) == (9999, 8, True, "blue")


def test_main_reports_invalid_settings_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--capture-sample", "2"]) == 2
    assert "capture_sample=2.0: allowed a fraction between 0.0 and 1.0" in capsys.readouterr().err


def test_console_script_help_lists_the_flags() -> None:
    out = subprocess.run([*entry_point(), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for flag in ("--port", "--model-path", "--max-batch", "--max-wait-us", "--max-body-bytes", "--capture-dir"):
        assert flag in out.stdout
