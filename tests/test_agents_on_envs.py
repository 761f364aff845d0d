"""Our agents on the real prompt envs with the real default model (SmolLM2-135M).

Small and cached: training uses the first ``N_TRAIN`` train articles of
bbc-topic (N_TRAIN x 11 prompts distinct LLM calls, the rest are cache
hits), evaluation the first ``N_DEV`` dev articles through the dev score
table. Seeds are fixed, so the numbers are the same on every run.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents import DQNAgent, TabularQAgent, load_agent
from agents.experiments import TrainResult, train
from prompt_env.errors import CheckpointError

TABULAR_ID = "PromptEnv/BBCTopic-Select-Tabular-v0"
BOX_ID = "PromptEnv/BBCTopic-Select-v0"
N_TRAIN = 10
N_DEV = 10
STEPS = 200
SEED = 0
# margin (log-prob of the gold label minus the best other one) is a denser
# training signal than 0/1 accuracy; the policies are judged by dev accuracy.
ENV_KWARGS = {"llm": "default", "split": "train", "max_examples": N_TRAIN, "reward": "margin"}


def make_unwrapped(env_id: str):
    import gymnasium as gym

    return gym.make(env_id, **ENV_KWARGS).unwrapped


@pytest.fixture(scope="module")
def dev_accuracy() -> np.ndarray:
    """Accuracy of each of the 11 prompts on each of the first N_DEV dev articles."""
    table = make_unwrapped(BOX_ID).score_table("dev", reward="accuracy", limit=N_DEV)
    assert table.shape == (N_DEV, 11)
    return table


@pytest.fixture(scope="module")
def tabular_run() -> TrainResult:
    return train(TABULAR_ID, "tabular-q", STEPS, seed=SEED, env_kwargs=ENV_KWARGS, progress=False)


@pytest.fixture(scope="module")
def dqn_run() -> TrainResult:
    return train(BOX_ID, "dqn", STEPS, seed=SEED, env_kwargs=ENV_KWARGS, progress=False)


def greedy_dev_score(agent, env_id: str, table: np.ndarray) -> tuple[float, list[int]]:
    observations = make_unwrapped(env_id).observe_all("dev", limit=N_DEV)
    choices = [agent.act(o, greedy=True) for o in observations]
    return float(table[np.arange(len(table)), choices].mean()), choices


def test_tabular_q_beats_random_prompt_on_dev(tabular_run, dev_accuracy):
    assert tabular_run.log.steps == STEPS
    assert tabular_run.usage.calls == STEPS  # one LLM call per Select step, cached or not
    assert tabular_run.usage.model_calls <= N_TRAIN * 11  # everything past the distinct pairs is a cache hit
    assert tabular_run.usage.model_calls <= tabular_run.usage.distinct <= N_TRAIN * 11
    assert len(tabular_run.curve) == STEPS
    score, choices = greedy_dev_score(tabular_run.agent, TABULAR_ID, dev_accuracy)
    random_baseline = float(dev_accuracy.mean())
    assert score > random_baseline, (score, random_baseline, choices)


def test_dqn_loss_decreases_and_beats_random_prompt_on_dev(dqn_run, dev_accuracy):
    losses = dqn_run.log.losses
    assert len(losses) >= 100 and np.all(np.isfinite(losses))
    chunk = len(losses) // 4
    first, last = float(np.mean(losses[:chunk])), float(np.mean(losses[-chunk:]))
    assert last < first, (first, last)
    score, choices = greedy_dev_score(dqn_run.agent, BOX_ID, dev_accuracy)
    random_baseline = float(dev_accuracy.mean())
    assert score > random_baseline, (score, random_baseline, choices)


def play_greedy_episode(agent, env_id: str, seed: int) -> tuple[list[int], list[float]]:
    import gymnasium as gym

    env = gym.make(env_id, **ENV_KWARGS)
    obs, _ = env.reset(seed=seed)
    actions, rewards, done = [], [], False
    while not done:
        action = agent.act(obs, greedy=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        rewards.append(float(reward))
        done = terminated or truncated
    env.close()
    return actions, rewards


def test_tabular_q_save_load_round_trip_on_real_env(tabular_run, tmp_path):
    agent = tabular_run.agent
    path = agent.save(tmp_path / "tabular.safetensors", env_id=TABULAR_ID)
    loaded = load_agent(path, env_id=TABULAR_ID)
    assert isinstance(loaded, TabularQAgent)
    np.testing.assert_array_equal(loaded.q_table, agent.q_table)
    # The loaded agent plays the same greedy episode in the real env (all pairs cached by now).
    assert play_greedy_episode(loaded, TABULAR_ID, seed=3) == play_greedy_episode(agent, TABULAR_ID, seed=3)
    with pytest.raises(CheckpointError, match="trained on env"):
        TabularQAgent.load(path, env_id=BOX_ID)
    with pytest.raises(CheckpointError, match="trained on env"):
        load_agent(path, env_id="PromptEnv/BBCTopic-Edit-Tabular-v0")


def test_dqn_save_load_round_trip_on_real_env(dqn_run, tmp_path):
    agent = dqn_run.agent
    path = agent.save(tmp_path / "dqn.safetensors", env_id=BOX_ID)
    loaded = load_agent(path, env_id=BOX_ID)
    assert isinstance(loaded, DQNAgent)
    observations = np.stack(make_unwrapped(BOX_ID).observe_all("dev", limit=N_DEV))
    np.testing.assert_allclose(loaded.q_values(observations), agent.q_values(observations), rtol=0, atol=1e-6)
    assert play_greedy_episode(loaded, BOX_ID, seed=4) == play_greedy_episode(agent, BOX_ID, seed=4)
    with pytest.raises(CheckpointError, match="trained on env"):
        DQNAgent.load(path, env_id=TABULAR_ID)
