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
