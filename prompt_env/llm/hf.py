"""The causal transformers backend (:class:`HFCausalLM`), which also runs the default model.

Loading lives in :mod:`prompt_env.llm.hf_loading` (``load_hf``, ``load_default``), the default model's location and conversion in
:mod:`prompt_env.llm.default_model`, the prefix key/value cache in
:mod:`prompt_env.llm.prefix_cache`, and encoder-decoder models in
:mod:`prompt_env.llm.seq2seq`.

Scoring runs on one of two engines (``engine=``): ``"fused"``, a lean forward pass of the
Llama family that packs rows of different prompts and different label words into one
pass (:mod:`prompt_env.llm.fused_llama`, :mod:`prompt_env.llm.fused_scoring`), and
``"transformers"``, the model's own forward, one pass per prefix group (the reference).
``"auto"`` (the default) picks the fused engine where it applies; both give the same
log-probabilities to float32 rounding. Speed comes from these things, each checked
against the plain path in tests:

* batching with padding done right (right padding for scoring, where only
  real positions are read; for generation, padding between a shared prefix and
  each prompt's own tokens, the prompt pass in buckets of similar length and one
  batched decode: :mod:`prompt_env.llm.greedy`);
* prefix reuse, in scoring and generation: prompts that share their first tokens
  (same instruction and exemplars, different input) share one forward pass over
  those tokens. The
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

from prompt_env.errors import LLMError, LLMSpecError, PromptTooLongError
from prompt_env.llm.base import (
    LLM,
    PromptInput,
    ScoreRequest,
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
from prompt_env.llm.fused_llama import FusedLlama, unsupported_reason
from prompt_env.llm.fused_scoring import build_segments, prefill, score_segments
from prompt_env.llm.greedy import CausalGeneration
from prompt_env.llm.prefix_cache import PrefixCache, common_prefix, group_by_prefix
from prompt_env.llm.threads import set_threads
from prompt_env.llm.transformers_engine import TOKENS_PER_FORWARD, TransformersEngine

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
]

# Prompts sharing fewer tokens than this are not worth a separate prefix pass.
MIN_SHARED_PREFIX = 8
# Kept key/value caches of prompt prefixes, in tokens (SmolLM2-135M: 45 KiB a token).
PREFIX_CACHE_TOKENS = 8192
# A prefix recurring across calls is cached from this many tokens on.
MIN_CACHED_PREFIX = 16
RECENT_CONTEXTS = 64
ENGINES = ("auto", "fused", "transformers")
"""Scoring engines of :class:`HFCausalLM` (see the module docstring)."""


class HFCausalLM(CausalGeneration, TransformersEngine, LLM):
    """A causal LM from transformers, scored and generated on the device its weights are on
    (``device``, default: where the weights are; see :mod:`prompt_env.llm.devices`)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        identity: str,
        device: str | None = None,
        prefix_reuse: bool = True,
        prefix_cache_tokens: int = PREFIX_CACHE_TOKENS,
        engine: str = "auto",
    ) -> None:
        super().__init__()
        if prefix_cache_tokens < 0:
            raise ValueError(f"prefix_cache_tokens must be >= 0, got {prefix_cache_tokens}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        reason = unsupported_reason(model)
        if engine == "fused" and reason is not None:
            # the fused engine is float32 only: "auto" falls back to the transformers engine
            # (describe() names the one that runs); asking for "fused" by name is an error
            raise LLMSpecError(f"engine='fused' cannot run {name}: {reason}; use engine='transformers' "
                               "(or 'auto', which picks it)")
        self.engine = "fused" if engine == "fused" or (engine == "auto" and reason is None) else "transformers"
        self._fused = FusedLlama(model) if self.engine == "fused" else None
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._identity = identity
        # where the weights are, unless told: every tensor of a call is made there
        self.device = device or str(next(model.parameters()).device)
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
        return self._identity  # the engines agree to float32 rounding: one response cache

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": self.engine}

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

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of every text in one tokenizer call (the same ids; a fast tokenizer
        encodes the batch in Rust instead of paying Python overhead per text)."""
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False).input_ids]

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

    # ------------------------------------------------------------------ scoring
    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        return self._score_many([(prompts, choices)])[0]

    def _score_many(self, requests: list[ScoreRequest]) -> list[np.ndarray]:
        """Several score requests (prompts with their own choices); the fused engine runs
        them all in shared forward passes, the transformers engine one request at a time."""
        # every prompt and every choice of every request in two tokenizer calls
        flat_contexts = self.encode_many([self.prompt_text(p) for prompts, _ in requests for p in prompts])
        flat_choices = self.encode_many([c for _, choices in requests for c in choices])
        next_context, next_choice = iter(flat_contexts), iter(flat_choices)
        contexts = [[next(next_context) for _ in prompts] for prompts, _ in requests]
        choice_ids = [[next(next_choice) for _ in choices] for _, choices in requests]
        for request_contexts, choices in zip(contexts, choice_ids):
            longest = max(len(c) for c in choices)
            for i, ctx in enumerate(request_contexts):
                self._check_length(i, len(ctx), longest)
        import torch

        set_threads()
        with torch.inference_mode(), self._lock:
            if self._fused is not None:
                scored = self._score_fused(contexts, choice_ids)
            elif self.prefix_reuse:
                scored = [self._score_shared_prefix(c, ids) for c, ids in zip(contexts, choice_ids)]
            else:
                scored = [self._score_rows(c, ids, prefix=[]) for c, ids in zip(contexts, choice_ids)]
        return scored

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
                    positions = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1, device=logp.device)
                    picked = logp[positions, torch.tensor(cont, device=logp.device)]
                    out[i, j] = float(picked.double().sum().cpu())
                    self.stats.batches += 1
                    self.stats.prompt_tokens += len(ctx) + len(cont)
        self.stats.calls += len(prompts)
        self.stats.model_calls += len(prompts)
        return out

    def _plan_prefixes(self, contexts: list[list[int]]) -> list[tuple[int, ...] | None]:
        """The prefix each context continues: the longest cached one, else one it shares with
        other contexts of this call or with a recent call's, else None."""
        keys: list[tuple[int, ...] | None] = [None] * len(contexts)
        pending: list[int] = []
        for i, ctx in enumerate(contexts):
            keys[i] = self.prefix_cache.longest_prefix_of(ctx)
            if keys[i] is None:
                pending.append(i)
        for members, prefix_len in group_by_prefix([contexts[i] for i in pending], MIN_SHARED_PREFIX):
            indices = [pending[m] for m in members]
            for i in indices:
                if prefix_len:
                    keys[i] = tuple(contexts[indices[0]][:prefix_len])
                    continue
                shared = self._recent_shared_prefix(contexts[i])
                if shared >= MIN_CACHED_PREFIX and self.prefix_cache.capacity_tokens:
                    keys[i] = tuple(contexts[i][:shared])
        return keys

    def _prefix_groups(self, contexts: list[list[int]]) -> dict[tuple[int, ...] | None, list[int]]:
        """The contexts' indices by the prefix each continues (:meth:`_plan_prefixes`; None:
        no shared prefix)."""
        groups: dict[tuple[int, ...] | None, list[int]] = {}
        for i, key in enumerate(self._plan_prefixes(contexts)):
            groups.setdefault(key, []).append(i)
        return groups

    def _layers_of(self, key: tuple[int, ...]) -> list[tuple[Any, Any]]:
        """The keys and values of prefix ``key``: from the prefix cache, else computed and
        stored there."""
        layers = self.prefix_cache.get(key)
        if layers is None:
            layers = self._prefix_layers(list(key))
            self.prefix_cache.put(key, layers)
        return layers

    def _score_shared_prefix(
        self, contexts: list[list[int]], choice_ids: list[list[int]]
    ) -> np.ndarray:
        """Reference engine with prefix reuse: one pass (or more) per prefix group."""
        result = np.zeros((len(contexts), len(choice_ids)), dtype=np.float64)
        for key, members in self._prefix_groups(contexts).items():
            if key is None:
                result[members] = self._score_rows([contexts[i] for i in members], choice_ids, prefix=[])
                continue
            result[members] = self._score_rows(
                [contexts[i] for i in members], choice_ids, prefix=list(key),
                prefix_layers=self._layers_of(key)
            )
        self._recent.extend(tuple(c) for c in contexts[-RECENT_CONTEXTS:])  # the deque keeps no more
        return result

    def _score_fused(self, contexts: list[list[list[int]]],
                     choice_ids: list[list[list[int]]]) -> list[np.ndarray]:
        """Fused engine: every request's rows packed into shared forward passes."""
        assert self._fused is not None
        flat = [ctx for request in contexts for ctx in request]
        planned = self._plan_prefixes(flat) if self.prefix_reuse else [None] * len(flat)
        prefixes, at = [], 0
        for request in contexts:
            prefixes.append(planned[at: at + len(request)])
            at += len(request)

        def on_pass(tokens: int) -> None:
            self.stats.batches += 1
            self.stats.prompt_tokens += tokens

        local: dict[tuple[int, ...], Any] = {}
        for key in dict.fromkeys(k for k in planned if k is not None):
            layers = self.prefix_cache.get(key)
            if layers is not None:
                local[key] = layers
        new = [k for k in dict.fromkeys(k for k in planned if k is not None) if k not in local]
        if new:  # every new prefix in one packed pass, then cached
            for key, layers in prefill(self._fused, new, TOKENS_PER_FORWARD, on_pass).items():
                local[key] = layers
                self.prefix_cache.put(key, layers)
        segments = build_segments(contexts, choice_ids, prefixes)
        results = score_segments(self._fused, segments, local.__getitem__, choice_ids,
                                 [len(c) for c in contexts], TOKENS_PER_FORWARD, on_pass)
        self._recent.extend(tuple(c) for c in flat[-RECENT_CONTEXTS:])
        return results

    def _recent_shared_prefix(self, ctx: list[int]) -> int:
        """Longest token prefix ``ctx`` shares with a different recent context (< len(ctx))."""
        target = tuple(ctx)
        best = 0
        for other in self._recent:
            if other != target:
                best = max(best, common_prefix(target, other, len(ctx) - 1))
        return best

    # --------------------------------------------------------------- generation
    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        """Greedy generation, batched (:class:`~prompt_env.llm.greedy.CausalGeneration`);
        prompts that share a long prefix (the instruction and exemplars) continue one forward
        pass over it (its key/value cache, as in scoring)."""
        import torch

        contexts = self.encode_many([self.prompt_text(p) for p in prompts])
        for i, ctx in enumerate(contexts):
            self._check_length(i, len(ctx), max_new_tokens)
        set_threads()
        outputs: list[str] = [""] * len(prompts)
        with torch.inference_mode(), self._lock:  # the prefix cache is shared with scoring
            groups = (self._prefix_groups(contexts) if self.prefix_reuse
                      else {None: list(range(len(contexts)))})
            for key, members in groups.items():
                self._generate_rows(contexts, members, list(key or ()),
                                    None if key is None else self._layers_of(key),
                                    max_new_tokens, stop, outputs)
        return outputs

    # --------------------------------------------------------------- embedding
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states (float32), one row per text."""
        import torch

        if not texts:
            return np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        encoded = [self.encode(t)[: min(self.max_length, 512)] or [self.tokenizer.eos_token_id] for t in texts]
        width = max(len(e) for e in encoded)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([e + [pad] * (width - len(e)) for e in encoded], dtype=torch.long,
                           device=self.device)
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded], dtype=torch.long,
                            device=self.device)
        set_threads()
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = out.hidden_states[-1].float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return pooled.cpu().numpy().astype(np.float32)
