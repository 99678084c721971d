"""The promote package's layout: each module imports only the modules listed before it in the package
docstring, and none of the libraries its docstring rules out (the gates stay pure: no boto3, no pulumi)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mlops" / "promote"
ORDER = ["errors", "gates", "aws", "evidence", "pins", "files", "audit", "policy", "flow"]
"""Lowest first, as in mlops/promote/__init__.py: a module may import only those before it."""
FORBIDDEN = {
    "errors": {"boto3", "botocore", "pulumi", "ruamel"},
    "gates": {"boto3", "botocore", "pulumi", "ruamel"},
    "aws": {"pulumi", "ruamel"},
    "evidence": {"boto3", "pulumi", "ruamel"},
    "pins": {"boto3", "botocore", "pulumi"},
    "files": {"boto3", "botocore", "pulumi", "ruamel"},
    "audit": {"boto3", "botocore", "pulumi", "ruamel"},
    "policy": {"boto3", "botocore"},
    "flow": {"boto3", "pulumi", "ruamel"},
}


def _imports(source: str) -> set[str]:
    """Every module imported anywhere in `source`, function bodies included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "mlops.promote":
                names.update(f"mlops.promote.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"relative import of {node.module!r}: the layout check reads absolute imports only")
    return names


def _violations(module: str, source: str) -> list[str]:
    imported = _imports(source)
    allowed_siblings = set(ORDER[: ORDER.index(module)])
    bad = sorted(m for m in imported if m.split(".")[0] in FORBIDDEN[module])
    bad += sorted(
        m for m in imported
        if m.startswith("mlops.promote.") and m.split(".")[2] not in allowed_siblings
    )
    return bad


def test_every_module_of_the_package_has_its_rules() -> None:
    assert sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__") == sorted(ORDER) == sorted(FORBIDDEN)


@pytest.mark.parametrize("module", ORDER)
def test_module_imports_only_what_its_docstring_allows(module: str) -> None:
    bad = _violations(module, (PACKAGE / f"{module}.py").read_text())
    assert not bad, f"mlops/promote/{module}.py imports {bad}; allowed from the package: {ORDER[: ORDER.index(module)]}, never {sorted(FORBIDDEN[module])}"


def test_the_check_sees_a_lazy_import_and_an_import_from_a_later_module() -> None:
    source = "from mlops.promote.pins import Pin\ndef f():\n    import boto3\n    return boto3\n"
    assert _violations("gates", source) == ["boto3", "mlops.promote.pins"]
    assert _violations("flow", "from mlops.promote.pins import Pin\n") == []
