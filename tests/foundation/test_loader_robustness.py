"""The stack loader raises nothing but its own configuration error: wrong shapes, keys YAML reads as
numbers or booleans, deep nesting and unknown keys all end as exit 2 with a line naming the file,
the field, the value and what is allowed, never a traceback."""
from __future__ import annotations

import pytest
import yaml

from specs.config import stack_files

OVR = "mlops:overrides"


def _fails(cli, stack: str, *expected: str, command: tuple[str, ...] = ("config", "validate")) -> str:
    result = cli(*command, "--stack", stack)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr, f"{text!r} not in:\n{result.stderr}"
    return result.stderr


def _append_to_config(stacks, stack: str, text: str) -> None:
    """Add raw YAML under the stack file's `config:` (what yaml.safe_dump cannot write: `yes:`, `1:`)."""
    path = stacks / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + text)


def test_a_list_where_the_monitoring_mapping_belongs_is_a_config_error(cli, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"][OVR].update(monitoring=["fraud-ml-oncall@example.com"]))
    _fails(cli, "fraud-prod", "Pulumi.fraud-prod.yaml: monitoring: Input should be a valid dictionary or instance of MonitoringConfig")


def test_a_list_where_the_notifications_mapping_belongs_is_a_config_error(cli, edit):
    edit("teams/fraud.yaml", lambda d: d["monitoring"].update(notifications=["fraud-ml-oncall@example.com"]))
    _fails(cli, "fraud-dev", "teams/fraud.yaml: monitoring.notifications: Input should be a valid dictionary or instance of Notifications")


def test_a_scalar_overrides_block_names_the_file_and_the_type(cli, edit):
    edit("Pulumi.fraud-prod.yaml", lambda d: d["config"].update({OVR: "endpoints"}))
    _fails(cli, "fraud-prod", "Pulumi.fraud-prod.yaml: config.mlops:overrides: must be a mapping (a JSON Merge Patch onto",
           "got a str ('endpoints')")


def test_a_team_file_that_is_a_list_is_a_config_error(cli, stacks):
    (stacks / "teams" / "fraud.yaml").write_text("- tags\n- endpoints\n")
    _fails(cli, "fraud-dev", "teams/fraud.yaml: the base definition of team 'fraud' is not a mapping (it is a list)")


@pytest.mark.parametrize(("key", "shown"), [("yes", "True is a YAML bool"), ("on", "True is a YAML bool"),
                                             ("1", "1 is a YAML int"), ("~", "None is a YAML null")])
def test_a_key_yaml_reads_as_a_number_boolean_or_null_is_refused_by_name(cli, stacks, key, shown):
    path = stacks / "teams" / "fraud.yaml"
    path.write_text(path.read_text().replace("  Project: fraud-detection\n", f"  Project: fraud-detection\n  {key}: x\n"))
    _fails(cli, "fraud-dev", f"teams/fraud.yaml: tags.{yaml.safe_load(f'{key}: 0').popitem()[0]}: the key {shown}, not a string",
           "quote it")


def test_a_non_string_key_in_the_overrides_names_the_stack_file(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n    endpoints:\n      2024-01-01: {}\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.mlops:overrides.endpoints.2024-01-01: the key datetime.date(2024, 1, 1) is a YAML date")


def test_a_non_string_config_key_is_refused_by_name(cli, stacks):
    _append_to_config(stacks, "demo-local", "  yes: true\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.True: the key True is a YAML bool, not a string")


def test_thousands_of_open_brackets_are_a_config_error_found_before_parsing(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n    training:\n      hyperparameters:\n        deep: " + "[" * 5000 + "]" * 5000 + "\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: brackets nested more than 32 levels deep; stack files nest at most 32 levels")


def _block_nesting(levels: int) -> str:
    return "".join(f"{'  ' * (i + 2)}k{i}:\n" for i in range(levels)) + f"{'  ' * (levels + 2)}leaf: 1\n"


def test_deeply_indented_yaml_is_a_config_error_not_a_recursion_error(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n" + _block_nesting(600))
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: nested too deeply to read; stack files nest at most 32 levels")


def test_nesting_beyond_the_bound_is_reported_with_its_path(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n" + _block_nesting(40))
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.mlops:overrides.k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14",
           "nested more than 32 levels deep")


def test_a_recursive_yaml_alias_is_a_config_error(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n    training:\n      hyperparameters:\n        loop: &loop [*loop]\n")
    _fails(cli, "demo-local", "nested more than 32 levels deep", "a recursive YAML alias never ends")


def test_an_impossible_date_is_a_config_error(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n    images: {training_tag: 2024-13-45}\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: not valid YAML: a value cannot be read: month must be in 1..12")


def test_a_team_name_that_is_a_path_is_refused_before_any_file_is_read(cli, edit):
    edit("Pulumi.demo-local.yaml", lambda d: d["config"].update({"mlops:team": "../demo"}))
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.mlops:team: '../demo' is not a valid team name")


def test_infinite_numbers_are_refused(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:overrides:\n    monitoring: {thresholds: {latency_p99_ms: .inf}}\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: monitoring.thresholds.latency_p99_ms: Input should be a finite number")


# --------------------------------------------------------------------------------------------
# Unknown keys


def test_overrides_without_the_namespace_is_refused_as_pulumi_refuses_it(cli, stacks):
    _append_to_config(stacks, "demo-local", "  overrides:\n    images: {training_tag: 0.2.0}\n")
    _fails(cli, "demo-local",
           "Pulumi.demo-local.yaml: config.overrides: not a Pulumi config key (Pulumi reads stack-file keys as "
           "'<namespace>:<name>' and refuses this file); did you mean 'mlops:overrides'?",
           command=("plan",))


def test_legacy_namespace_config_name_form_is_read_as_pulumi_reads_it(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:config:overrides:\n    images: {training_tag: 0.2.0}\n")
    result = cli("config", "show", "--stack", "demo-local")
    assert result.exit_code == 0, result.stderr
    assert "0.2.0" in result.stdout


def test_an_unknown_mlops_key_gets_a_did_you_mean(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlops:override:\n    images: {training_tag: 0.2.0}\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.mlops:override: unknown key; did you mean 'mlops:overrides'?; "
           "allowed: mlops:team, mlops:environment, mlops:overrides")


def test_a_misspelt_namespace_on_our_key_is_refused(cli, stacks):
    _append_to_config(stacks, "demo-local", "  mlop:overrides:\n    images: {training_tag: 0.2.0}\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: config.mlop:overrides: namespace 'mlop' is not read by anything here; "
           "did you mean 'mlops:overrides'?")


def test_an_unknown_top_level_key_of_the_stack_file_gets_a_did_you_mean(cli, stacks):
    path = stacks / "Pulumi.demo-local.yaml"
    path.write_text(path.read_text() + "secretprovider: passphrase\n")
    _fails(cli, "demo-local", "Pulumi.demo-local.yaml: secretprovider: unknown key; did you mean 'secretsprovider'?; "
           "allowed at the top of a Pulumi stack file: config, secretsprovider, encryptedkey, encryptionsalt, environment")


def test_what_pulumi_owns_stays_allowed(cli, stacks):
    _append_to_config(stacks, "demo-local", "  aws:skipMetadataApiCheck: true\n  pulumi:disable-default-providers: [\"kubernetes\"]\n"
                      "  kubernetes:context: minikube\n")
    path = stacks / "Pulumi.demo-local.yaml"
    path.write_text(path.read_text() + "secretsprovider: passphrase\nencryptionsalt: v1:abc\nenvironment: [shared/aws]\n")
    result = cli("config", "validate", "--stack", "demo-local")
    assert result.exit_code == 0, result.stderr


def test_an_unknown_key_in_the_team_file_gets_a_did_you_mean(cli, edit):
    edit("teams/fraud.yaml", lambda d: d["training"].update(instance_typ="ml.m5.large"))
    _fails(cli, "fraud-dev", "teams/fraud.yaml: training.instance_typ: unknown key; did you mean 'instance_type'?; allowed here: kind, eks,")


def test_huge_values_are_cut_short_in_the_report(cli, edit):
    edit("teams/fraud.yaml", lambda d: d["endpoints"].update({"x" * 100_000: d["endpoints"]["scoring"]}))
    err = _fails(cli, "fraud-dev", "teams/fraud.yaml: endpoints.xxxxxxxxxx", "derived SageMaker Endpoint name 'fraud-dev-xxxxxxx",
                 "would be 100010 characters; AWS allows 63; shorten the key(s) 'xxxxxxx", "(100000 characters)")
    assert len(err) < 5_000


def test_the_loader_raises_only_config_errors_for_a_stack_file_that_is_a_scalar(stacks):
    (stacks / "Pulumi.demo-local.yaml").write_text("just a string\n")
    with pytest.raises(stack_files.ConfigError, match=r"expected a mapping with a 'config:' mapping; got a str \('just a string'\)"):
        stack_files.load("demo-local")
