"""PromptComposeEnv: write a short discrete prompt one token at a time (RLPrompt's MDP)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from prompt_env.envs.base import (
    MAX_SIZE,
    PromptEnvBase,
    as_action,
    check_int,
    check_kwarg_types,
    check_reset_options,
)
from prompt_env.prompts import Prompt, Template
from prompt_env.rewards import zscore_per_input
from prompt_env.scoring import Outcome
from prompt_env.vocabulary import check_words, join_words, word_vocabulary

POSITIONS = ("before", "after")
"""Where the composed prompt goes: in the instruction slot before the input, or after the input."""
DEFAULT_VOCAB_SIZE = 2000
MAX_PROMPT_LENGTH = 64
REFERENCE_SEED = 0
"""Seed of the reference prompts of ``zscore=True`` (fixed: the reward depends on kwargs only)."""
_MEMO_LIMIT = 200_000
_EMBED_CHUNK = 256
_FEATURES: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
"""Token features per (LLM identity, words), computed once per process."""


class PromptComposeEnv(PromptEnvBase):
    """
    ## Description

    RLPrompt's setting (Deng et al. 2022) as a Gymnasium env. An episode writes a
    prompt of up to `prompt_length` words, one word per step, from a fixed
    candidate vocabulary of whole-word tokens of the task LM. The finished prompt
    joins the words with single spaces and goes into the task's manual prompt in
    place of its instruction (`position="before"`: before the input), or after the
    input, right before the answer cue (`position="after"`: `"Review: <input>\\n<prompt>
    Sentiment:"`, the layout of RLPrompt's few-shot classification template
    `"{sentence} {prompt} <mask> ."`). The template, label words and chat flag are the
    manual prompt's. The reward is the finished prompt's score on a minibatch of
    inputs fixed for the episode. Classification tasks only.

    ## Action Space

    `Discrete(V + 1)`: action `i < V` appends word `i` of the vocabulary
    (`vocabulary_words()`); action `V` stops (the prompt ends here; stopping at once
    gives the empty prompt). With `mask_repeats=True` (default) a word already in
    the prompt is masked in `info["action_mask"]` (int8) and `action_masks()`
    (sb3-contrib's convention); taken anyway, it writes nothing, uses up its
    position and costs `-invalid_penalty`, never an exception.

    The vocabulary (`vocabulary=None`, the default) follows the rule of
    `prompt_env.vocabulary`: the first `vocab_size` (default 2000) token ids of the
    task LM's tokenizer that decode to a space and an ASCII alphabetic word of two
    or more letters (BPE ids run roughly from frequent to rare), or, for an LLM
    without a tokenizer (the fake test double, a server), the task's most frequent
    train and dev words. The size is known at construction (`vocab_size`); the words
    are read from the tokenizer when first needed (the first step), so making the
    env loads no model. `vocabulary=[...]` gives your own words instead (then
    `V = len(vocabulary)`).

    ## Observation Space

    `MultiDiscrete([V + 1] * prompt_length + [prompt_length + 1])`, int64: the
    action id written at each position so far (`V` for a position not yet written,
    or wasted on a masked word), then the number of positions used. SB3 one-hot
    encodes it. `token_features()` gives numbers for each action (the task LM's
    embedding of each word) for agents that generalise across words.

    ## Rewards

    0 for every word; after the last word (or the stop action), the finished
    prompt's score on the episode's minibatch: the mean over its inputs of the
    reward named by `reward` (default: the task's metric, accuracy; `"margin"` is
    RLPrompt's piecewise label-probability margin), with calibrated label scores
    when `calibration` is set. With `zscore=True` each input's reward is first
    z-scored across prompts, RLPrompt's per-input normalisation: against the scores
    that `zscore_prompts` reference prompts (random full-length word prompts drawn
    with a fixed seed, so the reward stays a function of the prompt and the inputs)
    get on that input, the composed prompt included in the mean and standard
    deviation (so a z-score is bounded). The reference prompts are scored once on
    every input of the split, when first needed, and charged to the env's budget
    and `llm_usage()` then. Masked words add `-invalid_penalty` at their step.

    `info` is plain data: `prompt_ids` and `prompt_tokens` (the action ids and words
    written so far), `prompt_text`, `position`, `action_mask`, `valid_action`,
    `budget_exhausted`, `llm_calls`; after the last word also `score` (the terminal
    reward), `accuracy` (on the minibatch), `input_scores` (each input's reward before
    z-scoring), `minibatch`, `correct`, and the rendered `prompt`, `output` and
    `reference` of the first input.

    Every (prompt, input) pair is scored in one batched LLM call per episode,
    through the persistent response cache; pairs already scored in this process
    are answered from memory (counted as requested calls and cache hits).

    ## Starting State

    The empty prompt, and a minibatch of `minibatch_size` inputs drawn from `split`
    without replacement with `self.np_random` (all of them when the split is
    smaller). No LLM call happens at reset.

    ## Episode End

    Terminated after `prompt_length` steps or by the stop action. Truncated instead
    when the LLM budget cannot pay for the final scoring (`info["budget_exhausted"] = True`).

    ## Arguments

    - `task`, `llm`, `split` (default `"train"`), `reward`, `budget`, `data_dir`,
      `task_options`, `max_examples`, `render_mode`, `calibration`: as in `PromptSelectEnv`.
      `max_new_tokens` is accepted for a uniform set of kwargs (classification generates nothing).
    - `prompt_length`: most words per prompt (default 5, RLPrompt's).
    - `vocab_size`: words of the default vocabulary rule (default 2000).
    - `vocabulary`: your own list of words (JSON-serialisable), or None for the rule.
    - `position`: `"before"` (default) or `"after"` the input.
    - `minibatch_size`: inputs each finished prompt is scored on (default 16).
    - `mask_repeats`: mask words already in the prompt (default True).
    - `allow_stop`: offer the stop action (default True); False masks it, for
      fixed-length prompts as RLPrompt writes them.
    - `invalid_penalty`: cost of a masked word taken anyway (default 0.01).
    - `zscore`, `zscore_prompts`: per-input z-scored reward against that many
      reference prompts (default False, 8).

    ## Public Methods

    Besides the Gymnasium API and those of every prompt env (`llm_usage()`,
    `use_llm(llm)`): `action_masks()`, `action_meanings()` (the words, then
    `"stop"`), `vocabulary_words()`, `token_features()` (`(V + 1, d)` float32: the
    task LLM's `embed` of each word, L2-normalised, a zero row for stop; one forward
    pass over the vocabulary, not a (prompt, input) call, not charged to the
    budget), `prompt_of(actions)` (the `Prompt` a sequence of action ids writes;
    stop and repeats are skipped) and the property `prompt` (the current prompt:
    what a finished episode returns). The constructor arguments are attributes of the
    same names (`prompt_length`, `vocab_size`, `minibatch_size`, `zscore`, ...), but
    `vocabulary=` is kept as `user_vocabulary` (the words in use: `vocabulary_words()`);
    `stop_action` is `V`, `vocabulary_rule` says how the words were chosen
    (`"tokenizer"`, `"task words"`, `"user"`; None until they are read).

    ## Registered Configurations

    `PromptEnv/<Task>-Compose-v0` for every classification task of the catalog
    (`SST2`, `AGNews`, `BBCTopic`), and `PromptEnv/File-Compose-v0` for a user's
    classification file (`task=<path>`).

    ## Version History

    - v0: initial version.
    """

    metadata = {**PromptEnvBase.metadata, "prompt_env_kind": "compose"}

    def __init__(
        self,
        task: str = "bbc-topic",
        llm: str | dict[str, Any] = "default",
        *,
        prompt_length: int = 5,
        vocab_size: int | None = None,
        vocabulary: list[str] | None = None,
        position: str = "before",
        minibatch_size: int = 16,
        mask_repeats: bool = True,
        allow_stop: bool = True,
        invalid_penalty: float = 0.01,
        zscore: bool = False,
        zscore_prompts: int = 8,
        **options: Any,
    ) -> None:
        super().__init__(task, llm, **{**self.option_defaults, **options})
        if self.task.kind != "classification":
            raise ValueError(f"{type(self).__name__} composes prompts for classification tasks, but task "
                             f"{self.task_name!r} is {self.task.kind}; use the Select or Edit env for it")
        check_int("prompt_length", prompt_length, 1, MAX_PROMPT_LENGTH)
        check_int("vocab_size", vocab_size, 1, MAX_SIZE, optional=True)
        check_int("minibatch_size", minibatch_size, 1)
        check_int("zscore_prompts", zscore_prompts, 1, 1024)
        check_kwarg_types(mask_repeats=(mask_repeats, bool, False), zscore=(zscore, bool, False),
                          allow_stop=(allow_stop, bool, False), position=(position, str, False))
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
        if isinstance(invalid_penalty, bool) or not isinstance(invalid_penalty, (int, float)) or not (
            np.isfinite(invalid_penalty)
        ):
            raise ValueError(f"invalid_penalty must be a finite number, got {invalid_penalty!r}")
        if vocabulary is not None:
            vocabulary = check_words(vocabulary)
            if vocab_size is not None and vocab_size != len(vocabulary):
                raise ValueError(f"vocab_size={vocab_size} but vocabulary has {len(vocabulary)} words; "
                                 "give one of the two (vocab_size sizes the default vocabulary rule)")
        self.prompt_length = prompt_length
        self.vocab_size = len(vocabulary) if vocabulary is not None else (vocab_size or DEFAULT_VOCAB_SIZE)
        self.user_vocabulary = vocabulary
        self.position = position
        self.minibatch_size = minibatch_size
        self.mask_repeats = mask_repeats
        self.allow_stop = allow_stop
        self.invalid_penalty = float(invalid_penalty)
        self.zscore = zscore
        self.zscore_prompts = zscore_prompts
        if mask_repeats and prompt_length > self.vocab_size:
            raise ValueError(f"prompt_length={prompt_length} needs at least as many words, but the "
                             f"vocabulary has {self.vocab_size}; lower prompt_length or pass mask_repeats=False")
        self.stop_action = self.vocab_size
        self.action_space = spaces.Discrete(self.vocab_size + 1)
        self.observation_space = spaces.MultiDiscrete(
            [self.vocab_size + 1] * prompt_length + [prompt_length + 1], dtype=np.int64)
        manual = self.task.prompt_pool.manual
        self.base_prompt = Prompt(instruction="", template=manual.template, exemplars=manual.exemplars,
                                  verbalizer=manual.verbalizer, chat=manual.chat, name="compose")
        self.vocabulary_rule = "user" if vocabulary is not None else None
        self._words: list[str] | None = None
        self._memo: dict[tuple[tuple[int, ...], int], Outcome] = {}
        self._reference: np.ndarray | None = None
        self._tokens: list[int] = []
        self._slots = np.full(prompt_length, self.vocab_size, dtype=np.int64)
        self._position = 0
        self._batch: list[int] = []
        self._done = True

    # ---------------------------------------------------------- vocabulary
    def vocabulary_words(self) -> list[str]:
        """The candidate words: action ``i`` writes ``vocabulary_words()[i]`` (reads the tokenizer once)."""
        if self._words is None:
            if self.user_vocabulary is not None:
                self._words = list(self.user_vocabulary)
            else:
                texts = (e.text for name in ("train", "dev") for e in self.task.splits.get(name, []))
                self._words, self.vocabulary_rule = word_vocabulary(self.llm, self.vocab_size, texts)
        return list(self._words)

    def action_meanings(self) -> list[str]:
        return [*self.vocabulary_words(), "stop"]

    def token_features(self) -> np.ndarray:
        """``(V + 1, d)`` float32: the task LLM's ``embed`` of ``" " + word`` for each word,
        L2-normalised, and a zero row for the stop action."""
        words = tuple(self.vocabulary_words())
        key = (str(self.llm.identity()), words)
        if key not in _FEATURES:
            texts = [" " + word for word in words]
            chunks = [np.asarray(self.llm.embed(texts[i : i + _EMBED_CHUNK]), dtype=np.float32)
                      for i in range(0, len(texts), _EMBED_CHUNK)]
            features = np.concatenate(chunks)
            features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
            _FEATURES[key] = np.vstack([features, np.zeros((1, features.shape[1]), dtype=np.float32)])
        return _FEATURES[key].copy()

    def use_llm(self, llm: Any) -> None:
        if llm is not self._llm and self.user_vocabulary is None:
            self._words = None  # the default vocabulary is the new model's
        if llm is not self._llm:
            self._memo, self._reference = {}, None
        super().use_llm(llm)

    # -------------------------------------------------------------- prompts
    def prompt_of(self, actions: Sequence[int]) -> Prompt:
        """The prompt that writing ``actions`` (action ids) gives: stop and repeated ids are skipped."""
        ids: list[int] = []
        for action in actions:
            index = as_action(action, self.vocab_size + 1, self.env_id)
            if index != self.stop_action and index not in ids:
                ids.append(index)
        words = self.vocabulary_words() if ids else []
        text = join_words([words[i] for i in ids])
        name = f"compose:{text}" if text else "compose:empty"
        if not text:
            return self.base_prompt.replace(name=name)
        if self.position == "before":
            return self.base_prompt.replace(instruction=text, name=name)
        template = self.base_prompt.template
        cue = f"{text} {template.answer_prefix}" if template.answer_prefix else text
        return self.base_prompt.replace(template=Template(
            name=f"{template.name}+prompt", input_format=template.input_format, answer_prefix=cue,
            separator=template.separator), name=name)

    @property
    def prompt(self) -> Prompt:
        """The current prompt (the words written so far)."""
        return self.prompt_of(self._tokens)

    def action_masks(self) -> np.ndarray:
        """1 for actions valid now, 0 for words already in the prompt (with ``mask_repeats``) and
        for stop (with ``allow_stop=False``); int8."""
        mask = np.ones(self.vocab_size + 1, dtype=np.int8)
        if self.mask_repeats and self._tokens:
            mask[self._tokens] = 0
        if not self.allow_stop:
            mask[self.stop_action] = 0
        return mask

    def observe(self) -> np.ndarray:
        return np.append(self._slots, self._position).astype(np.int64)

    # -------------------------------------------------------------- scoring
    def _score_tokens(self, tokens: tuple[int, ...], indices: Sequence[int]) -> list[Outcome] | None:
        """Outcomes of the prompt of ``tokens`` on the given inputs (None: budget exhausted)."""
        if not self.budget_allows(len(indices)):
            return None
        outcomes: list[Outcome | None] = [self._memo.get((tokens, i)) for i in indices]
        missing = [k for k, o in enumerate(outcomes) if o is None]
        if missing:
            prompt = self.prompt_of(tokens)
            fresh = self.run_pairs([(prompt, self.examples[indices[k]]) for k in missing])
            for k, outcome in zip(missing, fresh, strict=True):
                outcomes[k] = outcome
                if len(self._memo) < _MEMO_LIMIT:
                    self._memo[(tokens, indices[k])] = outcome
        hits = len(indices) - len(missing)
        if hits and self._llm is not None:
            self._llm.stats.record(calls=hits, cache_hits=hits)
        done = [o for o in outcomes if o is not None]
        self.charge([o.prompt_text for o in done])
        return done

    def _reference_scores(self) -> np.ndarray | None:
        """Scores of the reference prompts on every input of the split, shape (K, n); None: budget."""
        if self._reference is None:
            rng = np.random.default_rng(REFERENCE_SEED)
            inputs = list(range(len(self.examples)))
            rows = []
            for _ in range(self.zscore_prompts):
                tokens = tuple(int(t) for t in rng.choice(self.vocab_size, self.prompt_length,
                                                          replace=self.prompt_length > self.vocab_size))
                outcomes = self._score_tokens(tokens, inputs)
                if outcomes is None:
                    return None
                rows.append([o.score for o in outcomes])
            self._reference = np.asarray(rows, dtype=np.float64)
        return self._reference

    def _finish(self) -> tuple[float, dict[str, Any]] | None:
        """Score the finished prompt on the minibatch: (terminal reward, info); None: budget."""
        outcomes = self._score_tokens(tuple(self._tokens), self._batch)
        if outcomes is None:
            return None
        scores = np.array([o.score for o in outcomes], dtype=np.float64)
        reward = float(scores.mean())
        if self.zscore:
            reference = self._reference_scores()
            if reference is None:
                return None
            stacked = np.vstack([reference[:, self._batch], scores[None]])
            reward = float(zscore_per_input(stacked, input_axis=1)[-1].mean())
        first = outcomes[0]
        return reward, {
            "score": reward,
            "accuracy": float(np.mean([o.metrics["accuracy"] for o in outcomes])),
            "input_scores": [float(s) for s in scores],
            "prompt": first.prompt_text,
            "output": first.prediction,
            "reference": first.reference,
            "correct": [o.correct for o in outcomes],
            "minibatch": list(self._batch),
        }

    # -------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_reset_options(self.env_id, options, ())
        super().reset(seed=seed)
        self.episode_calls = 0
        n = len(self.examples)
        size = min(self.minibatch_size, n)
        self._batch = [int(i) for i in self.np_random.choice(n, size, replace=False)]
        self._tokens = []
        self._slots[:] = self.vocab_size
        self._position = 0
        self._done = False
        self._last_render = self._render_text("new episode")
        return self.observe(), self._info()

    def step(self, action: Any):
        if self._done:
            raise RuntimeError(f"{self.env_id}: call reset() before step() (the episode has ended)")
        index = as_action(action, self.vocab_size + 1, self.env_id)
        valid = bool(self.action_masks()[index])
        stop = index == self.stop_action and valid
        reward = 0.0 if valid else -self.invalid_penalty
        if not stop:
            if valid:
                self._tokens.append(index)
                self._slots[self._position] = index
            self._position += 1
        name = "stop" if index == self.stop_action else repr(self.vocabulary_words()[index])
        event = "stop" if stop else (f"word {name}" if valid else f"masked {name} (wasted position)")
        if not stop and self._position < self.prompt_length:
            self._last_render = self._render_text(event)
            return self.observe(), reward, False, False, self._info(index, valid)
        self._done = True
        finished = self._finish()
        if finished is None:
            self._last_render = self._render_text(f"{event}; LLM budget exhausted")
            return self.observe(), reward, False, True, self._info(index, valid, budget_exhausted=True)
        score, extra = finished
        self._last_render = self._render_text(f"{event}; score {score:+.3f}")
        return self.observe(), reward + score, True, False, {**self._info(index, valid), **extra}

    def _info(self, action: int | None = None, valid: bool = True,
              budget_exhausted: bool = False) -> dict[str, Any]:
        words = self.vocabulary_words() if self._tokens else []
        info: dict[str, Any] = {
            "action_mask": self.action_masks(),
            "position": self._position,
            "prompt_tokens": [words[i] for i in self._tokens],
            "prompt_ids": list(self._tokens),
            "prompt_text": join_words([words[i] for i in self._tokens]),
            "valid_action": valid,
            "budget_exhausted": budget_exhausted,
            **self.llm_info(),
        }
        if action is not None:
            info["action"] = "stop" if action == self.stop_action else self.vocabulary_words()[action]
        return info

    def _render_text(self, event: str) -> str:
        words = self.vocabulary_words() if self._tokens else []
        text = join_words([words[i] for i in self._tokens])
        return (f"[{self.env_id}] position {self._position}/{self.prompt_length}: {event}\n"
                f"  prompt {text!r} ({self.position} the input), minibatch of {len(self._batch)}")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_reference"] = None  # recomputed (and charged) where it is needed, like a fresh env
        return state
