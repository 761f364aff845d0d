"""A deterministic stand-in LLM for unit tests of the machinery around the model.

It is never the evidence that a feature works with a real model: tests of
real behaviour use the embedded default (SmolLM2). Its scores are a hash of
(prompt, choice) plus a bonus when the choice's word already appears in the
prompt, so prompts that mention the right label do better; that gives
environments and agents a learnable, reproducible signal in fast tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from prompt_env.llm.base import LLM, PromptInput, cut_at_stop


def _text(prompt: PromptInput) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


class FakeLLM(LLM):
    """Deterministic hash-based scores and echo-style generations (test double)."""

    name = "fake"

    def __init__(self, seed: int = 0, dim: int = 16) -> None:
        super().__init__()
        self.seed = seed
        self.dim = dim

    def identity(self) -> str:
        return f"fake:seed={self.seed}"

    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        out = np.empty((len(prompts), len(choices)), dtype=np.float64)
        for i, p in enumerate(prompts):
            text = _text(p)
            tail = text[-200:].lower()
            for j, c in enumerate(choices):
                bonus = 1.5 if c.strip().lower() and c.strip().lower() in tail else 0.0
                out[i, j] = min(0.0, -3.0 * _unit(str(self.seed), text, c) - 0.5 * len(c.split()) + bonus)
        self.stats.batches += 1
        self.stats.prompt_tokens += sum(len(_text(p).split()) for p in prompts)
        return out

    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        outs = []
        for p in prompts:
            words = _text(p).split()
            k = int(_unit(str(self.seed), _text(p)) * 5) + 1
            outs.append(cut_at_stop(" " + " ".join(words[-k:][:max_new_tokens]), stop))
        self.stats.batches += 1
        self.stats.generated_tokens += sum(len(o.split()) for o in outs)
        return outs

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = [_unit(str(self.seed), t, str(d)) - 0.5 for d in range(self.dim)]
        return out
