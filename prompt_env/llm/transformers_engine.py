"""The reference scoring engine of :class:`~prompt_env.llm.hf.HFCausalLM`: the model's own forward.

``engine="transformers"``: rows that continue one prompt prefix go through the
transformers model's ``forward`` with that prefix's key/value cache (a
``DynamicCache``), one padded pass per prefix group. Any causal architecture runs
here; it is also the path the fused engine (:mod:`prompt_env.llm.fused_llama`) is
checked and timed against.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOKENS_PER_FORWARD = 4096
"""Rows x padded length per forward pass: keeps activations small on a laptop CPU."""


def layers_of_output(out: Any) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of the cache a forward pass returned (``cache``, or
    ``past_key_values`` in transformers before the rename)."""
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    return [(layer.keys, layer.values) for layer in cache.layers]


class TransformersEngine:
    """Mixed into :class:`~prompt_env.llm.hf.HFCausalLM` (needs ``model``, ``tokenizer``,
    ``device``, ``stats`` and ``_cache_kwarg``)."""

    model: Any
    tokenizer: Any
    device: str
    stats: Any
    _cache_kwarg: str

    def _forward(self, input_ids: Any, attention_mask: Any, cache: Any = None, **extra: Any) -> Any:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "use_cache": cache is not None, **extra}
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        return self.model(**kwargs)

    def _prefix_layers(self, prefix: list[int]) -> list[tuple[Any, Any]]:
        """Per-layer (keys, values) of one forward pass over ``prefix``."""
        import torch

        ids = torch.tensor([prefix], device=self.device)
        out = self._forward(ids, torch.ones_like(ids), cache=self._new_cache(), logits_to_keep=1)
        self.stats.prompt_tokens += len(prefix)
        self.stats.batches += 1
        return layers_of_output(out)

    def _score_rows(
        self,
        contexts: list[list[int]],
        choice_ids: list[list[int]],
        prefix: list[int],
        prefix_layers: list[tuple[Any, Any]] | None = None,
    ) -> np.ndarray:
        """Score contexts that all start with ``prefix`` (possibly empty), reusing its KV cache."""
        import torch

        p = len(prefix)
        if p and prefix_layers is None:
            prefix_layers = self._prefix_layers(prefix)
        single = all(len(c) == 1 for c in choice_ids)
        first_tokens = torch.tensor([c[0] for c in choice_ids], device=self.device)
        # rows: (context index, choice index or -1 for "all single-token choices", token ids after the prefix)
        rows: list[tuple[int, int, list[int]]] = []
        for i, ctx in enumerate(contexts):
            suffix = ctx[p:]
            if single:
                rows.append((i, -1, suffix))
            else:
                rows.extend((i, j, suffix + cont) for j, cont in enumerate(choice_ids))
        result = np.zeros((len(contexts), len(choice_ids)), dtype=np.float64)
        order = sorted(range(len(rows)), key=lambda r: len(rows[r][2]))
        start = 0
        while start < len(order):
            width = max(len(rows[order[start]][2]), 1)
            size = max(1, TOKENS_PER_FORWARD // (width + p))
            chunk = order[start : start + size]
            width = max(len(rows[r][2]) for r in chunk)
            start += len(chunk)
            self._score_chunk([rows[r] for r in chunk], width, contexts, choice_ids, p,
                              prefix_layers, first_tokens, result)
        return result

    def _score_chunk(
        self,
        chunk: list[tuple[int, int, list[int]]],
        width: int,
        contexts: list[list[int]],
        choice_ids: list[list[int]],
        p: int,
        prefix_layers: list[tuple[Any, Any]] | None,
        first_tokens: Any,
        result: np.ndarray,
    ) -> None:
        """One padded forward pass over rows that continue the shared prefix."""
        import torch

        pad = self.tokenizer.pad_token_id
        n = len(chunk)
        # built as Python lists and created once on the model's device (no per-row copies)
        ids = torch.tensor([tokens + [pad] * (width - len(tokens)) for _, _, tokens in chunk],
                           dtype=torch.long, device=self.device)
        mask = torch.tensor([[1] * (p + len(tokens)) + [0] * (width - len(tokens)) for _, _, tokens in chunk],
                            dtype=torch.long, device=self.device)
        cache = None if prefix_layers is None else self._rows_cache(prefix_layers, n)
        # Only the positions that predict answer tokens need logits (the LM head over a
        # 49k vocabulary is a fifth of this model's FLOPs), so ask for just those.
        needed: list[list[int]] = []
        for i, j, _ in chunk:
            n_ctx = len(contexts[i]) - p  # context tokens inside this row (>= 1)
            length = 1 if j == -1 else len(choice_ids[j])
            needed.append(list(range(n_ctx - 1, n_ctx - 1 + length)))
        keep = sorted({pos for positions in needed for pos in positions})
        column = {pos: c for c, pos in enumerate(keep)}
        out = self._forward(ids, mask, cache=cache,
                            logits_to_keep=torch.tensor(keep, device=self.device))
        logits = out.logits
        if logits.shape[1] != len(keep):  # a model that ignores logits_to_keep
            logits = logits[:, keep]
        self.stats.batches += 1
        self.stats.prompt_tokens += sum(len(tokens) for _, _, tokens in chunk)
        picked = []  # float64 values on the device, read back once for the whole pass
        for r, (_, j, _) in enumerate(chunk):
            cols = [column[pos] for pos in needed[r]]
            logp = torch.log_softmax(logits[r, cols].float(), dim=-1)
            if j == -1:  # all choices single-token: read them from the last context position
                picked.append(logp[0, first_tokens].double())
            else:
                cont = torch.tensor(choice_ids[j], device=logp.device)
                picked.append(logp[torch.arange(len(cont), device=logp.device), cont].double().sum()[None])
        values = torch.cat(picked).cpu().numpy()
        at = 0
        for i, j, _ in chunk:
            if j == -1:
                result[i] = values[at: at + len(choice_ids)]
                at += len(choice_ids)
            else:
                result[i, j] = float(values[at])
                at += 1

    def _rows_cache(self, layers: list[tuple[Any, Any]], rows: int) -> Any:
        """A new cache holding one copy of a prefix's keys and values per row (the forward
        pass or generation appends each row's own to it)."""
        return self._new_cache([(k.expand(rows, -1, -1, -1).contiguous(),
                                 v.expand(rows, -1, -1, -1).contiguous()) for k, v in layers])

    def _new_cache(self, layers: list[tuple[Any, Any]] | None = None) -> Any:
        from transformers import DynamicCache

        if layers is None:
            return DynamicCache(config=self.model.config)
        return DynamicCache(ddp_cache_data=layers, config=self.model.config)
