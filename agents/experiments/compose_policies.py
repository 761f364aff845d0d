"""Policies on the Compose env (RLPrompt's MDP): a DQN over words, random word search, fixed prompts.

The Compose env (``setting.compose_id``, made with ``setting.env_kwargs``,
``setting.compose_options``, the training reward and ``budget={"calls": ...}``) writes a
prompt word by word and pays the finished prompt's score on a train minibatch.

- ``compose-dqn``: :class:`~agents.dqn.DQNAgent` with Monte-Carlo targets (gamma 1,
  ``n_step`` at least the prompt length: every word's target is the finished prompt's
  score), action masks, and a Q-head over the words' features
  (``Q(s, a) = g(s) . f_a + b_a``, the env's ``token_features()`` reduced to
  :data:`FEATURE_DIM` principal components), so that what it learns about one word carries
  over to similar words. Training stops while the budget still pays for one greedy episode.
- ``compose-random-search``: uniformly random full-length prompts (distinct words) for the
  same budget.

Both then rescore their :data:`CANDIDATES` best prompts on the first ``setting.dev_limit``
dev inputs (all of dev when None) with the training reward and return the best one: the
learner its greedy prompt and the prompts with the best mean training reward, random search
the prompts with the best training reward. The same selection for both, paid from the same
budget: training, the greedy episode and the rescoring together never exceed it.

- ``compose-random``: one uniformly random full-length prompt drawn with the seed (no LLM
  call before the test); over seeds, the expected score of a random word prompt.
- ``compose-empty``: the empty prompt (the manual prompt's template without an instruction).
- ``compose-manual``: the task's manual prompt (pool candidate 0) scored directly on the
  evaluation inputs: the same number as the ``manual`` row, without computing the pool's
  score tables (which cost every pool prompt on every test input).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agents import make_agent
from agents.experiments.curves import CurveRecorder
from agents.experiments.registry import Policy, PolicyResult, register_policy
from agents.experiments.setting import Setting
from agents.experiments.train import agent_defaults, describe_status
from agents.experiments.usage import Usage, measured, read_usage
from agents.progress import reporter_for
from agents.rollout import run_episode

FEATURE_DIM = 32
"""Principal components of the word features the DQN's Q-head reads."""
CANDIDATES = 5
"""Prompts each searching policy rescores on dev before it chooses."""


def compose_env_kwargs(setting: Setting, budget: int) -> dict[str, Any]:
    """``gym.make`` kwargs of the setting's Compose env for a run of ``budget`` LLM calls."""
    if setting.compose_id is None:
        raise ValueError("compose policies need the setting's compose_id (a classification task's "
                         "Compose env, PromptEnv/<Task>-Compose-v0)")
    kwargs: dict[str, Any] = {**setting.env_kwargs, **setting.compose_options,
                              "budget": {"calls": max(0, int(budget))}}
    if setting.train_reward:
        kwargs["reward"] = setting.train_reward
    return kwargs


def reduce_features(features: np.ndarray, dim: int) -> np.ndarray:
    """Word features projected on their ``dim`` principal components (unit variance overall);
    the last row (the stop action) stays zero."""
    words = np.asarray(features[:-1], dtype=np.float64)
    centered = words - words.mean(axis=0)
    _, _, components = np.linalg.svd(centered, full_matrices=False)
    projected = centered @ components[: min(dim, len(components))].T
    projected /= max(float(projected.std()), 1e-12)
    return np.vstack([projected, np.zeros((1, projected.shape[1]))]).astype(np.float32)


class CandidateLog:
    """Finished prompts of a run (action ids), their mean training reward, and a per-episode curve."""

    def __init__(self) -> None:
        self.rewards: dict[tuple[int, ...], list[float]] = {}
        self.curve: list[dict[str, float]] = []
        self.episodes = 0

    def add(self, info: dict[str, Any], usage: dict[str, int]) -> None:
        """Record a finished episode from its last info (ignored when the budget cut it short)."""
        if "score" not in info:
            return
        self.episodes += 1
        self.rewards.setdefault(tuple(info["prompt_ids"]), []).append(float(info["score"]))
        self.curve.append({"step": self.episodes, "reward": float(info["score"]),
                           "llm_calls": int(usage.get("env_calls", 0)),
                           "distinct": int(usage.get("distinct", 0)),
                           "cache_hits": int(usage.get("cache_hits", 0))})

    def best(self, count: int, exclude: tuple[tuple[int, ...], ...] = ()) -> list[tuple[int, ...]]:
        """The ``count`` prompts with the highest mean training reward (ties: first seen first)."""
        ranked = sorted((ids for ids in self.rewards if ids not in exclude),
                        key=lambda ids: -float(np.mean(self.rewards[ids])))
        return ranked[:count]


def words_of(prompt: Any) -> str:
    """The composed words of a Compose env prompt (its name without the ``compose:`` prefix)."""
    return str(prompt.name).removeprefix("compose:")


def dev_inputs(setting: Setting) -> int:
    """How many dev inputs the final rescoring reads."""
    dev = setting.select_env().task.split("dev")
    return len(dev) if setting.dev_limit is None else min(len(dev), setting.dev_limit)


def choose_on_dev(setting: Setting, env: Any, candidates: list[tuple[int, ...]]) -> tuple[Any, list[dict[str, Any]], Usage]:
    """The candidate with the best mean training reward on dev, every candidate's dev score,
    and what rescoring cost (measured)."""
    compose = env.unwrapped
    prompts = [compose.prompt_of(ids) for ids in candidates]
    select = setting.select_env()
    with measured(select) as usage:
        table = select.score_prompts(prompts, "dev", reward=setting.train_reward, limit=setting.dev_limit)
    means = table.mean(axis=0)
    scored = [{"prompt_words": words_of(p), "dev_score": round(float(m), 4)}
              for p, m in zip(prompts, means, strict=True)]
    return prompts[int(np.argmax(means))], scored, usage()


def _search_runner(learner: bool) -> Callable[[Setting, int], PolicyResult]:
    name = "compose-dqn" if learner else "compose-random-search"

    def run(setting: Setting, budget: int) -> PolicyResult:
        rescore = CANDIDATES * dev_inputs(setting)
        env = CurveRecorder(setting.make(setting.compose_id, **compose_env_kwargs(setting, budget - rescore)))
        compose = env.unwrapped
        env_budget = max(0, budget - rescore)
        minibatch = min(int(compose.minibatch_size), len(compose.examples))
        length = int(compose.prompt_length)
        log = CandidateLog()
        reporter = reporter_for(setting.reporter or False)

        def calls() -> int:
            return int(read_usage(env).get("env_calls", 0))

        greedy: tuple[int, ...] | None = None
        with measured(env) as spent, reporter:
            bar = reporter.add(f"  {name} ({env_budget} calls)", max(env_budget, 1))
            if learner:
                kwargs = {**agent_defaults(env, "dqn"), "seed": setting.seed,
                          "action_features": reduce_features(compose.token_features(), FEATURE_DIM)}
                agent = make_agent("dqn", env, **kwargs)

                def callback(step: int, reward: float, info: dict[str, Any]) -> bool:
                    if "score" in info or info.get("budget_exhausted"):
                        log.add(info, read_usage(env))
                        reporter.update(bar, completed=calls(), status=describe_status(log.curve))
                    # the next episode and the greedy episode must still fit
                    return not info.get("budget_exhausted") and calls() + 2 * minibatch <= env_budget

                reference = int(compose.zscore_prompts) * len(compose.examples) if compose.zscore else 0
                episodes = (env_budget - reference - minibatch) // minibatch  # what the budget pays
                if episodes >= 1:  # exploration decays over the episodes the budget pays for
                    agent.learn(env, episodes * length, seed=setting.seed, callback=callback)

                def choose(obs: Any, mask: np.ndarray | None) -> int:
                    return agent.act(obs, greedy=True, action_mask=mask)

                episode = run_episode(env, choose, seed=setting.seed + 1)
                greedy = tuple(episode.final_info["prompt_ids"])
            else:
                rng = np.random.default_rng(setting.seed)

                def choose(obs: Any, mask: np.ndarray | None) -> int:
                    allowed = np.ones(compose.vocab_size + 1, dtype=bool) if mask is None else mask.astype(bool)
                    allowed[compose.stop_action] = False
                    return int(rng.choice(np.flatnonzero(allowed)))

                seed: int | None = setting.seed
                while calls() + minibatch <= env_budget:
                    episode = run_episode(env, choose, seed=seed)
                    seed = None
                    log.add(episode.final_info, read_usage(env))
                    reporter.update(bar, completed=calls(), status=describe_status(log.curve))
                    if episode.final_info.get("budget_exhausted"):
                        break
        train = spent()
        pool = ([greedy] if greedy is not None else [])
        pool += log.best(CANDIDATES - len(pool), exclude=tuple(pool))
        if not pool:
            pool = [()]  # nothing finished within the budget: the empty prompt
        prompt, scored, rescoring = choose_on_dev(setting, env, pool)
        env.close()
        notes = (f"{log.episodes} episodes ({train.calls} calls) on train minibatches of {minibatch}; "
                 f"best of {len(pool)} candidates on dev: {prompt.name!r}")
        return PolicyResult(prompt=prompt, train=train + rescoring, curve=log.curve, notes=notes,
                            extra={"final_prompt": prompt.describe(), "prompt_words": words_of(prompt),
                                   "episodes": log.episodes, "candidates": scored,
                                   "compose_options": dict(setting.compose_options)})

    run.__name__ = f"run_{name.replace('-', '_')}"
    return run


def _fixed_runner(which: str) -> Callable[[Setting, int], PolicyResult]:
    def run(setting: Setting, budget: int) -> PolicyResult:
        if which == "manual":
            prompt = setting.select_env().prompts[0]
            return PolicyResult(prompt=prompt, notes="the task's manual prompt, scored directly",
                                extra={"final_prompt": prompt.describe()})
        env = setting.make(setting.compose_id, **compose_env_kwargs(setting, 0))
        compose = env.unwrapped
        ids: list[int] = []
        if which == "random":
            rng = np.random.default_rng(setting.seed)
            ids = [int(i) for i in rng.choice(compose.vocab_size, compose.prompt_length, replace=False)]
        prompt = compose.prompt_of(ids)
        env.close()
        return PolicyResult(prompt=prompt, notes=f"{which} prompt {prompt.name!r}",
                            extra={"final_prompt": prompt.describe(),
                                   "prompt_words": words_of(prompt)})

    run.__name__ = f"run_compose_{which}"
    return run


register_policy(Policy("compose-random", "baseline", "one random word prompt of the Compose env "
                       "(drawn with the seed)", _fixed_runner("random"), trains=False))
register_policy(Policy("compose-empty", "baseline", "the Compose env's empty prompt (no instruction)",
                       _fixed_runner("empty"), trains=False))
register_policy(Policy("compose-manual", "baseline", "the manual prompt scored directly (the `manual` "
                       "row's number, without the pool's score tables)", _fixed_runner("manual"),
                       trains=False))
register_policy(Policy("compose-random-search", "search",
                       "random word prompts on the Compose env at the same budget, best on train "
                       "then on dev", _search_runner(False)))
register_policy(Policy("compose-dqn", "agent",
                       "DQN over the word vocabulary (Monte-Carlo targets, masks, word features) "
                       "writing a prompt on the Compose env (RLPrompt's MDP)", _search_runner(True)))

__all__ = ["CandidateLog", "compose_env_kwargs", "reduce_features", "words_of"]
