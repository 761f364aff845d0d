"""Policies that improve the manual prompt on the Edit env: search baselines and Q-learning.

All of them work in the same prompt space (the task's Edit env: instruction, exemplar slots
and their order, template, verbalizer), score candidates on dev minibatches of
``setting.edit_minibatch`` inputs with ``setting.train_reward``, never spend more than
their ``budget`` of LLM calls (every requested call counts, cached or not: the env is made
with ``budget={"calls": budget}``), and return one final prompt that the evaluator scores
on the test subset.

- ``random-search``, ``hill-climb``, ``evolution`` (:mod:`agents.search`): one reset draws
  a dev minibatch; every candidate of the run is scored on it (common random numbers);
  the best candidate is the result.
- ``edit-tabular-q`` (TabularQAgent on the Edit env with ``tabular=True``) and
  ``edit-dqn`` (DQNAgent with action masks): Q-learning with gamma > 0 on the Edit env,
  ``td_target = r + gamma * max_a' Q(s', a') * (1 - terminated)``, trained like
  :func:`agents.experiments.train.train` (same env wrapper, same defaults for the env's
  kind; DQN's warm-up, replay batch and target period shrink to fit a few dozen edits),
  for at most ``budget // edit_minibatch`` edit steps, then one greedy episode. Training stops
  while the budget still pays for that greedy episode, so the greedy episode is inside the
  budget too: ``train_calls`` (training plus the greedy episode) never exceeds it. In the
  greedy episode the agent stops when no valid edit has a higher Q-value than the stop action
  (an unvisited state: stop rather than edit at random), and it takes only edits the budget
  left can score (``affordable_edits()``; on a fixed minibatch a prompt scored in training is
  free). The result is the best-scoring prompt of that episode's path (the episode scores each
  prompt it visits on its minibatch, so that choice costs nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agents import make_agent
from agents.experiments.curves import CurveRecorder, search_curve
from agents.experiments.evaluate import greedy_edit_episode
from agents.experiments.registry import Policy, PolicyResult, register_policy
from agents.experiments.setting import Setting
from agents.experiments.tie_break import break_ties
from agents.experiments.train import agent_defaults, describe_status
from agents.experiments.usage import Usage, measured, read_usage
from agents.progress import reporter_for
from agents.search import SEARCH_METHODS, MinibatchScorer, SearchMethod


def edit_env_kwargs(setting: Setting, budget: int, **extra: Any) -> dict[str, Any]:
    """``gym.make`` kwargs of the setting's Edit env for a run of ``budget`` LLM calls."""
    return setting.edit_kwargs(budget, **extra)


def search_budget(setting: Setting, budget: int) -> int:
    """What the search itself may spend: the budget less the tie-break's reserve, if any."""
    return budget if setting.tie_break is None else budget - setting.tie_break.reserve(budget)


def path_scores(initial_score: float, edits: list[dict[str, Any]]) -> list[float]:
    """The scores along a greedy episode's path, its start first. The edits' scores are rounded
    to 4 places, so the start's is too: else a prompt that only ties the start (3 of 32 right:
    0.09375 against 0.0938) would beat it."""
    return [round(initial_score, 4), *(e["score"] for e in edits)]


def tie_broken(setting: Setting, env: Any, budget: int, prompt: Any, usage: Usage, notes: str,
               extra: dict[str, Any]) -> tuple[Any, Usage, str, dict[str, Any]]:
    """The policy's result after the setting's tie-break (unchanged without one): the best
    prompt the search scored, dev ties broken on held-out inputs, what the search left of
    ``budget`` (at most the tie-break's reserve) spent on it."""
    if setting.tie_break is None or not env.unwrapped.scored_prompts():
        return prompt, usage, notes, extra
    result = break_ties(env.unwrapped, setting.select_env(), setting.tie_break,
                        reward=setting.train_reward, seed=setting.seed,
                        calls=min(setting.tie_break.reserve(budget), budget - usage.calls))
    extra = {**extra, "final_prompt": result.prompt.describe(), "tie_break": result.details,
             "tie_break_calls": result.usage.calls}
    return result.prompt, usage + result.usage, f"{notes}; tie-break: {result.notes}", extra


# ------------------------------------------------------------------------ search baselines


def _search_runner(name: str, method: SearchMethod) -> Callable[[Setting, int], PolicyResult]:
    def run(setting: Setting, budget: int) -> PolicyResult:
        own = search_budget(setting, budget)
        env = setting.make(setting.edit_id, **edit_env_kwargs(setting, own))
        with measured(env) as usage:
            scorer = MinibatchScorer(env, seed=setting.seed)
            method(scorer, np.random.default_rng(setting.seed), own // setting.edit_cost())
            config, score = scorer.best()
            prompt = env.unwrapped.prompt_of(config.as_dict())
        start_score = scorer.initial_score
        gain = "" if score is None or start_score is None else f", {score - start_score:+.3f} over the start"
        notes = (f"best of {len(scorer.history)} candidates on one dev minibatch of "
                 f"{setting.edit_cost()} (minibatch score {score if score is None else round(score, 4)}{gain})")
        history = [(e.llm_calls, e.distinct, e.score) for e in scorer.history]
        extra = {"final_prompt": prompt.describe(), "candidates": len(scorer.history),
                 "search_score": score, "start_score": start_score,
                 "search_curve": search_curve(history)}
        prompt, spent, notes, extra = tie_broken(setting, env, budget, prompt, usage(), notes, extra)
        env.close()
        return PolicyResult(prompt=prompt, train=spent, curve=scorer.curve(), notes=notes,
                            extra=extra)

    run.__name__ = f"run_{name.replace('-', '_')}"
    return run


# ------------------------------------------------------------- Q-learning on the Edit env


def greedy_q_chooser(agent: Any, stop_action: int) -> Callable[[Any, np.ndarray | None], int]:
    """Greedy action of a trained Q-learner (``q_table`` or ``q_values``), masked; the stop
    action when no valid edit has a higher Q-value than it."""

    def choose(obs: Any, mask: np.ndarray | None) -> int:
        if hasattr(agent, "q_table"):
            q = np.asarray(agent.q_table[int(np.asarray(obs).reshape(()))], dtype=np.float64)
        else:
            q = np.asarray(agent.q_values(np.asarray(obs)[None])[0], dtype=np.float64)
        allowed = np.ones(len(q), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        edits = np.where(allowed, q, -np.inf)
        edits[stop_action] = -np.inf
        best = int(np.argmax(edits))
        return best if edits[best] > q[stop_action] else stop_action

    return choose


FIXED_MINIBATCH_EPSILON = 0.1
"""Exploration of the tabular Q-learner when rewards are deterministic (a fixed minibatch):
a constant epsilon, since every revisit is free and only new prompts cost calls."""
UNTRIED_EDIT_Q = -0.01
"""Initial Q of an edit not tried yet (the stop action starts at 0): where it has learned
nothing the greedy learner stops instead of wandering through unscored prompts, so every
new prompt it pays for is one epsilon-step away from the best path it knows."""
PREMISES = 3
"""The most calls a new prompt's calibration adds (its content-free inputs)."""
REVISITS_PER_CALL = 25
"""With a fixed minibatch, edit steps (most of them free revisits) allowed per prompt the
budget pays for: a cap for a learner that stops finding new prompts."""


def edit_kinds(meanings: list[str]) -> list[int]:
    """A group id per Edit-env action: the part it edits (instruction, exemplar slot k, the
    order, template, verbalizer, calibration; stop alone), from ``action_meanings()``."""
    def part(meaning: str) -> str:
        words = meaning.split()
        if words[0] == "put":  # put train example j in slot k
            return f"slot {words[-1]}"
        if words[0] == "clear":
            return f"slot {words[-1]}"
        if words[0] == "propose":  # each way of writing prompt text is a lever of its own
            return meaning
        return words[0] if words[0] in ("swap", "stop") else words[1]  # "set <part> i"

    names = list(dict.fromkeys(part(m) for m in meanings))
    return [names.index(part(m)) for m in meanings]


def q_learner_kwargs(env: Any, agent_name: str, seed: int, new_prompts: int,
                     deterministic: bool, action_prior: bool = False) -> dict[str, Any]:
    """Hyperparameters of an Edit-env Q-learner for a run that can score ``new_prompts`` prompts."""
    kwargs = {**agent_defaults(env, agent_name), "seed": seed}
    if agent_name == "tabular-q" and deterministic:
        # deterministic rewards: alpha = 1 makes the update the rule Q(s,a) = r + gamma max Q(s',a');
        # exploration picks the part to edit uniformly, as the searches' mutations do
        meanings = env.unwrapped.action_meanings()
        kwargs.update(learning_rate=1.0, epsilon_start=FIXED_MINIBATCH_EPSILON,
                      epsilon_end=FIXED_MINIBATCH_EPSILON, action_groups=edit_kinds(meanings),
                      initial_q=[0.0 if m == "stop" else UNTRIED_EDIT_Q for m in meanings],
                      action_prior=action_prior)
    if agent_name == "dqn":  # a few dozen scored prompts at most: learn from the first ones
        kwargs.update(learning_starts=min(kwargs["learning_starts"], max(4, new_prompts // 5)),
                      batch_size=min(kwargs["batch_size"], max(4, new_prompts // 5)),
                      target_update_interval=min(kwargs["target_update_interval"], max(5, new_prompts // 10)))
    return kwargs


def _edit_q_runner(agent_name: str, action_prior: bool = False,
                   propose: bool = False) -> Callable[[Setting, int], PolicyResult]:
    def run(setting: Setting, total: int) -> PolicyResult:
        tabular = agent_name == "tabular-q"
        budget = search_budget(setting, total)  # the rest is the tie-break's
        writing = {"proposer": setting.proposer} if propose else {}
        env = CurveRecorder(setting.make(setting.edit_id,
                                         **edit_env_kwargs(setting, budget, tabular=tabular, **writing)))
        m = setting.edit_cost()
        deterministic = bool(env.unwrapped.fixed_minibatch)
        stop = env.unwrapped.action_meanings().index("stop")
        # the greedy episode: a reset and an edit per step, each a new prompt at worst; on a
        # fixed minibatch it follows edits of known value only (memory answers them: free)
        reserve = 0 if deterministic else (1 + int(env.unwrapped.max_edits)) * m
        calibrated = bool(env.unwrapped.calibrations or env.unwrapped.calibration)
        premises = PREMISES if calibrated else 0
        new_prompts = max(0, (budget - reserve) // m)
        steps = new_prompts * (REVISITS_PER_CALL if deterministic else 1)
        agent = make_agent(agent_name, env, **q_learner_kwargs(env, agent_name, setting.seed,
                                                                new_prompts, deterministic, action_prior))
        reporter = reporter_for(setting.reporter or False)
        log = None
        with measured(env) as usage, reporter:
            bar = reporter.add(f"  edit-{agent_name} ({new_prompts} new prompts at most)", max(budget, 1))

            def callback(step: int, reward: float, info: dict[str, Any]) -> bool:
                spent = read_usage(env).get("env_calls", 0)
                reporter.update(bar, completed=spent, status=describe_status(env.curve))
                # the next edit (and, on resampled minibatches, a reset after it; a calibrated
                # prompt's premises), and the greedy episode, must still fit
                return spent + (1 if deterministic else 2) * m + premises + reserve <= budget

            if steps >= 2 and 3 * m + reserve <= budget:
                log = agent.learn(env, steps, seed=setting.seed, callback=callback)
            path: list[Any] = []
            choose = greedy_q_chooser(agent, stop)

            def record(obs: Any, mask: np.ndarray | None) -> int:
                path.append(env.unwrapped.prompt)
                # only edits the budget left can score: on a fixed minibatch no calls are
                # reserved, and a Q-network (unlike the table, whose untried edits sit below
                # stop) also rates edits to prompts it never scored
                return choose(obs, env.unwrapped.affordable_edits())

            episode = greedy_edit_episode(env, record, seed=setting.seed)
        curve = env.curve[: len(env.curve) - len(episode.edits)]  # training steps only
        prompts = [*path, episode.prompt]
        scores = path_scores(episode.initial_score, episode.edits)
        best = int(np.argmax(scores))  # the first of ties: the shorter path
        trained = 0 if log is None else log.steps
        where = "one fixed dev minibatch" if deterministic else "dev minibatches"
        actions = [e["action"] + (" (no budget left: not applied)" if e["unscored"] else "")
                   for e in episode.edits]
        notes = (f"{trained} edit steps ({0 if log is None else log.episodes} episodes) on {where} "
                 f"of {m}, gamma {agent.config.gamma}; greedy "
                 f"episode {actions}, best prompt after {best} edits "
                 f"(minibatch score {scores[best]:.3f}, start {scores[0]:.3f})")
        visited = [(c["llm_calls"], c["distinct"], c["score"]) for c in curve if "score" in c]
        first = (curve[0]["llm_calls"], curve[0]["distinct"], scores[0]) if curve else None
        proposed: dict[str, Any] = {}
        if propose:
            written = env.unwrapped.instructions[env.unwrapped.pool_size:]
            notes += f"; {len(written)} instructions written"
            proposed = {"written_instructions": len(written),
                        "proposer_token_unit": env.unwrapped.proposer.token_unit}
        extra = {**proposed, "final_prompt": prompts[best].describe(), "edit_steps": trained,
                 "search_score": scores[best], "start_score": scores[0],
                 "search_curve": search_curve(visited, first)}
        # with a tie-break, the best prompt the learner scored (not only on its greedy path)
        prompt, spent, notes, extra = tie_broken(setting, env, total, prompts[best], usage(), notes,
                                                 extra)
        env.close()
        return PolicyResult(prompt=prompt, train=spent, curve=curve, notes=notes, extra=extra)

    run.__name__ = (f"run_edit_{agent_name.replace('-', '_')}{'_prior' if action_prior else ''}"
                    f"{'_propose' if propose else ''}")
    return run


# ---------------------------------------------------------------------------- registration

_SEARCH_DESCRIPTIONS = {
    "random-search": "random configurations of the Edit env's prompt space, best on one dev minibatch",
    "hill-climb": "greedy coordinate ascent over the Edit env's prompt parts, random restarts",
    "evolution": "EvoPrompt-style GA (roulette, crossover, mutation) over structured prompts",
}
for _name, _method in SEARCH_METHODS.items():
    register_policy(Policy(_name, "search", _SEARCH_DESCRIPTIONS[_name], _search_runner(_name, _method)))
register_policy(Policy("edit-tabular-q", "agent",
                       "tabular Q-learning (gamma 0.9) editing the manual prompt on the Edit-Tabular env",
                       _edit_q_runner("tabular-q")))
register_policy(Policy("edit-tabular-q-prior", "agent",
                       "edit-tabular-q whose new states start each edit at its mean reward elsewhere "
                       "(action_prior: what an edit did in other prompts is the first guess here)",
                       _edit_q_runner("tabular-q", action_prior=True)))
register_policy(Policy("edit-dqn", "agent",
                       "DQN with action masks (gamma 0.9) editing the manual prompt on the Edit env",
                       _edit_q_runner("dqn")))
register_policy(Policy("edit-tabular-q-propose", "agent",
                       "edit-tabular-q whose edits include LLM-written instructions (propose induce, "
                       "reflect, history) and bootstrapped demos (propose demo)",
                       _edit_q_runner("tabular-q", propose=True), writes=True))
register_policy(Policy("edit-dqn-propose", "agent",
                       "edit-dqn whose edits include LLM-written instructions and bootstrapped demos",
                       _edit_q_runner("dqn", propose=True), writes=True))

__all__ = ["edit_env_kwargs", "greedy_q_chooser"]
