"""Scoring many (context, choices) requests in few forward passes of the fused engine.

:class:`~prompt_env.llm.hf.HFCausalLM` decides which prompt prefix each context continues
(a cached one, one shared in the call, or none); this module does the rest:

* every context becomes rows: a request whose choices are all one token long is one row
  per context, read at the context's last position (every label word from one pass);
  otherwise one row per (context, choice), the choice's tokens appended and read at the
  positions that predict them (teacher forcing);
* rows are **packed**: several sequences share one row of the forward pass, each seeing
  only its own prefix and, causally, its own tokens (a block mask), so short sequences
  of different prompts and different label words do not pay for padding; rows of one
  prefix are packed together, so a packed row carries few prefixes;
* prefixes not cached yet are computed first, all in one packed pass, and cached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prompt_env.llm.fused_llama import FusedLlama, Layers, PackedBatch

PACK_TOKENS = 128
"""Tokens per packed row (a longer sequence gets a row of its own): attention inside a
packed row spans all its sequences, so short rows keep that overhead small."""


@dataclasses.dataclass
class Segment:
    """One sequence of a pass: tokens after a prefix, and where its answers are read."""

    tokens: list[int]
    prefix: tuple[int, ...] | None
    read: list[int]
    """Positions (in ``tokens``) whose next-token distributions are read."""
    request: int = -1
    context: int = -1
    choice: int = -1
    """The choice this sequence scores, or -1: every (single-token) choice at once."""
    answer: list[int] = dataclasses.field(default_factory=list)


def build_segments(contexts: Sequence[Sequence[list[int]]], choice_ids: Sequence[list[list[int]]],
                    prefixes: Sequence[Sequence[tuple[int, ...] | None]]) -> list[Segment]:
    """The sequences of every request ``r``: ``contexts[r][i]`` continuing ``prefixes[r][i]``."""
    out: list[Segment] = []
    for r, (request_contexts, choices) in enumerate(zip(contexts, choice_ids, strict=True)):
        single = all(len(c) == 1 for c in choices)
        for i, ctx in enumerate(request_contexts):
            prefix = prefixes[r][i]
            suffix = list(ctx[len(prefix):]) if prefix else list(ctx)
            if single:
                out.append(Segment(suffix, prefix, [len(suffix) - 1], r, i))
                continue
            for j, cont in enumerate(choices):
                read = list(range(len(suffix) - 1, len(suffix) - 1 + len(cont)))
                out.append(Segment(suffix + list(cont), prefix, read, r, i, j, list(cont)))
    return out


def pack(sequences: list[Segment], capacity: int = PACK_TOKENS) -> list[list[Segment]]:
    """Packed rows: sequences of one prefix next to each other, longest first, each row
    filled up to ``capacity`` tokens (or holding one longer sequence alone)."""
    order = sorted(sequences, key=lambda s: (s.prefix or (), -len(s.tokens)))
    rows: list[list[Segment]] = []
    fill = 0
    for seq in order:
        if rows and fill + len(seq.tokens) <= capacity:
            rows[-1].append(seq)
            fill += len(seq.tokens)
        else:
            rows.append([seq])
            fill = len(seq.tokens)
    return rows


def passes(rows: list[list[Segment]], tokens_per_forward: int) -> list[list[list[Segment]]]:
    """Packed rows grouped into forward passes of at most ``tokens_per_forward`` padded
    tokens (rows x widest row), rows of similar width together."""
    order = sorted(rows, key=lambda row: sum(len(s.tokens) for s in row))
    out: list[list[list[Segment]]] = []
    width = 0
    for row in order:
        row_width = sum(len(s.tokens) for s in row)
        if out and (len(out[-1]) + 1) * max(width, row_width) <= tokens_per_forward:
            out[-1].append(row)
            width = max(width, row_width)
        else:
            out.append([row])
            width = row_width
    return out


def batch_of(rows: list[list[Segment]], layers_of: Callable[[tuple[int, ...]], Layers],
             device: Any = "cpu") -> PackedBatch:
    """Token, position and mask tensors of one pass over packed ``rows``, on ``device``.

    The small per-token tables are filled on the CPU and copied over once; the mask (the
    big tensor, rows x width x keys) is computed on ``device`` itself."""
    import torch

    n = len(rows)
    width = max(sum(len(s.tokens) for s in row) for row in rows)
    placed: list[list[tuple[Layers, int]]] = []
    slots: list[dict[tuple[int, ...], int]] = []
    for row in rows:
        offsets: dict[tuple[int, ...], int] = {}
        at = 0
        for seq in row:
            if seq.prefix and seq.prefix not in offsets:
                offsets[seq.prefix] = at
                at += len(seq.prefix)
        slots.append(offsets)
        placed.append([(layers_of(key), offset) for key, offset in offsets.items()])
    past = max((sum(len(k) for k in offsets) for offsets in slots), default=0)
    tokens = torch.zeros((n, width), dtype=torch.long)
    positions = torch.zeros((n, width), dtype=torch.long)
    # per token: its prefix's slots [lo, hi) and the first token of its own sequence
    lo = torch.zeros((n, width), dtype=torch.long)
    hi = torch.zeros((n, width), dtype=torch.long)
    start = torch.arange(width).repeat(n, 1)  # padding sees only itself
    for r, row in enumerate(rows):
        at = 0
        for seq in row:
            length, p = len(seq.tokens), len(seq.prefix or ())
            span = slice(at, at + length)
            tokens[r, span] = torch.tensor(seq.tokens)
            positions[r, span] = torch.arange(p, p + length)
            if p:
                lo[r, span] = slots[r][seq.prefix]  # type: ignore[index]
                hi[r, span] = slots[r][seq.prefix] + p  # type: ignore[index]
            start[r, span] = at
            at += length
    tokens, positions, lo, hi, start = (t.to(device) for t in (tokens, positions, lo, hi, start))
    key = torch.arange(past + width, device=device)[None, None, :]
    own = torch.arange(width, device=device)[None, :, None]
    in_prefix = (key < past) & (key >= lo[..., None]) & (key < hi[..., None])
    in_sequence = (key >= past) & (key - past >= start[..., None]) & (key - past <= own)
    shared = None
    keys = {k for offsets in slots for k in offsets}
    if len(keys) == 1 and all(len(offsets) == 1 for offsets in slots):
        shared = layers_of(next(iter(keys)))
    return PackedBatch(tokens, positions, (in_prefix | in_sequence)[:, None], placed, past, shared)


def prefill(engine: FusedLlama, prefixes: list[tuple[int, ...]], tokens_per_forward: int,
            on_pass: Callable[[int], None] | None = None) -> dict[tuple[int, ...], Layers]:
    """Keys and values of every prefix (each from position 0), in packed passes."""
    import torch

    out: dict[tuple[int, ...], Layers] = {}
    sequences = [Segment(list(p), None, []) for p in prefixes]
    for rows in passes(pack(sequences), tokens_per_forward):
        batch = batch_of(rows, lambda key: [], engine.device)
        empty = torch.zeros(0, dtype=torch.long, device=engine.device)
        _, kv = engine.forward(batch, keep_rows=empty, keep_cols=empty, keep_kv=True)
        if on_pass is not None:
            on_pass(sum(len(s.tokens) for row in rows for s in row))
        for r, row in enumerate(rows):
            at = 0
            for seq in row:
                span = slice(at, at + len(seq.tokens))
                out[tuple(seq.tokens)] = [(k[r: r + 1, :, span].clone(), v[r: r + 1, :, span].clone())
                                          for k, v in kv]
                at += len(seq.tokens)
    return out


def score_segments(engine: FusedLlama, sequences: list[Segment],
                    layers_of: Callable[[tuple[int, ...]], Layers],
                    choice_ids: Sequence[list[list[int]]], n_contexts: Sequence[int],
                    tokens_per_forward: int, on_pass: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Log-probability of every choice of every request, shape (contexts, choices) each."""
    import torch

    results = [np.zeros((n, len(c)), dtype=np.float64) for n, c in zip(n_contexts, choice_ids, strict=True)]
    device = engine.device
    first_tokens = [torch.tensor([c[0] for c in choices], device=device) for choices in choice_ids]
    for rows in passes(pack(sequences), tokens_per_forward):
        batch = batch_of(rows, layers_of, device)
        where_rows, where_cols, read = [], [], []
        for r, row in enumerate(rows):
            at = 0
            for seq in row:
                where_rows += [r] * len(seq.read)
                where_cols += [at + pos for pos in seq.read]
                read.append(seq)
                at += len(seq.tokens)
        hidden, _ = engine.forward(batch, keep_rows=torch.tensor(where_rows, device=device),
                                   keep_cols=torch.tensor(where_cols, device=device))
        logp = engine.log_probs(hidden)
        if on_pass is not None:
            on_pass(sum(len(s.tokens) for row in rows for s in row))
        at = 0
        picked = []  # float64 values on the device, read back once per pass
        for seq in read:
            block = logp[at: at + len(seq.read)]
            at += len(seq.read)
            if seq.choice == -1:
                picked.append(block[0, first_tokens[seq.request]].double())
            else:
                answer = torch.tensor(seq.answer, device=device)
                picked.append(block[torch.arange(len(answer), device=device), answer].double().sum()[None])
        values = torch.cat(picked).cpu().numpy()
        at = 0
        for seq in read:
            if seq.choice == -1:
                width = len(choice_ids[seq.request])
                results[seq.request][seq.context] = values[at: at + width]
                at += width
            else:
                results[seq.request][seq.context, seq.choice] = float(values[at])
                at += 1
    return results
