"""Property: a mutated shipped stack either fails with a clean ConfigError or validates (and plans).

Mutations are seeded and reproducible: `mutate(seed)` always makes the same change, and a failure
shows the seed and what was changed. Kinds: values of another type or shape, deletions through the
merge patch (`null`), keys YAML reads as numbers, booleans, null or dates, deep nesting (YAML text
thousands of levels deep), huge and non-ASCII strings, misspelt keys.

CI runs a few hundred examples through `validate` and plans a few valid ones. `make fuzz` runs this
file as a program for a longer, counted run:

    .venv/bin/python tests/foundation/test_fuzz_stacks.py --mutations 3000
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a program by `make fuzz`: the project root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml

from specs.config import stack_files

SHIPPED = stack_files.ROOT / "stacks"
STACKS = tuple(stack_files.list_stacks(SHIPPED))
DEEP = "DEEPNESTINGMARKER"
"""Stands for a deeply nested YAML value in the dumped text (yaml.safe_dump itself would recurse)."""
ODD_KEYS: tuple[Any, ...] = (1, 0, True, False, None, 1.5, -7)
ODD_KEY_TEXT = ("yes", "on", "off", "no", "~", "null", "1", "2024-01-01", "0x1F")
STRINGS = ("", " ", "ünïcödé-ñame", "名前", "emoji-\U0001F600", "a" * 300, "x" * 100_000, "-", "UPPER", "0", "s3://", "null\x00byte")


@dataclass
class Mutation:
    """One seeded change to a copy of the shipped stacks."""

    seed: int
    stack: str
    steps: list[str] = field(default_factory=list)
    stack_doc: Any = None
    team_doc: Any = None
    deep: int = 0
    """Depth of the nested value that replaces DEEP in the written text (0: none)."""

    def describe(self) -> str:
        return f"seed {self.seed}, stack {self.stack}: " + "; ".join(self.steps)


def mutate(seed: int) -> Mutation:
    """The mutation numbered `seed`: one to three random changes to one stack file or its team file."""
    rng = random.Random(seed)
    stack = rng.choice(STACKS)
    stack_doc = yaml.safe_load((SHIPPED / f"Pulumi.{stack}.yaml").read_text())
    team = stack_doc["config"]["mlops:team"]
    team_doc = yaml.safe_load((SHIPPED / "teams" / f"{team}.yaml").read_text())
    m = Mutation(seed=seed, stack=stack, stack_doc=stack_doc, team_doc=team_doc)
    for _ in range(rng.randint(1, 3)):
        _one_step(rng, m)
    return m


def _one_step(rng: random.Random, m: Mutation) -> None:
    in_team = rng.random() < 0.5
    doc = m.team_doc if in_team else m.stack_doc
    where = "teams file" if in_team else "stack file"
    path = _random_path(rng, doc)
    op = rng.choice(("retype", "retype", "delete", "odd-key", "deep", "string", "typo", "null-patch"))
    if op == "null-patch" and not in_team:
        # RFC 7386 deletion: an override of null removes the base value.
        base_path = _random_path(rng, m.team_doc)
        config = m.stack_doc.get("config") if isinstance(m.stack_doc, dict) else None
        if base_path and isinstance(config, dict):
            overrides = config.setdefault("mlops:overrides", {})
            if isinstance(overrides, dict):
                _set(overrides, base_path, None, create=True)
                m.steps.append(f"override {'.'.join(map(str, base_path))}: null")
                return
    if not path:
        return
    parent = _get(doc, path[:-1])
    key = path[-1]
    if op == "delete" and isinstance(parent, dict):
        parent.pop(key, None)
        m.steps.append(f"{where}: delete {_dotted(path)}")
    elif op == "odd-key" and isinstance(parent, dict):
        odd = rng.choice(ODD_KEYS)
        parent[odd] = parent.pop(key)
        m.steps.append(f"{where}: rename {_dotted(path)} to the key {odd!r}")
    elif op == "deep":
        m.deep = rng.choice((33, 40, 200, 3000))
        parent[key] = DEEP
        m.steps.append(f"{where}: {_dotted(path)} = a value nested {m.deep} levels deep")
    elif op == "string":
        value = rng.choice(STRINGS)
        parent[key] = value
        m.steps.append(f"{where}: {_dotted(path)} = {value[:40]!r} ({len(value)} characters)")
    elif op == "typo" and isinstance(parent, dict) and isinstance(key, str) and len(key) > 2:
        cut = rng.randrange(len(key))
        parent[key[:cut] + key[cut + 1:]] = parent.pop(key)
        m.steps.append(f"{where}: misspell the key {_dotted(path)}")
    else:
        value = _random_value(rng)
        parent[key] = value
        m.steps.append(f"{where}: {_dotted(path)} = {_preview(value)}")


def _random_value(rng: random.Random) -> Any:
    choice = rng.randrange(9)
    if choice == 0:
        return rng.choice((0, -1, 1, 2**63, 10**30))
    if choice == 1:
        return rng.choice((0.0, -0.5, 1e308, 3.25))
    if choice == 2:
        return rng.choice((True, False))
    if choice == 3:
        return None
    if choice == 4:
        return rng.choice(STRINGS[:6])
    if choice == 5:
        return [rng.choice((1, "a", None, {"k": 1}))] * rng.randint(0, 3)
    if choice == 6:
        return {rng.choice(("mode", "model", "x", "enabled")): rng.choice((1, "ab", [], {}))}
    if choice == 7:
        return {}
    return []


def _random_path(rng: random.Random, doc: Any) -> tuple[Any, ...]:
    """A path to a random node: walk down from the root, stopping at random."""
    path: tuple[Any, ...] = ()
    node = doc
    while isinstance(node, (dict, list)) and node:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path = (*path, key)
        node = node[key]
        if rng.random() < 0.3:
            break
    return path


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: dict, path: tuple[Any, ...], value: Any, *, create: bool) -> None:
    for part in path[:-1]:
        if not isinstance(doc.get(part) if isinstance(doc, dict) else None, dict):
            if not create or not isinstance(doc, dict):
                return
            doc[part] = {}
        doc = doc[part]
    if isinstance(doc, dict):
        doc[path[-1]] = value


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _dump(doc: Any, deep: int) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10**9)
    return text.replace(DEEP, "[" * deep + "]" * deep) if deep else text


@contextmanager
def written(m: Mutation) -> Iterator[Path]:
    """A copy of the shipped stacks with the mutation written, in force through MLOPS_STACKS_DIR."""
    with tempfile.TemporaryDirectory(prefix="mlops-fuzz-") as tmp:
        target = Path(tmp) / "stacks"
        shutil.copytree(SHIPPED, target)
        team = m.team_doc  # written under the original team's name, whatever the stack file now says
        name = yaml.safe_load((SHIPPED / f"Pulumi.{m.stack}.yaml").read_text())["config"]["mlops:team"]
        (target / f"Pulumi.{m.stack}.yaml").write_text(_dump(m.stack_doc, m.deep), encoding="utf-8")
        (target / "teams" / f"{name}.yaml").write_text(_dump(team, m.deep), encoding="utf-8")
        previous = os.environ.get(stack_files.STACKS_ENV)
        os.environ[stack_files.STACKS_ENV] = str(target)
        try:
            yield target
        finally:
            if previous is None:
                os.environ.pop(stack_files.STACKS_ENV, None)
            else:
                os.environ[stack_files.STACKS_ENV] = previous


def outcome(m: Mutation, *, plan: bool) -> str:
    """'error' (a clean ConfigError), 'valid' or 'planned'. Anything else propagates."""
    with written(m):
        try:
            config = stack_files.load(m.stack)
        except stack_files.ConfigError as exc:
            assert str(exc).startswith(f"stack {m.stack}"), str(exc)[:500]
            return "error"
        assert config.stack_name == m.stack
        if not plan:
            return "valid"
        from mlops.plan import plan_stack

        result = plan_stack(m.stack)
        assert result.resources, "a valid stack plans at least its foundation"
        return "planned"


# --------------------------------------------------------------------------------------------
# The tests CI runs


def test_mutations_are_reproducible():
    assert mutate(1234).describe() == mutate(1234).describe()
    assert _dump(mutate(1234).team_doc, 0) == _dump(mutate(1234).team_doc, 0)


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a test dependency (pyproject)
    given = None

if given is not None:

    @settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(min_value=0, max_value=2**32 - 1))
    def test_a_mutated_stack_validates_or_fails_with_a_config_error(seed):
        m = mutate(seed)
        try:
            outcome(m, plan=False)
        except Exception as exc:  # the property: nothing but ConfigError escapes
            raise AssertionError(f"{m.describe()}\n{type(exc).__name__}: {str(exc)[:500]}") from exc


def test_a_few_mutated_stacks_that_validate_also_plan():
    planned = 0
    for seed in range(10_000, 10_200):
        m = mutate(seed)
        try:
            if outcome(m, plan=False) != "valid":
                continue
            outcome(m, plan=True)
        except Exception as exc:
            raise AssertionError(f"{m.describe()}\n{type(exc).__name__}: {str(exc)[:500]}") from exc
        planned += 1
        if planned == 3:
            return
    raise AssertionError(f"only {planned} of 200 mutations validated; the mutations no longer reach the planner")


# --------------------------------------------------------------------------------------------
# `make fuzz`


def main(argv: list[str] | None = None) -> int:
    """Run N seeded mutations, plan every k-th valid one, print counts and each traceback."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=3000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--plan-every", type=int, default=10, help="plan every k-th mutation that validates (0: never)")
    args = parser.parse_args(argv)
    counts = {"error": 0, "valid": 0, "planned": 0}
    tracebacks = 0
    for seed in range(args.first_seed, args.first_seed + args.mutations):
        m = mutate(seed)
        try:
            result = outcome(m, plan=False)
            if result == "valid" and args.plan_every and counts["valid"] % args.plan_every == 0:
                result = outcome(m, plan=True)
                counts["valid"] += 1
            counts[result] += 1
        except Exception:  # counted and shown: the run goes on
            tracebacks += 1
            print(f"TRACEBACK for {m.describe()}", file=sys.stderr)
            traceback.print_exc(limit=8)
    print(f"{args.mutations} mutations: {counts['error']} config errors, {counts['valid']} valid "
          f"({counts['planned']} of them planned), {tracebacks} tracebacks")
    return 1 if tracebacks else 0


if __name__ == "__main__":
    raise SystemExit(main())
