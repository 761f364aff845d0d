"""Agent files: exact round trips, refusals with clear messages, atomic
user-only writes, the registry and the training log."""

from __future__ import annotations

import csv
import json
import os
import struct
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import (
    AGENTS,
    UCB1,
    DQNAgent,
    SuccessiveHalving,
    TabularQAgent,
    ThompsonSampling,
    TrainingLog,
    load_agent,
    make_agent,
)
from agents.checkpoint import read_checkpoint_header
from prompt_env.errors import CheckpointError

ENV_ID = "FrozenLake-v1"


@pytest.fixture
def frozen_lake():
    return gym.make(ENV_ID, is_slippery=False)


@pytest.fixture
def tabular_file(tmp_path, frozen_lake):
    agent = TabularQAgent.from_env(frozen_lake, learning_rate="1/visits", seed=0)
    agent.learn(frozen_lake, 500)
    path = agent.save(tmp_path / "agent.safetensors", env_id=ENV_ID)
    return agent, path


def test_tabular_round_trip(tabular_file):
    agent, path = tabular_file
    loaded = TabularQAgent.load(path, env_id=ENV_ID)
    np.testing.assert_array_equal(loaded.q_table, agent.q_table)
    np.testing.assert_array_equal(loaded.visits, agent.visits)
    assert loaded.config == agent.config
    assert [loaded.act(s) for s in range(16)] == [agent.act(s) for s in range(16)]
    assert TabularQAgent.load(path).n_states == 16  # env_id=None skips the check


def test_header_is_the_documented_json(tabular_file):
    _, path = tabular_file
    header = read_checkpoint_header(path)
    assert header["format"] == "prompt-env-agent" and header["version"] == 1
    assert header["agent"] == "tabular-q" and header["env_id"] == ENV_ID
    assert header["config"]["learning_rate"] == "1/visits" and header["config"]["n_states"] == 16
    assert isinstance(header["package_version"], str)
    # the header is readable without our code: 8-byte length, then JSON
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    outer = json.loads(data[8 : 8 + length])
    assert json.loads(outer["__metadata__"]["prompt_env"]) == header


@pytest.mark.parametrize("obs_kind", ["box", "discrete"])
def test_dqn_round_trip_same_outputs(tmp_path, obs_kind):
    if obs_kind == "box":
        env = gym.make("CartPole-v1")
        inputs = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    else:
        env = gym.make(ENV_ID)
        inputs = np.arange(16)
    agent = DQNAgent.from_env(env, hidden_sizes=(16, 8), learning_starts=32, batch_size=16, seed=3)
    agent.learn(env, 100)
    path = agent.save(tmp_path / "dqn.safetensors", env_id="X-v0")
    loaded = DQNAgent.load(path, env_id="X-v0")
    np.testing.assert_array_equal(loaded.q_values(inputs), agent.q_values(inputs))
    for a, b in zip(
        agent.target_network.parameters(), loaded.target_network.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    assert loaded.config == agent.config and loaded.config.hidden_sizes == (16, 8)


@pytest.mark.parametrize(
    "make",
    [
        lambda: UCB1(8, exploration=0.5, seed=1),
        lambda: ThompsonSampling(8, prior="beta", seed=1),
        lambda: SuccessiveHalving(8, budget=100, seed=1),
    ],
)
def test_bandit_round_trip(tmp_path, make):
    bandit = make()
    rng = np.random.default_rng(0)
    for _ in range(37):
        arm = bandit.select(rng)
        bandit.update(arm, float(rng.random() < 0.1 * arm))
    path = bandit.save(tmp_path / "bandit", env_id="Pool-v0")
    loaded = type(bandit).load(path, env_id="Pool-v0")
    assert loaded.config_dict() == bandit.config_dict()
    for name in type(bandit)._state_names:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(bandit, name))
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    assert [bandit.select(rng_a) for _ in range(10)] == [loaded.select(rng_b) for _ in range(10)]


def test_load_agent_dispatches_on_type(tabular_file, tmp_path):
    _, path = tabular_file
    assert isinstance(load_agent(path), TabularQAgent)
    ucb_path = UCB1(3).save(tmp_path / "ucb", env_id="Pool-v0")
    assert isinstance(load_agent(ucb_path, env_id="Pool-v0"), UCB1)


def test_rejects_other_env_id(tabular_file):
    _, path = tabular_file
    with pytest.raises(
        CheckpointError, match=r"trained on env 'FrozenLake-v1', not 'CliffWalking-v1'"
    ) as err:
        TabularQAgent.load(path, env_id="CliffWalking-v1")
    assert str(path) in str(err.value)


def test_rejects_other_agent_type(tabular_file):
    _, path = tabular_file
    with pytest.raises(CheckpointError, match=r"holds a 'tabular-q' agent, not a 'dqn' agent"):
        DQNAgent.load(path)
    with pytest.raises(CheckpointError, match="not a 'ucb1' agent"):
        UCB1.load(path)


@pytest.mark.parametrize("keep", [0, 5, 20, -10])
def test_rejects_truncated_file(tabular_file, tmp_path, keep):
    _, path = tabular_file
    data = path.read_bytes()
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError, match="truncated|empty") as err:
        TabularQAgent.load(broken)
    assert str(broken) in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (struct.pack("<Q", 9) + b"not json!", "not a prompt-env agent file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a prompt-env agent file"),
        (struct.pack("<Q", 2) + b"{}", "not a prompt-env agent file"),
    ],
)
def test_rejects_non_json_or_foreign_header(tmp_path, content, message):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        TabularQAgent.load(path)


def test_rejects_plain_safetensors_and_other_format(tmp_path):
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(3)}, str(plain))
    with pytest.raises(CheckpointError, match="not a prompt-env agent file"):
        load_agent(plain)
    other = tmp_path / "other.safetensors"
    header = {"format": "something-else", "version": 1, "agent": "dqn", "env_id": "x", "config": {}}
    save_file({"w": np.zeros(3)}, str(other), metadata={"prompt_env": json.dumps(header)})
    with pytest.raises(CheckpointError, match="format is not 'prompt-env-agent'"):
        load_agent(other)
    newer = tmp_path / "newer.safetensors"
    header = {**header, "format": "prompt-env-agent", "version": 99}
    save_file({"w": np.zeros(3)}, str(newer), metadata={"prompt_env": json.dumps(header)})
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_agent(newer)


def test_rejects_missing_file_and_mismatched_arrays(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        TabularQAgent.load(tmp_path / "nope.safetensors")
    from agents.checkpoint import write_checkpoint

    path = write_checkpoint(
        tmp_path / "odd",
        agent="tabular-q",
        env_id="E-v0",
        config={"n_states": 2, "n_actions": 2},
        arrays={"q_table": np.zeros((3, 3))},
    )
    with pytest.raises(CheckpointError, match="lacks the array 'visits'"):
        TabularQAgent.load(path)


def test_writes_are_atomic_and_user_only(tabular_file, tmp_path):
    agent, path = tabular_file
    if sys.platform != "win32":
        assert os.stat(path).st_mode & 0o777 == 0o600
    agent.q_table[0, 0] = 42.0
    agent.save(path, env_id=ENV_ID)  # overwrite in place
    assert TabularQAgent.load(path).q_table[0, 0] == 42.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.safetensors"]  # no temp files left

    class Boom(Exception):
        pass

    def failing_arrays():
        raise Boom

    agent._state_arrays = failing_arrays  # fails before anything is written
    with pytest.raises(Boom):
        agent.save(path, env_id=ENV_ID)
    assert TabularQAgent.load(path).q_table[0, 0] == 42.0
    with pytest.raises(ValueError, match="env_id"):
        TabularQAgent(2, 2).save(tmp_path / "x", env_id="")


def test_registry_and_make_agent(frozen_lake):
    assert set(AGENTS) >= {
        "tabular-q",
        "dqn",
        "ucb1",
        "epsilon-greedy",
        "thompson",
        "successive-halving",
    }
    for name, agent_class in AGENTS.items():
        agent = make_agent(name, frozen_lake)
        assert isinstance(agent, agent_class) and agent.agent_name == name
        log = agent.learn(frozen_lake, 20, seed=0)
        assert log.steps == 20
        assert 0 <= agent.act(0) < 4
    with pytest.raises(ValueError, match="unknown agent 'sarsa'"):
        make_agent("sarsa", frozen_lake)


def test_training_log_rows_and_csv(tmp_path, frozen_lake):
    log = TrainingLog(num_envs=2)
    log.record_step(0, 1.0, False)
    log.record_step(1, 0.5, True)
    log.record_step(0, 2.0, True)
    assert log.steps == 3 and log.episodes == 2
    assert log.to_rows() == [
        {"episode": 0, "return": 0.5, "length": 1, "end_step": 2},
        {"episode": 1, "return": 3.0, "length": 2, "end_step": 3},
    ]
    assert log.to_rows("steps")[2] == {"step": 3, "reward": 2.0}
    log.write_csv(tmp_path / "log.csv")
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1] == {"episode": "1", "return": "3.0", "length": "2", "end_step": "3"}
    with pytest.raises(ValueError, match="kind"):
        log.to_rows("bogus")


def test_progress_bar_runs(frozen_lake, capsys):
    log = TabularQAgent.from_env(frozen_lake, seed=0).learn(frozen_lake, 50, progress=True)
    assert log.steps == 50
