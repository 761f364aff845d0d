"""Candidate words for prompts composed token by token (:class:`~prompt_env.envs.compose.PromptComposeEnv`).

The rule, deterministic for a given task LM:

1. **From the task LM's tokenizer** (any LLM object with a ``tokenizer`` attribute, e.g. the
   embedded default and every ``hf:`` model): walk the token ids in increasing order and keep a
   token when it decodes to a space followed by an ASCII alphabetic word of at least
   :data:`MIN_WORD_LENGTH` letters (``" the"``, ``" movie"``, ``" The"``), and that word after a
   space encodes back to exactly this one token; keep the first ``size`` distinct words. BPE ids
   are roughly in order of merge frequency, so these are the tokenizer's most frequent
   word-initial pieces. Most are English words; some are the first piece of longer words
   (``" con"``, ``" pro"``), which the rule does not try to tell apart (it has no dictionary).
2. **Without a tokenizer** (the fake test double, an OpenAI-compatible server): the ASCII
   alphabetic words (at least :data:`MIN_WORD_LENGTH` letters) of the given texts (the env
   passes the task's train and dev inputs), most frequent first, ties in order of first
   appearance.
3. **A user's own list** (``vocabulary=[...]`` in the env) is used as given, after
   :func:`check_words`.

Vocabularies from a tokenizer are kept per (model identity, size) in this process.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

MIN_WORD_LENGTH = 2
"""Shortest word (in letters) a vocabulary rule keeps."""

_WORD = re.compile(r"[A-Za-z]+")
_CACHE: dict[tuple[str, int], tuple[str, ...]] = {}


def is_candidate_word(word: str) -> bool:
    """An ASCII alphabetic word of at least :data:`MIN_WORD_LENGTH` letters."""
    return len(word) >= MIN_WORD_LENGTH and word.isascii() and word.isalpha()


def tokenizer_words(tokenizer: Any, size: int) -> list[str]:
    """The first ``size`` whole-word tokens of ``tokenizer`` by the rule above (fewer if it has fewer)."""
    words: list[str] = []
    seen: set[str] = set()
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        word = text[1:]
        if not text.startswith(" ") or not is_candidate_word(word) or word in seen:
            continue
        if list(tokenizer(text, add_special_tokens=False).input_ids) != [token_id]:
            continue  # the word after a space is not this one token
        words.append(word)
        seen.add(word)
        if len(words) == size:
            break
    return words


def text_words(texts: Iterable[str], size: int) -> list[str]:
    """The ``size`` most frequent candidate words of ``texts`` (ties: first appearance first)."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for text in texts:
        for word in _WORD.findall(text):
            if is_candidate_word(word):
                counts[word] += 1
                first.setdefault(word, len(first))
    return sorted(counts, key=lambda w: (-counts[w], first[w]))[:size]


def word_vocabulary(llm: Any, size: int, fallback_texts: Iterable[str]) -> tuple[list[str], str]:
    """``size`` candidate words for ``llm`` and the rule that chose them (``"tokenizer"`` or
    ``"task words"``); a ValueError saying what to pass when there are fewer than ``size``."""
    tokenizer = getattr(llm, "tokenizer", None)
    if tokenizer is not None:
        key = (str(llm.identity()), size)
        if key not in _CACHE:
            _CACHE[key] = tuple(tokenizer_words(tokenizer, size))
        words, rule = list(_CACHE[key]), "tokenizer"
        source = f"the tokenizer of {llm.identity()}"
    else:
        words, rule = text_words(fallback_texts, size), "task words"
        source = "the task's train and dev inputs (the LLM exposes no tokenizer)"
    if len(words) < size:
        raise ValueError(
            f"vocab_size={size}, but {source} give only {len(words)} candidate words; pass "
            f"vocab_size={len(words)} or less, or your own words with vocabulary=[...]"
        )
    return words, rule


def check_words(vocabulary: Any) -> list[str]:
    """A user's vocabulary as a list of words, or a ValueError naming the first bad entry."""
    if not isinstance(vocabulary, (list, tuple)) or not vocabulary:
        raise ValueError(f"vocabulary must be a non-empty list of words or None, got {vocabulary!r}")
    seen: set[str] = set()
    for index, word in enumerate(vocabulary):
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"vocabulary[{index}] must be a non-empty string, got {word!r}")
        if word != word.strip() or "\n" in word:
            raise ValueError(f"vocabulary[{index}] = {word!r}: no leading or trailing spaces and no "
                             "newlines (the words are joined with single spaces)")
        if word in seen:
            raise ValueError(f"vocabulary[{index}] = {word!r} appears twice; give each word once")
        seen.add(word)
    return list(vocabulary)


def join_words(words: Sequence[str]) -> str:
    """The prompt text of a word sequence: the words joined by single spaces."""
    return " ".join(words)
