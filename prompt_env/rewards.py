"""Metrics and reward shaping, behind a small registry.

A :class:`Reward` turns one LLM answer to one example into a float:

- classification rewards receive the label log-probabilities (a 1-D array,
  one entry per label, in label order) and read ``example.label``; with
  calibrated label scoring on (``calibration=`` in :mod:`prompt_env.scoring`)
  they receive the calibrated scores instead, log-probs renormalised over the
  labels, so every classification reward works on them unchanged;
- generation rewards receive the generated text and read
  ``example.references`` (the best-matching reference counts).

Built-in rewards (see :func:`list_rewards`):

========== ============== ==============================================
name       kind           value
========== ============== ==============================================
accuracy   classification 1.0 if the most probable label is right, else 0.0
margin     classification RLPrompt's piecewise probability margin, in [-1.8, 2.0]
accuracy_margin classification accuracy + 0.002 x margin: accuracy, ties broken by the margin
exact_match generation    1.0 if the normalised answer equals a reference
f1         generation     SQuAD token F1 against the best reference
rouge_l    generation     ROUGE-L F-measure (``rouge_score``, stemming on)
chrf       generation     chrF (``sacrebleu``), scaled to [0, 1]
bleu       generation     sentence BLEU (``sacrebleu``), scaled to [0, 1]
========== ============== ==============================================

Two more names resolve without registering anything, in every process (so
they work in subprocess vector envs and Ray workers, which never ran your
``register_reward``):

- ``"package.module:function"``: an importable ``function(prediction, example) -> float``
  (or a :class:`Reward` object); its kind is its ``reward_kind`` (or ``kind``)
  attribute, else the task's kind. See :func:`import_reward`.
- ``"judge"`` / ``"judge:<llm spec>"``: an LLM judge for generation tasks
  (:mod:`prompt_env.judge`).

Users add their own in-process with :func:`register_reward`; shaping helpers
(:func:`zscore_per_input`, :func:`improvement`, :func:`token_cost`) work on
plain numbers and arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from prompt_env.errors import RewardSpecError

if TYPE_CHECKING:
    from prompt_env.tasks.base import Example

RewardKind = Literal["classification", "generation"]
_KINDS = ("classification", "generation")


@runtime_checkable
class Reward(Protocol):
    """What the environments call: ``reward(prediction, example) -> float``.

    ``prediction`` is a 1-D ``np.ndarray`` of label log-probabilities for
    ``kind == "classification"`` and the generated ``str`` for
    ``kind == "generation"``.
    """

    name: str
    kind: RewardKind

    def __call__(self, prediction: Any, example: Example) -> float: ...


@dataclasses.dataclass(frozen=True)
class FunctionReward:
    """A :class:`Reward` made from a plain function and bound keyword options."""

    name: str
    kind: RewardKind
    fn: Callable[..., float]

    def __call__(self, prediction: Any, example: Example) -> float:
        return float(self.fn(prediction, example))


# --------------------------------------------------------------------------- classification


def label_probabilities(label_logprobs: Sequence[float] | np.ndarray) -> np.ndarray:
    """Softmax of label log-probabilities: probabilities renormalised over the label words."""
    logprobs = np.asarray(label_logprobs, dtype=np.float64)
    if logprobs.ndim != 1 or logprobs.size == 0:
        raise ValueError(f"label log-probs must be a non-empty 1-D array, got shape {logprobs.shape}")
    shifted = np.exp(logprobs - logprobs.max())
    return shifted / shifted.sum()


def _gold_label(example: Example, num_labels: int) -> int:
    if example.label is None:
        raise ValueError(
            f"example {example.source or '(no source)'} has no label; "
            "classification rewards need labelled examples"
        )
    if not 0 <= example.label < num_labels:
        raise ValueError(
            f"example {example.source or '(no source)'} has label {example.label}, "
            f"but {num_labels} label log-probs were given"
        )
    return int(example.label)


def accuracy(label_logprobs: Sequence[float] | np.ndarray, example: Example) -> float:
    """1.0 when the most probable label is the gold label (ties go to the lower index)."""
    logprobs = np.asarray(label_logprobs, dtype=np.float64)
    gold = _gold_label(example, logprobs.size)
    return 1.0 if int(np.argmax(logprobs)) == gold else 0.0


def label_margin(
    label_logprobs: Sequence[float] | np.ndarray,
    example: Example,
    right_scale: float = 2.0,
    wrong_scale: float = 1.8,
) -> float:
    """RLPrompt's piecewise margin reward.

    ``gap = p(gold) - max p(other label)`` with probabilities renormalised
    over the label words; the reward is ``right_scale * gap`` when the gold
    label wins (gap > 0) and ``wrong_scale * gap`` otherwise. RLPrompt uses
    200 and 180; the defaults here are those divided by 100, so rewards lie in
    ``[-1.8, 2.0]`` and are comparable to accuracy in magnitude.
    """
    probs = label_probabilities(label_logprobs)
    gold = _gold_label(example, probs.size)
    if probs.size == 1:
        return float(right_scale)
    others = np.delete(probs, gold)
    gap = float(probs[gold] - others.max())
    return (right_scale if gap > 0 else wrong_scale) * gap


TIE_BREAK = 0.002
"""Weight of the margin in :func:`accuracy_margin`: at most 0.0076 over any number of
inputs, less than one more right answer in 131 (1/131), so it only orders prompts of
equal accuracy."""


def accuracy_margin(label_logprobs: Sequence[float] | np.ndarray, example: Example) -> float:
    """Accuracy with ties broken by confidence: ``accuracy + 0.002 * margin``.

    Averaged over up to 131 inputs, a prompt that answers more of them right always scores
    higher; among prompts that answer the same number right, the one with the larger
    RLPrompt margin (the surer one) does. For searches that select on accuracy, where many
    candidates tie on a small dev set.
    """
    return accuracy(label_logprobs, example) + TIE_BREAK * label_margin(label_logprobs, example)


# --------------------------------------------------------------------------- generation

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _references(example: Example) -> tuple[str, ...]:
    if not example.references:
        raise ValueError(
            f"example {example.source or '(no source)'} has no references; "
            "generation rewards need at least one reference answer"
        )
    return tuple(example.references)


def exact_match_score(prediction: str, reference: str) -> float:
    return 1.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0


def token_f1_score(prediction: str, reference: str) -> float:
    """SQuAD token-overlap F1 between two strings after :func:`normalize_answer`."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        return 1.0 if pred_tokens == ref_tokens else 0.0
    common = Counter(pred_tokens) & Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_score(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure from ``rouge_score`` (stemming on)."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def chrf_score(prediction: str, reference: str) -> float:
    """sacrebleu's sentence chrF, divided by 100."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(prediction, [reference]).score) / 100.0


def bleu_score(prediction: str, reference: str) -> float:
    """sacrebleu's sentence BLEU (exponential smoothing), divided by 100."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, [reference]).score) / 100.0


def best_over_references(metric: Callable[[str, str], float]) -> Callable[[str, Example], float]:
    """Lift a ``metric(prediction, reference)`` to the best score over an example's references."""

    def reward(prediction: str, example: Example) -> float:
        if not isinstance(prediction, str):
            raise TypeError(
                f"generation rewards take the generated text, got {type(prediction).__name__}"
            )
        return max(metric(prediction, ref) for ref in _references(example))

    reward.__name__ = getattr(metric, "__name__", "reward")
    reward.__doc__ = f"Best over references of {reward.__name__}."
    return reward


exact_match = best_over_references(exact_match_score)
token_f1 = best_over_references(token_f1_score)
rouge_l = best_over_references(rouge_l_score)
chrf = best_over_references(chrf_score)
bleu = best_over_references(bleu_score)


# --------------------------------------------------------------------------- shaping


def zscore_per_input(scores: np.ndarray, *, input_axis: int = 1, eps: float = 1e-8) -> np.ndarray:
    """Standardise each input's scores across prompts.

    ``scores`` is a matrix of prompts x inputs (``input_axis=1``, the
    default) or inputs x prompts (``input_axis=0``, the layout of
    :func:`prompt_env.scoring.score_matrix`). For every input, subtract the
    mean over prompts and divide by the standard deviation (plus ``eps``), so
    easy and hard inputs contribute on the same scale. An input where every
    prompt scores the same gets all zeros.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be a 2-D matrix, got shape {matrix.shape}")
    prompt_axis = 1 - input_axis
    mean = matrix.mean(axis=prompt_axis, keepdims=True)
    std = matrix.std(axis=prompt_axis, keepdims=True)
    return (matrix - mean) / (std + eps)


def improvement(after: float | np.ndarray, before: float | np.ndarray) -> float | np.ndarray:
    """Reward for an edit: the score after it minus the score before it."""
    return after - before


def token_cost(reward: float, prompt_tokens: int, cost_per_token: float = 1e-3) -> float:
    """Subtract a length penalty of ``cost_per_token`` per prompt token."""
    if prompt_tokens < 0:
        raise ValueError(f"prompt_tokens must be >= 0, got {prompt_tokens}")
    return float(reward) - cost_per_token * prompt_tokens


# --------------------------------------------------------------------------- registry


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: Callable[..., float]
    kind: RewardKind


_REGISTRY: dict[str, _Entry] = {}


def register_reward(
    name: str, fn: Callable[..., float], kind: RewardKind, *, overwrite: bool = False
) -> None:
    """Add a reward ``fn(prediction, example, **options) -> float`` under ``name``.

    ``kind`` says what ``prediction`` is (see :class:`Reward`). Options given
    to :func:`get_reward` are bound as keyword arguments.
    """
    if kind not in _KINDS:
        raise ValueError(f"reward kind must be one of {_KINDS}, got {kind!r}")
    if not callable(fn):
        raise TypeError(f"reward {name!r} must be callable, got {type(fn).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a reward named {name!r} is already registered; pass overwrite=True")
    _REGISTRY[name] = _Entry(fn=fn, kind=kind)


def get_reward(name: str, *, task_kind: RewardKind | None = None, **options: Any) -> Reward:
    """The reward ``name`` with ``options`` bound (e.g. ``right_scale=``).

    ``name`` is a registered name, ``"judge:<llm spec>"`` (the LLM judge with
    that judge model) or ``"package.module:function"`` (:func:`import_reward`;
    ``task_kind`` is its kind when the function does not declare one).
    """
    if name not in _REGISTRY and name.startswith(JUDGE_PREFIX):
        return get_reward("judge", llm=name[len(JUDGE_PREFIX):], **options)
    if name not in _REGISTRY and ":" in name:
        return import_reward(name, task_kind)
    if name not in _REGISTRY:
        raise RewardSpecError(
            f"unknown reward {name!r}; available: {', '.join(list_rewards())}, "
            "or an importable 'package.module:function'"
        )
    entry = _REGISTRY[name]
    if options:
        try:
            inspect.signature(entry.fn).bind(None, None, **options)
        except TypeError as error:
            raise ValueError(f"reward {name!r} does not take options {sorted(options)}: {error}") from None
        return FunctionReward(name=name, kind=entry.kind, fn=functools.partial(entry.fn, **options))
    return FunctionReward(name=name, kind=entry.kind, fn=entry.fn)


JUDGE_PREFIX = "judge:"


def import_reward(spec: str, task_kind: RewardKind | None = None) -> Reward:
    """The reward named ``"package.module:function"``, imported (so any process can resolve it).

    The object may be a function ``fn(prediction, example) -> float`` or a
    :class:`Reward`; its kind is its ``reward_kind`` or ``kind`` attribute, else
    ``task_kind``. Raises :class:`~prompt_env.errors.RewardSpecError` saying what
    to fix when the module cannot be imported, the name is missing, the object is
    not callable with ``(prediction, example)`` or its kind is unknown.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise RewardSpecError(f"reward {spec!r}: write an importable reward as 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module failing while it imports
        raise RewardSpecError(
            f"reward {spec!r}: cannot import module {module_name!r} ({type(error).__name__}: {error}); "
            "it must be importable in every process that makes the env: install it, or put its "
            "folder on PYTHONPATH"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise RewardSpecError(f"reward {spec!r}: module {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise RewardSpecError(f"reward {spec!r} is a {type(target).__name__}, not a function")
    try:
        inspect.signature(target).bind(None, None)
    except TypeError:
        raise RewardSpecError(
            f"reward {spec!r} must take (prediction, example) and return a float; its signature "
            f"is {inspect.signature(target)}"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): trust it
        pass
    kind = getattr(target, "reward_kind", None) or getattr(target, "kind", None) or task_kind
    if kind not in _KINDS:
        raise RewardSpecError(
            f"reward {spec!r} does not say what it scores: set {attribute}.reward_kind = "
            "'classification' (it receives label log-probs) or 'generation' (the generated text)"
        )
    return FunctionReward(name=spec, kind=kind, fn=target)


def list_rewards(kind: RewardKind | None = None) -> list[str]:
    """Names of registered rewards, optionally only those of one kind."""
    return sorted(n for n, e in _REGISTRY.items() if kind is None or e.kind == kind)


def reward_kind(name: str) -> RewardKind:
    if name not in _REGISTRY:
        return get_reward(name).kind
    return _REGISTRY[name].kind


register_reward("accuracy", accuracy, "classification")
register_reward("margin", label_margin, "classification")
register_reward("accuracy_margin", accuracy_margin, "classification")
register_reward("exact_match", exact_match, "generation")
register_reward("f1", token_f1, "generation")
register_reward("rouge_l", rouge_l, "generation")
register_reward("chrf", chrf, "generation")
register_reward("bleu", bleu, "generation")


def _judge(prediction: str, example: Example, llm: str | dict[str, Any] = "default") -> float:
    """The LLM judge's score of ``prediction`` (see :mod:`prompt_env.judge`)."""
    from prompt_env.judge import judge_score

    return judge_score(prediction, example, llm)


register_reward("judge", _judge, "generation")
