"""PromptSelectEnv: choose one prompt from a pool for each query."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from prompt_env.encoders import kmeans, nearest
from prompt_env.envs.base import (
    PromptEnvBase,
    as_action,
    check_int,
    check_kwarg_types,
    check_reset_options,
)
from prompt_env.prompts import Prompt
from prompt_env.scoring import Outcome, outcome_matrix, score_matrix
from prompt_env.tasks.base import Example


class PromptSelectEnv(PromptEnvBase):
    """
    ## Description

    A contextual-bandit view of prompt engineering. Each step shows one input
    of a task (a review, a news article, a question); the agent picks one of
    the K prompts of the task's prompt pool; the task LLM answers that input
    under that prompt, and the reward is the quality of the answer. A good
    policy learns which prompt suits which kind of input; the best fixed
    prompt and the per-query oracle bound it from below and above.

    ## Action Space

    `Discrete(K)`: the index of a prompt in `env.unwrapped.prompts`
    (the task pool's candidates; index 0 is the task's manual prompt).

    ## Observation Space

    `Box(-1, 1, (encoder_dim,), float32)`: the current input encoded by a
    hashed bag of words and bigrams (`encoder="hashing"`, default) or by the
    task LLM's mean-pooled hidden states (`encoder="llm"`, `(576,)` for the
    default model), L2-normalised. The `-Tabular` variant observes
    `Discrete(n_contexts)`: the k-means cluster of the encoded input
    (clusters fit once on the split, seeded, so the ids are stable).

    ## Rewards

    The reward named by `reward` (default: the task's metric; for
    classification e.g. `"accuracy"` or RLPrompt's `"margin"`, for generation
    `"rouge_l"`, `"chrf"`, `"f1"`, ...) for the LLM's answer to the current
    input under the chosen prompt. `info["correct"]` says whether the answer
    was right (classification, exact-match tasks).

    ## Starting State

    `reset(seed=...)` draws the episode's inputs from the split with
    `self.np_random` (without replacement when the split is large enough).
    `reset(options={"examples": [i, j, ...]})` fixes them instead (used for
    evaluation sweeps over a whole split).

    ## Episode End

    Terminated after `episode_length` inputs. Truncated early with
    `info["budget_exhausted"] = True` when the env's LLM budget runs out.

    ## Arguments

    - `task`: catalog name or path (`"bbc-topic"`, `"sst2"`, `"my.jsonl"`, a directory).
    - `llm`: LLM spec (`"default"`, `"hf:<path>"`, `{"backend": "openai", ...}`).
    - `split`: `"train"`, `"dev"` or `"test"`.
    - `reward`: reward name from `prompt_env.rewards` (None: the task's metric), an
      importable `"package.module:function"`, or `"judge:<llm spec>"` (generation).
    - `episode_length`: inputs per episode (default 8).
    - `encoder`, `encoder_dim`: observation encoder (`"hashing"` or `"llm"`).
    - `tabular`, `n_contexts`: Discrete context-id observations.
    - `budget`: `{"calls": N}` and/or `{"tokens": N}` LLM calls the env may
      request (cached or not, so a run is reproducible whatever the cache
      holds; cap real spend with `load_llm(budget=...)`).
    - `data_dir`, `task_options`, `max_examples`: where and how much data.
    - `max_new_tokens`: cap on generated tokens (generation tasks; None: the task's default).
    - `calibration`: calibrated label scoring for classification rewards:
      `"content-free"` (contextual calibration, Zhao et al. 2021), `"pmi"`
      (domain-conditional PMI, Holtzman et al. 2021) or None (raw label
      log-probs, default); see `prompt_env.scoring`. A generation task with
      calibration set raises ValueError.

    ## Public Methods

    Besides the Gymnasium API and those of every prompt env (`llm_usage()`,
    `use_llm(llm)`): `score_table(split, reward, limit)` (every pool prompt
    on every input of a split, batched and cached: what the baselines read),
    `score_prompts(prompts, split, reward, limit, indices=...)` (the same for any prompts, on the
    first `limit` inputs or those at `indices`), `answers(prompts, split, indices)` (what the
    LLM answered: each pair's prediction, reference, label log-probs and metrics),
    `observe_all(split, limit)` (the observation of every input of a split, to
    evaluate a policy without stepping) and the attribute `prompts` (the pool).

    ## Registered Configurations

    `PromptEnv/<Task>-Select-v0` and `PromptEnv/<Task>-Select-Tabular-v0`
    for every catalog task, and `PromptEnv/File-Select[-Tabular]-v0` for a
    user's file or directory (`task=<path>` required; see `prompt_env.registration`).

    ## Version History

    - v0: initial version.
    """

    metadata = {**PromptEnvBase.metadata, "prompt_env_kind": "select"}

    def __init__(
        self,
        task: str = "bbc-topic",
        llm: str | dict[str, Any] = "default",
        *,
        episode_length: int = 8,
        tabular: bool = False,
        n_contexts: int = 8,
        **options: Any,
    ) -> None:
        super().__init__(task, llm, **{**self.option_defaults, **options})
        check_kwarg_types(tabular=(tabular, bool, False))
        check_int("episode_length", episode_length, 1)
        check_int("n_contexts", n_contexts, 1, 100_000)
        self.episode_length = episode_length
        self.tabular = tabular
        self.n_contexts = n_contexts
        self.prompts: list[Prompt] = list(self.task.prompt_pool.candidates)
        self.action_space = spaces.Discrete(len(self.prompts))
        if tabular:
            self.observation_space = spaces.Discrete(n_contexts)
        else:
            self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.context_dim,), dtype=np.float32)
        self._centers: np.ndarray | None = None
        self._memo: dict[tuple[int, int], Outcome] = {}
        self._order: list[int] = []
        self._t = 0
        self._done = True

    # ------------------------------------------------------------ observations
    def context_id(self, example: Example) -> int:
        """The tabular context of an input: its k-means cluster.

        Clusters are fit on the task's train and dev inputs (never test), so a
        context id means the same thing in every split.
        """
        if self._centers is None:
            fit_on = [e.text for name in ("train", "dev") for e in self.task.splits.get(name, [])]
            fit_on = fit_on[:1000]  # instruction-induction train files hold thousands
            points = self.encoder.encode(fit_on or [e.text for e in self.examples])
            self._centers = kmeans(points, int(self.observation_space.n), seed=0)
        return int(nearest(self.encoder.encode([example.text]).astype(np.float64), self._centers)[0])

    def observe(self, example: Example) -> np.ndarray | int:
        if self.tabular:
            return self.context_id(example)
        encode_one = getattr(self.encoder, "encode_one", None)
        if encode_one is not None:
            return encode_one(example.text).copy()
        return self.encoder.encode([example.text])[0]

    @property
    def current_example(self) -> Example:
        return self.examples[self._order[min(self._t, len(self._order) - 1)]]

    # -------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode_calls = 0
        options = check_reset_options(self.env_id, options, ("examples",))
        if "examples" in options:
            order = [int(i) for i in options["examples"]]
            if not order or not all(0 <= i < len(self.examples) for i in order):
                raise ValueError(
                    f"options['examples'] must be non-empty indices in [0, {len(self.examples)})"
                )
            self._order = order
        else:
            n = len(self.examples)
            replace = n < self.episode_length
            self._order = [int(i) for i in self.np_random.choice(n, self.episode_length, replace=replace)]
        self._t = 0
        self._done = False
        example = self.current_example
        self._last_render = f"[{self.env_id}] new episode; input 1/{len(self._order)}: {example.text[:200]}"
        info = {"example_index": self._order[0], "input": example.text, **self.llm_info()}
        return self.observe(example), info

    def pending_pair(self, action: Any) -> tuple[int, tuple[Prompt, Example]]:
        """Validate ``action`` and return the (prompt, input) pair this step will score."""
        if self._done:
            raise RuntimeError(f"{self.env_id}: call reset() before step() (the episode has ended)")
        index = as_action(action, len(self.prompts), self.env_id)
        return index, (self.prompts[index], self.current_example)

    def step(self, action: Any):
        index, pair = self.pending_pair(action)
        if not self.budget_allows(1):
            return self.finish_step(index, None)
        outcome = self.memo_lookup(index)
        if outcome is None:
            outcome = self.memo_store(index, self.run_pairs([pair])[0])
        return self.finish_step(index, outcome)

    # The LLM is deterministic, so an (prompt, input) pair scored once in this
    # process is answered from memory: a warm step costs no SQLite round trip.
    # It still counts as a requested call and a cache hit.
    def memo_lookup(self, index: int) -> Outcome | None:
        outcome = self._memo.get((index, self._order[self._t]))
        if outcome is not None and self._llm is not None:
            self._llm.stats.record(calls=1, cache_hits=1)
        return outcome

    def memo_store(self, index: int, outcome: Outcome) -> Outcome:
        if len(self._memo) < 200_000:
            self._memo[(index, self._order[self._t])] = outcome
        return outcome

    def finish_step(self, index: int, outcome: Outcome | None):
        """Advance the episode with the scored outcome (None: the budget ran out)."""
        example = self.current_example
        if outcome is None:
            self._done = True
            info = {"budget_exhausted": True, "prompt_index": index, **self.llm_info()}
            self._last_render = f"[{self.env_id}] LLM budget exhausted after {self.calls_used} calls"
            return self.observe(example), 0.0, False, True, info
        self.charge([outcome.prompt_text])
        prompt = self.prompts[index]
        info: dict[str, Any] = {
            "prompt_index": index,
            "example_index": self._order[self._t],
            "budget_exhausted": False,
            **self.outcome_info(outcome, prompt),
        }
        self._last_render = (self._t, index, example, outcome)
        self._t += 1
        terminated = self._t >= len(self._order)
        if terminated:
            self._done = True
        info.update(self.llm_info())
        next_example = self.current_example
        info["next_example_index"] = self._order[min(self._t, len(self._order) - 1)]
        return self.observe(next_example), float(outcome.score), terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if isinstance(self._last_render, str):
            return self._last_render
        t, index, example, outcome = self._last_render
        return (
            f"[{self.env_id}] input {t + 1}/{len(self._order)}: {example.text[:120]!r}\n"
            f"  prompt {index} ({self.prompts[index].name}) -> {outcome.prediction!r} "
            f"(reference {outcome.reference!r}, reward {outcome.score:+.3f})"
        )

    # -------------------------------------------------- baselines and analysis
    def score_table(self, split: str | None = None, reward: str | None = None,
                    limit: int | None = None,
                    on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Reward of every prompt on every input of a split: shape ``(n_inputs, K)``.

        Batched LLM calls per prompt group over chunks of inputs (each chunk
        cached as it finishes); used by the baselines (manual,
        best-fixed-on-dev, per-query oracle) and by analyses.
        ``on_progress(done, total)`` reports the (prompt, input) pairs scored.
        """
        return self.score_prompts(self.prompts, split, reward, limit, on_progress)

    def score_prompts(self, prompts: Sequence[Prompt], split: str | None = None,
                      reward: str | None = None, limit: int | None = None,
                      on_progress: Callable[[int, int], None] | None = None, *,
                      indices: Sequence[int] | None = None) -> np.ndarray:
        """Reward of each given prompt (pool or not, e.g. an edited one) on every input of a
        split (the first ``limit``, or the inputs at ``indices``): shape
        ``(n_inputs, len(prompts))``, batched and cached like :meth:`score_table`."""
        return score_matrix(self.llm, self.task, list(prompts), self._inputs(split, limit, indices),
                            reward or self.reward_name, on_progress=on_progress,
                            calibration=self.calibration)

    def answers(self, prompts: Sequence[Prompt], split: str | None = None,
                indices: Sequence[int] | None = None,
                reward: str | None = None) -> list[list[Outcome]]:
        """What the LLM answered: ``result[i][j]`` is the :class:`~prompt_env.scoring.Outcome`
        (prediction, reference, label log-probs, metrics) of input ``indices[i]`` of ``split``
        under prompt ``j``; cached like :meth:`score_prompts`."""
        return outcome_matrix(self.llm, self.task, list(prompts), self._inputs(split, None, indices),
                              reward or self.reward_name, calibration=self.calibration)

    def _inputs(self, split: str | None, limit: int | None,
                indices: Sequence[int] | None) -> list[Example]:
        examples = self.task.split(split) if split else self.examples
        if indices is not None:
            bad = [i for i in indices if not 0 <= int(i) < len(examples)]
            if bad:
                raise ValueError(f"{self.env_id}: indices {bad[:5]} are outside split {split!r} "
                                 f"({len(examples)} inputs)")
            return [examples[int(i)] for i in indices]
        return list(examples if limit is None else examples[:limit])

    def observe_all(self, split: str | None = None, limit: int | None = None) -> list[Any]:
        """Observations of every input of a split (for evaluating a policy without stepping)."""
        examples = self.task.split(split) if split else self.examples
        if limit is not None:
            examples = examples[:limit]
        return [self.observe(e) for e in examples]
