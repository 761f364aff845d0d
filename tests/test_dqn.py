"""DQN: learns a contextual bandit with Box observations on a single env and
on vector envs (every autoreset mode), loss decreases, masks, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import DQNAgent, DQNConfig

N_CONTEXTS = 3


class ContextualBanditEnv(gym.Env):
    """One-step episodes. Observation: one-hot context (3) + Gaussian noise,
    plus a 4th feature that is 1.0 only in the terminal observation (so a
    test can spot a transition that crosses an episode boundary). The best
    action is (context + 1) % 3 with reward 1; other actions pay 0.
    A random policy earns 1/3 on average."""

    def __init__(self, noise: float = 0.1) -> None:
        self.observation_space = spaces.Box(-5.0, 5.0, shape=(N_CONTEXTS + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(N_CONTEXTS)
        self.noise = noise
        self.context = 0

    def _obs(self, final: bool) -> np.ndarray:
        obs = np.zeros(N_CONTEXTS + 1, dtype=np.float32)
        obs[self.context] = 1.0
        obs[:N_CONTEXTS] += self.np_random.normal(0.0, self.noise, N_CONTEXTS).astype(np.float32)
        obs[N_CONTEXTS] = float(final)
        return obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.context = int(self.np_random.integers(N_CONTEXTS))
        return self._obs(final=False), {"context": self.context}

    def step(self, action):
        reward = float(action == (self.context + 1) % N_CONTEXTS)
        return self._obs(final=True), reward, True, False, {"context": self.context}


class MaskedContextEnv(ContextualBanditEnv):
    """Like ContextualBanditEnv with 4 actions, where action 3 would pay 2 but
    is always masked (and raises if taken)."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.Discrete(N_CONTEXTS + 1)

    def action_masks(self) -> np.ndarray:
        return np.array([True] * N_CONTEXTS + [False])

    def step(self, action):
        if action == N_CONTEXTS:
            raise AssertionError("masked action taken")
        return super().step(action)


FAST = DQNConfig(
    hidden_sizes=(32,),
    learning_rate=5e-3,
    gamma=0.9,
    buffer_size=2000,
    batch_size=32,
    learning_starts=64,
    target_update_interval=50,
    exploration_fraction=0.5,
    seed=0,
)


def greedy_accuracy(agent: DQNAgent, n: int = 300, mask: np.ndarray | None = None) -> float:
    env = ContextualBanditEnv()
    hits = 0
    obs, _ = env.reset(seed=123)
    for _ in range(n):
        _, reward, _, _, _ = env.step(agent.act(obs, action_mask=mask))
        hits += reward
        obs, _ = env.reset()
    return hits / n


def assert_loss_decreases(losses: list[float]) -> None:
    assert len(losses) > 200
    first, last = np.mean(losses[:50]), np.mean(losses[-50:])
    assert last < 0.5 * first, (first, last)


def test_learns_contextual_bandit_single_env():
    env = ContextualBanditEnv()
    agent = DQNAgent.from_env(env, FAST)
    log = agent.learn(env, 800)
    assert log.steps == 800 and log.episodes == 800
    assert agent.buffer.size == 800
    assert log.losses == agent.loss_history
    assert_loss_decreases(log.losses)
    assert greedy_accuracy(agent) > 0.9  # random: 1/3
    # every stored transition starts at a reset observation and ends at a terminal one
    assert np.all(agent.buffer.obs[:800, N_CONTEXTS] == 0.0)
    assert np.all(agent.buffer.next_obs[:800, N_CONTEXTS] == 1.0)
    assert np.all(agent.buffer.terminated[:800] == 1.0)


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_vector_env_autoreset_modes(mode):
    env = gym.vector.SyncVectorEnv([ContextualBanditEnv for _ in range(4)], autoreset_mode=mode)
    agent = DQNAgent.from_env(env, FAST)
    log = agent.learn(env, 800)
    assert log.steps == 800 and log.episodes == 800 and agent.buffer.size == 800
    stored = slice(0, agent.buffer.size)
    # no stored transition starts from a terminal observation (a NEXT_STEP reset step) ...
    assert np.all(agent.buffer.obs[stored, N_CONTEXTS] == 0.0)
    # ... and each one ends at the true terminal observation (SAME_STEP: info["final_obs"])
    assert np.all(agent.buffer.next_obs[stored, N_CONTEXTS] == 1.0)
    assert_loss_decreases(log.losses)
    assert greedy_accuracy(agent) > 0.9


def test_next_step_autoreset_steps_are_not_counted_or_reported():
    env = gym.vector.SyncVectorEnv([ContextualBanditEnv for _ in range(2)])
    assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    agent = DQNAgent.from_env(env, FAST, learning_starts=10_000)
    infos = []
    log = agent.learn(env, 10, callback=lambda step, reward, info: infos.append((step, info)))
    assert [s for s, _ in infos] == list(range(1, 11))
    assert all("context" in info for _, info in infos)
    assert log.episode_lengths == [1] * 10


def test_action_mask_respected():
    env = MaskedContextEnv()
    agent = DQNAgent.from_env(env, FAST)
    agent.learn(env, 400)  # raises if the masked action is ever taken
    assert np.all(agent.buffer.next_masks[:400] == [True, True, True, False])
    mask = env.action_masks()
    assert greedy_accuracy(agent, mask=mask) > 0.8


def test_discrete_observations_are_one_hot_and_variants_run():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    agent = DQNAgent.from_env(
        env, FAST, double_dqn=False, huber_loss=False, max_grad_norm=None, tau=0.1
    )
    np.testing.assert_array_equal(agent.encode(np.array([2]))[0], np.eye(16, dtype=np.float32)[2])
    log = agent.learn(env, 300)
    assert log.steps == 300 and len(log.losses) > 0
    assert all(np.isfinite(log.losses))
    assert 0 <= agent.act(0) < 4


def test_polyak_and_hard_target_updates():
    env = ContextualBanditEnv()
    agent = DQNAgent.from_env(env, FAST, tau=0.25)
    before = [p.clone() for p in agent.target_network.parameters()]
    with torch.no_grad():
        for p in agent.q_network.parameters():
            p.add_(1.0)
    agent.update_target_network()
    for old, new, online in zip(
        before, agent.target_network.parameters(), agent.q_network.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online)
    agent.config.tau = 1.0
    agent.update_target_network()
    for new, online in zip(
        agent.target_network.parameters(), agent.q_network.parameters(), strict=True
    ):
        torch.testing.assert_close(new, online)


def test_same_seed_same_weights():
    def run(seed):
        env = ContextualBanditEnv()
        agent = DQNAgent.from_env(env, FAST, seed=seed)
        agent.learn(env, 300)
        return agent.q_network.state_dict()

    state_a, state_b, state_c = run(1), run(1), run(2)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key])
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)


def test_global_torch_rng_untouched():
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    DQNAgent.from_env(ContextualBanditEnv(), FAST)
    torch.testing.assert_close(torch.rand(3), expected)


def test_rejects_bad_spaces_and_options():
    with pytest.raises(ValueError, match="Discrete action"):
        DQNAgent.from_env(gym.make("MountainCarContinuous-v0"))
    agent = DQNAgent.from_env(ContextualBanditEnv(), FAST)
    with pytest.raises(ValueError, match="observations"):
        agent.learn(gym.make("FrozenLake-v1"), 10)
    with pytest.raises(ValueError, match="3 actions, the env has 2"):
        agent.learn(gym.make("CartPole-v1"), 10)
    with pytest.raises(TypeError, match="unknown option"):
        DQNAgent.from_env(ContextualBanditEnv(), gama=0.9)
    with pytest.raises(ValueError, match="tau"):
        DQNConfig(tau=0.0)


class WordChainEnv(gym.Env):
    """Three steps, one of 4 words each; MultiDiscrete observation (the words so far, 4 =
    empty, and the position). Reward only at the end: 1.0 when word 2 came first, else 0."""

    def __init__(self) -> None:
        self.observation_space = spaces.MultiDiscrete([5, 5, 5, 4])
        self.action_space = spaces.Discrete(4)
        self.words: list[int] = []

    def _obs(self) -> np.ndarray:
        return np.array(self.words + [4] * (3 - len(self.words)) + [len(self.words)], dtype=np.int64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.words = []
        return self._obs(), {}

    def step(self, action):
        self.words.append(int(action))
        done = len(self.words) == 3
        return self._obs(), float(done and self.words[0] == 2), done, False, {}


def test_n_step_returns_reach_monte_carlo_targets():
    env = WordChainEnv()
    one = DQNAgent.from_env(env, FAST, gamma=0.5, learning_starts=10_000)
    monte_carlo = DQNAgent.from_env(env, FAST, gamma=0.5, n_step=3, learning_starts=10_000)
    for agent in (one, monte_carlo):
        agent.learn(env, 3, seed=0)
        agent.act(env.reset(seed=0)[0])
    first = int(one.buffer.actions[0])
    final = 1.0 if first == 2 else 0.0
    np.testing.assert_allclose(one.buffer.rewards[:3], [0.0, 0.0, final])
    np.testing.assert_allclose(one.buffer.discounts[:3], [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(one.buffer.terminated[:3], [0, 0, 1])
    # n_step >= the episode: every step's target is its discounted return to the end
    assert int(monte_carlo.buffer.actions[0]) == first and monte_carlo.buffer.size == 3
    np.testing.assert_allclose(monte_carlo.buffer.rewards[:3], [0.25 * final, 0.5 * final, final])
    np.testing.assert_allclose(monte_carlo.buffer.discounts[:3], [0.125, 0.25, 0.5])
    np.testing.assert_array_equal(monte_carlo.buffer.terminated[:3], [1, 1, 1])
    with pytest.raises(ValueError, match="n_step must be >= 1"):
        DQNConfig(n_step=0)


def test_multi_discrete_observations_and_action_features_learn_and_round_trip(tmp_path):
    env = WordChainEnv()
    features = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    agent = DQNAgent.from_env(env, FAST, gamma=1.0, n_step=3, learning_starts=32, seed=0,
                              action_features=features)
    encoded = agent.encode(np.array([2, 4, 4, 1]))[0]
    assert encoded.shape == (19,) and np.flatnonzero(encoded).tolist() == [2, 9, 14, 16]
    agent.learn(env, 900, seed=0)
    assert agent.act(env.reset(seed=0)[0]) == 2  # the word that pays, learned from the final reward
    path = agent.save(tmp_path / "chain.agent", env_id="WordChain")
    loaded = DQNAgent.load(path, env_id="WordChain")
    obs = env.reset(seed=1)[0]
    np.testing.assert_array_equal(loaded.q_values(obs[None]), agent.q_values(obs[None]))
    np.testing.assert_array_equal(loaded.action_features, features)
    with pytest.raises(ValueError, match=r"action_features must have shape \(n_actions=4, d\)"):
        DQNAgent.from_env(env, FAST, action_features=np.ones((3, 2)))
