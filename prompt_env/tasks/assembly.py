"""Turning loaded examples into a :class:`Task`: deterministic splits and the prompt pool.

Also the tasks made from a user's own paths: one file (split into
train/dev/test here), a directory of ``train``/``dev``/``test`` files, or a
Hugging Face ``datasets`` directory saved with ``save_to_disk``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prompt_env.errors import DataNotFoundError, TaskFormatError, UnnamedLabelsWarning
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

def warn_unnamed_labels(where: str, loaded: LoadedExamples) -> None:
    """Warn (:class:`UnnamedLabelsWarning`) when integer labels had no names: the prompts would
    ask the model for the digits "0", "1", ...; say how to name them."""
    if loaded.kind == "classification" and loaded.label_source == "integers":
        names = loaded.label_names or ()
        warnings.warn(
            f"{where}: the labels are integers 0..{len(names) - 1} without names, so the prompts "
            f"ask the model to answer {', '.join(repr(n) for n in names[:4])}{' ...' if len(names) > 4 else ''}; "
            "name them in label order with label_names=[...] (a load_task option, the env's "
            'task_options={"label_names": [...]}, or --label-names a,b on the command line), '
            "or write the label names in the file instead of numbers",
            UnnamedLabelsWarning, stacklevel=3,
        )


def check_labels(where: str, loaded: LoadedExamples, examples: Sequence[Example]) -> None:
    """A classification task from a user's data needs two labels or more, and every label it
    names (``label_names``, or integers 0..K-1) must label some example: a TaskFormatError
    naming ``where`` and the fix otherwise (before any LLM is asked)."""
    if loaded.kind != "classification":
        return
    names = loaded.label_names or ()
    used = sorted({e.label for e in examples if e.label is not None})
    if len(used) < 2:
        found = ", ".join(repr(names[i]) for i in used) or "none"
        raise TaskFormatError(
            f"{where}: every example has the same label ({found}); a classification task needs "
            "examples of at least 2 labels to choose between. Check that label_field "
            "(--label-field) names the label column, or add examples of the other labels")
    unused = [name for i, name in enumerate(names) if i not in used]
    if unused:
        how = ("the labels are integers, so the names cover 0.." + str(len(names) - 1)
               if loaded.label_source == "integers" else "label_names lists them")
        raise TaskFormatError(
            f"{where}: no example has the label(s) {', '.join(map(repr, unused))} ({how}; the "
            f"examples use {', '.join(repr(names[i]) for i in used)}). List only the labels the data "
            "has in label_names (--label-names), number integer labels 0..K-1 without gaps, or add "
            "examples of the missing labels")


def load_file(path: Path, split_seed: int = 0, **options: Any) -> Task:
    """A task from one file: train min(32, n/4), dev min(64, n/4), test the rest."""
    loaded = loaders.read_file(path, **options)
    return _split_one(path, loaded, split_seed)


def _split_one(path: Path, loaded: LoadedExamples, split_seed: int) -> Task:
    n = len(loaded.examples)
    if n < 3:
        raise TaskFormatError(f"{path}: {n} examples is too few to split into train/dev/test (need 3)")
    check_labels(str(path), loaded, loaded.examples)
    warn_unnamed_labels(str(path), loaded)
    n_train, n_dev = max(1, min(32, n // 4)), max(1, min(64, n // 4))
    splits = split_three(loaded.examples, n_train, n_dev, None, split_seed)
    return build_task(path.stem, loaded, splits, description=f"from {path}")


_SPLIT_NAMES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}


def load_directory(path: Path, split_seed: int = 0, **options: Any) -> Task:
    """A task from a directory: train.*, test.* and optionally dev.* files (else half of
    train is dev), or a Hugging Face ``datasets`` directory saved with ``save_to_disk``."""
    if loaders.is_hf_disk_dataset(path):
        return _load_hf_directory(path, split_seed, **options)
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
            f"with one of the suffixes {', '.join(loaders.FILE_SUFFIXES)}, or a Hugging Face "
            f"datasets directory (save_to_disk); found {sorted(found)}"
        )
    parts = {split: loaders.read_file(file, **options) for split, file in found.items()}
    return assemble_parts(path, parts, options.get("label_order", "sorted"))


def _load_hf_directory(path: Path, split_seed: int, **options: Any) -> Task:
    """A saved ``datasets`` directory: its train/validation/test splits, or one split cut in three."""
    read = loaders.read_hf_disk(path, **options)
    parts = {split: read[name] for split, names in _SPLIT_NAMES.items()
             for name in names if name in read}
    if "train" in parts and "test" in parts:
        return assemble_parts(path, parts, options.get("label_order", "sorted"))
    if len(read) == 1:
        return _split_one(path, next(iter(read.values())), split_seed)
    raise DataNotFoundError(
        f"{path}: the datasets directory has splits {sorted(read)}; it needs 'train' and 'test' "
        "(and optionally 'validation'), or a single split to cut into train/dev/test"
    )


def assemble_parts(path: Path, parts: dict[str, LoadedExamples], label_order: str = "sorted") -> Task:
    """A task from per-split examples (dev: half of train when absent), with one set of label
    names for every split."""
    parts = unify_labels(path, parts, label_order)
    splits = {split: part.examples for split, part in parts.items()}
    if "dev" not in splits:
        train = splits["train"]
        cut = len(train) // 2
        splits = {"train": train[:cut], "dev": train[cut:], "test": splits["test"]}
    check_labels(str(path), parts["train"], [e for part in parts.values() for e in part.examples])
    warn_unnamed_labels(str(path), parts["train"])
    return build_task(path.name, parts["train"], {s: splits[s] for s in SPLITS},
                      description=f"from {path}")


def unify_labels(path: Path, parts: dict[str, LoadedExamples],
                 label_order: str = "sorted") -> dict[str, LoadedExamples]:
    """The parts with one label-name list: given names as they are, integer labels the widest
    range, string labels the union of every split's names (sorted, or first-seen in split order)."""
    first = parts["train"]
    if first.kind != "classification":
        return parts
    sources = {part.label_source for part in parts.values()}
    if len(sources) > 1:
        listed = ", ".join(f"{split}: {part.label_source}" for split, part in parts.items())
        raise TaskFormatError(
            f"{path}: the splits label examples differently ({listed}); write the labels the same "
            "way in every split (all names or all integers), or pass label_names=[...]"
        )
    if sources == {"strings"}:
        seen = list(dict.fromkeys(n for split in SPLITS if split in parts
                                  for n in parts[split].label_names or ()))
        names = tuple(sorted(seen) if label_order == "sorted" else seen)
    else:
        names = max((p.label_names or () for p in parts.values()), key=len)
    out = {}
    for split, part in parts.items():
        old = part.label_names or ()
        index = {i: names.index(n) for i, n in enumerate(old)}
        examples = [dataclasses.replace(e, label=index[e.label]) if e.label is not None else e
                    for e in part.examples]
        out[split] = dataclasses.replace(part, examples=examples, label_names=names)
    return out
