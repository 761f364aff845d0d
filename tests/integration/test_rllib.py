"""RLlib (new API stack) trains PPO on a prompt-env id with two env runners sharing one server.

Runs the real example script, as CleanRL smoke-tests its scripts: a few
steps, one iteration. It passes when both runners sampled env steps, the
learner updated, and the steps' LLM calls reached the shared server (its
prompt-token counter grew), not a model loaded in each runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rllib_shared_server.py"


def test_ppo_trains_with_two_env_runners_on_one_shared_server(local_server, shared_data_dir, tmp_path):
    pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]'")
    from prompt_env.llm.server import server_metrics

    before = server_metrics(local_server.base_url)["prompt_tokens_total"]
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PROMPT_ENV_CACHE=str(tmp_path / "cache.sqlite"))
    command = [sys.executable, str(EXAMPLE), "--base-url", local_server.base_url,
               "--model", local_server.model, "--env-id", "PromptEnv/SST2-Select-v0",
               "--data-dir", str(shared_data_dir), "--iterations", "1", "--num-env-runners", "2",
               "--train-batch", "8", "--episode-length", "2", "--max-examples", "16"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nRLlib run: {summary}")
    assert summary["num_env_runners"] == 2
    [iteration] = summary["iterations"]
    assert iteration["env_steps"] >= 8
    assert iteration["episodes"] >= 2
    assert summary["server_prompt_tokens"] > before
