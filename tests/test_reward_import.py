"""``reward="package.module:function"``: resolved by import in every process, with clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prompt_env  # noqa: F401  (registers the env ids)
from prompt_env.errors import RewardSpecError
from prompt_env.rewards import get_reward
from prompt_env.tasks.base import Example

MODULE = textwrap.dedent('''
    """A user's rewards, importable by name (written by the test)."""
    import numpy as np

    def signed_accuracy(prediction, example):
        """+0.5 when the top label is right, -0.5 otherwise: values no built-in reward gives."""
        return 0.5 if int(np.argmax(prediction)) == example.label else -0.5

    signed_accuracy.reward_kind = "classification"

    def no_kind(prediction, example):
        return 1.0

    def one_argument(prediction):
        return 1.0

    NOT_CALLABLE = 3
''')


@pytest.fixture()
def reward_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh module in tmp_path on sys.path (spawned workers get the parent's sys.path)."""
    name = f"user_rewards_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_import_reward_resolves_kind_and_checks_shape(reward_module):
    example = Example(fields={"text": "x"}, label=1)
    reward = get_reward(f"{reward_module}:signed_accuracy")
    assert reward.kind == "classification" and reward(np.array([-2.0, -0.1]), example) == 0.5
    assert get_reward(f"{reward_module}:no_kind", task_kind="generation").kind == "generation"
    cases = {
        "no_such_module_xyz:fn": "cannot import module 'no_such_module_xyz'.*PYTHONPATH",
        f"{reward_module}:missing": f"module '{reward_module}' has no attribute 'missing'",
        f"{reward_module}:one_argument": r"must take \(prediction, example\).*signature is \(prediction\)",
        f"{reward_module}:NOT_CALLABLE": "is a int, not a function",
        f"{reward_module}:no_kind": "does not say what it scores.*reward_kind",
        f"{reward_module}:": "write an importable reward as 'package.module:function'",
    }
    for spec, message in cases.items():
        with pytest.raises(RewardSpecError, match=message):
            get_reward(spec)


def test_bad_reward_fails_when_the_env_is_made(reward_module):
    with pytest.raises(RewardSpecError, match="cannot import module 'not_installed_rewards'"):
        gym.make("PromptEnv/BBCTopic-Select-v0", reward="not_installed_rewards:score", llm="fake")
    with pytest.raises(ValueError, match="is for classification tasks"):
        gym.make("PromptEnv/BBCHeadline-Select-v0", reward=f"{reward_module}:signed_accuracy", llm="fake")


def test_module_function_reward_in_spawned_subprocess_envs(reward_module):
    """Spawned workers never ran this process's imports: each resolves the reward by importing it.

    The fake LLM answers here (what is tested is the reward's resolution; the real model
    would add about 25 s of loading per worker on 2 cores)."""
    envs = gym.make_vec("PromptEnv/BBCTopic-Select-v0", num_envs=2, vectorization_mode="async",
                        vector_kwargs={"context": "spawn"}, reward=f"{reward_module}:signed_accuracy",
                        max_examples=6, episode_length=2, llm="fake")
    try:
        envs.reset(seed=0)
        _, rewards, _, _, infos = envs.step(np.array([0, 4]))
    finally:
        envs.close()
    assert set(np.round(rewards, 3)) <= {0.5, -0.5}
    assert [r == 0.5 for r in rewards] == list(infos["correct"])
