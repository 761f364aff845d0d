"""Result files written atomically: JSON, CSV and append-only JSON lines.

A file is either its old version or its new one, never half-written: each
write goes to a temporary file in the same directory, then ``os.replace``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _replace_atomically(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_json(data: Any, path: str | os.PathLike[str]) -> None:
    """Write ``data`` as indented JSON."""
    _replace_atomically(Path(path), lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def save_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text file (a report, a table)."""
    _replace_atomically(Path(path), lambda tmp: tmp.write_text(text))


def save_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str],
             fieldnames: Sequence[str]) -> None:
    """Write rows as CSV with a header line."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(fieldnames), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    _replace_atomically(Path(path), write)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a torn last line (a process killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_jsonl(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one row and fsync it, so a finished row survives a crash right after."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
