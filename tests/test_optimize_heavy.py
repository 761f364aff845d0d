"""`prompt-env optimize --budget heavy` end to end on the real default model and real SST-2
(a 16-shot split): the product path of the committed optimize rows, in `make test-slow`
(about 2.5 minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_heavy_preset_runs_the_rule_s_method_with_the_tie_break_and_resumes(shared_data_dir,
                                                                             monkeypatch, tmp_path):
    from agents import optimize
    from agents.experiments.optimize_plan import SEARCH_POLICY

    monkeypatch.setenv("PROMPT_ENV_DATA", str(shared_data_dir))
    out = tmp_path / "opt"
    result = optimize("sst2", budget="heavy", seed=13, test_limit=100, out=out, progress=False)
    plan = result.plan
    assert plan.by_rule and plan.method == SEARCH_POLICY and plan.preset == "heavy"
    assert plan.budget == 5 * 11 * 32 and plan.tie_break is not None
    rows = {r["policy"]: r for r in result.rows}
    assert set(rows) == {"manual", "best-fixed-on-dev", SEARCH_POLICY}
    winner = rows[SEARCH_POLICY]
    assert "tie-break" in winner["notes"] and winner["train_calls"] <= plan.budget
    assert result.usage.calls <= plan.total_calls
    assert all(r["n_test"] == 100 for r in rows.values())
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "chosen by the budget rule" in report and "What the model answered" in report
    shipped = json.loads((out / "best_prompt.json").read_text(encoding="utf-8"))
    assert (out / "best_prompt.txt").read_text(encoding="utf-8").strip()

    again = optimize("sst2", budget="heavy", seed=13, test_limit=100, out=out, progress=False)
    assert again.resumed and again.prompt == result.prompt  # every phase read from state.json
    assert [r["test_score"] for r in again.rows] == [r["test_score"] for r in result.rows]
    assert json.loads((out / "best_prompt.json").read_text(encoding="utf-8")) == shipped
