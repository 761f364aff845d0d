"""The causal transformers backend (:class:`HFCausalLM`), which also runs the default model.

Loading lives in :mod:`prompt_env.llm.hf_loading` (``load_hf``, ``load_default``,
re-exported here), the default model's location and conversion in
:mod:`prompt_env.llm.default_model`, the prefix key/value cache in
:mod:`prompt_env.llm.prefix_cache`, and encoder-decoder models in
:mod:`prompt_env.llm.seq2seq`.

Speed comes from three things, each checked against the plain path in tests:

* batching with padding done right (right padding for scoring, where only
  real positions are read; left padding for generation);
* prefix reuse: prompts that share their first tokens (same instruction and
  exemplars, different input) share one forward pass over those tokens. The
  shared part is found on the *token* sequences of the full prompts, never by
  tokenizing prefix and suffix separately, so the reused path reads exactly
  the tokens the plain path reads;
* prompt caching across calls: a shared prefix's key/value cache is kept in a
  small LRU (bounded in tokens), and a prompt whose first tokens recur from a
  recent call starts one. An env that scores one (prompt, input) pair per step
  then pays only for the input's tokens once the prompt has been seen;
* single-token choices are all read from one forward pass per prompt.

A choice is scored as the tokens ``tokenize(choice)`` following the tokens
``tokenize(prompt)`` (no special tokens added to either). Both the fast and
the naive path use that same token sequence.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_env.errors import LLMError, PromptTooLongError
from prompt_env.llm.base import (
    LLM,
    PromptInput,
    cut_at_stop,
    validate_choices,
    validate_prompts,
)
from prompt_env.llm.default_model import (
    DEFAULT_GGUF,
    DEFAULT_NAME,
    DEFAULT_PACKAGE,
    INSTALL_HINT,
    cache_root,
    default_gguf_path,
    default_model_dir,
    file_digest,
)
from prompt_env.llm.hf_loading import load_default, load_hf, set_threads
from prompt_env.llm.prefix_cache import PrefixCache, common_prefix, group_by_prefix

__all__ = [
    "DEFAULT_GGUF",
    "DEFAULT_NAME",
    "DEFAULT_PACKAGE",
    "INSTALL_HINT",
    "HFCausalLM",
    "PrefixCache",
    "cache_root",
    "default_gguf_path",
    "default_model_dir",
    "file_digest",
    "load_default",
    "load_hf",
]

# Rows x padded length per forward pass: keeps activations small on a laptop CPU.
TOKENS_PER_FORWARD = 4096
# Prompts sharing fewer tokens than this are not worth a separate prefix pass.
MIN_SHARED_PREFIX = 8
# Kept key/value caches of prompt prefixes, in tokens (SmolLM2-135M: 45 KiB a token).
PREFIX_CACHE_TOKENS = 8192
# A prefix recurring across calls is cached from this many tokens on.
MIN_CACHED_PREFIX = 16
RECENT_CONTEXTS = 64


class HFCausalLM(LLM):
    """A causal LM from transformers, scored and generated on CPU (or GPU if given)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        identity: str,
        device: str = "cpu",
        prefix_reuse: bool = True,
        prefix_cache_tokens: int = PREFIX_CACHE_TOKENS,
    ) -> None:
        super().__init__()
        if prefix_cache_tokens < 0:
            raise ValueError(f"prefix_cache_tokens must be >= 0, got {prefix_cache_tokens}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._identity = identity
        self.device = device
        self.prefix_reuse = prefix_reuse
        self.prefix_cache = PrefixCache(prefix_cache_tokens)
        self._recent: deque[tuple[int, ...]] = deque(maxlen=RECENT_CONTEXTS)
        self._lock = threading.RLock()
        self.max_length = int(
            getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length
        )
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        params = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ helpers
    def identity(self) -> str:
        return self._identity

    def prompt_text(self, prompt: PromptInput) -> str:
        """The exact text the model reads for ``prompt`` (chats through the chat template)."""
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise LLMError(f"model {self.name} has no chat template; send plain-text prompts")
        return self.tokenizer.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=True
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def count_tokens(self, prompt: PromptInput) -> int:
        return len(self.encode(self.prompt_text(prompt)))

    def _check_length(self, index: int, n_tokens: int, extra: int) -> None:
        if n_tokens + extra > self.max_length:
            raise PromptTooLongError(
                f"prompt {index} has {n_tokens} tokens (+{extra} for the answer); model "
                f"{self.name} reads at most {self.max_length}. Shorten the prompt or use fewer exemplars."
            )
        if n_tokens == 0:
            raise LLMError(f"prompt {index} is empty after tokenization; give it some text")

    def _forward(self, input_ids: Any, attention_mask: Any, cache: Any = None, **extra: Any) -> Any:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "use_cache": cache is not None, **extra}
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        return self.model(**kwargs)

    # ------------------------------------------------------------------ scoring
    def score(self, prompts: Sequence[PromptInput], choices: Sequence[str]) -> np.ndarray:
        prompts = validate_prompts(prompts)
        choices = validate_choices(choices)
        if not prompts:
            return np.zeros((0, len(choices)), dtype=np.float64)
        contexts = [self.encode(self.prompt_text(p)) for p in prompts]
        choice_ids = [self.encode(c) for c in choices]
        longest = max(len(c) for c in choice_ids)
        for i, ctx in enumerate(contexts):
            self._check_length(i, len(ctx), longest)
        import torch

        set_threads()
        with torch.inference_mode():
            if self.prefix_reuse:
                result = self._score_shared_prefix(contexts, choice_ids)
            else:
                result = self._score_rows(contexts, choice_ids, prefix=[])
        self.stats.calls += len(prompts)
        self.stats.model_calls += len(prompts)
        return result

    def score_naive(self, prompts: Sequence[PromptInput], choices: Sequence[str]) -> np.ndarray:
        """Reference path: one forward pass per (prompt, choice) on the full token sequence."""
        import torch

        prompts = validate_prompts(prompts)
        choices = validate_choices(choices)
        out = np.zeros((len(prompts), len(choices)), dtype=np.float64)
        choice_ids = [self.encode(c) for c in choices]
        set_threads()
        with torch.inference_mode():
            for i, prompt in enumerate(prompts):
                ctx = self.encode(self.prompt_text(prompt))
                self._check_length(i, len(ctx), max(len(c) for c in choice_ids))
                for j, cont in enumerate(choice_ids):
                    ids = torch.tensor([ctx + cont], device=self.device)
                    logits = self.model(input_ids=ids).logits[0].float()
                    logp = torch.log_softmax(logits, dim=-1)
                    positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
                    out[i, j] = float(logp[positions, torch.tensor(cont)].double().sum())
                    self.stats.batches += 1
                    self.stats.prompt_tokens += len(ctx) + len(cont)
        self.stats.calls += len(prompts)
        self.stats.model_calls += len(prompts)
        return out

    def _score_shared_prefix(
        self, contexts: list[list[int]], choice_ids: list[list[int]]
    ) -> np.ndarray:
        """Score with prefix reuse: cached prefixes first, then prefixes shared in this call or with a recent one."""
        with self._lock:
            result = np.zeros((len(contexts), len(choice_ids)), dtype=np.float64)
            by_prefix: dict[tuple[int, ...], list[int]] = {}
            pending: list[int] = []
            for i, ctx in enumerate(contexts):
                key = self.prefix_cache.longest_prefix_of(ctx)
                if key is None:
                    pending.append(i)
                else:
                    by_prefix.setdefault(key, []).append(i)
            unshared: list[int] = []
            groups = group_by_prefix([contexts[i] for i in pending], MIN_SHARED_PREFIX)
            for members, prefix_len in groups:
                indices = [pending[m] for m in members]
                if prefix_len:
                    by_prefix.setdefault(tuple(contexts[indices[0]][:prefix_len]), []).extend(indices)
                    continue
                for i in indices:
                    shared = self._recent_shared_prefix(contexts[i])
                    if shared >= MIN_CACHED_PREFIX and self.prefix_cache.capacity_tokens:
                        by_prefix.setdefault(tuple(contexts[i][:shared]), []).append(i)
                    else:
                        unshared.append(i)
            for key, members in by_prefix.items():
                layers = self.prefix_cache.get(key)
                if layers is None:
                    layers = self._prefix_layers(list(key))
                    self.prefix_cache.put(key, layers)
                result[members] = self._score_rows(
                    [contexts[i] for i in members], choice_ids, prefix=list(key), prefix_layers=layers
                )
            if unshared:
                result[unshared] = self._score_rows([contexts[i] for i in unshared], choice_ids, prefix=[])
            self._recent.extend(tuple(c) for c in contexts[-RECENT_CONTEXTS:])  # the deque keeps no more
            return result

    def _recent_shared_prefix(self, ctx: list[int]) -> int:
        """Longest token prefix ``ctx`` shares with a different recent context (< len(ctx))."""
        target = tuple(ctx)
        best = 0
        for other in self._recent:
            if other != target:
                best = max(best, common_prefix(target, other, len(ctx) - 1))
        return best

    def _prefix_layers(self, prefix: list[int]) -> list[tuple[Any, Any]]:
        """Per-layer (keys, values) of one forward pass over ``prefix``."""
        import torch

        ids = torch.tensor([prefix], device=self.device)
        out = self._forward(ids, torch.ones_like(ids), cache=self._new_cache(), logits_to_keep=1)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        self.stats.prompt_tokens += len(prefix)
        self.stats.batches += 1
        return [(layer.keys, layer.values) for layer in cache.layers]

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
        first_tokens = torch.tensor([c[0] for c in choice_ids])
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
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, p + width), dtype=torch.long)
        mask[:, :p] = 1
        for r, (_, _, tokens) in enumerate(chunk):
            ids[r, : len(tokens)] = torch.tensor(tokens)
            mask[r, p : p + len(tokens)] = 1
        cache = None
        if prefix_layers is not None:
            cache = self._new_cache(
                [(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous())
                 for k, v in prefix_layers]
            )
        # Only the positions that predict answer tokens need logits (the LM head over a
        # 49k vocabulary is a fifth of this model's FLOPs), so ask for just those.
        needed: list[list[int]] = []
        for i, j, _ in chunk:
            n_ctx = len(contexts[i]) - p  # context tokens inside this row (>= 1)
            length = 1 if j == -1 else len(choice_ids[j])
            needed.append(list(range(n_ctx - 1, n_ctx - 1 + length)))
        keep = sorted({pos for positions in needed for pos in positions})
        column = {pos: c for c, pos in enumerate(keep)}
        out = self._forward(ids.to(self.device), mask.to(self.device), cache=cache,
                            logits_to_keep=torch.tensor(keep))
        logits = out.logits
        if logits.shape[1] != len(keep):  # a model that ignores logits_to_keep
            logits = logits[:, keep]
        self.stats.batches += 1
        self.stats.prompt_tokens += int(mask[:, p:].sum())
        for r, (i, j, _) in enumerate(chunk):
            cols = [column[pos] for pos in needed[r]]
            logp = torch.log_softmax(logits[r, cols].float(), dim=-1)
            if j == -1:  # all choices single-token: read them from the last context position
                result[i] = logp[0, first_tokens].double().numpy()
            else:
                cont = torch.tensor(choice_ids[j])
                result[i, j] = float(logp[torch.arange(len(cont)), cont].double().sum())

    def _new_cache(self, layers: list[tuple[Any, Any]] | None = None) -> Any:
        from transformers import DynamicCache

        if layers is None:
            return DynamicCache(config=self.model.config)
        return DynamicCache(ddp_cache_data=layers, config=self.model.config)

    # --------------------------------------------------------------- generation
    def generate(
        self,
        prompts: Sequence[PromptInput],
        max_new_tokens: int = 32,
        stop: Sequence[str] | None = None,
    ) -> list[str]:
        import torch

        prompts = validate_prompts(prompts)
        if not prompts:
            return []
        if max_new_tokens < 1:
            raise LLMError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        contexts = [self.encode(self.prompt_text(p)) for p in prompts]
        for i, ctx in enumerate(contexts):
            self._check_length(i, len(ctx), max_new_tokens)
        set_threads()
        outputs: list[str] = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(contexts[i]))
        pad = self.tokenizer.pad_token_id
        stop_ids = {self.tokenizer.eos_token_id}
        start = 0
        with torch.inference_mode():
            while start < len(order):
                width = len(contexts[order[min(len(order) - 1, start)]]) + max_new_tokens
                size = max(1, min(16, TOKENS_PER_FORWARD // max(width, 1)))
                chunk = order[start : start + size]
                start += len(chunk)
                width = max(len(contexts[i]) for i in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, i in enumerate(chunk):  # left padding: generated tokens line up
                    ids[r, width - len(contexts[i]) :] = torch.tensor(contexts[i])
                    mask[r, width - len(contexts[i]) :] = 1
                generated = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=pad,
                    eos_token_id=list(stop_ids),
                    stop_strings=list(stop) if stop else None,
                    tokenizer=self.tokenizer if stop else None,
                )[:, width:]
                self.stats.batches += 1
                self.stats.prompt_tokens += int(mask.sum())
                for r, i in enumerate(chunk):
                    tokens = [t for t in generated[r].tolist() if t not in stop_ids and t != pad]
                    self.stats.generated_tokens += len(tokens)
                    text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                    outputs[i] = cut_at_stop(text, stop)
        self.stats.calls += len(prompts)
        self.stats.model_calls += len(prompts)
        return outputs

    # --------------------------------------------------------------- embedding
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states (float32), one row per text."""
        import torch

        if not texts:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        encoded = [self.encode(t)[: min(self.max_length, 512)] or [self.tokenizer.eos_token_id] for t in texts]
        width = max(len(e) for e in encoded)
        ids = torch.full((len(encoded), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, e in enumerate(encoded):
            ids[r, : len(e)] = torch.tensor(e)
            mask[r, : len(e)] = 1
        set_threads()
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = out.hidden_states[-1].float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return pooled.numpy().astype(np.float32)
