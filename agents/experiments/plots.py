"""Plots of results rows: test score vs LLM cost, and learning curves.

Both read results rows (the demo's ``results.json``, the harness's
``results.jsonl``): a row's ``curve`` is the compressed training curve of
``agents.experiments.curves.compress_curve``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.experiments.report import policy_order, summarize

COST_LABELS = {
    "llm_calls": "LLM calls requested (training + evaluation, cached or not)",
    "distinct_pairs": "distinct (prompt, input) pairs scored (what a cached run costs)",
}
def curve_panel(policy: str) -> str:
    """Which panel a policy's training curve goes to: what its training reward means."""
    from agents.experiments.registry import POLICIES

    base = policy.partition("@")[0]
    kind = POLICIES[base].kind if base in POLICIES else ""
    if kind == "search":
        return "Edit-space search (reward: candidate's minibatch score)"
    if base == "maskable-ppo" or base.startswith("edit-"):
        return "Edit env (reward: score change)"
    return "Select env"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def _colors(policies: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(sorted(policies, key=policy_order))}


def plot_score_vs_cost(rows: Sequence[dict[str, Any]], path: Path, cost: str = "llm_calls") -> None:
    """One marker per policy per task: mean test score (± std over seeds) vs mean cost (log x)."""
    from matplotlib import ticker

    plt = _pyplot()
    summary = summarize(rows)
    colors = _colors(sorted({r["policy"] for r in rows}))
    markers = "osD^v<>ph*"
    seeds = {task: max(len(e["seeds"]) for e in entries) for task, entries in summary.items()}

    def label(e: dict[str, Any], task: str) -> str:
        text = f"{e['policy']} (upper bound)" if e["upper_bound"] else e["policy"]
        return text if len(e["seeds"]) == seeds[task] else f"{text} ({len(e['seeds'])} seeds)"

    longest = max((len(label(e, task)) for task, entries in summary.items() for e in entries), default=10)
    legend_width = 0.5 + 0.055 * longest  # inches kept free on the right for the legend
    width = 5.5 * max(1, len(summary)) + legend_width
    fig, axes = plt.subplots(1, max(1, len(summary)), figsize=(width, 4.2), squeeze=False)
    for ax, (task, entries) in zip(axes[0], summary.items(), strict=False):
        for i, e in enumerate(entries):
            x = e[cost] if not math.isnan(e[cost]) else e["llm_calls"]
            ax.errorbar(max(x, 1), e["mean"], yerr=None if math.isnan(e["std"]) else e["std"],
                        fmt=markers[i % len(markers)], color=colors[e["policy"]], markersize=8,
                        capsize=3, label=label(e, task),
                        markerfacecolor="none" if e["upper_bound"] else colors[e["policy"]])
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(COST_LABELS.get(cost, cost) + ", mean over seeds", fontsize=8)
        ax.set_ylabel(f"test {entries[0]['metric']} (n={entries[0]['n_test']})")
        ax.set_title(f"{task} ({seeds[task]} seeds)")
        ax.grid(alpha=0.3, which="both")
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
    _save(fig, path)


def band(ax: Any, x: np.ndarray, runs: np.ndarray, color: Any, policy: str) -> None:
    """The mean of ``runs`` (one row per seed) as a line, their min-max as a band."""
    ax.plot(x, runs.mean(axis=0), color=color, linewidth=2, label=f"{policy} ({len(runs)})")
    if len(runs) > 1:
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=color, alpha=0.15)


def label_axes(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="policy (seeds)", title_fontsize=8)


def plot_learning_curves(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Training reward (moving mean, mean over seeds, min-max band) vs LLM calls, per task;
    policies whose training reward means something else (edit, search) in panels of their own."""
    plt = _pyplot()
    curves: dict[tuple[str, str], dict[str, list[dict[str, list[float]]]]] = {}
    for r in rows:
        if r.get("curve") and r["curve"].get("reward"):
            curves.setdefault((r["task"], curve_panel(r["policy"])), {}).setdefault(r["policy"], []).append(r["curve"])
    panels = sorted(curves)
    colors = _colors(sorted({p for c in curves.values() for p in c}))
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4.2),
                             squeeze=False)
    for ax, key in zip(axes[0], panels, strict=False):
        for policy in sorted(curves[key], key=policy_order):
            runs = curves[key][policy]
            n = min(len(c["reward"]) for c in runs)
            calls = np.mean([c["llm_calls"][:n] for c in runs], axis=0)
            band(ax, calls, np.array([c["reward"][:n] for c in runs]), colors[policy], policy)
        rewards = sorted({str(r.get("train_reward")) for r in rows if r["task"] == key[0]})
        label_axes(ax, f"{key[0]}, {key[1]}", "LLM calls requested by the env (training)",
                   f"training reward ({', '.join(rewards)}), moving mean")
    if not panels:
        axes[0][0].text(0.5, 0.5, "no learned policies in these rows", ha="center", va="center")
    fig.tight_layout()
    _save(fig, path)


def plot_search_curves(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Best minibatch score found so far vs distinct (prompt, input) pairs, per task and edit or
    search policy (mean over seeds, min-max band): the search objective on dev, not test."""
    plt = _pyplot()
    by_task: dict[str, dict[str, list[dict[str, list[float]]]]] = {}
    for r in rows:
        curve = r.get("search_curve")
        if curve and curve.get("best"):
            by_task.setdefault(r["task"], {}).setdefault(r["policy"], []).append(curve)
    tasks = sorted(by_task)
    colors = _colors(sorted({p for c in by_task.values() for p in c}))
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(5.5 * max(1, len(tasks)), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=False):
        for policy in sorted(by_task[task], key=policy_order):
            runs = by_task[task][policy]
            end = min(c["distinct"][-1] for c in runs)
            grid = np.linspace(min(c["distinct"][0] for c in runs), end, 100)
            band(ax, grid, np.array([np.interp(grid, c["distinct"], c["best"]) for c in runs]),
                 colors[policy], policy)
        rewards = sorted({str(r.get("train_reward")) for r in rows if r["task"] == task})
        label_axes(ax, f"{task}: best prompt found so far", "distinct (prompt, input) pairs scored (training)",
                   f"dev minibatch score ({', '.join(rewards)})")
    if not tasks:
        axes[0][0].text(0.5, 0.5, "no edit or search policies in these rows", ha="center", va="center")
    fig.tight_layout()
    _save(fig, path)
