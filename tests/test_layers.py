"""The arrows point one way: `prompt_env` never imports `agents`.

Every module of the `prompt_env` package is imported in a fresh interpreter
in which importing `agents` raises; any module that reaches for the agents
or the experiment layer, at import time, fails this test.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib, importlib.abc, pkgutil, sys

class NoAgents(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "agents" or name.startswith("agents."):
            raise ImportError(f"prompt_env must not import {name}")
        return None

sys.meta_path.insert(0, NoAgents())
import prompt_env
failures, imported = [], 0
for module in pkgutil.walk_packages(prompt_env.__path__, "prompt_env."):
    try:
        importlib.import_module(module.name)
        imported += 1
    except ImportError as error:
        if "must not import agents" in str(error):
            failures.append(f"{module.name}: {error}")
        elif getattr(error, "name", None) in (None, "") or error.name.split(".")[0] == "prompt_env":
            raise
        # else: an optional third-party package that is not installed (e.g. the server extra)
print(imported)
if failures:
    raise SystemExit("\n".join(failures))
"""


def test_no_prompt_env_module_imports_agents() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert int(done.stdout.split()[-1]) >= 30  # every module was really imported


def test_no_import_of_agents_in_the_source() -> None:
    """Also imports inside functions, which the import probe above does not run."""
    offenders = []
    for path in sorted((ROOT / "prompt_env").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            if any(n == "agents" or n.startswith("agents.") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_agents_reach_no_private_env_attribute() -> None:
    """agents/ and benchmarks/ use envs through the Gymnasium API and public methods only."""
    private = ("._llm", ".calls_used", ".episode_calls", ".tokens_used", "._memo", "._order")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("agents", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(name in line for name in private)
    ]
    assert offenders == []


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its source (at import time, inside
    functions, under ``TYPE_CHECKING``): ``from a.b import c`` counts as ``a.b.c`` when that
    is a module, else as ``a.b``; a package's ``__init__`` is not counted for its submodules."""
    modules = {**_modules("prompt_env"), **_modules("agents")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] if node.level else [])
                module = ".".join(p for p in (base, node.module or "") if p)
                wanted = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module
                          for a in node.names]
            else:
                continue
            for target in wanted:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_circle_in_prompt_env_or_agents() -> None:
    assert import_cycles(import_graph()) == []


def test_the_experiment_layer_does_not_import_the_cli() -> None:
    graph = import_graph()
    offenders = sorted(f"{name} -> {target}" for name, targets in graph.items()
                       if name.startswith("agents.experiments") for target in targets
                       if target == "agents.cli" or target.startswith("agents.cli."))
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
