"""Results tables: one model, rendered for the terminal (rich) and as Markdown.

A :class:`ResultTable` is headers, alignments and rows of cell text. The demo,
``prompt-env eval`` and the benchmark harness build theirs from results rows
with :func:`policy_table` (one row per policy) or :func:`summary_tables` (mean
± std over seeds, one table per task), then print ``to_rich()`` or write
``to_markdown()``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from agents.experiments.registry import POLICIES

PERCENT_METRICS = {"accuracy", "exact_match", "em"}
ORACLE = "per-query-oracle"
MANUAL_POLICIES = ("manual", "compose-manual")
"""Policies whose rows score the task's manual prompt: ``Δ manual`` reads the first one present."""


@dataclasses.dataclass
class ResultTable:
    headers: list[str]
    align: list[str]
    """"left" or "right" per column."""
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    title: str = ""

    def to_markdown(self) -> str:
        rule = ["---" if a == "left" else "---:" for a in self.align]
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "|".join(rule) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def to_rich(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title or None)
        for i, (header, align) in enumerate(zip(self.headers, self.align, strict=True)):
            # a column is as wide as its longest cell or header word, no wider: the headers
            # wrap first, so a narrow terminal keeps the names of the first column whole (a
            # name too long even then folds onto a second line rather than ending in "…")
            widest = max([len(row[i]) for row in self.rows if i < len(row)]
                         + [len(word) for word in header.split()] + [1])
            table.add_column(header, justify="left" if align == "left" else "right",
                             max_width=None if i == 0 else widest, overflow="fold")
        for row in self.rows:  # cells are text: a note's "[benchmarks/...]" is not rich markup
            table.add_row(*(Text(cell) for cell in row))
        return table


Column = tuple[str, str, Callable[[dict[str, Any]], str]]
"""(header, alignment, cell text of a row)."""


def policy_label(row: dict[str, Any]) -> str:
    return row["policy"] + (" (upper bound)" if row.get("upper_bound") else "")


POLICY_COLUMNS: list[Column] = [
    ("policy", "left", policy_label),
    ("test score", "right", lambda r: f"{r['test_score']:.3f}"),
    ("LLM calls", "right", lambda r: str(r["llm_calls"])),
    ("distinct pairs", "right", lambda r: str(r.get("distinct_pairs", "–"))),
    ("cache hit rate", "right", lambda r: f"{r['cache_hit_rate']:.0%}"),
    ("proposer calls", "right", lambda r: str(r.get("proposer_calls", 0))),
    ("wall s (measured)", "right",
     lambda r: "–" if r.get("wall_s") is None else f"{r['wall_s']:.1f}"),
]
NOTES_COLUMN: Column = ("notes", "left", lambda r: str(r.get("notes", "")))


def policy_table(rows: Sequence[dict[str, Any]], title: str = "", *,
                 notes: bool = False) -> ResultTable:
    """One line per policy (a single seed): score, LLM calls, distinct pairs, hits, wall time."""
    columns = POLICY_COLUMNS + ([NOTES_COLUMN] if notes else [])
    table = ResultTable([c[0] for c in columns], [c[1] for c in columns], title=title)
    table.rows = [[cell(r) for _, _, cell in columns] for r in rows]
    return table


def policy_order(policy: str) -> tuple[int, str]:
    """Table order: the registry's order (a calibrated variant after its policy), the oracle
    last, unknown names after it."""
    base, _, variant = policy.partition("@")
    names = [n for n in POLICIES if n != ORACLE]
    if base in names:
        return names.index(base), variant
    return (len(names) if base == ORACLE else len(names) + 1), variant


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per task, per policy: mean/std of the test score over seeds, mean LLM cost and wall time."""
    by_task: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], {}).setdefault(r["policy"], []).append(r)
    summary: dict[str, list[dict[str, Any]]] = {}
    for task, policies in by_task.items():
        manual_rows = next((policies[name] for name in MANUAL_POLICIES if name in policies), [])
        manual = {r["seed"]: r["test_score"] for r in manual_rows}
        entries = []
        for policy in sorted(policies, key=policy_order):
            group = policies[policy]
            scores = np.array([r["test_score"] for r in group], dtype=np.float64)
            gains = [r["test_score"] - manual[r["seed"]] for r in group if r["seed"] in manual]
            distinct = [r["distinct_pairs"] for r in group if "distinct_pairs" in r]
            entries.append({
                "policy": policy,
                "n": len(group),
                "mean": float(scores.mean()),
                "std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
                "gain": float(np.mean(gains)) if gains else math.nan,
                "llm_calls": float(np.mean([r["llm_calls"] for r in group])),
                "distinct_pairs": float(np.mean(distinct)) if distinct else math.nan,
                "proposer_calls": float(np.mean([r.get("proposer_calls", 0) for r in group])),
                "proposer_tokens": float(np.mean([r.get("proposer_tokens", 0) for r in group])),
                "wall_s": float(np.mean([r["wall_s"] for r in group])),
                "metric": group[0]["metric"],
                "n_test": group[0].get("n_test", group[0].get("test_limit")),
                "seeds": sorted(r["seed"] for r in group),
                "upper_bound": policy.partition("@")[0] == ORACLE,
            })
        summary[task] = entries
    return summary


def format_score(x: float, percent: bool) -> str:
    if math.isnan(x):
        return "–"
    return f"{100 * x:.1f}" if percent else f"{x:.3f}"


def summary_tables(rows: Sequence[dict[str, Any]]) -> dict[str, ResultTable]:
    """Per task: mean ± std over seeds, Δ manual, seeds, mean LLM calls, distinct pairs, wall s
    (and mean proposer calls, when a policy of the task wrote instructions)."""
    tables = {}
    for task, entries in summarize(rows).items():
        metric = entries[0]["metric"]
        percent = metric in PERCENT_METRICS
        unit = " (%)" if percent else ""
        writes = any(e["proposer_calls"] > 0 for e in entries)
        table = ResultTable(
            ["policy", f"test {metric}{unit}", "Δ manual", "seeds", "LLM calls (mean)",
             "distinct pairs (mean)", "wall s (mean, measured)"]
            + (["proposer calls (mean)"] if writes else []),
            ["left"] + ["right"] * (7 if writes else 6),
            title=f"{task}: {metric}{unit} on a fixed test subset of {entries[0]['n_test']} examples",
        )
        for e in entries:
            spread = "" if math.isnan(e["std"]) else f" ± {format_score(e['std'], percent)}"
            gain = format_score(e["gain"], percent)
            gain = gain if gain == "–" or gain.startswith("-") else f"+{gain}"
            distinct = "–" if math.isnan(e["distinct_pairs"]) else f"{e['distinct_pairs']:.0f}"
            table.rows.append([
                f"{e['policy']} (upper bound)" if e["upper_bound"] else e["policy"],
                f"{format_score(e['mean'], percent)}{spread}", gain, str(e["n"]),
                f"{e['llm_calls']:.0f}", distinct, f"{e['wall_s']:.1f}",
                *([f"{e['proposer_calls']:.0f}"] if writes else []),
            ])
        tables[task] = table
    return tables
