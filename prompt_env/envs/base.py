"""What every prompt environment shares: lazy task and LLM, budgets, errors, info.

Constructor arguments are JSON-serialisable so ``env.spec`` round-trips and
envs pickle: the task and the LLM are created lazily, in the process that
steps the env, and dropped when the env is pickled.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from prompt_env.encoders import ENCODERS, Encoder, make_encoder
from prompt_env.errors import BudgetExhausted, LLMError, PromptEnvError, did_you_mean
from prompt_env.llm import normalize_spec
from prompt_env.prompts import Prompt
from prompt_env.scoring import Outcome, ScoringOptions, check_calibration, evaluate, prompt_as_text
from prompt_env.tasks import Task, load_task
from prompt_env.tasks.base import Example


class InvalidActionError(PromptEnvError, ValueError):
    """An action outside the action space (wrong range or type)."""


MAX_SIZE = 1_000_000
"""Upper bound of size-like constructor arguments (a typo, not a real request, beyond it)."""
MAX_ENCODER_DIM = 65_536


def check_int(name: str, value: Any, low: int, high: int = MAX_SIZE, *, optional: bool = False) -> None:
    """Raise ValueError unless ``value`` is an integer in ``[low, high]`` (or None when optional)."""
    if value is None and optional:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(
            f"{name} must be an integer in [{low}, {high}]{' or None' if optional else ''}, got {value!r}"
        )


def check_kwarg_types(**checks: tuple[Any, type | tuple[type, ...], bool]) -> None:
    """``name=(value, allowed types, None allowed)``: a ValueError naming the first bad argument."""
    for name, (value, types, optional) in checks.items():
        if value is None and optional:
            continue
        if not isinstance(value, types):
            names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise ValueError(
                f"{name} must be {names}{' or None' if optional else ''}, got {type(value).__name__} {value!r}"
            )


def accepted_kwargs(creator: Any) -> list[str] | None:
    """The keyword arguments an env class (or creator function) takes, its own and those its
    ``**options`` pass on to the base classes; None when a ``**kwargs`` accepts anything."""
    classes = creator.__mro__ if isinstance(creator, type) else (creator,)
    names: list[str] = []
    for cls in classes:
        function = cls.__init__ if isinstance(cls, type) else cls
        if isinstance(cls, type) and "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(function).parameters
        names += [n for n, p in parameters.items() if n != "self" and n not in names
                  and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return names
    return None


def check_reset_options(env_id: str, options: dict[str, Any] | None, accepted: Sequence[str]) -> dict[str, Any]:
    """``options`` of ``reset()`` (``{}`` for None); a ValueError naming a key the env does not
    read (ignoring it would run an episode the caller did not ask for)."""
    options = options or {}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = next((h for h in (did_you_mean(n, accepted) for n in unknown) if h), "")
        raise ValueError(f"{env_id}: reset() options {unknown} are not read by this env{hint}; "
                         f"it reads {list(accepted) if accepted else 'none'}")
    return options


def _unknown_kwarg(name: str, accepted: list[str]) -> str:
    """``name`` quoted, with the accepted name it is likely a typo of, or the prompt envs that
    take it (``max_edits`` given to a Select env)."""
    hint = did_you_mean(name, accepted)
    if hint:
        return f"{name!r}{hint}"
    found, stack = [], list(PromptEnvBase.__subclasses__())
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if name in (accepted_kwargs(cls) or ()):
            found.append(cls.__name__)
    return f"{name!r} (an argument of {', '.join(sorted(set(found)))})" if found else repr(name)


class PromptEnvBase(gym.Env):
    """Shared machinery; subclasses define spaces, ``reset`` and ``step``.

    Public methods every prompt env offers (besides the Gymnasium API):

    - ``llm_usage()``: what this env asked of its task LLM and what that cost,
      as plain data (see :meth:`llm_usage`);
    - ``use_llm(llm)``: answer with a given LLM object instead of building one
      from the ``llm`` spec (a shared server client, a custom cache file);
    - ``restart_distinct_count()``: count distinct (prompt, input) pairs afresh, so that
      jobs run one after another on one env each count their own (see the method);
    - ``metadata["prompt_env_kind"]``: ``"select"`` or ``"edit"``, what an
      action means, for code that must treat the two differently.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4, "prompt_env_kind": "base"}
    option_defaults: dict[str, Any] = {}
    """Base options whose default differs for this env kind (e.g. ``{"split": "dev"}``): an
    env class takes its own arguments and passes every base option on by keyword, so a new
    base option is one edit here."""

    def __new__(cls, *args: Any, **kwargs: Any) -> PromptEnvBase:
        """Refuse an argument no class of the env takes with the names it does take and the
        closest ones (Python's own TypeError names neither)."""
        accepted = accepted_kwargs(cls)
        unknown = sorted(set(kwargs) - set(accepted or kwargs))
        if unknown:
            raise TypeError(f"{cls.__name__} got unexpected keyword argument(s) "
                            f"{', '.join(_unknown_kwarg(n, accepted or []) for n in unknown)}; "
                            f"it takes: {', '.join(accepted or [])}")
        return super().__new__(cls)

    def __init__(
        self,
        task: str = "bbc-topic",
        llm: str | dict[str, Any] = "default",
        *,
        split: str = "train",
        reward: str | None = None,
        encoder: str = "hashing",
        encoder_dim: int = 64,
        budget: dict[str, int] | None = None,
        data_dir: str | None = None,
        task_options: dict[str, Any] | None = None,
        max_examples: int | None = None,
        render_mode: str | None = None,
        max_new_tokens: int | None = None,
        calibration: str | None = None,
    ) -> None:
        check_kwarg_types(
            task=(task, (str, os.PathLike), False), llm=(llm, (str, dict), False), split=(split, str, False),
            reward=(reward, str, True), encoder=(encoder, str, True), budget=(budget, dict, True),
            data_dir=(data_dir, (str, os.PathLike), True), task_options=(task_options, dict, True),
            render_mode=(render_mode, str, True),
        )
        if not str(task).strip():
            raise ValueError("task is empty: the PromptEnv/File-* envs need task=<path of a .jsonl/.csv/.tsv "
                             "file or a directory>, e.g. gym.make('PromptEnv/File-Select-v0', task='my.jsonl')")
        if isinstance(llm, (str, dict)):
            normalize_spec(llm)  # an LLMSpecError naming the field now, not at the first step
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; use one of {', '.join(map(repr, ENCODERS))}")
        check_int("encoder_dim", encoder_dim, 1, MAX_ENCODER_DIM)
        check_int("max_examples", max_examples, 1, optional=True)
        check_int("max_new_tokens", max_new_tokens, 1, optional=True)
        check_calibration(calibration)  # a ValueError naming the choices
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if budget is not None:
            unknown = set(budget) - {"calls", "tokens"}
            if unknown or not budget:
                raise ValueError(f"budget takes 'calls' and/or 'tokens', got {sorted(map(str, budget))}")
            for key, value in budget.items():
                check_int(f"budget[{key!r}]", value, 0, 2**62)
        self.task_name = task
        self.llm_spec = llm
        self.split = split
        self.reward_name = reward
        self.encoder_name = encoder
        self.encoder_dim = encoder_dim
        self.budget = dict(budget) if budget else None
        self.data_dir = data_dir
        self.task_options = dict(task_options or {})
        self.max_examples = max_examples
        self.render_mode = render_mode
        self.max_new_tokens = max_new_tokens
        self.calibration = calibration
        self._task: Task | None = None
        self._llm: Any = None
        self._encoder: Encoder | None = None
        self.calls_used = 0
        self.tokens_used = 0
        self.episode_calls = 0
        self._last_render: Any = ""
        # The task is small and read from local files: load it now so spaces are known.
        self._examples = self._select_examples()
        # an unknown reward, an unimportable module:function or a calibration that does not
        # fit the task fails here, once; scoring takes the checked options as they are
        self._scoring: ScoringOptions | None = ScoringOptions.for_task(
            self.task, reward, calibration, max_new_tokens)

    # ----------------------------------------------------------- lazy parts
    @property
    def task(self) -> Task:
        if self._task is None:
            options = dict(self.task_options)
            if self.data_dir is not None:
                options["data_dir"] = self.data_dir
            self._task = load_task(self.task_name, **options)
        return self._task

    @property
    def scoring(self) -> ScoringOptions:
        """The env's reward, calibration and generation length, checked against its task."""
        if self._scoring is None:
            self._scoring = ScoringOptions.for_task(self.task, self.reward_name, self.calibration,
                                                    self.max_new_tokens)
        return self._scoring

    @property
    def llm(self) -> Any:
        if self._llm is None:
            from prompt_env.llm import load_llm

            self._llm = load_llm(self.llm_spec)
        return self._llm

    def use_llm(self, llm: Any) -> None:
        """Answer with ``llm`` (any object with the LLM protocol, e.g. from ``load_llm``) from now on.

        The env's spec still names its ``llm`` argument; a pickled copy builds its
        own LLM from that spec again.
        """
        if llm is not self._llm:
            self._llm = llm
            self._encoder = None  # an encoder="llm" encoder reads the new model

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = make_encoder(self.encoder_name, lambda: self.llm, self.encoder_dim)
        return self._encoder

    @property
    def context_dim(self) -> int:
        """Width of an encoded input: ``encoder_dim``, or the model's hidden size for
        ``encoder="llm"`` (which loads the model to learn it)."""
        return int(self.encoder.dim) if self.encoder_name == "llm" else self.encoder_dim

    def _select_examples(self) -> list[Example]:
        examples = self.task.split(self.split)
        if self.max_examples is not None:
            examples = examples[: self.max_examples]
        if not examples:
            raise ValueError(f"split {self.split!r} of task {self.task_name!r} has no examples")
        return list(examples)

    @property
    def examples(self) -> list[Example]:
        return self._examples

    @property
    def env_id(self) -> str:
        return self.spec.id if self.spec is not None else type(self).__name__

    # ------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_llm"] = None  # recreated lazily in the receiving process
        state["_encoder"] = None
        state["_scoring"] = None  # a user's reward function is resolved again by name
        state["_memo"] = {}
        return state

    # -------------------------------------------------------------- budgets
    def budget_allows(self, calls: int, prompts: Sequence[Any] = ()) -> bool:
        """Whether ``calls`` more LLM calls fit the env's budget (counted whether cached or not)."""
        if self.budget is None:
            return True
        if "calls" in self.budget and self.calls_used + calls > self.budget["calls"]:
            return False
        return not ("tokens" in self.budget and self.tokens_used >= self.budget["tokens"])

    def charge(self, prompts: Sequence[Any]) -> None:
        self.calls_used += len(prompts)
        self.episode_calls += len(prompts)
        if self.budget and "tokens" in self.budget:
            count = getattr(self.llm, "count_tokens", None)
            for p in prompts:
                self.tokens_used += count(p) if count else len(prompt_as_text(p)) // 4

    # --------------------------------------------------------- LLM scoring
    def run_pairs(self, pairs: Sequence[tuple[Prompt, Example]]) -> list[Outcome]:
        """Evaluate pairs in one batched LLM call; LLM failures name the env and the prompt."""
        try:
            return evaluate(self.llm, self.task, pairs, options=self.scoring)
        except BudgetExhausted:
            raise
        except Exception as error:  # a backend failure is never a silent zero reward
            prompt, example = pairs[0]
            text = prompt_as_text(prompt.render(example, self.task))
            what = "failed" if isinstance(error, PromptEnvError) else f"raised {type(error).__name__}"
            raise LLMError(
                f"{self.env_id}: the task LLM {what} on prompt {prompt.name!r} ({text[:120]!r}...): {error}"
            ) from error

    def llm_info(self) -> dict[str, Any]:
        """``info["llm_calls"]``: LLM calls this episode asked for (cached or not, so deterministic)."""
        return {"llm_calls": self.episode_calls}

    def llm_usage(self) -> dict[str, int]:
        """What this env asked of its task LLM so far, and what that cost, as plain data.

        ``env_calls`` / ``episode_calls`` / ``env_tokens``: calls (and estimated prompt
        tokens) this env requested, whether the response cache answered them or
        not; the env's ``budget`` counts these. The other keys are the LLM's usage
        meter (:class:`~prompt_env.llm.base.LLMStats`): ``calls``, ``distinct``
        (distinct (prompt, input) requests), ``cache_hits``, ``model_calls``,
        ``batches``, ``prompt_tokens``, ``generated_tokens``; zeros before the LLM
        is first used. An LLM shared with other envs (``use_llm``) counts theirs too.
        """
        from prompt_env.llm.base import COUNTERS

        meter = self._llm.stats.as_dict() if self._llm is not None else dict.fromkeys(COUNTERS, 0)
        return {"env_calls": self.calls_used, "episode_calls": self.episode_calls,
                "env_tokens": self.tokens_used, **meter}

    def restart_distinct_count(self) -> None:
        """From now on, ``llm_usage()["distinct"]`` counts a (prompt, input) request that this
        env's LLM saw before as new again (the counter stays cumulative). Call it between jobs
        that share the env, e.g. two policies evaluated on one Select env: each job's delta is
        then the distinct pairs it would have cost alone, whatever ran before it."""
        if self._llm is not None:
            self._llm.stats.forget_seen()

    @staticmethod
    def outcome_info(outcome: Outcome, prompt: Prompt) -> dict[str, Any]:
        return {
            "prompt_name": prompt.name,
            "prompt": outcome.prompt_text,
            "output": outcome.prediction,
            "reference": outcome.reference,
            "correct": outcome.correct,
            "metrics": dict(outcome.metrics),
        }

    # ------------------------------------------------------------ rendering
    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._last_render
        return None

    def describe(self) -> str:
        return json.dumps(
            {"task": self.task_name, "llm": self.llm_spec, "split": self.split, "reward": self.reward_name}
        )


def as_action(action: Any, n: int, env_id: str) -> int:
    """Validate an action for ``Discrete(n)``; raise :class:`InvalidActionError` otherwise."""
    if isinstance(action, np.ndarray):
        if action.shape not in ((), (1,)):
            raise InvalidActionError(f"{env_id}: action must be a single integer, got array of shape {action.shape}")
        action = action.reshape(()).item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        if isinstance(action, (float, np.floating)) and float(action).is_integer():
            action = int(action)
        else:
            raise InvalidActionError(
                f"{env_id}: action must be an integer in [0, {n}), got {type(action).__name__} {action!r}"
            )
    action = int(action)
    if not 0 <= action < n:
        raise InvalidActionError(f"{env_id}: action {action} is outside the action space [0, {n})")
    return action
