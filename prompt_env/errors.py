"""Typed errors. Each says what is wrong and what to do about it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.8) -> str:
    """`` (did you mean 'x'?)`` for the choice ``name`` is a likely typo of, else ``""``: the
    one wording of that hint in every message that refuses a name."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PromptEnvError(Exception):
    """Base class of every error this package raises on purpose."""


class TaskFormatError(PromptEnvError, ValueError):
    """A data file is malformed; the message names the file, line and field."""


class UnknownTaskError(PromptEnvError, KeyError):
    """A task name is neither in the catalog nor a readable file."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want plain text
        return str(self.args[0]) if self.args else ""


class RewardSpecError(PromptEnvError, ValueError):
    """A reward name or ``"package.module:function"`` that cannot be resolved or has the wrong shape."""


class UnnamedLabelsWarning(UserWarning):
    """A classification file's labels are integers without names: the model would be asked
    to answer "0", "1", ...; the message says how to name them (``label_names``)."""


class DataNotFoundError(PromptEnvError, FileNotFoundError):
    """A catalog task needs a data directory that is not there."""


class LLMError(PromptEnvError, RuntimeError):
    """The task LLM could not answer (backend failure, bad spec, missing model)."""


class LLMSpecError(LLMError, ValueError):
    """An LLM spec is not one of the valid forms."""


class PromptTooLongError(LLMError, ValueError):
    """A prompt does not fit in the model's context window."""


class BudgetExhausted(LLMError):
    """An LLM call or token budget ran out; the message says what was spent."""

    def __init__(self, message: str, *, spent: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.spent = dict(spent or {})


class CacheError(PromptEnvError, RuntimeError):
    """The response cache file is corrupted or belongs to something else."""


class CheckpointError(PromptEnvError, ValueError):
    """An agent file is damaged or was saved for another env id or agent."""
