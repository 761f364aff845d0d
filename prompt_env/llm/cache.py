"""A persistent response cache in SQLite (WAL), shared safely between processes.

Entries are keyed on the model's identity, the operation and its options, the
exact prompt and (for scoring) the choices. Each value carries a checksum, so
a damaged row raises :class:`CacheError` instead of returning wrong numbers.
Wrapping any :class:`LLM` is one call: ``CachedLLM(llm, path)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prompt_env.errors import BudgetExhausted, CacheError, LLMError
from prompt_env.llm.base import LLM, PromptInput, ScoreRequest

FORMAT = "prompt-env-response-cache"
SCHEMA_VERSION = "1"


def default_cache_path() -> Path:
    """``$PROMPT_ENV_CACHE`` or ``<user cache dir>/prompt-env/responses.sqlite``."""
    explicit = os.environ.get("PROMPT_ENV_CACHE")
    if explicit:
        return Path(explicit)
    from prompt_env.llm.hf import cache_root

    return cache_root() / "responses.sqlite"


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResponseCache:
    """Key-value store of LLM responses in one SQLite file (WAL mode, multi-process safe)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._connect()  # fail early on a foreign or damaged file

    # The connection is per process: after a fork a child opens its own.
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            try:  # create with user-only permissions before SQLite touches it
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                pass
        # Switching a new file to WAL takes an exclusive lock, and SQLite answers
        # "database is locked" at once (without waiting on busy_timeout) when two
        # processes open a fresh file together; such an open is retried, not fatal.
        deadline = time.monotonic() + self.timeout_s
        delay = 0.01
        while True:
            conn = None
            try:
                conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                self._ensure_schema(conn)
                break
            except sqlite3.OperationalError as error:
                if conn is not None:
                    conn.close()
                if _is_contention(error) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise self._unusable(error) from error
            except sqlite3.DatabaseError as error:
                if conn is not None:
                    conn.close()
                raise self._unusable(error) from error
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _unusable(self, error: Exception) -> CacheError:
        return CacheError(
            f"{self.path} is not a usable prompt-env response cache ({error}); delete it "
            "or point cache_path / PROMPT_ENV_CACHE at another file"
        )

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            with _transaction(conn):
                conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                    "op TEXT NOT NULL, value TEXT NOT NULL, checksum TEXT NOT NULL, created REAL NOT NULL)"
                )
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            tables = {"meta", "entries"}
        if "meta" not in tables or "entries" not in tables:
            raise CacheError(
                f"{self.path} is an SQLite file of something else (tables {sorted(tables)}), not a "
                "prompt-env response cache; choose another cache_path"
            )
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            raise CacheError(f"{self.path} is not a prompt-env response cache (format {meta.get('format')!r})")
        if meta.get("schema") != SCHEMA_VERSION:
            raise CacheError(
                f"{self.path} uses cache schema {meta.get('schema')!r}; this version reads "
                f"{SCHEMA_VERSION!r}. Delete the file to start a new cache."
            )

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        conn = self._connect()
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, value, checksum in conn.execute(
                    f"SELECT key, value, checksum FROM entries WHERE key IN ({marks})", part
                ):
                    if _checksum(value) != checksum:
                        raise CacheError(
                            f"{self.path}: entry {key[:12]} fails its checksum (the file is damaged); "
                            "delete the file to rebuild the cache"
                        )
                    found[key] = value
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{self.path}: cannot read the response cache ({error})") from error
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Store ``(key, model, op, value)`` rows in one transaction (all or nothing)."""
        if not rows:
            return
        conn = self._connect()
        now = time.time()
        try:
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                    [(k, m, op, v, _checksum(v), now) for k, m, op, v in rows],
                )
        except sqlite3.DatabaseError as error:
            raise CacheError(f"{self.path}: cannot write the response cache ({error})") from error

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout_s=state["timeout_s"])  # type: ignore[misc]


def _is_contention(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


@dataclass
class Budget:
    """A cap on what the model may spend. Cache hits are free; model calls and tokens count."""

    max_calls: int | None = None
    max_tokens: int | None = None

    @classmethod
    def parse(cls, budget: Budget | dict[str, int] | None) -> Budget | None:
        if budget is None or isinstance(budget, Budget):
            return budget
        if not isinstance(budget, dict):
            raise ValueError(f"budget must be a dict such as {{'calls': 500}} (and/or 'tokens'), "
                             f"got {type(budget).__name__} {budget!r}")
        unknown = set(budget) - {"calls", "tokens", "max_calls", "max_tokens"}
        if unknown:
            raise ValueError(f"unknown budget keys {sorted(unknown)}; use 'calls' and/or 'tokens'")
        for key, value in budget.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"budget[{key!r}] must be a whole number >= 0, got {value!r}")
        return cls(
            max_calls=budget.get("calls", budget.get("max_calls")),
            max_tokens=budget.get("tokens", budget.get("max_tokens")),
        )


GENERATE_KEY = "generate-2"
"""The first part of a generation's key. "generate-2": a stop string counts from the answer's
first visible character on. Answers stored under :data:`LEGACY_GENERATE_KEY` were cut at the
first stop string wherever it fell; see :func:`legacy_answer_holds`."""

LEGACY_GENERATE_KEY = "generate"


def legacy_answer_holds(text: str, stop: Sequence[str]) -> bool:
    """Whether an answer stored under :data:`LEGACY_GENERATE_KEY` is what the current reading
    gives. The old cut and the new one differ only where a stop string fell in the whitespace
    before the answer's first visible character, and then the old answer is whitespace only. So
    an old answer with visible text (or one generated without stop strings) is kept; a blank
    one is asked again."""
    return not stop or bool(text.strip())


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class CachedLLM(LLM):
    """Wraps an LLM with the persistent cache, call/token accounting and an optional budget.

    Only prompts missing from the cache reach the wrapped model, in one batched
    call. Hits return exactly the stored values.
    """

    def __init__(
        self,
        llm: LLM,
        path: str | os.PathLike[str] | None = None,
        *,
        budget: Budget | dict[str, int] | None = None,
        use_cache: bool = True,
    ) -> None:
        super().__init__()
        self.inner = llm
        self.name = llm.name
        self.budget = Budget.parse(budget)
        self.store = ResponseCache(path or default_cache_path()) if use_cache else None

    def identity(self) -> str:
        return self.inner.identity()

    @property
    def spent(self) -> dict[str, int]:
        return {
            "model_calls": self.stats.model_calls,
            "tokens": self.stats.prompt_tokens + self.stats.generated_tokens,
            "calls": self.stats.calls,
            "cache_hits": self.stats.cache_hits,
        }

    def _check_budget(self, new_calls: int) -> None:
        if self.budget is None or new_calls == 0:
            return
        spent = self.spent
        if self.budget.max_calls is not None and spent["model_calls"] + new_calls > self.budget.max_calls:
            raise BudgetExhausted(
                f"LLM call budget exhausted: {spent['model_calls']} of {self.budget.max_calls} model "
                f"calls spent, {new_calls} more needed ({spent['cache_hits']} answered from cache)",
                spent=spent,
            )
        if self.budget.max_tokens is not None and spent["tokens"] >= self.budget.max_tokens:
            raise BudgetExhausted(
                f"LLM token budget exhausted: {spent['tokens']} of {self.budget.max_tokens} tokens spent",
                spent=spent,
            )

    def _run_inner(self, fn: Any) -> Any:
        before = self.inner.stats.as_dict()
        try:
            return fn()
        finally:
            after = self.inner.stats.as_dict()
            for field in ("model_calls", "batches", "prompt_tokens", "generated_tokens"):
                setattr(self.stats, field, getattr(self.stats, field) + after[field] - before[field])

    def _count(self, prompts: int) -> None:
        """Nothing here: :meth:`_score_many` and :meth:`_generate` count each request where
        they know which prompts the cache answered (``calls``, ``distinct``, ``cache_hits``),
        and :meth:`_run_inner` adds what the wrapped model spent."""

    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        return self._score_many([(prompts, choices)])[0]

    def _score_many(self, checked: list[ScoreRequest]) -> list[np.ndarray]:
        """Score requests (prompts with their own choices): hits from the cache, every miss in
        one call of the wrapped model (``score_many``, so it may share forward passes)."""
        model = self.identity()
        keys = [[_key("score", model, p, choices) for p in prompts] for prompts, choices in checked]
        flat = [k for request_keys in keys for k in request_keys]
        found = self.store.get_many(flat) if self.store is not None and flat else {}
        todo: list[tuple[list[PromptInput], list[str], list[str]]] = []  # prompts, choices, keys
        misses = 0
        for (prompts, choices), request_keys in zip(checked, keys):
            missing = [i for i, k in enumerate(request_keys) if k not in found]
            misses += len(missing)
            # identical prompts in one batch are computed once
            unique = list(dict.fromkeys(request_keys[i] for i in missing))
            first_index = {request_keys[i]: i for i in reversed(missing)}
            if unique:
                todo.append(([prompts[first_index[k]] for k in unique], choices, unique))
        self._check_budget(sum(len(t[2]) for t in todo))
        if todo:
            answers = self._run_inner(lambda: self.inner.score_many([(p, c) for p, c, _ in todo]))
            rows = []
            for (prompts, choices, unique), values in zip(todo, answers, strict=True):
                values = np.asarray(values, dtype=np.float64)
                if values.shape != (len(prompts), len(choices)) or np.any(np.isnan(values)) or np.any(values > 1e-6):
                    # never cache (or return) a malformed answer: log-probs are <= 0
                    raise LLMError(
                        f"{self.name} returned malformed scores (shape {values.shape}, expected "
                        f"{(len(prompts), len(choices))} finite log-probabilities <= 0); nothing was cached"
                    )
                for k, row in zip(unique, values):
                    found[k] = json.dumps([float(v) for v in row])
                    rows.append((k, model, "score", found[k]))
            if self.store is not None:
                self.store.put_many(rows)
        results = []
        for (prompts, choices), request_keys in zip(checked, keys):
            result = np.zeros((len(prompts), len(choices)), dtype=np.float64)
            for i, k in enumerate(request_keys):
                values_row = json.loads(found[k])
                if len(values_row) != len(choices):
                    raise self._damaged(k)
                result[i] = values_row
            results.append(result)
        self.stats.record(calls=len(flat), cache_hits=len(flat) - misses, keys=flat)
        return results

    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        model = self.identity()
        stop_list = stop or []
        keys = [_key(GENERATE_KEY, model, p, max_new_tokens, stop_list) for p in prompts]
        found = self.store.get_many(keys) if self.store is not None else {}
        if self.store is not None:
            found.update(self._legacy_answers(model, prompts, keys, found, max_new_tokens, stop_list))
        missing = [i for i, k in enumerate(keys) if k not in found]
        unique_missing = list(dict.fromkeys(keys[i] for i in missing))
        first_index = {keys[i]: i for i in reversed(missing)}
        self._check_budget(len(unique_missing))
        if unique_missing:
            todo = [prompts[first_index[k]] for k in unique_missing]
            texts = self._run_inner(lambda: self.inner.generate(todo, max_new_tokens, stop_list or None))
            if len(texts) != len(todo) or not all(isinstance(t, str) for t in texts):
                raise LLMError(f"{self.name} returned malformed generations; nothing was cached")
            rows = []
            for k, text in zip(unique_missing, texts):
                found[k] = json.dumps(text)
                rows.append((k, model, "generate", found[k]))
            if self.store is not None:
                self.store.put_many(rows)
        self.stats.record(calls=len(prompts), cache_hits=len(prompts) - len(missing), keys=keys)
        outputs = []
        for k in keys:
            value = json.loads(found[k])
            if not isinstance(value, str):
                raise self._damaged(k)
            outputs.append(value)
        return outputs

    def _legacy_answers(
        self,
        model: str,
        prompts: list[PromptInput],
        keys: list[str],
        found: dict[str, str],
        max_new_tokens: int,
        stop_list: list[str],
    ) -> dict[str, str]:
        """Answers for keys not found, read from entries stored under the legacy key where they
        still hold (:func:`legacy_answer_holds`); each is copied to its current key."""
        # the same prompt gives the same current key and the same legacy key
        old_of = {_key(LEGACY_GENERATE_KEY, model, p, max_new_tokens, stop_list): k
                  for p, k in zip(prompts, keys) if k not in found}
        if self.store is None or not old_of:
            return {}
        kept: dict[str, str] = {}
        for old, value in self.store.get_many(list(old_of)).items():
            text = json.loads(value)
            if isinstance(text, str) and legacy_answer_holds(text, stop_list):
                kept[old_of[old]] = value
        if kept:
            self.store.put_many([(k, model, "generate", v) for k, v in kept.items()])
        return kept

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed(texts)

    def _damaged(self, key: str) -> CacheError:
        where = self.store.path if self.store is not None else "memory"
        return CacheError(f"{where}: entry {key[:12]} has the wrong shape; delete the cache file")

    def describe(self) -> dict[str, Any]:
        info = self.inner.describe()
        info["cache"] = str(self.store.path) if self.store is not None else None
        return info

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Backend-specific helpers (score_naive, tokenizer, count_tokens) pass through.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
