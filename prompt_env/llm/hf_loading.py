"""Loading transformers models as task LLMs: any local or hub model, or the embedded default.

:func:`load_hf` reads the model's config first and picks the backend from it:
encoder-decoder models (T5, BART, ...) become
:class:`~prompt_env.llm.seq2seq.HFSeq2SeqLM`, everything else
:class:`~prompt_env.llm.hf.HFCausalLM`. Whatever goes wrong while loading
(missing files, an unknown architecture, a missing optional package, bad
weights) comes out as :class:`~prompt_env.errors.LLMError` naming the model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompt_env.errors import LLMError, LLMSpecError
from prompt_env.llm.default_model import DEFAULT_NAME, default_model_dir
from prompt_env.llm.devices import dtype_identity, resolve_device, torch_dtype_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from prompt_env.llm.base import LLM
    from prompt_env.llm.hf import HFCausalLM

CAUSAL_OPTIONS = frozenset({"prefix_reuse", "prefix_cache_tokens", "engine"})
"""Backend options a causal model accepts (see :class:`~prompt_env.llm.hf.HFCausalLM`)."""
SEQ2SEQ_OPTIONS = frozenset({"max_length"})
"""Backend options an encoder-decoder model accepts (see
:class:`~prompt_env.llm.seq2seq.HFSeq2SeqLM`)."""


def hf_identity(model_id: str) -> str:
    """Identity of a transformers model: its resolved directory and a digest of its files'
    names, sizes and times (so changed weights give a new identity), or the hub id."""
    path = Path(model_id)
    if path.is_dir():
        parts = sorted(
            f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}"
            for f in path.iterdir()
            if f.is_file()
        )
        return f"hf:{path.resolve()}@{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:16]}"
    return f"hf:{model_id}"


def _load_error(model_id: str, error: BaseException) -> LLMError:
    """A typed error saying which model failed to load, why, and what to do."""
    if isinstance(error, ImportError):
        hint = (
            f"a package this model needs is missing ({error}); install it (for example "
            "`pip install sentencepiece` for sentencepiece tokenizers) and try again"
        )
    else:
        hint = (
            "give a local directory with config.json, the tokenizer files and the weights, or a "
            "hub id on a machine that can download it"
        )
    return LLMError(
        f"could not load transformers model {model_id!r}: {type(error).__name__}: {error}. "
        f"To fix it, {hint}."
    )


def load_hf(model_id: str, *, device: str = "cpu", dtype: str = "float32", **options: Any) -> LLM:
    """Load any transformers causal or seq2seq LM from a local path or (where allowed) a hub id.

    Args:
        model_id: a local model directory or a hub id.
        device: torch device to run on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``"auto"``:
            CUDA when available, else the CPU).
        dtype: dtype of the weights: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``.
        options: backend options: ``prefix_reuse``, ``prefix_cache_tokens`` and ``engine``
            (``"auto"``, ``"fused"``, ``"transformers"``) for causal models, ``max_length`` for
            encoder-decoder models.

    Raises:
        LLMSpecError: an unknown dtype or an option the model's backend does not take.
        LLMError: the model, its tokenizer or its weights could not be loaded.
    """
    torch_dtype = torch_dtype_of(dtype)
    device = resolve_device(device)
    try:
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        config = AutoConfig.from_pretrained(model_id)
    except Exception as error:  # any failure here means "this is not a loadable model"
        raise _load_error(model_id, error) from error
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    allowed = SEQ2SEQ_OPTIONS if seq2seq else CAUSAL_OPTIONS
    unknown = sorted(set(options) - allowed)
    if unknown:
        kind = "encoder-decoder" if seq2seq else "causal"
        raise LLMSpecError(
            f"{model_id!r} is a {kind} model; it does not take the option(s) {unknown} "
            f"(it takes {sorted(allowed) or 'none'}, besides device and dtype)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
        model = auto.from_pretrained(model_id, dtype=torch_dtype).to(device)
        if seq2seq:
            from prompt_env.llm.seq2seq import HFSeq2SeqLM

            backend: Callable[..., LLM] = HFSeq2SeqLM
        else:
            from prompt_env.llm.hf import HFCausalLM

            backend = HFCausalLM
    except Exception as error:  # OSError, ValueError, ImportError, size mismatches, ...
        raise _load_error(model_id, error) from error
    return backend(model, tokenizer, name=model_id, identity=hf_identity(model_id) + dtype_identity(dtype),
                   device=device, **options)


def load_default(*, device: str = "cpu", dtype: str = "float32", **options: Any) -> HFCausalLM:
    """The embedded SmolLM2-135M-Instruct (converted once, then loaded in about a second), on
    ``device`` in ``dtype`` (see :func:`load_hf`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from prompt_env.llm.hf import HFCausalLM

    torch_dtype = torch_dtype_of(dtype)
    device = resolve_device(device)
    unknown = sorted(set(options) - CAUSAL_OPTIONS)
    if unknown:
        raise LLMSpecError(f"the default model does not take the option(s) {unknown} (it takes "
                           f"{sorted(CAUSAL_OPTIONS)}, besides device and dtype)")
    directory, identity = default_model_dir()
    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a sub-second load: no "Loading weights" bar on every run
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch_dtype).to(device)
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    return HFCausalLM(model, tokenizer, name=DEFAULT_NAME, identity=identity + dtype_identity(dtype),
                      device=device, **options)
