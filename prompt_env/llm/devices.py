"""Where and in what precision the in-process backends run: the spec's ``device`` and ``dtype``.

``device``: ``"cpu"`` (the default), ``"cuda"``, ``"cuda:<n>"``, ``"mps"``, ``"xpu"``, or
``"auto"`` (CUDA when torch sees one, else the CPU). ``dtype``: ``"float32"`` (the default,
exact on a CPU), ``"bfloat16"`` or ``"float16"``. The fused scoring engine runs float32 only:
with another dtype ``engine="auto"`` uses the transformers engine (``describe()`` says which
runs), and ``engine="fused"`` is refused with :class:`~prompt_env.errors.LLMSpecError`.
"""

from __future__ import annotations

import re
from typing import Any

from prompt_env.errors import LLMSpecError

DTYPES = ("float32", "bfloat16", "float16")
"""Weight dtypes of the in-process backends; float32 is the default (and the exact one)."""
IN_PROCESS_BACKENDS = ("default", "hf")
"""Backends that run the model in this process, so take ``device`` and ``dtype``."""
_DEVICE = re.compile(r"(cpu|auto|mps|(cuda|xpu)(:\d+)?)")


def check_device_dtype(spec: dict[str, Any]) -> None:
    """Refuse a ``device`` or ``dtype`` the spec's backend cannot take (LLMSpecError naming
    the field); nothing is loaded and torch is not imported."""
    for field in ("device", "dtype"):
        if field in spec and spec["backend"] not in IN_PROCESS_BACKENDS:
            raise LLMSpecError(
                f"LLM spec field {field!r} applies to the in-process backends (\"default\", \"hf\"); "
                f"the {spec['backend']!r} backend does not take it: remove it"
            )
    device = spec.get("device", "cpu")
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise LLMSpecError(
            f"LLM spec field 'device' is {device!r}; use \"cpu\" (the default), \"cuda\", "
            "\"cuda:<n>\", \"mps\", \"xpu\" or \"auto\" (CUDA when available, else the CPU)"
        )
    check_dtype(spec.get("dtype", "float32"))


def check_dtype(dtype: Any) -> str:
    """``dtype`` when it is one of :data:`DTYPES`; LLMSpecError naming the field otherwise."""
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise LLMSpecError(
            f"LLM spec field 'dtype' is {dtype!r}; use one of {', '.join(map(repr, DTYPES))}"
        )
    return dtype


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when torch sees a CUDA device, else ``"cpu"``; any other
    device is returned as it is."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LLMSpecError(
            f"LLM spec field 'device' is {device!r}, but torch {torch.__version__} sees no CUDA device "
            f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU visible'}); use "
            "\"cpu\" or \"auto\" (CUDA when available, else the CPU)")
    return device


def torch_dtype_of(dtype: str) -> Any:
    """The torch dtype named ``dtype`` (one of :data:`DTYPES`); LLMSpecError otherwise."""
    import torch

    return getattr(torch, check_dtype(dtype))


def dtype_identity(dtype: str) -> str:
    """What ``dtype`` adds to a model's identity: nothing for float32 (float32 answers keep
    their cache entries), ``|dtype=<name>`` otherwise, so bf16 and fp16 answers never mix
    with float32 ones. The device adds nothing: one dtype answers alike on every device, up
    to rounding."""
    return "" if check_dtype(dtype) == "float32" else f"|dtype={dtype}"
