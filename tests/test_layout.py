"""The layout's hard rules: pure specifications never import the Pulumi runtime or the components, and no
function in the project's own code is longer than a screen (STYLE.md: about 80 lines)."""
from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_PACKAGES = ["specs"]
FORBIDDEN = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy", "components")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _pure_modules() -> list[Path]:
    return sorted(p for package in PURE_PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_imports_no_pulumi_and_no_component(path: Path) -> None:
    bad = sorted(m for m in _imported_modules(path) if m.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}; pure specifications must not"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from pulumi_aws import s3\n    return s3\n")
    assert _imported_modules(module) == {"pulumi_aws"}


# -- No function longer than a screen --------------------------------------------------------------

MAX_FUNCTION_LINES = 80


def _function_lengths(path: Path, source: str | None = None) -> dict[str, int]:
    """Lines of every function and method in `path` (signature to last line), by qualified name."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lengths[prefix + child.name] = child.end_lineno - child.lineno + 1
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return lengths


def _own_sources() -> list[str]:
    """The project's own Python files: tracked by git, tests excluded."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in listed.split() if not p.startswith("tests/"))


def _long_functions() -> dict[str, int]:
    return {
        f"{relative}::{name}": lines
        for relative in _own_sources()
        for name, lines in _function_lengths(ROOT / relative).items()
        if lines > MAX_FUNCTION_LINES
    }


def test_no_function_in_the_projects_own_code_is_longer_than_eighty_lines() -> None:
    offenders = {name: lines for name, lines in _long_functions().items()}
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines (name their parts): " + ", ".join(
        f"{name} ({lines})" for name, lines in sorted(offenders.items())
    )



def test_the_length_check_sees_methods_and_nested_functions(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(80))
    source = f"class C:\n    def m(self):\n        def inner():\n            pass\n{body}\n\ndef short():\n    return 1\n"
    lengths = _function_lengths(tmp_path / "m.py", source)
    assert lengths == {"C.m": 83, "C.m.inner": 2, "short": 2}
