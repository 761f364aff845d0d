"""The main job end to end (fake LLM for speed; `make demo` runs it on the real model)."""

from __future__ import annotations

import json

from agents.experiments.demo import run_demo

POLICIES = {"random", "manual", "best-fixed-on-dev", "per-query-oracle", "ucb1", "tabular-q", "dqn"}


def test_demo_writes_report_results_and_plot(tmp_path):
    rows = run_demo(tmp_path, steps=40, n_test=8, n_dev=6, llm="fake")
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == rows
    assert {r["policy"] for r in results} == POLICIES
    for row in results:
        assert {"policy", "test_score", "llm_calls"} <= set(row)
        assert 0.0 <= row["test_score"] <= 1.0 and row["llm_calls"] > 0
    oracle = next(r for r in results if r["policy"] == "per-query-oracle")
    assert oracle["upper_bound"] and oracle["test_score"] == max(r["test_score"] for r in results)
    report = (tmp_path / "report.md").read_text()
    assert "| policy |" in report and "upper bound" in report
    png = (tmp_path / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
