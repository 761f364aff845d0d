"""TensorBoard event files, asked for with ``tensorboard_log=`` / ``--tensorboard DIR``.

stable-baselines3's convention: each run writes into a new ``DIR/<name>_<N>``
folder (N = 1 + the highest N already there), so runs sit side by side under
one ``tensorboard --logdir DIR``. Written with ``torch.utils.tensorboard``
(the ``tensorboard`` package); :func:`read_scalars` reads a run back.

Tags: ``train/reward`` (per env step), ``train/reward_mean_50``,
``llm/calls``, ``llm/distinct``, ``llm/cache_hits`` (the env's usage meter,
by env step), and for harness rows ``train/reward_smoothed`` (by LLM calls)
and ``test/score`` (at the row's total LLM calls).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STEP_TAGS = {"llm_calls": "llm/calls", "distinct": "llm/distinct", "cache_hits": "llm/cache_hits"}


def next_run_dir(log_dir: str | os.PathLike[str], name: str) -> Path:
    """``log_dir/<name>_<N>`` with N one more than the highest run of that name there."""
    root = Path(log_dir)
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)$")
    taken = [int(m.group(1)) for p in root.glob(f"{name}_*") if (m := pattern.match(p.name))]
    return root / f"{name}_{max(taken, default=0) + 1}"


class TensorBoardLog:
    """One run's event file: scalars by step, flushed on :meth:`close`."""

    def __init__(self, log_dir: str | os.PathLike[str], name: str) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ImportError(
                f"TensorBoard logging needs the 'tensorboard' package ({error}); pip install tensorboard"
            ) from None
        safe = re.sub(r"[^A-Za-z0-9_.@-]+", "-", name)
        self.path = next_run_dir(log_dir, safe)
        self.path.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.path))
        self._rewards: list[float] = []

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, float(value), int(step))

    def log_step(self, point: dict[str, float]) -> None:
        """One training step of a curve (``agents.experiments.curves.CurveRecorder``)."""
        step = int(point["step"])
        self._rewards.append(float(point["reward"]))
        self.scalar("train/reward", point["reward"], step)
        window = self._rewards[-50:]
        self.scalar("train/reward_mean_50", sum(window) / len(window), step)
        for key, tag in STEP_TAGS.items():
            if key in point:
                self.scalar(tag, point[key], step)

    def log_row(self, row: dict[str, Any]) -> None:
        """A harness results row: its smoothed training curve and its test score."""
        curve = row.get("curve") or {}
        for calls, reward in zip(curve.get("llm_calls", []), curve.get("reward", []), strict=False):
            self.scalar("train/reward_smoothed", reward, int(calls))
        self.scalar("test/score", row["test_score"], int(row.get("llm_calls", 0)))

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()


def log_rows(log_dir: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> list[Path]:
    """One run folder per row (``<task>_<policy>_seed<S>_<N>``); returns the folders."""
    paths = []
    for row in rows:
        log = TensorBoardLog(log_dir, f"{row['task']}_{row['policy']}_seed{row['seed']}")
        log.log_row(row)
        log.close()
        paths.append(log.path)
    return paths


def read_scalars(run_dir: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of one run folder: tag -> [(step, value), ...] (reads the event files back)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}
