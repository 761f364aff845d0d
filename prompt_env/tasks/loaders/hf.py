"""A classification split from Hugging Face ``datasets`` (optional; never downloads on its own)."""

from __future__ import annotations

from prompt_env.errors import DataNotFoundError, TaskFormatError
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders.common import LoadedExamples, parse_label, string_field


def read_hf_dataset(
    name: str,
    split: str,
    *,
    config: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
) -> LoadedExamples:
    """A classification split from the ``datasets`` library (optional dependency).

    Whether it downloads is up to ``datasets`` and its cache settings; this
    package never calls it on its own. Without the library installed, raise
    :class:`DataNotFoundError` explaining how to use local files instead.
    """
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataNotFoundError(
            f"loading {name!r} from Hugging Face needs the 'datasets' package, which is not "
            "installed; export the split to TSV/CSV/JSONL and pass its path to load_task(), "
            "or set PROMPT_ENV_DATA to a data directory"
        ) from None
    rows = datasets.load_dataset(name, config, split=split)
    examples = []
    names = None
    feature = getattr(rows, "features", {}).get(label_field)
    if feature is not None and hasattr(feature, "names"):
        names = tuple(feature.names)
    for i, row in enumerate(rows):
        where = f"{name}[{split}] row {i}"
        examples.append(
            Example(
                fields={text_field: string_field(row, text_field, where)},
                label=parse_label(str(row[label_field]), where, label_field, names),
                source=f"{name}/{split}:{i}",
            )
        )
    if not examples:
        raise TaskFormatError(f"{name}[{split}]: the split is empty")
    return LoadedExamples(
        examples, "classification", "classification", (text_field,), "accuracy",
        names or tuple(str(i) for i in range(max(e.label or 0 for e in examples) + 1)),
    )
