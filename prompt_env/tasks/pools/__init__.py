"""Prompt pools: the instructions, templates and verbalizers agents choose among.

Every pool here was written for this package. Pools mix strong and weak
parts on purpose (an empty instruction, a misleading one, a verbalizer of
odd words, a bare template), so that choosing well matters.

The pool texts live in one module per task family (``classification``,
``generation``, ``induction``); ``base`` holds :class:`PoolText` and
:func:`build_pool`, which assembles a :class:`~prompt_env.prompts.PromptPool`
for a task, with a fixed list of ready candidates: ``candidates[0]`` is the
manual prompt (a sensible plain, zero-shot, hand-written prompt), and the
rest vary the instruction, template, verbalizer, exemplars (1-2 train
examples) and chat form. Everything is deterministic.
"""

from __future__ import annotations

from prompt_env.tasks.pools.base import PoolText, build_pool
from prompt_env.tasks.pools.classification import (
    BBC_TOPIC,
    NEWS_TOPIC,
    SENTIMENT,
    generic_classification,
)
from prompt_env.tasks.pools.generation import (
    COUNTING,
    GENERIC_GENERATION,
    HEADLINE,
    QA,
    SUMMARIZATION,
    translation,
)
from prompt_env.tasks.pools.induction import INDUCTION_INSTRUCTIONS, induction

__all__ = [
    "BBC_TOPIC",
    "COUNTING",
    "GENERIC_GENERATION",
    "HEADLINE",
    "INDUCTION_INSTRUCTIONS",
    "NEWS_TOPIC",
    "QA",
    "SENTIMENT",
    "SUMMARIZATION",
    "PoolText",
    "build_pool",
    "generic_classification",
    "induction",
    "translation",
]
