"""Tools for testing prompt-env's reliability: a fault-injecting proxy and reusable trials.

- :mod:`~prompt_env.testing.faultproxy`: :class:`FaultProxy`, a real HTTP
  proxy that injects dropped connections, delays, HTTP 429/5xx and malformed,
  truncated or wrong-shape JSON in front of an OpenAI-compatible server;
- :mod:`~prompt_env.testing.fault_trial`: the pieces of a training run
  through such a proxy (client spec, env with a fresh client and its own
  cache file, a training run with an agent factory passed in, reading a
  cache file);
- :mod:`~prompt_env.testing.cache_trials`: kill -9 and concurrent-writer
  trials of the SQLite response cache.

The test suite and ``benchmarks/reliability.py`` both use them. Nothing here
imports an agent library; the package's public API is all they touch,
except the cache trials, which recompute the cache's own keys and checksums.
"""

from __future__ import annotations

from prompt_env.testing.fault_trial import (
    CLIENT_TIMEOUT_S,
    TRIAL_ENV_ID,
    TRIAL_STEPS,
    AgentFactory,
    TrialRun,
    cache_entries,
    client_spec,
    fresh_llm,
    run_trial,
    trial_env,
)
from prompt_env.testing.faultproxy import FAULT_KINDS, FaultProxy

__all__ = [
    "CLIENT_TIMEOUT_S",
    "FAULT_KINDS",
    "TRIAL_ENV_ID",
    "TRIAL_STEPS",
    "AgentFactory",
    "FaultProxy",
    "TrialRun",
    "cache_entries",
    "client_spec",
    "fresh_llm",
    "run_trial",
    "trial_env",
]
