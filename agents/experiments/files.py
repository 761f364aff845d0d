"""Result files written atomically (JSON, CSV, append-only JSON lines), and secrets kept out of them.

A file is either its old version or its new one, never half-written: each
write goes to a temporary file in the same directory, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
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


def read_json(path: str | os.PathLike[str]) -> Any:
    """The data of a JSON file (a results file, a run's config)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


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
    """Append one row and fsync it, so a finished row survives a crash right after. After a
    torn last line (a process killed mid-write) the row starts a line of its own, so the torn
    one stays the only line lost."""
    torn = False
    with contextlib.suppress(FileNotFoundError), open(path, "rb") as existing:
        if existing.seek(0, os.SEEK_END):
            existing.seek(-1, os.SEEK_END)
            torn = existing.read(1) != b"\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if torn else "") + json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


_SECRET_KEY = re.compile(r"api[_-]?key|secret|password|passwd|authorization|credential|(^|_)token$|^headers$",
                         re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact(value: Any) -> Any:
    """A copy of ``value`` without secrets (API keys, tokens, passwords, URL credentials): what
    run files (``run.json``, ``config.json``) keep of an LLM spec or env kwargs."""
    if isinstance(value, dict):
        return {k: "<redacted>" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                cleaned = redact(parsed)
                return value if cleaned == parsed else json.dumps(cleaned)
        return _URL_CREDENTIALS.sub(r"\1<redacted>@", value)
    return value


class ResumableRows:
    """An append-only JSON-lines results file keyed by what identifies a result, so a rerun
    does only the missing work: ``if not rows.done(key): rows.add(compute())``.

    Args:
        path: the ``results.jsonl`` file (created on the first :meth:`add`).
        key: what identifies a row, e.g. ``lambda r: (r["task"], r["policy"], r["seed"])``.

    Rows another process appends to the same file count once :meth:`refresh` re-reads it;
    a key written twice keeps its last row (:meth:`latest`).
    """

    def __init__(self, path: str | os.PathLike[str], key: Any) -> None:
        self.path = Path(path)
        self.key = key
        self.rows: list[dict[str, Any]] = []
        self._done: set[Any] = set()
        self.refresh()

    def refresh(self) -> list[dict[str, Any]]:
        """Re-read the file (rows of other processes too); returns every row."""
        self.rows = read_jsonl(self.path)
        self._done = {self.key(r) for r in self.rows}
        return self.rows

    def done(self, key: Any) -> bool:
        return key in self._done

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        """Append ``row`` (flushed and fsynced) and mark its key done; returns it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.path, row)
        self.rows.append(row)
        self._done.add(self.key(row))
        return row

    def latest(self) -> list[dict[str, Any]]:
        """One row per key, the last one written, in first-seen key order."""
        return list({self.key(r): r for r in self.rows}.values())
