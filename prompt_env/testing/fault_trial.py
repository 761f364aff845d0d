"""The pieces of a fault trial: a short training run through an OpenAI-compatible server.

A fault trial runs the same short training twice through a
:class:`~prompt_env.testing.faultproxy.FaultProxy`, once without faults and
once with them, and compares the two (rewards, final agent, cache entries).
This module holds what both runs share and needs no agent library:

- :func:`client_spec`: an ``openai`` backend spec that retries quickly and
  often (so transient faults are absorbed) and sends one request at a time;
- :func:`trial_env`: the trial's env (:data:`TRIAL_ENV_ID`, 4 examples,
  episodes of 4 steps) answering through a fresh client with its own
  response cache file;
- :func:`run_trial`: one training run in that env, with an agent made by
  the factory passed in (``agents.make_agent``; this module imports no agent
  library);
- :func:`cache_entries`: every ``key -> value`` stored in a cache file.

With ``make_agent`` the agent library's factory (``agents.make_agent``)::

    spec = client_spec(proxy.base_url, server.model)
    clean = run_trial(spec, tmp / "clean.sqlite", data_dir, make_agent)
    proxy.fault_rate = 0.3
    faulty = run_trial(spec, tmp / "faulty.sqlite", data_dir, make_agent)
    assert clean.log.step_rewards == faulty.log.step_rewards
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym

from prompt_env.llm import CachedLLM, normalize_spec

TRIAL_ENV_ID = "PromptEnv/SST2-Select-Tabular-v0"
"""The env of a fault trial (reads the shared data: SST-2, 16-shot)."""
TRIAL_STEPS = 240
"""Training steps of one trial run."""
CLIENT_TIMEOUT_S = 10.0
"""Request timeout of :func:`client_spec`: generous for shared CPUs; a ``delay`` fault costs one."""


def client_spec(base_url: str, model: str, **options: Any) -> dict[str, Any]:
    """An ``openai`` backend spec for fault trials; ``options`` override any setting.

    Up to 10 retries with short backoff (0.01-0.05 s), a 300 s deadline per
    request and :data:`CLIENT_TIMEOUT_S`; one request at a time, which keeps
    the server's batch-dependent numerics out of the comparison.
    """
    return {"backend": "openai", "base_url": base_url, "model": model, "timeout_s": CLIENT_TIMEOUT_S,
            "max_retries": 10, "backoff_s": 0.01, "max_backoff_s": 0.05, "deadline_s": 300,
            "concurrency": 1, **options}


def fresh_llm(spec: dict[str, Any], cache_path: str | os.PathLike[str]) -> CachedLLM:
    """A new client for an ``openai`` spec, with its own response cache at ``cache_path``.

    Unlike :func:`~prompt_env.llm.load_llm`, the backend is not shared with
    the rest of the process, so every run starts cold (it probes the server
    and tokenizes the labels itself) and closing it affects nothing else.
    """
    from prompt_env.llm.openai_compat import OpenAICompatLLM

    normalized = normalize_spec(spec)
    if normalized["backend"] != "openai":
        raise ValueError(f"fresh_llm needs an openai spec, got backend {normalized['backend']!r}")
    backend = OpenAICompatLLM(**{k: v for k, v in normalized.items() if k != "backend"})
    return CachedLLM(backend, cache_path)


@contextlib.contextmanager
def trial_env(
    spec: dict[str, Any],
    cache_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    **env_kwargs: Any,
) -> Iterator[gym.Env]:
    """The trial env, answering through :func:`fresh_llm` (``spec``, ``cache_path``).

    ``env_kwargs`` override the defaults (``max_examples=4``,
    ``episode_length=4``). On leaving the block the env and its client are
    closed; read ``env.unwrapped.llm.stats`` inside it.
    """
    llm = fresh_llm(spec, cache_path)
    kwargs = {"max_examples": 4, "episode_length": 4, **env_kwargs}
    env = gym.make(TRIAL_ENV_ID, llm=spec, data_dir=str(data_dir), **kwargs)
    try:
        env.unwrapped.use_llm(llm)  # type: ignore[attr-defined]
        yield env
    finally:
        env.close()
        llm.close()


class AgentFactory(Protocol):
    """Makes an agent by name, sized for an env (``agents.make_agent`` is one)."""

    def __call__(self, name: str, env: gym.Env, **kwargs: Any) -> Any:
        """The agent called ``name`` for ``env``; ``kwargs`` go to its constructor."""


@dataclasses.dataclass
class TrialRun:
    """What one training run of a fault trial produced."""

    agent: Any
    """The trained agent (``q_table``, ``visits`` for tabular Q-learning)."""
    log: Any
    """The agent's training log (``steps``, ``step_rewards``)."""
    model_calls: int
    """Prompts the server evaluated (cache misses) during the run."""
    wall_s: float
    """Wall time of the run in seconds."""


def run_trial(
    spec: dict[str, Any],
    cache_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    make_agent: AgentFactory,
    *,
    agent_name: str = "tabular-q",
    steps: int = TRIAL_STEPS,
    seed: int = 0,
    **env_kwargs: Any,
) -> TrialRun:
    """Train ``make_agent(agent_name, env, seed=seed)`` for ``steps`` steps in :func:`trial_env`."""
    start = time.perf_counter()
    with trial_env(spec, cache_path, data_dir, **env_kwargs) as env:
        agent = make_agent(agent_name, env, seed=seed)
        log = agent.learn(env, steps, seed=seed, progress=False)
        model_calls = int(env.unwrapped.llm.stats.model_calls)  # type: ignore[attr-defined]
    return TrialRun(agent, log, model_calls, time.perf_counter() - start)


def cache_entries(path: str | os.PathLike[str]) -> dict[str, str]:
    """Every ``key -> stored value`` in a response cache file."""
    conn = sqlite3.connect(str(Path(path)))
    try:
        return dict(conn.execute("SELECT key, value FROM entries").fetchall())
    finally:
        conn.close()
