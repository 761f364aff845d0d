"""`prompt-env optimize` and `agents.optimize` end to end on the real default model.

A string-label JSONL of 24 real SST-2 sentences (6 train / 6 dev / 12 test),
a budget of 33 calls (11 pool prompts x 3 dev inputs) and 6 held-out inputs
keep a cold run near 20 s on one core; the rerun is answered from the cache.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from agents.cli import main
from agents.experiments.optimize_plan import choose_method, single_prompt_methods

NAMES = ("negative", "positive")


@pytest.fixture()
def reviews(tmp_path: Path, shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMPT_ENV_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("COLUMNS", "160")
    with open(shared_data_dir / "classification" / "sst-2" / "test.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[:24]
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps({"text": r["sentence"], "label": NAMES[int(r["label"])]}) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def test_optimize_dry_run_then_run_then_rerun_from_the_cache(reviews, tmp_path, capsys):
    args = ["optimize", "--data", str(reviews), "--budget", "33", "--test-limit", "6", "--no-progress"]
    assert main([*args, "--dry-run", "--out", str(tmp_path / "none")]) == 0
    printed = capsys.readouterr().out
    assert "projected LLM calls" in printed and ": 45" in printed and "search: 33" in printed
    assert "no LLM was called" in printed and not (tmp_path / "none").exists()
    # the rows the rule rests on, named as text (not eaten as rich markup)
    assert "[benchmarks/results/edit_search]" in printed and "ii-antonyms at 6.2 x pool cost" in printed

    out = tmp_path / "opt"
    assert main([*args, "--out", str(out)]) == 0
    text = (out / "best_prompt.txt").read_text()
    assert "{text}" in text
    described = json.loads((out / "best_prompt.json").read_text())
    assert described["format"] in ("text", "chat") and described["placeholders"] == ["text"]
    assert set(described["verbalizer"]) == set(NAMES) and described["answer_choices"]
    assert described["prompt"] == (text.rstrip("\n") if described["format"] == "text"
                                   else json.loads(text))
    rows = json.loads((out / "results.json").read_text())
    assert [r["policy"] for r in rows] == ["manual", "best-fixed-on-dev"]
    assert rows[1]["train_calls"] == 33 and all(r["eval_calls"] == 6 for r in rows)
    report = (out / "report.md").read_text()
    assert "| best-fixed-on-dev |" in report and "score_vs_calls.png" in report
    assert (out / "score_vs_calls.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config["budget"] == 33 and config["usage"]["calls"] == 45
    assert config["command"].startswith("prompt-env optimize --data ")

    again = tmp_path / "again"
    assert main([*args, "--out", str(again)]) == 0
    assert "cache hits 45, model calls 0" in capsys.readouterr().out
    assert (again / "best_prompt.txt").read_text() == text
    assert json.loads((again / "config.json").read_text())["usage"]["model_calls"] == 0


def test_optimize_from_python_in_three_lines(reviews, tmp_path):
    from agents import optimize

    result = optimize(reviews, budget=22, test_limit=4, out=tmp_path / "py", progress=False)
    assert "{text}" in result.prompt_text and result.plan.dev_inputs == 2
    assert (tmp_path / "py" / "best_prompt.txt").read_text().rstrip("\n") == result.prompt_text.rstrip("\n")


def test_optimize_refuses_what_it_cannot_do(reviews, tmp_path, capsys):
    assert main(["optimize", "--data", str(reviews), "--budget", "5", "--dry-run"]) == 2
    assert "budget 5 is below the 11 LLM calls" in capsys.readouterr().err
    assert main(["optimize", "--data", str(tmp_path / "nope.jsonl"), "--dry-run"]) == 2
    assert "neither a catalog task" in capsys.readouterr().err
    assert main(["optimize", "--data", str(reviews), "--metric", "nope_mod_xyz:f", "--dry-run"]) == 2
    assert "cannot import module 'nope_mod_xyz'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="chooses a prompt per input"):
        choose_method(500, 11, 32, "dqn")
    with pytest.raises(ValueError, match="unknown policy 'ucb'"):
        choose_method(500, 11, 32, "ucb")
    assert {"best-fixed-on-dev", "ucb1"} <= set(single_prompt_methods())


def test_presets_and_the_budget_rule_in_the_dry_run(reviews, tmp_path, capsys):
    """Presets are multiples of the pool cost (11 prompts x 6 dev inputs = 66 calls here)."""
    from agents.experiments.optimize_plan import BUDGET_RULE, plan_run

    assert plan_run(str(reviews), budget="light").budget == 66
    assert plan_run(str(reviews), budget="light").method == "best-fixed-on-dev"
    heavy = plan_run(str(reviews), budget="heavy")
    assert heavy.budget == 330 and heavy.method == "edit-tabular-q" and heavy.by_rule
    assert heavy.search_space["n_slots"] == 4 and heavy.tie_break is not None
    assert heavy.train_reward == "accuracy_margin"
    assert plan_run(str(reviews), budget=int(BUDGET_RULE * 66) - 1).method == "best-fixed-on-dev"
    assert main(["optimize", "--data", str(reviews), "--budget", "heavy", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "rule: edit-tabular-q" in printed and "presets for this task: light 66 calls" in printed
    # 6 dev inputs: medium's best-fixed-on-dev can score no more of dev than light's
    assert "medium 198 calls (best-fixed-on-dev, 11 x 6 dev inputs; the same run as light)" in printed
    assert "heavy 330 calls (edit-tabular-q)" in printed
    assert "tie-break:" in printed and "search space:" in printed
    assert main(["optimize", "--data", str(reviews), "--budget", "huge", "--dry-run"]) == 2
    assert "light, medium, heavy" in capsys.readouterr().err


def test_old_option_names_still_work_with_a_note(reviews, capsys):
    assert main(["optimize", "--data", str(reviews), "--budget", "66", "--method", "ucb1",
                 "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "--method is deprecated; use --policy" in captured.err
    assert "method ucb1" in captured.out


def test_a_killed_run_restarts_and_ends_with_the_same_result(reviews, tmp_path):
    """kill -9 in the middle of the search; the same command finishes it from the saved state
    and the response cache, with the result of a run that was never killed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "agents.cli", "optimize", "--data", str(reviews), "--budget",
               "150", "--policy", "hill-climb", "--test-limit", "4", "--no-progress", "--out", str(out)]
    env = {**os.environ, "PROMPT_ENV_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = out / "state.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if state.exists() and "pool" in json.loads(state.read_text())["phases"]:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # well into the search, which scores about 90 new pairs
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    phases = json.loads(state.read_text())["phases"]
    assert "pool" in phases and "search" not in phases and not (out / "results.json").exists()

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    said = resumed.stdout + resumed.stderr
    assert "resuming from" in said and "pool already done" in said
    fresh = tmp_path / "fresh"  # never killed (its answers come from the same cache)
    assert main(["optimize", "--data", str(reviews), "--budget", "150", "--policy", "hill-climb",
                 "--test-limit", "4", "--no-progress", "--out", str(fresh)]) == 0
    assert (out / "best_prompt.txt").read_text() == (fresh / "best_prompt.txt").read_text()
    killed_rows, fresh_rows = (json.loads((d / "results.json").read_text()) for d in (out, fresh))
    keys = ("policy", "test_score", "llm_calls", "distinct_pairs", "train_calls", "eval_calls")
    assert [{k: r[k] for k in keys} for r in killed_rows] == [{k: r[k] for k in keys} for r in fresh_rows]
    # the report's verdict names the best pool prompt as well as the manual one
    best, winner = fresh_rows[1], fresh_rows[-1]
    assert best["policy"] == "best-fixed-on-dev"
    gain = winner["test_score"] - best["test_score"]
    assert f"the best pool prompt on dev ({best['test_score']:.3f}, {gain:+.3f})" in (fresh / "report.md").read_text()


def test_mlflow_tracking_to_a_local_file_store(reviews, tmp_path):
    from agents import optimize
    from agents.experiments.tracking import read_run

    store = tmp_path / "mlruns"
    result = optimize(reviews, budget=33, test_limit=4, out=tmp_path / "tracked", progress=False,
                      tracking_uri=str(store))
    run = read_run(str(store), result.tracking_run_id)
    assert run["status"] == "FINISHED" and run["params"]["config.budget"] == "33"
    assert run["params"]["plan.method"] == "best-fixed-on-dev"
    assert run["metrics"]["test_score/manual"] == result.rows[0]["test_score"]
    curve = run["history"]["best_dev_score"]
    assert len(curve) == 11 and [step for step, _ in curve] == sorted(step for step, _ in curve)
    assert {"best_prompt.txt", "best_prompt.json", "report.md", "results_table.json"} <= set(
        run["artifacts"])


def test_the_report_shows_what_the_model_answered(reviews, tmp_path):
    from agents import optimize

    result = optimize(reviews, budget=33, test_limit=4, out=tmp_path / "answers", progress=False)
    report = (tmp_path / "answers" / "report.md").read_text()
    assert "## What the model answered (the first 4 held-out inputs)" in report
    from prompt_env.tasks import load_task

    first = load_task(str(reviews)).split("test")[0].text  # the first held-out input
    assert first[:40] in report.replace("\\|", "|")
    assert "(p=0." in report and result.rows[0]["policy"] == "manual"


def test_the_budget_rule_matches_its_committed_rows(shared_data_dir, monkeypatch) -> None:
    """Each RULE_EVIDENCE (and GENERATION_EVIDENCE) line is the mean of the committed rows it
    names at the pool cost of its task, and the threshold is the smallest budget at which the
    RULE_EVIDENCE rows show tabular Q ahead."""
    import statistics

    from agents.experiments.files import read_jsonl
    from agents.experiments.optimize_plan import (
        BUDGET_RULE,
        GENERATION_EVIDENCE,
        RULE_EVIDENCE,
        SEARCH_POLICY,
        plan_run,
        pool_cost,
        search_dev_inputs,
    )

    monkeypatch.setenv("PROMPT_ENV_DATA", str(shared_data_dir))
    root = Path(__file__).resolve().parents[1]
    assert RULE_EVIDENCE and GENERATION_EVIDENCE
    for evidence in RULE_EVIDENCE + GENERATION_EVIDENCE:
        plan = plan_run(evidence.task)
        assert evidence.pool_cost == pool_cost(plan.n_prompts, search_dev_inputs(plan.n_dev))
        rows = [r for r in read_jsonl(root / evidence.rows / "results.jsonl") if r["task"] == evidence.task]
        search = [r for r in rows if r["policy"] == SEARCH_POLICY]
        fixed = [r["test_score"] for r in rows if r["policy"] == "best-fixed-on-dev"]
        assert len(search) == len(fixed) == evidence.seeds
        assert {r["budget"] / evidence.pool_cost for r in search} == {evidence.budget_pool_costs}
        assert 100 * statistics.mean(r["test_score"] for r in search) == pytest.approx(evidence.search, abs=0.01)
        assert 100 * statistics.mean(fixed) == pytest.approx(evidence.best_fixed, abs=0.01)
    ahead = [e.budget_pool_costs for e in RULE_EVIDENCE if e.search > e.best_fixed]
    assert BUDGET_RULE <= min(ahead) and BUDGET_RULE > min(ahead) - 0.5


def test_the_evaluation_progress_counts_the_calls_its_table_counts(reviews):
    """The progress line of the held-out evaluation reports the calls the results table will
    count: a second metric read from the same cached answers (token F1 on generation files,
    here the label margin) adds none. Real model, real SST-2 sentences."""
    import io

    from rich.console import Console

    from agents.experiments.optimize import evaluate_prompts
    from agents.experiments.setting import Setting
    from agents.progress import ProgressReporter

    setting = Setting.for_task(str(reviews), split="test", test_limit=4, dev_limit=2)
    pool = setting.select_env().prompts
    buffer = io.StringIO()
    with ProgressReporter(console=Console(file=buffer, force_terminal=False, width=200)) as reporter:
        entries = evaluate_prompts(setting, pool[:2], reporter, "margin")
    assert [e["usage"]["calls"] for e in entries] == [4, 4] and all("margin" in e for e in entries)
    assert setting.select_env().llm_usage()["calls"] == 16  # the margin reread the cache
    assert buffer.getvalue().splitlines()[-1].endswith("2/2 (LLM calls 8 | cache hits 0)")


def test_each_held_out_evaluation_counts_its_own_pairs_and_a_renamed_prompt_is_scored_once(reviews):
    """The winner of a search is often a pool prompt under the Edit env's name: it is scored
    once (marked ``same_as``), not again from the cache with no distinct pairs of its own. A
    calibration twin asks the LLM the very pairs of its raw prompt: its entry still counts them,
    as if evaluated alone. Real model, real SST-2 sentences."""
    from agents.experiments.optimize import evaluate_prompts
    from agents.experiments.setting import Setting
    from agents.progress import reporter_for
    from prompt_env.calibration import CONTENT_FREE_INPUTS

    setting = Setting.for_task(str(reviews), split="test", test_limit=4, dev_limit=2)
    pool = setting.select_env().prompts
    renamed = pool[1].replace(name="edit: set instruction 1")
    twin = pool[1].replace(calibration="content-free")
    entries = evaluate_prompts(setting, [pool[0], pool[1], renamed, twin], reporter_for(False), None)

    assert [e.get("same_as") for e in entries] == [None, None, 1, None]
    assert entries[2]["score"] == entries[1]["score"] and entries[2]["usage"] == entries[1]["usage"]
    premises = len(CONTENT_FREE_INPUTS)  # the twin's calibration reads them, once
    assert [entries[i]["usage"]["calls"] for i in (0, 1, 3)] == [4, 4, 4 + premises]
    assert all(entries[i]["usage"]["distinct"] == entries[i]["usage"]["calls"] for i in (0, 1, 3))
    assert setting.select_env().llm_usage()["calls"] == 12 + premises  # the renamed one asked nothing


def test_a_generation_report_gives_token_f1_and_every_accepted_answer(shared_data_dir, tmp_path,
                                                                      monkeypatch):
    """A generation file (real BIG-bench object counting questions, each with two accepted
    answers such as "five" and "5"): the report gives token F1 beside exact match, shows the
    generated text, lists every accepted answer and explains its marks for generation."""
    from agents import optimize

    monkeypatch.setenv("PROMPT_ENV_CACHE", str(tmp_path / "cache.sqlite"))
    lines = (shared_data_dir / "bigbench" / "object_counting_200.jsonl").read_text(
        encoding="utf-8").splitlines()[:24]
    path = tmp_path / "counting.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = optimize(path, budget=16, test_limit=4, out=tmp_path / "counting", progress=False)
    report = (tmp_path / "counting" / "report.md").read_text()
    assert "| test score | test f1 |" in report
    assert all("f1" in row for row in result.rows)
    section = report.split("## What the model answered")[1].split("## The prompt")[0]
    accepted = {" / ".join(json.loads(line)["target"]) for line in lines}  # e.g. "five / 5"
    cells = {row.split(" | ")[2] for row in section.splitlines() if row.startswith("| 1 ")}
    assert cells and cells <= accepted
    assert "earns some / no credit" in section and "every answer the metric accepts" in section
    assert "p=" not in section and "label words" not in section


def test_a_dev_set_that_cannot_tell_the_pool_apart_is_said_so(tmp_path, capsys, monkeypatch):
    """Answers no prompt gets right (the fake LLM against made-up references): every pool
    prompt scores 0 on dev, and the run says the manual prompt was kept for want of signal."""
    monkeypatch.setenv("PROMPT_ENV_CACHE", str(tmp_path / "cache.sqlite"))
    rows = [{"input": f"item {i}", "output": f"qz{i}xw"} for i in range(16)]
    data = tmp_path / "codes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    options = '{"format": "generation", "input_field": "input", "reference_field": "output"}'
    out = tmp_path / "opt"
    assert main(["optimize", "--data", str(data), "--llm", "fake", "--budget", "light", "--test-limit", "4",
                 "--task-options", options, "--no-progress", "--out", str(out)]) == 0
    printed = " ".join((capsys.readouterr().err).split())  # rich wraps lines at 80 columns
    assert "all 8 pool prompts score 0.000 on the 4 dev inputs, so dev cannot tell them apart; the " \
           "first (the manual prompt) is kept" in printed
    notes = {r["policy"]: r["notes"] for r in json.loads((out / "results.json").read_text())}
    assert "all 8 pool prompts tie on dev (no signal there)" in notes["best-fixed-on-dev"]
