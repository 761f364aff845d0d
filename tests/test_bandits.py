"""Bandits over a synthetic prompt pool with known means."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from agents import (
    UCB1,
    EpsilonGreedyBandit,
    SuccessiveHalving,
    ThompsonSampling,
    make_agent,
    run_bandit_on_env,
)

MEANS = np.array([0.2, 0.35, 0.5, 0.8, 0.3, 0.45, 0.1, 0.4])
BEST = 3


class PromptPoolEnv(gym.Env):
    """Each action is a prompt; its reward is 1 with probability MEANS[a]
    (the prompt answered a query right). Observations carry nothing.
    Episodes are 20 queries long. Arms in ``masked`` raise if pulled."""

    def __init__(self, means=MEANS, masked: tuple[int, ...] = ()) -> None:
        self.means = np.asarray(means)
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(len(self.means))
        self.masked = masked
        self.t = 0

    def action_masks(self) -> np.ndarray:
        mask = np.ones(len(self.means), dtype=bool)
        mask[list(self.masked)] = False
        return mask

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action):
        if action in self.masked:
            raise AssertionError(f"masked arm {action} pulled")
        self.t += 1
        reward = float(self.np_random.random() < self.means[action])
        return 0, reward, False, self.t >= 20, {"prompt": f"prompt-{action}"}


BANDITS = {
    "epsilon-greedy": lambda n, **kw: EpsilonGreedyBandit(n, epsilon=0.1, **kw),
    "ucb1": lambda n, **kw: UCB1(n, **kw),
    "thompson-gaussian": lambda n, **kw: ThompsonSampling(n, prior="gaussian", **kw),
    "thompson-beta": lambda n, **kw: ThompsonSampling(n, prior="beta", **kw),
    "successive-halving": lambda n, **kw: SuccessiveHalving(n, budget=600, **kw),
}


@pytest.mark.parametrize("name", sorted(BANDITS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_best_arm_with_bare_api(name, seed):
    bandit = BANDITS[name](len(MEANS), seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(600):
        arm = bandit.select(rng)
        bandit.update(arm, float(rng.random() < MEANS[arm]))
    assert bandit.best_arm() == BEST
    assert bandit.counts.sum() == 600


@pytest.mark.parametrize("name", sorted(BANDITS))
def test_finds_best_arm_on_env(name):
    bandit = BANDITS[name](len(MEANS))
    log = run_bandit_on_env(bandit, PromptPoolEnv(), steps=600, seed=0)
    assert log.steps == 600 and log.episodes == 30
    assert bandit.best_arm() == BEST
    assert bandit.act(None) == BEST
    if name != "successive-halving":  # regret-minimising bandits pull the best arm most
        assert int(np.argmax(bandit.counts)) == BEST


def test_successive_halving_schedule():
    bandit = SuccessiveHalving(8, budget=240)
    # 8 arms -> 3 rounds; round 1 pulls each arm 240 // (8 * 3) = 10 times, round-robin
    rng = np.random.default_rng(0)
    first = [bandit.select(rng) for _ in range(8)]
    assert first == list(range(8))
    for arm in first:
        bandit.update(arm, MEANS[arm])
    for _ in range(72):
        arm = bandit.select(rng)
        bandit.update(arm, MEANS[arm])  # noiseless rewards
    np.testing.assert_array_equal(bandit.counts, [10] * 8)
    # halved to the 4 best means: arms 3 (0.8), 2 (0.5), 5 (0.45), 7 (0.4)
    assert sorted(np.flatnonzero(bandit.active)) == [2, 3, 5, 7]
    # round 2: 240 // (4 * 3) = 20 pulls each
    for _ in range(80):
        arm = bandit.select(rng)
        bandit.update(arm, MEANS[arm])
    assert sorted(np.flatnonzero(bandit.active)) == [2, 3]
    for _ in range(80):
        arm = bandit.select(rng)
        bandit.update(arm, MEANS[arm])
    assert bandit.finished and bandit.best_arm() == BEST
    assert bandit.select(rng) == BEST


def test_successive_halving_budget_from_learn():
    bandit = make_agent("successive-halving", PromptPoolEnv())
    assert bandit.budget is None
    bandit.learn(PromptPoolEnv(), 400, seed=0)
    assert bandit.budget == 400 and bandit.best_arm() == BEST
    with pytest.raises(ValueError, match="needs a budget"):
        SuccessiveHalving(3).select(np.random.default_rng(0))


def test_ucb1_index_by_hand():
    bandit = UCB1(2)
    bandit.update(0, 1.0)
    bandit.update(0, 0.0)
    bandit.update(1, 0.5)
    # t = 3: arm 0: 0.5 + sqrt(2 ln 3 / 2); arm 1: 0.5 + sqrt(2 ln 3 / 1)
    np.testing.assert_allclose(
        bandit.upper_bounds(), [0.5 + np.sqrt(np.log(3)), 0.5 + np.sqrt(2 * np.log(3))]
    )
    assert bandit.select(np.random.default_rng(0)) == 1


def test_thompson_posteriors_by_hand():
    beta = ThompsonSampling(2, prior="beta")
    beta.update(0, 1.0)
    beta.update(0, 0.0)
    beta.update(0, 1.0)
    alpha, b = beta.posterior()
    # Beta(1 + successes, 1 + failures) = Beta(3, 2) for arm 0, Beta(1, 1) for arm 1
    np.testing.assert_allclose(alpha, [3.0, 1.0])
    np.testing.assert_allclose(b, [2.0, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        beta.update(1, 1.5)

    gaussian = ThompsonSampling(1, prior="gaussian", prior_mean=0.0, prior_std=1.0, noise_std=1.0)
    gaussian.update(0, 2.0)
    mean, std = gaussian.posterior()
    # precision 1 + 1 = 2; mean (0 + 2) / 2 = 1; std 1/sqrt(2)
    np.testing.assert_allclose(mean, [1.0])
    np.testing.assert_allclose(std, [1 / np.sqrt(2)])


@pytest.mark.parametrize("name", sorted(BANDITS))
def test_masked_arms_never_pulled(name):
    env = PromptPoolEnv(masked=(BEST,))
    bandit = BANDITS[name](len(MEANS))
    bandit.learn(env, 300, seed=0)  # raises if arm 3 is pulled
    assert bandit.counts[BEST] == 0
    assert bandit.best_arm(env.action_masks()) != BEST


def test_vector_env_and_determinism():
    def run():
        env = gym.vector.SyncVectorEnv([PromptPoolEnv for _ in range(3)])
        bandit = ThompsonSampling(len(MEANS), prior="beta", seed=5)
        log = bandit.learn(env, 300)
        return bandit.counts.copy(), log.step_rewards

    (counts_a, rewards_a), (counts_b, rewards_b) = run(), run()
    np.testing.assert_array_equal(counts_a, counts_b)
    assert rewards_a == rewards_b and counts_a.sum() == 300


def test_epsilon_greedy_pulls_each_arm_first():
    bandit = EpsilonGreedyBandit(4, epsilon=0.0)
    rng = np.random.default_rng(0)
    pulls = []
    for _ in range(4):
        pulls.append(bandit.select(rng))
        bandit.update(pulls[-1], 0.0)
    assert pulls == [0, 1, 2, 3]
