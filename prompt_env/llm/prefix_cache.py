"""Prompt-prefix reuse for the causal transformers backend.

Prompts that share their first tokens (same instruction and exemplars,
different input) can share one forward pass over those tokens. This module
holds the bookkeeping: an LRU of prefix key/value caches bounded in tokens
(:class:`PrefixCache`), and the grouping of token sequences by a long common
prefix (:func:`group_by_prefix`). Everything works on token ids, never text.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any


class PrefixCache:
    """An LRU of prompt-prefix key/value caches, bounded by their total length in tokens."""

    def __init__(self, capacity_tokens: int) -> None:
        """An empty cache holding at most ``capacity_tokens`` prefix tokens in all."""
        self.capacity_tokens = int(capacity_tokens)
        self._entries: OrderedDict[tuple[int, ...], list[tuple[Any, Any]]] = OrderedDict()
        self.tokens = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        """Number of stored prefixes."""
        return len(self._entries)

    def longest_prefix_of(self, ctx: list[int]) -> tuple[int, ...] | None:
        """The longest stored prefix of ``ctx`` that leaves at least one token of it outside."""
        best: tuple[int, ...] | None = None
        for key in self._entries:
            n = len(key)
            if n < len(ctx) and (best is None or n > len(best)) and tuple(ctx[:n]) == key:
                best = key
        if best is None:
            self.misses += 1
        else:
            self.hits += 1
            self._entries.move_to_end(best)
        return best

    def get(self, key: tuple[int, ...]) -> list[tuple[Any, Any]] | None:
        """The layers stored for exactly ``key`` (marked recently used), or None."""
        layers = self._entries.get(key)
        if layers is not None:
            self._entries.move_to_end(key)
        return layers

    def put(self, key: tuple[int, ...], layers: list[tuple[Any, Any]]) -> None:
        """Store ``layers`` for ``key``, evicting least recently used prefixes over capacity."""
        if len(key) > self.capacity_tokens or key in self._entries:
            return
        self._entries[key] = layers
        self.tokens += len(key)
        while self.tokens > self.capacity_tokens:
            old, _ = self._entries.popitem(last=False)
            self.tokens -= len(old)

    def clear(self) -> None:
        """Forget every stored prefix."""
        self._entries.clear()
        self.tokens = 0


def group_by_prefix(contexts: list[list[int]], min_shared: int) -> list[tuple[list[int], int]]:
    """Group contexts that share a long token prefix; return (member indices, prefix length).

    Sorting the token sequences puts sequences with long common prefixes next to
    each other; a group grows while its common prefix stays >= ``min_shared``.
    The prefix always leaves at least one token of each context outside it,
    so the first answer token is predicted from a row position.
    """
    order = sorted(range(len(contexts)), key=lambda i: contexts[i])
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    shared = 0
    for i in order:
        if not members:
            members, shared = [i], len(contexts[i]) - 1
            continue
        common = common_prefix(contexts[members[-1]], contexts[i], shared)
        if common >= min_shared:
            members.append(i)
            shared = common
        else:
            groups.append((members, shared))
            members, shared = [i], len(contexts[i]) - 1
    if members:
        groups.append((members, shared))
    result = []
    for group, shared in groups:
        shortest = min(len(contexts[i]) for i in group)
        prefix = min(shared, shortest - 1)
        worth_it = len(group) > 1 and prefix >= min_shared
        result.append((group, prefix if worth_it else 0))
    return result


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit``."""
    n = min(len(a), len(b), limit)
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k
