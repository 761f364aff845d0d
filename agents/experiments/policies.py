"""The registered policies: baselines, this package's agents, stable-baselines3.

Each runner takes a :class:`~agents.experiments.setting.Setting` and a budget
of LLM calls and returns a :class:`~agents.experiments.registry.PolicyResult`.
Learners train on the task's train split with ``setting.train_reward``; the
baselines read the dev and test score tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents import AGENTS
from agents.baselines import best_fixed_on_dev, per_query_oracle, random_prompt
from agents.experiments.curves import CurveRecorder
from agents.experiments.registry import Policy, PolicyResult, register_policy
from agents.experiments.setting import Setting
from agents.experiments.train import train
from agents.experiments.usage import Usage, measured

# ------------------------------------------------------------------ baselines


def _random(setting: Setting, budget: int) -> PolicyResult:
    score = random_prompt(setting.tables().test)
    return PolicyResult(expected_score=score.test_score, notes=score.notes)


def _manual(setting: Setting, budget: int) -> PolicyResult:
    return PolicyResult(choices=[0] * setting.tables().n_test, notes="the task's hand-written prompt")


def _best_fixed_on_dev(setting: Setting, budget: int) -> PolicyResult:
    tables = setting.tables()
    best = best_fixed_on_dev(tables.dev, tables.test)
    return PolicyResult(choices=best.choices, train=tables.dev_usage, notes=best.notes)


def _oracle(setting: Setting, budget: int) -> PolicyResult:
    tables = setting.tables()
    oracle = per_query_oracle(tables.test)
    # it reads every prompt's answer on every test input: that is its cost, and no policy's
    return PolicyResult(choices=oracle.choices, train=tables.test_usage, eval_calls=0,
                        notes=oracle.notes)


# ----------------------------------------------------------- this package's agents


def agent_uses_context_ids(agent: Any) -> bool:
    """True for agents that observe a Discrete context id (the ``-Tabular`` observation)."""
    if getattr(agent, "agent_name", "") == "tabular-q":
        return True
    spec = getattr(agent, "observation_spec", None)
    return isinstance(spec, dict) and spec.get("kind") == "discrete"


def choices_of_agent(setting: Setting, agent: Any) -> list[int]:
    """The agent's greedy prompt for every evaluation input."""
    observations = setting.observations(agent_uses_context_ids(agent))
    return [int(agent.act(obs, greedy=True)) for obs in observations]


def train_env_kwargs(setting: Setting) -> dict[str, Any]:
    """Learners train on the train split with the setting's training reward."""
    return {**setting.env_kwargs, "split": "train", "reward": setting.train_reward}


def _agent_runner(name: str) -> Any:
    def run(setting: Setting, budget: int) -> PolicyResult:
        tabular = name == "tabular-q"
        result = train(setting.select_id, name, budget, seed=setting.seed,
                       env_kwargs={**train_env_kwargs(setting), "tabular": tabular},
                       progress=setting.reporter or False,
                       description=f"  {name} ({budget} steps)")
        return PolicyResult(choices=choices_of_agent(setting, result.agent), train=result.usage,
                            curve=result.curve, notes=f"trained {result.steps} steps on train")

    return run


# ------------------------------------------------------------ stable-baselines3


def _sb3_ppo(setting: Setting, budget: int) -> PolicyResult:
    from agents.sb3 import train_sb3

    env = CurveRecorder(setting.make(**train_env_kwargs(setting)))
    n_steps = max(8, min(64, budget))
    with measured(env) as usage:
        model = train_sb3(env, "ppo", budget, seed=setting.seed, n_steps=n_steps,
                          batch_size=min(32, n_steps))
    env.close()
    choices = [int(np.asarray(model.predict(obs, deterministic=True)[0]).item())
               for obs in setting.observations(False)]
    return PolicyResult(choices=choices, train=usage(), curve=env.curve,
                        notes=f"trained {budget} steps on train")


def _maskable_ppo(setting: Setting, budget: int) -> PolicyResult:
    """MaskablePPO edits the manual prompt on the Edit env (dev minibatches); its final
    prompt after one greedy episode is the result."""
    from agents.experiments.evaluate import greedy_edit_episode
    from agents.sb3 import train_sb3

    env = CurveRecorder(setting.make(setting.edit_id, **setting.edit_kwargs()))
    steps = max(16, budget // setting.edit_cost())  # each edit and each reset scores a minibatch
    n_steps = max(8, min(64, steps))
    with measured(env) as usage:
        model = train_sb3(env, "maskable_ppo", steps, seed=setting.seed, n_steps=n_steps,
                          batch_size=min(32, n_steps))

        def choose(obs: Any, mask: np.ndarray) -> int:
            return int(np.asarray(model.predict(obs, deterministic=True, action_masks=mask)[0]).item())

        episode = greedy_edit_episode(env, choose, seed=setting.seed)
    curve = env.curve
    env.close()
    return PolicyResult(prompt=episode.prompt, train=usage(), curve=curve,
                        notes=f"final prompt {episode.prompt.name} after {steps} edit steps on dev",
                        extra={"final_prompt": episode.final_parts})


# ---------------------------------------------------------------- registration

_AGENT_DESCRIPTIONS = {
    "ucb1": "UCB1 bandit over the pool (context-free)",
    "successive-halving": "successive halving over the pool (context-free)",
    "epsilon-greedy": "epsilon-greedy bandit over the pool (context-free)",
    "thompson": "Thompson sampling over the pool (context-free)",
    "tabular-q": "tabular Q-learning, k-means context ids (Select-Tabular env)",
    "dqn": "DQN, hashed bag-of-words observation (Select env)",
}

register_policy(Policy("random", "baseline", "expected score of a uniformly random pool prompt per input",
                       _random, trains=False))
register_policy(Policy("manual", "baseline", "the task's hand-written prompt (pool candidate 0)",
                       _manual, trains=False))
register_policy(Policy("best-fixed-on-dev", "baseline",
                       "every pool prompt scored on dev; the best one for every input",
                       _best_fixed_on_dev, trains=False))
for _name in ("ucb1", "successive-halving", "epsilon-greedy", "thompson", "tabular-q", "dqn"):
    assert _name in AGENTS, _name
    register_policy(Policy(_name, "agent", _AGENT_DESCRIPTIONS[_name], _agent_runner(_name)))
register_policy(Policy("sb3-ppo", "sb3", "stable-baselines3 PPO on the Select env", _sb3_ppo))
register_policy(Policy("maskable-ppo", "sb3",
                       "sb3-contrib MaskablePPO editing the manual prompt on the Edit env",
                       _maskable_ppo))
register_policy(Policy("per-query-oracle", "baseline",
                       "UPPER BOUND: the best pool prompt per input, chosen by looking at the answers",
                       _oracle, upper_bound=True, trains=False))

__all__ = ["Usage", "agent_uses_context_ids", "choices_of_agent", "train_env_kwargs"]
