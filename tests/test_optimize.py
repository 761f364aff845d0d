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
from agents.experiments.optimize import choose_method, single_prompt_methods

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
        choose_method(500, 11, "dqn")
    with pytest.raises(ValueError, match="unknown policy 'ucb'"):
        choose_method(500, 11, "ucb")
    assert {"best-fixed-on-dev", "ucb1"} <= set(single_prompt_methods())
