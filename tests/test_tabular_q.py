"""Tabular Q-learning: hand-computed updates, terminated vs truncated,
action masks, learning FrozenLake, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from agents import TabularQAgent


class OneStepEnv(gym.Env):
    """State 0 -> state 1 in one step, reward 1; the episode then ends by
    termination or by truncation (time limit)."""

    def __init__(self, end: str = "terminated") -> None:
        self.observation_space = spaces.Discrete(2)
        self.action_space = spaces.Discrete(2)
        self.end = end

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 1, 1.0, self.end == "terminated", self.end == "truncated", {}


class MaskedChainEnv(gym.Env):
    """Chain 0 -> 1 -> 2 (goal). In every state only actions 0 ("forward")
    and 2 ("stay") are valid; action 1 is masked and raises if taken.
    Forward from state 1 reaches the goal with reward 1."""

    def __init__(self) -> None:
        self.observation_space = spaces.Discrete(3)
        self.action_space = spaces.Discrete(3)
        self.state = 0
        self.t = 0

    def action_masks(self) -> np.ndarray:
        return np.array([True, False, True])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.t = 0, 0
        return self.state, {}

    def step(self, action):
        if not self.action_masks()[action]:
            raise AssertionError(f"masked action {action} was taken")
        self.t += 1
        if action == 0:
            self.state += 1
        terminated = self.state == 2
        return self.state, float(terminated), terminated, self.t >= 10, {}


def make_agent(learning_rate, gamma=0.9) -> TabularQAgent:
    agent = TabularQAgent(3, 2, learning_rate=learning_rate, gamma=gamma, seed=0)
    agent.q_table[1] = [2.0, 5.0]  # Q(s'=1, .) so that max_a' Q(s', a') = 5
    return agent


def test_alpha_one_is_the_documented_rule():
    agent = make_agent(1.0)
    agent.update(state=0, action=1, reward=1.0, next_state=1, terminated=False)
    # Q(0,1) = r + gamma * max_a' Q(1,a') = 1 + 0.9 * 5 = 5.5
    assert agent.q_table[0, 1] == pytest.approx(5.5)
    agent.update(state=0, action=0, reward=1.0, next_state=1, terminated=True)
    # terminated: no future, Q(0,0) = r = 1
    assert agent.q_table[0, 0] == pytest.approx(1.0)
    assert agent.q_table[1].tolist() == [2.0, 5.0]  # other entries untouched


def test_alpha_half_moves_halfway():
    agent = make_agent(0.5)
    agent.q_table[0, 1] = 2.0
    td_error = agent.update(0, 1, 1.0, 1, False)
    # target = 1 + 0.9 * 5 = 5.5; Q = 2 + 0.5 * (5.5 - 2) = 3.75
    assert td_error == pytest.approx(3.5)
    assert agent.q_table[0, 1] == pytest.approx(3.75)
    agent.update(0, 1, 1.0, 1, False)
    # Q = 3.75 + 0.5 * (5.5 - 3.75) = 4.625
    assert agent.q_table[0, 1] == pytest.approx(4.625)
    agent.update(0, 0, 2.0, 1, True)
    # terminated: target = 2; Q(0,0) = 0 + 0.5 * (2 - 0) = 1
    assert agent.q_table[0, 0] == pytest.approx(1.0)


def test_one_over_visits_is_a_running_mean_of_targets():
    agent = make_agent("1/visits")
    agent.q_table[0, 1] = 2.0
    agent.update(0, 1, 1.0, 1, False)
    # first visit, alpha = 1/1: Q = 1 + 0.9 * 5 = 5.5 (the initial 2.0 is forgotten)
    assert agent.q_table[0, 1] == pytest.approx(5.5)
    agent.update(0, 1, 3.0, 1, False)
    # second visit, alpha = 1/2: target = 3 + 4.5 = 7.5; Q = 5.5 + 0.5 * 2 = 6.5 = mean(5.5, 7.5)
    assert agent.q_table[0, 1] == pytest.approx(6.5)
    assert agent.visits[0, 1] == 2


def test_masked_max_over_next_state():
    agent = make_agent(1.0)
    agent.update(0, 0, 1.0, 1, False, next_action_mask=np.array([True, False]))
    # only a'=0 is valid in s'=1: target = 1 + 0.9 * Q(1,0) = 1 + 0.9 * 2 = 2.8
    assert agent.q_table[0, 0] == pytest.approx(2.8)


@pytest.mark.parametrize(
    ("end", "expected"), [("terminated", 1.0), ("truncated", 1.0 + 0.5 * 10.0)]
)
def test_learn_bootstraps_only_when_not_terminated(end, expected):
    env = OneStepEnv(end)
    agent = TabularQAgent.from_env(env, learning_rate=1.0, gamma=0.5, seed=0)
    agent.q_table[1] = [10.0, 10.0]
    log = agent.learn(env, 1)
    # terminated: Q(0,a) = 1; truncated: Q(0,a) = 1 + 0.5 * 10 = 6
    assert agent.q_table[0].max() == pytest.approx(expected)
    assert agent.q_table[0].min() == 0.0
    assert log.steps == 1 and log.episodes == 1 and log.episode_returns == [1.0]


def test_action_mask_is_respected_in_exploration_and_argmax():
    env = MaskedChainEnv()
    agent = TabularQAgent.from_env(env, learning_rate=0.5, gamma=0.9, seed=1)
    agent.q_table[:, 1] = 100.0  # the masked action looks best; it must never be taken
    agent.learn(env, 300)  # MaskedChainEnv raises if action 1 is taken
    assert agent.act(0, action_mask=env.action_masks()) == 0
    assert agent.act(0) == 1  # without a mask the table's argmax is action 1
    assert agent.q_table[:2, 1].tolist() == [100.0, 100.0]  # never updated
    # max over next state uses valid actions only: Q(1,0) -> 1, Q(0,0) -> 0.9 * 1
    assert agent.q_table[1, 0] == pytest.approx(1.0, abs=1e-3)
    assert agent.q_table[0, 0] == pytest.approx(0.9, abs=1e-3)


def test_use_action_mask_false_ignores_masks():
    env = MaskedChainEnv()
    agent = TabularQAgent.from_env(env, seed=0, use_action_mask=False)
    with pytest.raises(AssertionError, match="masked action"):
        agent.learn(env, 200)


def greedy_episode(agent: TabularQAgent, env: gym.Env) -> tuple[float, int]:
    obs, _ = env.reset(seed=0)
    total, length = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
        total += reward
        length += 1
        if terminated or truncated:
            return total, length


@pytest.mark.parametrize("learning_rate", [0.5, 1.0, "1/visits"])
def test_learns_frozenlake_to_optimal(learning_rate):
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = TabularQAgent.from_env(env, learning_rate=learning_rate, gamma=0.95, seed=0)
    log = agent.learn(env, 3000)
    assert log.steps == 3000
    total, length = greedy_episode(agent, env)
    assert total == 1.0
    assert length == 6  # the shortest path on the 4x4 map
    if learning_rate != "1/visits":  # 1/visits averages in the early zero targets: slow to converge
        # with gamma = 0.95 and 6 steps to the goal, V(start) = 0.95^5
        assert agent.q_table[0].max() == pytest.approx(0.95**5, abs=0.05)


def test_learns_cliffwalking_safe_or_optimal_path():
    env = (
        gym.make("CliffWalking-v1")
        if "CliffWalking-v1" in gym.registry
        else gym.make("CliffWalking-v0")
    )
    agent = TabularQAgent.from_env(
        env, learning_rate=0.5, gamma=1.0, seed=0, epsilon_start=0.3, epsilon_end=0.0
    )
    agent.learn(env, 6000)
    env = gym.wrappers.TimeLimit(env.unwrapped, max_episode_steps=100)
    total, length = greedy_episode(agent, env)
    assert total == -13.0 and length == 13  # Q-learning's greedy policy walks along the cliff edge


def test_same_seed_same_table_and_vector_env():
    def run(seed):
        env = gym.make("FrozenLake-v1", is_slippery=True)
        agent = TabularQAgent.from_env(env, seed=seed)
        agent.learn(env, 1000)
        return agent.q_table

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))

    vector_env = gym.vector.SyncVectorEnv(
        [lambda: gym.make("FrozenLake-v1", is_slippery=False) for _ in range(3)]
    )
    agent = TabularQAgent.from_env(vector_env, learning_rate=1.0, gamma=0.95, seed=0)
    log = agent.learn(vector_env, 3000)
    assert log.steps == 3000
    # reset steps of the NEXT_STEP autoreset are not learned from: the goal's
    # (terminal) state 15 and the holes keep Q = 0
    assert np.all(agent.q_table[[5, 7, 11, 12, 15]] == 0.0)
    assert greedy_episode(agent, gym.make("FrozenLake-v1", is_slippery=False)) == (1.0, 6)


def test_rejects_non_discrete_spaces():
    with pytest.raises(ValueError, match="Discrete observation"):
        TabularQAgent.from_env(gym.make("CartPole-v1"))
    agent = TabularQAgent(3, 2)
    with pytest.raises(ValueError, match="16 states and 4 actions"):
        agent.learn(gym.make("FrozenLake-v1"), 10)
    with pytest.raises(TypeError, match="unknown option"):
        TabularQAgent(3, 2, learning_rat=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        TabularQAgent(3, 2, learning_rate="sqrt")


def test_callback_sees_every_step_and_can_stop():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = TabularQAgent.from_env(env, seed=0)
    seen = []

    def callback(step, reward, info):
        seen.append((step, reward, info))
        return None if step < 7 else False

    log = agent.learn(env, 100, callback=callback)
    assert [s for s, _, _ in seen] == list(range(1, 8))
    assert log.steps == 7
    assert all(isinstance(info, dict) and "prob" in info for _, _, info in seen)


def test_large_tables_store_visited_states_only(monkeypatch, tmp_path):
    """Beyond DENSE_ENTRIES the table keeps rows for visited states; learning is unchanged."""
    import agents.tabular_q as tabular

    def train(limit: int) -> TabularQAgent:
        monkeypatch.setattr(tabular, "DENSE_ENTRIES", limit)
        agent = TabularQAgent.from_env(gym.make("FrozenLake-v1", is_slippery=False), seed=3,
                                       learning_rate=1.0, gamma=0.9)
        agent.learn(gym.make("FrozenLake-v1", is_slippery=False), 400, seed=3)
        return agent

    dense, sparse = train(1 << 24), train(8)
    assert not dense.sparse and sparse.sparse
    assert 0 < len(sparse.q_table.rows) <= 16
    for state in range(16):
        np.testing.assert_array_equal(sparse.q_table[state], dense.q_table[state])
    assert int(sparse.visits.sum()) == int(dense.visits.sum()) == 400
    path = sparse.save(tmp_path / "sparse.safetensors", env_id="FrozenLake-v1")
    loaded = TabularQAgent.load(path)
    assert loaded.sparse and sorted(loaded.q_table.rows) == sorted(sparse.q_table.rows)
    for state in sparse.q_table.rows:
        np.testing.assert_array_equal(loaded.q_table[state], sparse.q_table[state])
        np.testing.assert_array_equal(loaded.visits[state], sparse.visits[state])


def test_action_groups_balance_exploration_over_kinds():
    """With a group per action, exploration draws the group first: one lone action of its
    own group is tried as often as the nine of the other group together."""
    from agents.actions import masked_argmax, random_action

    groups = np.array([0] * 9 + [1])
    rng = np.random.default_rng(0)
    draws = [random_action(rng, 10, None, groups) for _ in range(2000)]
    assert 0.45 < np.mean(np.array(draws) == 9) < 0.55
    ties = [masked_argmax(np.zeros(10), np.ones(10, dtype=bool), rng, groups) for _ in range(2000)]
    assert 0.45 < np.mean(np.array(ties) == 9) < 0.55
    assert masked_argmax(np.arange(10.0), None, rng, groups) == 9  # no tie: the best action
    with pytest.raises(ValueError, match="one group per action"):
        TabularQAgent(3, 10, action_groups=[0, 1])


def test_action_prior_starts_new_states_from_what_actions_did_elsewhere(tmp_path):
    """With action_prior, a state seen for the first time starts each action that has been
    taken somewhere at its mean reward so far; the update rule itself is unchanged."""
    agent = TabularQAgent(5, 3, learning_rate=1.0, gamma=0.5, initial_q=-0.01, action_prior=True)
    agent.update(0, 1, 0.4, 1, terminated=False)  # s1 is new when bootstrapping: Q(1, 1) starts at 0.4
    np.testing.assert_allclose(agent.q_table[1], [-0.01, 0.4, -0.01])
    assert agent.q_table[0, 1] == pytest.approx(0.4 + 0.5 * 0.4)  # the rule, with the prior in max Q(s', .)
    agent.update(1, 2, -0.2, 2, terminated=True)
    np.testing.assert_allclose(agent.row(3), [-0.01, 0.4, -0.2])  # first seen now: both priors
    agent.q_table[3, 1] = 1.0
    assert agent.row(3)[1] == 1.0  # a started row is never reset
    path = agent.save(tmp_path / "prior.safetensors", env_id="toy")
    loaded = TabularQAgent.load(path)
    assert loaded.started == agent.started and loaded.reward_counts.tolist() == [0, 1, 1]
    plain = TabularQAgent(5, 3, initial_q=-0.01)
    plain.update(0, 1, 0.4, 1, terminated=False)
    np.testing.assert_allclose(plain.q_table[1], [-0.01, -0.01, -0.01])
