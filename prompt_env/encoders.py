"""Task context -> numbers, for observations.

* :class:`HashingEncoder`: hashed bag of words and word bigrams, signed,
  L2-normalised; fast, deterministic, no model needed (the default).
* :class:`LLMEncoder`: the task LLM's own mean-pooled hidden states,
  L2-normalised.
* :func:`kmeans`: a small seeded k-means that turns encoded inputs into
  discrete context ids for the ``-Tabular`` variants.

Every vector has entries in [-1, 1], so observation spaces have finite bounds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class Encoder(Protocol):
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Shape ``(len(texts), dim)``, float32, entries in [-1, 1]."""
        ...


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class HashingEncoder:
    """Signed feature hashing of words and word bigrams, L2-normalised."""

    def __init__(self, dim: int = 128) -> None:
        if dim < 1:
            raise ValueError(f"encoder dim must be >= 1, got {dim}")
        self.dim = dim
        self._memo: dict[str, np.ndarray] = {}

    def encode_one(self, text: str) -> np.ndarray:
        cached = self._memo.get(text)
        if cached is not None:
            return cached
        vector = np.zeros(self.dim, dtype=np.float64)
        words = _WORD.findall(text.lower())
        for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            index, sign = _bucket(feature, self.dim)
            vector[index] += sign
        norm = np.linalg.norm(vector)
        out = (vector / norm if norm > 0 else vector).astype(np.float32)
        if len(self._memo) < 100_000:
            self._memo[text] = out
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.encode_one(t) for t in texts])


class LLMEncoder:
    """Mean-pooled hidden states of the task LLM, L2-normalised (computed once per text)."""

    def __init__(self, llm: object) -> None:
        self.llm = llm
        probe = llm.embed(["probe"])  # type: ignore[attr-defined]
        self.dim = int(probe.shape[1])
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            vectors = np.asarray(self.llm.embed(missing), dtype=np.float64)  # type: ignore[attr-defined]
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
            for text, vector in zip(missing, vectors):
                self._memo[text] = vector.astype(np.float32)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])


def kmeans(points: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Centroids of a seeded k-means++ clustering (deterministic for a given seed)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if n == 0:
        raise ValueError("k-means needs at least one point")
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centroids = [points[rng.integers(n)]]
    for _ in range(1, k):
        distance = np.min([((points - c) ** 2).sum(1) for c in centroids], axis=0)
        total = distance.sum()
        probabilities = distance / total if total > 0 else np.full(n, 1.0 / n)
        centroids.append(points[rng.choice(n, p=probabilities)])
    centers = np.array(centroids)
    for _ in range(iterations):
        assign = nearest(points, centers)
        updated = np.array(
            [points[assign == c].mean(0) if np.any(assign == c) else centers[c] for c in range(k)]
        )
        if np.allclose(updated, centers):
            break
        centers = updated
    return centers


def nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point."""
    distances = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return distances.argmin(1)


ENCODERS = ("hashing", "llm")
"""The encoder names :func:`make_encoder` takes."""


def make_encoder(name: str, llm_factory: object = None, dim: int = 128) -> Encoder:
    """``"hashing"`` (default) or ``"llm"`` (needs ``llm_factory()`` returning the task LLM)."""
    if name == "hashing":
        return HashingEncoder(dim)
    if name == "llm":
        if llm_factory is None:
            raise ValueError("encoder='llm' needs the task LLM")
        return LLMEncoder(llm_factory())  # type: ignore[operator]
    raise ValueError(f"unknown encoder {name!r}; use one of {', '.join(map(repr, ENCODERS))}")
