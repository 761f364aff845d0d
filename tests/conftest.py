"""Shared pytest fixtures. Each contributor keeps fixtures in their own section."""

from __future__ import annotations

# --- tasks / scoring fixtures -------------------------------------------------
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared task data (``$PROMPT_ENV_DATA`` or ``../shared/data``); skips when absent."""
    chosen = os.environ.get("PROMPT_ENV_DATA")
    path = Path(chosen) if chosen else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "classification" / "sst-2").is_dir():
        pytest.skip(f"shared task data not found at {path}; set PROMPT_ENV_DATA to run this test")
    return path


# --- LLM fixtures ----------------------------------------------------------------


@pytest.fixture(scope="session")
def default_backend():
    """The real embedded default model (SmolLM2-135M-Instruct), loaded once per session."""
    from prompt_env.llm import _backend, normalize_spec

    return _backend(normalize_spec("default"))


@pytest.fixture()
def default_llm(default_backend, tmp_path):
    """The real default model behind a fresh response cache in tmp_path."""
    from prompt_env.llm import CachedLLM

    return CachedLLM(default_backend, tmp_path / "cache.sqlite")


# --- benchmark harness fixtures -------------------------------------------------


@pytest.fixture(scope="session")
def harness():
    """``benchmarks/run.py`` imported as a module (it is a script, not a package)."""
    return _benchmark_script("run.py", "benchmark_harness")


@pytest.fixture(scope="session")
def sample_efficiency():
    """``benchmarks/sample_efficiency.py`` imported as a module."""
    return _benchmark_script("sample_efficiency.py", "benchmark_sample_efficiency")


@pytest.fixture(scope="session")
def tie_break_rule():
    """``benchmarks/tie_break_rule.py`` imported as a module."""
    return _benchmark_script("tie_break_rule.py", "benchmark_tie_break_rule")


@pytest.fixture(scope="session")
def proposer_summary():
    """``benchmarks/proposer_summary.py`` imported as a module."""
    return _benchmark_script("proposer_summary.py", "benchmark_proposer_summary")


@pytest.fixture(scope="session")
def recount_distinct():
    """``benchmarks/recount_distinct.py`` imported as a module."""
    return _benchmark_script("recount_distinct.py", "benchmark_recount_distinct")


def _benchmark_script(filename: str, name: str):
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / filename
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --- environment fixtures -------------------------------------------------------


def pytest_configure(config):
    """Tests never touch the user's response cache: one fresh cache file per test session."""
    import tempfile

    if "PROMPT_ENV_CACHE" not in os.environ:
        os.environ["PROMPT_ENV_CACHE"] = str(Path(tempfile.mkdtemp(prefix="prompt-env-test-")) / "responses.sqlite")


@pytest.fixture(scope="session")
def optimize_grid():
    """``benchmarks/optimize_grid.py`` imported as a module."""
    return _benchmark_script("optimize_grid.py", "benchmark_optimize_grid")
