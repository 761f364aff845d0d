"""TSV / CSV classification files with a header row (``sentence<TAB>label`` by default)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from prompt_env.errors import TaskFormatError
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders.common import LoadedExamples, finish_labels, parse_label, read_text


def read_delimited(
    path: str | Path,
    *,
    text_column: str | None = None,
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> LoadedExamples:
    """A classification file with a header row: one text column, one integer label column.

    ``text_column`` defaults to ``sentence``, or ``text`` when the header has
    no ``sentence`` column. ``delimiter`` defaults to a tab for ``.tsv``/``.txt`` files and a comma
    otherwise. Tab-separated files are split on tabs only (quotes are text);
    CSV files follow the ``csv`` module's quoting rules. Labels are integers
    ``0..len(label_names)-1``; a label equal to one of ``label_names`` is
    accepted too.
    """
    path = Path(path)
    text = read_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    kind_name = "tab-separated" if delimiter == "\t" else f"{delimiter!r}-separated"
    rows = _split_rows(path, text, delimiter)
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header[1]):
        raise TaskFormatError(f"{path}: the file is empty; it needs a header row and examples")
    _, columns = header
    columns = [c.strip() for c in columns]
    if text_column is None:
        text_column = "text" if "sentence" not in columns and "text" in columns else "sentence"
    for needed in (text_column, label_column):
        if needed not in columns:
            raise TaskFormatError(
                f"{path} line 1: header has columns {columns}, but no {needed!r} column; "
                "pass text_column=/label_column= to name the right ones"
            )
    text_index, label_index = columns.index(text_column), columns.index(label_column)
    examples = []
    for line_number, cells in rows:
        if len(cells) == 1 and not cells[0].strip():
            continue  # blank line
        where = f"{path} line {line_number}"
        if len(cells) != len(columns):
            raise TaskFormatError(
                f"{where}: expected {len(columns)} {kind_name} columns ({', '.join(columns)}), "
                f"found {len(cells)}"
            )
        label = parse_label(cells[label_index], where, label_column, label_names)
        examples.append(
            Example(
                fields={text_column: cells[text_index]},
                label=label,
                source=f"{path}:{line_number}",
            )
        )
    if not examples:
        raise TaskFormatError(f"{path}: the file has no example rows after the header; it needs at least one")
    return LoadedExamples(
        examples=examples,
        kind="classification",
        family="classification",
        input_fields=(text_column,),
        metric="accuracy",
        label_names=finish_labels(examples, label_names),
    )


def _split_rows(path: Path, text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) per row; line numbers are 1-based physical lines."""
    if delimiter == "\t":
        for number, line in enumerate(text.splitlines(), start=1):
            yield number, line.split("\t")
        return
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, cells if cells else [""]
            start = reader.line_num + 1
    except csv.Error as error:
        raise TaskFormatError(f"{path} line {reader.line_num}: {error}") from None
