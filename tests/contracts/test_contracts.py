"""The contracts package: its wire values, its independence, and that both sides take the names from it.

The values are asserted as literals on purpose: an edit to `mlops_contracts` that changes a name
changes what is written to S3 and CloudWatch, and must fail here first.
"""
from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest
from mlops_contracts import artifact, capture, feature_schema, metrics

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts" / "mlops_contracts"
CONTAINERS = (ROOT / "training" / "mlops_training", ROOT / "serving" / "mlops_serving")


def test_metric_names_are_the_published_wire_values():
    assert metrics.NAMESPACE == "MLOps/ModelMonitor"
    assert metrics.MODEL_MONITOR_NAMESPACE == "/aws/sagemaker/Endpoint/data-metrics"
    assert (metrics.ENDPOINT_DIMENSION, metrics.FEATURE_DIMENSION, metrics.VARIANT_DIMENSION) == ("EndpointName", "Feature", "VariantName")
    assert metrics.DRIFT_DIMENSIONS == ("EndpointName", "MonitoringSchedule")
    assert (metrics.FEATURE_PSI, metrics.FEATURE_KS, metrics.MAX_FEATURE_PSI, metrics.DRIFTED_FEATURES, metrics.PREDICTION_PSI) == (
        "FeaturePSI", "FeatureKS", "MaxFeaturePSI", "DriftedFeatureCount", "PredictionPSI")
    assert [metrics.live_metric(m) for m in ("auc", "accuracy", "log_loss", "rmse", "mae")] == [
        "LiveAUC", "LiveAccuracy", "LiveLogLoss", "LiveRMSE", "LiveMAE"]
    assert metrics.LIVE_METRICS_BY_TASK == {"binary_classification": ("auc", "accuracy", "log_loss"), "regression": ("rmse", "mae")}
    assert (metrics.SAGEMAKER_NAMESPACE, metrics.INVOCATIONS, metrics.INVOCATION_4XX_ERRORS, metrics.INVOCATION_5XX_ERRORS,
            metrics.MODEL_LATENCY) == ("AWS/SageMaker", "Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "ModelLatency")


def test_monitor_environment_names_every_metric_name_once():
    assert metrics.monitor_environment() == {
        "MLOPS_MONITOR_NAMESPACE": "MLOps/ModelMonitor", "MLOPS_METRIC_FEATURE_PSI": "FeaturePSI",
        "MLOPS_METRIC_FEATURE_KS": "FeatureKS", "MLOPS_METRIC_MAX_FEATURE_PSI": "MaxFeaturePSI",
        "MLOPS_METRIC_DRIFTED_FEATURES": "DriftedFeatureCount", "MLOPS_METRIC_PREDICTION_PSI": "PredictionPSI",
        "MLOPS_METRIC_LIVE_PREFIX": "Live", "MLOPS_DIMENSION_ENDPOINT": "EndpointName",
        "MLOPS_DIMENSION_FEATURE": "Feature", "MLOPS_DIMENSION_VARIANT": "VariantName",
        "MLOPS_DIMENSION_SCHEDULE": "MonitoringSchedule",
    }
    without = metrics.monitor_environment(namespace=False)
    assert "MLOPS_MONITOR_NAMESPACE" not in without and len(without) == len(metrics.MONITOR_ENV) - 1


def test_live_metric_rejects_a_metric_that_is_not_published_live():
    with pytest.raises(ValueError, match=r"metric 'r2' is not published live; allowed: auc, accuracy, log_loss, rmse, mae"):
        metrics.live_metric("r2")


def test_capture_names_are_sagemakers_data_capture_fields():
    assert (capture.CAPTURE_DATA, capture.EVENT_METADATA, capture.EVENT_VERSION, capture.EVENT_VERSION_VALUE) == (
        "captureData", "eventMetadata", "eventVersion", "0")
    assert (capture.ENDPOINT_INPUT, capture.ENDPOINT_OUTPUT, capture.OBSERVED_CONTENT_TYPE, capture.MODE, capture.DATA, capture.ENCODING) == (
        "endpointInput", "endpointOutput", "observedContentType", "mode", "data", "encoding")
    assert (capture.MODE_INPUT, capture.MODE_OUTPUT, capture.ENCODINGS) == ("INPUT", "OUTPUT", ("JSON", "CSV", "BASE64"))
    assert (capture.EVENT_ID, capture.INFERENCE_ID, capture.INFERENCE_TIME, capture.MODEL_VERSION, capture.VARIANT, capture.CUSTOM_ATTRIBUTES) == (
        "eventId", "inferenceId", "inferenceTime", "modelVersion", "variant", "customAttributes")
    assert (capture.GROUND_TRUTH_DATA, capture.FILE_SUFFIX, capture.PARTIAL_SUFFIX, capture.HOUR_FORMAT) == (
        "groundTruthData", ".jsonl", ".partial", "%Y/%m/%d/%H")


def test_artifact_layout_is_the_documented_one():
    assert artifact.ARCHIVE == "model.tar.gz"
    assert artifact.MEMBERS == ("model.pt", "schema.json", "metadata.json", "baseline.json", "state_dict.pt")
    assert artifact.SERVING_MEMBERS == ("model.pt", "schema.json", "metadata.json")
    assert artifact.METRICS_FILE == "metrics.json"
    assert (artifact.METADATA_FORMAT_VERSION, artifact.BASELINE_FORMAT_VERSION, artifact.METRICS_FORMAT_VERSION) == (1, 1, 1)
    assert artifact.SUPPORTED_BASELINE_VERSIONS == {1}
    assert artifact.beside_archive("s3://b/models/fraud/3/model.tar.gz", artifact.BASELINE_FILE) == "s3://b/models/fraud/3/baseline.json"


def test_feature_schema_names_are_feature_store_types_and_the_two_tasks():
    assert (feature_schema.FORMAT_VERSION, feature_schema.SUPPORTED_FORMAT_VERSIONS) == (1, {1})
    assert feature_schema.FEATURE_TYPES == ("Integral", "Fractional", "String")
    assert feature_schema.NUMERIC_TYPES == ("Integral", "Fractional")
    assert feature_schema.TASKS == ("binary_classification", "regression")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(CONTRACTS.rglob("*.py")), ids=lambda p: p.name)
def test_contracts_import_only_the_standard_library(path: Path):
    outside = sorted(m for m in _imports(path) if m not in sys.stdlib_module_names and m not in ("__future__", "mlops_contracts"))
    assert not outside, f"{path.relative_to(ROOT)} imports {outside}; mlops_contracts must need nothing but the standard library"


# Values that only the contract may spell in the containers' code (distinctive enough that a string
# literal equal to one of them is a copy of the contract, not a coincidence). Not PARTIAL_SUFFIX: the
# monitoring job's report writer uses the same `.partial` convention for its own output files.
SPELT_ONLY_IN_CONTRACTS = {
    metrics.NAMESPACE, metrics.SAGEMAKER_NAMESPACE, metrics.FEATURE_PSI, metrics.FEATURE_KS, metrics.MAX_FEATURE_PSI,
    metrics.DRIFTED_FEATURES, metrics.PREDICTION_PSI, metrics.ENDPOINT_DIMENSION, metrics.VARIANT_DIMENSION,
    *metrics.MONITOR_ENV.values(),
    capture.CAPTURE_DATA, capture.EVENT_METADATA, capture.EVENT_VERSION, capture.ENDPOINT_INPUT, capture.ENDPOINT_OUTPUT,
    capture.OBSERVED_CONTENT_TYPE, capture.EVENT_ID, capture.INFERENCE_ID, capture.INFERENCE_TIME, capture.MODEL_VERSION,
    capture.GROUND_TRUTH_DATA, capture.CUSTOM_ATTRIBUTES, capture.HOUR_FORMAT, capture.FILE_SUFFIX,
    artifact.ARCHIVE, *artifact.MEMBERS, artifact.METRICS_FILE,
}


def _contract_literals(path: Path) -> list[tuple[int, str]]:
    """(line, value) of every string constant in `path` that equals a contract value."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in SPELT_ONLY_IN_CONTRACTS)


@pytest.mark.parametrize("path", sorted(p for package in CONTAINERS for p in package.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_containers_take_contract_names_from_mlops_contracts(path: Path):
    copies = _contract_literals(path)
    assert not copies, f"{path.relative_to(ROOT)} spells contract values {copies}; import them from mlops_contracts"


def test_the_literal_check_sees_a_copied_name(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text('NS = "MLOps/ModelMonitor"\nrecord = {"captureData": {}}\nname = f"{x}/model.tar.gz"\n')
    assert _contract_literals(module) == [(1, "MLOps/ModelMonitor"), (2, "captureData")]


def test_monitoring_job_defaults_are_the_contracts_names():
    from mlops_serving.monitor.settings import METRIC_NAME_ENV, MetricNames

    assert {f.name: f.default for f in dataclasses.fields(MetricNames)} == metrics.MONITOR_NAMES
    assert METRIC_NAME_ENV == metrics.MONITOR_ENV


def test_drift_schedule_environment_carries_the_contracts_names():
    from components.drift_monitor import job_environment

    env = job_environment(psi_threshold=0.25)
    # all but the namespace: SageMaker chooses where the drift job's metric files are published
    names = metrics.monitor_environment(namespace=False)
    assert {k: env[k] for k in names} == names
