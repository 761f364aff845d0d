"""Reading the JSON answers of OpenAI-compatible servers.

Each function takes one decoded answer and returns the fields asked for; a
missing or mistyped field raises ``KeyError``, ``IndexError``, ``TypeError`` or
``ValueError``, which the client treats as a malformed answer (retried, or
reported by a probe as an unsupported feature).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def usage(data: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) from the ``usage`` field (0 when absent)."""
    usage = data.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def completion_text(data: dict[str, Any]) -> tuple[str, tuple[int, int]]:
    """Generated text and usage of a ``/v1/completions`` answer."""
    text = data["choices"][0]["text"]
    if not isinstance(text, str):
        raise TypeError("choices[0].text is not a string")
    return text, usage(data)


def chat_text(data: dict[str, Any]) -> tuple[str, tuple[int, int]]:
    """Generated text and usage of a ``/v1/chat/completions`` answer."""
    text = data["choices"][0]["message"]["content"]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise TypeError("choices[0].message.content is not a string")
    return text, usage(data)


def token_ids(data: dict[str, Any]) -> list[int]:
    """Token ids of a ``/tokenize`` answer (plain ids or ``{"id": ...}`` pieces)."""
    tokens = data["tokens"]
    ids = [t["id"] if isinstance(t, dict) else t for t in tokens]
    if not all(isinstance(t, int) for t in ids):
        raise TypeError("tokens are not integers")
    return ids


def first_token_logprobs(data: dict[str, Any]) -> tuple[int | None, float, dict[int, float]]:
    """(token id or None, log-prob, {id: log-prob} top list) of the first generated token.

    Reads the llama.cpp format (``logprobs.content``, with token ids) and the legacy
    completions format (``token_logprobs``; no ids, so no top list).
    """
    logprobs = data["choices"][0]["logprobs"]
    top: dict[int, float] = {}
    if "content" in logprobs:
        entry = logprobs["content"][0]
        token, value = entry.get("id"), float(entry["logprob"])
        for item in entry.get("top_logprobs") or []:
            if isinstance(item.get("id"), int) and np.isfinite(float(item["logprob"])):
                top[item["id"]] = min(0.0, float(item["logprob"]))
    else:
        token, value = None, float(logprobs["token_logprobs"][0])
    if not np.isfinite(value) or value > 1e-6:
        raise ValueError(f"log-prob {value} is not a finite value <= 0")
    return token, min(0.0, value), top


def echo_logprobs(data: dict[str, Any]) -> tuple[list[float | None], int]:
    """Log-probs of the echoed prompt tokens (legacy format), and the prompt token count."""
    logprobs = data["choices"][0]["logprobs"]
    values = logprobs["token_logprobs"]
    prompt_tokens, completion_tokens = usage(data)
    if completion_tokens:
        values = values[: len(values) - completion_tokens]
    out = [None if v is None else float(v) for v in values]
    return out, prompt_tokens
