"""The one progress reporter: live rich bars on a terminal, plain lines in a log.

Training runs, score tables and benchmark grids all report through
:class:`ProgressReporter`. Rich allows one live display at a time, so nested
work (a grid that trains agents that compute score tables) shares one
reporter: callers take an optional ``reporter`` and add their own bars to it.

    with ProgressReporter() as progress:
        bar = progress.add("dqn on SST2", total=300)
        progress.update(bar, completed=10, status="reward 0.41 | LLM calls 10")

When the console is not a terminal (a log file, CI), each bar prints a plain
line at most every ``log_every_s`` seconds and when it completes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@dataclass
class _Bar:
    description: str
    total: int
    completed: int = 0
    status: str = ""
    last_line: float | None = None
    """When the last plain line was printed (None: never)."""
    finished_line: bool = False
    task: TaskID | None = None


class ProgressReporter:
    """Progress bars with a free-text status (reward, LLM calls, cache hits ...).

    Args:
        enabled: False makes every method a no-op (quiet runs, tests).
        console: where to draw (default: a new stderr console).
        log_every_s: on a non-terminal console, the least seconds between two
            plain progress lines of one bar.
    """

    def __init__(
        self, *, enabled: bool = True, console: Console | None = None, log_every_s: float = 30.0
    ) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.log_every_s = log_every_s
        self._bars: list[_Bar] = []
        self._live: Progress | None = None
        self._depth = 0
        self._library_bars: bool | None = None  # transformers' bars before a quiet run began
        if enabled and self.console.is_terminal:
            self._live = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
            )

    def __enter__(self) -> ProgressReporter:
        self._depth += 1
        if self._depth == 1 and not self.enabled:
            self._library_bars = _set_library_bars(False)
        if self._live is not None and self._depth == 1:
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._live is not None and self._depth == 0:
            self._live.stop()
        if self._depth == 0 and self._library_bars is not None:
            _set_library_bars(self._library_bars)
            self._library_bars = None

    def add(self, description: str, total: int, *, completed: int = 0, status: str = "") -> int:
        """A new bar; returns its handle for :meth:`update`."""
        bar = _Bar(description, max(int(total), 0), int(completed), status)
        if self._live is not None:
            bar.task = self._live.add_task(description, total=bar.total, completed=bar.completed,
                                           status=status)
        self._bars.append(bar)
        return len(self._bars) - 1

    def update(
        self,
        handle: int,
        *,
        completed: int | None = None,
        advance: int = 0,
        total: int | None = None,
        description: str | None = None,
        status: str | None = None,
        visible: bool | None = None,
    ) -> None:
        """Move a bar: set ``completed`` or ``advance`` it, change its total, text or status."""
        if not self.enabled:
            return
        bar = self._bars[handle]
        if total is not None:
            bar.total = int(total)
        if completed is not None:
            bar.completed = int(completed)
        bar.completed += int(advance)
        if description is not None:
            bar.description = description
        if status is not None:
            bar.status = status
        if self._live is not None and bar.task is not None:
            options: dict[str, Any] = {"completed": bar.completed, "total": bar.total,
                                       "description": bar.description, "status": bar.status}
            if visible is not None:
                options["visible"] = visible
            self._live.update(bar.task, **options)
        else:
            self._log_line(bar)

    def _log_line(self, bar: _Bar) -> None:
        now = time.monotonic()
        finished = bar.total > 0 and bar.completed >= bar.total
        if bar.finished_line:
            return
        if not finished and bar.last_line is not None and now - bar.last_line < self.log_every_s:
            return
        bar.last_line, bar.finished_line = now, finished
        status = f" ({bar.status})" if bar.status else ""
        self.console.print(f"{bar.description}: {bar.completed}/{bar.total}{status}",
                           highlight=False, soft_wrap=True)

    def print(self, *objects: Any, **options: Any) -> None:
        """Print above the live bars (or plainly), whether or not bars are enabled."""
        self.console.print(*objects, **options)


def _set_library_bars(enabled: bool) -> bool | None:
    """Turn transformers' own tqdm bars (model loading, the default model's one-time GGUF
    conversion) on or off, so that a quiet run prints none; returns their previous state
    (None without transformers)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    before = hf_logging.is_progress_bar_enabled()
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
    return before


def reporter_for(progress: bool | ProgressReporter | None) -> ProgressReporter:
    """The reporter to use: the one given, a new one (True), or a silent one (False/None)."""
    if isinstance(progress, ProgressReporter):
        return progress
    return ProgressReporter(enabled=bool(progress))
