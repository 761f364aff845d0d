"""Turning loaded examples into a :class:`Task`: deterministic splits and the prompt pool.

Also the tasks made from a user's own paths: one file (split into
train/dev/test here) or a directory of ``train``/``dev``/``test`` files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prompt_env.errors import DataNotFoundError, TaskFormatError
from prompt_env.tasks import loaders, pools
from prompt_env.tasks.base import SPLITS, Example, Task
from prompt_env.tasks.loaders import LoadedExamples


def _split_sizes(n: int, *sizes: int) -> list[int]:
    """Clip requested sizes so they fit in ``n`` rows, in order."""
    out, left = [], n
    for size in sizes:
        take = max(0, min(size, left))
        out.append(take)
        left -= take
    return out


def shuffle(examples: Sequence[Example], seed: int) -> list[Example]:
    """The examples in a seeded random order."""
    order = np.random.default_rng(seed).permutation(len(examples))
    return [examples[i] for i in order]


def split_three(examples: Sequence[Example], n_train: int, n_dev: int, n_test: int | None,
                seed: int) -> dict[str, list[Example]]:
    """Shuffle (seeded), then cut train/dev/test of these sizes (``n_test=None``: the rest)."""
    shuffled = shuffle(examples, seed)
    n_test = len(shuffled) if n_test is None else n_test
    a, b, c = _split_sizes(len(shuffled), n_train, n_dev, n_test)
    return {"train": shuffled[:a], "dev": shuffled[a:a + b], "test": shuffled[a + b:a + b + c]}


def truncate_words(text: str, max_words: int) -> str:
    """``text`` cut to its first ``max_words`` words (with `` ...`` when cut)."""
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + " ..."


def build_task(name: str, loaded: LoadedExamples, splits: dict[str, list[Example]], *,
               pool_text: pools.PoolText | None = None, metric: str | None = None,
               description: str = "", max_exemplars: int = 2,
               generation_tokens: int | None = None) -> Task:
    """A :class:`Task` from split examples, with the pool for its kind (``pool_text`` or a generic one)."""
    for split, examples in splits.items():
        if not examples:
            raise TaskFormatError(f"task {name!r}: split {split!r} is empty")
    if pool_text is None:
        if loaded.kind == "classification":
            pool_text = pools.generic_classification(loaded.label_names or ())
        else:
            pool_text = {"qa": pools.QA, "summarization": pools.SUMMARIZATION}.get(
                loaded.family, pools.GENERIC_GENERATION)
    pool = pools.build_pool(pool_text, kind=loaded.kind, input_fields=loaded.input_fields,
                            train=splits["train"], max_exemplars=max_exemplars)
    return Task(
        name=name,
        kind=loaded.kind,
        family=loaded.family,
        splits=splits,
        input_fields=loaded.input_fields,
        metric=metric or loaded.metric,
        prompt_pool=pool,
        label_names=loaded.label_names,
        description=description,
        max_new_tokens=generation_tokens,
    )


# --------------------------------------------------------------------------- a user's paths


def load_file(path: Path, split_seed: int = 0, **options: Any) -> Task:
    """A task from one file: train min(32, n/4), dev min(64, n/4), test the rest."""
    loaded = loaders.read_file(path, **options)
    n = len(loaded.examples)
    if n < 3:
        raise TaskFormatError(f"{path}: {n} examples is too few to split into train/dev/test (need 3)")
    n_train, n_dev = max(1, min(32, n // 4)), max(1, min(64, n // 4))
    splits = split_three(loaded.examples, n_train, n_dev, None, split_seed)
    return build_task(path.stem, loaded, splits, description=f"from {path}")


_SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}


def load_directory(path: Path, **options: Any) -> Task:
    """A task from a directory with train.*, test.* and optionally dev.* (else half of train)."""
    found: dict[str, Path] = {}
    for split, stems in _SPLIT_NAMES.items():
        for stem in stems:
            for suffix in loaders.FILE_SUFFIXES:
                candidate = path / f"{stem}{suffix}"
                if candidate.is_file() and split not in found:
                    found[split] = candidate
    if "train" not in found or "test" not in found:
        raise DataNotFoundError(
            f"{path}: a task directory needs train.* and test.* files (and optionally dev.*) "
            f"with one of the suffixes {', '.join(loaders.FILE_SUFFIXES)}; found {sorted(found)}"
        )
    parts = {split: loaders.read_file(file, **options) for split, file in found.items()}
    splits = {split: part.examples for split, part in parts.items()}
    if "dev" not in splits:
        train = splits["train"]
        cut = len(train) // 2
        splits = {"train": train[:cut], "dev": train[cut:], "test": splits["test"]}
    first = parts["train"]
    if first.kind == "classification":
        widest = max(parts.values(), key=lambda p: len(p.label_names or ()))
        first = dataclasses.replace(first, label_names=widest.label_names)
    return build_task(path.name, first, {s: splits[s] for s in SPLITS}, description=f"from {path}")
