"""Greedy generation in the in-process backends.

Shared by both: :func:`consecutive_groups` (rows, sorted by length, cut into batches that
stay within a cost) and :class:`GreedyRows` (the tokens of rows decoded together, and which
are finished). :class:`CausalGeneration` is the causal backend's generation
(:class:`~prompt_env.llm.hf.HFCausalLM`), written out rather than left to transformers'
``generate``, which pads every row of a batch to the longest one for the prompt pass: on
inputs of different lengths (news articles) most of that pass computes padding. Here the
prompt pass runs in buckets of rows of similar length (:data:`BUCKET_SLACK`), the buckets'
key/value caches are then laid side by side, and all rows decode together, one forward pass
per new token. A row's tokens sit after the shared prefix, with padding between them (hidden
by the attention mask, positions continuing the prefix), so every row's next token lines up.
The batch's keys and values are allocated once, with room for the new tokens, which each
decode step writes in place (:func:`_roomy_layer`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from prompt_env.llm.base import cut_at_stop, stopped
from prompt_env.llm.transformers_engine import TOKENS_PER_FORWARD, layers_of_output

DECODE_ROWS = 32
"""Rows decoded together at most."""
DECODE_TOKENS = 16384
"""Rows x (prefix + longest row + new tokens) decoded together at most: bounds the key/value
cache (SmolLM2-135M: 45 KiB a token, so about 0.7 GiB)."""
BUCKET_SLACK = 0.25
"""A prompt-pass bucket grows while its padded tokens exceed its real ones by at most this
fraction."""


@functools.cache
def _roomy_layer() -> type:
    """transformers' ``DynamicLayer`` with its keys and values in tensors allocated once, with
    room for the tokens a decode adds: ``update`` writes into the room. ``DynamicLayer``
    concatenates instead, a copy of the whole cache for every new token (8 XSum rows of 4,200
    tokens: 1.5 GB a step on SmolLM2-135M, more than the attention itself reads)."""
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        def __init__(self, keys: Any, values: Any, length: int) -> None:
            super().__init__()
            self.device = keys.device
            self._room = (keys, values)
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]
            self.is_initialized = True

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            at, end = self.keys.shape[-2], self.keys.shape[-2] + key_states.shape[-2]
            keys, values = self._room
            keys[:, :, at:end], values[:, :, at:end] = key_states, value_states
            self.keys, self.values = keys[:, :, :end], values[:, :, :end]
            return self.keys, self.values

    return RoomyLayer


def consecutive_groups(order: Sequence[int], fits: Callable[[list[int]], bool]) -> list[list[int]]:
    """``order`` cut into consecutive groups, each grown while ``fits(group)`` holds (a group
    of one always stands)."""
    groups: list[list[int]] = []
    for i in order:
        if groups and fits(groups[-1] + [i]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@functools.lru_cache(maxsize=64)
def _takes_positions(model_class: type) -> bool:
    return "position_ids" in inspect.signature(model_class.forward).parameters


class GreedyRows:
    """The generated tokens of rows decoded together. A row finishes at an end-of-sequence
    token (not kept) or once its text holds a stop string after its first visible character;
    its answer is its text cut there (:func:`~prompt_env.llm.base.cut_at_stop`)."""

    def __init__(self, n: int, eos_ids: set[int], decode: Callable[[list[int]], str],
                 stops: Sequence[str] | None) -> None:
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.done = [False] * n
        self._eos = eos_ids
        self._decode = decode
        self._stops = [s for s in (stops or []) if s]

    def add(self, best: Sequence[int]) -> bool:
        """Take each row's next token; True once every row is finished."""
        for r, token in enumerate(best):
            if self.done[r]:
                continue
            if token in self._eos:
                self.done[r] = True
                continue
            self.tokens[r].append(int(token))
            if self._stops and stopped(self._decode(self.tokens[r]), self._stops):
                self.done[r] = True
        return all(self.done)

    def texts(self) -> list[str]:
        return [cut_at_stop(self._decode(t), self._stops) for t in self.tokens]


class CausalGeneration:
    """Mixed into :class:`~prompt_env.llm.hf.HFCausalLM` (needs ``model``, ``tokenizer``,
    ``device``, ``stats``, ``_forward``, ``_rows_cache`` and ``_new_cache``)."""

    model: Any
    tokenizer: Any
    device: str
    stats: Any
    _forward: Callable[..., Any]
    _rows_cache: Callable[..., Any]
    _new_cache: Callable[..., Any]

    def _generate_rows(self, contexts: list[list[int]], members: list[int], prefix: list[int],
                       layers: list[tuple[Any, Any]] | None, max_new_tokens: int,
                       stop: list[str] | None, outputs: list[str]) -> None:
        """Generate for ``members`` (contexts that all start with ``prefix``, whose keys and
        values are ``layers``, or None without a prefix) into ``outputs``."""
        p = len(prefix)
        order = sorted(members, key=lambda i: len(contexts[i]))

        def decodable(group: list[int]) -> bool:
            longest = max(len(contexts[i]) for i in group) - p
            return (len(group) <= DECODE_ROWS
                    and len(group) * (p + longest + max_new_tokens) <= DECODE_TOKENS)

        for batch in consecutive_groups(order, decodable):
            rows = [contexts[i][p:] for i in batch]
            for i, text in zip(batch, self._decode_batch(rows, p, layers, max_new_tokens, stop),
                               strict=True):
                outputs[i] = text

    def _decode_batch(self, rows: list[list[int]], p: int, layers: list[tuple[Any, Any]] | None,
                      max_new_tokens: int, stop: list[str] | None) -> list[str]:
        """Greedy answers of ``rows`` (each a prompt's tokens after the shared prefix of
        length ``p``; sorted by length): the prompt pass in buckets, then one decode."""
        import torch

        width = max(len(r) for r in rows)

        def bucket(group: list[int]) -> bool:
            real = sum(len(rows[r]) for r in group)
            padded = len(group) * len(rows[group[-1]])
            return padded <= (1 + BUCKET_SLACK) * real and padded <= TOKENS_PER_FORWARD

        # the batch's keys and values, one tensor per layer: the prefix, then padding, then
        # each row's own tokens (right-aligned), then room for the decode's; each bucket's pass
        # is copied in once
        length, room = p + width, p + width + max_new_tokens - 1  # max_new_tokens >= 1
        layers_kv: list[tuple[Any, Any]] = []
        first: list[int] = []
        for group in consecutive_groups(range(len(rows)), bucket):
            kv, best = self._prompt_pass([rows[r] for r in group], p, layers)
            if not layers_kv:
                layers_kv = [(k.new_zeros(len(rows), k.shape[1], room, k.shape[3]),
                              v.new_zeros(len(rows), v.shape[1], room, v.shape[3])) for k, v in kv]
            lo, hi, own = group[0], group[-1] + 1, kv[0][0].shape[2] - p
            for (keys, values), (k, v) in zip(layers_kv, kv, strict=True):
                keys[lo:hi, :, :p], keys[lo:hi, :, length - own:length] = k[:, :, :p], k[:, :, p:]
                values[lo:hi, :, :p], values[lo:hi, :, length - own:length] = v[:, :, :p], v[:, :, p:]
            first += best
        self.stats.prompt_tokens += sum(len(r) for r in rows)
        found = GreedyRows(len(rows), {self.tokenizer.eos_token_id}, self._text, stop)
        if not found.add(first):
            cache = self._decode_cache(layers_kv, length)
            # the mask of the whole room, one slice of it per step
            mask = torch.tensor([[1] * p + [0] * (width - len(r)) + [1] * (len(r) + max_new_tokens - 1)
                                 for r in rows], dtype=torch.long, device=self.device)
            step = torch.tensor([[t] for t in first], dtype=torch.long, device=self.device)
            for n in range(1, max_new_tokens):
                positions = self._positions([[p + len(r) + n - 1] for r in rows])
                out = self._forward(step, mask[:, :length + n], cache=cache, **positions)
                best = out.logits[:, -1].argmax(dim=-1)
                if found.add(best.tolist()):
                    break
                step = best[:, None]
        self.stats.generated_tokens += sum(len(t) for t in found.tokens)
        return found.texts()

    def _decode_cache(self, layers_kv: list[tuple[Any, Any]], length: int) -> Any:
        """A cache holding the first ``length`` positions of ``layers_kv``; its full-attention
        layers write the decode's tokens into the room after them (:func:`_roomy_layer`),
        other kinds (sliding window) keep a copy and grow as transformers grows them."""
        from transformers.cache_utils import DynamicLayer

        cache = self._new_cache()
        if len(getattr(cache, "layers", ())) != len(layers_kv):
            return self._new_cache([(k[:, :, :length], v[:, :, :length]) for k, v in layers_kv])
        for i, (layer, (k, v)) in enumerate(zip(cache.layers, layers_kv, strict=True)):
            if type(layer) is DynamicLayer:
                cache.layers[i] = _roomy_layer()(k, v, length)
            else:
                layer.update(k[:, :, :length], v[:, :, :length])
        return cache

    def _prompt_pass(self, rows: list[list[int]], p: int,
                     layers: list[tuple[Any, Any]] | None) -> tuple[list[tuple[Any, Any]], list[int]]:
        """One padded forward pass over ``rows`` after the prefix: their keys and values (the
        prefix's included) and each row's first greedy token."""
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long,
                           device=self.device)
        mask = torch.tensor([[1] * p + [0] * (width - len(r)) + [1] * len(r) for r in rows],
                            dtype=torch.long, device=self.device)
        cache = self._new_cache() if layers is None else self._rows_cache(layers, len(rows))
        positions = self._positions([[1] * (width - len(r)) + list(range(p, p + len(r))) for r in rows])
        out = self._forward(ids, mask, cache=cache, logits_to_keep=1, **positions)
        self.stats.batches += 1
        return layers_of_output(out), out.logits[:, -1].argmax(dim=-1).tolist()

    def _positions(self, positions: list[list[int]]) -> dict[str, Any]:
        """``position_ids`` for models that take them (positions continue the prefix across
        the padding); models without (ALiBi) place tokens by the attention mask."""
        import torch

        if not _takes_positions(type(self.model)):
            return {}
        return {"position_ids": torch.tensor(positions, dtype=torch.long, device=self.device)}

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)
