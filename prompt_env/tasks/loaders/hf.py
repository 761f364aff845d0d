"""Hugging Face ``datasets``: a directory saved with ``save_to_disk``, or a hub split.

Both are optional (``pip install 'prompt-env[hf]'``) and go through the same
record path as JSONL and CSV files (:mod:`~prompt_env.tasks.loaders.records`),
with the same options. A ``ClassLabel`` label column gives the label names.
This package never downloads anything on its own: :func:`read_hf_disk` reads
local files only, and :func:`read_hf_dataset` downloads only if ``datasets``
and its cache settings do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prompt_env.errors import DataNotFoundError, TaskFormatError
from prompt_env.tasks.loaders.common import LoadedExamples
from prompt_env.tasks.loaders.records import examples_from_records, record_options

INSTALL_HINT = "pip install 'prompt-env[hf]' (or pip install datasets)"


def is_hf_disk_dataset(path: Path) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def _datasets(what: str) -> Any:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataNotFoundError(
            f"{what} needs the 'datasets' package, which is not installed: {INSTALL_HINT}; "
            "or export the split to TSV/CSV/JSONL and pass that path"
        ) from None
    return datasets


def _class_names(rows: Any, label_field: str) -> tuple[str, ...] | None:
    """The names of a ``ClassLabel`` label column, if it is one."""
    feature = (getattr(rows, "features", None) or {}).get(label_field)
    names = getattr(feature, "names", None)
    return tuple(str(n) for n in names) if names else None


def _read_rows(rows: Any, origin: str, where: str, source: str, options: dict[str, Any]) -> LoadedExamples:
    """Examples from one ``datasets.Dataset``; rows are named ``<where> row <i>`` (0-based, as ``rows[i]``)."""
    options = record_options(options, origin)
    label_field = options.get("label_field", "label")
    if options.get("label_names") is None and _class_names(rows, label_field):
        options["label_names"] = _class_names(rows, label_field)
    records = [(f"{where} row {i}", f"{source}:{i}", row) for i, row in enumerate(rows)]
    if not records:
        raise TaskFormatError(f"{where}: the split is empty")
    if options.get("format") == "bigbench":
        raise TaskFormatError(f"{origin}: format 'bigbench' is for JSONL and task.json files; "
                              "name the fields with input_field= and reference_field= instead")
    return examples_from_records(where, records, **options)


def read_hf_disk(path: str | Path, **options: Any) -> dict[str, LoadedExamples]:
    """Every split of a dataset saved with ``save_to_disk`` (local files, never a download).

    A ``DatasetDict`` gives its splits by name; a single ``Dataset`` gives one
    split called ``"all"``. ``options`` are the record options (``input_field``,
    ``label_field``, ``label_names``, ...).
    """
    path = Path(path)
    datasets = _datasets(f"{path} is a Hugging Face datasets directory; reading it")
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as error:
        raise TaskFormatError(f"{path}: not a readable datasets directory ({error})") from None
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"all": loaded}
    return {name: _read_rows(rows, str(path), f"{path} [{name}]", f"{path}/{name}", options)
            for name, rows in splits.items()}


def read_hf_dataset(
    name: str,
    split: str,
    *,
    config: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    **options: Any,
) -> LoadedExamples:
    """One split from the ``datasets`` hub loader (optional dependency).

    Whether it downloads is up to ``datasets`` and its cache settings; this
    package never calls it on its own. Without the library installed, raise
    :class:`DataNotFoundError` explaining how to use local files instead.
    """
    datasets = _datasets(f"loading {name!r} from Hugging Face")
    rows = datasets.load_dataset(name, config, split=split)
    return _read_rows(rows, name, f"{name}[{split}]", f"{name}/{split}",
                      {"input_fields": text_field, "label_field": label_field, **options})
