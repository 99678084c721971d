"""The layout's hard rules (docs/layout.md): every module of the project's own code says in its opening
docstring what it must not import, its imports (function bodies included) obey its layer's rules, and
no function is longer than a screen (STYLE.md: about 80 lines)."""
from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _own_sources() -> list[str]:
    """The project's own Python files: tracked by git, tests excluded."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in listed.split() if not p.startswith("tests/"))


# -- Every module says what it must not import, and does not ---------------------------------------

PULUMI = ("pulumi", "pulumi_aws", "pulumi_kubernetes", "pulumi_policy")
CONTAINERS = ("mlops_training", "mlops_serving")
MUST_NOT_IMPORT_LINE = "Must not import:"


@dataclass(frozen=True)
class Layer:
    name: str
    prefix: str
    """A path relative to the repository root: a folder (ending in `/`) or one file."""
    forbidden: tuple[str, ...]
    """Top-level module names that no module of the layer imports, outside `ALLOWED`: the rule each
    module's `Must not import:` line states."""


LAYERS = (
    # Pure: plain data and functions. The images install the contracts on their own.
    Layer("contracts", "contracts/mlops_contracts/", (*PULUMI, "components", "specs", "mlops", *CONTAINERS)),
    Layer("specifications", "specs/", (*PULUMI, "components", "mlops", *CONTAINERS)),
    # ComponentResources, built from specifications; the CLI drives them, the containers run in what they deploy.
    Layer("components", "components/", ("mlops", *CONTAINERS)),
    # The images install the container's package and mlops_contracts, nothing else of the project.
    Layer("training container", "training/mlops_training/", (*PULUMI, "components", "specs", "mlops", "mlops_serving")),
    Layer("serving container", "serving/mlops_serving/", (*PULUMI, "components", "specs", "mlops", "mlops_training")),
    # The operator CLI runs the containers as processes: their packages and the model runtime stay out of it.
    Layer("operator CLI", "mlops/", (*CONTAINERS, "torch")),
    # The program and the policy pack only assemble what components/ and specs/ define.
    Layer("program", "__main__.py", ("mlops", *CONTAINERS)),
    Layer("policy pack", "policypack/", ("components", "mlops", *CONTAINERS)),
    # Compares plans made on two commits, so it depends on the code of neither.
    Layer("scripts", "scripts/", (*PULUMI, "components", "specs", "mlops", "policypack", "mlops_contracts", *CONTAINERS)),
    # Lambda runs each module alone, with stdlib and boto3: nothing of the project can travel with it.
    Layer("Lambda functions", "functions/", (*PULUMI, "components", "specs", "mlops", "policypack", "mlops_contracts", *CONTAINERS)),
    # Benchmarks import the code they measure; none of them deploys anything.
    Layer("benchmarks", "benchmarks/", (*PULUMI, "components", "policypack")),
)

ALLOWED = {
    ("mlops/local/stack.py", "mlops_training.synthetic"):
        "`mlops local` generates a model's synthetic training data with the training container's generator",
    ("mlops/local/demo_data.py", "mlops_training.synthetic"):
        "the demo's feature source is the training container's synthetic transactions, re-timed",
    ("mlops/local/demo.py", "torch"):
        "the demo builds its faulty challenger, an exported graph that rejects missing values, with torch",
}
"""(module, import) -> why: the documented exceptions to a layer's rules. An import is allowed when it is
the named module or inside it; the module's `Must not import:` line names the exception too."""


def _layer(relative: str) -> Layer:
    matches = [layer for layer in LAYERS if relative == layer.prefix or (layer.prefix.endswith("/") and relative.startswith(layer.prefix))]
    assert len(matches) == 1, f"{relative}: no layer of tests/test_layout.py holds it; add its folder to LAYERS"
    return matches[0]


def _package(relative: str) -> str:
    """The dotted package `relative` belongs to, as installed (contracts/, training/, serving/ are source roots)."""
    parts = Path(relative).with_suffix("").parts
    if parts[0] in ("contracts", "training", "serving"):
        parts = parts[1:]
    return ".".join(parts[:-1])  # a module's package, or for `__init__` the package itself


def _imported_modules(source: str, package: str = "") -> set[str]:
    """Every module or name imported anywhere in `source`, function bodies included, as absolute dotted
    names (`from a import b` gives `a.b`; relative imports resolve against `package`), plus the literal
    targets of `importlib.import_module(...)` and `__import__(...)`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def _is_allowed(relative: str, name: str) -> bool:
    return any(module == relative and (name == allowed or name.startswith(allowed + ".")) for module, allowed in ALLOWED)


def _forbidden_imports(relative: str, source: str) -> list[str]:
    layer = _layer(relative)
    imported = _imported_modules(source, _package(relative))
    return sorted(n for n in imported if n.split(".")[0] in layer.forbidden and not _is_allowed(relative, n))


def _must_not_import_paragraph(source: str) -> str | None:
    """The docstring's paragraph that starts with a `Must not import:` line, or None."""
    lines = (ast.get_docstring(ast.parse(source)) or "").splitlines()
    for i, line in enumerate(lines):
        if line.startswith(MUST_NOT_IMPORT_LINE):
            rest = lines[i + 1:]
            end = next((j for j, text in enumerate(rest) if not text.strip()), len(rest))
            return " ".join([line, *rest[:end]])
    return None


@pytest.mark.parametrize("relative", _own_sources())
def test_module_docstring_says_what_it_must_not_import(relative: str) -> None:
    paragraph = _must_not_import_paragraph((ROOT / relative).read_text())
    assert paragraph is not None, (
        f"{relative}: its opening docstring needs a line starting with {MUST_NOT_IMPORT_LINE!r} "
        f"(layer {_layer(relative).name!r}: never {', '.join(_layer(relative).forbidden)})"
    )
    for module, allowed in ALLOWED:
        if module == relative:
            assert f"`{allowed}`" in paragraph, f"{relative}: its {MUST_NOT_IMPORT_LINE!r} line must name the exception `{allowed}`"


@pytest.mark.parametrize("relative", _own_sources())
def test_module_imports_nothing_its_layer_forbids(relative: str) -> None:
    bad = _forbidden_imports(relative, (ROOT / relative).read_text())
    layer = _layer(relative)
    assert not bad, (
        f"{relative} imports {bad}; the {layer.name} layer ({layer.prefix}) must not import {', '.join(layer.forbidden)}"
        " (docs/layout.md). A real need is an entry in ALLOWED, with its reason, and in the module's docstring."
    )


def test_every_documented_exception_is_still_needed() -> None:
    for relative, allowed in ALLOWED:
        imported = _imported_modules((ROOT / relative).read_text(), _package(relative))
        assert any(n == allowed or n.startswith(allowed + ".") for n in imported), (
            f"{relative} no longer imports {allowed}: remove it from ALLOWED and from the module's docstring"
        )
        assert allowed.split(".")[0] in _layer(relative).forbidden, f"{relative}: {allowed} is not forbidden, so not an exception"


def test_the_import_check_sees_nested_relative_and_dynamic_imports() -> None:
    source = (
        "import json\n"
        "def f():\n    from pulumi_aws import s3\n    return s3\n"
        "from . import codec\nfrom ..errors import Bad\n"
        "def g():\n    import importlib\n    return importlib.import_module('mlops.plan'), __import__('torch')\n"
    )
    assert _imported_modules(source, "mlops_serving.monitor") == {
        "json", "pulumi_aws.s3", "mlops_serving.monitor.codec", "mlops_serving.errors.Bad", "importlib", "mlops.plan", "torch",
    }
    assert _forbidden_imports("serving/mlops_serving/monitor/m.py", source) == ["mlops.plan", "pulumi_aws.s3"]
    assert _forbidden_imports("specs/m.py", "def f():\n    from mlops_training import model\n") == ["mlops_training.model"]


def test_an_exception_allows_only_its_own_import_in_its_own_module() -> None:
    source = "from mlops_training import synthetic\n"
    assert _forbidden_imports("mlops/local/stack.py", source) == []
    assert _forbidden_imports("mlops/local/stack.py", "from mlops_training import model\n") == ["mlops_training.model"]
    assert _forbidden_imports("mlops/local/other.py", source) == ["mlops_training.synthetic"]


def test_the_docstring_check_needs_the_line_at_a_line_start() -> None:
    assert _must_not_import_paragraph('"""Holds x.\n\nMust not import: `pulumi`,\n`mlops` (pure).\n\nMore."""') == (
        "Must not import: `pulumi`, `mlops` (pure)."
    )
    assert _must_not_import_paragraph('"""Holds x. Must not import: `pulumi`."""') is None
    assert _must_not_import_paragraph("import os\n") is None


def test_a_module_outside_every_layer_is_refused_and_packages_resolve_as_installed() -> None:
    with pytest.raises(AssertionError, match="no layer"):
        _layer("newfolder/m.py")
    assert _layer("mlops/promote/flow.py").name == "operator CLI"
    assert _layer("__main__.py").name == "program"
    assert _package("serving/mlops_serving/monitor/__init__.py") == "mlops_serving.monitor"
    assert _package("serving/mlops_serving/monitor/drift.py") == "mlops_serving.monitor"


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
